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
