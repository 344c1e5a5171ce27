//! A transaction left open through sqlx's own API, and a failed one, never
//! reach the next borrower: 1,000 trials each on a pool of one connection,
//! so every trial borrows the connection the last one left dirty, checked
//! on the server (PostgreSQL: the backend's state in `pg_stat_activity`,
//! seen from another connection; MariaDB: `@@in_transaction`), and the
//! connection is cleaned, not replaced.

mod support;

use std::sync::Arc;

use sqlx::Connection;
use tidepool::Pooled;
use tokio::sync::Notify;

const TRIALS: usize = 1_000;

/// How a trial leaves the connection.
#[derive(Clone, Copy, Debug)]
enum Dirt {
    /// `conn.begin()`, a statement, then the `Transaction` and the guard
    /// are dropped.
    BeganThenDropped,
    /// `Connection::transaction` whose future is dropped while the body
    /// waits.
    TransactionFutureDropped,
    /// A statement fails inside the transaction (PostgreSQL: aborted
    /// state), then everything is dropped.
    FailedInsideTransaction,
    /// A savepoint inside a transaction, both dropped open.
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
                let mut tx = conn.begin().await.unwrap();
                sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
                drop(tx);
            }
            Dirt::TransactionFutureDropped => {
                let reached = Arc::new(Notify::new());
                let signal = reached.clone();
                let body = conn.transaction::<_, (), sqlx::Error>(move |tx| {
                    Box::pin(async move {
                        sqlx::query("SELECT 1").execute(&mut **tx).await?;
                        signal.notify_one();
                        std::future::pending::<()>().await;
                        Ok(())
                    })
                });
                tokio::select! {
                    _ = body => unreachable!("the body never finishes"),
                    _ = reached.notified() => {}
                }
            }
            Dirt::FailedInsideTransaction => {
                let mut tx = conn.begin().await.unwrap();
                assert!(sqlx::query("SELECT * FROM tp_sqlx_no_such_table")
                    .execute(&mut *tx)
                    .await
                    .is_err());
                drop(tx);
            }
            Dirt::NestedLeftOpen => {
                let mut tx = conn.begin().await.unwrap();
                let inner = sqlx::Acquire::begin(&mut tx).await.unwrap();
                drop(inner);
                drop(tx);
            }
        }
    }};
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_transaction_left_open_or_failed_never_reaches_the_next_borrower() {
    let Some(url) = support::pg_url("sqlx_clean_pg") else {
        return;
    };
    let mut monitor = sqlx::PgConnection::connect(&url).await.unwrap();
    let pool = support::pool(tidepool_sqlx::PgManager::new(&url).unwrap(), 1).await;
    let pid: i32 = {
        let mut conn = pool.get().await.unwrap();
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    for dirt in ALL {
        let mut first = None;
        for trial in 0..TRIALS {
            let mut conn = pool.get().await.unwrap();
            assert_eq!(
                support::pg_state(&mut monitor, pid).await,
                "idle",
                "{dirt:?} trial {trial}: the borrower got a connection inside a transaction"
            );
            assert!(!conn.is_in_transaction());
            let id = *first.get_or_insert(Pooled::id(&conn));
            assert_eq!(
                Pooled::id(&conn),
                id,
                "{dirt:?} trial {trial}: replaced, not cleaned"
            );
            dirty!(&mut *conn, dirt);
        }
    }
    assert_eq!(pool.metrics().connections_created, 1);
}

#[cfg(feature = "mysql")]
async fn mysql_in_transaction(conn: &mut sqlx::MySqlConnection) -> i64 {
    sqlx::query_scalar("SELECT CAST(@@in_transaction AS SIGNED)")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_mysql_transaction_left_open_or_failed_never_reaches_the_next_borrower() {
    let Some(url) = support::mysql_url("sqlx_clean_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_sqlx::MySqlManager::new(&url).unwrap(), 1).await;
    for dirt in ALL {
        let mut first = None;
        for trial in 0..TRIALS {
            let mut conn = pool.get().await.unwrap();
            assert_eq!(
                mysql_in_transaction(&mut conn).await,
                0,
                "{dirt:?} trial {trial}: the borrower got a connection inside a transaction"
            );
            let id = *first.get_or_insert(Pooled::id(&conn));
            assert_eq!(
                Pooled::id(&conn),
                id,
                "{dirt:?} trial {trial}: replaced, not cleaned"
            );
            dirty!(&mut *conn, dirt);
        }
    }
    assert_eq!(pool.metrics().connections_created, 1);
}

#[cfg(feature = "mysql")]
#[tokio::test]
async fn a_mysql_transaction_opened_with_raw_sql_is_ended_by_the_check_on_return() {
    let Some(url) = support::mysql_url("sqlx_raw_begin_mysql") else {
        return;
    };
    let pool = support::pool(tidepool_sqlx::MySqlManager::new(&url).unwrap(), 1).await;
    for _ in 0..100 {
        let mut conn = pool.get().await.unwrap();
        assert_eq!(mysql_in_transaction(&mut conn).await, 0);
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await.unwrap();
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn without_the_check_on_return_plain_queries_return_straight_to_idle() {
    let Some(url) = support::pg_url("sqlx_no_check_pg") else {
        return;
    };
    let manager = tidepool_sqlx::PgManager::new(&url)
        .unwrap()
        .check_on_return(false);
    let pool = support::pool(manager, 1).await;
    for _ in 0..100 {
        let mut conn = pool.get().await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(one, 1);
    }
    assert_eq!(pool.metrics().resets, 0);
    // A dropped transaction is still cleaned.
    {
        let mut conn = pool.get().await.unwrap();
        let tx = conn.begin().await.unwrap();
        drop(tx);
    }
    let conn = pool.get().await.unwrap();
    assert!(!conn.is_in_transaction());
    assert!(
        !sqlx::Connection::should_flush(&*conn),
        "the queued ROLLBACK was sent"
    );
    assert_eq!(pool.metrics().resets, 1);
}
