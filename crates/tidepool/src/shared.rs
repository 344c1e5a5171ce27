//! The state every handle and guard shares: the idle connections, the
//! wait list, and the accounting that keeps
//! `size == idle + in_use + being_created <= max_size`.
//!
//! # Implementation details
//!
//! One short lock guards the idle queue, the counts and the wait list, so a
//! status read is one consistent snapshot and every hand-off is atomic.
//! A checkout takes an idle connection, or room to open one when the pool
//! is below `max_size`, or joins the FIFO wait list (see `waiters`). Only
//! when nobody waits may a caller take an idle connection directly, so a
//! task that returns a connection and asks again at once cannot overtake
//! the queue (bb8's starvation). Room is taken even when others wait: the
//! connection is opened in a task of its own for the queue (see `create`)
//! and the caller queues behind the others. A returned or newly opened
//! connection goes to the oldest waiter before it ever reaches the idle
//! queue, and the room a closed connection leaves goes to the oldest waiter
//! as the right to open one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::sync::Mutex;
use tokio::runtime::Handle;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::config::{Config, QueueMode};
use crate::conn::ConnMeta;
use crate::events::{Event, Listener};
use crate::manager::Manager;
use crate::metrics::{CloseReason, Recorder};
use crate::waiters::{Grant, Slot, Wakeups};

pub(crate) struct Idle<C> {
    /// Boxed so that the hops between the idle queue, a waiter's slot and a
    /// guard move a pointer, not the whole connection (a tokio-postgres
    /// client with its statement cache is several hundred bytes, and those
    /// copies were a measurable part of a checkout cycle).
    pub conn: Box<C>,
    pub meta: Arc<ConnMeta>,
    /// Just opened and handed straight to a waiter: the connect itself
    /// proved it alive, so it needs no validation.
    pub fresh: bool,
}

pub(crate) struct State<C> {
    pub idle: VecDeque<Idle<C>>,
    pub in_use: usize,
    pub creating: usize,
    /// Every open connection, idle or not, for snapshots and leak scans.
    pub live: HashMap<u64, Arc<ConnMeta>>,
    /// Callers waiting, oldest first (cancelled ones linger as tombstones).
    pub waiters: VecDeque<Arc<Slot<C>>>,
    /// Callers still waiting (tombstones excluded).
    pub waiting: usize,
    /// The floor and the hard cap: the configured values until
    /// `Pool::resize` moves them.
    pub min_size: usize,
    pub max_size: usize,
    /// Connections kept open and ready (`scaling`); the reaper never
    /// closes below it. `min_size <= warm_target <= max_size`.
    pub warm_target: usize,
    /// Connections that may be out at once (`scaling::limit`); `max_size`
    /// unless the adaptive concurrency limit is on.
    pub limit: usize,
    /// The server's own cap, when it has refused us for lack of room.
    pub ceiling: crate::ceiling::Ceiling,
}

impl<C> State<C> {
    pub(crate) fn size(&self) -> usize {
        self.idle.len() + self.in_use + self.creating
    }

    /// How many connections the pool may have open now: `max_size`, or
    /// less while the server says it is full.
    pub(crate) fn room(&self) -> usize {
        self.ceiling.limit(self.max_size)
    }

    /// Whether one more connection may be opened for a caller now: there
    /// is room, and the connections out (or being opened for someone) are
    /// under the concurrency limit.
    pub(crate) fn may_open(&self) -> bool {
        self.size() < self.room() && self.in_use + self.creating < self.limit
    }
}

/// What a checkout got at once.
pub(crate) enum Checkout<C> {
    Now(Grant<C>),
    Wait(Arc<Slot<C>>),
    Closed,
}

