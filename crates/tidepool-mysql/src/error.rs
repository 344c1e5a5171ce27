//! The crate's one error type, and how MySQL/MariaDB error codes map to the
//! pool's failure kinds. No message here quotes a URL or a password.

use tidepool::{Classify, FailureKind};

/// Everything that can go wrong in `tidepool-mysql`.
///
/// ```
/// use tidepool::{Classify, FailureKind};
/// use tidepool_mysql::{MysqlConfig, MysqlError};
///
/// let err = "mysql://app:secret@db:0/x".parse::<MysqlConfig>().unwrap_err();
/// assert!(matches!(err, MysqlError::InvalidUrl { .. }));
/// assert!(!err.to_string().contains("secret"));
/// assert_eq!(err.failure_kind(), FailureKind::Client);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// The URL could not be parsed.
    #[error("invalid mysql URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it (never quoting the user-info).
        reason: String,
    },
    /// A URL option is not valid.
    #[error("invalid mysql option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name.
        name: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The driver or the server reported an error.
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
    /// `query_one` got a number of rows other than one.
    #[error("expected exactly one row, got {rows}")]
    RowCount {
        /// How many rows the query returned.
        rows: usize,
    },
    /// Parameters did not match the statement's placeholders.
    #[error("parameter mismatch: {reason}")]
    Parameters {
        /// What did not match.
        reason: String,
    },
    /// A parameter value this driver cannot bind.
    #[error("unsupported parameter value at position {position}: {reason}")]
    UnsupportedValue {
        /// One-based position of the parameter.
        position: usize,
        /// Why it cannot be bound.
        reason: String,
    },
}

/// Server error codes, named.
pub mod codes {
    /// Access denied (wrong user or password).
    pub const ACCESS_DENIED: u16 = 1045;
    /// Access denied to a database.
    pub const DB_ACCESS_DENIED: u16 = 1044;
    /// Unknown database.
    pub const BAD_DB: u16 = 1049;
    /// Too many connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// Server shutdown in progress.
    pub const SERVER_SHUTDOWN: u16 = 1053;
    /// Connection was killed (MariaDB).
    pub const CONNECTION_KILLED: u16 = 1927;
    /// Deadlock found when trying to get lock.
    pub const DEADLOCK: u16 = 1213;
    /// Lock wait timeout exceeded.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// Syntax error.
    pub const PARSE_ERROR: u16 = 1064;
    /// Duplicate entry for a unique key.
    pub const DUP_ENTRY: u16 = 1062;
    /// Cannot add or update a child row: a foreign key constraint fails.
    pub const NO_REFERENCED_ROW: u16 = 1452;
    /// Cannot delete or update a parent row: a foreign key constraint fails.
    pub const ROW_IS_REFERENCED: u16 = 1451;
    /// Table doesn't exist.
    pub const NO_SUCH_TABLE: u16 = 1146;
    /// Unknown column.
    pub const BAD_FIELD: u16 = 1054;
    /// Query execution was interrupted (`KILL QUERY`).
    pub const QUERY_INTERRUPTED: u16 = 1317;
}

impl MysqlError {
    /// The server's error code, when the server reported the error.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            MysqlError::Mysql(mysql_async::Error::Server(e)) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the connection this error happened on is unusable (a lost or
    /// killed connection, a protocol error).
    pub fn is_fatal(&self) -> bool {
        match self {
            MysqlError::Mysql(e) => {
                e.is_fatal()
                    || matches!(
                        self.server_code(),
                        Some(codes::CONNECTION_KILLED | codes::SERVER_SHUTDOWN)
                    )
            }
            _ => false,
        }
    }

