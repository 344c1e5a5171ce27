//! Through the pool: the next borrower is never inside a transaction, by
//! the server's own `@@in_transaction`, however the last one left it.

use std::time::Duration;

use tidepool::{transaction, Pooled, Queryable, RetryPolicy, Value};
use tidepool_mysql::ResetPolicy;

mod support;

#[tokio::test]
async fn the_next_borrower_is_never_inside_a_transaction_1000_trials() {
    use tidepool_mysql::mysql_async::prelude::Queryable as _;
    let Some(url) = support::url("mysql_clean_returns") else {
        return;
    };
    let mut setup = support::connect(&url).await;
    support::fresh_table(&mut setup, "tp_my_clean", "trial INT").await;
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    for trial in 0..1_000i64 {
        let mut conn = pool.get().await.unwrap();
        assert!(
            !conn.in_transaction(),
            "trial {trial}: tracked state says in transaction"
        );
        assert!(
            !support::server_in_transaction(&mut conn).await,
            "trial {trial}: @@in_transaction = 1"
        );
        match trial % 4 {
            // BEGIN through the uniform face, then the guard is dropped.
            0 => {
                conn.begin().await.unwrap();
                conn.execute_values("INSERT INTO tp_my_clean VALUES ($1)", &[trial.into()])
                    .await
                    .unwrap();
            }
            // Raw START TRANSACTION through native access.
            1 => {
                conn.query_drop("START TRANSACTION").await.unwrap();
                conn.exec_drop("INSERT INTO tp_my_clean VALUES (?)", (trial,))
                    .await
                    .unwrap();
            }
            // The transaction helper's future is dropped while its body
            // waits after writing.
            2 => {
                let fut = transaction(&mut *conn, RetryPolicy::default(), move |tx| {
                    Box::pin(async move {
                        tx.execute_values("INSERT INTO tp_my_clean VALUES ($1)", &[trial.into()])
                            .await?;
                        std::future::pending::<Result<(), _>>().await
                    })
                });
                let _ = tokio::time::timeout(Duration::from_millis(5), fut).await;
            }
            // Dropped after a varying number of polls: before BEGIN, with a
            // query in flight (the connection is then discarded), or
            // between statements.
            _ => {
                let fut = transaction(&mut *conn, RetryPolicy::default(), move |tx| {
                    Box::pin(async move {
                        tx.execute_values("INSERT INTO tp_my_clean VALUES ($1)", &[trial.into()])
                            .await?;
                        tx.execute_values("INSERT INTO tp_my_clean VALUES ($1)", &[trial.into()])
                            .await?;
                        std::future::pending::<Result<(), _>>().await
                    })
                });
                tokio::pin!(fut);
                for _ in 0..(trial % 13) {
                    tokio::select! {
                        biased;
                        _ = &mut fut => unreachable!("the body never finishes"),
                        _ = tokio::task::yield_now() => {}
                    }
                }
            }
        }
    }
    let row = setup
        .query_one_values("SELECT count(*) FROM tp_my_clean", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get(0),
        Some(&Value::Int(0)),
        "every abandoned transaction was rolled back"
    );
    setup
        .execute_values("DROP TABLE tp_my_clean", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_returned_with_a_query_in_flight_is_discarded() {
    let Some(url) = support::url("mysql_in_flight") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let first = {
        let mut conn = pool.get().await.unwrap();
        let id = Pooled::id(&conn);
        let slow = conn.query_values("SELECT SLEEP(5)", &[]);
        assert!(tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err());
        assert!(conn.has_query_in_flight());
        id
    };
    let mut conn = pool.get().await.unwrap();
    assert_ne!(
        Pooled::id(&conn),
        first,
        "the dirty connection was not reused"
    );
    assert_eq!(
        conn.query_one_values("SELECT 1", &[]).await.unwrap().get(0),
        Some(&Value::Int(1))
    );
}

#[tokio::test]
async fn a_native_transaction_left_open_after_a_failed_statement_is_rolled_back() {
    use tidepool_mysql::mysql_async::prelude::Queryable as _;
    let Some(url) = support::url("mysql_native_failed") else {
        return;
    };
    let pool = support::pool(&url, 1, ResetPolicy::Fast).await;
    let id = {
        let mut conn = pool.get().await.unwrap();
        conn.query_drop("START TRANSACTION").await.unwrap();
        // The error clears the server's last status flags on the client side.
        assert!(conn.query_drop("SELEC 1").await.is_err());
        assert!(conn.maybe_in_transaction());
        Pooled::id(&conn)
    };
    let mut conn = pool.get().await.unwrap();
    assert_eq!(Pooled::id(&conn), id);
    assert!(!support::server_in_transaction(&mut conn).await);
}
