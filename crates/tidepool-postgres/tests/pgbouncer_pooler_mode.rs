//! Pooler mode against a real PgBouncer in transaction mode
//! (`.ci/setup-topology.sh`: 127.0.0.1:6432, `default_pool_size = 4`, so
//! the pool's 20 connections share four server sessions and a statement
//! prepared on one is not there on the next).

use std::sync::Arc;
use std::time::Duration;

use tidepool::{Pool, Queryable, Value};
use tidepool_postgres::{PgManager, PgPool};

mod support;

const CLIENTS: usize = 50;
const ROUNDS: usize = 20;
const POOL_SIZE: u32 = 20;

async fn bouncer_pool(url: &str, pooler: bool) -> PgPool {
    // Pooler mode from the URL, as a deployment would set it.
    let url = support::plain(url);
    let url = if pooler {
        format!("{url}&tidepool_pooler=true")
    } else {
        url
    };
    let manager = PgManager::from_url(&url).unwrap();
    assert_eq!(manager.is_transaction_pooler(), pooler);
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap()
}

/// Direct to the server: the table the run writes to.
async fn prepare_table(table: &str) {
    let direct = support::pool(
        &support::plain(&tidepool_testkit::postgres_url_unchecked()),
        1,
        tidepool_postgres::ResetPolicy::Fast,
    )
    .await;
    let conn = direct.get().await.unwrap();
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int4 PRIMARY KEY, n int8 NOT NULL);
         INSERT INTO {table} SELECT g, 0 FROM generate_series(0, {}) g",
        CLIENTS - 1
    ))
    .await
    .unwrap();
}

/// 50 clients, each `ROUNDS` times: a parameterized read, a parameterized
/// write, and a three-statement transaction (update, read back, commit).
/// Returns every error's message.
async fn mixed_run(pool: &PgPool, table: &str) -> Vec<String> {
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let pool = pool.clone();
        let errors = errors.clone();
        let update = format!("UPDATE {table} SET n = n + $1 WHERE id = $2");
        let select = format!("SELECT n FROM {table} WHERE id = $1");
        tasks.push(tokio::spawn(async move {
            let id = Value::Int(client as i64);
            // What this client's row must hold: only it writes the row.
            let mut n = 0i64;
            for round in 0..ROUNDS {
                let result: Result<(), String> = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    let sum = conn
                        .query_one_values(
                            "SELECT $1::int8 + $2::int8 AS s",
                            &[Value::Int(round as i64), id.clone()],
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    if sum.get("s") != Some(&Value::Int(round as i64 + client as i64)) {
                        return Err(format!("wrong sum {sum:?}"));
                    }
                    conn.execute_values(&update, &[Value::Int(1), id.clone()])
                        .await
                        .map_err(|e| e.to_string())?;
                    n += 1;
                    conn.begin().await.map_err(|e| e.to_string())?;
                    conn.execute_values(&update, &[Value::Int(1), id.clone()])
                        .await
                        .map_err(|e| e.to_string())?;
                    let row = conn
                        .query_one_values(&select, std::slice::from_ref(&id))
                        .await
                        .map_err(|e| e.to_string())?;
                    conn.commit().await.map_err(|e| e.to_string())?;
                    n += 1;
                    match row.get("n") {
                        Some(Value::Int(got)) if *got == n => Ok(()),
                        other => {
                            let seen = format!("the transaction read n = {other:?}, expected {n}");
                            if let Some(Value::Int(got)) = other {
                                n = *got;
                            }
                            Err(seen)
                        }
                    }
                }
                .await;
                if let Err(e) = result {
                    errors.lock().unwrap().push(e);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let errors = errors.lock().unwrap().clone();
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_through_pgbouncer_in_pooler_mode_see_zero_errors_and_without_it_errors_name_pooler_mode(
) {
    let Some(url) = tidepool_testkit::pgbouncer_url("pgbouncer_pooler_mode") else {
        return;
    };
    let table = support::table("bouncer");

    prepare_table(&table).await;
    let pool = bouncer_pool(&url, true).await;
    let errors = mixed_run(&pool, &table).await;
    assert!(
        errors.is_empty(),
        "{} errors in pooler mode, first: {:?}",
        errors.len(),
        errors.first()
    );
    pool.close(Duration::from_secs(5)).await;

    prepare_table(&table).await;
    let pool = bouncer_pool(&url, false).await;
    let errors = mixed_run(&pool, &table).await;
    pool.close(Duration::from_secs(5)).await;
    assert!(
        !errors.is_empty(),
        "named statements through a transaction pooler ran without an error"
    );
    let named = errors
        .iter()
        .filter(|e| e.contains("prepared statement"))
        .count();
    assert!(named > 0, "no prepared-statement error among {errors:?}");
    for e in errors.iter().filter(|e| e.contains("prepared statement")) {
        assert!(
            e.contains("pooler mode") && e.contains("tidepool_pooler=true"),
            "{e}"
        );
    }
    eprintln!(
        "without pooler mode: {} of {} client rounds failed, e.g. {}",
        errors.len(),
        CLIENTS * ROUNDS,
        errors[0]
    );
}
