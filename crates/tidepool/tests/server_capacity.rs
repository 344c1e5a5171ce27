//! A server's connection cap is capacity, not an outage: refusals for lack
//! of room never open the circuit, the pool stops opening past the number
//! it has, callers queue for those within their deadlines, and the pool
//! serves again soon after the server has room.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::TestManager;
use tidepool::{BreakerState, Pool};

#[tokio::test(start_paused = true)]
async fn a_capped_server_under_load_serves_everyone_without_opening_the_circuit() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    plan.capacity.store(3, SeqCst);
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut served = 0;
                for _ in 0..100 {
                    let conn = pool.get().await.expect("served within the deadline");
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    drop(conn);
                    served += 1;
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for t in tasks {
        served += t.await.unwrap();
    }
    assert_eq!(served, 2000);
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    let breaker = pool.metrics().breaker.expect("a breaker snapshot");
    assert_eq!(breaker.last_transition, None, "the breaker never moved");
    assert!(
        breaker.failures_in_window.iter().all(|(_, n)| *n == 0),
        "{breaker:?}"
    );
    let status = pool.status();
    assert_eq!(status.server_ceiling, Some(3), "{status:?}");
    assert_eq!(status.size, 3);
    let m = pool.metrics();
    // The run lasts about 2,000 × 3 ms / 3 connections = 2 s: retries of
    // the ceiling back off (100 ms, 200 ms, … 1.6 s), a handful in all.
    assert!(
        m.connection_attempts_refused_at_capacity <= 8,
        "refusals: {}",
        m.connection_attempts_refused_at_capacity
    );
    assert_eq!(m.connection_attempts_failed, 0);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_pool_shut_out_by_other_clients_serves_within_a_retry_delay_of_them_leaving() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    plan.capacity.store(0, SeqCst);
    let pool = Pool::builder(manager)
        .max_size(4)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let conn = pool.get().await;
            (tokio::time::Instant::now(), conn.is_ok())
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    let left = tokio::time::Instant::now();
    plan.capacity.store(i64::MAX, SeqCst);
    let (served_at, ok) = waiter.await.unwrap();
    assert!(ok);
    let after = served_at - left;
    assert!(
        after <= Duration::from_millis(110),
        "served {after:?} after the server had room"
    );
}

#[tokio::test(start_paused = true)]
async fn the_ceiling_rises_when_the_server_gains_room() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    plan.capacity.store(2, SeqCst);
    let pool = Pool::builder(manager)
        .max_size(6)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let load = |pool: Pool<TestManager>| async move {
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let c = pool.get().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        drop(c);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    };
    load(pool.clone()).await;
    assert_eq!(pool.status().server_ceiling, Some(2));
    plan.capacity.store(i64::MAX, SeqCst);
    load(pool.clone()).await;
    let status = pool.status();
    assert_eq!(status.server_ceiling, None, "{status:?}");
    assert_eq!(status.size, 6);
}

#[tokio::test(start_paused = true)]
async fn a_real_outage_still_opens_the_circuit() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(4)
        .acquire_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    *plan.create.lock() = common::Behavior::Err;
    for _ in 0..10 {
        let _ = pool.get().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.breaker_state(), BreakerState::Failed);
}
