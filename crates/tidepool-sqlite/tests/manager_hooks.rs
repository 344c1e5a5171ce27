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
    conn.execute("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    conn.begin().await.unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    assert!(manager.needs_reset(&conn));
    manager.reset(&mut conn).await.unwrap();
    assert!(!manager.needs_reset(&conn));
    assert!(!conn.in_transaction());
    let row = conn.query_one("SELECT count(*) FROM t", &[]).await.unwrap();
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
