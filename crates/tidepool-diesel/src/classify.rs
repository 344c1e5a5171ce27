//! How an error maps to a [`FailureKind`], in one place for the pool's
//! breaker and for callers.
//!
//! Connecting goes through the drivers themselves (tokio-postgres,
//! mysql_async), so connect errors keep the server's code: PostgreSQL's
//! SQLSTATE and MySQL's error number, read with the same tables as
//! tidepool-postgres and tidepool-mysql (tests pin that they agree).
//!
//! Query errors are diesel's. diesel keeps the kind of a constraint
//! violation and of a serialization failure, and drops the server's code
//! for everything else (`DatabaseErrorKind::Unknown` with the message
//! only). For those the server's message decides, for the few failures the
//! breaker must tell apart: a lost connection, a deadlock, a lock or
//! statement timeout, and the commonest caller mistakes (syntax, unknown
//! table or column). Servers speak English here unless `lc_messages` says
//! otherwise; a message we do not know counts as [`FailureKind::Query`],
//! which is what an unclassified server error is.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tidepool::FailureKind;

/// The failure kind of a diesel error.
///
/// ```
/// use diesel::result::{DatabaseErrorKind, Error};
/// use tidepool::FailureKind;
/// use tidepool_diesel::classify;
///
/// let unique = Error::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new("duplicate key".to_string()));
/// assert_eq!(classify(&unique), FailureKind::Client);
/// let serialization = Error::DatabaseError(DatabaseErrorKind::SerializationFailure, Box::new("could not serialize".to_string()));
/// assert_eq!(classify(&serialization), FailureKind::Transaction);
/// let closed = Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new("closed".to_string()));
/// assert_eq!(classify(&closed), FailureKind::Connect);
/// assert_eq!(classify(&Error::NotFound), FailureKind::Client);
/// ```
pub fn classify(error: &DieselError) -> FailureKind {
    match error {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::RestrictViolation
            | DatabaseErrorKind::ExclusionViolation
            | DatabaseErrorKind::ReadOnlyTransaction => FailureKind::Client,
            DatabaseErrorKind::SerializationFailure => FailureKind::Transaction,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                FailureKind::Connect
            }
            _ => message_kind(info.message()),
        },
        DieselError::RollbackErrorOnCommit { commit_error, .. } => classify(commit_error),
        DieselError::BrokenTransactionManager => FailureKind::Query,
        // Caller-side: no row, a query diesel could not build, values that
        // did not convert, a transaction call out of order, or the
        // caller's own request to roll back.
        _ => FailureKind::Client,
    }
}

/// Whether a transaction that failed with this error may succeed if run
/// again from the start: a serialization failure or a deadlock.
///
/// ```
/// use diesel::result::{DatabaseErrorKind, Error};
/// let deadlock = Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new("deadlock detected".to_string()));
/// assert!(tidepool_diesel::is_retryable_transaction(&deadlock));
/// assert!(!tidepool_diesel::is_retryable_transaction(&Error::NotFound));
/// ```
pub fn is_retryable_transaction(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => is_deadlock(info.message()),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => {
            is_retryable_transaction(commit_error)
        }
        _ => false,
    }
}

/// Whether the error says the connection to the server is gone, so the
/// connection must not be used again.
pub(crate) fn connection_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            message_kind(info.message()) == FailureKind::Connect
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => connection_lost(commit_error),
        _ => false,
    }
}

fn is_deadlock(message: &str) -> bool {
    // PostgreSQL 40P01 / MySQL 1213.
    message.starts_with("deadlock detected") || message.starts_with("Deadlock found")
}

