//! Transactions through `tidepool::transaction` and the raw verbs: commit on
//! Ok, roll back on Err, retry SQLITE_BUSY, and the tracked state follows.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{transaction, Manager, Queryable, RetryPolicy, Value};
use tidepool_sqlite::{SqliteError, SqliteManager};

async fn setup() -> (SqliteManager, tidepool_sqlite::SqliteConnection) {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))",
        &[],
    )
    .await
    .unwrap();
    conn.execute_values("INSERT INTO acct VALUES (1, 100), (2, 0)", &[])
        .await
        .unwrap();
    (manager, conn)
}

async fn balances(conn: &mut tidepool_sqlite::SqliteConnection) -> Vec<i64> {
    conn.query_values("SELECT balance FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0).and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test]
async fn a_transaction_body_that_returns_ok_is_committed() {
    let (_m, mut conn) = setup().await;
    let moved = transaction(&mut conn, RetryPolicy::default(), |tx| {
        Box::pin(async move {
            tx.execute_values(
                "UPDATE acct SET balance = balance - 10 WHERE id = $1",
                &[1.into()],
            )
            .await?;
            tx.execute_values(
                "UPDATE acct SET balance = balance + 10 WHERE id = $1",
                &[2.into()],
            )
            .await
        })
    })
    .await
    .unwrap();
    assert_eq!(moved, 1);
    assert!(!conn.in_transaction());
    assert_eq!(balances(&mut conn).await, [90, 10]);
}

#[tokio::test]
async fn a_transaction_body_that_fails_is_rolled_back() {
    let (_m, mut conn) = setup().await;
    let err = transaction(&mut conn, RetryPolicy::default(), |tx| {
        Box::pin(async move {
            tx.execute_values("UPDATE acct SET balance = balance + 500 WHERE id = 2", &[])
                .await?;
            // Violates the CHECK constraint.
            tx.execute_values("UPDATE acct SET balance = balance - 500 WHERE id = 1", &[])
                .await
        })
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
    assert!(!conn.in_transaction());
    assert_eq!(balances(&mut conn).await, [100, 0]);
}

#[tokio::test]
async fn raw_begin_commit_and_rollback_are_tracked() {
    let (_m, mut conn) = setup().await;
    assert!(!conn.in_transaction());
    conn.begin().await.unwrap();
    assert!(conn.in_transaction());
    conn.execute_values("UPDATE acct SET balance = 0", &[])
        .await
        .unwrap();
    conn.rollback().await.unwrap();
    assert!(!conn.in_transaction());
    assert_eq!(balances(&mut conn).await, [100, 0]);

    // A raw BEGIN through native access is seen as well.
    conn.call(|c| c.execute_batch("BEGIN")).await.unwrap();
    assert!(conn.in_transaction());
    conn.commit().await.unwrap();
    assert!(!conn.in_transaction());
}

#[tokio::test]
async fn a_busy_database_is_retried_by_the_transaction_helper() {
    let dir = tempfile::tempdir().unwrap();
    // busy_timeout=0: a locked database fails at once with SQLITE_BUSY.
    let url = format!(
        "sqlite://{}?busy_timeout=0",
        dir.path().join("busy.db").display()
    );
    let manager = SqliteManager::from_url(&url).unwrap();
    let mut holder = manager.connect().await.unwrap();
    let mut other = manager.connect().await.unwrap();
    holder
        .execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    holder.begin().await.unwrap();
    holder
        .execute_values("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();

    let attempts = Arc::new(AtomicU32::new(0));
    let policy = RetryPolicy {
        max_attempts: 50,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    let counted = Arc::clone(&attempts);
    let writer = tokio::spawn(async move {
        let result: Result<u64, SqliteError> = transaction(&mut other, policy, move |tx| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { tx.execute_values("INSERT INTO t VALUES (2)", &[]).await })
        })
        .await;
        (result, other)
    });
    // Let the writer hit SQLITE_BUSY at least once, then release the lock.
    while attempts.load(Ordering::SeqCst) < 2 && !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    holder.commit().await.unwrap();
    let (result, _other) = writer.await.unwrap();
    assert_eq!(result.unwrap(), 1);
    assert!(attempts.load(Ordering::SeqCst) >= 2);
    let rows = holder
        .query_values("SELECT x FROM t ORDER BY x", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
}
