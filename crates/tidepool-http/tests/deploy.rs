//! The files in `deploy/` work against what tidepool-http really exports:
//! the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`), the scrape config passes `promtool check
//! config`, every dashboard query is valid PromQL, and every metric named
//! in a dashboard query or an alert expression appears in a real scrape.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{capped_pool, get, repo_root, sample_names, serve, sqlite_pool, tool};

fn deploy() -> PathBuf {
    repo_root().join("deploy")
}

fn promtool(test: &str) -> Option<PathBuf> {
    tool(test, &["promtool"], "prometheus")
}

fn run(promtool: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert expressions, from the rules file.
fn alert_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy().join("prometheus/tidepool-alerts.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap().to_string();
            let expr = rule["expr"].as_str().unwrap().to_string();
            out.push((name, expr));
        }
    }
    out
}

/// Every query of every panel of the Grafana dashboard, with the `$pool`
/// variable as Grafana would expand "All".
fn dashboard_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(deploy().join("grafana/tidepool-dashboard.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for panel in doc["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap().to_string();
            let expr = target["expr"].as_str().unwrap().replace("$pool", ".*");
            out.push((title, expr));
        }
    }
    let var = &doc["templating"]["list"][0]["query"]["query"];
    out.push(("pool variable".into(), var.as_str().unwrap().into()));
    out
}

/// The metric names an expression reads: identifiers with our prefixes,
/// outside quoted strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut unquoted = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted {
            unquoted.push(c);
        }
    }
    unquoted
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("db_client_") || w.starts_with("tidepool_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let Some(promtool) = promtool("the_alert_rules_pass_promtool_check_rules") else {
        return;
    };
    run(
        &promtool,
        &["check", "rules", "tidepool-alerts.yml"],
        &deploy().join("prometheus"),
    );
    run(
        &promtool,
        &["check", "config", "prometheus.yml"],
        &deploy().join("prometheus"),
    );
}

#[test]
fn each_alert_fires_on_its_trouble_and_stays_quiet_on_a_healthy_pool() {
    let Some(promtool) =
        promtool("each_alert_fires_on_its_trouble_and_stays_quiet_on_a_healthy_pool")
    else {
        return;
    };
    run(
        &promtool,
        &["test", "rules", "tidepool-alerts.test.yml"],
        &deploy().join("prometheus"),
    );
    // Every alert has a unit test.
    let tests =
        std::fs::read_to_string(deploy().join("prometheus/tidepool-alerts.test.yml")).unwrap();
    for (alert, _) in alert_exprs() {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "no unit test for {alert}"
        );
    }
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let Some(promtool) = promtool("every_dashboard_query_is_valid_promql") else {
        return;
    };
    // promtool parses PromQL when it checks rules: one recording rule per
    // query.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (title, expr)) in dashboard_exprs().iter().enumerate() {
        if title == "pool variable" {
            continue;
        }
        let expr = serde_json::to_string(expr).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {expr}\n"
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    run(&promtool, &["check", "rules", "dashboard.yml"], dir.path());
}

#[tokio::test]
async fn every_metric_in_the_dashboard_and_the_alerts_exists_in_a_real_scrape() {
    let dir = tempfile::tempdir().unwrap();
    // A pool whose server refused it for room, so the series exported
    // only then (the server's ceiling) are in the scrape too.
    let (capped, _held) = capped_pool("capped").await;
    let pools = tidepool_http::Pools::new()
        .add_pool(sqlite_pool("orders", dir.path()).await)
        .unwrap()
        .add_pool(capped)
        .unwrap();
    let addr = serve(pools.router()).await;
    let scraped = sample_names(&get(addr, "/metrics").await.body);
    let mut checked = 0;
    for (whose, expr) in alert_exprs().into_iter().chain(dashboard_exprs()) {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{whose}: no metric found in {expr}");
        for name in names {
            assert!(
                scraped.contains(&name),
                "{whose} reads {name}, which /metrics does not export"
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} names checked");
}

#[test]
fn metric_names_are_read_outside_quotes() {
    let names = metric_names(
        r#"sum by (pool_name) (rate(db_client_connection_wait_time_seconds_bucket{state="tidepool_x"}[5m])) / tidepool_health_score"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "db_client_connection_wait_time_seconds_bucket",
            "tidepool_health_score"
        ]
    );
}
