//! Errors provoked for real on MariaDB are classified so the breaker counts
//! only the database's failures, transactions retry only what can succeed,
//! and the pool fails fast on credentials that can never work.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Manager, Pool, Queryable};
use tidepool_mysql::{MysqlError, MysqlManager};

mod support;

#[track_caller]
fn assert_class(err: &MysqlError, code: u16, kind: FailureKind, retry_tx: bool) {
    assert_eq!(err.server_code(), Some(code), "{err}");
    assert_eq!(err.failure_kind(), kind, "{err}");
    assert_eq!(err.is_retryable_transaction(), retry_tx, "{err}");
}

#[tokio::test]
async fn caller_mistakes_are_client_errors() {
    let Some(url) = support::url("mysql_errors_client") else {
        return;
    };
    let mut c = support::connect(&url).await;
    support::fresh_table(&mut c, "tp_my_err_child", "id INT").await;
    c.execute_values("DROP TABLE tp_my_err_child", &[])
        .await
        .unwrap();
    support::fresh_table(&mut c, "tp_my_err_parent", "id INT PRIMARY KEY").await;
    support::fresh_table(
        &mut c,
        "tp_my_err_child",
        "id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) REFERENCES tp_my_err_parent(id)",
    )
    .await;
    c.execute_values("INSERT INTO tp_my_err_parent VALUES (1)", &[])
        .await
        .unwrap();
    c.execute_values("INSERT INTO tp_my_err_child VALUES (1, 1)", &[])
        .await
        .unwrap();

    assert_class(
        &c.execute_values("SELEC 1", &[]).await.unwrap_err(),
        1064,
        FailureKind::Client,
        false,
    );
    let dup = c
        .execute_values("INSERT INTO tp_my_err_parent VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_class(&dup, 1062, FailureKind::Client, false);
    let fk_child = c
        .execute_values("INSERT INTO tp_my_err_child VALUES (2, 99)", &[])
        .await
        .unwrap_err();
    assert_class(&fk_child, 1452, FailureKind::Client, false);
    let fk_parent = c
        .execute_values("DELETE FROM tp_my_err_parent WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_class(&fk_parent, 1451, FailureKind::Client, false);
    assert_class(
        &c.query_values("SELECT * FROM tp_my_missing", &[])
            .await
            .unwrap_err(),
        1146,
        FailureKind::Client,
        false,
    );
    assert_class(
        &c.query_values("SELECT nope FROM tp_my_err_parent", &[])
            .await
            .unwrap_err(),
        1054,
        FailureKind::Client,
        false,
    );
    // The connection is still fine after all of that.
    assert!(!c.is_broken());
    c.execute_values("DROP TABLE tp_my_err_child", &[])
        .await
        .unwrap();
    c.execute_values("DROP TABLE tp_my_err_parent", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lock_wait_timeout_is_a_retryable_transaction_failure() {
    let Some(url) = support::url("mysql_errors_lock_wait") else {
        return;
    };
    let mut a = support::connect(&url).await;
    let mut b = support::connect(&url).await;
    support::fresh_table(&mut a, "tp_my_lockwait", "id INT PRIMARY KEY").await;
    a.execute_values("INSERT INTO tp_my_lockwait VALUES (1)", &[])
        .await
        .unwrap();
    a.begin().await.unwrap();
    a.execute_values("UPDATE tp_my_lockwait SET id = 1 WHERE id = 1", &[])
        .await
        .unwrap();
    b.execute_values("SET SESSION innodb_lock_wait_timeout = 1", &[])
        .await
        .unwrap();
    b.begin().await.unwrap();
    let err = b
        .execute_values("UPDATE tp_my_lockwait SET id = 1 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_class(&err, 1205, FailureKind::Transaction, true);
    b.rollback().await.unwrap();
    a.rollback().await.unwrap();
    a.execute_values("DROP TABLE tp_my_lockwait", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_a_non_retryable_connect_error_that_names_no_password() {
    let Some(url) = support::url("mysql_errors_password") else {
        return;
    };
    let canary = "p@ss:w%rd";
    let manager =
        MysqlManager::from_url(&support::url_as(&url, "tidepool_pw", canary, "test")).unwrap();
    let err = manager.connect().await.unwrap_err();
    assert_class(&err, 1045, FailureKind::Connect, false);
    assert!(!manager.is_retryable(&err));
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(canary) && !shown.contains("w%rd") && !shown.contains("p@ss"),
        "{shown}"
    );

    // The right password works (the user exists: .ci/setup-mariadb.sh).
    let good = MysqlManager::from_url(&support::url_as(
        &url,
        "tidepool_pw",
        "tidepool-canary",
        "test",
    ))
    .unwrap();
    let mut conn = good
        .connect()
        .await
        .expect("run .ci/setup-mariadb.sh to create tidepool_pw");
    conn.query_one_values("SELECT 1", &[]).await.unwrap();

    // The pool fails the acquire at once instead of retrying to the timeout.
    let pool = Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(Duration::from_secs(30))
        .build_lazy()
        .unwrap();
    let started = std::time::Instant::now();
    let err = pool.get().await.unwrap_err();
    assert!(
        err.create_error().and_then(MysqlError::server_code) == Some(1045),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "failed fast, not at the acquire timeout"
    );
    assert!(!format!("{err} {err:?}").contains(canary));
}

#[tokio::test]
async fn an_unknown_database_is_a_non_retryable_connect_error() {
    let Some(url) = support::url("mysql_errors_unknown_db") else {
        return;
    };
    let (host, port) = tidepool_testkit::host_port(&url, 3306).unwrap();
    let manager =
        MysqlManager::from_url(&format!("mysql://root@{host}:{port}/tp_no_such_db")).unwrap();
    let err = manager.connect().await.unwrap_err();
    assert_class(&err, 1049, FailureKind::Connect, false);
    assert!(!manager.is_retryable(&err));
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_connect_error() {
    // Port 1 on loopback: nothing listens there.
    let manager = MysqlManager::from_url("mysql://root@127.0.0.1:1/test").unwrap();
    let err = manager.connect().await.unwrap_err();
    assert_eq!(err.failure_kind(), FailureKind::Connect, "{err:?}");
    assert!(manager.is_retryable(&err));
    assert!(err.server_code().is_none());
}
