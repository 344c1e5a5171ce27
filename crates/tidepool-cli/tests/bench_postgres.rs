//! `tidepool bench --url postgres://...` on the local server (skips when
//! none is reachable; fails under TIDEPOOL_REQUIRE_DB=1).

mod common;

use common::{quick_at, stderr, stdout, tidepool, QUICK};
use tidepool::Queryable;

async fn bench_tables(url: &str, prefix: &str) -> i64 {
    let manager = tidepool_postgres::PgManager::from_url(url).unwrap();
    let mut conn = tidepool::Manager::connect(&manager).await.unwrap();
    let row = conn
        .query_one_values(
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_name LIKE $1",
            &[format!("{prefix}%").into()],
        )
        .await
        .unwrap();
    row.get("n").and_then(|v| v.as_i64()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_runs_on_postgres_and_drops_its_tables() {
    let Some(url) = tidepool_testkit::postgres_url("bench_runs_on_postgres_and_drops_its_tables")
    else {
        return;
    };
    let prefix = "tp_cli_test_pg_";
    let out = tidepool()
        .arg("bench")
        .args(QUICK)
        .args(["--url", &url, "--table-prefix", prefix])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
    assert!(text.starts_with("tidepool bench: PostgreSQL"), "{text}");
    assert!(text.contains("    4  tuned"), "{text}");
    assert!(!text.contains("(interrupted)"));
    assert_eq!(
        bench_tables(&url, prefix).await,
        0,
        "tables were left behind"
    );

    let kept = "tp_cli_test_pg_kept_";
    let out = tidepool()
        .arg("bench")
        .args(quick_at("2"))
        .args(["--url", &url, "--table-prefix", kept, "--keep"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(bench_tables(&url, kept).await, 3);
    // Clean up: a run without --keep drops them again.
    let out = tidepool()
        .arg("bench")
        .args(quick_at("1"))
        .args(["--url", &url, "--table-prefix", kept])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(bench_tables(&url, kept).await, 0);
}

/// One run's JSON: the tuned side's runs, as (ops by kind, checkouts,
/// errors, description).
fn tuned_side(json: &serde_json::Value) -> (serde_json::Value, u64, u64, String) {
    let description = json["configurations"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "tuned"))
        .and_then(|c| c["description"].as_str())
        .unwrap_or_default()
        .to_string();
    let run = json["runs"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["configuration"] == "tuned"))
        .cloned()
        .unwrap_or_default();
    let errors = run["errors"]
        .as_object()
        .map_or(0, |e| e.values().filter_map(|v| v.as_u64()).sum());
    (
        run["ops_by_kind"].clone(),
        run["pool"]["checkouts"].as_u64().unwrap_or(0),
        errors,
        description,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tuned_side_pipelines_its_reads_on_postgres_unless_told_not_to() {
    let Some(url) = tidepool_testkit::postgres_url(
        "the_tuned_side_pipelines_its_reads_on_postgres_unless_told_not_to",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (flag, prefix) in [("on", "tp_cli_mux_on_"), ("off", "tp_cli_mux_off_")] {
        let json = dir.path().join(format!("{flag}.json"));
        let out = tidepool()
            .arg("bench")
            .args(quick_at("8"))
            .args([
                "--url",
                &url,
                "--table-prefix",
                prefix,
                "--multiplex-reads",
                flag,
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        seen.push(tuned_side(&doc));
    }
    let (on_ops, on_checkouts, on_errors, on_text) = &seen[0];
    let (off_ops, off_checkouts, off_errors, off_text) = &seen[1];
    assert_eq!((*on_errors, *off_errors), (0, 0));
    for ops in [on_ops, off_ops] {
        for kind in [
            "point_select",
            "range_select",
            "insert",
            "update",
            "transaction",
        ] {
            assert!(
                ops[kind].as_u64().unwrap_or(0) > 0,
                "{kind} never ran: {ops}"
            );
        }
    }
    let total = |ops: &serde_json::Value| -> u64 {
        ops.as_object()
            .map_or(0, |o| o.values().filter_map(|v| v.as_u64()).sum())
    };
    let reads = |ops: &serde_json::Value| {
        ops["point_select"].as_u64().unwrap_or(0) + ops["range_select"].as_u64().unwrap_or(0)
    };
    // Multiplexed, reads check nothing out: the pool saw (about) the writes
    // and transactions plus the few shared connections, never the reads.
    assert!(
        *on_checkouts < total(on_ops) - reads(on_ops) / 2,
        "multiplexed: {on_checkouts} checkouts for {} operations, {} of them reads",
        total(on_ops),
        reads(on_ops)
    );
    // Off, every operation is a checkout.
    assert!(
        *off_checkouts >= total(off_ops),
        "{off_checkouts} < {}",
        total(off_ops)
    );
    assert!(on_text.contains("multiplexer"), "{on_text}");
    assert!(!off_text.contains("multiplexer"), "{off_text}");
}

#[test]
fn a_bad_multiplex_reads_value_is_a_usage_error_naming_the_flag() {
    let out = tidepool()
        .args(["bench", "--multiplex-reads", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--multiplex-reads") && err.contains("sometimes"),
        "{err}"
    );
}
