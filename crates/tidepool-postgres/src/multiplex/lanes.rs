//! The connections a multiplexer holds ("lanes"): each is a guard checked
//! out of the pool, shared by the reads in flight on it. This file owns
//! picking a lane for a read, opening one when demand needs it, and giving
//! lanes back to the pool when idle or dead. The one rule that keeps the
//! pool's accounting whole: a lane is a plain [`Pooled`] guard, so it goes
//! back through the guard's own drop — cleaned if a read was abandoned on
//! it, discarded if its connection died — when the last read holding it
//! ends, and never otherwise. Every step that can be cancelled (an inline
//! checkout, a wait) holds its count in a drop guard.
//!
//! Reads are admitted in arrival order by a FIFO semaphore holding
//! `connections × depth` permits, so a read that just finished cannot take
//! the room a waiting read was promised (without it, tasks that loop
//! starved others for seconds at 200 tasks). A read holding a permit
//! always finds a lane with room once every lane is open: the permits out
//! never exceed the room of `connections` lanes.

use std::sync::atomic::{
    AtomicBool, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tidepool::Pooled;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::{MultiplexConfig, MultiplexError};
use crate::{PgManager, PgPool};

/// One shared connection.
pub(super) struct Lane {
    pub(super) conn: Pooled<PgManager>,
    pub(super) id: u64,
    in_flight: AtomicUsize,
    /// Claimed since the reaper last looked.
    used: AtomicBool,
    /// Its connection failed: no new reads, and discarded on return.
    dead: AtomicBool,
    taken: Instant,
}

impl Drop for Lane {
    fn drop(&mut self) {
        if self.dead.load(Relaxed) {
            Pooled::mark_broken(&mut self.conn);
        }
    }
}

/// A read's hold on a lane and on an admission permit: counted in flight
/// until dropped (completed or cancelled), which hands the permit to the
/// next read in line.
pub(super) struct Claim {
    pub(super) lane: Arc<Lane>,
    set: Arc<LaneSet>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Room on the lane first, then the permit: a read admitted with it
        // finds the room.
        self.lane.in_flight.fetch_sub(1, SeqCst);
        self.set.admission.add_permits(1);
    }
}

/// An admission permit not yet tied to a lane; given back if the read is
/// cancelled before it gets one.
struct Admitted<'a>(&'a LaneSet);

impl Admitted<'_> {
    /// The permit now belongs to `lane`'s claim.
    fn into_claim(self, set: &Arc<LaneSet>, lane: Arc<Lane>) -> Claim {
        std::mem::forget(self);
        Claim {
            lane,
            set: set.clone(),
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.admission.add_permits(1);
    }
}

/// Counters, read by `status`.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) lanes_opened: AtomicU64,
    pub(super) lanes_returned_idle: AtomicU64,
    pub(super) lanes_lost: AtomicU64,
    pub(super) refused: AtomicU64,
}

struct State {
    lanes: Vec<Arc<Lane>>,
    /// Checkouts under way.
    pending: usize,
    reaper_running: bool,
}

/// The lanes and what waits on them.
pub(super) struct LaneSet {
    pub(super) pool: PgPool,
    pub(super) config: MultiplexConfig,
    state: Mutex<State>,
    admission: Semaphore,
    /// Lanes added or lost.
    changed: Notify,
    waiting: AtomicUsize,
    pub(super) counters: Counters,
}

/// What a lane looks like now (see `Multiplexer::status`).
pub(super) struct LaneView {
    pub(super) id: u64,
    pub(super) in_flight: usize,
}

enum Step {
    Got(Arc<Lane>),
    Grow,
    Wait,
}

