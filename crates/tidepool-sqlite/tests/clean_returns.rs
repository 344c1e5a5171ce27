//! Through the pool: a connection is never handed out inside a transaction,
//! however the previous borrower left it; broken connections are discarded.

use std::time::Duration;

use tidepool::{transaction, Pool, Pooled, Queryable, RetryPolicy, Value};
use tidepool_sqlite::SqliteManager;

async fn pool_of_one(url: &str) -> Pool<SqliteManager> {
    Pool::builder(SqliteManager::from_url(url).unwrap())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap()
}

/// Whether SQLite itself (not our tracking) says a transaction is open.
async fn sqlite_in_transaction(conn: &Pooled<SqliteManager>) -> bool {
    conn.call(|c| Ok::<_, tidepool_sqlite::rusqlite::Error>(!c.is_autocommit()))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_next_borrower_is_never_inside_a_transaction_after_one_is_dropped_mid_way() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_of_one(&format!(
        "sqlite://{}",
        dir.path().join("clean.db").display()
    ))
    .await;
    {
        let mut conn = pool.get().await.unwrap();
        conn.execute_values("CREATE TABLE t (trial INTEGER)", &[])
            .await
            .unwrap();
    }
    for trial in 0..1_000i64 {
        {
            let mut conn = pool.get().await.unwrap();
            assert!(
                !conn.in_transaction(),
                "trial {trial}: handed out inside a transaction"
            );
            assert!(
                !sqlite_in_transaction(&conn).await,
                "trial {trial}: SQLite says a transaction is open"
            );
            match trial % 3 {
                // A raw BEGIN through the guard, then the guard is dropped.
                0 => {
                    conn.begin().await.unwrap();
                    conn.execute_values("INSERT INTO t VALUES ($1)", &[trial.into()])
                        .await
                        .unwrap();
                }
                // The transaction helper's future is dropped while its body
                // waits forever after writing.
                1 => {
                    let fut = transaction(&mut *conn, RetryPolicy::default(), move |tx| {
                        Box::pin(async move {
                            tx.execute_values("INSERT INTO t VALUES ($1)", &[trial.into()])
                                .await?;
                            std::future::pending::<Result<(), _>>().await
                        })
                    });
                    let _ = tokio::time::timeout(Duration::from_millis(2), fut).await;
                }
                // The helper's future is dropped after a varying number of
                // polls: before BEGIN is sent, with a call in flight on the
                // connection's thread, or between statements.
                _ => {
                    let fut = transaction(&mut *conn, RetryPolicy::default(), move |tx| {
                        Box::pin(async move {
                            tx.execute_values("INSERT INTO t VALUES ($1)", &[trial.into()])
                                .await?;
                            tx.execute_values("INSERT INTO t VALUES ($1)", &[trial.into()])
                                .await?;
                            std::future::pending::<Result<(), _>>().await
                        })
                    });
                    tokio::pin!(fut);
                    for _ in 0..(trial % 11) {
                        tokio::select! {
                            biased;
                            _ = &mut fut => unreachable!("the body never finishes"),
                            _ = tokio::task::yield_now() => {}
                        }
                    }
                }
            }
        }
    }
    let mut conn = pool.get().await.unwrap();
    assert!(!sqlite_in_transaction(&conn).await);
    let row = conn
        .query_one_values("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get(0),
        Some(&Value::Int(0)),
        "every abandoned transaction was rolled back"
    );
}

#[tokio::test]
async fn a_connection_whose_call_panicked_is_discarded_not_reused() {
    let pool = pool_of_one("sqlite::memory:").await;
    let first_id = {
        let conn = pool.get().await.unwrap();
        let id = Pooled::id(&conn);
        let panicked = tokio::spawn(async move {
            conn.call(|_c| -> Result<(), tidepool_sqlite::rusqlite::Error> { panic!("boom") })
                .await
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
        id
    };
    let mut conn = pool.get().await.unwrap();
    assert_ne!(Pooled::id(&conn), first_id);
    assert!(Pooled::is_new(&conn));
    assert_eq!(
        conn.query_one_values("SELECT 1", &[]).await.unwrap().get(0),
        Some(&Value::Int(1))
    );
}

#[tokio::test]
async fn an_in_memory_pool_shares_one_database_that_outlives_every_discarded_connection() {
    let pool = Pool::builder(SqliteManager::from_url("sqlite::memory:").unwrap())
        .max_size(4)
        .build()
        .await
        .unwrap();
    let mut a = pool.get().await.unwrap();
    let mut b = pool.get().await.unwrap();
    a.execute_values("CREATE TABLE p (x INTEGER)", &[])
        .await
        .unwrap();
    b.execute_values("INSERT INTO p VALUES (1)", &[])
        .await
        .unwrap();
    drop(a);
    // Discard both connections: the database lives on with the manager.
    Pooled::mark_broken(&mut b);
    drop(b);
    let mut c = pool.get().await.unwrap();
    assert_eq!(
        c.query_one_values("SELECT count(*) FROM p", &[])
            .await
            .unwrap()
            .get(0),
        Some(&Value::Int(1))
    );
}
