//! `/metrics` is a real Prometheus exposition: every exported family
//! appears in a scrape, under the OpenTelemetry names, with `pool_name` on
//! every series, and `promtool check metrics` accepts it.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{
    capped_pool, get, get_with, queried_pool, sample_names, serve, sqlite_pool, tool, Fake,
    QUERY_CANARIES,
};
use tidepool_http::Pools;

/// What Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";

/// Scrapes six pools as Prometheus does (OpenMetrics) and as curl does
/// (classic text): two SQLite pools with some traffic, one whose
/// statements went through `execute_query` (so it has query statistics),
/// a cluster's writer and reader (its replica banned for lag), and one
/// whose server refused it past two connections (so the ceiling is
/// known).
async fn scrape_both() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (capped, _held) = capped_pool("capped").await;
    let pools = Pools::new()
        .add_pool(queried_pool("queried", dir.path()).await)
        .unwrap()
        .add_cluster(common::LaggingCluster::new("cluster").await)
        .unwrap()
        .add_pool(sqlite_pool("orders", dir.path()).await)
        .unwrap()
        .add_pool(sqlite_pool("reports", dir.path()).await)
        .unwrap()
        .add_pool(capped)
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
    "tidepool_failures_total",
    "tidepool_connection_refusals_at_capacity_total",
    "tidepool_server_connection_ceiling",
    "tidepool_acquires_refused_total",
    "tidepool_checkins_total",
    "tidepool_affinity_checkouts_total",
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
    "tidepool_warm_target",
    "tidepool_concurrency_limit",
    "tidepool_overflow_connections",
    "tidepool_load_factor",
    "tidepool_scaling_adjustments_total",
    "tidepool_adaptive_tunings_total",
    "tidepool_health_score",
    "tidepool_query_shapes_tracked",
    "tidepool_query_shapes_evicted_total",
    "tidepool_query_info",
    "tidepool_query_calls_total",
    "tidepool_query_errors_total",
    "tidepool_query_rows_total",
    "tidepool_query_slow_total",
    "tidepool_query_time_seconds_total",
    "tidepool_query_time_percentile_seconds",
    "tidepool_replica_banned",
    "tidepool_replica_lag_bytes",
    "tidepool_cluster_reads_on_primary",
    "tidepool_cluster_fallback_reads_total",
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
            [
                "orders",
                "reports",
                "capped",
                "queried",
                "cluster writer",
                "cluster reader"
            ]
            .iter()
            .any(|p| line.contains(&format!("pool_name=\"{p}\""))),
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

/// The value of the one sample `name{labels}` in `text`.
fn value(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{series}: {found:?} in\n{text}");
    found[0]
}

#[tokio::test]
async fn the_counters_and_gauges_beyond_the_conventions_carry_the_pools_figures() {
    let (text, _) = scrape_both().await;
    let o = |series: &str, labels: &str| {
        let sep = if labels.is_empty() { "" } else { "," };
        value(
            &text,
            &format!("{series}{{pool_name=\"orders\"{sep}{labels}}}"),
        )
    };
    // Five checkouts, all returned.
    assert_eq!(o("tidepool_checkins_total", ""), 5.0);
    // No scaling strategy: the warm target is min_size, the limit max_size.
    assert_eq!(o("tidepool_warm_target", ""), 1.0);
    assert_eq!(o("tidepool_concurrency_limit", ""), 4.0);
    assert_eq!(o("tidepool_overflow_connections", ""), 0.0);
    assert_eq!(o("tidepool_load_factor", ""), 0.0);
    for direction in ["up", "down"] {
        assert_eq!(
            o(
                "tidepool_scaling_adjustments_total",
                &format!("direction=\"{direction}\"")
            ),
            0.0
        );
    }
    for outcome in ["hit", "miss"] {
        assert_eq!(
            o(
                "tidepool_affinity_checkouts_total",
                &format!("outcome=\"{outcome}\"")
            ),
            0.0,
            "plain get() is not a checkout for a statement"
        );
    }
    for reason in ["circuit_open", "create_failed"] {
        assert_eq!(
            o(
                "tidepool_acquires_refused_total",
                &format!("reason=\"{reason}\"")
            ),
            0.0
        );
    }
    for cause in ["error", "timeout"] {
        assert_eq!(
            o(
                "tidepool_validation_failures_total",
                &format!("cause=\"{cause}\"")
            ),
            0.0
        );
    }
    for kind in ["connect", "timeout", "query", "transaction", "client"] {
        assert_eq!(
            o("tidepool_failures_total", &format!("kind=\"{kind}\"")),
            0.0
        );
    }
    for reason in ["overflow", "resized", "idle_timeout", "detached"] {
        assert_eq!(
            o(
                "tidepool_connections_closed_total",
                &format!("reason=\"{reason}\"")
            ),
            0.0
        );
    }
    // The ceiling is exported only for the pool whose server refused it.
    assert_eq!(
        value(
            &text,
            "tidepool_server_connection_ceiling{pool_name=\"capped\"}"
        ),
        2.0
    );
    assert!(!text.contains("tidepool_server_connection_ceiling{pool_name=\"orders\"}"));
    assert!(
        value(
            &text,
            "tidepool_connection_refusals_at_capacity_total{pool_name=\"capped\"}"
        ) >= 1.0
    );
    // A refusal for room is not a failure.
    assert_eq!(
        value(
            &text,
            "tidepool_connection_errors_total{pool_name=\"capped\"}"
        ),
        0.0
    );
}

