//! Errors provoked for real are classified so that the breaker counts only
//! the database's failures, and transactions retry only what can succeed.

use tidepool::{Classify, FailureKind, Manager, Queryable};
use tidepool_sqlite::{SqliteConfig, SqliteConnection, SqliteError, SqliteManager};

async fn conn() -> (SqliteManager, SqliteConnection) {
    let manager = SqliteManager::from_url("sqlite::memory:").unwrap();
    let mut conn = manager.connect().await.unwrap();
    conn.execute_values("CREATE TABLE parent (id INTEGER PRIMARY KEY)", &[])
        .await
        .unwrap();
    conn.execute_values(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id), n INTEGER NOT NULL, s TEXT UNIQUE)",
        &[],
    )
    .await
    .unwrap();
    (manager, conn)
}

#[track_caller]
fn assert_kind(err: &SqliteError, kind: FailureKind, retry: bool) {
    assert_eq!(err.failure_kind(), kind, "{err} ({err:?})");
    assert_eq!(err.is_retryable_transaction(), retry, "{err}");
}

#[tokio::test]
async fn syntax_errors_and_unknown_tables_and_columns_are_client_errors() {
    let (_m, mut c) = conn().await;
    assert_kind(
        &c.execute_values("SELEC 1", &[]).await.unwrap_err(),
        FailureKind::Client,
        false,
    );
    assert_kind(
        &c.query_values("SELECT * FROM missing", &[])
            .await
            .unwrap_err(),
        FailureKind::Client,
        false,
    );
    assert_kind(
        &c.query_values("SELECT nope FROM parent", &[])
            .await
            .unwrap_err(),
        FailureKind::Client,
        false,
    );
}

#[tokio::test]
async fn constraint_violations_are_client_errors() {
    let (_m, mut c) = conn().await;
    c.execute_values("INSERT INTO parent VALUES (1)", &[])
        .await
        .unwrap();
    c.execute_values("INSERT INTO child VALUES (1, 1, 1, 'a')", &[])
        .await
        .unwrap();
    let unique = c
        .execute_values("INSERT INTO child VALUES (2, 1, 1, 'a')", &[])
        .await
        .unwrap_err();
    assert_kind(&unique, FailureKind::Client, false);
    let not_null = c
        .execute_values("INSERT INTO child VALUES (3, 1, NULL, 'b')", &[])
        .await
        .unwrap_err();
    assert_kind(&not_null, FailureKind::Client, false);
    let fk = c
        .execute_values("INSERT INTO child VALUES (4, 99, 1, 'c')", &[])
        .await
        .unwrap_err();
    assert!(
        fk.to_string().contains("FOREIGN KEY"),
        "foreign keys are on by default: {fk}"
    );
    assert_kind(&fk, FailureKind::Client, false);
    let mismatch = c
        .execute_values("INSERT INTO child (id, n) VALUES ('not an int', 1)", &[])
        .await
        .unwrap_err();
    assert_kind(&mismatch, FailureKind::Client, false);
}

#[tokio::test]
async fn nested_begin_and_bad_parameters_are_client_errors() {
    let (_m, mut c) = conn().await;
    c.begin().await.unwrap();
    assert_kind(&c.begin().await.unwrap_err(), FailureKind::Client, false);
    c.rollback().await.unwrap();
    assert_kind(
        &c.query_values("SELECT $1", &[]).await.unwrap_err(),
        FailureKind::Client,
        false,
    );
    assert_kind(
        &c.query_one_values("SELECT 1 WHERE 0", &[])
            .await
            .unwrap_err(),
        FailureKind::Client,
        false,
    );
}

#[tokio::test]
async fn a_locked_database_is_a_retryable_transaction_failure() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?busy_timeout=0",
        dir.path().join("locked.db").display()
    );
    let manager = SqliteManager::from_url(&url).unwrap();
    let mut a = manager.connect().await.unwrap();
    let mut b = manager.connect().await.unwrap();
    a.execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    a.begin().await.unwrap();
    a.execute_values("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    let busy = b
        .execute_values("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap_err();
    assert_kind(&busy, FailureKind::Transaction, true);
    assert_eq!(
        busy.sqlite_code(),
        Some(tidepool_sqlite::rusqlite::ErrorCode::DatabaseBusy)
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_non_retryable_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let manager = SqliteManager::new(SqliteConfig::file(&path));
    let err = manager.connect().await.unwrap_err();
    assert_eq!(err.failure_kind(), FailureKind::Connect, "{err}");
    assert!(!manager.is_retryable(&err), "{err}");
    assert_eq!(manager.classify(&err), FailureKind::Connect);
    assert!(
        err.to_string().contains("garbage.db"),
        "the error names the file: {err}"
    );
}

#[tokio::test]
async fn a_database_in_a_missing_directory_is_a_non_retryable_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let manager = SqliteManager::new(SqliteConfig::file(dir.path().join("no/such/dir/x.db")));
    let err = manager.connect().await.unwrap_err();
    assert_eq!(
        err.sqlite_code(),
        Some(tidepool_sqlite::rusqlite::ErrorCode::CannotOpen),
        "{err:?}"
    );
    assert_eq!(err.failure_kind(), FailureKind::Connect);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn writing_a_read_only_database_is_a_client_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let rw = SqliteManager::new(SqliteConfig::file(&path));
    rw.connect()
        .await
        .unwrap()
        .execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    let ro = SqliteManager::from_url(&format!("sqlite://{}?mode=ro", path.display())).unwrap();
    let mut c = ro.connect().await.unwrap();
    assert_kind(
        &c.execute_values("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap_err(),
        FailureKind::Client,
        false,
    );
}
