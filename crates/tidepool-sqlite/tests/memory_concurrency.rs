//! What `sqlite::memory:` does differently from a file database while one
//! connection holds a write transaction, measured side by side.
//!
//! A file database lets readers on other connections read the last commit
//! (WAL, and a rollback journal until the writer commits). The in-memory
//! database (SQLite's `memdb` VFS) cannot: its lock lets no reader start
//! once a writer holds the write lock, and it cannot use WAL. So readers
//! wait for the write transaction to end — up to `busy_timeout` — and then
//! read its commit, or fail with a retryable `SQLITE_BUSY`. A reader whose
//! copy of the schema is stale gets that `SQLITE_BUSY` too, never a false
//! "no such table". These tests pin all of it, so a change of SQLite or of
//! VFS that alters it shows up here.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Manager, Queryable, Value};
use tidepool_sqlite::{SqliteConnection, SqliteError, SqliteManager};

struct Setup {
    _dir: Option<tempfile::TempDir>,
    manager: SqliteManager,
}

/// A manager for `kind` (`memory`, `wal` or `delete`) with `busy_timeout`.
fn setup(kind: &str, busy_timeout: &str) -> Setup {
    if kind == "memory" {
        let url = format!("sqlite::memory:?busy_timeout={busy_timeout}");
        return Setup {
            _dir: None,
            manager: SqliteManager::from_url(&url).unwrap(),
        };
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?journal_mode={kind}&busy_timeout={busy_timeout}",
        dir.path().join("db.sqlite").display()
    );
    Setup {
        _dir: Some(dir),
        manager: SqliteManager::from_url(&url).unwrap(),
    }
}

async fn count(conn: &mut SqliteConnection) -> Result<i64, SqliteError> {
    let row = conn.query_one_values("SELECT count(*) FROM t", &[]).await?;
    Ok(row.get(0).and_then(Value::as_i64).unwrap_or(-1))
}

/// A writer that committed one row, then opened a write transaction and
/// wrote a second, left open; and a reader that has already read `t`.
async fn writer_holding_a_write_transaction(
    manager: &SqliteManager,
) -> (SqliteConnection, SqliteConnection) {
    let mut writer = manager.connect().await.unwrap();
    let mut reader = manager.connect().await.unwrap();
    writer
        .execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    writer
        .execute_values("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    assert_eq!(count(&mut reader).await.unwrap(), 1);
    writer.begin().await.unwrap();
    writer
        .execute_values("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap();
    (writer, reader)
}

#[tokio::test]
async fn a_reader_of_a_file_database_reads_the_last_commit_while_a_write_transaction_is_open() {
    for kind in ["wal", "delete"] {
        let s = setup(kind, "5s");
        let (_writer, mut reader) = writer_holding_a_write_transaction(&s.manager).await;
        let started = std::time::Instant::now();
        assert_eq!(count(&mut reader).await.unwrap(), 1, "{kind}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{kind}: did not wait"
        );
    }
}

#[tokio::test]
async fn a_reader_of_the_in_memory_database_waits_for_the_write_transaction_and_reads_its_commit() {
    let s = setup("memory", "10s");
    let (mut writer, mut reader) = writer_holding_a_write_transaction(&s.manager).await;
    let read = tokio::spawn(async move { count(&mut reader).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!read.is_finished(), "the reader waits for the writer");
    writer.commit().await.unwrap();
    assert_eq!(read.await.unwrap().unwrap(), 2, "it reads the commit");
}

#[tokio::test]
async fn a_reader_of_the_in_memory_database_gets_a_retryable_busy_after_busy_timeout() {
    let s = setup("memory", "100ms");
    let (_writer, mut reader) = writer_holding_a_write_transaction(&s.manager).await;
    let err = count(&mut reader).await.unwrap_err();
    assert_eq!(
        err.sqlite_code(),
        Some(tidepool_sqlite::rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
    assert_eq!(err.failure_kind(), FailureKind::Transaction);
    assert!(err.is_retryable_transaction());
}

/// A reader that connected, and read, before `t` was created: its copy of
/// the schema has no `t`.
async fn stale_reader_and_writer_holding_a_write_transaction(
    manager: &SqliteManager,
) -> (SqliteConnection, SqliteConnection) {
    let mut writer = manager.connect().await.unwrap();
    let mut reader = manager.connect().await.unwrap();
    reader
        .execute_values("CREATE TABLE other (y INTEGER)", &[])
        .await
        .unwrap();
    reader
        .query_values("SELECT * FROM other", &[])
        .await
        .unwrap();
    writer
        .execute_values("CREATE TABLE t (x INTEGER)", &[])
        .await
        .unwrap();
    writer
        .execute_values("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    writer.begin().await.unwrap();
    writer
        .execute_values("INSERT INTO t VALUES (2)", &[])
        .await
        .unwrap();
    (writer, reader)
}

#[tokio::test]
async fn a_file_database_reader_with_a_stale_schema_finds_a_committed_table_at_once() {
    for kind in ["wal", "delete"] {
        let s = setup(kind, "5s");
        let (_writer, mut reader) =
            stale_reader_and_writer_holding_a_write_transaction(&s.manager).await;
        assert_eq!(count(&mut reader).await.unwrap(), 1, "{kind}");
    }
}

#[tokio::test]
async fn an_in_memory_reader_with_a_stale_schema_gets_busy_not_a_false_no_such_table() {
    let s = setup("memory", "100ms");
    let (mut writer, mut reader) =
        stale_reader_and_writer_holding_a_write_transaction(&s.manager).await;
    let err = count(&mut reader).await.unwrap_err();
    assert!(!err.to_string().contains("no such table"), "{err}");
    assert_eq!(
        err.sqlite_code(),
        Some(tidepool_sqlite::rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
    assert!(err.is_retryable_transaction(), "{err}");
    // Once the writer is done, the same reader finds the table.
    writer.commit().await.unwrap();
    assert_eq!(count(&mut reader).await.unwrap(), 2);
}

#[tokio::test]
async fn an_in_memory_reader_with_a_stale_schema_waits_and_reads_when_the_writer_commits_in_time() {
    let s = setup("memory", "10s");
    let (mut writer, mut reader) =
        stale_reader_and_writer_holding_a_write_transaction(&s.manager).await;
    let read = tokio::spawn(async move { count(&mut reader).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    writer.commit().await.unwrap();
    assert_eq!(read.await.unwrap().unwrap(), 2);
}

#[tokio::test]
async fn a_table_that_really_does_not_exist_is_still_no_such_table_once_the_writer_is_done() {
    let s = setup("memory", "100ms");
    let (mut writer, mut reader) =
        stale_reader_and_writer_holding_a_write_transaction(&s.manager).await;
    writer.commit().await.unwrap();
    let err = reader
        .query_values("SELECT * FROM missing", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such table"), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::Client);
}
