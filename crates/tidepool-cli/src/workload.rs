//! The benchmark's database side: the users/orders/events schema in each
//! dialect, seeding it in one transaction, and the five operations of the
//! mix. Everything runs through `tidepool::Queryable`, so it is the same
//! code on every driver; only the SQL text differs by dialect.

use std::sync::Arc;
use std::time::Instant;

use tidepool::{Queryable, RetryPolicy, Value};

use crate::settings::Mix;
use crate::target::Dialect;

/// One operation of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `SELECT` a user by primary key.
    PointSelect,
    /// `SELECT` a user's 20 latest orders.
    RangeSelect,
    /// `INSERT` an event.
    Insert,
    /// `UPDATE` a user's balance.
    Update,
    /// A transaction: read a user, insert an order, update the balance,
    /// insert an event.
    Transaction,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::PointSelect => "point_select",
            Op::RangeSelect => "range_select",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Transaction => "transaction",
        }
    }

    /// Draws an operation according to the mix: reads split evenly between
    /// point and range selects, writes between inserts and updates.
    pub fn pick(mix: &Mix, rng: &mut fastrand::Rng) -> Op {
        let roll = rng.u32(0..mix.total());
        let half = rng.bool();
        if roll < mix.read {
            if half {
                Op::PointSelect
            } else {
                Op::RangeSelect
            }
        } else if roll < mix.read + mix.write {
            if half {
                Op::Insert
            } else {
                Op::Update
            }
        } else {
            Op::Transaction
        }
    }
}

/// The SQL of the benchmark, written for one dialect and table prefix.
#[derive(Debug)]
pub struct Statements {
    pub dialect: Dialect,
    pub users: String,
    pub orders: String,
    pub events: String,
    point: String,
    range: String,
    insert_event: String,
    update_balance: String,
    insert_order: String,
    /// Users seeded; ids run from 1 to this.
    pub user_count: u32,
}

const STATUSES: [&str; 4] = ["new", "paid", "shipped", "cancelled"];
const EVENT_KINDS: [&str; 5] = ["login", "view", "search", "cart", "checkout"];

/// Milliseconds since the epoch (a portable timestamp column).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Statements {
    pub fn new(dialect: Dialect, prefix: &str, user_count: u32) -> Arc<Self> {
        let users = format!("{prefix}users");
        let orders = format!("{prefix}orders");
        let events = format!("{prefix}events");
        let p = |i: usize| match dialect {
            Dialect::Mysql => "?".to_string(),
            _ => format!("${i}"),
        };
        Arc::new(Statements {
            point: format!(
                "SELECT id, name, email, balance FROM {users} WHERE id = {}",
                p(1)
            ),
            range: format!(
                "SELECT id, amount, status, created_at FROM {orders} WHERE user_id = {} ORDER BY created_at DESC LIMIT 20",
                p(1)
            ),
            insert_event: format!(
                "INSERT INTO {events} (user_id, kind, payload, created_at) VALUES ({}, {}, {}, {})",
                p(1), p(2), p(3), p(4)
            ),
            update_balance: format!(
                "UPDATE {users} SET balance = balance + {} WHERE id = {}",
                p(1),
                p(2)
            ),
            insert_order: format!(
                "INSERT INTO {orders} (user_id, amount, status, created_at) VALUES ({}, {}, {}, {})",
                p(1), p(2), p(3), p(4)
            ),
            dialect,
            users,
            orders,
            events,
            user_count,
        })
    }

    pub fn create(&self) -> Vec<String> {
        let (users, orders, events) = (&self.users, &self.orders, &self.events);
        let (id_auto, text, suffix) = match self.dialect {
            Dialect::Sqlite => ("INTEGER PRIMARY KEY", "TEXT", ""),
            Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "VARCHAR(255)", ""),
            Dialect::Mysql => (
                "BIGINT AUTO_INCREMENT PRIMARY KEY",
                "VARCHAR(255)",
                " ENGINE=InnoDB",
            ),
        };
        vec![
            format!(
                "CREATE TABLE {users} (id BIGINT PRIMARY KEY, name {text} NOT NULL, email {text} NOT NULL, balance BIGINT NOT NULL, created_at BIGINT NOT NULL){suffix}"
            ),
            format!(
                "CREATE TABLE {orders} (id {id_auto}, user_id BIGINT NOT NULL, amount BIGINT NOT NULL, status {text} NOT NULL, created_at BIGINT NOT NULL){suffix}"
            ),
            format!("CREATE INDEX {orders}_by_user ON {orders} (user_id, created_at)"),
            format!(
                "CREATE TABLE {events} (id {id_auto}, user_id BIGINT NOT NULL, kind {text} NOT NULL, payload {text} NOT NULL, created_at BIGINT NOT NULL){suffix}"
            ),
            format!("CREATE INDEX {events}_by_time ON {events} (created_at)"),
        ]
    }

    pub fn drop_all(&self) -> Vec<String> {
        [&self.events, &self.orders, &self.users]
            .iter()
            .map(|t| format!("DROP TABLE IF EXISTS {t}"))
            .collect()
    }

    /// The SQL of a read operation (a single autocommit `SELECT` with one
    /// parameter, the user id), `None` for writes and transactions.
    pub fn read_sql(&self, op: Op) -> Option<&str> {
        match op {
            Op::PointSelect => Some(&self.point),
            Op::RangeSelect => Some(&self.range),
            Op::Insert | Op::Update | Op::Transaction => None,
        }
    }

    pub fn random_user(&self, rng: &mut fastrand::Rng) -> i64 {
        i64::from(rng.u32(1..=self.user_count.max(1)))
    }
}

