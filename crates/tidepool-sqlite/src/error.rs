//! The crate's one error type and how each case is classified for the
//! pool's breaker. A database's path may appear in messages (it is what
//! could not be opened, and not a secret); nothing else the caller typed
//! does — not an unknown option, not a bad value — since a secret pasted
//! into the wrong place must not reach a log.

use rusqlite::ffi::ErrorCode;
use tidepool::{Classify, FailureKind};

/// Everything that can go wrong in `tidepool-sqlite`.
///
/// ```
/// use tidepool::{Classify, FailureKind};
/// use tidepool_sqlite::SqliteError;
///
/// let err: SqliteError = "postgres://x".parse::<tidepool_sqlite::SqliteConfig>().unwrap_err();
/// assert_eq!(err.failure_kind(), FailureKind::Client);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The URL could not be parsed.
    #[error("invalid sqlite URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A known URL option has a value it does not take. The value is not
    /// repeated.
    #[error("invalid sqlite option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name (always one of the known options).
        name: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A URL option this driver does not know. It is named by position
    /// only: an unknown option may be a secret (`?key=...`, or a password
    /// cut in two by an unencoded `&`).
    #[error(
        "the sqlite URL's option number {position} (counting from 1) is not a known option \
         (known: journal_mode, busy_timeout, foreign_keys, synchronous, mode, begin); \
         it is not repeated here, as it may hold a secret"
    )]
    UnknownOption {
        /// Where the option is among the URL's options, from 1.
        position: usize,
    },
    /// Opening the database or applying the connection pragmas failed.
    #[error("could not open {target}: {reason}")]
    Open {
        /// The database, as described by [`SqliteConfig::describe`](crate::SqliteConfig::describe).
        target: String,
        /// Why, in one line: SQLite's message (without the path, which
        /// `target` already names) and, when SQLite says no more than
        /// "unable to open database file", what is wrong with the path.
        reason: String,
        /// SQLite's error (its message, too, without the path).
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite reported an error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The connection's worker thread could not be started.
    #[error("could not start the connection's worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The connection's worker thread is gone (it was closed, or a call
    /// panicked on it). The connection is unusable; the pool discards it.
    #[error("the sqlite connection's worker thread has stopped; the connection is unusable")]
    WorkerGone,
    /// `query_one` got a number of rows other than one.
    #[error("expected exactly one row, got {rows}")]
    RowCount {
        /// How many rows the query returned (counting stops at 2).
        rows: usize,
    },
    /// A parameter did not match the statement's placeholders.
    #[error("parameter mismatch: {reason}")]
    Parameters {
        /// What did not match.
        reason: String,
    },
    /// A parameter value of a kind this driver cannot bind.
    #[error("unsupported parameter value at position {position}: {reason}")]
    UnsupportedValue {
        /// One-based position of the parameter.
        position: usize,
        /// Why it cannot be bound.
        reason: String,
    },
    /// A row read with [`tidepool::Row::try_get`] or [`tidepool::FromRow`]
    /// had a missing column or a value of another type; here so that `?`
    /// works inside a transaction body.
    #[error(transparent)]
    Row(#[from] tidepool::RowError),
}

impl SqliteError {
    /// SQLite's primary result code, when the error came from SQLite.
    pub fn sqlite_code(&self) -> Option<ErrorCode> {
        match self {
            SqliteError::Sqlite(e) | SqliteError::Open { source: e, .. } => sqlite_code(e),
            _ => None,
        }
    }

    /// Whether connecting again could help (the pool fails fast otherwise).
    pub fn is_retryable(&self) -> bool {
        match self {
            SqliteError::InvalidUrl { .. }
            | SqliteError::InvalidOption { .. }
            | SqliteError::UnknownOption { .. } => false,
            SqliteError::Open { source, .. } => !matches!(
                sqlite_code(source),
                Some(
                    ErrorCode::CannotOpen
                        | ErrorCode::NotADatabase
                        | ErrorCode::DatabaseCorrupt
                        | ErrorCode::PermissionDenied
                        | ErrorCode::ReadOnly
                )
            ),
            _ => true,
        }
    }
}

fn sqlite_code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        _ => None,
    }
}

fn classify_code(code: ErrorCode) -> FailureKind {
    match code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => FailureKind::Transaction,
        // SQLITE_ERROR covers syntax errors, unknown tables and columns, and
        // "cannot start a transaction within a transaction": the caller's SQL.
        ErrorCode::Unknown
        | ErrorCode::ConstraintViolation
        | ErrorCode::TypeMismatch
        | ErrorCode::TooBig
        | ErrorCode::ParameterOutOfRange
        | ErrorCode::ApiMisuse
        | ErrorCode::AuthorizationForStatementDenied
        | ErrorCode::ReadOnly => FailureKind::Client,
        ErrorCode::CannotOpen
        | ErrorCode::NotADatabase
        | ErrorCode::SystemIoFailure
        | ErrorCode::DatabaseCorrupt
        | ErrorCode::PermissionDenied
        | ErrorCode::FileLockingProtocolFailed
        | ErrorCode::NoLargeFileSupport => FailureKind::Connect,
        ErrorCode::OperationInterrupted => FailureKind::Timeout,
        _ => FailureKind::Query,
    }
}

fn classify_rusqlite(e: &rusqlite::Error) -> FailureKind {
    match sqlite_code(e) {
        Some(code) => classify_code(code),
        None => match e {
            rusqlite::Error::SqliteSingleThreadedMode | rusqlite::Error::InvalidPath(_) => {
                FailureKind::Connect
            }
            rusqlite::Error::UnwindingPanic => FailureKind::Query,
            // Conversions, bad parameter names or counts, wrong column
            // indexes, multiple statements: all the caller's.
            _ => FailureKind::Client,
        },
    }
}

impl Classify for SqliteError {
    fn failure_kind(&self) -> FailureKind {
        match self {
            SqliteError::InvalidUrl { .. }
            | SqliteError::InvalidOption { .. }
            | SqliteError::UnknownOption { .. }
            | SqliteError::RowCount { .. }
            | SqliteError::Parameters { .. }
            | SqliteError::UnsupportedValue { .. }
            | SqliteError::Row(_) => FailureKind::Client,
            SqliteError::Open { source, .. } => match classify_rusqlite(source) {
                // A busy database while applying pragmas is still a
                // connection that could not be made.
                FailureKind::Client | FailureKind::Transaction => FailureKind::Connect,
                kind => kind,
            },
            SqliteError::Sqlite(e) => classify_rusqlite(e),
            SqliteError::Spawn(_) | SqliteError::WorkerGone => FailureKind::Connect,
        }
    }

    fn is_retryable_transaction(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        ) && matches!(self, SqliteError::Sqlite(_))
    }
}
