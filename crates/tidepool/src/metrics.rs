//! What the pool counts, and the snapshot a caller reads. Counting is
//! relaxed atomic adds on the hot path; percentiles and per-connection
//! views are assembled only when [`Pool::metrics`](crate::Pool::metrics) is
//! called.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::histogram::{Histogram, HistogramSnapshot};

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle past `idle_timeout` with the pool above `min_size`.
    IdleTimeout,
    /// Past its drawn `max_lifetime`.
    MaxLifetime,
    /// Marked broken, reported broken by the manager, or returned during a
    /// panic.
    Broken,
    /// Failed a validation (on borrow or in the background).
    FailedValidation,
    /// Could not be reset on return.
    FailedReset,
    /// The pool was closed.
    PoolClosed,
    /// Taken out of the pool by its holder (`Pooled::detach`).
    Detached,
    /// Above the warm target and idle past `overflow_idle_timeout`.
    Overflow,
    /// Past a new, smaller `max_size` set by `Pool::resize`.
    Resized,
    /// Opened before a [`Pool::soft_evict`](crate::Pool::soft_evict): closed
    /// when idle at that call, or on its return or checkout afterwards.
    Evicted,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub waited: AtomicU64,
    pub timed_out: AtomicU64,
    pub created: AtomicU64,
    pub create_failed: AtomicU64,
    pub refused_at_capacity: AtomicU64,
    pub affinity_hits: AtomicU64,
    pub affinity_misses: AtomicU64,
    pub refused_circuit_open: AtomicU64,
    pub failed_at_once: AtomicU64,
    pub validations_failed: AtomicU64,
    pub validations_timed_out: AtomicU64,
    /// Failures per kind, in `FailureKind::ALL` order: connection attempts
    /// and outcomes reported with `Pool::report_failure`.
    pub failures: [AtomicU64; 5],
    pub closed_overflow: AtomicU64,
    pub closed_resized: AtomicU64,
    pub closed_evicted: AtomicU64,
    pub scale_ups: AtomicU64,
    pub scale_downs: AtomicU64,
    pub tunings: AtomicU64,
    pub closed_idle: AtomicU64,
    pub closed_lifetime: AtomicU64,
    pub closed_broken: AtomicU64,
    pub closed_validation: AtomicU64,
    pub closed_reset: AtomicU64,
    pub closed_pool: AtomicU64,
    pub detached: AtomicU64,
    pub validations: AtomicU64,
    pub resets: AtomicU64,
    pub leaks_detected: AtomicU64,
    pub slow_acquires: AtomicU64,
    pub held: AtomicU64,
}

impl Counters {
    pub(crate) fn failed(&self, kind: crate::FailureKind) {
        let i = crate::FailureKind::ALL
            .iter()
            .position(|&k| k == kind)
            .unwrap_or(0);
        self.failures[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let c = match reason {
            CloseReason::IdleTimeout => &self.closed_idle,
            CloseReason::MaxLifetime => &self.closed_lifetime,
            CloseReason::Broken => &self.closed_broken,
            CloseReason::FailedValidation => &self.closed_validation,
            CloseReason::FailedReset => &self.closed_reset,
            CloseReason::PoolClosed => &self.closed_pool,
            CloseReason::Detached => &self.detached,
            CloseReason::Overflow => &self.closed_overflow,
            CloseReason::Resized => &self.closed_resized,
            CloseReason::Evicted => &self.closed_evicted,
        };
        c.fetch_add(1, Relaxed);
    }
}

pub(crate) struct Recorder {
    pub counters: Counters,
    pub acquire_wait: Histogram,
    pub hold_time: Histogram,
    pub create_time: Histogram,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            counters: Counters::default(),
            acquire_wait: Histogram::new(),
            hold_time: Histogram::new(),
            create_time: Histogram::new(),
        }
    }

    pub(crate) fn snapshot(
        &self,
        connections: Vec<ConnectionSnapshot>,
        breaker: crate::BreakerSnapshot,
    ) -> Metrics {
        let c = &self.counters;
        let acquire_wait = self.acquire_wait.snapshot();
        let r = |a: &AtomicU64| a.load(Relaxed);
        Metrics {
            checkouts: acquire_wait.count,
            checkouts_waited: r(&c.waited),
            acquires_timed_out: r(&c.timed_out),
            connections_created: r(&c.created),
            connection_attempts_failed: r(&c.create_failed),
            connection_attempts_refused_at_capacity: r(&c.refused_at_capacity),
            affinity_hits: r(&c.affinity_hits),
            affinity_misses: r(&c.affinity_misses),
            acquires_refused_circuit_open: r(&c.refused_circuit_open),
            acquires_failed_at_once: r(&c.failed_at_once),
            checkins: self.hold_time.snapshot().count,
            validations_failed: r(&c.validations_failed),
            validations_timed_out: r(&c.validations_timed_out),
            failures_by_kind: crate::FailureKind::ALL
                .iter()
                .zip(&c.failures)
                .map(|(&k, n)| (k, r(n)))
                .collect(),
            connections_closed_overflow: r(&c.closed_overflow),
            connections_closed_resized: r(&c.closed_resized),
            connections_closed_evicted: r(&c.closed_evicted),
            scale_ups: r(&c.scale_ups),
            scale_downs: r(&c.scale_downs),
            adaptive_tunings: r(&c.tunings),
            connections_closed_idle_timeout: r(&c.closed_idle),
            connections_closed_max_lifetime: r(&c.closed_lifetime),
            connections_closed_broken: r(&c.closed_broken),
            connections_closed_failed_validation: r(&c.closed_validation),
            connections_closed_failed_reset: r(&c.closed_reset),
            connections_closed_pool_closed: r(&c.closed_pool),
            connections_detached: r(&c.detached),
            validations: r(&c.validations),
            resets: r(&c.resets),
            leaks_detected: r(&c.leaks_detected),
            slow_acquires: r(&c.slow_acquires),
            acquires_held_while_open: r(&c.held),
            acquire_wait,
            hold_time: self.hold_time.snapshot(),
            create_time: self.create_time.snapshot(),
            connections,
            breaker: Some(breaker),
        }
    }
}

