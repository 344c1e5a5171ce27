//! The one error type of this crate: what connecting, checking or cleaning
//! a sqlx connection failed with. Connection errors carry the target
//! without its password and sqlx's own error (with the server's code); no
//! variant ever holds the URL.

use tidepool::{Classify, FailureKind};

use crate::classify::{classify, is_retryable_transaction};

/// Why a tidepool-sqlx manager could not open, check or clean a connection.
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
    /// The server refused or dropped the connection attempt.
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// The target, without credentials.
        target: String,
        /// sqlx's error, with the server's code when it sent one.
        #[source]
        source: sqlx::Error,
    },
    /// A ping, or the rollback that cleans a returned connection, failed.
    #[error("{0}")]
    Query(#[source] sqlx::Error),
}

impl Error {
    /// sqlx's error, when there is one.
    pub fn sqlx_error(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Connect { source, .. } | Error::Query(source) => Some(source),
            Error::InvalidUrl { .. } => None,
        }
    }

    /// Whether connecting again could succeed. A wrong password, an unknown
    /// database or bad options are permanent: the pool fails the acquire
    /// at once with the cause instead of retrying.
    pub fn is_retryable_connect(&self) -> bool {
        match self {
            Error::InvalidUrl { .. } => false,
            Error::Connect { source, .. } => !crate::classify::is_permanent_connect(source),
            Error::Query(_) => true,
        }
    }

    /// Whether the server refused the connection for lack of room
    /// (PostgreSQL `53300`; MySQL `1040`, `1203`, `1226`).
    pub fn is_at_capacity(&self) -> bool {
        matches!(self, Error::Connect { source, .. } if crate::classify::is_at_capacity(source))
    }

    /// Whether the server said it is starting up or shutting down
    /// (PostgreSQL `57P03`).
    pub fn is_restarting(&self) -> bool {
        matches!(self, Error::Connect { source, .. } if crate::classify::is_restarting(source))
    }
}

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Error::InvalidUrl { .. } => FailureKind::Client,
            Error::Connect { source, .. } => match classify(source) {
                // Anything that stops a connection opening, short of bad
                // options, is about the database.
                FailureKind::Client if !matches!(source, sqlx::Error::Configuration(_)) => {
                    FailureKind::Connect
                }
                kind => kind,
            },
            Error::Query(source) => classify(source),
        }
    }

    fn is_retryable_transaction(&self) -> bool {
        matches!(self, Error::Query(e) if is_retryable_transaction(e))
    }
}
