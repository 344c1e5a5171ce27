//! The PostgreSQL harness against a real server: every pool it compares can
//! run the `SELECT 1` workload, and the URL helper gives pgbench the right
//! arguments. Skipped (with a notice) when no server answers.

use std::time::Duration;

use tidepool_bench::pg::{cli_args, libpq_sslmode, run_point, PgKind, PgSpec, Workload};

#[test]
fn every_pool_runs_select_one_without_errors() {
    let Some(url) = tidepool_testkit::postgres_url("bench_every_pool_runs_select_one") else {
        return;
    };
    for pool in [
        PgKind::Tidepool,
        PgKind::TidepoolNotest,
        PgKind::TidepoolBalanced,
        PgKind::TidepoolDeadpoolWay,
        PgKind::Deadpool,
        PgKind::DeadpoolVerified,
        PgKind::Bb8,
        PgKind::Bb8Notest,
        PgKind::Sqlx,
        PgKind::SqlxNotest,
    ] {
        let spec = PgSpec {
            pool,
            workload: Workload::Select1,
            size: 2,
            concurrency: 3,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(100),
        };
        let sample = run_point(&spec, &url, 0).unwrap();
        assert_eq!(
            sample.errors,
            0,
            "{}: {:?}",
            pool.name(),
            sample.first_error
        );
        assert!(sample.tps > 0.0, "{} completed no transaction", pool.name());
    }
}

#[test]
fn pgbench_gets_host_port_user_and_database_from_the_url() {
    let (args, db) = cli_args("postgres://bench@127.0.0.1:5433/tidepool_bench").unwrap();
    assert_eq!(args, ["-h", "127.0.0.1", "-p", "5433", "-U", "bench"]);
    assert_eq!(db, "tidepool_bench");
    assert!(cli_args("postgres://bench@127.0.0.1:5433").is_err());
}

#[test]
fn pgbench_is_told_the_urls_sslmode() {
    assert_eq!(
        libpq_sslmode("postgres://a@127.0.0.1/db?sslmode=disable").unwrap(),
        "disable"
    );
    assert_eq!(
        libpq_sslmode("postgres://a@127.0.0.1/db").unwrap(),
        "prefer"
    );
}