impl LaneSet {
    pub(super) fn new(pool: PgPool, config: MultiplexConfig) -> Self {
        LaneSet {
            pool,
            config,
            state: Mutex::new(State {
                lanes: Vec::new(),
                pending: 0,
                reaper_running: false,
            }),
            admission: Semaphore::new(
                config
                    .connections
                    .saturating_mul(config.depth)
                    .min(Semaphore::MAX_PERMITS),
            ),
            changed: Notify::new(),
            waiting: AtomicUsize::new(0),
            counters: Counters::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update under this lock is a single push, retain or count.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn views(&self) -> (Vec<LaneView>, usize) {
        let state = self.state();
        let lanes = state
            .lanes
            .iter()
            .map(|l| LaneView {
                id: l.id,
                in_flight: l.in_flight.load(Relaxed),
            })
            .collect();
        (lanes, state.pending)
    }

    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Relaxed)
    }

    /// Admission places not held by a read.
    pub(super) fn places_free(&self) -> usize {
        self.admission.available_permits()
    }

    /// Admits the read in arrival order, then gives it a lane with room:
    /// the least busy one; a new one checked out of the pool when every
    /// lane is busy and the budget allows (in the background when a busy
    /// lane still has room, inline when none has); else it waits for a
    /// lane to open. All of it within the pool's `acquire_timeout`.
    pub(super) async fn claim(self: &Arc<Self>) -> Result<Claim, MultiplexError> {
        let started = Instant::now();
        let deadline = started + self.pool.config().acquire_timeout;
        let timeout = || MultiplexError::Timeout {
            waited: started.elapsed(),
        };
        match self.admission.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => {
                let _waiting = Waiting::new(&self.waiting);
                match tokio::time::timeout_at(deadline, self.admission.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    // The semaphore is never closed.
                    Ok(Err(_)) | Err(_) => return Err(timeout()),
                }
            }
        }
        let admitted = Admitted(self);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.step() {
                Step::Got(lane) => return Ok(admitted.into_claim(self, lane)),
                Step::Grow => {
                    let lane = self.grow_inline().await?;
                    return Ok(admitted.into_claim(self, lane));
                }
                // Every lane open is full and the rest are on their way
                // (or one was lost and is being replaced).
                Step::Wait => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(timeout());
                    }
                }
            }
        }
    }

    fn step(self: &Arc<Self>) -> Step {
        let depth = self.config.depth;
        let mut state = self.state();
        let mut best: Option<(&Arc<Lane>, usize)> = None;
        let mut broken = false;
        for lane in &state.lanes {
            if lane.conn.is_broken() {
                lane.dead.store(true, Relaxed);
                broken = true;
                continue;
            }
            let n = lane.in_flight.load(SeqCst);
            if n < depth && best.is_none_or(|(_, m)| n < m) {
                best = Some((lane, n));
                if n == 0 {
                    break;
                }
            }
        }
        let best = best.map(|(lane, n)| (lane.clone(), n));
        let removed = if broken {
            take_dead(&mut state.lanes)
        } else {
            Vec::new()
        };
        let can_grow = state.lanes.len() + state.pending < self.config.connections;
        let step = match best {
            Some((lane, n)) => {
                if n > 0 && can_grow {
                    state.pending += 1;
                    let set = self.clone();
                    tokio::spawn(async move { set.grow_background().await });
                }
                lane.in_flight.fetch_add(1, SeqCst);
                lane.used.store(true, Relaxed);
                Step::Got(lane)
            }
            None if can_grow => {
                state.pending += 1;
                Step::Grow
            }
            None => Step::Wait,
        };
        drop(state);
        self.lost(removed.len());
        drop(removed);
        step
    }

    /// Checks a connection out for this read (the reservation is already
    /// counted in `pending`).
    async fn grow_inline(self: &Arc<Self>) -> Result<Arc<Lane>, MultiplexError> {
        let reservation = Reservation { set: self };
        let conn = self.pool.get().await.map_err(MultiplexError::Pool)?;
        Ok(reservation.fulfil(conn, 1))
    }

    /// Checks a connection out ahead of demand; a failure is logged, and a
    /// waiting read tries again itself (and gets the error).
    async fn grow_background(self: Arc<Self>) {
        let reservation = Reservation { set: &self };
        match self.pool.get().await {
            Ok(conn) => drop(reservation.fulfil(conn, 0)),
            Err(e) => {
                drop(reservation);
                tracing::debug!(target: "tidepool::postgres::multiplex", error = %e, "could not check out another connection for shared reads");
                // A read waiting for this lane checks one out itself (and
                // gets the error if it fails again).
                self.changed.notify_waiters();
            }
        }
    }

    /// Takes a lane out of service after its connection failed: no new
    /// read goes to it, and it is discarded once the reads on it are done.
    pub(super) fn kill(&self, lane: &Arc<Lane>) {
        if lane.dead.swap(true, Relaxed) {
            return;
        }
        let removed = {
            let mut state = self.state();
            take_dead(&mut state.lanes)
        };
        self.lost(removed.len());
        drop(removed);
        self.changed.notify_waiters();
    }

    fn lost(&self, n: usize) {
        if n > 0 {
            self.counters.lanes_lost.fetch_add(n as u64, Relaxed);
        }
    }

    /// Takes every lane out of service now; each goes back to the pool when
    /// the reads on it are done.
    pub(super) fn release_all(&self) {
        let removed = std::mem::take(&mut self.state().lanes);
        self.counters
            .lanes_returned_idle
            .fetch_add(removed.len() as u64, Relaxed);
        drop(removed);
    }
}

