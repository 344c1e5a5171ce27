//! The pool handle users hold: cheap to clone, `Send + Sync`, and the
//! owner of the pool's life. When the last handle is dropped the pool
//! closes: waiters get `Closed`, idle connections close, the maintenance
//! task stops, and checked-out connections close when they come back.

use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::builder::Builder;
use crate::error::Error;
use crate::guard::Pooled;
use crate::manager::Manager;
use crate::metrics::{CloseReason, Metrics};
use crate::shared::Shared;

/// A pool of database connections.
///
/// `Pool` is `Send`, `Sync` and cheap to `Clone` (clones share one pool).
/// Acquisition is fair: waiters are served first come, first served.
/// See the [crate documentation](crate) for the guarantees it keeps.
pub struct Pool<M: Manager> {
    pub(crate) handle: Arc<Handle<M>>,
}

/// The pool's lifetime owner: dropping the last one closes the pool.
pub(crate) struct Handle<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
    /// A runtime the pool owns (blocking pools built outside tokio).
    pub(crate) _runtime: Option<crate::blocking::OwnedRuntime>,
}

impl<M: Manager> Drop for Handle<M> {
    fn drop(&mut self) {
        self.shared.shut();
    }
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            handle: self.handle.clone(),
        }
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.shared().manager.describe())
            .field("status", &self.status())
            .finish()
    }
}

/// The pool's size and occupancy at one instant.
///
/// `size == idle + in_use + being_created` and `size <= max_size` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Status {
    /// Open connections, including those being opened.
    pub size: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out (or being validated or reset).
    pub in_use: usize,
    /// Connections being opened.
    pub being_created: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
    /// The floor (configured, or set by [`Pool::resize`]).
    pub min_size: usize,
    /// The hard cap (configured, or set by [`Pool::resize`]).
    pub max_size: usize,
    /// Connections kept open and ready (moves with a scaling strategy;
    /// `min_size` otherwise).
    pub warm_target: usize,
    /// Connections that may be out at once (moves with the adaptive
    /// concurrency limit; `max_size` otherwise).
    pub limit: usize,
    /// Open connections above the warm target: opened for a burst, closed
    /// when it has passed.
    pub overflow: usize,
    /// The server's own connection limit as the pool learned it from
    /// "too many connections" refusals, while it holds the pool below
    /// `max_size`; `None` when the server has not refused.
    pub server_ceiling: Option<usize>,
}

/// What [`Pool::close`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseReport {
    /// Idle connections closed at once.
    pub closed_idle: usize,
    /// Checked-out connections that came back (and were closed) before the
    /// deadline.
    pub returned_in_time: usize,
    /// Connections still checked out at the deadline; each closes when its
    /// holder drops it.
    pub still_checked_out: usize,
}

impl<M: Manager> Pool<M> {
    /// Starts configuring a pool over `manager`.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tidepool::BuildError> {
    /// use std::time::Duration;
    /// let pool = Pool::builder(M)
    ///     .max_size(16)
    ///     .acquire_timeout(Duration::from_secs(2))
    ///     .build()
    ///     .await?;
    /// assert_eq!(pool.status().max_size, 16);
    /// # Ok(()) }
    /// ```
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<M>> {
        &self.handle.shared
    }