/// The kind for a server or driver message diesel kept without a code.
fn message_kind(message: &str) -> FailureKind {
    let m = message;
    if is_deadlock(m) {
        return FailureKind::Transaction;
    }
    const LOST: &[&str] = &[
        // PostgreSQL 57P01/57P02 (FATAL, then the socket closes) and
        // tokio-postgres' own words for a closed or broken socket.
        "terminating connection",
        "connection closed",
        "server closed the connection",
        "error communicating with the server",
        "the database system is shutting down",
        // MariaDB 1927 / MySQL 1053, mysql_async's I/O and closed states.
        "Connection was killed",
        "Server shutdown in progress",
        "Input/output error",
        "Connection reset",
        "Broken pipe",
        "broken pipe",
        "Connection to the server is closed",
        "Lost connection",
    ];
    if LOST.iter().any(|p| m.contains(p)) {
        return FailureKind::Connect;
    }
    const TIMEOUT: &[&str] = &[
        // PostgreSQL 57014 / 55P03, MySQL 1205 / 3024, MariaDB 1969.
        "canceling statement due to",
        "could not obtain lock",
        "Lock wait timeout exceeded",
        "maximum statement execution time exceeded",
        "Query execution was interrupted",
    ];
    if TIMEOUT.iter().any(|p| m.contains(p)) {
        return FailureKind::Timeout;
    }
    const CALLER: &[&str] = &[
        // PostgreSQL 42601, 42P01, 42703, 42883, 22xxx; MySQL 1064, 1146,
        // 1054, 1366, 1406, 1292.
        "syntax error",
        "does not exist",
        "invalid input syntax",
        "out of range",
        "division by zero",
        "value too long",
        "You have an error in your SQL syntax",
        "doesn't exist",
        "Unknown column",
        "Incorrect ",
        "Data too long",
        "Out of range value",
    ];
    if CALLER.iter().any(|p| m.contains(p)) {
        return FailureKind::Client;
    }
    FailureKind::Query
}

/// PostgreSQL: the kind for a SQLSTATE, the table tidepool-postgres uses.
#[cfg(feature = "postgres")]
pub(crate) fn sqlstate_kind(code: &str) -> FailureKind {
    match code {
        "40001" | "40P01" => FailureKind::Transaction,
        "57014" | "55P03" => FailureKind::Timeout,
        "57P01" | "57P02" | "57P03" | "57P05" | "53300" | "25P03" | "28000" | "28P01" | "3D000" => {
            FailureKind::Connect
        }
        _ => match code.get(..2) {
            Some("08") => FailureKind::Connect,
            Some("42" | "23" | "22" | "25" | "0A" | "26" | "34" | "2B" | "2D" | "2F" | "44") => {
                FailureKind::Client
            }
            _ => FailureKind::Query,
        },
    }
}

/// PostgreSQL: the kind of a tokio-postgres error (from connecting).
#[cfg(feature = "postgres")]
pub(crate) fn pg_error_kind(e: &tokio_postgres::Error) -> FailureKind {
    if let Some(code) = e.code() {
        return sqlstate_kind(code.code());
    }
    if pg_config_error(e) {
        return FailureKind::Client;
    }
    let text = e.to_string();
    if text.starts_with("timeout") {
        FailureKind::Timeout
    } else {
        FailureKind::Connect
    }
}

/// PostgreSQL: a connection error that no retry can cure (a wrong
/// password, an unknown database, no CONNECT privilege, a configuration
/// tokio-postgres refuses).
#[cfg(feature = "postgres")]
pub(crate) fn pg_error_is_permanent(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => matches!(code.code(), "28P01" | "28000" | "3D000" | "42501"),
        None => pg_config_error(e),
    }
}

