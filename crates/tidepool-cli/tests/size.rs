//! `tidepool size`: the arithmetic, shown, and limits read from a server.

mod common;

use common::{stderr, stdout, tidepool};

#[test]
fn size_explains_each_step_and_ends_with_a_recommendation() {
    let out = tidepool()
        .args([
            "size",
            "--rate",
            "2000",
            "--query-time",
            "4ms",
            "--instances",
            "3",
            "--cores",
            "8",
            "--max-connections",
            "200",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("2000 queries/s x 4ms per query = 8.00 connections busy"),
        "{text}"
    );
    assert!(
        text.contains("cores x 2 + spindles = 8 x 2 + 1 = 17"),
        "{text}"
    );
    assert!(
        text.contains("max_connections 200 - 20 kept free = 180"),
        "{text}"
    );
    assert!(text.contains("min_size = 3\nmax_size = 8"), "{text}");
}

#[test]
fn size_reads_settings_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "[size]\nrate = 500\nquery_time = \"10ms\"\n").unwrap();
    let out = tidepool()
        .args(["size", "--config"])
        .arg(&file)
        .env("TIDEPOOL_INSTANCES", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("500 queries/s x 10ms per query = 5.00 connections busy on average, 2.50 per instance (2 instances)"), "{text}");
}

#[test]
fn size_on_sqlite_says_there_is_no_connection_limit() {
    let out = tidepool()
        .args(["size", "--url", "sqlite::memory:"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("SQLite has no connection limit"));
}

#[test]
fn size_reads_max_connections_from_postgres() {
    let Some(url) = tidepool_testkit::postgres_url("size_reads_max_connections_from_postgres")
    else {
        return;
    };
    let out = tidepool().args(["size", "--url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("server: PostgreSQL"), "{text}");
    assert!(text.contains("4. Server limit: max_connections "), "{text}");
    assert!(text.contains("in use right now"), "{text}");
}

#[test]
fn size_reads_max_connections_from_mariadb() {
    let Some(url) = tidepool_testkit::mysql_url("size_reads_max_connections_from_mariadb") else {
        return;
    };
    let out = tidepool().args(["size", "--url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("server: MySQL/MariaDB"), "{text}");
    assert!(text.contains("4. Server limit: max_connections "), "{text}");
}
