//! A database that cannot be opened is named once, with the cause — in the
//! error's own message, and in everything a reporter prints by walking the
//! error's sources.

use std::error::Error as _;
use std::path::Path;
use std::time::Duration;

use tidepool::{Manager, Pool};
use tidepool_sqlite::{SqliteConfig, SqliteError, SqliteManager};

/// The error and each of its sources, as a naive reporter prints them.
fn whole_chain(err: &SqliteError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn open_error(config: SqliteConfig) -> SqliteError {
    SqliteManager::new(config).connect().await.unwrap_err()
}

#[track_caller]
fn assert_named_once_with(err: &SqliteError, path: &Path, cause: &str) {
    let path = path.display().to_string();
    let shown = err.to_string();
    assert_eq!(shown.matches(&path).count(), 1, "{shown}");
    let chain = whole_chain(err);
    assert_eq!(chain.matches(&path).count(), 1, "{chain}");
    assert!(shown.contains(cause), "says why ({cause}): {shown}");
}

#[tokio::test]
async fn a_database_in_a_missing_directory_is_named_once_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/app.db");
    let err = open_error(SqliteConfig::file(&path)).await;
    assert_named_once_with(&err, &path, "its directory does not exist");
    assert!(
        err.to_string().contains("unable to open database file"),
        "{err}"
    );
    assert_eq!(
        err.sqlite_code(),
        Some(tidepool_sqlite::rusqlite::ErrorCode::CannotOpen)
    );
}

#[tokio::test]
async fn a_missing_file_opened_without_create_is_named_once_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let url = format!("sqlite://{}?mode=rw", path.display());
    let err = open_error(SqliteConfig::from_url(&url).unwrap()).await;
    assert_named_once_with(&err, &path, "does not exist");
    assert!(!path.exists(), "mode=rw must not create the file");
}

#[tokio::test]
async fn a_directory_given_as_the_database_is_named_once_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_error(SqliteConfig::file(dir.path())).await;
    assert_named_once_with(&err, dir.path(), "it is a directory");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named_once_with_sqlites_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let err = open_error(SqliteConfig::file(&path)).await;
    assert_named_once_with(&err, &path, "file is not a database");
}

#[tokio::test]
async fn through_the_pool_the_path_is_still_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/app.db");
    let pool = Pool::builder(SqliteManager::new(SqliteConfig::file(&path)))
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let err = pool.get().await.unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown.matches(&path.display().to_string()).count(),
        1,
        "{shown}"
    );
    assert!(shown.contains("its directory does not exist"), "{shown}");
}
