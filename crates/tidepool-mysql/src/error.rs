//! The crate's one error type, and how MySQL/MariaDB error codes map to the
//! pool's failure kinds. No message here quotes a URL, an option's value or
//! a password; a server error reads once, without mysql_async's
//! `` `...' `` wrapping.

use std::fmt;

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
        /// The option's name (always one this crate knows).
        name: String,
        /// What is wrong and what would be accepted (never the value).
        reason: String,
    },
    /// A URL option this crate does not know. Its name is not shown: a
    /// misplaced piece of a password looks like an option name.
    #[error(
        "unknown mysql option (the {} option; its name is not shown, as it may be part of a password: \
         percent-encode `?`, `&`, `#`, `/` and `@` in a URL password); known: ssl-mode, ssl-ca, ssl-cert, ssl-key, socket, stmt-cache-size",
        crate::config::ordinal(*.position)
    )]
    UnknownOption {
        /// Which option of the URL, from 1.
        position: usize,
    },
    /// An environment variable read by
    /// [`MysqlConfig::from_env`](crate::MysqlConfig::from_env) holds a value
    /// that is refused (the value is not shown).
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable, such as `MYSQL_TCP_PORT`.
        var: &'static str,
        /// What is wrong with its value.
        reason: &'static str,
    },
    /// The driver or the server reported an error.
    ///
    /// Its `Display` is complete: for a server error `server error <code>
    /// (SQLSTATE <state>): <message>`; for the driver's own errors their
    /// text and causes. So it has no [`source`](std::error::Error::source)
    /// (a chain printer would repeat it); match on the variant for the
    /// driver's error.
    #[error("{}", MysqlDisplay(.0))]
    Mysql(mysql_async::Error),
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
    /// A row read with [`tidepool::Row::try_get`] or [`tidepool::FromRow`]
    /// had a missing column or a value of another type; here so that `?`
    /// works inside a transaction body.
    #[error(transparent)]
    Row(#[from] tidepool::RowError),
}

impl From<mysql_async::Error> for MysqlError {
    fn from(e: mysql_async::Error) -> Self {
        MysqlError::Mysql(e)
    }
}

/// mysql_async wraps its messages as `` Server error: `ERROR 42000 (1049):
/// Unknown database 'x'' ``; this shows the server's message once, with its
/// code and SQLSTATE, and other errors with each cause once.
struct MysqlDisplay<'a>(&'a mysql_async::Error);

impl fmt::Display for MysqlDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::error::Error as _;
        let (mut shown, mut source) = match self.0 {
            mysql_async::Error::Server(e) => {
                return write!(
                    f,
                    "server error {} (SQLSTATE {}): {}",
                    e.code, e.state, e.message
                )
            }
            mysql_async::Error::Driver(e @ mysql_async::DriverError::NoKeyFound) => (
                format!(
                    "{e}: ssl-key must be an RSA key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`); \
                     convert one with `openssl rsa -in key.pem -traditional -out key.rsa.pem`"
                ),
                None,
            ),
            mysql_async::Error::Driver(e) => (e.to_string(), e.source()),
            mysql_async::Error::Io(mysql_async::IoError::Io(e)) => {
                (format!("I/O error: {e}"), e.source())
            }
            mysql_async::Error::Io(mysql_async::IoError::Tls(e)) => {
                (format!("TLS error: {e}"), e.source())
            }
            mysql_async::Error::Other(e) => (e.to_string(), e.source()),
            mysql_async::Error::Url(e) => (e.to_string(), e.source()),
        };
        while let Some(cause) = source {
            let text = cause.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&shown)
    }
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

    /// Whether **opening a new connection** could succeed where this one
    /// failed: the question the pool asks about an error from connecting
    /// (it is [`Manager::is_retryable`](tidepool::Manager::is_retryable)).
    ///
    /// `false` for what only a change of setup cures: a wrong password
    /// (1045), an unknown or forbidden database (1049, 1044), a host not
    /// allowed (1130) or blocked (1129), a TLS failure (see
    /// [`is_tls`](Self::is_tls)), an unusable client key, a bad
    /// configuration, and every other caller's mistake
    /// ([`FailureKind::Client`]), which a new connection would repeat.
    /// `true` for a refused or lost connection, too many connections, a
    /// server shutting down.
    ///
    /// This says nothing about running a *statement* again: see
    /// [`is_retryable_statement`](Self::is_retryable_statement).
    pub fn is_retryable_connect(&self) -> bool {
        match self {
            MysqlError::InvalidUrl { .. }
            | MysqlError::InvalidOption { .. }
            | MysqlError::UnknownOption { .. }
            | MysqlError::Env { .. } => false,
            _ if self.is_tls() => false,
            MysqlError::Mysql(mysql_async::Error::Driver(mysql_async::DriverError::NoKeyFound)) => {
                false
            }
            _ if self.failure_kind() == FailureKind::Client => false,
            _ => !matches!(
                self.server_code(),
                Some(
                    codes::ACCESS_DENIED
                        | codes::BAD_DB
                        | codes::DB_ACCESS_DENIED
                        | 1129 /* host blocked */
                        | 1130 /* host not allowed */
                )
            ),
        }
    }

    /// Whether **running the same statement again** could succeed: the
    /// failure was transient. `true` for a deadlock (1213), a lock wait
    /// timeout (1205), too many connections (1040, 1203), a lost or killed
    /// connection or a server shutting down (run it again on a fresh
    /// connection: [`is_fatal`](Self::is_fatal) says so). `false` for a
    /// caller's mistake (a syntax error 1064, an unknown column 1054, a
    /// duplicate key 1062), a statement interrupted or past its time limit
    /// (1317, 1969, 3024: it would likely run as long again), and
    /// everything else.
    ///
    /// It does not say whether running it again is *safe*: a write whose
    /// connection was lost may have committed. Inside a transaction, retry
    /// the whole transaction ([`tidepool::transaction`] does so for
    /// [`Classify::is_retryable_transaction`]), not the statement.
    ///
    /// ```
    /// use tidepool_mysql::MysqlError;
    /// assert!(!MysqlError::RowCount { rows: 0 }.is_retryable_statement());
    /// ```
    pub fn is_retryable_statement(&self) -> bool {
        match self {
            MysqlError::Mysql(mysql_async::Error::Server(e)) => matches!(
                e.code,
                codes::DEADLOCK
                    | codes::LOCK_WAIT_TIMEOUT
                    | codes::TOO_MANY_CONNECTIONS
                    | 1203 /* too many connections for the user */
                    | codes::SERVER_SHUTDOWN
                    | codes::CONNECTION_KILLED
            ),
            MysqlError::Mysql(mysql_async::Error::Io(_)) => !self.is_tls(),
            MysqlError::Mysql(mysql_async::Error::Driver(_)) => self.is_fatal() && !self.is_tls(),
            _ => false,
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
            | MysqlError::UnknownOption { .. }
            | MysqlError::Env { .. }
            | MysqlError::RowCount { .. }
            | MysqlError::Parameters { .. }
            | MysqlError::UnsupportedValue { .. }
            | MysqlError::Row(_) => FailureKind::Client,
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
