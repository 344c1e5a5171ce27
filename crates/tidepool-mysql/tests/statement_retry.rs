//! `MysqlError` answers two questions apart: can reconnecting help
//! (`is_retryable_connect`, what the pool asks after a failed connect) and
//! can running the statement again help (`is_retryable_statement`). A
//! caller's mistake is neither; a lock wait timeout or a killed connection
//! is the second.

use tidepool::{Manager, Queryable, Value};
use tidepool_mysql::MysqlManager;

mod support;

#[tokio::test]
async fn a_syntax_error_or_an_unknown_column_is_retryable_neither_way() {
    let Some(url) = support::url("mysql_retry_client") else {
        return;
    };
    let manager = MysqlManager::from_url(&url).unwrap();
    let mut conn = support::connect(&url).await;
    for (sql, code) in [
        ("SELEC 1", 1064),
        (
            "SELECT tp_no_such_column FROM information_schema.tables",
            1054,
        ),
    ] {
        let err = conn.execute_values(sql, &[]).await.unwrap_err();
        assert_eq!(err.server_code(), Some(code), "{err}");
        assert!(!manager.is_retryable(&err), "{sql}: {err}");
        assert!(!err.is_retryable_connect(), "{sql}: {err}");
        assert!(!err.is_retryable_statement(), "{sql}: {err}");
    }
}

#[tokio::test]
async fn a_lock_wait_timeout_is_a_statement_worth_running_again() {
    let Some(url) = support::url("mysql_retry_lock_wait") else {
        return;
    };
    let mut a = support::connect(&url).await;
    let mut b = support::connect(&url).await;
    let lock = format!("tp_retry_lock_{}", std::process::id());
    b.begin().await.unwrap();
    support::fresh_table(&mut a, &format!("{lock}_t"), "id INT PRIMARY KEY").await;
    a.execute_values(&format!("INSERT INTO {lock}_t VALUES (1)"), &[])
        .await
        .unwrap();
    a.begin().await.unwrap();
    a.execute_values(&format!("UPDATE {lock}_t SET id = 1 WHERE id = 1"), &[])
        .await
        .unwrap();
    b.execute_values("SET SESSION innodb_lock_wait_timeout = 1", &[])
        .await
        .unwrap();
    let err = b
        .execute_values(&format!("UPDATE {lock}_t SET id = 1 WHERE id = 1"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.server_code(), Some(1205), "{err}");
    assert!(err.is_retryable_statement(), "{err}");
    b.rollback().await.unwrap();
    a.rollback().await.unwrap();
    a.execute_values(&format!("DROP TABLE {lock}_t"), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_killed_connection_is_retryable_both_ways() {
    let Some(url) = support::url("mysql_retry_killed") else {
        return;
    };
    let manager = MysqlManager::from_url(&url).unwrap();
    let mut victim = support::connect(&url).await;
    let id = victim
        .query_one_values("SELECT CONNECTION_ID() AS id", &[])
        .await
        .unwrap()
        .get("id")
        .and_then(Value::as_i64)
        .unwrap();
    let mut admin = support::connect(&url).await;
    admin
        .execute_values(&format!("KILL {id}"), &[])
        .await
        .unwrap();
    let err = victim
        .execute_values("SELECT 1", &[])
        .await
        .expect_err("the connection was killed");
    assert!(err.is_fatal(), "{err:?}");
    assert!(err.is_retryable_statement(), "{err:?}");
    assert!(err.is_retryable_connect(), "{err:?}");
    assert!(manager.is_retryable(&err));
}
