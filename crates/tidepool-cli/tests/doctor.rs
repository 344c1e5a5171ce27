//! `tidepool doctor`: findings, and the exit status that summarizes them.

mod common;

use common::{assert_clean_failure, stderr, stdout, tidepool, CANARY};

#[test]
fn doctor_on_a_healthy_sqlite_file_reports_all_good_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "20"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("ok    connect"), "{text}");
    assert!(text.contains("20 pings of SELECT 1: p50"), "{text}");
    assert!(text.contains("journal_mode = wal"), "{text}");
    assert!(text.ends_with("all good\n"), "{text}");
}

#[test]
fn doctor_flags_a_rollback_journal_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?journal_mode=delete",
        dir.path().join("d.db").display()
    );
    let out = tidepool().args(["doctor", "--url", &url]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("warn  sqlite"), "{text}");
    assert!(text.contains("-> use journal_mode=wal"), "{text}");
}

#[test]
fn doctor_reports_a_refused_tcp_connection_without_the_password() {
    let url = format!("postgres://app:{CANARY}@127.0.0.1:1/app");
    let out = tidepool()
        .args(["doctor", "--url", &url, "--timeout", "2s"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ok    dns"), "{text}");
    assert!(text.contains("FAIL  tcp"), "{text}");
    assert!(
        text.contains("postgres://app:***@127.0.0.1:1/app"),
        "{text}"
    );
    assert!(!text.contains("c4n@ry"));
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn doctor_refuses_a_malformed_url_in_one_line() {
    let out = tidepool()
        .args(["doctor", "--url", "not a url"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 1);
}

#[test]
fn doctor_checks_postgres_end_to_end() {
    let Some(url) = tidepool_testkit::postgres_url("doctor_checks_postgres_end_to_end") else {
        return;
    };
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "20"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{text}{}",
        stderr(&out)
    );
    for check in [
        "dns", "tcp", "connect", "version", "tls", "latency", "capacity", "timeouts",
    ] {
        assert!(
            text.contains(&format!(" {check} ")),
            "no {check} finding in\n{text}"
        );
    }
    assert!(text.contains("PostgreSQL"), "{text}");
}

#[test]
fn doctor_fails_the_capacity_check_when_planned_pools_exceed_max_connections() {
    let Some(url) = tidepool_testkit::postgres_url(
        "doctor_fails_the_capacity_check_when_planned_pools_exceed_max_connections",
    ) else {
        return;
    };
    let out = tidepool()
        .args([
            "doctor",
            "--url",
            &url,
            "--pings",
            "5",
            "--max-size",
            "100",
            "--instances",
            "50",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  capacity"), "{text}");
    assert!(text.contains("planned pools: 50 x 100 = 5000"), "{text}");
}

#[test]
fn doctor_checks_mariadb_end_to_end() {
    let Some(url) = tidepool_testkit::mysql_url("doctor_checks_mariadb_end_to_end") else {
        return;
    };
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "20"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{text}{}",
        stderr(&out)
    );
    for check in [
        "dns", "tcp", "connect", "version", "tls", "latency", "capacity",
    ] {
        assert!(
            text.contains(&format!(" {check} ")),
            "no {check} finding in\n{text}"
        );
    }
    assert!(text.contains("wait_timeout = "), "{text}");
    assert!(text.contains("MySQL/MariaDB"), "{text}");
}

#[test]
fn doctor_warns_when_the_server_cuts_idle_connections_before_the_pool_does() {
    let Some(url) = tidepool_testkit::mysql_url(
        "doctor_warns_when_the_server_cuts_idle_connections_before_the_pool_does",
    ) else {
        return;
    };
    // MariaDB's wait_timeout defaults to 8h; a pool keeping idle
    // connections for a day with no health checks would be cut.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.toml");
    std::fs::write(
        &file,
        "idle_timeout = \"1day\"\nhealth_check_interval = \"1day\"\n",
    )
    .unwrap();
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "5", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("warn  timeouts  wait_timeout"), "{text}");
    assert!(text.contains("set idle_timeout below"), "{text}");
}
