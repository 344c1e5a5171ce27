//! How a sqlx error maps to a [`FailureKind`]. sqlx keeps the server's code
//! (PostgreSQL's SQLSTATE, MySQL's error number), so this reads codes, with
//! the same tables as tidepool-postgres and tidepool-mysql (tests pin that
//! they agree); sqlx's own errors (I/O, TLS, protocol, decoding) map by
//! variant.

use sqlx::Error as SqlxError;
use tidepool::FailureKind;

/// The failure kind of a sqlx error.
///
/// ```
/// use tidepool::FailureKind;
/// assert_eq!(tidepool_sqlx::classify(&sqlx::Error::RowNotFound), FailureKind::Client);
/// let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(tidepool_sqlx::classify(&io), FailureKind::Connect);
/// ```
pub fn classify(error: &SqlxError) -> FailureKind {
    match error {
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => sqlstate_kind(code),
            #[cfg(feature = "mysql")]
            Code::Mysql(n) => mysql_code_kind(n),
            Code::Unknown(_) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation
                | sqlx::error::ErrorKind::ForeignKeyViolation
                | sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::CheckViolation => FailureKind::Client,
                _ => FailureKind::Query,
            },
        },
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::Protocol(_)
        | SqlxError::WorkerCrashed => FailureKind::Connect,
        SqlxError::PoolTimedOut => FailureKind::Timeout,
        SqlxError::PoolClosed => FailureKind::Connect,
        SqlxError::AnyDriverError(_) => FailureKind::Query,
        // Bad options, no row, a column or type that is not there, values
        // that did not convert, a transaction call out of order.
        _ => FailureKind::Client,
    }
}

/// Whether a transaction that failed with this error may succeed if run
/// again from the start: a serialization failure or deadlock (PostgreSQL
/// `40001`, `40P01`; MySQL `1213`, `1205`).
///
/// ```
/// assert!(!tidepool_sqlx::is_retryable_transaction(&sqlx::Error::RowNotFound));
/// ```
pub fn is_retryable_transaction(error: &SqlxError) -> bool {
    match error {
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => matches!(code, "40001" | "40P01"),
            #[cfg(feature = "mysql")]
            Code::Mysql(n) => matches!(n, 1213 | 1205),
            Code::Unknown(_) => false,
        },
        _ => false,
    }
}

/// Whether the error says the connection to the server is gone (I/O, TLS,
/// protocol, a server that ended the session), so it must not be used
/// again.
///
/// ```
/// let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
/// assert!(tidepool_sqlx::is_connection_lost(&io));
/// assert!(!tidepool_sqlx::is_connection_lost(&sqlx::Error::RowNotFound));
/// ```
pub fn is_connection_lost(error: &SqlxError) -> bool {
    match error {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::Protocol(_)
        | SqlxError::WorkerCrashed => true,
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => {
                code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P05")
            }
            #[cfg(feature = "mysql")]
            Code::Mysql(n) => matches!(n, 1927 | 1053),
            Code::Unknown(_) => false,
        },
        _ => false,
    }
}

/// A connect error no retry can cure: bad options, a wrong password, an
/// unknown database, a host the server refuses, a TLS setup that fails.
pub(crate) fn is_permanent_connect(error: &SqlxError) -> bool {
    match error {
        SqlxError::Configuration(_) | SqlxError::Tls(_) => true,
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => matches!(code, "28P01" | "28000" | "3D000" | "42501"),
            #[cfg(feature = "mysql")]
            Code::Mysql(n) => matches!(n, 1045 | 1044 | 1049 | 1129 | 1130),
            Code::Unknown(_) => false,
        },
        _ => false,
    }
}

/// The server refused the connection for lack of room.
pub(crate) fn is_at_capacity(error: &SqlxError) -> bool {
    match error {
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => code == "53300",
            #[cfg(feature = "mysql")]
            Code::Mysql(n) => matches!(n, 1040 | 1203 | 1226),
            Code::Unknown(_) => false,
        },
        _ => false,
    }
}

/// The server is starting up or shutting down (PostgreSQL `57P03`).
pub(crate) fn is_restarting(error: &SqlxError) -> bool {
    match error {
        SqlxError::Database(db) => match server_code(db.as_ref()) {
            #[cfg(feature = "postgres")]
            Code::Sqlstate(code) => code == "57P03",
            _ => false,
        },
        _ => false,
    }
}

enum Code<'a> {
    #[cfg(feature = "postgres")]
    Sqlstate(&'a str),
    #[cfg(feature = "mysql")]
    Mysql(u16),
    /// Another driver's error; the marker keeps `'a` used when only the
    /// `mysql` feature is on.
    #[allow(dead_code)]
    Unknown(std::marker::PhantomData<&'a ()>),
}

fn server_code(db: &dyn sqlx::error::DatabaseError) -> Code<'_> {
    // MySQL first: its `code()` is a SQLSTATE too (often the catch-all
    // HY000), the error number is what names the failure.
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return Code::Mysql(my.number());
    }
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return Code::Sqlstate(pg.code());
    }
    let _ = db;
    Code::Unknown(std::marker::PhantomData)
}

/// PostgreSQL: the kind for a SQLSTATE, the table tidepool-postgres uses.
#[cfg(feature = "postgres")]
fn sqlstate_kind(code: &str) -> FailureKind {
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

/// MySQL / MariaDB: the kind for a server error number, the table
/// tidepool-mysql uses.
#[cfg(feature = "mysql")]
fn mysql_code_kind(code: u16) -> FailureKind {
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

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use super::*;

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
            let theirs =
                tidepool_mysql::MysqlError::Mysql(tidepool_mysql::mysql_async::Error::Server(
                    tidepool_mysql::mysql_async::ServerError {
                        code,
                        message: String::new(),
                        state: String::new(),
                    },
                ));
            assert_eq!(mysql_code_kind(code), theirs.failure_kind(), "{code}");
        }
    }
}
