//! `Builder::after_connect` runs on every new connection before anyone
//! uses it; an error in it fails the attempt with its cause.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{FakeError, TestManager};
use tidepool::{Error, Pool};

#[tokio::test]
async fn the_hook_runs_once_on_each_new_connection_before_it_is_handed_out() {
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    let pool = Pool::builder(TestManager::new())
        .max_size(3)
        .after_connect(move |conn| {
            let counted = counted.clone();
            Box::pin(async move {
                counted.fetch_add(1, SeqCst);
                conn.dirty = true; // visible to the borrower: it ran first
                Ok(())
            })
        })
        .build()
        .await
        .unwrap();
    let a = pool.get().await.unwrap();
    let b = pool.get().await.unwrap();
    assert!(a.dirty && b.dirty);
    assert_eq!(runs.load(SeqCst), 2);
    drop((a, b));
    common::settle().await;
    let _again = pool.get().await.unwrap();
    assert_eq!(
        runs.load(SeqCst),
        2,
        "a reused connection is not hooked again"
    );
}

#[tokio::test]
async fn a_failing_hook_fails_the_attempt_and_leaks_nothing() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(2)
        .acquire_timeout(Duration::from_millis(500))
        .max_retries(0)
        .after_connect(|_conn| Box::pin(async { Err(FakeError::Fatal) }))
        .build()
        .await
        .unwrap();
    match pool.get().await {
        Err(Error::Create(FakeError::Fatal)) => {}
        other => panic!("expected the hook's error, got {other:?}"),
    }
    common::settle().await;
    assert_eq!(
        plan.alive(),
        0,
        "the connection the hook refused was closed"
    );
    common::assert_consistent(&pool);
}
