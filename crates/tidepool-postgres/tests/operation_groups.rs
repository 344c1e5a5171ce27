//! Transaction groups (`OperationGroup::run_in_transaction`) on a real
//! PostgreSQL. Two groups run the same list — set SERIALIZABLE, read a
//! counter, write it back plus one with an audit row — side by side on the
//! same row. Both read before either writes; the group that writes after
//! the other committed gets 40001 from the server. With the default retry
//! policy it runs again as a whole, from its first operation, and the
//! server ends with both increments and exactly one audit row per group
//! (the failed attempt's rolled back). Without retries the 40001 is the
//! group's error, at the index of the write.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use tidepool::{tx_operation, OperationGroup, Outcome, Queryable, RetryPolicy, TxOperation, Value};
use tidepool_postgres::{PgConnection, PgError, PgManager, ResetPolicy};
use tokio::sync::{Barrier, Notify};

mod support;

/// What one group's operations saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// Calls of each operation, retries included.
    calls: [AtomicU32; 3],
    /// The counter as the read operation last saw it.
    read: AtomicI64,
    /// SQLSTATEs of the errors the write returned.
    write_errors: Mutex<Vec<String>>,
}

/// The three operations of one group: set SERIALIZABLE; read the counter;
/// write back what was read plus one, with an audit row naming the group
/// and what it read. A read-modify-write: if a retry did not run the read
/// again, it would write a stale value and lose the other group's
/// increment. On its first attempt the group waits at `both_read` after
/// reading; `wait_before_write`, when given, holds the first attempt's
/// write until the other group has committed.
fn ops(
    name: &'static str,
    table: &str,
    seen: &Arc<Seen>,
    both_read: &Arc<Barrier>,
    wait_before_write: Option<Arc<Notify>>,
) -> Vec<TxOperation<'static, PgConnection, i64, PgError>> {
    let isolation = {
        let seen = seen.clone();
        tx_operation(move |conn: &mut PgConnection| {
            seen.calls[0].fetch_add(1, SeqCst);
            Box::pin(async move {
                conn.execute_values("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])
                    .await?;
                Ok(0)
            })
        })
    };
    let read = {
        let (seen, both_read) = (seen.clone(), both_read.clone());
        let select = format!("SELECT v FROM {table} WHERE id = 1");
        tx_operation(move |conn: &mut PgConnection| {
            let attempt = seen.calls[1].fetch_add(1, SeqCst) + 1;
            let (seen, select, both_read) = (seen.clone(), select.clone(), both_read.clone());
            Box::pin(async move {
                let row = conn.query_one_values(&select, &[]).await?;
                let v = row.get("v").and_then(Value::as_i64).unwrap_or(-1);
                seen.read.store(v, SeqCst);
                if attempt == 1 {
                    // Both snapshots are taken before either group writes.
                    both_read.wait().await;
                }
                Ok(v)
            })
        })
    };
    let write = {
        let seen = seen.clone();
        let update = format!("UPDATE {table} SET v = $1 WHERE id = 1");
        let audit = format!("INSERT INTO {table}_audit (grp, seen) VALUES ($1, $2)");
        tx_operation(move |conn: &mut PgConnection| {
            let attempt = seen.calls[2].fetch_add(1, SeqCst) + 1;
            let (seen, update, audit) = (seen.clone(), update.clone(), audit.clone());
            let wait = wait_before_write.clone();
            Box::pin(async move {
                if let (1, Some(other_committed)) = (attempt, wait) {
                    other_committed.notified().await;
                }
                let read = seen.read.load(SeqCst);
                let result = async {
                    conn.execute_values(&update, &[Value::Int(read + 1)])
                        .await?;
                    conn.execute_values(&audit, &[Value::from(name), Value::Int(read)])
                        .await?;
                    Ok::<i64, PgError>(read + 1)
                }
                .await;
                if let Err(e) = &result {
                    let code = PgError::sqlstate(e).unwrap_or("(none)").to_string();
                    seen.write_errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(code);
                }
                result
            })
        })
    };
    vec![isolation, read, write]
}

fn write_errors(seen: &Seen) -> Vec<String> {
    seen.write_errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

struct Race {
    pool: tidepool::Pool<PgManager>,
    table: String,
    first: OperationGroup<PgManager>,
    second: OperationGroup<PgManager>,
    first_seen: Arc<Seen>,
    second_seen: Arc<Seen>,
}

impl Race {
    async fn new(url: &str, test: &str) -> Race {
        let pool = support::pool(&support::plain(url), 2, ResetPolicy::Fast).await;
        let table = support::table(test);
        let conn = pool.get().await.unwrap();
        conn.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}, {table}_audit;
             CREATE TABLE {table} (id int4 PRIMARY KEY, v int4 NOT NULL);
             INSERT INTO {table} VALUES (1, 0);
             CREATE TABLE {table}_audit (grp text NOT NULL, seen int4 NOT NULL)"
        ))
        .await
        .unwrap();
        drop(conn);
        Race {
            first: OperationGroup::new(&pool, "first"),
            second: OperationGroup::new(&pool, "second"),
            pool,
            table,
            first_seen: Arc::default(),
            second_seen: Arc::default(),
        }
    }

    /// Runs both groups at once: `first` commits, then `second` writes.
    #[allow(clippy::type_complexity)]
    async fn run(
        &self,
        policy: RetryPolicy,
    ) -> (
        Result<Vec<i64>, tidepool::GroupError<i64, PgError, PgError>>,
        Result<Vec<i64>, tidepool::GroupError<i64, PgError, PgError>>,
    ) {
        let both_read = Arc::new(Barrier::new(2));
        let first_committed = Arc::new(Notify::new());
        let first_ops = ops("first", &self.table, &self.first_seen, &both_read, None);
        let second_ops = ops(
            "second",
            &self.table,
            &self.second_seen,
            &both_read,
            Some(first_committed.clone()),
        );
        let first = async {
            let result = self.first.run_in_transaction(policy, first_ops).await;
            first_committed.notify_one();
            result
        };
        let second = self.second.run_in_transaction(policy, second_ops);
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            tokio::join!(first, second)
        })
        .await
        .expect("the two groups finish")
    }

    /// The counter and the audit rows, read on the server.
    async fn server_state(&self) -> (i64, Vec<(String, i64)>) {
        let mut conn = self.pool.get().await.unwrap();
        let v = conn
            .query_one_values(&format!("SELECT v FROM {} WHERE id = 1", self.table), &[])
            .await
            .unwrap();
        let audit = conn
            .query_values(
                &format!("SELECT grp, seen FROM {}_audit ORDER BY seen", self.table),
                &[],
            )
            .await
            .unwrap();
        let audit = audit
            .iter()
            .map(|r| {
                (
                    r.get("grp")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    r.get("seen").and_then(Value::as_i64).unwrap_or(-1),
                )
            })
            .collect();
        (v.get("v").and_then(Value::as_i64).unwrap_or(-1), audit)
    }

    async fn drop_tables(&self) {
        let conn = self.pool.get().await.unwrap();
        conn.batch_execute(&format!("DROP TABLE {t}, {t}_audit", t = self.table))
            .await
            .unwrap();
    }
}

