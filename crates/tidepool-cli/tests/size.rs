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
fn size_through_pgbouncer_leaves_no_server_connection_read_only() {
    let Some(url) = tidepool_testkit::pgbouncer_url(
        "size_through_pgbouncer_leaves_no_server_connection_read_only",
    ) else {
        return;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let pooled = format!("{url}{sep}sslmode=disable&tidepool_pooler=true");
    let out = tidepool()
        .args(["size", "--url", &pooled])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("4. Server limit: max_connections "));
    // A session made read-only behind a transaction pooler leaves the
    // setting on PgBouncer's server connection for the next client.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let manager = tidepool_postgres::PgManager::from_url(&pooled).unwrap();
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

fn size(args: &[&str]) -> String {
    let out = tidepool().arg("size").args(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn size_says_when_it_assumes_the_core_count_and_does_not_warn_on_the_guess() {
    let guessed = size(&["--rate", "10000", "--query-time", "5ms"]);
    assert!(
        guessed.contains("cores x 2 + spindles = 4 (assumed: pass --cores) x 2 + 1 = 9"),
        "{guessed}"
    );
    assert!(!guessed.contains("warning: the load"), "{guessed}");
    assert!(guessed.contains("pass --cores to check"), "{guessed}");
    let known = size(&["--rate", "10000", "--query-time", "5ms", "--cores", "4"]);
    assert!(!known.contains("assumed"), "{known}");
    assert!(
        known.contains("warning: the load (50.0 busy connections) exceeds"),
        "{known}"
    );
}

#[test]
fn a_max_size_above_the_databases_concurrency_is_explained() {
    // 3000/s x 4ms = 12 busy, 4 per instance; bursts need 10 per instance,
    // while 4 cores x 2 + 1 = 9 in total is 3 per instance.
    let text = size(&["--rate", "3000", "--query-time", "4ms", "--instances", "3"]);
    assert!(text.contains("9 / 3 = 3 per instance"), "{text}");
    assert!(text.contains("max stays 10, above 3"), "{text}");
    assert!(
        text.contains("max_size 10 (step 2's burst figure)"),
        "{text}"
    );
    assert!(
        text.contains("min_size 4 (step 1's average load of 4.00, rounded up, kept warm)"),
        "{text}"
    );
}

#[test]
fn a_min_size_capped_by_concurrent_requests_says_so_and_warns() {
    // 3000/s x 5ms = 15 busy on average, but at most 8 concurrent requests.
    let text = size(&["--rate", "3000", "--concurrent-requests", "8"]);
    assert!(
        text.contains("min_size 8 (step 1's average load of 15.00, capped at max_size)"),
        "{text}"
    );
    assert!(
        text.contains("max_size 8 (step 2, capped at --concurrent-requests 8)"),
        "{text}"
    );
    assert!(
        text.contains("warning: the average load per instance (15.00 busy connections) exceeds --concurrent-requests 8"),
        "{text}"
    );
}
