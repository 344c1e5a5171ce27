//! The circuit breaker: tells a dead database from a caller's bad SQL.
//! Failures are counted per [`FailureKind`] over a rolling window, each
//! kind with its own thresholds; `Client` failures never count.
//!
//! Healthy → Degraded (a kind crossed its degrade threshold: new
//! connections are opened one at a time, existing ones keep serving, and
//! callers waiting for a new one ride the trouble out in the queue) →
//! Failed (a kind crossed its open threshold: acquires fail fast with
//! `CircuitOpen`) → HalfOpen after `recovery_timeout` (up to
//! `half_open_requests` probe acquires go through) → Healthy after
//! `half_open_successes` successes, or back to Failed with the timeout
//! doubled (up to `max_recovery_timeout`) on a failed probe.
//!
//! The checkout path reads one atomic while the breaker is healthy; the
//! lock is taken only to record failures or while the database is in
//! trouble.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::FailureKind;

/// Thresholds for one kind of failure within the breaker's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Thresholds {
    /// Failures within the window that make the pool Degraded.
    pub degrade: u32,
    /// Failures within the window that open the circuit.
    pub open: u32,
}

/// Circuit breaker settings. The defaults suit a web service: a database
/// that refuses six connections in ten seconds (spanning at least 250 ms)
/// is treated as down, and probed with one connection attempt after
/// 250 ms, backing off to one a second while it stays down — so it is
/// noticed back within a second, half a second on average.
///
/// ```
/// let mut config = tidepool::BreakerConfig::default();
/// assert!(config.enabled);
/// assert_eq!(config.connect.open, 6);
/// assert!(!config.hold_while_open, "fails fast by default");
/// config.hold_while_open = true; // wait out short outages instead
/// assert!(!tidepool::BreakerConfig::disabled().enabled);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Whether the breaker acts at all. Defaults to true.
    pub enabled: bool,
    /// The rolling window failures are counted over. Defaults to 10 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub window: Duration,
    /// Connection failures (refused, reset, auth, too many connections).
    /// Defaults to degrade at 3, open at 6.
    pub connect: Thresholds,
    /// Timeouts. Defaults to degrade at 5, open at 10.
    pub timeout: Thresholds,
    /// Server-side query failures. Defaults to degrade at 10, open at 25.
    pub query: Thresholds,
    /// Transaction failures (serialization, deadlock). Defaults to degrade
    /// at 20, open at 50.
    pub transaction: Thresholds,
    /// The circuit opens only when the failures in the window span at
    /// least this long, so a momentary reset of every connection is not
    /// mistaken for an outage; a degraded pool heals once this long passes
    /// without a failure. Defaults to 250 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub min_outage: Duration,
    /// While degraded, a failed connection attempt holds the one-at-a-time
    /// gate this long, so a database refusing connections sees a trickle of
    /// attempts rather than a busy loop. Defaults to 50 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub degraded_attempt_spacing: Duration,
    /// How long a server that says it is restarting (PostgreSQL's "the
    /// database system is starting up", see
    /// [`Manager::is_restarting`](crate::Manager::is_restarting)) is given
    /// before such failures may open the circuit. Until then the pool stays
    /// degraded: it keeps trying one connection at a time, and callers
    /// ride the restart out in the queue instead of failing fast and
    /// waiting for a probe. A server that goes on refusing for other
    /// reasons opens the circuit as usual. Zero turns the grace off.
    /// Defaults to 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub restart_grace: Duration,
    /// Time the circuit stays open before the first probe; it doubles after
    /// each failed probe. Defaults to 250 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub recovery_timeout: Duration,
    /// Cap on the recovery timeout, so a database that comes back is
    /// noticed within this long (and a dead one sees at most
    /// `half_open_requests` attempts per this long). Defaults to 1 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_recovery_timeout: Duration,
    /// Probe acquires let through at once while half-open. Defaults to 1:
    /// one attempt a round tells a dead database from a live one as well
    /// as three, and the attempts saved buy rounds twice as often.
    pub half_open_requests: u32,
    /// Successful probes needed to close the circuit. Defaults to 1.
    pub half_open_successes: u32,
    /// What an acquire does while the circuit is open. `false` (the
    /// default): it fails at once with `CircuitOpen`. `true`: it waits, up
    /// to its `acquire_timeout`, for the circuit to close, and is served as
    /// soon as a probe finds the database back — making no connection
    /// attempt of its own, so holding callers never becomes a storm. Hold
    /// suits callers that would rather wait out a short outage than see an
    /// error (a worker, a request with a generous deadline); fail-fast suits
    /// a web handler that should shed load at once.
    pub hold_while_open: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            window: Duration::from_secs(10),
            connect: Thresholds {
                degrade: 3,
                open: 6,
            },
            timeout: Thresholds {
                degrade: 5,
                open: 10,
            },
            query: Thresholds {
                degrade: 10,
                open: 25,
            },
            transaction: Thresholds {
                degrade: 20,
                open: 50,
            },
            min_outage: Duration::from_millis(250),
            degraded_attempt_spacing: Duration::from_millis(50),
            restart_grace: Duration::from_secs(5),
            recovery_timeout: Duration::from_millis(250),
            max_recovery_timeout: Duration::from_secs(1),
            half_open_requests: 1,
            half_open_successes: 1,
            hold_while_open: false,
        }
    }
}

