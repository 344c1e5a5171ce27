//! The one error type of this crate: what connecting, validating or
//! cleaning a diesel-async connection failed with. Connection errors carry
//! the target without its password and the driver's own error (with the
//! server's code), so the pool can tell a wrong password from a dead
//! server; no variant ever holds the URL.

use tidepool::{Classify, FailureKind};

use crate::classify::{classify, is_retryable_transaction};

/// Why a tidepool-diesel manager could not open, check or clean a
/// connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL could not be read. The URL itself is never
    /// repeated: it may hold a password.
    #[error("invalid {scheme} connection URL: {reason}")]
    InvalidUrl {
        /// `postgres` or `mysql`.
        scheme: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// PostgreSQL refused or dropped the connection attempt.
    #[cfg(feature = "postgres")]
    #[error("could not connect to {target}: {source}")]
    Postgres {
        /// The target, without credentials.
        target: String,
        /// tokio-postgres' error, with the server's SQLSTATE when it sent
        /// one.
        #[source]
        source: tokio_postgres::Error,
    },
    /// TLS could not be set up: a certificate file (PostgreSQL's
    /// `sslrootcert`, `sslcert`, `sslkey`; MySQL's `ssl-ca`, `ssl-cert`,
    /// `ssl-key`) could not be used when the manager was built, or the
    /// handshake failed — an untrusted certificate, a host name it does
    /// not name, a server without TLS when the URL requires it. Not
    /// retryable: trying again cannot fix it.
    #[error("TLS with {target} failed: {reason} (check sslmode, the CA file and the host name)")]
    Tls {
        /// The target, without credentials.
        target: String,
        /// What the TLS layer said (never a key's content).
        reason: String,
    },
    /// MySQL or MariaDB refused or dropped the connection attempt.
    #[cfg(feature = "mysql")]
    #[error("could not connect to {target}: {source}")]
    Mysql {
        /// The target, without credentials.
        target: String,
        /// mysql_async's error, with the server's error number when it
        /// sent one.
        #[source]
        source: mysql_async::Error,
    },
    /// The connection opened, but diesel-async's setup statements on it
    /// failed.
    #[error("could not set up the connection to {target}: {source}")]
    Setup {
        /// The target, without credentials.
        target: String,
        /// diesel's error.
        #[source]
        source: diesel::ConnectionError,
    },
    /// A validation query, or the rollback that cleans a returned
    /// connection, failed.
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
    /// A returned connection cannot be trusted: diesel's transaction
    /// manager is in its error state, or a `BEGIN`/`COMMIT`/`ROLLBACK` was
    /// cancelled mid-way so nobody knows where the transaction stands.
    /// The pool closes such a connection.
    #[error("the connection cannot be reused: {0}")]
    Unusable(&'static str),
}

impl Error {
    /// Whether connecting again could succeed. A wrong password, an unknown
    /// database or a malformed URL are permanent: the pool fails the
    /// acquire at once with the cause instead of retrying.
    pub fn is_retryable_connect(&self) -> bool {
        match self {
            Error::InvalidUrl { .. } | Error::Tls { .. } => false,
            #[cfg(feature = "postgres")]
            Error::Postgres { source, .. } => !crate::classify::pg_error_is_permanent(source),
            #[cfg(feature = "mysql")]
            Error::Mysql { source, .. } => !crate::classify::mysql_error_is_permanent(source),
            _ => true,
        }
    }

    /// Whether the server refused the connection for lack of room
    /// (PostgreSQL `53300`; MySQL `1040`, `1203`, `1226`).
    pub fn is_at_capacity(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Error::Postgres { source, .. } => source.code().is_some_and(|c| c.code() == "53300"),
            #[cfg(feature = "mysql")]
            Error::Mysql {
                source: mysql_async::Error::Server(s),
                ..
            } => matches!(s.code, 1040 | 1203 | 1226),
            _ => false,
        }
    }

    /// Whether the server said it is starting up or shutting down
    /// (PostgreSQL `57P03`).
    pub fn is_restarting(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Error::Postgres { source, .. } => source.code().is_some_and(|c| c.code() == "57P03"),
            _ => false,
        }
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::InvalidUrl { .. } => FailureKind::Client,
            // The server is there; the secure channel to it cannot be had.
            Error::Tls { .. } => FailureKind::Connect,
            #[cfg(feature = "postgres")]
            Error::Postgres { source, .. } => crate::classify::pg_error_kind(source),
            #[cfg(feature = "mysql")]
            Error::Mysql { source, .. } => crate::classify::mysql_error_kind(source),
            Error::Setup { source, .. } => match source {
                diesel::ConnectionError::CouldntSetupConfiguration(e) => match classify(e) {
                    // A setup statement failing is the server's problem, or
                    // the connection's, never the caller's.
                    FailureKind::Client => FailureKind::Query,
                    kind => kind,
                },
                diesel::ConnectionError::InvalidConnectionUrl(_) => FailureKind::Client,
                _ => FailureKind::Connect,
            },
            Error::Query(e) => classify(e),
            // The borrower left it so; the database is not to blame.
            Error::Unusable(_) => FailureKind::Client,
        }
    }

    fn is_retryable_transaction(&self) -> bool {
        matches!(self, Error::Query(e) if is_retryable_transaction(e))
    }
}