pub(crate) struct Shared<M: Manager> {
    pub manager: M,
    pub config: Config,
    pub state: Mutex<State<M::Connection>>,
    pub recorder: Recorder,
    pub listeners: Vec<Listener>,
    pub epoch: Instant,
    pub next_id: AtomicU64,
    pub closed: AtomicBool,
    /// Bumped by `Pool::soft_evict`: connections whose creation began under
    /// an older generation are closed instead of reused.
    pub generation: AtomicU64,
    pub runtime: Handle,
    pub last_error: Mutex<Option<String>>,
    pub breaker: Breaker,
    /// Serializes connection attempts while the breaker is not healthy.
    pub connect_gate: Arc<Semaphore>,
    /// Wakes the deadline sweeper when a waiter joins an empty queue.
    pub arrivals: Arc<Notify>,
    /// Whether the sweeper and the maintenance task are running (see
    /// `background`).
    pub sweeper_alive: crate::background::Liveness,
    pub maintenance_alive: crate::background::Liveness,
    /// The scaling tick's memory (`scaling::apply`).
    pub scaling: parking_lot::Mutex<crate::scaling::apply::ScalingState>,
    /// Knobs adaptive configuration may move (`scaling::adaptive`).
    pub tuned: crate::scaling::adaptive::Tuned,
    /// Per-shape query statistics (`stats`).
    pub queries: crate::stats::QueryTable,
    /// Runs on every new connection before it is used (`Builder::after_connect`).
    pub after_connect: Option<AfterConnect<M>>,
}

/// A hook run on each new connection: session settings, `SET ROLE`,
/// prepared statements every borrower expects.
pub(crate) type AfterConnect<M> = Arc<
    dyn for<'c> Fn(
            &'c mut <M as Manager>::Connection,
        ) -> crate::BoxFuture<'c, Result<(), <M as Manager>::Error>>
        + Send
        + Sync,
>;