impl BreakerConfig {
    /// A breaker that never acts.
    pub fn disabled() -> Self {
        BreakerConfig {
            enabled: false,
            ..Self::default()
        }
    }

    fn thresholds(&self, kind: FailureKind) -> Option<Thresholds> {
        match kind {
            FailureKind::Connect => Some(self.connect),
            FailureKind::Timeout => Some(self.timeout),
            FailureKind::Query => Some(self.query),
            FailureKind::Transaction => Some(self.transaction),
            _ => None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::BuildError> {
        let invalid = |field, reason: &str| {
            Err(crate::BuildError::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if !self.enabled {
            return Ok(());
        }
        if self.window.is_zero() {
            return invalid("breaker.window", "must be greater than zero");
        }
        if self.recovery_timeout.is_zero() {
            return invalid("breaker.recovery_timeout", "must be greater than zero");
        }
        if self.max_recovery_timeout < self.recovery_timeout {
            return invalid(
                "breaker.max_recovery_timeout",
                "must be at least recovery_timeout",
            );
        }
        if self.half_open_requests == 0 {
            return invalid("breaker.half_open_requests", "must be at least 1");
        }
        if self.half_open_successes == 0 || self.half_open_successes > self.half_open_requests {
            return invalid(
                "breaker.half_open_successes",
                "must be between 1 and half_open_requests",
            );
        }
        for (field, t) in [
            ("breaker.connect", self.connect),
            ("breaker.timeout", self.timeout),
            ("breaker.query", self.query),
            ("breaker.transaction", self.transaction),
        ] {
            if t.degrade == 0 || t.open < t.degrade {
                return invalid(field, "needs 1 <= degrade <= open");
            }
        }
        Ok(())
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum BreakerState {
    /// All is well.
    Healthy,
    /// Failures are mounting: new connections open one at a time.
    Degraded,
    /// The database is considered down: acquires fail fast.
    Failed,
    /// Probing whether the database is back.
    HalfOpen,
}

impl BreakerState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => BreakerState::Healthy,
            1 => BreakerState::Degraded,
            2 => BreakerState::Failed,
            _ => BreakerState::HalfOpen,
        }
    }
    fn as_u8(self) -> u8 {
        match self {
            BreakerState::Healthy => 0,
            BreakerState::Degraded => 1,
            BreakerState::Failed => 2,
            BreakerState::HalfOpen => 3,
        }
    }
}

/// The breaker as seen in [`Metrics`](crate::Metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The current state.
    pub state: BreakerState,
    /// Failures per kind within the window, in [`FailureKind::ALL`] order
    /// (Client always 0: it never counts).
    pub failures_in_window: Vec<(FailureKind, u32)>,
    /// The last transition: from, to, and how long ago.
    pub last_transition: Option<(BreakerState, BreakerState, Duration)>,
    /// The last error that counted against the database.
    pub last_error: Option<String>,
    /// Times the circuit opened.
    pub times_opened: u64,
    /// Each kind's thresholds, in [`FailureKind::ALL`] order (Client
    /// absent: it never counts).
    pub thresholds: Vec<(FailureKind, Thresholds)>,
    /// How long ago the last failure that counted was, if any.
    pub since_last_failure: Option<Duration>,
}

/// Why the breaker refused an acquire.
pub(crate) struct Rejected {
    pub retry_after: Duration,
    pub last_error: Option<String>,
}

impl Rejected {
    /// What the caller is told.
    pub(crate) fn into_error<E: std::error::Error + 'static>(self) -> crate::Error<E> {
        crate::Error::CircuitOpen {
            retry_after: self.retry_after,
            last_error: self.last_error,
        }
    }
}

/// What the breaker allowed.
pub(crate) enum Admission<'a> {
    Normal,
    /// A half-open probe; frees its slot when dropped.
    Probe {
        _slot: ProbeSlot<'a>,
    },
}

