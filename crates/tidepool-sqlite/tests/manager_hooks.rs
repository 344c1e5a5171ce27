//! The manager's hooks one by one: validate, needs_reset, reset, is_broken.

use std::sync::mpsc;

use tidepool::{Manager, Queryable};
use tidepool_sqlite::SqliteManager;

#[tokio::test]
async fn validate_succeeds_on_a_live_connection() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    manager.validate(&mut conn).await.unwrap();
    assert!(!manager.needs_reset(&conn));
    assert!(!manager.is_broken(&conn));
    assert_eq!(manager.describe(), "sqlite::memory:");
}

#[tokio::test]
async fn an_open_transaction_needs_a_reset_that_rolls_it_back() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    conn.begin().await.unwrap();
    conn.execute_values("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    assert!(manager.needs_reset(&conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(!manager.needs_reset(&conn));
    assert!(!conn.in_transaction());
    let row = conn
        .query_one_values("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get(0), Some(&tidepool::Value::Int(0)));
}

#[tokio::test]
async fn an_abandoned_call_still_running_needs_a_reset_that_waits_for_it() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let call = conn.call(move |c| {
            c.execute_batch("BEGIN")?;
            let _ = started_tx.send(());
            release_rx.recv().ok();
            Ok::<_, tidepool_sqlite::rusqlite::Error>(())
        });
        tokio::pin!(call);
        tokio::select! {
            _ = &mut call => panic!("the call cannot finish before release"),
            _ = started_rx => {}
        }
        // The caller gives up: the future is dropped here.
    }
    assert!(conn.has_calls_in_flight());
    assert!(manager.needs_reset(&conn));
    {
        let reset = manager.reset(&mut conn);
        tokio::pin!(reset);
        tokio::select! {
            biased;
            _ = &mut reset => panic!("reset finished while the abandoned call still ran"),
            _ = tokio::task::yield_now() => {}
        }
        release_tx.send(()).unwrap();
        reset.await.unwrap();
    }
    assert!(!manager.needs_reset(&conn));
    assert!(
        !conn.in_transaction(),
        "the abandoned call's BEGIN was rolled back"
    );
}

/// `needs_reset` reads two facts the connection's thread writes one after
/// the other (the transaction state, then "this call is done"). Read in the
/// wrong order, a call finishing between the two reads slips through: the
/// state read before the call opened a transaction, the count read after it
/// finished. Each round abandons a BEGIN and asks `needs_reset` over and
/// over while it runs, so the call finishes in the middle of some asking;
/// from the moment BEGIN is sent the answer must stay "yes".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_reset_never_misses_a_transaction_opened_while_it_was_looking() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    for round in 0..2_000 {
        {
            let call = conn.call(|c| c.execute_batch("BEGIN"));
            // One poll sends the call; dropping the future abandons it.
            poll_once(call).await;
        }
        while conn.has_calls_in_flight() {
            assert!(
                manager.needs_reset(&conn),
                "round {round}: needs_reset said clean while a BEGIN was finishing"
            );
        }
        assert!(
            manager.needs_reset(&conn),
            "round {round}: BEGIN left a transaction"
        );
        manager.reset(&mut conn).await.unwrap();
    }
}

/// Polls `fut` once, then drops it.
async fn poll_once<F: std::future::Future>(fut: F) {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
}
