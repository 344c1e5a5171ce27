//! Each recommendation of `Pool::health` on the scenario that provokes it,
//! and the look-alike it must not be mistaken for: a pool too small versus
//! one that leaks, a slow database versus waiting for a connection, a dead
//! database versus a sick one, and a pool far too big. Paused clock: the
//! minutes of load below take milliseconds.

mod common;

use std::time::Duration;

use common::{Behavior, TestManager};
use tidepool::{FailureKind, FindingKind, HealthReport, HealthStatus, Pool, Severity};
use tokio::time::Instant;

/// `clients` tasks, each checking out, holding `hold`, returning and
/// pausing `think`, for `run`.
async fn load(
    pool: &Pool<TestManager>,
    clients: usize,
    hold: Duration,
    think: Duration,
    run: Duration,
) {
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if let Ok(conn) = pool.get().await {
                    tokio::time::sleep(hold).await;
                    drop(conn);
                }
                tokio::time::sleep(think).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn kinds(report: &HealthReport) -> Vec<FindingKind> {
    report.recommendations.iter().map(|r| r.kind).collect()
}

fn message(report: &HealthReport, kind: FindingKind) -> &str {
    report
        .recommendations
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| r.message.as_str())
        .unwrap_or_else(|| panic!("no {kind:?} in {report:#?}"))
}

