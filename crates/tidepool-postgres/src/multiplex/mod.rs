//! Multiplexed reads: many independent read-only statements share a few
//! pooled connections, pipelined by tokio-postgres, instead of each waiting
//! for a connection of its own. It owns the read path only: what may share
//! is decided in `sharing` (never a transaction or a session change), the
//! connections held in `lanes`. It never changes the pool: every lane is a
//! guard checked out with [`Pool::get`](tidepool::Pool::get), so the pool's
//! size, accounting, breaker, resets and discards apply unchanged.

mod lanes;
mod sharing;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tidepool::{Classify, FailureKind, QueryKind};
use tidepool_sql::SessionState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::PgError;
use crate::PgPool;

use lanes::{Claim, LaneSet};
pub use sharing::{sharing, ReadOnly, SharedSql, Sharing};

/// How a [`Multiplexer`] shares connections. Every setter says its default.
///
/// ```
/// use std::time::Duration;
/// use tidepool_postgres::MultiplexConfig;
/// let config = MultiplexConfig::default()
///     .connections(10)
///     .depth(16)
///     .idle_return(Duration::from_millis(50));
/// assert_eq!(config.connections, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiplexConfig {
    /// Most connections checked out of the pool for shared reads.
    pub connections: usize,
    /// Most reads in flight on one connection.
    pub depth: usize,
    /// How long a connection no read used stays held before it goes back
    /// to the pool.
    pub idle_return: Duration,
}

impl Default for MultiplexConfig {
    fn default() -> Self {
        MultiplexConfig {
            connections: 4,
            depth: 32,
            idle_return: Duration::from_millis(100),
        }
    }
}

impl MultiplexConfig {
    /// Most connections checked out of the pool for shared reads. Defaults
    /// to 4; at most the pool's `max_size` is useful.
    #[must_use]
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n;
        self
    }

    /// Most reads in flight (pipelined) on one connection. Defaults to 32.
    #[must_use]
    pub fn depth(mut self, n: usize) -> Self {
        self.depth = n;
        self
    }

    /// How long a connection no read used is held before it goes back to
    /// the pool (it goes back after between one and two of these).
    /// Defaults to 100 ms.
    #[must_use]
    pub fn idle_return(mut self, after: Duration) -> Self {
        self.idle_return = after;
        self
    }
}

/// Why a shared read failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultiplexError {
    /// The statement may not share a connection: it is not a read, or it
    /// opens or ends a transaction, or changes session state. Nothing was
    /// sent. Run it on a connection of its own ([`tidepool::Pool::get`]),
    /// or mark a read the classifier takes for a write with [`ReadOnly`].
    #[error("not multiplexed: a {kind} statement{} needs a connection of its own; use pool.get()", session_suffix(*.session))]
    NotShareable {
        /// The statement's kind as tidepool-sql reads it.
        kind: QueryKind,
        /// The session state it changes, if any.
        session: SessionState,
    },
    /// A [`MultiplexConfig`] field is out of range.
    #[error("invalid multiplexer setting `{field}`: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What would be accepted.
        reason: &'static str,
    },
    /// A connection could not be checked out of the pool (timeout, pool
    /// closed, circuit open, ...).
    #[error(transparent)]
    Pool(tidepool::Error<PgError>),
    /// Every shared connection was at its depth, and none came free within
    /// the pool's `acquire_timeout`.
    #[error("no shared connection had room within {waited:?}")]
    Timeout {
        /// How long the read waited.
        waited: Duration,
    },
    /// The statement failed; the connection is fine and stays shared.
    #[error(transparent)]
    Query(PgError),
    /// The shared connection failed under the read (killed, closed, I/O):
    /// only the reads on that connection fail with this, and the
    /// connection is discarded, never returned to the pool. Whether the
    /// statement ran is unknown; a read is safe to run again.
    #[error("the shared connection {connection} was lost: {error}")]
    ConnectionLost {
        /// The pool's id of the connection ([`tidepool::Pooled::id`]).
        connection: u64,
        /// What the driver said.
        error: PgError,
    },
}