impl<M: Manager> Shared<M> {
    pub(crate) fn new(
        manager: M,
        config: Config,
        listeners: Vec<Listener>,
        runtime: Handle,
    ) -> Self {
        let config_breaker = config.breaker.clone();
        let scaling = crate::scaling::apply::ScalingState::new(&config);
        let limit = scaling.initial_limit(&config);
        let min_size = config.min_size as usize;
        Shared {
            manager,
            state: Mutex::new(State {
                idle: VecDeque::with_capacity(config.max_size as usize),
                in_use: 0,
                creating: 0,
                live: HashMap::new(),
                waiters: VecDeque::new(),
                waiting: 0,
                min_size,
                max_size: config.max_size as usize,
                // Under `fixed` the floor is min_size, as it always was:
                // initial_size is a build-time warm-up, not a target. A
                // scaling strategy starts from it and moves it.
                warm_target: if config.scaling.autoscale || config.scaling.predictive {
                    min_size.max(config.initial_size as usize)
                } else {
                    min_size
                },
                limit,
                ceiling: Default::default(),
            }),
            tuned: crate::scaling::adaptive::Tuned::new(&config),
            scaling: parking_lot::Mutex::new(scaling),
            config,
            recorder: Recorder::new(),
            listeners,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            runtime,
            last_error: Mutex::new(None),
            breaker: Breaker::new(config_breaker),
            connect_gate: Arc::new(Semaphore::new(1)),
            arrivals: Arc::new(Notify::new()),
            sweeper_alive: Default::default(),
            maintenance_alive: Default::default(),
            queries: crate::stats::QueryTable::new(),
            after_connect: None,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether `Pool::soft_evict` was called after this connection's
    /// creation began.
    pub(crate) fn is_evicted(&self, meta: &ConnMeta) -> bool {
        meta.generation < self.generation.load(Ordering::Acquire)
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

    pub(crate) fn pop_idle(&self, state: &mut State<M::Connection>) -> Option<Idle<M::Connection>> {
        match self.config.queue_mode {
            QueueMode::Lifo => state.idle.pop_back(),
            QueueMode::Fifo => state.idle.pop_front(),
        }
    }

    /// The first step of a checkout: an idle connection, room to open one,
    /// or a place in the wait list with this deadline.
    pub(crate) fn checkout(
        &self,
        deadline: Instant,
        statement: Option<u64>,
    ) -> Checkout<M::Connection> {
        let mut state = self.state.lock();
        if self.is_closed() {
            return Checkout::Closed;
        }
        if !state.has_waiters() && state.in_use < state.limit {
            let idle = match statement {
                Some(key) if self.config.statement_affinity => self.pop_idle_for(&mut state, key),
                _ => self.pop_idle(&mut state),
            };
            if let Some(idle) = idle {
                state.in_use += 1;
                return Checkout::Now(Grant::Conn(idle));
            }
        }
        // Room is taken even past waiters: the connection is opened for the
        // queue (see `create`) and the caller queues behind them.
        if state.may_open()
            || (state.size() < state.max_size
                && state.in_use + state.creating < state.limit
                && state.ceiling.take_try(Instant::now()))
        {
            state.creating += 1;
            return Checkout::Now(Grant::Create);
        }
        let (slot, first) = push_waiter(&mut state, deadline);
        drop(state);
        if first {
            self.arrivals.notify_one();
        }
        Checkout::Wait(slot)
    }

    /// Queues a caller that is having a connection opened for it: whatever
    /// is ready first — that connection, or one returned meanwhile — goes
    /// to the oldest waiter.
    pub(crate) fn enqueue(&self, deadline: Instant) -> Option<Arc<Slot<M::Connection>>> {
        let mut state = self.state.lock();
        if self.is_closed() {
            return None;
        }
        let (slot, first) = push_waiter(&mut state, deadline);
        drop(state);
        if first {
            self.arrivals.notify_one();
        }
        Some(slot)
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.state.lock().has_waiters()
    }

    /// After discarding a connection it held, a checkout takes another idle
    /// one or the room to open one: the room the discard freed is its own.
    pub(crate) fn retake(&self, state: &mut State<M::Connection>) -> Grant<M::Connection> {
        if let Some(idle) = self.pop_idle(state) {
            state.in_use += 1;
            Grant::Conn(idle)
        } else {
            state.creating += 1;
            Grant::Create
        }
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

    /// Reserves room to open a connection for the maintenance task, if the
    /// pool is below `target` (and `max_size`) and nobody waits.
    pub(crate) fn reserve_for_top_up(&self, target: usize) -> bool {
        let mut state = self.state.lock();
        if state.has_waiters() || state.size() >= target.min(state.room()) {
            return false;
        }
        state.creating += 1;
        true
    }

    /// A connection finished being created: it is now in use by the
    /// creator. Registers it and returns its metadata.
    pub(crate) fn created(&self, created_at: Instant, generation: u64) -> Arc<ConnMeta> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let meta = ConnMeta::new(
            id,
            created_at,
            self.config.draw_lifetime(),
            self.epoch,
            generation,
        );
        let mut state = self.state.lock();
        state.creating -= 1;
        state.in_use += 1;
        state.live.insert(id, meta.clone());
        let open = state.size() - state.creating;
        let max_size = state.max_size;
        if state.ceiling.known().is_some() && state.ceiling.opened(open, max_size) {
            tracing::info!(target: "tidepool::pool", target_db = %self.manager.describe(), open, "the server has room again: no connection ceiling");
        }
        meta
    }

    /// A creation was abandoned or failed: its room goes to a waiter.
    pub(crate) fn creation_abandoned(&self) {
        let mut wakeups = Wakeups::default();
        {
            let mut state = self.state.lock();
            state.creating -= 1;
            state.ceiling.attempt_over();
            state.room_freed(&mut wakeups);
        }
        wakeups.wake();
    }

    /// Returns an in-use connection: to the oldest waiter, else to the idle
    /// queue — at the back as the most recently returned, or
    /// (`least_recent`, after a background ping) at the front.
    pub(crate) fn release(
        &self,
        conn: Box<M::Connection>,
        meta: Arc<ConnMeta>,
        least_recent: bool,
    ) {
        self.release_idle(
            Idle {
                conn,
                meta,
                fresh: false,
            },
            least_recent,
        );
    }

    /// Hands a connection just opened to the oldest waiter, else to the
    /// idle queue.
    pub(crate) fn release_new(&self, conn: Box<M::Connection>, meta: Arc<ConnMeta>) {
        self.release_idle(
            Idle {
                conn,
                meta,
                fresh: true,
            },
            false,
        );
    }

    fn release_idle(&self, idle: Idle<M::Connection>, least_recent: bool) {
        let mut wakeups = Wakeups::default();
        let surplus = {
            let mut state = self.state.lock();
            if state.size() > state.max_size {
                // The pool was resized below its size: close on return.
                state.in_use -= 1;
                state.live.remove(&idle.meta.id);
                Some(idle)
            } else {
                self.release_locked(&mut state, idle, least_recent, &mut wakeups);
                None
            }
        };
        wakeups.wake();
        if let Some(idle) = surplus {
            self.closed_one(idle.meta.id, CloseReason::Resized);
        }
    }

    pub(crate) fn release_locked(
        &self,
        state: &mut State<M::Connection>,
        idle: Idle<M::Connection>,
        least_recent: bool,
        wakeups: &mut Wakeups,
    ) {
        // Past the concurrency limit (it came down while this was out) the
        // connection rests instead of going straight back out.
        let rest = state.in_use > state.limit;
        let unclaimed = if rest {
            Some(Grant::Conn(idle))
        } else {
            state.hand_to_waiter(Grant::Conn(idle), wakeups)
        };
        if let Some(Grant::Conn(mut idle)) = unclaimed {
            idle.fresh = false;
            state.in_use -= 1;
            if least_recent {
                state.idle.push_front(idle);
            } else {
                state.idle.push_back(idle);
            }
        }
    }

    /// Closes an in-use connection for `reason`; its room goes to a waiter.
    pub(crate) fn discard_in_use(
        &self,
        conn: Box<M::Connection>,
        meta: &ConnMeta,
        reason: CloseReason,
    ) {
        self.discard_accounting(meta, reason);
        // Dropped outside the lock: closing a connection may take a moment.
        drop(conn);
    }

    /// Forgets an in-use connection (closed or detached).
    pub(crate) fn discard_accounting(&self, meta: &ConnMeta, reason: CloseReason) {
        let mut wakeups = Wakeups::default();
        {
            let mut state = self.state.lock();
            state.in_use -= 1;
            state.live.remove(&meta.id);
            state.room_freed(&mut wakeups);
        }
        wakeups.wake();
        self.closed_one(meta.id, reason);
    }

    /// Closes a connection a checkout held and gives the checkout the next
    /// idle connection or room to open one instead.
    pub(crate) fn discard_and_retake(
        &self,
        conn: Box<M::Connection>,
        meta: &ConnMeta,
        reason: CloseReason,
    ) -> Grant<M::Connection> {
        let grant = {
            let mut state = self.state.lock();
            state.in_use -= 1;
            state.live.remove(&meta.id);
            self.retake(&mut state)
        };
        self.closed_one(meta.id, reason);
        drop(conn);
        grant
    }

    pub(crate) fn closed_one(&self, id: u64, reason: CloseReason) {
        self.recorder.counters.closed(reason);
        tracing::debug!(target: "tidepool::pool", id, ?reason, "connection closed");
        self.emit(|| Event::Closed { id, reason });
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

/// Adds a waiter; says whether the queue was empty (the sweeper must be
/// woken).
fn push_waiter<C>(state: &mut State<C>, deadline: Instant) -> (Arc<Slot<C>>, bool) {
    let slot = Slot::new(deadline);
    let first = state.waiters.is_empty();
    state.waiters.push_back(slot.clone());
    state.waiting += 1;
    (slot, first)
}

/// A reservation to create a connection (counted in `creating`), owned by
/// whoever opens it (a task of `create`, or the maintenance top-up);
/// undone on drop — the room passing to a waiter — unless the connection
/// was registered.
pub(crate) struct Creating<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
    started: Instant,
    /// The eviction generation when the attempt began: a connection opened
    /// to a host chosen before a `soft_evict` is evicted too.
    generation: u64,
    armed: bool,
}

impl<M: Manager> Creating<M> {
    /// Takes over a reservation already counted in `state.creating`.
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Self {
        let generation = shared.generation.load(Ordering::Acquire);
        Creating {
            shared,
            started: Instant::now(),
            generation,
            armed: true,
        }
    }

    pub(crate) fn finish(mut self, created_at: Instant) -> Arc<ConnMeta> {
        self.armed = false;
        let meta = self.shared.created(created_at, self.generation);
        let took = created_at.saturating_duration_since(self.started);
        let id = meta.id;
        self.shared.emit(|| Event::Created { id, took });
        meta
    }
}

impl<M: Manager> Drop for Creating<M> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.creation_abandoned();
        }
    }
}
