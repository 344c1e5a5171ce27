//! What the pool counts beyond checkouts and timeouts: refusals by an open
//! circuit, create errors returned at once, failures by kind, validation
//! failures, check-ins, how long each connection has been held, the
//! breaker's thresholds and time since its last failure, an on-demand
//! health check, and the acquire span.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Behavior, TestManager};
use tidepool::{FailureKind, Pool};

fn count(m: &tidepool::Metrics, kind: FailureKind) -> u64 {
    m.failures_by_kind
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

#[tokio::test(start_paused = true)]
async fn refusals_by_an_open_circuit_and_failures_by_kind_are_counted() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .max_size(2)
        .acquire_timeout(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    *plan.create.lock() = Behavior::Err;
    let mut refused = 0;
    for _ in 0..30 {
        if let Err(tidepool::Error::CircuitOpen { .. }) = pool.get().await {
            refused += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = pool.metrics();
    assert!(refused > 0);
    assert_eq!(m.acquires_refused_circuit_open, refused);
    assert!(
        count(&m, FailureKind::Connect) >= 6,
        "{:?}",
        m.failures_by_kind
    );
    pool.report_failure(FailureKind::Client, &"duplicate key");
    assert_eq!(count(&pool.metrics(), FailureKind::Client), 1);
    let b = pool.metrics().breaker.unwrap();
    assert!(b.since_last_failure.is_some());
    assert!(b
        .thresholds
        .iter()
        .any(|(k, t)| *k == FailureKind::Connect && t.open == 6));
}

#[tokio::test]
async fn a_create_error_returned_at_once_is_counted() {
    let manager = TestManager::new();
    manager.plan.fatal.store(true, SeqCst);
    let pool = Pool::builder(manager).build().await.unwrap();
    assert!(matches!(pool.get().await, Err(tidepool::Error::Create(_))));
    assert_eq!(pool.metrics().acquires_failed_at_once, 1);
}

#[tokio::test(start_paused = true)]
async fn check_health_pings_idle_connections_now_and_counts_failures() {
    let manager = TestManager::new();
    let plan = manager.plan.clone();
    let pool = Pool::builder(manager)
        .initial_size(3)
        .max_size(3)
        .build()
        .await
        .unwrap();
    let held = pool.get().await.unwrap();
    tokio::time::advance(Duration::from_millis(20)).await;
    assert!(pool
        .metrics()
        .connections
        .iter()
        .any(|c| c.held_for.is_some_and(|h| h >= Duration::from_millis(20))));
    *plan.validate.lock() = Behavior::Err;
    let check = pool.check_health().await;
    assert_eq!(
        (check.checked, check.failed),
        (2, 2),
        "the held one is not touched"
    );
    let m = pool.metrics();
    assert_eq!(m.validations_failed, 2);
    drop(held);
    assert_eq!(pool.metrics().checkins, 1);
}

#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push(attrs.metadata().name().to_string());
    }

    fn on_record(
        &self,
        _id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.lock().unwrap().push(format!("{values:?}"));
    }
}

#[tokio::test]
async fn each_acquire_is_a_span_with_the_pool_name_the_wait_and_the_outcome() {
    use tracing_subscriber::layer::SubscriberExt;
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let pool = Pool::builder(TestManager::new())
        .name("orders")
        .build()
        .await
        .unwrap();
    drop(pool.get().await.unwrap());
    let seen = spans.0.lock().unwrap().join(" | ");
    assert!(seen.contains("acquire"), "{seen}");
    assert!(seen.contains("orders"), "{seen}");
    assert!(seen.contains("waited_us"), "{seen}");
    assert!(seen.contains("ok"), "{seen}");
}
