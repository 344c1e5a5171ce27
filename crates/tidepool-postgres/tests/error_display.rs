//! How a server error reads, alone and inside the pool's error, through a
//! chain printer (`anyhow`'s `{:#}`, the CLI's one-line report): the
//! server's message once, with its SQLSTATE, and no tokio-postgres
//! "db error" after it.

use std::time::Duration;

use tidepool::{Pool, Queryable};
use tidepool_postgres::{PgError, PgManager};

mod support;

/// The error and every source, joined as `anyhow` prints `{:#}`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The error and the sources whose text it does not already hold, as the
/// CLI's one-line report prints them. (The pool's own `Error::Create`
/// shows its source inline *and* returns it as its source, so an
/// `anyhow`-style chain repeats it; that is the core's to settle.)
fn deduplicated_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

async fn server_error(url: &str, sql: &str) -> PgError {
    let mut conn = PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    conn.execute_values(sql, &[]).await.expect_err(sql)
}

#[tokio::test]
async fn a_server_error_shows_its_message_once_with_its_sqlstate_and_no_db_error_suffix() {
    let Some(url) = support::url("display_server_error") else {
        return;
    };
    let url = support::plain(&url);
    for (sql, message, code) in [
        ("SELEC 1", "syntax error at or near \"SELEC\"", "42601"),
        (
            "SELECT tidepool_no_such_column FROM pg_class",
            "column \"tidepool_no_such_column\" does not exist",
            "42703",
        ),
    ] {
        let err = server_error(&url, sql).await;
        let shown = chain(&err);
        assert!(!shown.contains("db error"), "{shown}");
        assert_eq!(shown.matches(message).count(), 1, "{shown}");
        assert!(shown.contains(&format!("SQLSTATE {code}")), "{shown}");
        assert!(shown.starts_with("server ERROR: "), "{shown}");
    }
}

#[tokio::test]
async fn the_errors_a_transaction_pooler_causes_name_pooler_mode_as_the_fix_and_others_do_not() {
    let Some(url) = support::url("display_pooler_hint") else {
        return;
    };
    let url = support::plain(&url);
    let missing = server_error(&url, "EXECUTE tidepool_no_such_statement").await;
    assert_eq!(missing.sqlstate(), Some("26000"));
    assert!(missing.is_transaction_pooler_symptom());
    let shown = missing.to_string();
    assert!(
        shown.contains("prepared statement \"tidepool_no_such_statement\" does not exist"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "turn on pooler mode: ?tidepool_pooler=true in the URL or .transaction_pooler(true)"
        ),
        "{shown}"
    );

    let conn = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let taken = conn
        .batch_execute("PREPARE tidepool_twice AS SELECT 1; PREPARE tidepool_twice AS SELECT 2")
        .await
        .expect_err("a second PREPARE of one name");
    let taken = PgError::from(taken);
    assert_eq!(taken.sqlstate(), Some("42P05"));
    assert!(taken.to_string().contains("pooler mode"), "{taken}");

    let syntax = server_error(&url, "SELEC 1").await;
    assert!(!syntax.is_transaction_pooler_symptom());
    assert!(!syntax.to_string().contains("pooler"), "{syntax}");
}

#[tokio::test]
async fn a_refused_connection_inside_the_pools_error_shows_the_servers_message_once() {
    let Some(url) = support::url("display_create_error") else {
        return;
    };
    let manager = PgManager::from_url(&support::url_with(
        &url,
        "postgres",
        None,
        "tidepool_no_such_db",
    ))
    .unwrap();
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    let err = pool.get().await.map(|_| ()).expect_err("no such database");
    let shown = deduplicated_chain(&err);
    assert!(!shown.contains("db error"), "{shown}");
    assert_eq!(
        shown
            .matches("database \"tidepool_no_such_db\" does not exist")
            .count(),
        1,
        "{shown}"
    );
    assert!(shown.contains("SQLSTATE 3D000"), "{shown}");
}

#[tokio::test]
async fn a_connection_error_without_a_server_names_its_cause_once() {
    // Nothing listens on port 1.
    let manager = PgManager::from_url("postgres://u@127.0.0.1:1/db?sslmode=disable").unwrap();
    let err = manager
        .connect_one()
        .await
        .map(|_| ())
        .expect_err("nothing listens");
    let shown = chain(&err);
    assert!(shown.starts_with("error connecting to server"), "{shown}");
    assert_eq!(shown.matches("refused").count(), 1, "{shown}");
}
