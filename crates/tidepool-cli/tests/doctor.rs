//! `tidepool doctor`: findings, and the exit status that summarizes them.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_clean_failure, stderr, stdout, tidepool, CANARY};

/// A SQLite database file made with `journal_mode`, holding one table.
fn sqlite_db(dir: &Path, journal_mode: &str) -> PathBuf {
    let path = dir.join("d.db");
    let c = tidepool_sqlite::rusqlite::Connection::open(&path).unwrap();
    c.query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |_| {
        Ok(())
    })
    .unwrap();
    c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    path
}

/// The file names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The journal mode a fresh connection finds the file in.
fn journal_mode(path: &Path) -> String {
    let c = tidepool_sqlite::rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn doctor_on_a_healthy_sqlite_file_reports_all_good_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "wal");
    let url = format!("sqlite://{}", db.display());
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "20"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("ok    connect"), "{text}");
    assert!(text.contains("opened read-only"), "{text}");
    assert!(text.contains("1 table(s)"), "{text}");
    assert!(text.contains("20 runs of SELECT 1"), "{text}");
    assert!(
        !text.contains("p50 0.00 ms"),
        "an in-process figure reads as zero: {text}"
    );
    assert!(text.contains("journal_mode = wal"), "{text}");
    assert!(text.ends_with("all good\n"), "{text}");
}

#[test]
fn doctor_reports_a_rollback_journal_and_leaves_the_database_as_it_found_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "delete");
    let before = listing(dir.path());
    let url = format!("sqlite://{}", db.display());
    let out = tidepool().args(["doctor", "--url", &url]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("warn  journal"), "{text}");
    assert!(text.contains("-> use journal_mode=wal"), "{text}");
    assert_eq!(
        journal_mode(&db),
        "delete",
        "the doctor switched the database to WAL"
    );
    assert_eq!(listing(dir.path()), before, "the doctor left files behind");
}

#[test]
fn doctor_reads_a_wal_database_without_leaving_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "wal");
    let before = listing(dir.path());
    let url = format!("sqlite://{}", db.display());
    let out = tidepool().args(["doctor", "--url", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn doctor_on_a_mistyped_sqlite_path_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("missing.db");
    let url = format!("sqlite://{}", typo.display());
    let out = tidepool().args(["doctor", "--url", &url]).output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("FAIL  file"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(!text.contains("all good"), "{text}");
    assert!(!typo.exists(), "the doctor created {}", typo.display());
    assert!(listing(dir.path()).is_empty());
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
    assert!(text.contains("session set read-only"), "{text}");
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
    assert!(text.contains("session set read-only"), "{text}");
}

#[test]
fn a_refused_mariadb_login_gets_mysql_advice_not_postgresql_advice() {
    let Some(url) = tidepool_testkit::mysql_url(
        "a_refused_mariadb_login_gets_mysql_advice_not_postgresql_advice",
    ) else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 3306).unwrap();
    let url = format!("mysql://tidepool_nobody:c4n%40ry%3Ap%25ss@{host}:{port}/test");
    let out = tidepool()
        .args(["doctor", "--url", &url, "--timeout", "5s"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("FAIL  connect"), "{text}");
    assert!(text.contains("ssl-mode"), "{text}");
    assert!(text.contains("'user'@'host'"), "{text}");
    assert!(!text.contains("pg_hba"), "{text}");
    assert!(!text.contains("sslmode"), "{text}");
    assert!(!text.contains("c4n"), "{text}");
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
