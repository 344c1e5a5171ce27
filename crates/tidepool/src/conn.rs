//! What the pool knows about each open connection, apart from the
//! connection itself: its id, birth and retirement time, and the atomics
//! that the checkout path updates without taking a lock. The maintenance
//! task and `Pool::metrics` read these to reap, retire, ping, report leaks
//! and describe each connection.

use std::backtrace::Backtrace;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

const NEVER: u64 = u64::MAX;

/// Where a connection was checked out, for leak reports.
pub(crate) struct CheckoutSite {
    pub location: &'static Location<'static>,
    pub backtrace: Option<Backtrace>,
}

pub(crate) struct ConnMeta {
    pub id: u64,
    pub created: Instant,
    pub retire_at: Option<Instant>,
    /// The pool's eviction generation when its creation began: older than
    /// the pool's current one means `Pool::soft_evict` retired it.
    pub generation: u64,
    uses: AtomicU64,
    /// Queries through the pool's query face, and their total time.
    queries: AtomicU64,
    query_nanos: AtomicU64,
    /// Nanoseconds since the pool's epoch; `NEVER` when never set.
    last_active: AtomicU64,
    last_validated: AtomicU64,
    checked_out_at: AtomicU64,
    in_use: AtomicBool,
    leak_reported: AtomicBool,
    site: Mutex<Option<CheckoutSite>>,
    /// The address of the location in `site`, so a connection checked out
    /// from the same place again (the common case) skips the lock.
    site_addr: AtomicUsize,
}

/// Time since the pool's epoch, in nanoseconds.
pub(crate) fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(NEVER - 1)
}

fn elapsed(epoch: Instant, stamp: u64, now: Instant) -> Option<Duration> {
    (stamp != NEVER).then(|| Duration::from_nanos(nanos_since(epoch, now).saturating_sub(stamp)))
}

impl ConnMeta {
    pub(crate) fn new(
        id: u64,
        created: Instant,
        lifetime: Option<Duration>,
        epoch: Instant,
        generation: u64,
    ) -> Arc<Self> {
        Arc::new(ConnMeta {
            id,
            created,
            retire_at: lifetime.map(|l| created + l),
            generation,
            uses: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            query_nanos: AtomicU64::new(0),
            // A new connection has just proved it works.
            last_active: AtomicU64::new(nanos_since(epoch, created)),
            last_validated: AtomicU64::new(NEVER),
            checked_out_at: AtomicU64::new(NEVER),
            in_use: AtomicBool::new(false),
            leak_reported: AtomicBool::new(false),
            site: Mutex::new(None),
            site_addr: AtomicUsize::new(0),
        })
    }

    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.retire_at.is_some_and(|at| now >= at)
    }

    /// Time since the connection last proved itself: used, returned or
    /// validated.
    pub(crate) fn quiet_for(&self, epoch: Instant, now: Instant) -> Duration {
        let a = self.last_active.load(Relaxed);
        let v = self.last_validated.load(Relaxed);
        let latest = match (a, v) {
            (NEVER, NEVER) => return Duration::MAX,
            (NEVER, x) | (x, NEVER) => x,
            (a, v) => a.max(v),
        };
        Duration::from_nanos(nanos_since(epoch, now).saturating_sub(latest))
    }

    /// Time since the connection was last returned (or created).
    pub(crate) fn idle_for(&self, epoch: Instant, now: Instant) -> Duration {
        elapsed(epoch, self.last_active.load(Relaxed), now).unwrap_or(Duration::MAX)
    }

    pub(crate) fn never_used(&self) -> bool {
        self.uses.load(Relaxed) == 0
    }

    pub(crate) fn mark_validated(&self, epoch: Instant, now: Instant) {
        self.last_validated.store(nanos_since(epoch, now), Relaxed);
    }

    pub(crate) fn mark_checked_out(
        &self,
        epoch: Instant,
        now: Instant,
        site: Option<CheckoutSite>,
    ) {
        self.uses.fetch_add(1, Relaxed);
        self.in_use.store(true, Relaxed);
        if let Some(site) = site {
            self.checked_out_at.store(nanos_since(epoch, now), Relaxed);
            if self.leak_reported.load(Relaxed) {
                self.leak_reported.store(false, Relaxed);
            }
            let addr = std::ptr::from_ref(site.location) as usize;
            if site.backtrace.is_some() || self.site_addr.load(Relaxed) != addr {
                *self.site.lock() = Some(site);
                self.site_addr.store(addr, Relaxed);
            }
        }
    }

    pub(crate) fn mark_returned(&self, epoch: Instant, now: Instant) {
        self.in_use.store(false, Relaxed);
        self.last_active.store(nanos_since(epoch, now), Relaxed);
    }

    /// If this checkout has been held past `limit` and was not reported
    /// yet, marks it reported and returns how long it has been held and
    /// where it was taken.
    pub(crate) fn take_leak(
        &self,
        epoch: Instant,
        now: Instant,
        limit: Duration,
    ) -> Option<(Duration, &'static Location<'static>, Option<String>)> {
        if !self.in_use.load(Relaxed) || self.leak_reported.load(Relaxed) {
            return None;
        }
        let held = elapsed(epoch, self.checked_out_at.load(Relaxed), now)?;
        if held < limit || self.leak_reported.swap(true, Relaxed) {
            return None;
        }
        let site = self.site.lock();
        let site = site.as_ref()?;
        Some((
            held,
            site.location,
            site.backtrace.as_ref().map(ToString::to_string),
        ))
    }

    pub(crate) fn record_query(&self, elapsed: Duration) {
        self.queries.fetch_add(1, Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.query_nanos.fetch_add(ns, Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        epoch: Instant,
        now: Instant,
    ) -> crate::metrics::ConnectionSnapshot {
        let in_use = self.in_use.load(Relaxed);
        crate::metrics::ConnectionSnapshot {
            id: self.id,
            age: now.saturating_duration_since(self.created),
            idle_for: if in_use {
                Duration::ZERO
            } else {
                self.idle_for(epoch, now)
            },
            in_use,
            times_used: self.uses.load(Relaxed),
            query_count: self.queries.load(Relaxed),
            avg_query_time: Duration::from_nanos(
                self.query_nanos
                    .load(Relaxed)
                    .checked_div(self.queries.load(Relaxed))
                    .unwrap_or(0),
            ),
            last_validated: elapsed(epoch, self.last_validated.load(Relaxed), now),
            held_for: if in_use {
                elapsed(epoch, self.checked_out_at.load(Relaxed), now)
            } else {
                None
            },
        }
    }
}