#[cfg(feature = "postgres")]
fn pg_config_error(e: &tokio_postgres::Error) -> bool {
    let text = e.to_string();
    [
        "authentication error",
        "invalid configuration",
        "invalid connection string",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// MySQL / MariaDB: the kind for a server error number, the table
/// tidepool-mysql uses.
#[cfg(feature = "mysql")]
pub(crate) fn mysql_code_kind(code: u16) -> FailureKind {
    match code {
        1213 | 1205 => FailureKind::Transaction,
        1064 | 1062 | 1452 | 1451 | 1146 | 1054 | 1048 | 1406 | 1264 | 1265 | 1366 | 1292
        | 4025 | 3819 | 1210 | 1052 | 1305 | 1216 | 1217 | 1050 | 1051 | 1091 | 1136 => {
            FailureKind::Client
        }
        1045 | 1044 | 1049 | 1040 | 1053 | 1927 | 1129 | 1130 | 1203 | 1226 => FailureKind::Connect,
        1317 | 1969 | 3024 => FailureKind::Timeout,
        _ => FailureKind::Query,
    }
}

/// MySQL / MariaDB: the kind of a mysql_async error (from connecting).
#[cfg(feature = "mysql")]
pub(crate) fn mysql_error_kind(e: &mysql_async::Error) -> FailureKind {
    match e {
        mysql_async::Error::Server(s) => mysql_code_kind(s.code),
        mysql_async::Error::Url(_) => FailureKind::Client,
        mysql_async::Error::Other(_) => FailureKind::Query,
        _ => FailureKind::Connect,
    }
}

/// MySQL / MariaDB: a connection error that no retry can cure (access
/// denied, unknown database, a host the server refuses, a bad URL).
#[cfg(feature = "mysql")]
pub(crate) fn mysql_error_is_permanent(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(s) => matches!(s.code, 1045 | 1044 | 1049 | 1129 | 1130),
        mysql_async::Error::Url(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(message: &str) -> DieselError {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_string()))
    }

    #[test]
    fn server_messages_without_a_code_are_read_for_the_failures_the_breaker_must_tell_apart() {
        assert_eq!(
            classify(&unknown(
                "terminating connection due to administrator command"
            )),
            FailureKind::Connect
        );
        assert_eq!(
            classify(&unknown("Connection was killed")),
            FailureKind::Connect
        );
        assert_eq!(
            classify(&unknown("deadlock detected")),
            FailureKind::Transaction
        );
        assert_eq!(
            classify(&unknown("canceling statement due to statement timeout")),
            FailureKind::Timeout
        );
        assert_eq!(
            classify(&unknown("syntax error at or near \"SELEC\"")),
            FailureKind::Client
        );
        assert_eq!(
            classify(&unknown("relation \"nope\" does not exist")),
            FailureKind::Client
        );
        assert_eq!(
            classify(&unknown("could not write to file: No space left")),
            FailureKind::Query
        );
    }

    #[test]
    fn a_lost_connection_is_what_marks_a_connection_for_closing() {
        assert!(connection_lost(&unknown(
            "terminating connection due to administrator command"
        )));
        assert!(!connection_lost(&unknown("deadlock detected")));
        assert!(!connection_lost(&DieselError::NotFound));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_sqlstate_table_agrees_with_tidepool_postgres() {
        for code in [
            "40001", "40P01", "57014", "55P03", "57P01", "57P02", "57P03", "57P05", "53300",
            "25P03", "28000", "28P01", "3D000", "08006", "08001", "42601", "42P01", "23505",
            "23503", "22012", "25P02", "0A000", "53100", "53200", "XX000", "58030",
        ] {
            assert_eq!(
                sqlstate_kind(code),
                tidepool_postgres::sqlstate_kind(code),
                "{code}"
            );
        }
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn the_error_number_table_agrees_with_tidepool_mysql() {
        use tidepool::Classify;
        for code in [
            1213, 1205, 1064, 1062, 1452, 1451, 1146, 1054, 1048, 1406, 1264, 1265, 1366, 1292,
            4025, 3819, 1210, 1052, 1305, 1216, 1217, 1050, 1051, 1091, 1136, 1045, 1044, 1049,
            1040, 1053, 1927, 1129, 1130, 1203, 1226, 1317, 1969, 3024, 1021, 1114, 2013,
        ] {
            let theirs = tidepool_mysql::MysqlError::Mysql(mysql_async::Error::Server(
                mysql_async::ServerError {
                    code,
                    message: String::new(),
                    state: String::new(),
                },
            ));
            assert_eq!(mysql_code_kind(code), theirs.failure_kind(), "{code}");
        }
    }
}