/// What seeding made.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Seeded {
    pub users: u64,
    pub orders: u64,
    pub events: u64,
    pub took_ms: f64,
}

/// Drops leftovers, creates the tables and fills them in one transaction
/// with multi-row inserts (the values are generated here: numbers and
/// fixed words, never user input).
pub async fn setup<C: Queryable>(conn: &mut C, s: &Statements) -> Result<Seeded, C::Error> {
    let started = Instant::now();
    for sql in s.drop_all().iter().chain(s.create().iter()) {
        conn.execute_values(sql, &[]).await?;
    }
    let mut rng = fastrand::Rng::with_seed(42);
    let now = now_ms();
    let users = u64::from(s.user_count);
    let per_user = 3;
    conn.begin().await?;
    let outcome = async {
        insert_rows(
            conn,
            &s.users,
            "id, name, email, balance, created_at",
            users,
            |i| {
                let id = i + 1;
                format!(
                    "({id}, 'user {id}', 'user{id}@example.com', {}, {})",
                    rng.i64(0..100_000),
                    now - rng.i64(0..31_536_000_000)
                )
            },
        )
        .await?;
        let mut rng = fastrand::Rng::with_seed(7);
        let users_max = s.user_count.max(1);
        insert_rows(
            conn,
            &s.orders,
            "user_id, amount, status, created_at",
            users * per_user,
            |_| {
                format!(
                    "({}, {}, '{}', {})",
                    rng.u32(1..=users_max),
                    rng.i64(100..50_000),
                    STATUSES[rng.usize(0..STATUSES.len())],
                    now - rng.i64(0..31_536_000_000)
                )
            },
        )
        .await?;
        insert_rows(
            conn,
            &s.events,
            "user_id, kind, payload, created_at",
            users * per_user,
            |i| {
                format!(
                    "({}, '{}', 'seed event {i}', {})",
                    rng.u32(1..=users_max),
                    EVENT_KINDS[rng.usize(0..EVENT_KINDS.len())],
                    now - rng.i64(0..2_592_000_000)
                )
            },
        )
        .await
    }
    .await;
    match outcome {
        Ok(()) => conn.commit().await?,
        Err(e) => {
            let _ = conn.rollback().await;
            return Err(e);
        }
    }
    Ok(Seeded {
        users,
        orders: users * per_user,
        events: users * per_user,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

async fn insert_rows<C: Queryable>(
    conn: &mut C,
    table: &str,
    columns: &str,
    count: u64,
    mut row: impl FnMut(u64) -> String,
) -> Result<(), C::Error> {
    const BATCH: u64 = 500;
    let mut i = 0;
    while i < count {
        let end = (i + BATCH).min(count);
        let values: Vec<String> = (i..end).map(&mut row).collect();
        let sql = format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values.join(", ")
        );
        conn.execute_values(&sql, &[]).await?;
        i = end;
    }
    Ok(())
}

/// Drops the benchmark's tables.
pub async fn teardown<C: Queryable>(conn: &mut C, s: &Statements) -> Result<(), C::Error> {
    for sql in s.drop_all() {
        conn.execute_values(&sql, &[]).await?;
    }
    Ok(())
}

/// Runs one operation on a checked-out connection.
pub async fn run<C: Queryable>(
    conn: &mut C,
    s: &Arc<Statements>,
    op: Op,
    rng: &mut fastrand::Rng,
) -> Result<(), C::Error> {
    let user = s.random_user(rng);
    match op {
        Op::PointSelect => conn
            .query_values(&s.point, &[Value::Int(user)])
            .await
            .map(drop),
        Op::RangeSelect => conn
            .query_values(&s.range, &[Value::Int(user)])
            .await
            .map(drop),
        Op::Insert => {
            let kind = EVENT_KINDS[rng.usize(0..EVENT_KINDS.len())];
            let params = [
                Value::Int(user),
                Value::Text(kind.into()),
                Value::Text(format!("bench {}", rng.u32(..))),
                Value::Int(now_ms()),
            ];
            conn.execute_values(&s.insert_event, &params)
                .await
                .map(drop)
        }
        Op::Update => {
            let params = [Value::Int(rng.i64(-500..500)), Value::Int(user)];
            conn.execute_values(&s.update_balance, &params)
                .await
                .map(drop)
        }
        Op::Transaction => {
            let amount = rng.i64(100..10_000);
            let status = STATUSES[rng.usize(0..2)];
            let s = s.clone();
            tidepool::transaction(conn, RetryPolicy::default(), move |tx| {
                let s = s.clone();
                Box::pin(async move {
                    tx.query_values(&s.point, &[Value::Int(user)]).await?;
                    let now = now_ms();
                    tx.execute_values(
                        &s.insert_order,
                        &[
                            Value::Int(user),
                            Value::Int(amount),
                            Value::Text(status.into()),
                            Value::Int(now),
                        ],
                    )
                    .await?;
                    tx.execute_values(&s.update_balance, &[Value::Int(-amount), Value::Int(user)])
                        .await?;
                    tx.execute_values(
                        &s.insert_event,
                        &[
                            Value::Int(user),
                            Value::Text("checkout".into()),
                            Value::Text(format!("order of {amount}")),
                            Value::Int(now),
                        ],
                    )
                    .await
                    .map(drop)
                })
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_draws_each_operation_in_proportion() {
        let mix = Mix {
            read: 70,
            write: 20,
            txn: 10,
        };
        let mut rng = fastrand::Rng::with_seed(1);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(Op::pick(&mix, &mut rng)).or_insert(0u32) += 1;
        }
        let share = |op| f64::from(counts[&op]) / 100_000.0;
        assert!((share(Op::PointSelect) + share(Op::RangeSelect) - 0.70).abs() < 0.01);
        assert!((share(Op::Insert) + share(Op::Update) - 0.20).abs() < 0.01);
        assert!((share(Op::Transaction) - 0.10).abs() < 0.01);
    }

    #[test]
    fn mysql_statements_use_question_mark_placeholders() {
        let s = Statements::new(Dialect::Mysql, "t_", 10);
        assert!(s.point.ends_with("WHERE id = ?"));
        let s = Statements::new(Dialect::Postgres, "t_", 10);
        assert!(s.point.ends_with("WHERE id = $1"));
        assert!(s.create()[0].starts_with("CREATE TABLE t_users"));
    }
}
