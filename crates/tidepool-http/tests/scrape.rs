//! `/metrics` is a real Prometheus exposition: every exported family
//! appears in a scrape, under the OpenTelemetry names, with `pool_name` on
//! every series, and `promtool check metrics` accepts it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{get, get_with, sample_names, serve, sqlite_pool, tool};
use tidepool_http::Pools;

/// What Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";

/// Scrapes two pools as Prometheus does (OpenMetrics) and as curl does
/// (classic text).
async fn scrape_both() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let pools = Pools::new()
        .add_pool(sqlite_pool("orders", dir.path()).await)
        .unwrap()
        .add_pool(sqlite_pool("reports", dir.path()).await)
        .unwrap();
    let addr = serve(pools.router()).await;
    let open = get_with(addr, "/metrics", PROMETHEUS_ACCEPT).await;
    assert_eq!(open.status, 200);
    assert_eq!(
        open.header("content-type"),
        Some(tidepool_http::CONTENT_TYPE)
    );
    let classic = get(addr, "/metrics").await;
    assert_eq!(classic.status, 200);
    assert_eq!(
        classic.header("content-type"),
        Some(tidepool_http::CLASSIC_CONTENT_TYPE)
    );
    (open.body, classic.body)
}

/// Every sample name the export promises.
pub const EXPORTED: &[&str] = &[
    "db_client_connection_count",
    "db_client_connection_idle_max",
    "db_client_connection_idle_min",
    "db_client_connection_max",
    "db_client_connection_pending_requests",
    "db_client_connection_timeouts_total",
    "db_client_connection_create_time_seconds_bucket",
    "db_client_connection_create_time_seconds_sum",
    "db_client_connection_create_time_seconds_count",
    "db_client_connection_wait_time_seconds_bucket",
    "db_client_connection_wait_time_seconds_sum",
    "db_client_connection_wait_time_seconds_count",
    "db_client_connection_use_time_seconds_bucket",
    "db_client_connection_use_time_seconds_sum",
    "db_client_connection_use_time_seconds_count",
    "tidepool_connections_pending_open",
    "tidepool_connections_created_total",
    "tidepool_connection_errors_total",
    "tidepool_connections_closed_total",
    "tidepool_checkouts_waited_total",
    "tidepool_validations_total",
    "tidepool_validation_failures_total",
    "tidepool_resets_total",
    "tidepool_leaks_detected_total",
    "tidepool_slow_acquires_total",
    "tidepool_acquires_held_while_open_total",
    "tidepool_breaker_state",
    "tidepool_breaker_opened_total",
    "tidepool_breaker_failures_in_window",
    "tidepool_health_score",
];

#[tokio::test]
async fn every_exported_metric_appears_in_a_scrape_labelled_by_pool() {
    let (text, classic) = scrape_both().await;
    assert_eq!(
        sample_names(&text),
        sample_names(&classic),
        "both formats carry the same samples"
    );
    assert!(classic.contains("# TYPE db_client_connection_timeouts_total counter\n"));
    assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    let names = sample_names(&text);
    for name in EXPORTED {
        assert!(names.contains(*name), "{name} missing from:\n{text}");
    }
    let unexpected: Vec<_> = names
        .iter()
        .filter(|n| !EXPORTED.contains(&n.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "exported but not listed here (and in the README's table): {unexpected:?}"
    );
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.contains("pool_name=\"orders\"") || line.contains("pool_name=\"reports\""),
            "no pool_name: {line}"
        );
    }
    assert!(text.contains("db_client_connection_count{pool_name=\"orders\",state=\"idle\"}"));
    assert!(
        text.contains("db_client_connection_wait_time_seconds_count{pool_name=\"orders\"} 5"),
        "{text}"
    );
    assert!(
        text.contains(
            "db_client_connection_wait_time_seconds_bucket{le=\"+Inf\",pool_name=\"orders\"} 5"
        ),
        "{text}"
    );
    assert!(text.contains("tidepool_breaker_state{pool_name=\"orders\",state=\"healthy\"} 1"));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn the_exposition_passes_promtool_check_metrics() {
    let Some(promtool) = tool(
        "the_exposition_passes_promtool_check_metrics",
        &["promtool"],
        "prometheus",
    ) else {
        return;
    };
    let (_, text) = scrape_both().await;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // One lint is inherent to the OpenTelemetry conventions: their
    // `db.client.connection.count` is `db_client_connection_count` in
    // Prometheus (Prometheus' own OTLP translation gives the same name),
    // and promtool's linter reserves `_count` for histograms. Anything
    // else fails the test.
    const OTEL_NAME: &str = "db_client_connection_count non-histogram and non-summary metrics should not have \"_count\" suffix";
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != OTEL_NAME)
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics found problems:\n{report}\n--- exposition ---\n{text}"
    );
    // The parse itself succeeded: a parse error exits 1, lint problems 3.
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "{report}");
}