    /// Checks out a connection, waiting up to `acquire_timeout`.
    ///
    /// Fails with [`Error::Timeout`] (carrying the last connection error,
    /// if any), [`Error::Closed`], or [`Error::Create`] when the manager
    /// reports an error that retrying cannot fix. Cancelling the returned
    /// future at any point leaks nothing. The caller's source location is
    /// recorded for leak reports.
    #[track_caller]
    pub fn get(
        &self,
    ) -> impl std::future::Future<Output = Result<Pooled<M>, Error<M::Error>>> + Send + '_ {
        let location = Location::caller();
        self.shared().acquire(location, None)
    }

    /// Checks out a connection for running `statement` (a
    /// [`statement_key`](crate::statement_key) of its SQL text): like
    /// [`get`](Pool::get), but when it takes an idle connection directly
    /// it prefers one that has already prepared the statement (see
    /// [`Manager::has_prepared`]). It never waits longer for that, and a
    /// caller that must queue is served in arrival order like any other.
    /// Hits and misses are counted in [`Metrics`].
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M).build().await?;
    /// let sql = "SELECT name FROM users WHERE id = $1";
    /// let conn = pool.get_for(tidepool::statement_key(sql)).await?;
    /// # drop(conn); Ok(()) }
    /// ```
    #[track_caller]
    pub fn get_for(
        &self,
        statement: u64,
    ) -> impl std::future::Future<Output = Result<Pooled<M>, Error<M::Error>>> + Send + '_ {
        let location = Location::caller();
        self.shared().acquire(location, Some(statement))
    }

    /// The pool's size and occupancy now.
    pub fn status(&self) -> Status {
        let shared = self.shared();
        let state = shared.state.lock();
        Status {
            size: state.size(),
            idle: state.idle.len(),
            in_use: state.in_use,
            being_created: state.creating,
            waiting: state.waiting,
            min_size: state.min_size,
            max_size: state.max_size,
            warm_target: state.warm_target,
            limit: state.limit,
            overflow: state
                .size()
                .saturating_sub(state.warm_target.max(state.min_size)),
            server_ceiling: state.ceiling.known(),
        }
    }

    /// Everything counted since the pool was built, with percentiles and a
    /// view of each open connection.
    pub fn metrics(&self) -> Metrics {
        let shared = self.shared();
        let now = Instant::now();
        let mut connections: Vec<_> = {
            let state = shared.state.lock();
            state.live.values().cloned().collect::<Vec<_>>()
        }
        .iter()
        .map(|meta| meta.snapshot(shared.epoch, now))
        .collect();
        connections.sort_by_key(|c| c.id);
        shared
            .recorder
            .snapshot(connections, shared.breaker.snapshot())
    }

    /// Tells the circuit breaker that work on one of this pool's
    /// connections failed, so a database failing queries (not only
    /// connections) is noticed. `Client` failures are ignored.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool, FailureKind};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M).build().await?;
    /// pool.report_failure(FailureKind::Client, &"duplicate key value");
    /// assert_eq!(pool.breaker_state(), tidepool::BreakerState::Healthy);
    /// # Ok(()) }
    /// ```
    pub fn report_failure(&self, kind: crate::FailureKind, error: &dyn std::fmt::Display) {
        self.shared().recorder.counters.failed(kind);
        self.shared()
            .breaker
            .record_failure(kind, &error.to_string());
    }

    /// Tells the circuit breaker that work succeeded (helps a degraded
    /// breaker heal).
    pub fn report_success(&self) {
        self.shared().breaker.record_success();
    }

    /// The circuit breaker's current state.
    pub fn breaker_state(&self) -> crate::BreakerState {
        self.shared().breaker.state()
    }

    /// The pool's name: [`Builder::name`](crate::Builder::name) if set,
    /// else the manager's [`describe`](Manager::describe) (no credentials).
    pub fn name(&self) -> String {
        let shared = self.shared();
        match &shared.config.name {
            Some(name) => name.clone(),
            None => shared.manager.describe(),
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &crate::Config {
        &self.shared().config
    }

    /// The manager the pool was built with.
    pub fn manager(&self) -> &M {
        &self.shared().manager
    }

    /// Retires every connection open now without closing the pool, as
    /// HikariCP's `softEvictConnections`: idle connections close at once,
    /// checked-out ones close when their holder returns them (never under
    /// the holder), and connections being opened are closed when first
    /// checked out. New checkouts open fresh connections. For when the
    /// database behind the pool changed (a failover, a credentials or DNS
    /// change): the old connections are not broken, only no longer wanted.
    /// Each is counted as [`CloseReason::Evicted`](crate::CloseReason::Evicted).
    /// Returns how many idle connections it closed.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M).initial_size(2).build().await?;
    /// let held = pool.get().await?;
    /// assert_eq!(pool.soft_evict(), 1, "the idle one closes now");
    /// drop(held); // closes on return
    /// assert_eq!(pool.status().size, 0);
    /// assert_eq!(pool.metrics().connections_closed_evicted, 2);
    /// # Ok(()) }
    /// ```
    pub fn soft_evict(&self) -> usize {
        let shared = self.shared();
        shared.generation.fetch_add(1, Ordering::AcqRel);
        let n = shared.drain_idle(CloseReason::Evicted);
        tracing::info!(target: "tidepool::pool", pool = %self.name(), closed_idle = n, "connections soft-evicted: in-use ones close on return");
        n
    }

    /// Whether [`close`](Pool::close) was called (or the pool shut down).
    pub fn is_closed(&self) -> bool {
        self.shared().is_closed()
    }

    /// Closes the pool: new acquires fail with [`Error::Closed`] at once,
    /// waiters are woken with `Closed`, idle connections close, and the
    /// call waits up to `wait` for checked-out connections to come back
    /// (each is closed on return). Returns what it closed and what was
    /// still out at the deadline.
    pub async fn close(&self, wait: Duration) -> CloseReport {
        let shared = self.shared();
        let out_before = {
            let state = shared.state.lock();
            state.in_use + state.creating
        };
        let closed_idle = shared.shut();
        let deadline = Instant::now() + wait;
        let mut out = out_before;
        loop {
            {
                let state = shared.state.lock();
                out = out.min(state.in_use + state.creating);
            }
            // A connection that raced shut() into the idle queue (a reset
            // or a ping finishing) is closed here.
            shared.drain_idle(CloseReason::PoolClosed);
            if out == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5).min(wait)).await;
        }
        CloseReport {
            closed_idle,
            returned_in_time: out_before - out,
            still_checked_out: out,
        }
    }
}

impl<M: Manager> Shared<M> {
    /// Marks the pool closed, wakes waiters, closes idle connections.
    /// Returns how many idle connections it closed.
    pub(crate) fn shut(&self) -> usize {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.close_waiters();
        // Callers held by an open circuit, and attempts waiting for it to
        // change, look at `closed` when woken.
        self.breaker.changed.notify_waiters();
        let n = self.drain_idle(CloseReason::PoolClosed);
        if first {
            tracing::debug!(target: "tidepool::pool", target_db = %self.manager.describe(), "pool closed");
        }
        n
    }
}
