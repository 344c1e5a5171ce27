//! The state every handle and guard shares: the permits that bound the
//! pool's size and queue its waiters fairly, the idle connections, and the
//! accounting that keeps `size == idle + in_use + being_created`.
//!
//! # Implementation details
//!
//! A tokio `Semaphore` with `max_size` permits is the size limit and the
//! wait queue. It is FIFO-fair, and a released permit goes straight to the
//! oldest waiter, so a task that returns a connection and asks again at once
//! cannot overtake the queue (bb8's starvation). Every connection that is in
//! use or being created is covered by a permit; idle connections are not.
//! A checkout takes a permit first, then an idle connection, and creates
//! one only when none is idle — so open connections never exceed
//! `max_size`. A connection goes back to idle *before* its permit is
//! released, so the waiter that receives the permit finds it there.
//!
//! Counts live under the same short lock as the idle queue, so a status
//! read is one consistent snapshot.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::config::{Config, QueueMode};
use crate::conn::ConnMeta;
use crate::events::{Event, Listener};
use crate::manager::Manager;
use crate::metrics::{CloseReason, Recorder};

pub(crate) struct Idle<C> {
    pub conn: C,
    pub meta: Arc<ConnMeta>,
}

pub(crate) struct State<C> {
    pub idle: VecDeque<Idle<C>>,
    pub in_use: usize,
    pub creating: usize,
    /// Every open connection, idle or not, for snapshots and leak scans.
    pub live: HashMap<u64, Arc<ConnMeta>>,
}

impl<C> State<C> {
    pub(crate) fn size(&self) -> usize {
        self.idle.len() + self.in_use + self.creating
    }
}

pub(crate) struct Shared<M: Manager> {
    pub manager: M,
    pub config: Config,
    pub permits: Semaphore,
    pub state: Mutex<State<M::Connection>>,
    pub recorder: Recorder,
    pub listeners: Vec<Listener>,
    pub epoch: Instant,
    pub next_id: AtomicU64,
    pub waiting: AtomicUsize,
    pub closed: AtomicBool,
    pub runtime: Handle,
    pub last_error: Mutex<Option<String>>,
    pub breaker: Breaker,
    /// Serializes connection attempts while the breaker is not healthy.
    pub connect_gate: Semaphore,
}

