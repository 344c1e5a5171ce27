//! `PgError` answers two questions apart: can reconnecting help
//! (`is_retryable_connect`, what the pool asks after a failed connect) and
//! can running the statement again help (`is_retryable_statement`). A
//! caller's mistake is neither; a deadlock or a lost connection is the
//! second.

use tidepool::{Manager, Queryable};
use tidepool_postgres::{PgError, PgManager};

mod support;

async fn server_error(url: &str, sql: &str) -> PgError {
    let conn = PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    PgError::from(conn.batch_execute(sql).await.expect_err(sql))
}

#[tokio::test]
async fn a_callers_mistake_is_retryable_neither_as_a_statement_nor_as_a_connection() {
    let Some(url) = support::url("retry_client") else {
        return;
    };
    let url = support::plain(&url);
    for (sql, code) in [
        ("SELEC 1", "42601"),
        ("SELECT tidepool_no_such_column FROM pg_class", "42703"),
        ("SELECT 1 / 0", "22012"),
    ] {
        let err = server_error(&url, sql).await;
        assert_eq!(err.sqlstate(), Some(code), "{err}");
        assert!(!err.is_retryable_statement(), "{sql}: {err}");
        assert!(!err.is_retryable_connect(), "{sql}: {err}");
    }
}

#[tokio::test]
async fn a_statement_past_its_timeout_is_not_worth_running_again() {
    let Some(url) = support::url("retry_statement_timeout") else {
        return;
    };
    let sql = "SET statement_timeout = '20ms'; SELECT pg_sleep(5)";
    let err = server_error(&support::plain(&url), sql).await;
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    assert!(!err.is_retryable_statement(), "{err}");
}

#[tokio::test]
async fn a_lock_timeout_is_a_statement_worth_running_again() {
    let Some(url) = support::url("retry_lock") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&url).unwrap();
    let holder = manager.connect_one().await.unwrap();
    let waiter = manager.connect_one().await.unwrap();
    let key = i64::from(std::process::id()) + 7_000_000;
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .unwrap();
    let err = PgError::from(
        waiter
            .batch_execute(&format!(
                "SET lock_timeout = '20ms'; SELECT pg_advisory_lock({key})"
            ))
            .await
            .expect_err("the lock is held"),
    );
    assert_eq!(err.sqlstate(), Some("55P03"), "{err}");
    assert!(err.is_retryable_statement(), "{err}");
    assert!(!err.is_fatal_for_connection());
}

#[tokio::test]
async fn a_terminated_session_is_retryable_both_ways() {
    let Some(url) = support::url("retry_terminated") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&url).unwrap();
    let mut victim = manager.connect_one().await.unwrap();
    let pid = victim
        .query_one_values("SELECT pg_backend_pid() AS pid", &[])
        .await
        .unwrap()
        .get("pid")
        .and_then(|v| v.as_i64())
        .unwrap();
    let mut admin = manager.connect_one().await.unwrap();
    admin
        .execute_values("SELECT pg_terminate_backend($1::int)", &[pid.into()])
        .await
        .unwrap();
    let mut err = None;
    for _ in 0..50 {
        match victim.execute_values("SELECT 1", &[]).await {
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the terminated session fails");
    assert!(err.is_fatal_for_connection(), "{err:?}");
    assert!(err.is_retryable_statement(), "{err:?}");
    assert!(err.is_retryable_connect(), "{err:?}");
    assert!(manager.is_retryable(&err));
}

#[test]
fn configuration_and_tls_errors_are_retryable_neither_way() {
    let err = PgManager::from_url("postgres://u@h:0/db").unwrap_err();
    assert!(!err.is_retryable_connect());
    assert!(!err.is_retryable_statement());
}
