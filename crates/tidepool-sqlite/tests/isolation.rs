//! Connections live on their own threads: a slow call on one connection
//! blocks neither another connection nor the async runtime.

use std::sync::mpsc;

use tidepool::{Manager, Queryable, Value};
use tidepool_sqlite::SqliteManager;

#[tokio::test(flavor = "current_thread")]
async fn a_hung_call_on_one_connection_does_not_block_another_connections_queries() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("iso.db").display());
    let manager = SqliteManager::from_url(&url).unwrap();
    let slow = manager.connect().await.unwrap();
    let mut fast = manager.connect().await.unwrap();
    fast.execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();

    // The slow call holds its connection's thread until we release it.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let slow_task = tokio::spawn(async move {
        slow.call(move |c| {
            let _ = started_tx.send(());
            release_rx.recv().ok();
            c.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))
        })
        .await
    });
    started_rx.await.unwrap();

    // On a single-threaded runtime, these only finish if neither the
    // runtime nor this connection is blocked by the hung call.
    for i in 0..20 {
        fast.execute_values("INSERT INTO t VALUES ($1)", &[i.into()])
            .await
            .unwrap();
    }
    let row = fast
        .query_one_values("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get(0), Some(&Value::Int(20)));
    assert!(!slow_task.is_finished());

    release_tx.send(()).unwrap();
    assert_eq!(slow_task.await.unwrap().unwrap(), 7);
}

#[tokio::test(flavor = "current_thread")]
async fn a_long_running_statement_can_be_interrupted_and_the_connection_stays_usable() {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let conn = manager.connect().await.unwrap();
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let call = conn.call(move |c| c.query_row(endless, [], |r| r.get::<_, i64>(0)));
    tokio::pin!(call);
    // An interrupt only reaches a statement that is running, so keep
    // interrupting until the call gives up.
    let err = loop {
        tokio::select! {
            result = &mut call => break result.unwrap_err(),
            _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => conn.interrupt(),
        }
    };
    assert_eq!(
        tidepool::Classify::failure_kind(&err),
        tidepool::FailureKind::Timeout,
        "{err}"
    );
    let n: i64 = conn
        .call(|c| c.query_row("SELECT 1", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(n, 1);
}
