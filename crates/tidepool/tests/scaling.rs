//! The pool sizes itself: resizing at runtime keeps the queue's order and
//! invariant 1, the warm target follows load on tokio's paused clock,
//! overflow closes after a burst, nothing scales while the circuit is
//! open, and the concurrency limit queues callers past it.

mod common;

use std::time::Duration;

use common::TestManager;
use tidepool::{Pool, ScalingConfig, Strategy};

fn quick(strategy: Strategy) -> ScalingConfig {
    let mut s = ScalingConfig::preset(strategy);
    s.scale_interval = Duration::from_millis(100);
    s.cooldown = Duration::from_secs(2);
    s.overflow_idle_timeout = Some(Duration::from_secs(1));
    s
}

#[tokio::test(start_paused = true)]
async fn resizing_down_while_callers_wait_loses_nobody_and_keeps_their_order() {
    let pool = Pool::builder(TestManager::new())
        .max_size(4)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(pool.get().await.unwrap());
    }
    let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let pool = pool.clone();
            let order = order.clone();
            tokio::spawn(async move {
                let conn = pool.get().await.expect("served within the deadline");
                order.lock().push(i);
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(conn);
            })
        })
        .collect();
    for _ in 0..6 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    pool.resize(0, 2).unwrap();
    assert!(pool.status().size <= 4);
    held.clear();
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*order.lock(), (0..6).collect::<Vec<_>>(), "FIFO kept");
    let s = pool.status();
    assert!(s.size <= 2, "{s:?}");
    assert_eq!(pool.metrics().connections_closed_resized, 2);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn resizing_up_serves_waiters_at_once() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let _held = pool.get().await.unwrap();
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    pool.resize(0, 2).unwrap();
    let served = tokio::time::timeout(Duration::from_millis(50), waiter).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
}

#[tokio::test(start_paused = true)]
async fn bad_bounds_are_refused_naming_the_field() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    let err = pool.resize(5, 2).unwrap_err();
    assert!(err.to_string().contains("min_size"), "{err}");
    let err = pool.resize(0, 0).unwrap_err();
    assert!(err.to_string().contains("max_size"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_warm_target_follows_load_up_then_overflow_closes_and_it_decays_after_the_cooldown() {
    let pool = Pool::builder(TestManager::new())
        .max_size(20)
        .scaling(quick(Strategy::Balanced))
        .build()
        .await
        .unwrap();
    assert_eq!(pool.status().warm_target, 0);
    // 12 callers each holding a connection most of the time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..12)
        .map(|_| {
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let c = pool.get().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    drop(c);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let up = pool.status();
    assert!(up.warm_target >= 12, "warm target grew with demand: {up:?}");
    assert!(pool.metrics().scale_ups > 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    // Within the cooldown the target holds and nothing is reaped below it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = pool.status();
    assert_eq!(held.warm_target, up.warm_target.max(held.warm_target));
    assert!(held.size >= held.warm_target.min(12), "{held:?}");
    // Idle for long past the cooldown: the target decays step by step and
    // the connections above it close as overflow.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let down = pool.status();
    assert!(down.warm_target < held.warm_target, "{down:?}");
    assert!(pool.metrics().scale_downs > 0);
    assert!(pool.metrics().connections_closed_overflow > 0);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn the_warm_target_is_opened_ahead_of_need_by_the_maintenance_task() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(20)
        .scaling(quick(Strategy::Balanced))
        .build()
        .await
        .unwrap();
    let held: Vec<_> = futures_join(&pool, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = pool.status();
    assert!(s.warm_target > 6, "{s:?}");
    assert!(s.size >= s.warm_target, "pre-warmed to the target: {s:?}");
    assert!(plan.connects.load(std::sync::atomic::Ordering::SeqCst) as usize >= s.warm_target);
    drop(held);
}

async fn futures_join(pool: &Pool<TestManager>, n: usize) -> Vec<tidepool::Pooled<TestManager>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(pool.get().await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn nothing_scales_while_the_circuit_is_open() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_millis(200))
        .scaling(quick(Strategy::Dynamic))
        .build()
        .await
        .unwrap();
    *plan.create.lock() = common::Behavior::Err;
    for _ in 0..20 {
        let _ = pool.get().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pool.breaker_state(), tidepool::BreakerState::Failed);
    let before = pool.metrics().scale_ups;
    let target = pool.status().warm_target;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(drop) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in callers {
        let _ = c.await;
    }
    assert_eq!(pool.status().warm_target, target);
    assert_eq!(pool.metrics().scale_ups, before);
}

#[tokio::test(start_paused = true)]
async fn callers_past_the_concurrency_limit_wait_in_the_queue() {
    let mut scaling = quick(Strategy::Fixed);
    scaling.adaptive_limit = true;
    let pool = Pool::builder(TestManager::new())
        .max_size(20)
        .acquire_timeout(Duration::from_millis(300))
        .scaling(scaling)
        .build()
        .await
        .unwrap();
    let limit = pool.status().limit;
    assert!(limit < 20, "the limit starts low (slow start): {limit}");
    let mut held = Vec::new();
    for _ in 0..limit {
        held.push(pool.get().await.unwrap());
    }
    let past = pool.get().await;
    assert!(
        matches!(past, Err(tidepool::Error::Timeout { .. })),
        "{past:?}"
    );
    drop(held);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn load_and_effective_config_report_what_the_pool_sees() {
    let pool = Pool::builder(TestManager::new())
        .max_size(8)
        .scaling(quick(Strategy::Dynamic))
        .build()
        .await
        .unwrap();
    let held = futures_join(&pool, 4).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let load = pool.load();
    assert!(load.busy >= 4.0, "{load:?}");
    assert!(
        load.load_factor >= 0.5 && load.load_factor <= 1.0,
        "{load:?}"
    );
    let eff = pool.effective_config();
    assert_eq!(eff.strategy, Strategy::Dynamic);
    assert_eq!(eff.max_size, 8);
    assert!(eff.limit >= 1 && eff.warm_target <= 8);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn under_the_adaptive_limit_the_warm_target_never_passes_the_limit() {
    let pool = Pool::builder(TestManager::new())
        .max_size(50)
        .acquire_timeout(Duration::from_secs(30))
        .scaling(quick(Strategy::Dynamic))
        .build()
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..40)
        .map(|_| {
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let c = pool.get().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    drop(c);
                }
            })
        })
        .collect();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = pool.status();
        assert!(s.warm_target <= s.limit.max(s.min_size), "{s:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn under_fixed_initial_connections_above_min_size_idle_out_and_are_not_replaced() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(6)
        .initial_size(4)
        .idle_timeout(Some(Duration::from_secs(1)))
        .maintenance_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    assert_eq!(pool.status().warm_target, 0, "initial_size is not a floor");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pool.status().size, 0);
    assert_eq!(plan.connects.load(std::sync::atomic::Ordering::SeqCst), 4);
}