fn session_suffix(session: SessionState) -> String {
    if session.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = session.names().collect();
        format!(" that changes session state ({})", names.join(", "))
    }
}

impl MultiplexError {
    /// The kind of failure, as the pool's breaker counts it.
    ///
    /// ```
    /// use tidepool::FailureKind;
    /// use tidepool_postgres::{MultiplexError, PgError};
    /// let lost = MultiplexError::ConnectionLost { connection: 3, error: PgError::Closed };
    /// assert_eq!(lost.failure_kind(), FailureKind::Connect);
    /// ```
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            MultiplexError::NotShareable { .. } | MultiplexError::Config { .. } => {
                FailureKind::Client
            }
            MultiplexError::Pool(tidepool::Error::Timeout { .. })
            | MultiplexError::Timeout { .. } => FailureKind::Timeout,
            MultiplexError::Pool(tidepool::Error::Create(e) | tidepool::Error::Query(e)) => {
                e.failure_kind()
            }
            MultiplexError::Pool(_) => FailureKind::Connect,
            MultiplexError::Query(e) => e.failure_kind(),
            MultiplexError::ConnectionLost { .. } => FailureKind::Connect,
        }
    }
}

/// Shared reads over a [`PgPool`](crate::PgPool): independent read-only
/// statements pipelined over a few connections checked out of the pool.
/// Opt-in; cheap to `Clone` (clones share the connections).
///
/// A statement is multiplexed when [`sharing`] says so: one autocommit
/// statement that tidepool-sql reads as a read (or the caller marks
/// [`ReadOnly`]) and that changes no session state. Anything else is
/// refused with [`MultiplexError::NotShareable`] before it is sent.
///
/// ```no_run
/// use tidepool_postgres::{Multiplexer, MultiplexConfig};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = tidepool_postgres::pool("postgres://app@127.0.0.1/app")?.max_size(10).build().await?;
/// let reads = Multiplexer::new(pool.clone(), MultiplexConfig::default().connections(4))?;
/// let row = reads.query_one("SELECT name FROM users WHERE id = $1", &[&7i32]).await?;
/// let name: &str = row.get("name");
/// // Writes and transactions keep connections of their own.
/// let mut conn = pool.get().await?;
/// conn.execute("UPDATE users SET seen = now() WHERE id = $1", &[&7i32]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Multiplexer {
    set: Arc<LaneSet>,
}

impl std::fmt::Debug for Multiplexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiplexer")
            .field("config", &self.set.config)
            .field("status", &self.status())
            .finish()
    }
}

/// A [`Multiplexer`]'s connections and counters at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultiplexStatus {
    /// The connections held now: the pool's id of each
    /// ([`tidepool::Pooled::id`]) and its reads in flight.
    pub connections: Vec<(u64, usize)>,
    /// Checkouts under way.
    pub connections_pending: usize,
    /// Reads waiting for room.
    pub reads_waiting: usize,
    /// Places for reads not taken: `connections × depth` when no read is
    /// in flight or waiting for a connection.
    pub read_places_free: usize,
    /// Connections checked out so far.
    pub connections_taken: u64,
    /// Connections given back idle (or past the pool's `max_lifetime`).
    pub connections_returned: u64,
    /// Connections lost under reads (discarded, not returned).
    pub connections_lost: u64,
    /// Statements refused as not shareable.
    pub refused: u64,
}