/// The number after `prefix` in `text` ("raise max_size to ~15" → 15).
fn number_after(text: &str, prefix: &str) -> usize {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no `{prefix}` in: {text}"));
    text[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{prefix}` in: {text}"))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_pool_under_moderate_load_is_healthy_with_nothing_to_do() {
    let pool = Pool::builder(TestManager::new())
        .max_size(10)
        .build()
        .await
        .unwrap();
    let before = pool.health_sample();
    load(
        &pool,
        3,
        Duration::from_millis(2),
        Duration::from_millis(3),
        Duration::from_secs(10),
    )
    .await;
    let report = pool.health_since(&before);
    assert_eq!(report.status, HealthStatus::Healthy, "{report:#?}");
    assert!(report.score >= 90, "{report:#?}");
    assert!(report.recommendations.is_empty(), "{report:#?}");
    assert_eq!(
        report
            .components
            .iter()
            .map(|c| u32::from(c.weight))
            .sum::<u32>(),
        100
    );
    assert!((9.0..=11.0).contains(&report.window_secs), "{report:#?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn callers_waiting_for_briefly_held_connections_get_a_bigger_max_size_with_the_arithmetic() {
    let pool = Pool::builder(TestManager::new())
        .max_size(4)
        .build()
        .await
        .unwrap();
    // 16 clients that never pause, 5 ms per checkout: 4 busy, 12 queued.
    let before = pool.health_sample();
    load(
        &pool,
        16,
        Duration::from_millis(5),
        Duration::ZERO,
        Duration::from_secs(10),
    )
    .await;
    let report = pool.health_since(&before);
    assert_eq!(
        kinds(&report),
        vec![FindingKind::PoolTooSmall],
        "{report:#?}"
    );
    assert_eq!(report.status, HealthStatus::Degraded);
    let m = message(&report, FindingKind::PoolTooSmall);
    assert!(m.starts_with("acquire wait p99 "), "{m}");
    assert!(m.contains("% of 4 connections in use"), "{m}");
    assert!(m.contains("checkouts/s × "), "{m}");
    assert!(
        m.contains(" held ≈ 3.") || m.contains(" held ≈ 4.0"),
        "about 4 busy: {m}"
    );
    // 4 busy + 12 waiting want 16 connections; at 85% that is 19.
    let target = number_after(m, "raise max_size to ~");
    assert!((17..=20).contains(&target), "{m}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn long_holds_are_a_slow_database_not_a_small_pool() {
    let pool = Pool::builder(TestManager::new())
        .max_size(10)
        .build()
        .await
        .unwrap();
    let before = pool.health_sample();
    load(
        &pool,
        3,
        Duration::from_millis(400),
        Duration::from_millis(10),
        Duration::from_secs(20),
    )
    .await;
    let report = pool.health_since(&before);
    assert_eq!(
        kinds(&report),
        vec![FindingKind::SlowDatabase],
        "{report:#?}"
    );
    let m = message(&report, FindingKind::SlowDatabase);
    assert!(m.contains("held 4"), "mean hold named: {m}");
    assert!(m.contains("not to getting one"), "{m}");
    assert_eq!(report.status, HealthStatus::Degraded);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_database_refusing_every_connection_is_down_and_unhealthy() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Err;
    let pool = Pool::builder(manager)
        .min_size(0)
        .acquire_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let before = pool.health_sample();
    for _ in 0..40 {
        let _ = pool.get().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = pool.health_since(&before);
    assert_eq!(report.status, HealthStatus::Unhealthy, "{report:#?}");
    assert!(!report.is_serving());
    assert!(report.has(FindingKind::DatabaseDown), "{report:#?}");
    assert!(!report.has(FindingKind::DatabaseFailing), "{report:#?}");
    assert!(!report.has(FindingKind::PoolTooSmall), "{report:#?}");
    let m = message(&report, FindingKind::DatabaseDown);
    assert!(m.contains("connect "), "failures by kind named: {m}");
    assert!(m.contains("fake connect failure"), "last error named: {m}");
    assert_eq!(report.recommendations[0].severity, Severity::Critical);
    assert!(report.score < 50, "{report:#?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_database_failing_some_queries_is_sick_not_down() {
    let pool = Pool::builder(TestManager::new())
        .max_size(4)
        .build()
        .await
        .unwrap();
    let before = pool.health_sample();
    let client = {
        let pool = pool.clone();
        tokio::spawn(async move {
            load(
                &pool,
                2,
                Duration::from_millis(2),
                Duration::from_millis(8),
                Duration::from_secs(3),
            )
            .await;
        })
    };
    for _ in 0..12 {
        pool.report_failure(
            FailureKind::Query,
            &"fake: could not write to file: No space left on device",
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.await.unwrap();
    let report = pool.health_since(&before);
    assert!(report.has(FindingKind::DatabaseFailing), "{report:#?}");
    assert!(!report.has(FindingKind::DatabaseDown), "{report:#?}");
    assert_eq!(report.status, HealthStatus::Degraded, "{report:#?}");
    let m = message(&report, FindingKind::DatabaseFailing);
    assert!(m.contains("failures counted against it: query 12"), "{m}");
    assert!(m.contains("the breaker is healthy again"), "{m}");
    assert!(m.contains("No space left on device"), "{m}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_connection_that_never_comes_back_is_a_leak_even_when_the_pool_runs_short() {
    let pool = Pool::builder(TestManager::new())
        .max_size(2)
        .build()
        .await
        .unwrap();
    let leaked = pool.get().await.unwrap();
    // Four clients now share the one connection left: they wait, and the
    // pool is full — the look of a pool too small.
    load(
        &pool,
        4,
        Duration::from_millis(3),
        Duration::ZERO,
        Duration::from_millis(500),
    )
    .await;
    let before = pool.health_sample();
    load(
        &pool,
        4,
        Duration::from_millis(3),
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    let report = pool.health_since(&before);
    assert!(report.has(FindingKind::ConnectionLeak), "{report:#?}");
    assert!(!report.has(FindingKind::PoolTooSmall), "{report:#?}");
    let m = message(&report, FindingKind::ConnectionLeak);
    assert!(
        m.starts_with("1 of 2 connections stayed checked out"),
        "{m}"
    );
    assert!(m.contains("target tidepool::leak"), "{m}");
    assert!(m.contains("raising max_size would only delay"), "{m}");
    let leaks = report
        .components
        .iter()
        .find(|c| c.name == "leaks")
        .unwrap();
    assert_eq!(leaks.score, 0);
    drop(leaked);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_leak_reported_by_leak_timeout_shows_in_the_report_since_the_start() {
    let pool = Pool::builder(TestManager::new())
        .leak_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    let leaked = pool.get().await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let report = pool.health();
    let m = message(&report, FindingKind::ConnectionLeak);
    assert!(
        m.contains("1 checkout(s) held past leak_timeout: a caller"),
        "{m}"
    );
    assert!(
        m.contains("target tidepool::leak (leak_timeout 5.0 s)"),
        "{m}"
    );
    drop(leaked);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_pool_far_bigger_than_its_load_is_told_how_many_to_give_back() {
    let pool = Pool::builder(TestManager::new())
        .min_size(20)
        .max_size(20)
        .build()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = pool.health_sample();
    load(
        &pool,
        1,
        Duration::from_millis(1),
        Duration::from_millis(9),
        Duration::from_secs(10),
    )
    .await;
    let report = pool.health_since(&before);
    assert_eq!(
        kinds(&report),
        vec![FindingKind::PoolOversized],
        "{report:#?}"
    );
    let m = message(&report, FindingKind::PoolOversized);
    assert!(m.starts_with("0.1 of 20 open connections busy"), "{m}");
    assert!(
        m.contains("lower min_size to ~1 (now 20) to give 19 server connections back"),
        "{m}"
    );
    // Waste, not ill health.
    assert_eq!(report.status, HealthStatus::Healthy, "{report:#?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn slow_connection_opening_is_told_to_keep_connections_warm() {
    let manager = TestManager::new();
    *manager.plan.create.lock() = Behavior::Slow(Duration::from_millis(800));
    let pool = Pool::builder(manager)
        .min_size(0)
        .max_size(4)
        .build()
        .await
        .unwrap();
    load(
        &pool,
        2,
        Duration::from_millis(5),
        Duration::from_millis(5),
        Duration::from_secs(3),
    )
    .await;
    let report = pool.health();
    let m = message(&report, FindingKind::SlowConnect);
    assert!(m.starts_with("opening a connection takes p99 8"), "{m}");
    assert!(m.contains("raise min_size to ~1 (now 0"), "{m}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_closed_pool_is_unhealthy() {
    let pool = Pool::builder(TestManager::new()).build().await.unwrap();
    pool.close(Duration::ZERO).await;
    let report = pool.health();
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(kinds(&report), vec![FindingKind::Closed]);
}