    /// Whether TLS failed: the server's certificate did not verify (an
    /// issuer not trusted, a host name it does not name, expired), the
    /// handshake failed, the TLS settings are unusable, or TLS was asked
    /// for and the server does not offer it. Connecting again cannot cure
    /// any of these, and none falls back to plain text.
    pub fn is_tls(&self) -> bool {
        match self {
            MysqlError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Tls(_))) => true,
            // A failed handshake reaches us as the I/O error tokio-rustls
            // wraps rustls's error in.
            MysqlError::Mysql(mysql_async::Error::Io(mysql_async::IoError::Io(e))) => {
                e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
            }
            MysqlError::Mysql(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => true,
            _ => false,
        }
    }

    /// Whether connecting again could help: not for a wrong password, an
    /// unknown or forbidden database, a TLS failure (see
    /// [`is_tls`](Self::is_tls)) or a bad configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            MysqlError::InvalidUrl { .. } | MysqlError::InvalidOption { .. } => false,
            _ if self.is_tls() => false,
            _ => !matches!(
                self.server_code(),
                Some(codes::ACCESS_DENIED | codes::BAD_DB | codes::DB_ACCESS_DENIED)
            ),
        }
    }
}

fn classify_server(code: u16) -> FailureKind {
    match code {
        codes::DEADLOCK | codes::LOCK_WAIT_TIMEOUT => FailureKind::Transaction,
        codes::PARSE_ERROR
        | codes::DUP_ENTRY
        | codes::NO_REFERENCED_ROW
        | codes::ROW_IS_REFERENCED
        | codes::NO_SUCH_TABLE
        | codes::BAD_FIELD
        // Other caller mistakes: bad null (1048), data too long (1406),
        // out of range (1264), truncated/incorrect value (1265, 1366,
        // 1292), check constraint (4025 MariaDB, 3819 MySQL), wrong
        // parameter count (1210), ambiguous column (1052), unknown
        // function (1305), foreign key with 1216/1217 (older servers).
        | 1048 | 1406 | 1264 | 1265 | 1366 | 1292 | 4025 | 3819 | 1210 | 1052 | 1305 | 1216
        | 1217 | 1050 | 1051 | 1091 | 1136 => FailureKind::Client,
        codes::ACCESS_DENIED
        | codes::DB_ACCESS_DENIED
        | codes::BAD_DB
        | codes::TOO_MANY_CONNECTIONS
        | codes::SERVER_SHUTDOWN
        | codes::CONNECTION_KILLED
        | 1129 /* host blocked */
        | 1130 /* host not allowed */
        | 1203 /* too many connections for user */
        | 1226 /* user resource exceeded */ => FailureKind::Connect,
        codes::QUERY_INTERRUPTED | 1969 /* MariaDB statement timeout */ | 3024 /* MySQL max_execution_time */ => {
            FailureKind::Timeout
        }
        _ => FailureKind::Query,
    }
}

impl Classify for MysqlError {
    fn failure_kind(&self) -> FailureKind {
        match self {
            MysqlError::InvalidUrl { .. }
            | MysqlError::InvalidOption { .. }
            | MysqlError::RowCount { .. }
            | MysqlError::Parameters { .. }
            | MysqlError::UnsupportedValue { .. } => FailureKind::Client,
            MysqlError::Mysql(e) => match e {
                mysql_async::Error::Server(s) => classify_server(s.code),
                mysql_async::Error::Io(_) => FailureKind::Connect,
                mysql_async::Error::Driver(d) => match d {
                    mysql_async::DriverError::StmtParamsMismatch { .. }
                    | mysql_async::DriverError::NamedParamsForPositionalQuery
                    | mysql_async::DriverError::MixedParams
                    | mysql_async::DriverError::MissingNamedParam { .. }
                    | mysql_async::DriverError::StmtParamsNumberExceedsLimit { .. }
                    | mysql_async::DriverError::NestedTransaction
                    | mysql_async::DriverError::FromValue { .. }
                    | mysql_async::DriverError::FromRow { .. } => FailureKind::Client,
                    _ => FailureKind::Connect,
                },
                mysql_async::Error::Url(_) => FailureKind::Client,
                mysql_async::Error::Other(_) => FailureKind::Query,
            },
        }
    }

    fn is_retryable_transaction(&self) -> bool {
        matches!(
            self.server_code(),
            Some(codes::DEADLOCK | codes::LOCK_WAIT_TIMEOUT)
        )
    }
}
