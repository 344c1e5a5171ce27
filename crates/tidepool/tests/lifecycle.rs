//! Idle reaping, lifetime retirement with jitter, background health
//! checks and topping up to `min_size`, all on tokio's paused clock.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_consistent, settle, Behavior, TestManager};
use parking_lot::Mutex;
use tidepool::{CloseReason, Event, Pool};
use tokio::time::{advance, Instant};

async fn check_out_n(pool: &Pool<TestManager>, n: usize) {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(pool.get().await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn idle_connections_above_min_size_close_after_idle_timeout() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .min_size(1)
        .max_size(5)
        .idle_timeout(Some(Duration::from_secs(10)))
        .health_check_interval(None)
        .build()
        .await
        .unwrap();
    check_out_n(&pool, 5).await;
    assert_eq!(pool.status().idle, 5);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pool.status().idle, 5, "reaped too early");
    tokio::time::sleep(Duration::from_secs(7)).await;
    settle().await;
    assert_eq!(pool.status().size, 1);
    assert_eq!(pool.metrics().connections_closed_idle_timeout, 4);
    assert_eq!(plan.alive(), 1);
    assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn connections_born_together_retire_spread_over_the_jitter_window() {
    let closed_at = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let sink = closed_at.clone();
    let pool = Pool::builder(TestManager::new())
        .max_size(100)
        .max_lifetime(Some(Duration::from_secs(100)))
        .max_lifetime_jitter(0.2)
        .idle_timeout(None)
        .health_check_interval(None)
        .on_event(move |e| {
            if let Event::Closed {
                reason: CloseReason::MaxLifetime,
                ..
            } = e
            {
                sink.lock().push(start.elapsed());
            }
        })
        .build()
        .await
        .unwrap();
    check_out_n(&pool, 100).await;
    tokio::time::sleep(Duration::from_secs(102)).await;
    let closed = closed_at.lock().clone();
    assert_eq!(
        closed.len(),
        100,
        "every connection retires within max_lifetime (+1 tick)"
    );
    let first = closed.iter().min().copied().unwrap();
    let last = closed.iter().max().copied().unwrap();
    assert!(
        first >= Duration::from_secs(80),
        "retired before the window: {first:?}"
    );
    assert!(
        last - first >= Duration::from_secs(10),
        "retirements bunched: {first:?}..{last:?}"
    );
    assert_eq!(pool.status().size, 0);
}

#[tokio::test(start_paused = true)]
async fn an_expired_connection_is_never_handed_out() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .max_lifetime(Some(Duration::from_secs(10)))
        .maintenance_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let first = tidepool::Pooled::id(&pool.get().await.unwrap());
    advance(Duration::from_secs(11)).await;
    let second = pool.get().await.unwrap();
    assert_ne!(tidepool::Pooled::id(&second), first);
    assert_eq!(pool.metrics().connections_closed_max_lifetime, 1);
}

#[tokio::test(start_paused = true)]
async fn quiet_idle_connections_are_pinged_and_dead_ones_replaced() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .min_size(2)
        .max_size(4)
        .initial_size(2)
        .health_check_interval(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    let validations_before = plan.validations.load(SeqCst);
    // Break one idle connection behind the pool's back.
    {
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        a.broken.store(false, SeqCst);
        let flag = b.broken.clone();
        drop((a, b));
        flag.store(true, SeqCst);
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    settle().await;
    assert!(
        plan.validations.load(SeqCst) > validations_before,
        "no background ping ran"
    );
    assert_eq!(pool.metrics().connections_closed_failed_validation, 1);
    // The maintenance tick tops the pool back up to min_size.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.status().size, 2);
    assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_lazy_pool_tops_itself_up_to_min_size() {
    let pool = Pool::builder(TestManager::new())
        .min_size(3)
        .max_size(5)
        .build_lazy()
        .unwrap();
    assert_eq!(pool.status().size, 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pool.status().size, 3);
    assert_eq!(pool.status().idle, 3);
}

#[tokio::test(start_paused = true)]
async fn test_on_borrow_replaces_a_dead_idle_connection_without_an_error() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .validation_interval(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let first = tidepool::Pooled::id(&conn);
    let flag = conn.dead.clone();
    drop(conn);
    flag.store(true, SeqCst);
    advance(Duration::from_secs(2)).await;
    let conn = pool
        .get()
        .await
        .expect("the dead connection should be replaced silently");
    assert_ne!(tidepool::Pooled::id(&conn), first);
    assert_eq!(pool.metrics().connections_closed_failed_validation, 1);
}

#[tokio::test(start_paused = true)]
async fn a_recently_used_connection_is_not_validated_again() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(1)
        .validation_interval(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    for _ in 0..100 {
        drop(pool.get().await.unwrap());
    }
    assert_eq!(plan.validations.load(SeqCst), 0);
    advance(Duration::from_secs(2)).await;
    drop(pool.get().await.unwrap());
    assert_eq!(plan.validations.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dirty_connection_is_reset_before_reuse_and_discarded_if_reset_fails() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager).max_size(1).build().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.dirty = true;
    let id = tidepool::Pooled::id(&conn);
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_eq!(tidepool::Pooled::id(&conn), id);
    assert!(!conn.dirty, "handed out dirty");
    assert_eq!(plan.resets.load(SeqCst), 1);
    drop(conn);

    *plan.reset.lock() = Behavior::Err;
    let mut conn = pool.get().await.unwrap();
    conn.dirty = true;
    drop(conn);
    let conn = pool.get().await.unwrap();
    assert_ne!(
        tidepool::Pooled::id(&conn),
        id,
        "a connection that failed its reset came back"
    );
    assert_eq!(pool.metrics().connections_closed_failed_reset, 1);

    *plan.reset.lock() = Behavior::Never;
    let mut conn = conn;
    conn.dirty = true;
    drop(conn);
    let started = Instant::now();
    let conn = pool.get().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "waited for the reset timeout"
    );
    assert!(!conn.dirty);
    assert_eq!(pool.metrics().connections_closed_failed_reset, 2);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_died_while_idle_is_never_handed_out_even_without_validation() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .test_on_borrow(false)
        .build()
        .await
        .unwrap();
    let conn = pool.get().await.unwrap();
    let first = tidepool::Pooled::id(&conn);
    let flag = conn.broken.clone();
    drop(conn);
    flag.store(true, SeqCst);
    let conn = pool.get().await.unwrap();
    assert_ne!(tidepool::Pooled::id(&conn), first);
    assert_eq!(pool.metrics().connections_closed_broken, 1);
}

#[tokio::test(start_paused = true)]
async fn events_tell_integrations_about_every_checkout_checkin_creation_close_and_timeout() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Slow(Duration::from_millis(7));
    let pool = Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(Duration::from_millis(100))
        .on_event(move |e| {
            let name = match e {
                Event::Checkout { .. } => "checkout",
                Event::Checkin { .. } => "checkin",
                Event::Created { took, .. } => {
                    assert_eq!(*took, Duration::from_millis(7));
                    "created"
                }
                Event::Closed { .. } => "closed",
                Event::Timeout { .. } => "timeout",
                _ => "other",
            };
            sink.lock().push(name);
        })
        .build()
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    assert!(pool.get().await.is_err());
    tidepool::Pooled::mark_broken(&mut conn);
    drop(conn);
    assert_eq!(
        *seen.lock(),
        ["created", "checkout", "timeout", "checkin", "closed"]
    );
}
