//! Errors at the core's boundary: what an acquire can fail with
//! ([`Error`]), what a bad configuration is refused with ([`BuildError`]),
//! and how a driver error is classified ([`FailureKind`]).
//! Nothing here ever carries a password: drivers describe targets without
//! credentials, and configuration errors name fields, not values.

use std::fmt;
use std::time::Duration;

/// What kind of failure a driver error is, as far as the database's health
/// is concerned.
///
/// ```
/// use tidepool::FailureKind;
/// assert!(FailureKind::Connect.counts_against_database());
/// assert!(!FailureKind::Client.counts_against_database());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum FailureKind {
    /// The database could not be reached, refused us, or dropped the
    /// connection.
    Connect,
    /// An operation did not finish in time.
    Timeout,
    /// A query failed for a reason on the server's side (out of memory,
    /// disk full, internal error).
    Query,
    /// A transaction failed (serialization failure, deadlock).
    Transaction,
    /// The caller's own mistake: a syntax error, a constraint violation, a
    /// type mismatch. Never counts against the database.
    Client,
}

impl FailureKind {
    /// Every kind, in a stable order (useful for per-kind metrics).
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Query,
        FailureKind::Transaction,
        FailureKind::Client,
    ];

    /// Whether a failure of this kind says something about the database's
    /// health (everything but [`FailureKind::Client`]).
    pub fn counts_against_database(self) -> bool {
        !matches!(self, FailureKind::Client)
    }

    /// A short lowercase name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Query => "query",
            FailureKind::Transaction => "transaction",
            FailureKind::Client => "client",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an acquire failed. `E` is the manager's error type.
///
/// ```
/// use std::time::Duration;
/// let err: tidepool::Error<std::io::Error> = tidepool::Error::Timeout {
///     waited: Duration::from_millis(250),
///     last_error: None,
/// };
/// assert!(err.to_string().contains("250ms"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection became available within `acquire_timeout`. When
    /// connecting failed meanwhile, `last_error` says why.
    #[error(
        "timed out after {waited:?} waiting for a connection{}",
        last_error_suffix(last_error)
    )]
    Timeout {
        /// How long the caller waited.
        waited: Duration,
        /// The last connection error seen while waiting, if any.
        last_error: Option<String>,
    },
    /// The pool was closed.
    #[error("the pool is closed")]
    Closed,
    /// The circuit breaker is open: the database is considered down and the
    /// acquire failed fast instead of waiting.
    #[error(
        "the database is considered down (circuit open); retry after {retry_after:?}{}",
        last_error_suffix(last_error)
    )]
    CircuitOpen {
        /// When the breaker will next let a probe through.
        retry_after: Duration,
        /// The last real error that opened or kept the circuit open.
        last_error: Option<String>,
    },
    /// Creating a connection failed with an error that retrying cannot fix
    /// (wrong password, unknown database), or failed on every retry.
    #[error("could not create a connection: {0}")]
    Create(#[source] E),
    /// A query run through the pool ([`Pool::execute_query`](crate::Pool::execute_query),
    /// [`Pool::transaction`](crate::Pool::transaction)) failed.
    #[error("query failed: {0}")]
    Query(#[source] E),
    /// A query run with a deadline
    /// ([`Pool::execute_query_within`](crate::Pool::execute_query_within))
    /// did not finish in time; the statement was abandoned (the drivers
    /// cancel it on the server and clean the connection).
    #[error("the query did not finish within {after:?}; it was cancelled")]
    QueryTimeout {
        /// The deadline it was given.
        after: Duration,
    },
    /// A blocking call was made on the thread that drives a current-thread
    /// runtime, where it would stall every task on it (or deadlock, if the
    /// pool needs that runtime). Use the async API there, or make the call
    /// inside `tokio::task::spawn_blocking`.
    #[error("a blocking pool call was made on the thread driving a current-thread tokio runtime, where it would stall every task; use pool.get().await there, or call it inside tokio::task::spawn_blocking")]
    BlockingInAsync,
}

fn last_error_suffix(last: &Option<String>) -> String {
    match last {
        Some(e) => format!(" (last error: {e})"),
        None => String::new(),
    }
}

impl<E: std::error::Error + 'static> Error<E> {
    /// The manager's error, when this is [`Error::Create`].
    pub fn create_error(&self) -> Option<&E> {
        match self {
            Error::Create(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a pool could not be built.
///
/// ```
/// use tidepool::BuildError;
/// let err = BuildError::InvalidConfig { field: "max_size", reason: "must be at least 1".into() };
/// assert_eq!(err.to_string(), "invalid pool configuration: `max_size` must be at least 1");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A configuration value is out of range; `field` names it.
    #[error("invalid pool configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The field at fault, as named on the builder.
        field: &'static str,
        /// What is wrong with it and what would be accepted.
        reason: String,
    },
    /// An eager build (`initial_size > 0` with `build()`) could not open its
    /// first connections.
    #[error("could not open the pool's initial connections: {0}")]
    WarmUp(String),
    /// The pool was built outside a tokio runtime; it needs one for its
    /// maintenance task and for returning connections.
    #[error("a pool must be built inside a tokio runtime (or use BlockingPool::builder for plain threads)")]
    NoRuntime,
}
