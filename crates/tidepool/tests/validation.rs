//! Test-on-borrow checks only connections that have been quiet: a pool
//! whose every connection is busy, with callers queueing for them, never
//! pays for a validation round trip.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestManager;
use tidepool::Pool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_with_a_queue_validates_nothing_within_the_interval() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(10)
        .validation_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let conn = pool.get().await.unwrap();
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    drop(conn);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let m = pool.metrics();
    assert!(m.checkouts_waited > 100, "the queue was used: {m:?}");
    assert_eq!(
        (m.validations, plan.validations.load(std::sync::atomic::Ordering::SeqCst)),
        (0, 0),
        "no connection was quiet for 100 ms, yet {} of {} checkouts were validated",
        m.validations,
        m.checkouts
    );
}
