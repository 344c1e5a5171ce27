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
    // Straight to the server: no pooler in front.
    assert!(
        pooler_line(&text).starts_with("  ok    pooler    none detected"),
        "a direct server is not taken for a pooler:\n{text}"
    );
}

/// `doctor` against the PgBouncer on :6432 (transaction mode), with the
/// URL's extra parameters.
fn doctor_through_pgbouncer(test: &str, extra: &str) -> Option<(Option<i32>, String)> {
    let url = tidepool_testkit::pgbouncer_url(test)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}sslmode=disable{extra}");
    let out = tidepool()
        .args(["doctor", "--url", &url, "--pings", "5"])
        .output()
        .unwrap();
    Some((
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    ))
}

#[test]
fn doctor_detects_pgbouncer_in_transaction_mode_and_says_pooler_mode_is_needed() {
    let Some((code, text)) = doctor_through_pgbouncer(
        "doctor_detects_pgbouncer_in_transaction_mode_and_says_pooler_mode_is_needed",
        "",
    ) else {
        return;
    };
    let line = pooler_line(&text);
    assert!(line.starts_with("  warn  pooler"), "{text}");
    assert!(line.contains("PgBouncer 1."), "{line}");
    assert!(line.contains("pool_mode transaction"), "{line}");
    assert!(line.contains("pooler mode is off"), "{line}");
    assert!(
        text.contains("-> add tidepool_pooler=true to the URL"),
        "{text}"
    );
    assert_eq!(code, Some(1), "a finding that needs attention:\n{text}");
    // Its own session ran in pooler mode: every read worked.
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("ok    latency"), "{text}");
    assert!(
        text.contains("session not set read-only (behind a pooler"),
        "{text}"
    );
    no_server_connection_left_read_only();
}

/// The finding line of the `pooler` check.
fn pooler_line(text: &str) -> &str {
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some("pooler"))
        .unwrap_or_else(|| panic!("no pooler finding:\n{text}"))
}

/// Through PgBouncer, no server connection says transactions are
/// read-only by default: a doctor that set its session read-only behind a
/// transaction pooler left that on the shared server connections (found
/// so, and fixed: behind a pooler it sets nothing).
fn no_server_connection_left_read_only() {
    let url = tidepool_testkit::pgbouncer_url_unchecked();
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}sslmode=disable&tidepool_pooler=true");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let manager = tidepool_postgres::PgManager::from_url(&url).unwrap();
        // More clients than PgBouncer's default_pool_size (4), one after
        // another, so every server connection serves one of them.
        for _ in 0..12 {
            let conn = manager.connect_one().await.unwrap();
            let rows = conn
                .simple_query("SHOW default_transaction_read_only")
                .await
                .unwrap();
            let value = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            assert_eq!(value.as_deref(), Some("off"));
        }
    });
}

#[test]
fn doctor_through_pgbouncer_with_pooler_mode_on_is_satisfied() {
    let Some((code, text)) = doctor_through_pgbouncer(
        "doctor_through_pgbouncer_with_pooler_mode_on_is_satisfied",
        "&tidepool_pooler=true",
    ) else {
        return;
    };
    assert!(
        text.contains("ok    pooler    PgBouncer 1.")
            && text.contains("pooler mode is on, as transaction pooling needs"),
        "{text}"
    );
    assert!(!text.contains("warn  pooler"), "{text}");
    assert!(pooler_line(&text).starts_with("  ok    pooler"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(matches!(code, Some(0 | 1)), "{text}");
    no_server_connection_left_read_only();
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
