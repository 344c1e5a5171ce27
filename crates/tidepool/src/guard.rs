//! The checked-out handle. It owns its connection and a share of the pool,
//! so it is `'static` and can move across tasks; it derefs to the driver's
//! connection, and on drop sends the connection back: discarded if broken,
//! expired or returned during a panic, cleaned first if the manager says it
//! is dirty, otherwise straight to idle. Helpers are associated functions
//! (`Pooled::id(&conn)`) so they never shadow the connection's own methods.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::time::Instant;

use crate::conn::ConnMeta;
use crate::events::Event;
use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::shared::Shared;

/// A connection checked out of a [`Pool`](crate::Pool). Derefs to the
/// driver's connection; returns it to the pool on drop.
///
/// ```
/// # use tidepool::{Manager, Pool, Pooled};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = Vec<u8>;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> std::io::Result<Vec<u8>> { Ok(Vec::new()) }
/// #     async fn validate(&self, _: &mut Vec<u8>) -> std::io::Result<()> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(M).max_size(2).build().await?;
/// let mut conn = pool.get().await?;
/// conn.push(1); // a method of the connection itself
/// assert!(Pooled::is_new(&conn));
/// let id = Pooled::id(&conn);
/// drop(conn);
/// let again = pool.get().await?;
/// assert_eq!(Pooled::id(&again), id);
/// assert!(!Pooled::is_new(&again));
/// # Ok(()) }
/// ```
pub struct Pooled<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
    pub(crate) conn: Option<Box<M::Connection>>,
    pub(crate) meta: Arc<ConnMeta>,
    pub(crate) checked_out: Instant,
    pub(crate) is_new: bool,
    pub(crate) broken: bool,
}

impl<M: Manager> Pooled<M> {
    /// The connection's id, unique within its pool.
    pub fn id(this: &Self) -> u64 {
        this.meta.id
    }

    /// Whether the connection was opened for this checkout.
    pub fn is_new(this: &Self) -> bool {
        this.is_new
    }

    /// Marks the connection broken: it is closed on return instead of
    /// going back to the pool.
    pub fn mark_broken(this: &mut Self) {
        this.broken = true;
    }

    /// Takes the connection out of the pool for good. Its slot is freed at
    /// once, so the pool may open another in its place.
    pub fn detach(mut this: Self) -> M::Connection {
        let conn = this.conn.take();
        this.shared
            .discard_accounting(&this.meta, CloseReason::Detached);
        match conn {
            Some(conn) => *conn,
            // The connection is present from construction until drop or
            // detach, and both consume the guard.
            None => unreachable!("a guard always holds its connection until it is consumed"),
        }
    }

    fn conn_ref(&self) -> &M::Connection {
        match &self.conn {
            Some(c) => c,
            None => unreachable!("a guard always holds its connection until it is consumed"),
        }
    }
}

impl<M: Manager> Deref for Pooled<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        self.conn_ref()
    }
}

impl<M: Manager> DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("a guard always holds its connection until it is consumed"),
        }
    }
}

impl<M: Manager> fmt::Debug for Pooled<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("id", &self.meta.id)
            .field("is_new", &self.is_new)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let shared = &self.shared;
        let now = Instant::now();
        let held = now.saturating_duration_since(self.checked_out);
        shared.recorder.hold_time.record(held);
        self.meta.mark_returned(shared.epoch, now);
        shared.emit(|| Event::Checkin {
            id: self.meta.id,
            held,
        });

        let discard = if self.broken || std::thread::panicking() || shared.manager.is_broken(&conn)
        {
            Some(CloseReason::Broken)
        } else if shared.is_closed() {
            Some(CloseReason::PoolClosed)
        } else if self.meta.expired(now) {
            Some(CloseReason::MaxLifetime)
        } else if shared.is_evicted(&self.meta) {
            Some(CloseReason::Evicted)
        } else {
            None
        };
        if let Some(reason) = discard {
            shared.discard_in_use(conn, &self.meta, reason);
            return;
        }
        if shared.manager.needs_reset(&conn) {
            shared
                .recorder
                .counters
                .resets
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ticket = ResetTicket {
                shared: shared.clone(),
                conn: Some(conn),
                meta: self.meta.clone(),
            };
            // Spawned on the returner's runtime when there is one (see
            // `background`). If that runtime is shutting down the task is
            // dropped unrun, and the ticket's drop discards the connection
            // and frees its permit.
            drop(shared.spawn(ticket.run()));
            return;
        }
        shared.release(conn, self.meta.clone(), false);
    }
}

/// A returned connection on its way through `Manager::reset`. It keeps the
/// permit until the connection is clean and idle, or discarded; whatever
/// stops it (reset error, timeout, runtime shutdown) ends in a discard.
struct ResetTicket<M: Manager> {
    shared: Arc<Shared<M>>,
    conn: Option<Box<M::Connection>>,
    meta: Arc<ConnMeta>,
}

impl<M: Manager> ResetTicket<M> {
    async fn run(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let shared = self.shared.clone();
        let outcome =
            tokio::time::timeout(shared.config.reset_timeout, shared.manager.reset(&mut conn))
                .await;
        match outcome {
            Ok(Ok(())) if shared.is_evicted(&self.meta) => {
                shared.discard_in_use(conn, &self.meta, CloseReason::Evicted);
            }
            Ok(Ok(())) if !shared.manager.is_broken(&conn) && !shared.is_closed() => {
                shared.release(conn, self.meta.clone(), false);
            }
            Ok(Ok(())) => shared.discard_in_use(conn, &self.meta, CloseReason::PoolClosed),
            Ok(Err(e)) => {
                tracing::warn!(target: "tidepool::pool", id = self.meta.id, error = %e, "discarding a connection that could not be reset");
                shared.discard_in_use(conn, &self.meta, CloseReason::FailedReset);
            }
            Err(_) => {
                tracing::warn!(target: "tidepool::pool", id = self.meta.id, timeout = ?shared.config.reset_timeout, "discarding a connection whose reset timed out");
                shared.discard_in_use(conn, &self.meta, CloseReason::FailedReset);
            }
        }
    }
}

impl<M: Manager> Drop for ResetTicket<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared
                .discard_in_use(conn, &self.meta, CloseReason::FailedReset);
        }
    }
}