impl Multiplexer {
    /// A multiplexer over `pool`. It holds no connection until the first
    /// read. Refuses a zero `connections`, `depth` or `idle_return`.
    ///
    /// ```
    /// use tidepool_postgres::{Multiplexer, MultiplexConfig, MultiplexError, PgManager};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = PgManager::from_url("postgres://app@127.0.0.1/app")?;
    /// let pool = tidepool::Pool::builder(manager).min_size(0).build_lazy()?;
    /// let err = Multiplexer::new(pool, MultiplexConfig::default().depth(0)).unwrap_err();
    /// assert!(matches!(err, MultiplexError::Config { field: "depth", .. }));
    /// # Ok(()) }
    /// ```
    pub fn new(pool: PgPool, config: MultiplexConfig) -> Result<Multiplexer, MultiplexError> {
        let zero = |field| MultiplexError::Config {
            field,
            reason: "must be at least 1",
        };
        if config.connections == 0 {
            return Err(zero("connections"));
        }
        if config.depth == 0 {
            return Err(zero("depth"));
        }
        if config.idle_return.is_zero() {
            return Err(MultiplexError::Config {
                field: "idle_return",
                reason: "must be longer than zero",
            });
        }
        Ok(Multiplexer {
            set: Arc::new(LaneSet::new(pool, config)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> MultiplexConfig {
        self.set.config
    }

    /// The pool the connections come from.
    pub fn pool(&self) -> &PgPool {
        &self.set.pool
    }

    /// Connections held, reads in flight and waiting, and counters.
    pub fn status(&self) -> MultiplexStatus {
        let (lanes, pending) = self.set.views();
        let c = &self.set.counters;
        MultiplexStatus {
            connections: lanes.iter().map(|l| (l.id, l.in_flight)).collect(),
            connections_pending: pending,
            reads_waiting: self.set.waiting(),
            read_places_free: self.set.places_free(),
            connections_taken: c.lanes_opened.load(Relaxed),
            connections_returned: c.lanes_returned_idle.load(Relaxed),
            connections_lost: c.lanes_lost.load(Relaxed),
            refused: c.refused.load(Relaxed),
        }
    }

    /// Gives every held connection back to the pool now (each as soon as
    /// the reads on it are done) instead of after `idle_return`. Later
    /// reads check connections out again.
    pub fn release(&self) {
        self.set.release_all();
    }

    /// Like [`Client::query`](tokio_postgres::Client::query) on a shared
    /// connection, through its statement cache.
    pub async fn query<S: SharedSql + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, MultiplexError> {
        let claim = self.admit(statement).await?;
        let result = claim.lane.conn.query(statement.sql(), params).await;
        self.settle(&claim, result)
    }

    /// Like [`Client::query_one`](tokio_postgres::Client::query_one) on a
    /// shared connection: exactly one row, or an error.
    pub async fn query_one<S: SharedSql + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, MultiplexError> {
        let claim = self.admit(statement).await?;
        let result = claim.lane.conn.query_one(statement.sql(), params).await;
        self.settle(&claim, result)
    }

    /// Like [`Client::query_opt`](tokio_postgres::Client::query_opt) on a
    /// shared connection: at most one row.
    pub async fn query_opt<S: SharedSql + ?Sized>(
        &self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, MultiplexError> {
        let claim = self.admit(statement).await?;
        let result = claim.lane.conn.query_opt(statement.sql(), params).await;
        self.settle(&claim, result)
    }

    async fn admit<S: SharedSql + ?Sized>(&self, statement: &S) -> Result<Claim, MultiplexError> {
        if let Sharing::Refused { kind, session } = sharing(statement) {
            self.set.counters.refused.fetch_add(1, Relaxed);
            return Err(MultiplexError::NotShareable { kind, session });
        }
        self.set.claim().await
    }

    /// Tells the breaker how it went, as [`tidepool::Pool::execute_query`]
    /// does, and takes a connection that failed out of service.
    fn settle<T>(
        &self,
        claim: &Claim,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, MultiplexError> {
        let pool = &self.set.pool;
        match result {
            Ok(value) => {
                pool.report_success();
                Ok(value)
            }
            Err(e) => {
                let error = PgError::from(e);
                pool.report_failure(error.failure_kind(), &error);
                if error.is_fatal_for_connection() || claim.lane.conn.is_broken() {
                    self.set.kill(&claim.lane);
                    Err(MultiplexError::ConnectionLost {
                        connection: claim.lane.id,
                        error,
                    })
                } else {
                    Err(MultiplexError::Query(error))
                }
            }
        }
    }
}
