//! What the in-memory database does differently from a file, and the one
//! place this driver compensates.
//!
//! `sqlite::memory:` is SQLite's `memdb` VFS. Its lock lets no reader start
//! while another connection holds the write lock (from a transaction's
//! first write, or `BEGIN IMMEDIATE`, to its end), where a file lets
//! readers read the last commit; and it has no shared memory, so no WAL.
//! Readers therefore wait up to `busy_timeout` and then fail with
//! `SQLITE_BUSY`. One case fails worse: a connection whose copy of the
//! schema is stale (another connection created or changed a table since
//! it last read the schema) checks it at prepare time, cannot take the
//! read lock to re-read it, and SQLite then reports the stale answer —
//! "no such table" for a table that exists — as a caller's mistake.
//! [`prepare`] reports that case as the `SQLITE_BUSY` it is.

use std::time::Duration;

use rusqlite::{CachedStatement, Connection, ErrorCode};

use crate::error::SqliteError;

/// Prepares `sql` through the statement cache. On an in-memory database
/// (`in_memory`), a schema error at prepare time outside a transaction is
/// checked: if the database cannot be read right now, the error may come
/// from a stale schema, and the lock is what is reported; if it can, the
/// prepare is tried once more, re-reading the schema if it changed.
pub(crate) fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    in_memory: bool,
) -> Result<CachedStatement<'c>, SqliteError> {
    let err = match conn.prepare_cached(sql) {
        Ok(stmt) => return Ok(stmt),
        Err(e) => e,
    };
    // Inside a transaction this connection already holds the read lock,
    // and SQLite re-read the schema when it took it.
    if !in_memory || !conn.is_autocommit() || !may_come_from_a_stale_schema(&err) {
        return Err(err.into());
    }
    match readable_now(conn) {
        Ok(()) => conn.prepare_cached(sql).map_err(SqliteError::from),
        Err(busy) if busy.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => Err(busy.into()),
        Err(_) => Err(err.into()),
    }
}

/// Whether SQLite's error names a schema object it did not find, or found
/// already there: what a stale copy of the schema answers.
fn may_come_from_a_stale_schema(err: &rusqlite::Error) -> bool {
    let message = match err {
        rusqlite::Error::SqliteFailure(e, Some(m)) if e.code == ErrorCode::Unknown => m,
        rusqlite::Error::SqlInputError { error, msg, .. } if error.code == ErrorCode::Unknown => {
            msg
        }
        _ => return false,
    };
    [
        "no such table",
        "no such column",
        "no such index",
        "no such view",
        "no such trigger",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix))
        || message.ends_with("already exists")
}

/// Reads the schema cookie without waiting (the failed prepare already
/// waited `busy_timeout`): `SQLITE_BUSY` if a writer holds the lock.
fn readable_now(conn: &Connection) -> Result<(), rusqlite::Error> {
    let busy_ms: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    conn.busy_timeout(Duration::ZERO)?;
    let probe = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0));
    conn.busy_timeout(Duration::from_millis(busy_ms.max(0).unsigned_abs()))?;
    probe.map(drop)
}
