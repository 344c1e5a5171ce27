//! Connections are opened in tasks of their own, for the queue rather than
//! for one caller: an attempt outlives a caller that gives up and serves
//! whoever waits when it is ready, and a database that has gone silent sees
//! at most `max_size` attempts per `connect_timeout`, however many callers
//! come and go.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{assert_consistent, settle, Behavior, TestManager};
use tidepool::{BreakerConfig, Error, Pool, Pooled};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_connection_still_opening_when_its_caller_gives_up_serves_the_next_caller() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Slow(Duration::from_millis(300));
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    assert!(matches!(pool.get().await, Err(Error::Timeout { .. })));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let started = Instant::now();
    let conn = pool
        .get()
        .await
        .expect("the attempt the first caller started");
    assert!(
        started.elapsed() <= Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(Pooled::is_new(&conn), "never handed out before");
    assert_eq!(
        plan.connects.load(SeqCst),
        1,
        "no second attempt was needed"
    );
    drop(conn);
    settle().await;
    assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_silent_database_sees_at_most_max_size_attempts_per_connect_timeout() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Never;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(5)
        .acquire_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(0)
        // Without the breaker, so the bound is the pool's own.
        .circuit_breaker(BreakerConfig::disabled())
        .build_lazy()
        .unwrap();
    // A caller every 10 ms for 4 s, each giving up after 300 ms.
    let mut callers = Vec::new();
    for _ in 0..400 {
        let pool = pool.clone();
        callers.push(tokio::spawn(async move { pool.get().await.map(drop) }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for c in callers {
        assert!(c.await.unwrap().is_err());
    }
    let attempts = plan.connects.load(SeqCst);
    assert!(
        attempts <= 5 * 5,
        "{attempts} attempts in 4 s from a pool of 5 with a 1 s connect timeout"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    let s = pool.status();
    assert_eq!((s.size, s.waiting), (0, 0), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn an_attempt_still_in_flight_when_the_pool_is_dropped_closes_what_it_opens() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Slow(Duration::from_millis(300));
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    assert!(
        pool.get().await.is_err(),
        "gave up before the connect ended"
    );
    drop(pool);
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle().await;
    assert_eq!(plan.connects.load(SeqCst), 1);
    assert_eq!(plan.alive(), 0, "the late connection outlived its pool");
}
