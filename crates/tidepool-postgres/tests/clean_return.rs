//! The next borrower is never inside a transaction, whatever way the last
//! one left a transaction open: the helper's future dropped mid-way, a raw
//! BEGIN, an aborted transaction, a query future dropped mid-flight. Each
//! runs 1,000 trials on a pool of one connection, so every trial reuses the
//! connection the previous one dirtied, and checks with
//! `now() = statement_timestamp()` (false inside a transaction) — and that
//! the connection was reset, not replaced.

use std::sync::Arc;

use tidepool::{transaction, Pool, Pooled, Queryable, RetryPolicy, Value};
use tidepool_postgres::{tokio_postgres, PgManager, ResetPolicy};
use tokio::sync::Notify;

mod support;

const TRIALS: usize = 1_000;

/// Borrows the connection, checks it is outside any transaction, and
/// returns it with its id.
async fn borrow_clean(pool: &Pool<PgManager>) -> Pooled<PgManager> {
    let conn = pool.get().await.unwrap();
    // The simple protocol, so the statement and its implicit transaction
    // start together (the extended protocol's Bind and Execute differ).
    let messages = conn
        .simple_query("SELECT now() = statement_timestamp()")
        .await
        .unwrap();
    let clean = messages.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(
        clean.as_deref(),
        Some("t"),
        "the borrower is inside a transaction"
    );
    assert!(!conn.in_transaction());
    conn
}

async fn run_trials<F>(test: &str, mut leave_dirty: F)
where
    F: for<'a> FnMut(&'a mut Pooled<PgManager>, usize) -> tidepool::BoxFuture<'a, ()>,
{
    let Some(url) = support::url(test) else {
        return;
    };
    let pool = support::pool(&support::plain(&url), 1, ResetPolicy::Fast).await;
    let first = Pooled::id(&borrow_clean(&pool).await);
    for trial in 0..TRIALS {
        let mut conn = borrow_clean(&pool).await;
        assert_eq!(
            Pooled::id(&conn),
            first,
            "trial {trial}: the connection was replaced, not reset"
        );
        leave_dirty(&mut conn, trial).await;
    }
    let last = borrow_clean(&pool).await;
    assert_eq!(Pooled::id(&last), first);
}

#[tokio::test]
async fn the_next_borrower_is_clean_after_the_transaction_helper_is_dropped_mid_way() {
    run_trials("clean_after_dropped_helper", |conn, _| {
        Box::pin(async move {
            let reached = Arc::new(Notify::new());
            let signal = reached.clone();
            let helper = transaction(&mut **conn, RetryPolicy::none(), move |tx| {
                let signal = signal.clone();
                Box::pin(async move {
                    tx.execute_values("SELECT 1", &[]).await?;
                    signal.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                })
            });
            tokio::select! {
                biased;
                _ = helper => panic!("the body never finishes"),
                _ = reached.notified() => {}
            }
            assert!(conn.in_transaction());
        })
    })
    .await;
}

#[tokio::test]
async fn the_next_borrower_is_clean_after_a_raw_begin() {
    run_trials("clean_after_raw_begin", |conn, trial| {
        Box::pin(async move {
            match trial % 4 {
                0 => drop(conn.execute_values("BEGIN", &[]).await.unwrap()),
                1 => conn
                    .batch_execute("SELECT 1; START TRANSACTION; SELECT 2")
                    .await
                    .unwrap(),
                2 => drop(
                    conn.execute_native("begin isolation level repeatable read", &[])
                        .await
                        .unwrap(),
                ),
                // Through the native client, which the wrapper cannot see.
                _ => conn.client().batch_execute("BEGIN").await.unwrap(),
            }
        })
    })
    .await;
}

#[tokio::test]
async fn the_next_borrower_is_clean_after_an_aborted_transaction() {
    run_trials("clean_after_aborted_tx", |conn, _| {
        Box::pin(async move {
            conn.begin().await.unwrap();
            let err = conn.execute_values("SELECT 1 / 0", &[]).await.unwrap_err();
            assert_eq!(err.sqlstate(), Some("22012"));
            assert_eq!(conn.tx_state(), tidepool_postgres::TxState::Failed);
        })
    })
    .await;
}

#[tokio::test]
async fn the_next_borrower_is_clean_after_a_query_future_is_dropped_mid_flight() {
    run_trials("clean_after_dropped_query", |conn, trial| {
        Box::pin(async move {
            // Prepared once, so each trial's single poll sends the execution.
            conn.execute_values("SELECT pg_sleep($1)", &[Value::Float(0.0)])
                .await
                .unwrap();
            if trial.is_multiple_of(2) {
                conn.begin().await.unwrap();
            }
            let sleeping = conn.execute_values("SELECT pg_sleep($1)", &[Value::Float(30.0)]);
            tokio::select! {
                biased;
                _ = sleeping => panic!("a 30 s sleep finished"),
                _ = std::future::ready(()) => {}
            }
            assert!(conn.has_query_in_flight());
        })
    })
    .await;
}
