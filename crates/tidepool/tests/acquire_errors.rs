//! Every acquire ends within `acquire_timeout` with a connection or a
//! typed error, and a cause that retrying cannot fix arrives at once.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{assert_consistent, settle, Behavior, FakeError, TestManager};
use tidepool::{BuildError, Error, Pool};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn an_acquire_on_an_exhausted_pool_times_out_with_how_long_it_waited() {
    let pool = Pool::builder(TestManager::new())
        .max_size(1)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let _held = pool.get().await.unwrap();
    let started = Instant::now();
    match pool.get().await {
        Err(Error::Timeout {
            waited,
            last_error: None,
        }) => {
            assert_eq!(waited, Duration::from_millis(300));
            assert_eq!(started.elapsed(), Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(pool.metrics().acquires_timed_out, 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_retryable_connect_error_fails_at_once_with_its_cause() {
    let manager = TestManager::new();
    manager.plan.fatal.store(true, SeqCst);
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(30))
        .build_lazy()
        .unwrap();
    let started = Instant::now();
    match pool.get().await {
        Err(Error::Create(FakeError::Fatal)) => {}
        other => panic!("expected the fatal cause, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    // The attempt ran in a task of its own: once it has ended, nothing is
    // left behind.
    settle().await;
    assert_eq!(
        plan.connects.load(SeqCst),
        1,
        "a non-retryable error must not be retried"
    );
    assert_consistent(&pool);
}

/// The fatal error opens the circuit before the attempt's task has handed
/// its error back; on a multi-threaded runtime the caller can see the open
/// circuit first. It must still get its own attempt's typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_whose_attempt_opened_the_circuit_gets_that_attempts_error() {
    for _ in 0..300 {
        let manager = TestManager::new();
        manager.plan.fatal.store(true, SeqCst);
        let pool = Pool::builder(manager)
            .acquire_timeout(Duration::from_secs(30))
            .build_lazy()
            .unwrap();
        match pool.get().await {
            Err(Error::Create(FakeError::Fatal)) => {}
            other => panic!("expected the fatal cause, got {other:?}"),
        }
        assert_eq!(pool.breaker_state(), tidepool::BreakerState::Failed);
    }
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_and_end_with_the_cause() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(30))
        .max_retries(3)
        .retry_delay(Duration::from_millis(100))
        // Retries as such; with the breaker on, a degraded breaker stops
        // them and leaves retrying to its probes (tests/breaker.rs).
        .circuit_breaker(tidepool::BreakerConfig::disabled())
        .build_lazy()
        .unwrap();
    let started = Instant::now();
    match pool.get().await {
        Err(Error::Create(FakeError::Connect)) => {}
        other => panic!("expected the connect error, got {other:?}"),
    }
    assert_eq!(plan.connects.load(SeqCst), 4);
    // Delays of 100, 200 and 400 ms, each jittered into [50%, 100%].
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took <= Duration::from_millis(700),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_never_outlast_the_acquire_deadline_and_report_the_last_error() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_millis(250))
        .max_retries(100)
        .retry_delay(Duration::from_millis(100))
        .circuit_breaker(tidepool::BreakerConfig::disabled())
        .build_lazy()
        .unwrap();
    let started = Instant::now();
    match pool.get().await {
        Err(Error::Timeout {
            waited,
            last_error: Some(cause),
        }) => {
            assert_eq!(waited, Duration::from_millis(250));
            assert!(cause.contains("fake connect failure"), "{cause}");
        }
        other => panic!("expected a timeout carrying the cause, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_connect_that_never_answers_is_cut_at_connect_timeout() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Never;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(1))
        .max_retries(1)
        .retry_delay(Duration::from_millis(100))
        .build_lazy()
        .unwrap();
    let started = Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("connecting timed out after 1s"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(2200));
    assert_eq!(plan.connects.load(SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn an_eager_build_that_cannot_connect_names_the_cause() {
    let manager = TestManager::new();
    manager.plan.fatal.store(true, SeqCst);
    match Pool::builder(manager).initial_size(2).build().await {
        Err(BuildError::WarmUp(cause)) => assert!(cause.contains("wrong password"), "{cause}"),
        other => panic!("expected a warm-up error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(start_paused = true)]
async fn a_lazy_build_succeeds_while_the_database_is_down_and_recovers_when_it_is_back() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .initial_size(2)
        .acquire_timeout(Duration::from_millis(500))
        .build_lazy()
        .expect("a lazy build must not need the database");
    let started = Instant::now();
    assert!(pool.get().await.is_err());
    assert!(started.elapsed() <= Duration::from_millis(500));
    *plan.create.lock() = Behavior::Ok;
    // Half a second of refusals may have opened the circuit: then the
    // answer names when the next probe goes, and that probe succeeds.
    match pool.get().await {
        Ok(_) => {}
        Err(Error::CircuitOpen { retry_after, .. }) => {
            assert!(retry_after <= Duration::from_millis(250), "{retry_after:?}");
            tokio::time::sleep(retry_after).await;
            pool.get()
                .await
                .expect("the probe after the database is back");
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_at_build_naming_the_field() {
    let cases: Vec<(&str, tidepool::Builder<TestManager>)> = vec![
        ("max_size", Pool::builder(TestManager::new()).max_size(0)),
        (
            "min_size",
            Pool::builder(TestManager::new()).min_size(5).max_size(2),
        ),
        (
            "initial_size",
            Pool::builder(TestManager::new())
                .initial_size(5)
                .max_size(2),
        ),
        (
            "acquire_timeout",
            Pool::builder(TestManager::new()).acquire_timeout(Duration::ZERO),
        ),
        (
            "connect_timeout",
            Pool::builder(TestManager::new()).connect_timeout(Duration::ZERO),
        ),
        (
            "idle_timeout",
            Pool::builder(TestManager::new()).idle_timeout(Some(Duration::ZERO)),
        ),
    ];
    for (field, builder) in cases {
        match builder.build().await {
            Err(e @ BuildError::InvalidConfig { .. }) => {
                assert!(e.to_string().contains(field), "{e} should name {field}")
            }
            other => panic!(
                "{field}: expected InvalidConfig, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn building_outside_a_runtime_is_a_clear_error() {
    match Pool::builder(TestManager::new()).build_lazy() {
        Err(BuildError::NoRuntime) => {}
        other => panic!("expected NoRuntime, got {:?}", other.map(|_| ())),
    }
}
