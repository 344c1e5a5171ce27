//! The load monitor: what the pool's own counters and histograms say about
//! the last window, read on the scaling tick (nothing is recorded per
//! checkout for it). Busy connections come from Little's law — the hold
//! time recorded in the window over the window's length — or the count out
//! now, whichever is larger (a hold longer than the window has not been
//! recorded yet); callers queued likewise from the acquire-wait time.

use std::time::Duration;

use tokio::time::Instant;

use crate::histogram::Buckets;

/// The pool's load over the last scaling window, from [`Pool::load`](crate::Pool::load).
///
/// The *load factor* is demand (busy connections plus queued callers) over
/// `max_size`, capped at 1: 0 is an idle pool, 1 a pool that is using, or
/// queueing for, everything it may open. No clock-of-day or host guesses.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Load {
    /// The window these figures cover.
    pub window: Duration,
    /// Open connections at the end of the window.
    pub size: usize,
    /// Connections out at the end of the window.
    pub in_use: usize,
    /// Callers waiting at the end of the window.
    pub waiting: usize,
    /// Connections out, on average over the window.
    pub busy: f64,
    /// Callers waiting, on average over the window.
    pub queued: f64,
    /// `busy` ÷ open connections (0 when none are open).
    pub utilization: f64,
    /// `busy` ÷ `max_size`.
    pub utilization_of_max: f64,
    /// Checkouts per second.
    pub arrival_rate: f64,
    /// Acquire wait in the window: median and 99th percentile.
    pub acquire_wait_p50: Duration,
    /// See `acquire_wait_p50`.
    pub acquire_wait_p99: Duration,
    /// Hold time (checkout to return) in the window: mean and 99th
    /// percentile.
    pub hold_time_mean: Duration,
    /// See `hold_time_mean`.
    pub hold_time_p99: Duration,
    /// Connection open time in the window, 99th percentile (zero when none
    /// opened).
    pub create_time_p99: Duration,
    /// Failed connection attempts per second.
    pub create_errors_per_second: f64,
    /// Acquires that timed out, per second.
    pub timeouts_per_second: f64,
    /// Demand over `max_size`, in `[0, 1]`.
    pub load_factor: f64,
}

/// What the tick reads from the pool.
pub(crate) struct Reading {
    pub at: Instant,
    pub size: usize,
    pub in_use: usize,
    pub waiting: usize,
    pub max_size: usize,
    pub acquire_wait: Buckets,
    pub hold_time: Buckets,
    pub create_time: Buckets,
    pub create_failed: u64,
    pub timed_out: u64,
}

#[derive(Default)]
pub(crate) struct Monitor {
    last: Option<Reading>,
}

impl Monitor {
    /// The load since the previous reading (the first reading only sets
    /// the baseline and reports what it can see now).
    pub(crate) fn sample(&mut self, now: Reading) -> Load {
        let load = match &self.last {
            None => Load {
                size: now.size,
                in_use: now.in_use,
                waiting: now.waiting,
                busy: now.in_use as f64,
                queued: now.waiting as f64,
                ..Load::default()
            },
            Some(before) => window_load(before, &now),
        };
        self.last = Some(now);
        load
    }
}

fn window_load(before: &Reading, now: &Reading) -> Load {
    let window = now.at.saturating_duration_since(before.at);
    let secs = window.as_secs_f64().max(1e-9);
    let wait = now.acquire_wait.since(&before.acquire_wait);
    let hold = now.hold_time.since(&before.hold_time);
    let create = now.create_time.since(&before.create_time);
    let busy = (hold.sum().as_secs_f64() / secs).max(now.in_use as f64);
    let queued = (wait.sum().as_secs_f64() / secs).max(now.waiting as f64);
    let per_second = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
    let max = now.max_size.max(1) as f64;
    Load {
        window,
        size: now.size,
        in_use: now.in_use,
        waiting: now.waiting,
        busy,
        queued,
        utilization: if now.size == 0 {
            0.0
        } else {
            (busy / now.size as f64).min(1.0)
        },
        utilization_of_max: (busy / max).min(1.0),
        arrival_rate: wait.count() as f64 / secs,
        acquire_wait_p50: wait.quantile(0.5),
        acquire_wait_p99: wait.quantile(0.99),
        hold_time_mean: hold.mean(),
        hold_time_p99: hold.quantile(0.99),
        create_time_p99: create.quantile(0.99),
        create_errors_per_second: per_second(now.create_failed, before.create_failed),
        timeouts_per_second: per_second(now.timed_out, before.timed_out),
        load_factor: ((busy + queued) / max).min(1.0),
    }
}
