//! Server settings from the connection string, applied in the startup
//! packet: `statement_timeout=` and libpq's `options=-c name=value` (also
//! from `PGOPTIONS`), checked on the real server with `SHOW`.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Pool, Queryable, Value};
use tidepool_postgres::{PgConfig, PgManager, ResetPolicy};

mod support;

/// What the server says the setting is, on a fresh connection.
async fn show(manager: &PgManager, setting: &str) -> String {
    let mut conn = manager.connect_one().await.unwrap();
    let row = conn
        .query_one_values(&format!("SHOW {setting}"), &[])
        .await
        .unwrap();
    row.get(setting)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn statement_timeout_in_the_url_is_the_servers_setting_from_the_first_statement() {
    let Some(url) = support::url("startup_statement_timeout") else {
        return;
    };
    let url = format!("{}&statement_timeout=5s", support::plain(&url));
    let manager = PgManager::from_url(&url).unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "5s");
    // A bare number is milliseconds, as in postgresql.conf.
    let url = url.replace("statement_timeout=5s", "statement_timeout=1500");
    let manager = PgManager::from_url(&url).unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "1500ms");
}

#[tokio::test]
async fn options_in_libpq_form_set_server_settings_in_urls_and_key_value_strings() {
    let Some(url) = support::url("startup_options") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&format!(
        "{url}&options=-c%20statement_timeout%3D7s%20-c%20lock_timeout%3D2s"
    ))
    .unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "7s");
    assert_eq!(show(&manager, "lock_timeout").await, "2s");

    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    let kv = format!(
        "host={host} port={port} user=postgres dbname=test sslmode=disable options='-c statement_timeout=8s'"
    );
    let manager = PgManager::from_url(&kv).unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "8s");
}

#[tokio::test]
async fn an_explicit_statement_timeout_wins_over_one_in_options() {
    let Some(url) = support::url("startup_both") else {
        return;
    };
    let url = format!(
        "{}&options=-c%20statement_timeout%3D7s&statement_timeout=3s",
        support::plain(&url)
    );
    let manager = PgManager::from_url(&url).unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "3s");
}

#[tokio::test]
async fn the_setter_and_the_environment_reach_the_server_too() {
    let Some(url) = support::url("startup_setter_env") else {
        return;
    };
    let base: PgConfig = support::plain(&url).parse().unwrap();
    let manager = PgManager::builder(base.clone().statement_timeout(Duration::from_millis(2500)))
        .build()
        .unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "2500ms");

    let (host, port) = tidepool_testkit::host_port(&url, 5432).unwrap();
    let env = [
        ("PGHOST", host),
        ("PGPORT", port.to_string()),
        ("PGUSER", "postgres".to_string()),
        ("PGDATABASE", "test".to_string()),
        ("PGSSLMODE", "disable".to_string()),
        ("PGOPTIONS", "-c statement_timeout=9s".to_string()),
    ];
    let from_env = PgConfig::from_env_with(|name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let manager = PgManager::builder(from_env).build().unwrap();
    assert_eq!(show(&manager, "statement_timeout").await, "9s");
}

#[tokio::test]
async fn a_statement_past_the_timeout_fails_as_a_timeout() {
    let Some(url) = support::url("startup_timeout_fires") else {
        return;
    };
    let url = format!("{}&statement_timeout=50ms", support::plain(&url));
    let mut conn = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let err = conn
        .execute_values("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("past the timeout");
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::Timeout);
}

#[tokio::test]
async fn the_setting_survives_the_clean_reset_of_a_returned_connection() {
    let Some(url) = support::url("startup_survives_reset") else {
        return;
    };
    let url = format!("{}&statement_timeout=5s", support::plain(&url));
    let pool: Pool<PgManager> = support::pool(&url, 1, ResetPolicy::Clean).await;
    {
        let mut conn = pool.get().await.unwrap();
        conn.execute_values("SET statement_timeout = '1s'", &[])
            .await
            .unwrap();
    }
    let mut conn = pool.get().await.unwrap();
    let row = conn
        .query_one_values("SHOW statement_timeout", &[])
        .await
        .unwrap();
    // RESET ALL returns to the session's default, which is the startup
    // packet's value, not the server's.
    assert_eq!(
        row.get("statement_timeout").and_then(Value::as_str),
        Some("5s")
    );
}