pub(crate) struct ProbeSlot<'a>(&'a Breaker);

impl Drop for ProbeSlot<'_> {
    fn drop(&mut self) {
        let mut inner = self.0.inner.lock();
        inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        drop(inner);
        // A held caller may take the freed probe slot.
        self.0.changed.notify_waiters();
    }
}

struct Inner {
    failures: [VecDeque<Instant>; 4],
    last_failure: Option<Instant>,
    /// The first failure since the pool was last healthy that said the
    /// server is restarting.
    restarting_since: Option<Instant>,
    last_error: Option<String>,
    retry_at: Instant,
    recovery: Duration,
    probes_in_flight: u32,
    probe_successes: u32,
    last_transition: Option<(BreakerState, BreakerState, Instant)>,
    times_opened: u64,
    /// The last failure that counted, kept through recovery (for the
    /// snapshot's "time since the last failure").
    last_failure_ever: Option<Instant>,
}

pub(crate) struct Breaker {
    config: BreakerConfig,
    state: AtomicU8,
    inner: Mutex<Inner>,
    /// Woken on every transition and freed probe slot, for callers held
    /// while the circuit is open. Boxed, to keep it off the cache lines of
    /// the breaker's state, which every checkout reads.
    pub(crate) changed: Box<Notify>,
}

