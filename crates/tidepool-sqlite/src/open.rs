//! Opening one rusqlite connection as the configuration says (flags, busy
//! timeout, pragmas), and saying why when it cannot: the path once, with
//! the cause. Runs on the connection's own thread; never retries.

use std::path::Path;

use rusqlite::OpenFlags;

use crate::config::{OpenMode, SqliteConfig, Target};
use crate::error::SqliteError;

/// Opens the database `config` names (`memory_uri` for an in-memory one)
/// and applies the connection pragmas.
pub(crate) fn open_blocking(
    config: &SqliteConfig,
    memory_uri: &str,
) -> Result<rusqlite::Connection, SqliteError> {
    let open_err = |source| open_error(config, memory_uri, source);
    let conn = match config.target() {
        Target::Memory => rusqlite::Connection::open_with_flags(
            memory_uri,
            OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE,
        ),
        // Without SQLITE_OPEN_URI for plain paths: a file name is a file name.
        Target::File(path) => rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_NO_MUTEX | mode_flags(config.get_open_mode()),
        ),
    }
    .map_err(open_err)?;
    conn.busy_timeout(config.get_busy_timeout())
        .map_err(open_err)?;
    if let Some(mode) = config.get_journal_mode() {
        if config.get_open_mode() != OpenMode::ReadOnly {
            let _: String = conn
                .query_row(
                    &format!("PRAGMA journal_mode = {}", mode.as_str()),
                    [],
                    |r| r.get(0),
                )
                .map_err(open_err)?;
        }
    }
    if let Some(level) = config.get_synchronous() {
        conn.execute_batch(&format!("PRAGMA synchronous = {}", level.as_str()))
            .map_err(open_err)?;
    }
    conn.execute_batch(if config.get_foreign_keys() {
        "PRAGMA foreign_keys = ON"
    } else {
        "PRAGMA foreign_keys = OFF"
    })
    .map_err(open_err)?;
    // A garbage file opens fine; the first read says it is not a database.
    let _: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(open_err)?;
    Ok(conn)
}

fn mode_flags(mode: OpenMode) -> OpenFlags {
    match mode {
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::ReadWriteCreate => {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        }
    }
}

/// [`SqliteError::Open`] for `source`, naming the database once.
///
/// rusqlite appends the path to SQLite's "unable to open database file";
/// with the target in front that said the path twice, and three times
/// when a reporter also printed the error's source. The path is cut from
/// SQLite's message (in the source, too), and the cause SQLite does not
/// give is looked up on the file system.
fn open_error(config: &SqliteConfig, memory_uri: &str, source: rusqlite::Error) -> SqliteError {
    let named = match config.target() {
        Target::File(path) => path.to_string_lossy().into_owned(),
        Target::Memory => memory_uri.to_string(),
    };
    let source = match source {
        rusqlite::Error::SqliteFailure(code, Some(message)) => {
            let message = strip_path(&message, &named);
            rusqlite::Error::SqliteFailure(code, Some(message))
        }
        other => other,
    };
    let mut reason = source.to_string();
    if let (Target::File(path), Some(rusqlite::ErrorCode::CannotOpen)) =
        (config.target(), source.sqlite_error_code())
    {
        if let Some(cause) = why_not_opened(path, config.get_open_mode()) {
            reason = format!("{reason} ({cause})");
        }
    }
    SqliteError::Open {
        target: config.describe(),
        reason,
        source,
    }
}

/// SQLite's `message` without a trailing `: <path>`.
fn strip_path(message: &str, path: &str) -> String {
    match message.strip_suffix(path) {
        Some(head) if !path.is_empty() => head.trim_end().trim_end_matches(':').to_string(),
        _ => message.to_string(),
    }
}

/// What is wrong with `path`, when SQLite could not open it: the part of
/// the cause its "unable to open database file" leaves out.
fn why_not_opened(path: &Path, mode: OpenMode) -> Option<String> {
    if path.is_dir() {
        return Some("it is a directory".into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.exists() {
        return Some("its directory does not exist".into());
    }
    if !parent.is_dir() {
        return Some("a component of its directory is not a directory".into());
    }
    if !path.exists() {
        return Some(match mode {
            OpenMode::ReadWriteCreate => {
                "it does not exist and could not be created: is its directory writable?".into()
            }
            OpenMode::ReadWrite | OpenMode::ReadOnly => {
                "it does not exist, and `mode=rw` or `mode=ro` does not create it".into()
            }
        });
    }
    // It exists: ask the OS the way SQLite did. (std's error says the
    // reason, e.g. "Permission denied (os error 13)", not the path.)
    std::fs::OpenOptions::new()
        .read(true)
        .write(mode != OpenMode::ReadOnly)
        .open(path)
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::strip_path;

    #[test]
    fn the_path_rusqlite_appends_is_cut_from_sqlites_message() {
        assert_eq!(
            strip_path("unable to open database file: /a/b.db", "/a/b.db"),
            "unable to open database file"
        );
        assert_eq!(
            strip_path("file is not a database", "/a/b.db"),
            "file is not a database"
        );
        assert_eq!(strip_path("x", ""), "x");
    }
}