fn calls(seen: &Seen) -> Vec<u32> {
    seen.calls.iter().map(|c| c.load(SeqCst)).collect()
}

#[tokio::test]
async fn two_serializable_transaction_groups_conflict_and_the_loser_runs_again_as_a_whole() {
    let Some(url) = support::url("groups_serializable_retry") else {
        return;
    };
    let race = Race::new(&url, "grp_retry").await;
    let (first, second) = race.run(RetryPolicy::default()).await;

    // The values each operation returned: (isolation, read, write).
    assert_eq!(first.unwrap(), vec![0, 0, 1]);
    assert_eq!(
        second.unwrap(),
        vec![0, 1, 2],
        "the retry read the first group's committed write"
    );
    assert_eq!(
        write_errors(&race.second_seen),
        vec!["40001".to_string()],
        "the server refused the second group's first write"
    );
    assert!(write_errors(&race.first_seen).is_empty());
    assert_eq!(calls(&race.first_seen), vec![1, 1, 1]);
    assert_eq!(
        calls(&race.second_seen),
        vec![2, 2, 2],
        "every operation ran again, from the first"
    );

    let first_stats = race.first.stats();
    assert_eq!(
        (
            first_stats.transaction_attempts,
            first_stats.transaction_retries
        ),
        (1, 0)
    );
    let second_stats = race.second.stats();
    assert_eq!(second_stats.transaction_attempts, 2);
    assert_eq!(second_stats.transaction_retries, 1);
    assert_eq!(second_stats.runs, 1);
    assert_eq!(second_stats.runs_failed, 0);
    assert_eq!(second_stats.operations_started, 6);
    assert_eq!(second_stats.operations_failed, 1);
    assert_eq!(second_stats.operations_succeeded, 3);

    // On the server: both increments, and one audit row per group — the
    // failed attempt's row was rolled back with it.
    let (v, audit) = race.server_state().await;
    assert_eq!(v, 2, "no update was lost");
    assert_eq!(
        audit,
        vec![("first".to_string(), 0), ("second".to_string(), 1)]
    );
    race.drop_tables().await;
}

#[tokio::test]
async fn without_retries_the_40001_is_the_groups_error_at_the_writes_index() {
    let Some(url) = support::url("groups_serializable_no_retry") else {
        return;
    };
    let race = Race::new(&url, "grp_noretry").await;
    let (first, second) = race.run(RetryPolicy::none()).await;

    assert_eq!(first.unwrap(), vec![0, 0, 1]);
    let err = second.unwrap_err();
    assert_eq!(err.group(), "second");
    assert_eq!(err.index(), Some(2), "the write failed");
    match err.failure() {
        tidepool::GroupFailure::Operation(e) => assert_eq!(e.sqlstate(), Some("40001")),
        other => panic!("expected the write's 40001, got {other:?}"),
    }
    assert!(matches!(err.outcomes()[0], Outcome::RolledBack));
    assert!(matches!(err.outcomes()[1], Outcome::RolledBack));
    assert_eq!(calls(&race.second_seen), vec![1, 1, 1]);
    assert_eq!(race.second.stats().transaction_retries, 0);
    assert_eq!(race.second.stats().runs_failed, 1);

    let (v, audit) = race.server_state().await;
    assert_eq!(v, 1, "only the first group's write committed");
    assert_eq!(audit, vec![("first".to_string(), 0)]);
    // The connection went back clean: the next borrower is outside any
    // transaction.
    // (The simple protocol, so the statement and its implicit transaction
    // start together.)
    for _ in 0..2 {
        let conn = race.pool.get().await.unwrap();
        let messages = conn
            .simple_query("SELECT now() = statement_timestamp()")
            .await
            .unwrap();
        let outside = messages.iter().find_map(|m| match m {
            tidepool_postgres::tokio_postgres::SimpleQueryMessage::Row(row) => {
                row.get(0).map(str::to_string)
            }
            _ => None,
        });
        assert_eq!(
            outside.as_deref(),
            Some("t"),
            "the borrower is inside a transaction"
        );
        assert!(!conn.in_transaction());
    }
    race.drop_tables().await;
}