fn slot(kind: FailureKind) -> Option<usize> {
    match kind {
        FailureKind::Connect => Some(0),
        FailureKind::Timeout => Some(1),
        FailureKind::Query => Some(2),
        FailureKind::Transaction => Some(3),
        _ => None,
    }
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        let recovery = config.recovery_timeout;
        Breaker {
            config,
            state: AtomicU8::new(0),
            inner: Mutex::new(Inner {
                failures: Default::default(),
                last_failure: None,
                last_failure_ever: None,
                restarting_since: None,
                last_error: None,
                retry_at: Instant::now(),
                recovery,
                probes_in_flight: 0,
                probe_successes: 0,
                last_transition: None,
                times_opened: 0,
            }),
            changed: Box::new(Notify::new()),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.state.load(Ordering::Acquire) == 0
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState, now: Instant) {
        let from = self.state();
        if from == to {
            return;
        }
        self.state.store(to.as_u8(), Ordering::Release);
        inner.last_transition = Some((from, to, now));
        if to == BreakerState::Healthy {
            inner.restarting_since = None;
        }
        self.changed.notify_waiters();
        let cause = inner.last_error.as_deref().unwrap_or("none");
        match to {
            BreakerState::Healthy => {
                tracing::info!(target: "tidepool::breaker", ?from, "database healthy again; circuit closed")
            }
            BreakerState::HalfOpen => {
                tracing::info!(target: "tidepool::breaker", "probing whether the database is back")
            }
            BreakerState::Degraded => {
                tracing::warn!(target: "tidepool::breaker", last_error = cause, "database degraded; opening connections one at a time")
            }
            BreakerState::Failed => {
                tracing::warn!(target: "tidepool::breaker", last_error = cause, retry_after = ?inner.recovery, "database considered down; circuit open, acquires fail fast")
            }
        }
    }

    /// Whether an acquire may proceed.
    pub(crate) fn admit(&self) -> Result<Admission<'_>, Rejected> {
        if !self.config.enabled || self.is_healthy() {
            return Ok(Admission::Normal);
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        match self.state() {
            BreakerState::Healthy | BreakerState::Degraded => Ok(Admission::Normal),
            BreakerState::Failed if now < inner.retry_at => Err(Rejected {
                retry_after: inner.retry_at - now,
                last_error: inner.last_error.clone(),
            }),
            BreakerState::Failed | BreakerState::HalfOpen => {
                if self.state() == BreakerState::Failed {
                    inner.probes_in_flight = 0;
                    inner.probe_successes = 0;
                    self.transition(&mut inner, BreakerState::HalfOpen, now);
                }
                if inner.probes_in_flight < self.config.half_open_requests {
                    inner.probes_in_flight += 1;
                    Ok(Admission::Probe {
                        _slot: ProbeSlot(self),
                    })
                } else {
                    Err(Rejected {
                        retry_after: Duration::from_millis(100),
                        last_error: inner.last_error.clone(),
                    })
                }
            }
        }
    }

    /// The circuit is open (not probing): what a caller should be told.
    pub(crate) fn open_circuit(&self) -> Option<Rejected> {
        if !self.config.enabled || self.state() != BreakerState::Failed {
            return None;
        }
        let inner = self.inner.lock();
        Some(Rejected {
            retry_after: inner.retry_at.saturating_duration_since(Instant::now()),
            last_error: inner.last_error.clone(),
        })
    }

    /// Whether new connections should be opened one at a time.
    pub(crate) fn throttling(&self) -> bool {
        self.config.enabled && !self.is_healthy()
    }

    pub(crate) fn record_failure(&self, kind: FailureKind, error: &str) {
        self.record(kind, error, false);
    }

    /// A failed connection attempt whose error says the server is
    /// restarting: it counts like any connection failure, but does not
    /// open the circuit within `restart_grace` of the first such failure,
    /// and a probe that meets it does not back the recovery timeout off
    /// (the server is on its way back).
    pub(crate) fn record_restarting(&self, error: &str) {
        self.record(FailureKind::Connect, error, true);
    }

    fn record(&self, kind: FailureKind, error: &str, restarting: bool) {
        let (Some(i), Some(t)) = (slot(kind), self.config.thresholds(kind)) else {
            return;
        };
        if !self.config.enabled {
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        // A healthy pool that has been quiet for a while starts a new
        // episode: an old restart's grace is not this one's.
        if self.state() == BreakerState::Healthy
            && inner
                .last_failure
                .is_none_or(|at| now.saturating_duration_since(at) >= self.config.min_outage)
        {
            inner.restarting_since = None;
        }
        inner.last_error = Some(error.to_string());
        inner.last_failure = Some(now);
        inner.last_failure_ever = Some(now);
        let window = self.config.window;
        let q = &mut inner.failures[i];
        q.push_back(now);
        while q
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > window)
        {
            q.pop_front();
        }
        // Never keep more than the open threshold needs.
        while q.len() > t.open as usize {
            q.pop_front();
        }
        let count = q.len() as u32;
        let span = q.front().map_or(Duration::ZERO, |&first| {
            now.saturating_duration_since(first)
        });
        let in_restart_grace = restarting && {
            let since = *inner.restarting_since.get_or_insert(now);
            now.saturating_duration_since(since) < self.config.restart_grace
        };
        match self.state() {
            BreakerState::HalfOpen => {
                if !restarting {
                    inner.recovery = (inner.recovery * 2).min(self.config.max_recovery_timeout);
                }
                self.open(&mut inner, now);
            }
            BreakerState::Failed => {}
            _ if count >= t.open && span >= self.config.min_outage && !in_restart_grace => {
                self.open(&mut inner, now)
            }
            BreakerState::Healthy if count >= t.degrade => {
                self.transition(&mut inner, BreakerState::Degraded, now)
            }
            _ => {}
        }
    }

    /// A failure that says the database will refuse every attempt until
    /// someone changes something (wrong password, unknown database): the
    /// circuit opens at once, so callers get the cause without each making
    /// an attempt.
    pub(crate) fn record_fatal(&self, error: &str) {
        if !self.config.enabled {
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.last_error = Some(error.to_string());
        if self.state() != BreakerState::Failed {
            if self.state() == BreakerState::HalfOpen {
                inner.recovery = (inner.recovery * 2).min(self.config.max_recovery_timeout);
            }
            self.open(&mut inner, now);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.retry_at = now + inner.recovery;
        inner.times_opened += 1;
        self.transition(inner, BreakerState::Failed, now);
    }

    pub(crate) fn record_success(&self) {
        if !self.config.enabled || self.is_healthy() {
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        match self.state() {
            BreakerState::HalfOpen => {
                inner.probe_successes += 1;
                if inner.probe_successes >= self.config.half_open_successes {
                    self.close(&mut inner, now);
                }
            }
            // Work succeeded against the database while the circuit was
            // open (a connection held through the outage, a probe that
            // outlived a failed one): it is back.
            BreakerState::Failed => self.close(&mut inner, now),
            BreakerState::Degraded => {
                let window = self.config.window;
                let calm = FailureKind::ALL.iter().all(|&k| {
                    let (Some(i), Some(t)) = (slot(k), self.config.thresholds(k)) else {
                        return true;
                    };
                    let q = &mut inner.failures[i];
                    while q
                        .front()
                        .is_some_and(|&at| now.saturating_duration_since(at) > window)
                    {
                        q.pop_front();
                    }
                    (q.len() as u32) < t.degrade
                });
                let quiet = inner
                    .last_failure
                    .is_none_or(|at| now.saturating_duration_since(at) >= self.config.min_outage);
                if calm || quiet {
                    self.transition(&mut inner, BreakerState::Healthy, now);
                }
            }
            _ => {}
        }
    }

    fn close(&self, inner: &mut Inner, now: Instant) {
        inner.failures.iter_mut().for_each(VecDeque::clear);
        inner.last_failure = None;
        inner.recovery = self.config.recovery_timeout;
        self.transition(inner, BreakerState::Healthy, now);
    }

    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let inner = self.inner.lock();
        let window = self.config.window;
        BreakerSnapshot {
            state: self.state(),
            failures_in_window: FailureKind::ALL
                .iter()
                .map(|&k| {
                    let n = slot(k).map_or(0, |i| {
                        inner.failures[i]
                            .iter()
                            .filter(|&&at| now.saturating_duration_since(at) <= window)
                            .count() as u32
                    });
                    (k, n)
                })
                .collect(),
            last_transition: inner
                .last_transition
                .map(|(from, to, at)| (from, to, now.saturating_duration_since(at))),
            last_error: inner.last_error.clone(),
            times_opened: inner.times_opened,
            thresholds: FailureKind::ALL
                .iter()
                .filter_map(|&k| self.config.thresholds(k).map(|t| (k, t)))
                .collect(),
            since_last_failure: inner
                .last_failure_ever
                .map(|at| now.saturating_duration_since(at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig::default())
    }

    /// `n` failures of `kind`, 100 ms apart.
    async fn fail(b: &Breaker, kind: FailureKind, n: usize, error: &str) {
        for _ in 0..n {
            b.record_failure(kind, error);
            tokio::time::advance(Duration::from_millis(100)).await;
        }
    }

    fn retry_after(b: &Breaker) -> Duration {
        match b.admit() {
            Err(r) => r.retry_after,
            Ok(_) => panic!("an open circuit admitted an acquire"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn client_mistakes_never_move_the_breaker() {
        let b = breaker();
        fail(
            &b,
            FailureKind::Client,
            100,
            "syntax error at or near \"SELEC\"",
        )
        .await;
        assert_eq!(b.state(), BreakerState::Healthy);
        assert!(b.snapshot().last_error.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn connect_failures_degrade_then_open_and_the_open_circuit_fails_fast_with_the_cause() {
        let b = breaker();
        fail(&b, FailureKind::Connect, 3, "connection refused").await;
        assert_eq!(b.state(), BreakerState::Degraded);
        assert!(b.throttling());
        fail(&b, FailureKind::Connect, 3, "connection refused").await;
        assert_eq!(b.state(), BreakerState::Failed);
        match b.admit() {
            Err(r) => {
                assert!(r.retry_after <= Duration::from_millis(250));
                assert_eq!(r.last_error.as_deref(), Some("connection refused"));
            }
            Ok(_) => panic!("an open circuit admitted an acquire"),
        };
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_failures_at_one_moment_degrades_but_does_not_open() {
        let b = breaker();
        for _ in 0..50 {
            b.record_failure(FailureKind::Connect, "connection reset by peer");
        }
        assert_eq!(
            b.state(),
            BreakerState::Degraded,
            "a momentary reset of every connection is not an outage"
        );
        tokio::time::advance(Duration::from_millis(300)).await;
        b.record_success();
        assert_eq!(b.state(), BreakerState::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cause_retrying_cannot_fix_opens_the_circuit_at_once() {
        let b = breaker();
        b.record_fatal("password authentication failed for user \"app\"");
        assert_eq!(b.state(), BreakerState::Failed);
        assert!(b
            .snapshot()
            .last_error
            .unwrap()
            .contains("password authentication failed"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_do_not_count() {
        let b = breaker();
        for _ in 0..5 {
            b.record_failure(FailureKind::Connect, "refused");
            tokio::time::advance(Duration::from_secs(6)).await;
        }
        assert_ne!(b.state(), BreakerState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_recovery_timeout_a_bounded_number_of_probes_pass_and_a_success_closes_it() {
        let b = Breaker::new(BreakerConfig {
            half_open_requests: 3,
            ..BreakerConfig::default()
        });
        fail(&b, FailureKind::Connect, 6, "refused").await;
        tokio::time::advance(retry_after(&b)).await;
        let probes: Vec<_> = (0..3)
            .map(|_| b.admit().ok().expect("probe admitted"))
            .collect();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_err(), "more probes than half_open_requests");
        b.record_success();
        drop(probes);
        assert_eq!(b.state(), BreakerState::Healthy);
        assert!(matches!(b.admit(), Ok(Admission::Normal)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarting_server_gets_restart_grace_before_the_circuit_opens() {
        let b = breaker();
        assert_eq!(
            BreakerConfig::default().restart_grace,
            Duration::from_secs(5)
        );
        // 4.9 s of "starting up", one every 100 ms: degraded, never open.
        for _ in 0..50 {
            b.record_restarting("the database system is starting up");
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert_eq!(b.state(), BreakerState::Degraded);
        // Past the grace the same failure is an outage like any other.
        tokio::time::advance(Duration::from_millis(100)).await;
        b.record_restarting("the database system is starting up");
        assert_eq!(b.state(), BreakerState::Failed);
        assert_eq!(retry_after(&b), Duration::from_millis(250));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn the_restart_grace_reads_from_config_with_a_human_duration() {
        let config: BreakerConfig =
            serde_json::from_str(r#"{"restart_grace": "2s", "hold_while_open": true}"#).unwrap();
        assert_eq!(config.restart_grace, Duration::from_secs(2));
        assert!(config.hold_while_open);
        assert_eq!(config.min_outage, BreakerConfig::default().min_outage);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_restart_grace_opens_on_starting_up_like_any_refusal() {
        let b = Breaker::new(BreakerConfig {
            restart_grace: Duration::ZERO,
            ..BreakerConfig::default()
        });
        fail(&b, FailureKind::Connect, 5, "refused").await;
        b.record_restarting("the database system is starting up");
        assert_eq!(b.state(), BreakerState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_plain_refusal_during_the_restart_grace_still_opens_the_circuit() {
        let b = breaker();
        fail(
            &b,
            FailureKind::Connect,
            5,
            "the database system is starting up",
        )
        .await;
        b.record_restarting("the database system is starting up");
        assert_eq!(b.state(), BreakerState::Degraded, "graced");
        b.record_failure(FailureKind::Connect, "connection refused");
        assert_eq!(b.state(), BreakerState::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_finds_the_server_starting_up_does_not_back_off() {
        let b = breaker();
        fail(&b, FailureKind::Connect, 6, "refused").await;
        for _ in 0..3 {
            tokio::time::advance(retry_after(&b)).await;
            let probe = b.admit().ok().expect("probe");
            b.record_restarting("the database system is starting up");
            drop(probe);
            assert_eq!(b.state(), BreakerState::Failed);
            assert_eq!(retry_after(&b), Duration::from_millis(250));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_restart_grace_starts_over_once_the_pool_is_healthy_again() {
        let b = breaker();
        b.record_restarting("the database system is starting up");
        tokio::time::advance(Duration::from_secs(6)).await;
        b.record_success();
        assert_eq!(b.state(), BreakerState::Healthy);
        for _ in 0..10 {
            b.record_restarting("the database system is starting up");
            tokio::time::advance(Duration::from_millis(100)).await;
        }
        assert_eq!(
            b.state(),
            BreakerState::Degraded,
            "a new restart, a new grace"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn by_default_one_connection_attempt_a_round_probes_the_database() {
        let b = breaker();
        fail(&b, FailureKind::Connect, 6, "refused").await;
        tokio::time::advance(retry_after(&b)).await;
        let probe = b.admit().ok().expect("probe admitted");
        assert!(b.admit().is_err(), "a second probe in the same round");
        drop(probe);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_with_the_recovery_timeout_backed_off_to_its_cap() {
        let b = breaker();
        fail(&b, FailureKind::Connect, 6, "refused").await;
        let config = BreakerConfig::default();
        assert_eq!(config.recovery_timeout, Duration::from_millis(250));
        assert_eq!(config.max_recovery_timeout, Duration::from_secs(1));
        for expected_ms in [500, 1000, 1000, 1000] {
            tokio::time::advance(retry_after(&b)).await;
            let probe = b.admit().ok().expect("probe");
            b.record_failure(FailureKind::Connect, "still refused");
            drop(probe);
            assert_eq!(retry_after(&b), Duration::from_millis(expected_ms));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn any_success_closes_an_open_circuit() {
        let b = breaker();
        fail(&b, FailureKind::Connect, 6, "refused").await;
        assert_eq!(b.state(), BreakerState::Failed);
        b.record_success();
        assert_eq!(b.state(), BreakerState::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn a_degraded_breaker_heals_once_failures_stop() {
        let b = breaker();
        fail(&b, FailureKind::Timeout, 3, "timed out").await;
        fail(&b, FailureKind::Connect, 2, "refused").await;
        assert_eq!(
            b.state(),
            BreakerState::Healthy,
            "each kind has its own threshold"
        );
        fail(&b, FailureKind::Connect, 1, "refused").await;
        assert_eq!(b.state(), BreakerState::Degraded);
        b.record_success();
        assert_eq!(
            b.state(),
            BreakerState::Degraded,
            "failures are still recent"
        );
        tokio::time::advance(Duration::from_millis(250)).await;
        b.record_success();
        assert_eq!(b.state(), BreakerState::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn a_disabled_breaker_admits_everything() {
        let b = Breaker::new(BreakerConfig::disabled());
        fail(&b, FailureKind::Connect, 100, "refused").await;
        b.record_fatal("wrong password");
        assert!(matches!(b.admit(), Ok(Admission::Normal)));
    }
}
