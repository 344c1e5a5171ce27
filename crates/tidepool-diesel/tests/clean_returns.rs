//! A transaction left open through diesel-async's own API, and a failed
//! one, never reach the next borrower: 1,000 trials each on a pool of one
//! connection, so every trial borrows the connection the last one left
//! dirty, checked on the server (PostgreSQL: the backend's state in
//! `pg_stat_activity`, seen from another connection; MariaDB:
//! `@@in_transaction`). Each also checks that the connection was cleaned,
//! not replaced, and that plain queries cost no cleaning at all.

mod support;

use diesel_async::{AnsiTransactionManager, AsyncConnection, RunQueryDsl, TransactionManager};
use tidepool::Pooled;

const TRIALS: usize = 1_000;

/// How a trial leaves the connection.
#[derive(Clone, Copy, Debug)]
enum Dirt {
    /// `TransactionManager::begin_transaction`, then the guard is dropped.
    BeganThenDropped,
    /// `conn.transaction(..)` whose future is dropped while the body waits.
    TransactionFutureDropped,
    /// A statement fails inside an open transaction (PostgreSQL: aborted
    /// state), then the guard is dropped.
    FailedInsideTransaction,
    /// Nested: a savepoint inside a transaction, both left open.
    NestedLeftOpen,
}

const ALL: [Dirt; 4] = [
    Dirt::BeganThenDropped,
    Dirt::TransactionFutureDropped,
    Dirt::FailedInsideTransaction,
    Dirt::NestedLeftOpen,
];

macro_rules! dirty {
    ($conn:expr, $dirt:expr) => {{
        let conn = $conn;
        match $dirt {
            Dirt::BeganThenDropped => {
                AnsiTransactionManager::begin_transaction(&mut ***conn)
                    .await
                    .unwrap();
                diesel::sql_query("SELECT 1").execute(conn).await.unwrap();
            }
            Dirt::TransactionFutureDropped => {
                // Dropped while the body waits, never mid-BEGIN: a future
                // dropped mid-statement is the discard case, not this one.
                let reached = std::sync::Arc::new(tokio::sync::Notify::new());
                let signal = reached.clone();
                let body = conn.transaction::<(), diesel::result::Error, _>(async move |tx| {
                    diesel::sql_query("SELECT 1").execute(tx).await?;
                    signal.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                });
                tokio::select! {
                    _ = body => unreachable!("the body never finishes"),
                    _ = reached.notified() => {}
                }
            }
            Dirt::FailedInsideTransaction => {
                AnsiTransactionManager::begin_transaction(&mut ***conn)
                    .await
                    .unwrap();
                let failed = diesel::sql_query("SELECT * FROM tp_diesel_no_such_table")
                    .execute(conn)
                    .await;
                assert!(failed.is_err());
            }
            Dirt::NestedLeftOpen => {
                AnsiTransactionManager::begin_transaction(&mut ***conn)
                    .await
                    .unwrap();
                AnsiTransactionManager::begin_transaction(&mut ***conn)
                    .await
                    .unwrap();
            }
        }
    }};
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_transaction_left_open_or_failed_never_reaches_the_next_borrower() {
    let Some(url) = support::pg_url("diesel_clean_pg") else {
        return;
    };
    let monitor = support::pg_monitor(&url).await;
    let pool = support::pool(tidepool_diesel::PgManager::new(&url).unwrap(), 1).await;
    let pid: i32 = {
        let mut conn = pool.get().await.unwrap();
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "pg_backend_pid()",
        ))
        .get_result(&mut conn)
        .await
        .unwrap()
    };
    for dirt in ALL {
        let mut first = None;
        for trial in 0..TRIALS {
            let mut conn = pool.get().await.unwrap();
            assert_eq!(
                support::pg_state(&monitor, pid).await,
                "idle",
                "{dirt:?} trial {trial}: the borrower got a connection inside a transaction"
            );
            let id = *first.get_or_insert(Pooled::id(&conn));
            assert_eq!(
                Pooled::id(&conn),
                id,
                "{dirt:?} trial {trial}: replaced, not cleaned"
            );
            dirty!(&mut conn, dirt);
        }
    }
    let conn = pool.get().await.unwrap();
    assert_eq!(support::pg_state(&monitor, pid).await, "idle");
    drop(conn);
    assert_eq!(pool.metrics().connections_created, 1);
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_mysql_transaction_left_open_or_failed_never_reaches_the_next_borrower() {
    let Some(url) = support::mysql_url("diesel_clean_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_diesel::MysqlManager::new(&url).unwrap(), 1).await;
    for dirt in ALL {
        let mut first = None;
        for trial in 0..TRIALS {
            let mut conn = pool.get().await.unwrap();
            let in_transaction: i64 = diesel::select(
                diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(@@in_transaction AS SIGNED)"),
            )
            .get_result(&mut conn)
            .await
            .unwrap();
            assert_eq!(
                in_transaction, 0,
                "{dirt:?} trial {trial}: the borrower got a connection inside a transaction"
            );
            let id = *first.get_or_insert(Pooled::id(&conn));
            assert_eq!(
                Pooled::id(&conn),
                id,
                "{dirt:?} trial {trial}: replaced, not cleaned"
            );
            dirty!(&mut conn, dirt);
        }
    }
    assert_eq!(pool.metrics().connections_created, 1);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn plain_queries_return_straight_to_idle_with_no_cleaning() {
    let Some(url) = support::pg_url("diesel_no_reset_pg") else {
        return;
    };
    let pool = support::pool(tidepool_diesel::PgManager::new(&url).unwrap(), 1).await;
    for _ in 0..100 {
        let mut conn = pool.get().await.unwrap();
        let one: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert!(!tidepool_diesel::TrackedConnection::needs_attention(&conn));
    }
    assert_eq!(pool.metrics().resets, 0);
}
