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
        (
            m.validations,
            plan.validations.load(std::sync::atomic::Ordering::SeqCst)
        ),
        (0, 0),
        "no connection was quiet for 100 ms, yet {} of {} checkouts were validated",
        m.validations,
        m.checkouts
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkout_cancelled_mid_validation_leaves_its_healthy_connection_in_the_pool() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(1)
        .initial_size(1)
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    *plan.validate.lock() = common::Behavior::Slow(Duration::from_millis(50));
    let cancelled = tokio::time::timeout(Duration::from_millis(10), pool.get()).await;
    assert!(cancelled.is_err(), "the caller gave up mid-validation");
    tokio::time::sleep(Duration::from_millis(100)).await;
    common::settle().await;
    let m = pool.metrics();
    assert_eq!(m.connections_closed_failed_validation, 0, "{m:?}");
    assert_eq!((pool.status().idle, plan.alive()), (1, 1));
    assert_eq!(plan.connects.load(std::sync::atomic::Ordering::SeqCst), 1);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_client_timeouts_during_validation_opens_no_new_connections() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(4)
        .initial_size(4)
        .validation_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    *plan.validate.lock() = common::Behavior::Slow(Duration::from_millis(5));
    let tasks: Vec<_> = (0..2000u64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                // Every third caller gives up after a moment, often while
                // its connection is being checked.
                let patience = Duration::from_millis(if i.is_multiple_of(3) { 3 } else { 60_000 });
                if let Ok(Ok(conn)) = tokio::time::timeout(patience, pool.get()).await {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    drop(conn);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    common::settle().await;
    let m = pool.metrics();
    assert_eq!(m.connections_closed_failed_validation, 0, "{m:?}");
    assert_eq!(
        plan.connects.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "no reconnects"
    );
    assert_eq!(pool.status().size, 4);
    common::assert_consistent(&pool);
}