/// The series of `family` whose labels contain `query_id="{id}"`, as
/// (labels, value).
fn shape_series(text: &str, family: &str, id: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix(family))
        .filter_map(|l| l.strip_prefix('{'))
        .filter(|l| l.contains(&format!("query_id=\"{id}\"")))
        .filter_map(|l| l.rsplit_once("} "))
        .map(|(labels, v)| (labels.to_string(), v.trim().parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn each_statement_shape_is_exported_with_its_counts_times_and_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let pool = queried_pool("queried", dir.path()).await;
    let stats = pool.queries();
    let insert = stats
        .iter()
        .find(|q| q.text.starts_with("insert into secrets"))
        .expect("the inserts are one shape");
    assert_eq!(insert.count, 3);
    let id = format!("{:016x}", insert.id);
    let failing = stats
        .iter()
        .find(|q| q.text.contains("no_such_table"))
        .unwrap();
    let failing_id = format!("{:016x}", failing.id);
    let tracked = stats.len();
    let addr = serve(Pools::new().add_pool(pool).unwrap().router()).await;
    let text = get(addr, "/metrics").await.body;

    let one = |family: &str, id: &str| {
        let found = shape_series(&text, family, id);
        assert_eq!(found.len(), 1, "{family} {id}: {found:?}\n{text}");
        found[0].clone()
    };
    let (labels, calls) = one("tidepool_query_calls_total", &id);
    assert_eq!(calls, 3.0);
    assert!(labels.contains("pool_name=\"queried\""), "{labels}");
    assert!(labels.contains("kind=\"write\""), "{labels}");
    assert!(
        !labels.contains("query="),
        "the text is only on the info series"
    );
    // execute_query counts the rows a statement returns: none for these.
    assert_eq!(one("tidepool_query_rows_total", &id).1, 0.0);
    let select = stats
        .iter()
        .find(|q| q.text.starts_with("select v from secrets where k = ? and"))
        .unwrap();
    assert_eq!((select.count, select.rows), (2, 2));
    let select_id = format!("{:016x}", select.id);
    assert_eq!(one("tidepool_query_errors_total", &id).1, 0.0);
    assert_eq!(one("tidepool_query_slow_total", &id).1, 3.0);
    assert_eq!(one("tidepool_query_errors_total", &failing_id).1, 1.0);
    assert_eq!(one("tidepool_query_rows_total", &select_id).1, 2.0);
    assert_eq!(one("tidepool_query_calls_total", &select_id).1, 2.0);
    let total = one("tidepool_query_time_seconds_total", &id).1;
    assert!(total > 0.0 && (total - insert.total_time.as_secs_f64()).abs() < 1e-3);
    let percentiles = shape_series(&text, "tidepool_query_time_percentile_seconds", &id);
    assert_eq!(percentiles.len(), 3, "{percentiles:?}");
    for (q, want) in [("50", insert.p50), ("95", insert.p95), ("99", insert.p99)] {
        let (_, v) = percentiles
            .iter()
            .find(|(l, _)| l.contains(&format!("percentile=\"{q}\"")))
            .unwrap();
        assert!(
            (v - want.as_secs_f64()).abs() < 1e-6,
            "{q}: {v} vs {want:?}"
        );
    }
    let (info, v) = one("tidepool_query_info", &id);
    assert_eq!(v, 1.0);
    assert!(
        info.contains(&format!("query=\"{}\"", insert.text)),
        "the normalized text: {info}"
    );
    assert_eq!(
        value(
            &text,
            "tidepool_query_shapes_tracked{pool_name=\"queried\"}"
        ),
        tracked as f64
    );
    for canary in QUERY_CANARIES {
        assert!(!text.contains(canary), "{canary} in\n{text}");
    }
}

#[tokio::test]
async fn only_the_top_shapes_by_total_time_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let pool = queried_pool("queried", dir.path()).await;
    let top = format!("{:016x}", pool.queries()[0].id);
    assert!(pool.queries().len() > 2);
    let addr = serve(
        Pools::new()
            .query_limit(1)
            .add_pool(pool.clone())
            .unwrap()
            .router(),
    )
    .await;
    let text = get(addr, "/metrics").await.body;
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tidepool_query_calls_total{"))
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].contains(&top), "the heaviest shape: {calls:?}");
    let per_shape = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("query_id="))
        .count();
    assert_eq!(
        per_shape, 9,
        "info, five counters, three percentiles:\n{text}"
    );
    let json = get(addr, "/pools/queried").await.json();
    assert_eq!(json["queries"]["top"].as_array().unwrap().len(), 1);
    assert_eq!(json["queries"]["top"][0]["id"], top.as_str());
    assert_eq!(json["queries"]["limit"], 1);

    let addr = serve(Pools::new().query_limit(0).add_pool(pool).unwrap().router()).await;
    let text = get(addr, "/metrics").await.body;
    assert!(!text.contains("query_id="), "{text}");
    assert!(text.contains("tidepool_query_shapes_tracked{pool_name=\"queried\"}"));
}