fn take_dead(lanes: &mut Vec<Arc<Lane>>) -> Vec<Arc<Lane>> {
    let mut removed = Vec::new();
    lanes.retain(|l| {
        let keep = !l.dead.load(Relaxed);
        if !keep {
            removed.push(l.clone());
        }
        keep
    });
    removed
}

/// A checkout counted in `pending` until it becomes a lane, fails or is
/// cancelled.
struct Reservation<'a> {
    set: &'a Arc<LaneSet>,
}

impl Reservation<'_> {
    /// Adds the checked-out connection as a lane with `reads` (0 or 1) in
    /// flight, in the same step that ends the reservation, so `lanes +
    /// pending` never exceeds the budget; starts the reaper if it is not
    /// running and wakes every read waiting for a lane.
    fn fulfil(self, conn: Pooled<PgManager>, reads: usize) -> Arc<Lane> {
        let set = self.set.clone();
        std::mem::forget(self);
        let lane = Arc::new(Lane {
            id: Pooled::id(&conn),
            conn,
            in_flight: AtomicUsize::new(reads),
            used: AtomicBool::new(true),
            dead: AtomicBool::new(false),
            taken: Instant::now(),
        });
        let start_reaper = {
            let mut state = set.state();
            state.pending -= 1;
            state.lanes.push(lane.clone());
            !std::mem::replace(&mut state.reaper_running, true)
        };
        set.counters.lanes_opened.fetch_add(1, Relaxed);
        if start_reaper {
            tokio::spawn(reap(Arc::downgrade(&set), set.config.idle_return));
        }
        set.changed.notify_waiters();
        lane
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.set.state().pending -= 1;
    }
}

/// A read waiting for room, counted while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Every `period`, gives back the lanes no read claimed since the last
/// look (idle for between one and two periods), and the lanes held longer
/// than the pool's `max_lifetime` (so that a busy multiplexer does not keep
/// a connection past it); stops when no lane is left.
async fn reap(set: Weak<LaneSet>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(set) = set.upgrade() else { return };
        let max_hold = set.pool.config().max_lifetime;
        let removed = {
            let mut state = set.state();
            let mut removed = Vec::new();
            state.lanes.retain(|l| {
                let used = l.used.swap(false, Relaxed);
                let idle = !used && l.in_flight.load(Relaxed) == 0;
                let old = max_hold.is_some_and(|m| l.taken.elapsed() >= m);
                let keep = !idle && !old && !l.dead.load(Relaxed);
                if !keep {
                    removed.push(l.clone());
                }
                keep
            });
            if state.lanes.is_empty() && state.pending == 0 {
                state.reaper_running = false;
            }
            (removed, !state.reaper_running)
        };
        let (removed, stop) = removed;
        set.counters
            .lanes_returned_idle
            .fetch_add(removed.len() as u64, Relaxed);
        drop(removed);
        if stop {
            return;
        }
    }
}
