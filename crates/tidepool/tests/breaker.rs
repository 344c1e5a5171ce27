//! The circuit breaker wired into the pool: a dead database makes acquires
//! fail fast with the real cause, attempts are rate-limited, a degraded
//! pool opens connections one at a time, a caller's mistakes never count,
//! and the first acquire after the database is back succeeds.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{Behavior, TestManager};
use tidepool::{BreakerState, Error, FailureKind, Pool};
use tokio::time::Instant;

fn pool(manager: TestManager) -> Pool<TestManager> {
    Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(1))
        .max_retries(0)
        .build_lazy()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_dead_database_opens_the_circuit_and_acquires_fail_fast_with_the_cause() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = pool(manager);
    // Until the circuit opens every get fails well before its 1 s timeout:
    // with the cause while healthy, riding out the trouble while degraded,
    // then with CircuitOpen as soon as the circuit opens.
    let driving = Instant::now();
    while pool.breaker_state() != BreakerState::Failed {
        let started = Instant::now();
        match pool.get().await {
            Err(Error::Create(_) | Error::CircuitOpen { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert!(
            driving.elapsed() < Duration::from_secs(2),
            "the circuit never opened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = plan.connects.load(SeqCst);
    let started = Instant::now();
    for _ in 0..1000 {
        match pool.get().await {
            Err(Error::CircuitOpen {
                retry_after,
                last_error: Some(cause),
            }) => {
                assert!(retry_after <= Duration::from_millis(250));
                assert!(cause.contains("fake connect failure"), "{cause}");
            }
            other => panic!("expected a fast CircuitOpen, got {other:?}"),
        }
    }
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "an open circuit answers without waiting"
    );
    assert_eq!(
        plan.connects.load(SeqCst),
        attempts,
        "no connection attempts while open"
    );
    let snapshot = pool.metrics().breaker.unwrap();
    assert_eq!(snapshot.state, BreakerState::Failed);
    assert_eq!(snapshot.times_opened, 1);
}

#[tokio::test(start_paused = true)]
async fn while_the_database_is_down_attempts_stay_at_a_few_per_second() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .min_size(5)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    // Fifty callers hammering a dead database for a minute.
    for t in hammer(&pool, 50, Duration::from_secs(60)) {
        t.await.unwrap();
    }
    let attempts = plan.connects.load(SeqCst);
    assert!(attempts <= 60 * 2, "{attempts} connection attempts in 60 s");
}

#[tokio::test(start_paused = true)]
async fn once_the_circuit_is_open_each_probe_round_makes_one_attempt() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(1))
        .build_lazy()
        .unwrap();
    let tasks = hammer(&pool, 50, Duration::from_secs(15));
    let opened_by = Instant::now() + Duration::from_secs(5);
    while pool.breaker_state() != tidepool::BreakerState::Failed {
        assert!(Instant::now() < opened_by, "the circuit never opened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Attempts that queued behind the gate while the pool was degraded
    // must not drain into the dead database now; only probes try it.
    let at_open = plan.connects.load(SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = plan.connects.load(SeqCst) - at_open;
    // Probe rounds after 250 ms, 500 ms, then every second: 11 in 10 s.
    assert!(during <= 12, "{during} attempts in 10 s of open circuit");
    for t in tasks {
        t.await.unwrap();
    }
}

/// `callers` tasks acquiring in a loop for `how_long`, pausing 10 ms after
/// each failure.
fn hammer(
    pool: &Pool<TestManager>,
    callers: usize,
    how_long: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..callers)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let until = Instant::now() + how_long;
                while Instant::now() < until {
                    if pool.get().await.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_acquire_after_the_database_returns_succeeds_once_the_circuit_probes() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = pool(manager);
    for _ in 0..6 {
        let _ = pool.get().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.breaker_state(), BreakerState::Failed);
    *plan.create.lock() = Behavior::Ok;
    let retry_after = match pool.get().await {
        Err(Error::CircuitOpen { retry_after, .. }) => retry_after,
        other => panic!("expected CircuitOpen, got {other:?}"),
    };
    tokio::time::sleep(retry_after).await;
    pool.get().await.expect("the probe acquire succeeds");
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    pool.get().await.expect("and so does everything after");
}

#[tokio::test(start_paused = true)]
async fn a_degraded_pool_opens_connections_one_at_a_time() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = pool(manager);
    for _ in 0..3 {
        pool.report_failure(FailureKind::Connect, &"connection reset by peer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.breaker_state(), BreakerState::Degraded);
    // Degraded heals once failures stop for a while; keep it degraded
    // while the connections open.
    pool.report_failure(FailureKind::Connect, &"connection reset by peer");
    *plan.create.lock() = Behavior::Slow(Duration::from_millis(50));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move { pool.get().await.map(drop) }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        plan.most_connecting.load(SeqCst),
        1,
        "attempts overlapped while degraded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_callers_bad_sql_never_counts_against_the_database() {
    let pool = pool(TestManager::new());
    for _ in 0..10_000 {
        pool.report_failure(FailureKind::Client, &"syntax error at or near \"SELEC\"");
    }
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    assert!(pool.get().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn with_the_breaker_off_a_dead_database_costs_each_caller_its_timeout() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Never;
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(100))
        .circuit_breaker(tidepool::BreakerConfig::disabled())
        .build_lazy()
        .unwrap();
    for _ in 0..20 {
        let started = Instant::now();
        assert!(matches!(pool.get().await, Err(Error::Timeout { .. })));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_opens_the_circuit_at_once_so_callers_stop_making_attempts() {
    let manager = TestManager::new();
    manager.plan.fatal.store(true, SeqCst);
    let plan = manager.plan.clone();
    let pool = pool(manager);
    assert!(matches!(pool.get().await, Err(Error::Create(_))));
    assert_eq!(pool.breaker_state(), BreakerState::Failed);
    for _ in 0..100 {
        match pool.get().await {
            Err(Error::CircuitOpen {
                last_error: Some(cause),
                ..
            }) => assert!(cause.contains("wrong password")),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(plan.connects.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_momentary_reset_of_every_connection_does_not_open_the_circuit() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = pool(manager);
    // Ten callers reconnect at once into a 20 ms blip.
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(drop) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    *plan.create.lock() = Behavior::Ok;
    let mut failed = 0;
    for c in callers {
        failed += usize::from(c.await.unwrap().is_err());
    }
    // Only callers whose attempt failed while the breaker was still
    // healthy (no retries here) see the blip; once degraded, the rest ride
    // it out in the queue and are served after it.
    assert!(failed <= 2, "{failed} callers saw a 20 ms blip");
    assert_ne!(
        pool.breaker_state(),
        BreakerState::Failed,
        "a blip is not an outage"
    );
    pool.get().await.expect("served at once after the blip");
}

fn holding_pool(manager: TestManager) -> Pool<TestManager> {
    let mut breaker = tidepool::BreakerConfig::default();
    breaker.hold_while_open = true;
    Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(2))
        .max_retries(0)
        .circuit_breaker(breaker)
        .build_lazy()
        .unwrap()
}

/// Six connection failures 100 ms apart, as the driver would report them.
async fn open_the_circuit(pool: &Pool<TestManager>) {
    for _ in 0..6 {
        pool.report_failure(FailureKind::Connect, &"fake connect failure: refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.breaker_state(), BreakerState::Failed);
}

#[tokio::test(start_paused = true)]
async fn holding_callers_are_served_when_a_probe_finds_the_database_back_without_attempts_of_their_own(
) {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = holding_pool(manager);
    open_the_circuit(&pool).await;
    let before = plan.connects.load(SeqCst);
    let started = Instant::now();
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.get().await.map(drop) })
        })
        .collect();
    // Down for another 1.5 s: the callers wait, only probes touch the
    // database (the recovery timeout backs off 250 ms → 500 ms → 1 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let probes = plan.connects.load(SeqCst) - before;
    assert!(
        (1..=9).contains(&probes),
        "{probes} attempts while 50 callers were held"
    );
    *plan.create.lock() = Behavior::Ok;
    for c in callers {
        c.await
            .unwrap()
            .expect("a held caller is served once the database is back");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(pool.breaker_state(), BreakerState::Healthy);
    assert_eq!(pool.metrics().acquires_held_while_open, 50);
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_held_caller_gives_up_at_its_timeout_with_the_cause() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let pool = holding_pool(manager);
    open_the_circuit(&pool).await;
    let started = Instant::now();
    match pool.get().await {
        Err(Error::CircuitOpen {
            last_error: Some(cause),
            ..
        }) => assert!(cause.contains("fake connect failure"), "{cause}"),
        other => panic!("expected CircuitOpen after holding, got {other:?}"),
    }
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "held for exactly its acquire_timeout"
    );
    common::assert_consistent(&pool);
}

#[tokio::test(start_paused = true)]
async fn a_held_caller_that_is_cancelled_leaves_nothing_behind() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = holding_pool(manager);
    open_the_circuit(&pool).await;
    let held = tokio::time::timeout(Duration::from_millis(100), pool.get()).await;
    assert!(held.is_err(), "still held when cancelled");
    *plan.create.lock() = Behavior::Ok;
    tokio::time::sleep(Duration::from_secs(1)).await;
    pool.get()
        .await
        .expect("the pool serves after the database returns");
    common::assert_consistent(&pool);
}

/// Callers arriving every 10 ms while, for 600 ms, every connection attempt
/// fails — with the given failure — then succeeds. Returns what the
/// callers got and how often the circuit opened.
async fn through_a_600_ms_refusal(restarting: bool) -> (Vec<Result<(), String>>, u64) {
    let manager = TestManager::new();
    if restarting {
        manager.plan.restarting.store(true, SeqCst);
    } else {
        *manager.plan.create.lock() = Behavior::Err;
    }
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(10)
        .acquire_timeout(Duration::from_secs(2))
        .build_lazy()
        .unwrap();
    let callers: Vec<_> = (0..60u64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                pool.get().await.map(drop).map_err(|e| e.to_string())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    plan.restarting.store(false, SeqCst);
    *plan.create.lock() = Behavior::Ok;
    let mut outcomes = Vec::new();
    for c in callers {
        outcomes.push(c.await.unwrap());
    }
    let opened = pool.metrics().breaker.map_or(0, |b| b.times_opened);
    (outcomes, opened)
}

#[tokio::test(start_paused = true)]
async fn callers_wait_out_a_server_that_says_it_is_restarting_instead_of_failing_fast() {
    let (outcomes, times_opened) = through_a_600_ms_refusal(true).await;
    assert_eq!(times_opened, 0, "the circuit opened during a restart");
    let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} callers failed: {failed:?}",
        failed.len()
    );
}

/// The same refusal without the restart signal is an outage: the circuit
/// opens and callers fail fast (what the test above is measured against).
#[tokio::test(start_paused = true)]
async fn the_same_refusal_without_the_restart_signal_opens_the_circuit() {
    let (outcomes, times_opened) = through_a_600_ms_refusal(false).await;
    assert!(times_opened >= 1);
    assert!(
        outcomes
            .iter()
            .any(|o| o.as_ref().is_err_and(|e| e.contains("circuit open"))),
        "{outcomes:?}"
    );
}
