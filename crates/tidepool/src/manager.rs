//! The `Manager` trait: everything the pool needs to know about a database
//! driver. The pool never speaks SQL; it only creates, checks, resets and
//! discards connections through this trait, and asks the manager to classify
//! errors so the breaker can tell a dead database from a caller's mistake.

use std::future::Future;

use crate::error::FailureKind;

/// Creates, checks and cleans connections for a [`Pool`](crate::Pool).
///
/// Implement it for a driver. Every method that talks to the server is async;
/// the pool bounds each call by its own timeout (`connect_timeout`,
/// `validation_timeout`, `reset_timeout`), so an implementation does not need
/// to add one.
///
/// ```
/// use std::convert::Infallible;
/// use tidepool::{FailureKind, Manager};
///
/// struct Counter;
///
/// impl Manager for Counter {
///     type Connection = u32;
///     type Error = Infallible;
///
///     async fn connect(&self) -> Result<u32, Infallible> {
///         Ok(0)
///     }
///
///     async fn validate(&self, _conn: &mut u32) -> Result<(), Infallible> {
///         Ok(())
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The driver's connection type, handed out through the guard.
    type Connection: Send + 'static;
    /// The driver's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection to the database.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Checks that a connection still works (a ping or validation query).
    fn validate(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether a returned connection needs [`reset`](Manager::reset) before it
    /// is handed out again. Must be cheap and must not block: it runs
    /// synchronously on the return path. Defaults to `false`.
    fn needs_reset(&self, _conn: &Self::Connection) -> bool {
        false
    }

    /// Called on a new connection right after the
    /// [`after_connect`](crate::Builder::after_connect) hook succeeded (and
    /// only when there is one): the session as the hook left it is where
    /// every borrower starts, not a borrower's change for
    /// [`reset`](Manager::reset) to undo. The drivers forget their
    /// session-state dirty bits here. Must be cheap. Defaults to nothing.
    fn session_baseline(&self, _conn: &mut Self::Connection) {}

    /// Cleans a returned connection (rolls back an open transaction, clears
    /// session state). Called only when [`needs_reset`](Manager::needs_reset)
    /// said so. An error discards the connection.
    fn reset(
        &self,
        _conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// Whether the connection is known to be unusable (closed socket, a
    /// fatal error seen). Must be cheap; a broken connection is discarded on
    /// return and never handed out. Defaults to `false`.
    fn is_broken(&self, _conn: &Self::Connection) -> bool {
        false
    }

    /// Classifies a driver error. The breaker counts every kind except
    /// [`FailureKind::Client`] against the database. Defaults to `Connect`,
    /// the right answer for errors from [`connect`](Manager::connect).
    fn classify(&self, _error: &Self::Error) -> FailureKind {
        FailureKind::Connect
    }

    /// Whether trying to connect again could help. A wrong password or an
    /// unknown database is not retryable: the pool fails the acquire at once
    /// with the cause instead of retrying until the timeout. Defaults to
    /// `true`.
    fn is_retryable(&self, _error: &Self::Error) -> bool {
        true
    }

    /// Whether the error says the server is restarting: up but not yet
    /// accepting connections, or going down to come back (PostgreSQL's
    /// SQLSTATE `57P03`, "the database system is starting up"). The circuit
    /// breaker gives such a server
    /// [`restart_grace`](crate::BreakerConfig::restart_grace) before it
    /// opens the circuit on these failures, so callers wait out a restart
    /// instead of failing fast through it. Defaults to `false`.
    fn is_restarting(&self, _error: &Self::Error) -> bool {
        false
    }

    /// Whether the server refused the connection because it has no room for
    /// another (PostgreSQL's `53300` "too many connections", MySQL's `1040`
    /// and `1203`). The pool treats such a refusal as capacity, not
    /// failure: it stops opening connections past the number it has open,
    /// queues callers on those, retries the ceiling now and then, and does
    /// not tell the circuit breaker. Defaults to `false`.
    fn is_at_capacity(&self, _error: &Self::Error) -> bool {
        false
    }

    /// Whether this connection has already prepared the statement known by
    /// `statement` (a [`statement_key`](crate::statement_key) of its exact
    /// SQL text), for statement-cache affinity
    /// ([`Pool::get_for`](crate::Pool::get_for)). Called under the pool's
    /// lock: it must be cheap and must never block (answer `false` rather
    /// than wait for a lock). Defaults to `false`.
    fn has_prepared(&self, _conn: &Self::Connection, _statement: u64) -> bool {
        false
    }

    /// The shape of `sql` for the pool's query statistics and slow-query
    /// log ([`Pool::queries`](crate::Pool::queries)): a stable id and the
    /// normalized text, never holding a literal's value. The drivers
    /// answer with tidepool-sql's fingerprint. Called on every query
    /// through the pool, so it must be cheap (cache by text). Defaults to
    /// `None`: no statistics.
    fn query_shape(&self, _sql: &str) -> Option<crate::QueryShape> {
        None
    }

    /// A short description of the target for logs, without credentials
    /// (for example `postgres://app@db:5432/orders`). Defaults to the type
    /// name.
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }
}