#[tokio::test]
async fn a_pool_name_with_quotes_and_backslashes_is_escaped_in_labels() {
    let pool = tidepool::Pool::builder(Fake::default())
        .name(r#"we"ird\name"#)
        .build()
        .await
        .unwrap();
    let addr = serve(Pools::new().add_pool(pool).unwrap().router()).await;
    let text = get(addr, "/metrics").await.body;
    assert!(
        text.contains(r#"db_client_connection_max{pool_name="we\"ird\\name"} 10"#),
        "{text}"
    );
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

#[tokio::test]
async fn a_gauge_of_the_process_is_exported_beside_the_pools_and_left_out_while_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let pools = Pools::new()
        .add_pool(sqlite_pool("orders", dir.path()).await)
        .unwrap()
        .gauge("myapp_resident_memory_bytes", "Resident memory.", || {
            Some(1234.0)
        })
        .unwrap()
        .gauge("myapp_not_known_yet", "Not known yet.", || None)
        .unwrap();
    let addr = serve(pools.router()).await;
    let classic = get(addr, "/metrics").await.body;
    assert!(
        classic.contains(
            "# TYPE myapp_resident_memory_bytes gauge\nmyapp_resident_memory_bytes 1234.0\n"
        ),
        "{classic}"
    );
    assert!(classic.contains("# TYPE myapp_not_known_yet gauge\n"));
    assert!(!sample_names(&classic).contains("myapp_not_known_yet"));
    let open = get_with(addr, "/metrics", PROMETHEUS_ACCEPT).await.body;
    assert!(
        open.contains("\nmyapp_resident_memory_bytes 1234.0\n"),
        "{open}"
    );

    for (name, says) in [
        ("9lives", "is a letter"),
        ("my app", "is a letter"),
        ("", "is a letter"),
        (
            "tidepool_health_score",
            "the pools export a family of that name",
        ),
        ("db_client_connection_timeouts_total", "the pools export"),
        ("db_client_connection_timeouts", "the pools export"),
    ] {
        let err = Pools::new().gauge(name, "x", || None).unwrap_err();
        assert!(err.to_string().contains(says), "{name}: {err}");
    }
    let err = Pools::new()
        .gauge("a", "x", || None)
        .unwrap()
        .gauge("a", "y", || None)
        .unwrap_err();
    assert!(
        err.to_string().contains("another gauge has that name"),
        "{err}"
    );
}

#[tokio::test]
async fn checkouts_for_a_statement_are_counted_by_affinity_outcome() {
    let key = tidepool::statement_key("SELECT 1");
    let mut by_outcome = Vec::new();
    for (name, prepared) in [("cold", false), ("warm", true)] {
        let pool = tidepool::Pool::builder(common::Fake {
            prepared,
            ..Default::default()
        })
        .name(name)
        .min_size(1)
        .build()
        .await
        .unwrap();
        while pool.status().idle < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(pool.get_for(key).await.unwrap());
        let text = get(serve(tidepool_http::router(pool)).await, "/metrics")
            .await
            .body;
        let n = |outcome: &str| {
            value(
                &text,
                &format!("tidepool_affinity_checkouts_total{{pool_name=\"{name}\",outcome=\"{outcome}\"}}"),
            )
        };
        by_outcome.push((name, n("hit"), n("miss")));
    }
    assert_eq!(by_outcome, [("cold", 0.0, 1.0), ("warm", 1.0, 0.0)]);
}
