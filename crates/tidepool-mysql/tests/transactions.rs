//! Transactions on MariaDB: commit on Ok, roll back on Err, and a real
//! deadlock between two connections is retried by `tidepool::transaction`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{transaction, Classify, Queryable, RetryPolicy, Value};
use tidepool_mysql::MysqlConnection;

mod support;

async fn balances(conn: &mut MysqlConnection, table: &str) -> Vec<i64> {
    conn.query_values(&format!("SELECT balance FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0).and_then(Value::as_i64).unwrap())
        .collect()
}

#[tokio::test]
async fn commit_on_ok_and_rollback_on_err() {
    let Some(url) = support::url("mysql_tx_commit") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    support::fresh_table(
        &mut conn,
        "tp_my_tx",
        "id INT PRIMARY KEY, balance INT NOT NULL",
    )
    .await;
    conn.execute_values("INSERT INTO tp_my_tx VALUES (1, 100), (2, 0)", &[])
        .await
        .unwrap();

    transaction(&mut conn, RetryPolicy::default(), |tx| {
        Box::pin(async move {
            tx.execute_values(
                "UPDATE tp_my_tx SET balance = balance - 10 WHERE id = $1",
                &[1.into()],
            )
            .await?;
            tx.execute_values(
                "UPDATE tp_my_tx SET balance = balance + 10 WHERE id = $1",
                &[2.into()],
            )
            .await
        })
    })
    .await
    .unwrap();
    assert!(!conn.in_transaction());
    assert_eq!(balances(&mut conn, "tp_my_tx").await, [90, 10]);

    let err = transaction(&mut conn, RetryPolicy::default(), |tx| {
        Box::pin(async move {
            tx.execute_values("UPDATE tp_my_tx SET balance = 0 WHERE id = 1", &[])
                .await?;
            tx.execute_values("INSERT INTO tp_my_tx VALUES (2, 0)", &[])
                .await // duplicate key
        })
    })
    .await
    .unwrap_err();
    assert_eq!(err.server_code(), Some(1062));
    assert!(!conn.in_transaction());
    assert!(!support::server_in_transaction(&mut conn).await);
    assert_eq!(balances(&mut conn, "tp_my_tx").await, [90, 10]);
    conn.execute_values("DROP TABLE tp_my_tx", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_raw_begin_is_tracked_from_the_servers_status_flags() {
    use tidepool_mysql::mysql_async::prelude::Queryable as _;
    let Some(url) = support::url("mysql_tx_raw") else {
        return;
    };
    let mut conn = support::connect(&url).await;
    conn.query_drop("START TRANSACTION").await.unwrap();
    assert!(conn.in_transaction(), "a native START TRANSACTION is seen");
    conn.query_drop("COMMIT").await.unwrap();
    assert!(!conn.in_transaction());
    conn.execute_values("BEGIN", &[]).await.unwrap();
    assert!(conn.in_transaction(), "BEGIN through execute is seen");
    conn.rollback().await.unwrap();
    assert!(!conn.in_transaction());
}

#[tokio::test]
async fn a_deadlock_between_two_connections_is_retried_until_both_commit() {
    let Some(url) = support::url("mysql_tx_deadlock") else {
        return;
    };
    let mut setup = support::connect(&url).await;
    support::fresh_table(
        &mut setup,
        "tp_my_deadlock",
        "id INT PRIMARY KEY, balance INT NOT NULL",
    )
    .await;
    setup
        .execute_values("INSERT INTO tp_my_deadlock VALUES (1, 0), (2, 0)", &[])
        .await
        .unwrap();

    // Both sides lock one row, meet at the barrier, then reach for the
    // other's row: InnoDB picks a victim (1213), whose retry then succeeds.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let deadlocks = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for (first, second) in [(1, 2), (2, 1)] {
        let (barrier, attempts, deadlocks) = (barrier.clone(), attempts.clone(), deadlocks.clone());
        let mut conn = support::connect(&url).await;
        tasks.push(tokio::spawn(async move {
            let policy = RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(50),
            };
            let mut my_attempt = 0u32;
            let result = transaction(&mut conn, policy, |tx| {
                my_attempt += 1;
                attempts.fetch_add(1, Ordering::SeqCst);
                let (barrier, deadlocks, meet) =
                    (barrier.clone(), deadlocks.clone(), my_attempt == 1);
                Box::pin(async move {
                    tx.execute_values(
                        "UPDATE tp_my_deadlock SET balance = balance + 1 WHERE id = $1",
                        &[first.into()],
                    )
                    .await?;
                    if meet {
                        barrier.wait().await;
                    }
                    let second = tx
                        .execute_values(
                            "UPDATE tp_my_deadlock SET balance = balance + 1 WHERE id = $1",
                            &[second.into()],
                        )
                        .await;
                    if let Err(e) = &second {
                        if e.server_code() == Some(1213) {
                            assert!(e.is_retryable_transaction());
                            assert_eq!(e.failure_kind(), tidepool::FailureKind::Transaction);
                            deadlocks.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    second
                })
            })
            .await;
            (result, conn)
        }));
    }
    for task in tasks {
        let (result, mut conn) = task.await.unwrap();
        result.unwrap();
        assert!(!conn.in_transaction());
        assert!(!support::server_in_transaction(&mut conn).await);
    }
    assert_eq!(
        deadlocks.load(Ordering::SeqCst),
        1,
        "exactly one side was chosen as the deadlock victim"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "the victim ran twice");
    assert_eq!(balances(&mut setup, "tp_my_deadlock").await, [2, 2]);
    setup
        .execute_values("DROP TABLE tp_my_deadlock", &[])
        .await
        .unwrap();
}
