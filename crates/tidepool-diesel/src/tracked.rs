//! What the pool knows about a diesel-async connection without touching it.
//!
//! diesel-async keeps its transaction state behind `&mut` (and, for
//! PostgreSQL, behind a lock), while the pool decides on a return with a
//! shared reference and must not block. So every pooled connection carries
//! an [`Instrumentation`] of ours: diesel calls it on every query start and
//! finish and on every `BEGIN`, `COMMIT` and `ROLLBACK`, and it keeps three
//! facts in atomics the pool can read for free — a transaction statement
//! was run, a query was started and has not finished (its future was
//! dropped, or it failed before diesel reported the finish), a query failed
//! because the connection is gone. A return with none of them set goes
//! straight back to idle; the rest go through the manager's reset, which
//! looks at diesel's own transaction state with `&mut` and decides.
//!
//! This module must never decide anything from a guess: a flag only sends a
//! connection to the reset, where the real state is read.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::classify::connection_lost;

/// A diesel-async connection checked out of a tidepool pool.
///
/// It derefs to the diesel-async connection (`AsyncPgConnection`,
/// `AsyncMysqlConnection`), so `&mut conn` is accepted wherever diesel-async
/// takes a connection, including functions written for
/// `&mut AsyncPgConnection`, and diesel-async's `RunQueryDsl` and
/// `AsyncConnection::transaction` work on the pool's guard directly.
///
/// The pool watches the connection through diesel's instrumentation hook:
/// replacing it with `set_instrumentation` turns that watch off (the pool
/// then rolls back and checks every return, as if a transaction had been
/// opened). To add your own, use the manager's `instrumentation` setting,
/// which the pool calls after its own.
pub struct TrackedConnection<C> {
    conn: C,
    state: Arc<State>,
}

impl<C> TrackedConnection<C> {
    pub(crate) fn new(conn: C, state: Arc<State>) -> Self {
        TrackedConnection { conn, state }
    }

    /// Whether the pool will look at this connection before handing it out
    /// again: a transaction statement ran on it, a query did not finish, or
    /// it lost its server. Reading it costs nothing.
    pub fn needs_attention(this: &Self) -> bool {
        this.state.needs_reset()
    }

    /// Whether a query on this connection failed because the connection to
    /// the server is gone; the pool closes it on return.
    pub fn is_lost(this: &Self) -> bool {
        this.state.lost.load(Ordering::Acquire)
    }

    /// Takes the diesel-async connection out of the wrapper (the pool's
    /// watch stays installed on it, and is harmless).
    pub fn into_inner(this: Self) -> C {
        this.conn
    }

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    pub(crate) fn inner_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> Deref for TrackedConnection<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for TrackedConnection<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> fmt::Debug for TrackedConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedConnection")
            .field("connection", &std::any::type_name::<C>())
            .field("state", &self.state)
            .finish()
    }
}

/// The facts the instrumentation keeps for one connection.
#[derive(Default)]
pub(crate) struct State {
    /// A `BEGIN`, `COMMIT`, `ROLLBACK` or savepoint statement ran since the
    /// last reset (or the pool's watch was replaced).
    transaction: AtomicBool,
    /// Queries started and not yet reported finished.
    in_flight: AtomicU32,
    /// A query failed because the connection is gone.
    lost: AtomicBool,
    /// Whether our instrumentation is still the one installed: diesel
    /// drops it (and with it this `Arc`'s other owner) when it is replaced.
    watching: AtomicBool,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("transaction", &self.transaction.load(Ordering::Relaxed))
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("lost", &self.lost.load(Ordering::Relaxed))
            .field("watching", &self.watching.load(Ordering::Relaxed))
            .finish()
    }
}

impl State {
    pub(crate) fn needs_reset(&self) -> bool {
        self.transaction.load(Ordering::Acquire)
            || self.in_flight.load(Ordering::Acquire) != 0
            || self.lost.load(Ordering::Acquire)
            || !self.watching.load(Ordering::Acquire)
    }

    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Whether the connection must answer a round trip before it is
    /// trusted again: a query's future was dropped mid-way or failed before
    /// diesel reported its end, or nobody is watching any more.
    pub(crate) fn needs_ping(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) != 0 || !self.watching.load(Ordering::Acquire)
    }

    /// Clears what the reset has dealt with. Called with `&mut` on the
    /// connection, so no query of ours runs concurrently.
    pub(crate) fn settled(&self) {
        self.transaction.store(false, Ordering::Release);
        self.in_flight.store(0, Ordering::Release);
    }
}

/// The instrumentation the pool installs on each connection. It forwards
/// every event to the user's instrumentation (or diesel's global default),
/// after noting what the pool needs.
pub(crate) struct Watch {
    state: Arc<State>,
    next: Option<Box<dyn Instrumentation>>,
}

impl Watch {
    pub(crate) fn new(state: Arc<State>, next: Option<Box<dyn Instrumentation>>) -> Self {
        state.watching.store(true, Ordering::Release);
        Watch { state, next }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.state.watching.store(false, Ordering::Release);
    }
}

impl Instrumentation for Watch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { .. } => {
                self.state.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                // Saturating: a finish whose start we did not see (the watch
                // was installed mid-query) must not wrap the counter.
                let _ =
                    self.state
                        .in_flight
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                if error.is_some_and(connection_lost) {
                    self.state.lost.store(true, Ordering::Release);
                }
            }
            InstrumentationEvent::BeginTransaction { .. }
            | InstrumentationEvent::CommitTransaction { .. }
            | InstrumentationEvent::RollbackTransaction { .. } => {
                self.state.transaction.store(true, Ordering::Release);
            }
            _ => {}
        }
        if let Some(next) = &mut self.next {
            next.on_connection_event(event);
        }
    }
}