/// Everything the pool has counted since it was built, read by
/// [`Pool::metrics`](crate::Pool::metrics).
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Metrics {
    /// Connections handed out.
    pub checkouts: u64,
    /// Checkouts that had to wait for a connection to be returned.
    pub checkouts_waited: u64,
    /// Acquires that gave up at `acquire_timeout`.
    pub acquires_timed_out: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Connection attempts that failed.
    pub connection_attempts_failed: u64,
    /// Connection attempts the server refused for lack of room (see
    /// [`Manager::is_at_capacity`](crate::Manager::is_at_capacity)); not
    /// counted as failures.
    pub connection_attempts_refused_at_capacity: u64,
    /// Checkouts for a statement ([`Pool::get_for`](crate::Pool::get_for))
    /// that found an idle connection which had prepared it.
    pub affinity_hits: u64,
    /// Such checkouts that found idle connections, none of which had.
    pub affinity_misses: u64,
    /// Acquires refused at once because the circuit was open.
    pub acquires_refused_circuit_open: u64,
    /// Acquires failed at once because opening a connection failed with an
    /// error retrying cannot fix (wrong password, unknown database).
    pub acquires_failed_at_once: u64,
    /// Connections returned to the pool.
    pub checkins: u64,
    /// Validations (on borrow or in the background) the connection failed.
    pub validations_failed: u64,
    /// Validations that did not answer within `validation_timeout`.
    pub validations_timed_out: u64,
    /// Failures per [`FailureKind`](crate::FailureKind), in
    /// `FailureKind::ALL` order: failed connection attempts (timeouts as
    /// `Timeout`) and outcomes reported with
    /// [`Pool::report_failure`](crate::Pool::report_failure).
    pub failures_by_kind: Vec<(crate::FailureKind, u64)>,
    /// Overflow connections (above the warm target) closed after
    /// `overflow_idle_timeout`.
    pub connections_closed_overflow: u64,
    /// Connections closed because `Pool::resize` lowered `max_size`.
    pub connections_closed_resized: u64,
    /// Connections closed because [`Pool::soft_evict`](crate::Pool::soft_evict)
    /// retired them (idle at the call, or returned or checked out after it).
    pub connections_closed_evicted: u64,
    /// Times the warm target or the concurrency limit went up.
    pub scale_ups: u64,
    /// Times the warm target or the concurrency limit went down.
    pub scale_downs: u64,
    /// Knobs moved by adaptive configuration.
    pub adaptive_tunings: u64,
    /// Connections closed for idling past `idle_timeout`.
    pub connections_closed_idle_timeout: u64,
    /// Connections retired past their lifetime.
    pub connections_closed_max_lifetime: u64,
    /// Connections discarded as broken (or returned during a panic).
    pub connections_closed_broken: u64,
    /// Connections discarded after failing validation.
    pub connections_closed_failed_validation: u64,
    /// Connections discarded because cleaning them on return failed.
    pub connections_closed_failed_reset: u64,
    /// Connections closed by closing the pool.
    pub connections_closed_pool_closed: u64,
    /// Connections taken out of the pool by their holder.
    pub connections_detached: u64,
    /// Validations run (on borrow and in the background).
    pub validations: u64,
    /// Returned connections that needed cleaning.
    pub resets: u64,
    /// Checkouts reported as possible leaks.
    pub leaks_detected: u64,
    /// Acquires slower than `slow_acquire_threshold`.
    pub slow_acquires: u64,
    /// Acquires that found the circuit open and waited for it to close
    /// (`BreakerConfig::hold_while_open`).
    pub acquires_held_while_open: u64,
    /// Time from `get()` to having a connection.
    pub acquire_wait: HistogramSnapshot,
    /// Time a connection was held by its user.
    pub hold_time: HistogramSnapshot,
    /// Time to open a connection.
    pub create_time: HistogramSnapshot,
    /// One entry per open connection.
    pub connections: Vec<ConnectionSnapshot>,
    /// The circuit breaker's state and counts.
    pub breaker: Option<crate::BreakerSnapshot>,
}

/// One open connection, as seen when the metrics were read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ConnectionSnapshot {
    /// The connection's id, unique within the pool.
    pub id: u64,
    /// Time since it was opened.
    pub age: Duration,
    /// Time since it was last returned (zero while in use).
    pub idle_for: Duration,
    /// Whether it is checked out right now.
    pub in_use: bool,
    /// How many times it was handed out.
    pub times_used: u64,
    /// Queries run on it through the pool's query face
    /// ([`Pool::execute_query`](crate::Pool::execute_query)).
    pub query_count: u64,
    /// Their mean time (zero before the first).
    pub avg_query_time: Duration,
    /// Time since it was last validated, if ever.
    pub last_validated: Option<Duration>,
    /// How long its current holder has had it (`None` when idle, or when
    /// leak detection is off and checkout times are not kept).
    pub held_for: Option<Duration>,
}