impl<M: Manager> Shared<M> {
    pub(crate) fn new(
        manager: M,
        config: Config,
        listeners: Vec<Listener>,
        runtime: Handle,
    ) -> Self {
        let config_breaker = config.breaker.clone();
        Shared {
            manager,
            permits: Semaphore::new(config.max_size as usize),
            state: Mutex::new(State {
                idle: VecDeque::with_capacity(config.max_size as usize),
                in_use: 0,
                creating: 0,
                live: HashMap::new(),
            }),
            config,
            recorder: Recorder::new(),
            listeners,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            waiting: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            runtime,
            last_error: Mutex::new(None),
            breaker: Breaker::new(config_breaker),
            connect_gate: Semaphore::new(1),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if !self.listeners.is_empty() {
            let event = event();
            for listener in &self.listeners {
                listener(&event);
            }
        }
    }

    pub(crate) fn set_last_error(&self, error: String) {
        *self.last_error.lock() = Some(error);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Takes an idle connection (and counts it in use), or reserves the
    /// right to create one (and counts it as being created). The caller
    /// holds a permit, so there is always room for one or the other.
    pub(crate) fn take_idle_or_reserve(&self) -> Option<Idle<M::Connection>> {
        let mut state = self.state.lock();
        let idle = match self.config.queue_mode {
            QueueMode::Lifo => state.idle.pop_back(),
            QueueMode::Fifo => state.idle.pop_front(),
        };
        if idle.is_some() {
            state.in_use += 1;
        } else {
            state.creating += 1;
        }
        idle
    }

    /// Takes the idle connection with this id, if it is still idle.
    pub(crate) fn take_idle_by_id(&self, id: u64) -> Option<Idle<M::Connection>> {
        let mut state = self.state.lock();
        let pos = state.idle.iter().position(|i| i.meta.id == id)?;
        let idle = state.idle.remove(pos);
        if idle.is_some() {
            state.in_use += 1;
        }
        idle
    }

    /// A connection finished being created: it is now in use by the
    /// creator. Registers it and returns its metadata.
    pub(crate) fn created(&self, created_at: Instant) -> Arc<ConnMeta> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = ConnMeta::new(id, created_at, self.config.draw_lifetime(), self.epoch);
        let mut state = self.state.lock();
        state.creating -= 1;
        state.in_use += 1;
        state.live.insert(id, meta.clone());
        meta
    }

    /// A creation was abandoned or failed.
    pub(crate) fn creation_abandoned(&self) {
        self.state.lock().creating -= 1;
    }

    /// Puts an in-use connection back among the idle ones: at the back as
    /// the most recently returned, or (`least_recent`, for a background
    /// ping) at the front, keeping its place in the age order.
    pub(crate) fn put_idle(&self, conn: M::Connection, meta: Arc<ConnMeta>, least_recent: bool) {
        let mut state = self.state.lock();
        state.in_use -= 1;
        let idle = Idle { conn, meta };
        if least_recent {
            state.idle.push_front(idle);
        } else {
            state.idle.push_back(idle);
        }
    }

    /// Closes an in-use connection for `reason`.
    pub(crate) fn discard_in_use(&self, conn: M::Connection, meta: &ConnMeta, reason: CloseReason) {
        self.discard_accounting(meta, reason);
        // Dropped outside the lock: closing a connection may take a moment.
        drop(conn);
    }

    /// Forgets an in-use connection (closed or detached).
    pub(crate) fn discard_accounting(&self, meta: &ConnMeta, reason: CloseReason) {
        {
            let mut state = self.state.lock();
            state.in_use -= 1;
            state.live.remove(&meta.id);
        }
        self.closed_one(meta.id, reason);
    }

    pub(crate) fn closed_one(&self, id: u64, reason: CloseReason) {
        self.recorder.counters.closed(reason);
        tracing::debug!(target: "tidepool::pool", id, ?reason, "connection closed");
        self.emit(|| Event::Closed { id, reason });
    }

    pub(crate) fn release_permit(&self) {
        self.permits.add_permits(1);
    }

    /// Closes every idle connection; returns how many.
    pub(crate) fn drain_idle(&self, reason: CloseReason) -> usize {
        let drained: Vec<Idle<M::Connection>> = {
            let mut state = self.state.lock();
            let drained: Vec<_> = state.idle.drain(..).collect();
            for idle in &drained {
                state.live.remove(&idle.meta.id);
            }
            drained
        };
        let n = drained.len();
        for idle in drained {
            self.closed_one(idle.meta.id, reason);
        }
        n
    }
}

/// A permit taken from the pool's semaphore and not yet attached to a
/// guard. Released on drop, so a cancelled acquire gives it back.
pub(crate) struct Permit<'a, M: Manager>(pub &'a Shared<M>);

impl<M: Manager> Permit<'_, M> {
    /// Hands responsibility for the permit to a guard.
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl<M: Manager> Drop for Permit<'_, M> {
    fn drop(&mut self) {
        self.0.release_permit();
    }
}

/// Counts a task as waiting while it exists.
pub(crate) struct Waiting<'a>(pub &'a AtomicUsize);

impl<'a> Waiting<'a> {
    pub(crate) fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A reservation to create a connection; undone on drop unless the
/// connection was registered.
pub(crate) struct Creating<'a, M: Manager> {
    shared: &'a Shared<M>,
    started: Instant,
}

impl<'a, M: Manager> Creating<'a, M> {
    /// Reserves; the caller has already counted it in `state.creating`.
    pub(crate) fn new(shared: &'a Shared<M>) -> Self {
        Creating {
            shared,
            started: Instant::now(),
        }
    }

    pub(crate) fn finish(self, created_at: Instant) -> Arc<ConnMeta> {
        let meta = self.shared.created(created_at);
        let took = created_at.saturating_duration_since(self.started);
        let id = meta.id;
        self.shared.emit(|| Event::Created { id, took });
        std::mem::forget(self);
        meta
    }
}

impl<M: Manager> Drop for Creating<'_, M> {
    fn drop(&mut self) {
        self.shared.creation_abandoned();
    }
}
