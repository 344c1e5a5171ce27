//! The health score and its recommendations: reads two samples of the pool
//! (counters, latency buckets, occupancy, breaker, per-connection view) and
//! says how the pool did between them — a status, a score 0–100, the
//! components that made it, and what to do, with the numbers that led
//! there. It must never guess from one static rule what two figures can
//! tell apart: waiting for a connection (waits long, holds short) from a
//! slow database (holds long), a pool that is too small (connections come
//! back, just not fast enough) from one that leaks (some never come back),
//! a dead database (circuit open) from a sick one (some attempts fail).
//! It only reads: nothing here runs on the checkout path.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::BreakerState;
use crate::error::FailureKind;
use crate::histogram::{Buckets, Histograms};
use crate::manager::Manager;
use crate::metrics::Metrics;
use crate::pool::{Pool, Status};

/// Utilization above which callers start to queue in bursts (the seeds'
/// alert threshold); a pool is sized so its average load sits below it.
const HIGH_UTILIZATION: f64 = 0.85;
/// Mean hold time past which the work done on a connection is slow (the
/// seeds' "average query latency above 200 ms").
const SLOW_HOLD: Duration = Duration::from_millis(200);
/// Acquire wait (p99) that no one notices.
const QUIET_WAIT: Duration = Duration::from_millis(10);
/// Connection opening time (p99) worth keeping connections warm for.
const SLOW_CONNECT: Duration = Duration::from_millis(500);
/// Shortest window over which a connection that stayed checked out counts
/// as stuck.
const STUCK_WINDOW: Duration = Duration::from_secs(1);

/// The pool as read at one instant: what [`HealthSample::report_since`]
/// compares. Take one with [`Pool::health_sample`] and keep it to judge the
/// window that follows (an exporter keeps one from a minute ago).
#[derive(Debug, Clone)]
pub struct HealthSample {
    at: Instant,
    status: Status,
    metrics: Metrics,
    histograms: Histograms,
    closed: bool,
    leak_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    breaker: crate::BreakerConfig,
}

impl HealthSample {
    /// The empty reading a pool starts from, so a report "since the start"
    /// is a report since this.
    fn origin(at: Instant, now: &HealthSample) -> HealthSample {
        HealthSample {
            at,
            status: now.status,
            metrics: Metrics::default(),
            histograms: Histograms::default(),
            closed: false,
            leak_timeout: now.leak_timeout,
            idle_timeout: now.idle_timeout,
            connect_timeout: now.connect_timeout,
            acquire_timeout: now.acquire_timeout,
            breaker: now.breaker.clone(),
        }
    }

    /// How long ago (on tokio's clock) this sample was taken.
    pub fn age(&self) -> Duration {
        self.at.elapsed()
    }

    /// The pool's size and occupancy when the sample was taken.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The counters and percentiles when the sample was taken.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The raw latency buckets when the sample was taken.
    pub fn histograms(&self) -> &Histograms {
        &self.histograms
    }

    /// How the pool did between `earlier` (a sample of the same pool) and
    /// this one.
    pub fn report_since(&self, earlier: &HealthSample) -> HealthReport {
        assess(earlier, self)
    }
}

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum HealthStatus {
    /// Score 80 or more and nothing that needs attention.
    Healthy,
    /// Serving, but something needs attention.
    Degraded,
    /// Not serving: the circuit is open, the pool is closed, or the score
    /// is under 50.
    Unhealthy,
}

impl HealthStatus {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// What a recommendation is about. Each kind is told apart from its
/// look-alike by a figure: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum FindingKind {
    /// Callers wait for connections that are held briefly: more
    /// connections would serve them.
    PoolTooSmall,
    /// Connections are checked out and never come back.
    ConnectionLeak,
    /// The time goes to the work done on a connection, not to getting one.
    SlowDatabase,
    /// Opening a connection is slow enough that callers feel it.
    SlowConnect,
    /// The circuit is open: the database is down or unreachable.
    DatabaseDown,
    /// The database answers but some attempts or queries fail.
    DatabaseFailing,
    /// Far more connections are open than the load needs.
    PoolOversized,
    /// The pool was closed.
    Closed,
}

impl FindingKind {
    /// A short snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PoolTooSmall => "pool_too_small",
            FindingKind::ConnectionLeak => "connection_leak",
            FindingKind::SlowDatabase => "slow_database",
            FindingKind::SlowConnect => "slow_connect",
            FindingKind::DatabaseDown => "database_down",
            FindingKind::DatabaseFailing => "database_failing",
            FindingKind::PoolOversized => "pool_oversized",
            FindingKind::Closed => "closed",
        }
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Severity {
    /// Worth knowing (money or connections wasted, latency that could be
    /// saved); does not make the pool degraded.
    Info,
    /// Callers are affected; makes the pool at least degraded.
    Warning,
    /// Callers are failing.
    Critical,
}

/// One thing the report found, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Recommendation {
    /// What it is about.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// What was seen and what to do, with the numbers behind it.
    pub message: String,
}

/// One part of the score.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Component {
    /// `utilization`, `acquire_wait`, `errors`, `breaker`, `hold_time` or
    /// `leaks`.
    pub name: &'static str,
    /// 0–100.
    pub score: u8,
    /// Its share of the total score, in percent (the weights add up to
    /// 100).
    pub weight: u8,
    /// The figures it was scored on.
    pub detail: String,
}

/// The figures a report was computed from, over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HealthFigures {
    /// Checkouts per second.
    pub checkouts_per_sec: f64,
    /// Connections busy on average (hold time recorded ÷ window: Little's
    /// law).
    pub busy: f64,
    /// Callers waiting for a connection on average (acquire wait recorded,
    /// timeouts included, ÷ window).
    pub waiting: f64,
    /// The larger of `busy` and the connections in use now, over
    /// `max_size`.
    pub utilization: f64,
    /// Share of checkouts that had to wait.
    pub waited_share: f64,
    /// Acquire wait, 99th percentile, milliseconds.
    pub wait_p99_ms: f64,
    /// Hold time, mean and 99th percentile, milliseconds.
    pub hold_mean_ms: f64,
    /// Hold time, 99th percentile, milliseconds.
    pub hold_p99_ms: f64,
    /// Connection opening time, 99th percentile, milliseconds.
    pub create_p99_ms: f64,
    /// Acquires that timed out.
    pub timeouts: u64,
    /// Connection attempts that failed, and that succeeded.
    pub connect_failures: u64,
    /// Connections opened.
    pub connections_created: u64,
    /// Connections checked out through the whole window, or reported as
    /// leaks in it.
    pub stuck: u64,
}

/// What [`Pool::health`] says: a status, a score, the components that made
/// it and what to do. An open circuit or a closed pool caps the score at 49
/// (unhealthy), whatever the other components say.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HealthReport {
    /// The verdict.
    pub status: HealthStatus,
    /// 0–100, the weighted sum of the components.
    pub score: u8,
    /// The window the report covers, in seconds.
    pub window_secs: f64,
    /// The parts of the score.
    pub components: Vec<Component>,
    /// What to do, most severe first.
    pub recommendations: Vec<Recommendation>,
    /// The figures behind it all.
    pub figures: HealthFigures,
}

impl HealthReport {
    /// Whether a load balancer should send traffic here: anything but
    /// [`HealthStatus::Unhealthy`].
    pub fn is_serving(&self) -> bool {
        self.status != HealthStatus::Unhealthy
    }

    /// Whether a recommendation of `kind` was made.
    pub fn has(&self, kind: FindingKind) -> bool {
        self.recommendations.iter().any(|r| r.kind == kind)
    }
}

impl<M: Manager> Pool<M> {
    /// Reads the pool for [`HealthSample::report_since`]: keep one and
    /// judge the window after it.
    pub fn health_sample(&self) -> HealthSample {
        let config = self.config();
        HealthSample {
            at: Instant::now(),
            status: self.status(),
            metrics: self.metrics(),
            histograms: self.histograms(),
            closed: self.is_closed(),
            leak_timeout: config.leak_timeout,
            idle_timeout: config.idle_timeout,
            connect_timeout: config.connect_timeout,
            acquire_timeout: config.acquire_timeout,
            breaker: config.breaker.clone(),
        }
    }

    /// How the pool has done since it was built: a status (healthy /
    /// degraded / unhealthy), a score 0–100, its components and
    /// recommendations carrying their numbers. Since-build figures dilute
    /// what happened in the last minute; to judge a recent window, keep a
    /// [`health_sample`](Pool::health_sample) and call
    /// [`health_since`](Pool::health_since) later.
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
    /// drop(pool.get().await?);
    /// let report = pool.health();
    /// assert_eq!(report.status, tidepool::HealthStatus::Healthy);
    /// assert!(report.score >= 80, "{report:?}");
    /// for r in &report.recommendations {
    ///     println!("{:?}: {}", r.severity, r.message);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn health(&self) -> HealthReport {
        let now = self.health_sample();
        let origin = HealthSample::origin(self.shared().epoch, &now);
        assess(&origin, &now)
    }

    /// How the pool has done since `earlier`, a sample of this pool.
    pub fn health_since(&self, earlier: &HealthSample) -> HealthReport {
        assess(earlier, &self.health_sample())
    }

    /// Checks now (seed 004's `run_health_check_async`): pings every idle
    /// connection, closing those that fail (each counted in the
    /// validation metrics), then returns what it found with the
    /// [`health`](Pool::health) report. Connections in use are not touched.
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
    /// let check = pool.check_health().await;
    /// assert_eq!((check.checked, check.failed), (2, 0));
    /// # Ok(()) }
    /// ```
    pub async fn check_health(&self) -> HealthCheck {
        let (checked, failed) = self.shared().ping_idle(Duration::ZERO).await;
        HealthCheck {
            checked,
            failed,
            report: self.health(),
        }
    }
}

/// What [`Pool::check_health`] did and found.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HealthCheck {
    /// Idle connections pinged.
    pub checked: usize,
    /// Of those, how many failed and were closed.
    pub failed: usize,
    /// The health report after the check.
    pub report: HealthReport,
}

/// The window between two samples, in the figures the findings use.
struct Window<'a> {
    now: &'a HealthSample,
    secs: f64,
    checkouts: u64,
    waited: u64,
    timeouts: u64,
    created: u64,
    connect_failures: u64,
    leak_reports: u64,
    opened: u64,
    wait: Buckets,
    hold: Buckets,
    create: Buckets,
    stuck: Vec<u64>,
    busy: f64,
    waiting: f64,
    utilization: f64,
}

impl<'a> Window<'a> {
    fn new(earlier: &HealthSample, now: &'a HealthSample) -> Window<'a> {
        let secs = now.at.saturating_duration_since(earlier.at).as_secs_f64();
        let (a, b) = (&earlier.metrics, &now.metrics);
        let d = |f: fn(&Metrics) -> u64| f(b).saturating_sub(f(a));
        let opened_before = a.breaker.as_ref().map_or(0, |s| s.times_opened);
        let opened_now = b.breaker.as_ref().map_or(0, |s| s.times_opened);
        let wait = now
            .histograms
            .acquire_wait
            .since(&earlier.histograms.acquire_wait);
        let hold = now
            .histograms
            .hold_time
            .since(&earlier.histograms.hold_time);
        let create = now
            .histograms
            .create_time
            .since(&earlier.histograms.create_time);
        // A connection in use at both ends that was not handed out again in
        // between has been held the whole window.
        let stuck = if secs >= STUCK_WINDOW.as_secs_f64() {
            b.connections
                .iter()
                .filter(|c| c.in_use)
                .filter(|c| {
                    a.connections
                        .iter()
                        .any(|o| o.id == c.id && o.in_use && o.times_used == c.times_used)
                })
                .map(|c| c.id)
                .collect()
        } else {
            Vec::new()
        };
        let timeouts = d(|m| m.acquires_timed_out);
        let per_sec = |total: f64| if secs > 0.0 { total / secs } else { 0.0 };
        let busy = per_sec(hold.sum().as_secs_f64());
        // A timed-out caller waited too, for the whole acquire timeout.
        let timed_out_wait = timeouts as f64 * now.acquire_timeout.as_secs_f64();
        let waiting = per_sec(wait.sum().as_secs_f64() + timed_out_wait);
        let max = now.status.max_size.max(1) as f64;
        let utilization = (busy.max(now.status.in_use as f64) / max).min(1.0);
        Window {
            now,
            secs,
            checkouts: d(|m| m.checkouts),
            waited: d(|m| m.checkouts_waited),
            timeouts,
            created: d(|m| m.connections_created),
            connect_failures: d(|m| m.connection_attempts_failed),
            leak_reports: d(|m| m.leaks_detected),
            opened: opened_now.saturating_sub(opened_before),
            wait,
            hold,
            create,
            stuck,
            busy,
            waiting,
            utilization,
        }
    }

    fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.checkouts as f64 / self.secs
        } else {
            0.0
        }
    }

    fn breaker(&self) -> BreakerState {
        self.now
            .metrics
            .breaker
            .as_ref()
            .map_or(BreakerState::Healthy, |b| b.state)
    }

    fn leaking(&self) -> bool {
        self.leak_reports > 0 || !self.stuck.is_empty()
    }

    /// Connection failures per kind counted by the breaker in its window,
    /// as "connect 3, timeout 1".
    fn failures_by_kind(&self) -> String {
        let mut out = String::new();
        if let Some(b) = &self.now.metrics.breaker {
            for (kind, n) in &b.failures_in_window {
                if *n > 0 && kind.counts_against_database() {
                    if !out.is_empty() {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{kind} {n}");
                }
            }
        }
        out
    }

    /// Whether some kind's failures in the breaker's window reached the
    /// count that degrades the pool (the breaker may have healed since).
    fn failures_at_degrade_threshold(&self) -> bool {
        let config = &self.now.breaker;
        let Some(b) = &self.now.metrics.breaker else {
            return false;
        };
        config.enabled
            && b.failures_in_window.iter().any(|(kind, n)| {
                let limit = match kind {
                    FailureKind::Connect => config.connect.degrade,
                    FailureKind::Timeout => config.timeout.degrade,
                    FailureKind::Query => config.query.degrade,
                    FailureKind::Transaction => config.transaction.degrade,
                    _ => u32::MAX,
                };
                *n >= limit
            })
    }

    fn last_error(&self) -> String {
        match self
            .now
            .metrics
            .breaker
            .as_ref()
            .and_then(|b| b.last_error.as_deref())
        {
            Some(e) => format!("; last error: {}", first_line(e)),
            None => String::new(),
        }
    }
}

fn assess(earlier: &HealthSample, now: &HealthSample) -> HealthReport {
    let w = Window::new(earlier, now);
    let components = components(&w);
    let total: f64 = components
        .iter()
        .map(|c| f64::from(c.score) * f64::from(c.weight) / 100.0)
        .sum();
    let mut score = total.round().clamp(0.0, 100.0) as u8;
    let mut recommendations = findings(&w);
    recommendations.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let dead = matches!(w.breaker(), BreakerState::Failed | BreakerState::HalfOpen);
    if now.closed || dead {
        // Not serving, whatever the other components say: the score says
        // so too.
        score = score.min(49);
    }
    let status = if score < 50 {
        HealthStatus::Unhealthy
    } else if score < 80
        || recommendations
            .iter()
            .any(|r| r.severity >= Severity::Warning)
    {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    HealthReport {
        status,
        score,
        window_secs: w.secs,
        components,
        recommendations,
        figures: HealthFigures {
            checkouts_per_sec: w.rate(),
            busy: w.busy,
            waiting: w.waiting,
            utilization: w.utilization,
            waited_share: share(w.waited, w.checkouts),
            wait_p99_ms: ms(w.wait.quantile(0.99)),
            hold_mean_ms: ms(w.hold.mean()),
            hold_p99_ms: ms(w.hold.quantile(0.99)),
            create_p99_ms: ms(w.create.quantile(0.99)),
            timeouts: w.timeouts,
            connect_failures: w.connect_failures,
            connections_created: w.created,
            stuck: w.leak_reports.max(w.stuck.len() as u64),
        },
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(score: f64) -> u8 {
    (score * 100.0).round().clamp(0.0, 100.0) as u8
}

fn components(w: &Window<'_>) -> Vec<Component> {
    let max = w.now.status.max_size;
    // Up to 70% in use costs nothing (seed 000's sweet spot); past it the
    // score falls to zero at a full pool. A quiet pool is not unhealthy.
    let u = w.utilization;
    let utilization = if u <= 0.7 { 1.0 } else { (1.0 - u) / 0.3 };
    // 10 ms of p99 wait is unnoticed, a second is a failure; log scale in
    // between. Any timeout caps it.
    let wait_p99 = w.wait.quantile(0.99);
    let mut wait = if wait_p99 <= QUIET_WAIT {
        1.0
    } else {
        1.0 - (wait_p99.as_secs_f64() / QUIET_WAIT.as_secs_f64()).log10() / 2.0
    };
    if w.timeouts > 0 {
        wait = wait.min(0.25);
    }
    // Seed 000: a 10% error rate scores zero. Two rates: connection
    // attempts that failed, and acquires that timed out.
    let connect_rate = share(w.connect_failures, w.connect_failures + w.created);
    let timeout_rate = share(w.timeouts, w.timeouts + w.checkouts);
    let errors = 1.0 - 10.0 * connect_rate.max(timeout_rate);
    let breaker = match w.breaker() {
        BreakerState::Healthy => 1.0,
        BreakerState::Degraded => 0.5,
        BreakerState::HalfOpen => 0.25,
        _ => 0.0,
    };
    // Seed 000: mean response time, 500 ms scores zero.
    let hold_mean = w.hold.mean();
    let hold = 1.0 - hold_mean.as_secs_f64() / 0.5;
    let leaks = if w.leaking() { 0.0 } else { 1.0 };
    vec![
        Component {
            name: "utilization",
            score: pct(utilization),
            weight: 20,
            detail: format!(
                "{:.0}% of {max} connections busy ({:.1} on average, {} in use now)",
                u * 100.0,
                w.busy,
                w.now.status.in_use
            ),
        },
        Component {
            name: "acquire_wait",
            score: pct(wait),
            weight: 20,
            detail: format!(
                "p99 {}, {:.0}% of checkouts waited, {} timed out",
                human(wait_p99),
                share(w.waited, w.checkouts) * 100.0,
                w.timeouts
            ),
        },
        Component {
            name: "errors",
            score: pct(errors),
            weight: 20,
            detail: format!(
                "{} of {} connection attempts failed, {} of {} acquires timed out",
                w.connect_failures,
                w.connect_failures + w.created,
                w.timeouts,
                w.timeouts + w.checkouts
            ),
        },
        Component {
            name: "breaker",
            score: pct(breaker),
            weight: 20,
            detail: format!(
                "{}, opened {} times in the window",
                state_name(w.breaker()),
                w.opened
            ),
        },
        Component {
            name: "hold_time",
            score: pct(hold),
            weight: 10,
            detail: format!(
                "mean {}, p99 {}",
                human(hold_mean),
                human(w.hold.quantile(0.99))
            ),
        },
        Component {
            name: "leaks",
            score: pct(leaks),
            weight: 10,
            detail: format!(
                "{} held through the window, {} leak reports",
                w.stuck.len(),
                w.leak_reports
            ),
        },
    ]
}

fn state_name(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Healthy => "healthy",
        BreakerState::Degraded => "degraded",
        BreakerState::Failed => "open",
        _ => "half-open",
    }
}

fn findings(w: &Window<'_>) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let mut add = |kind, severity, message: String| {
        out.push(Recommendation {
            kind,
            severity,
            message,
        })
    };
    let status = w.now.status;
    let window = human(Duration::from_secs_f64(w.secs));
    if w.now.closed {
        add(
            FindingKind::Closed,
            Severity::Critical,
            "the pool is closed: every acquire fails with Closed".into(),
        );
        return out;
    }

    // Dead, or sick: the breaker's state tells them apart; a sick database
    // still lets some attempts through.
    let by_kind = w.failures_by_kind();
    match w.breaker() {
        BreakerState::Failed | BreakerState::HalfOpen => {
            let since = w
                .now
                .metrics
                .breaker
                .as_ref()
                .and_then(|b| b.last_transition)
                .map(|(_, _, ago)| format!(" for {}", human(ago)))
                .unwrap_or_default();
            add(
                FindingKind::DatabaseDown,
                Severity::Critical,
                format!(
                    "circuit open{since}{}{}: acquires fail fast with CircuitOpen and the pool probes the database about once a second; the database is down or unreachable — check the server and the network, there is nothing to tune in the pool",
                    if by_kind.is_empty() {
                        String::new()
                    } else {
                        format!(" ({by_kind} in the breaker's window)")
                    },
                    w.last_error()
                ),
            );
        }
        state => {
            let degraded = state == BreakerState::Degraded;
            let attempts = w.connect_failures + w.created;
            let failing = w.connect_failures > 0 && share(w.connect_failures, attempts) > 0.05;
            if degraded || failing || w.opened > 0 || w.failures_at_degrade_threshold() {
                let mut seen = Vec::new();
                if w.connect_failures > 0 {
                    seen.push(format!(
                        "{} of {attempts} connection attempts failed in {window}",
                        w.connect_failures
                    ));
                }
                if !by_kind.is_empty() {
                    seen.push(format!("failures counted against it: {by_kind}"));
                }
                if w.opened > 0 {
                    seen.push(format!("the circuit opened {} times in {window}", w.opened));
                }
                let breaker = if degraded {
                    "the breaker is degraded, so new connections open one at a time"
                } else {
                    "the breaker is healthy again"
                };
                add(
                    FindingKind::DatabaseFailing,
                    Severity::Warning,
                    format!(
                        "the database answers but fails: {}{}; {breaker} — check the server's log and its limits (max_connections, memory, disk), not the pool size",
                        seen.join(", "),
                        w.last_error(),
                    ),
                );
            }
        }
    }

    let hold_p99 = w.hold.quantile(0.99);
    let hold_mean = w.hold.mean();
    let wait_p99 = w.wait.quantile(0.99);
    let busy_line = format!(
        "{} checkouts/s × {} held ≈ {:.1} busy",
        thousands(w.rate()),
        human(hold_mean),
        w.busy
    );

    // Leaks: a connection that stays out while returned ones are held
    // briefly is not a pool that is too small.
    if w.leaking() {
        let mut what = Vec::new();
        if !w.stuck.is_empty() {
            what.push(format!(
                "{} of {} connections stayed checked out through the whole {window} (ids {})",
                w.stuck.len(),
                status.size,
                list(&w.stuck)
            ));
        }
        if w.leak_reports > 0 {
            what.push(format!(
                "{} checkout(s) held past leak_timeout",
                w.leak_reports
            ));
        }
        let how = match w.now.leak_timeout {
            Some(t) => format!(
                "the warnings at target tidepool::leak (leak_timeout {}) say where they were taken (turn on track_stack_trace for the backtrace)",
                human(t)
            ),
            None => "set leak_timeout (e.g. 30 s) and track_stack_trace to learn where they were taken".into(),
        };
        let returned = if w.hold.count() > 0 {
            format!(
                " while returned connections are held p99 {}",
                human(hold_p99)
            )
        } else {
            String::new()
        };
        add(
            FindingKind::ConnectionLeak,
            Severity::Warning,
            format!(
                "{}{returned}: a caller is not returning its connection — {how}; raising max_size would only delay running out",
                what.join(" and "),
            ),
        );
    }

    // Slow database: time goes to holding, not to waiting.
    if w.hold.count() > 0 && hold_mean >= SLOW_HOLD {
        let queueing = if wait_p99 > hold_p99.max(QUIET_WAIT) || w.utilization >= HIGH_UTILIZATION {
            format!(
                ", and with {:.0}% of {} connections busy callers queue behind them — more connections help only if the database has headroom",
                w.utilization * 100.0,
                status.max_size
            )
        } else {
            String::new()
        };
        add(
            FindingKind::SlowDatabase,
            Severity::Warning,
            format!(
                "connections are held {} on average (p99 {}) while acquire wait p99 is {}: the time goes to the work done on a connection (slow queries, or a slow or overloaded database), not to getting one — look at the queries and the server{queueing}",
                human(hold_mean),
                human(hold_p99),
                human(wait_p99)
            ),
        );
    }

    // Too small: callers wait for connections that come back quickly.
    // Waits nobody notices (a connection handed over within microseconds)
    // do not count, however many checkouts "waited".
    let waits = w.timeouts > 0
        || (wait_p99 > QUIET_WAIT && (wait_p99 > hold_p99 || share(w.waited, w.checkouts) > 0.1));
    let open = matches!(w.breaker(), BreakerState::Healthy | BreakerState::Degraded);
    if waits && open && !w.leaking() && w.utilization >= HIGH_UTILIZATION {
        let wanted = w.busy + w.waiting;
        let target = ((wanted / HIGH_UTILIZATION).ceil() as usize).max(status.max_size + 1);
        let timeouts = if w.timeouts > 0 {
            format!(", {} acquires timed out", w.timeouts)
        } else {
            String::new()
        };
        add(
            FindingKind::PoolTooSmall,
            Severity::Warning,
            format!(
                "acquire wait p99 {} while hold p99 {} and {:.0}% of {} connections in use{timeouts}: raise max_size to ~{target} ({busy_line}, plus {:.1} waiting ≈ {:.1} wanted)",
                human(wait_p99),
                human(hold_p99),
                w.utilization * 100.0,
                status.max_size,
                w.waiting,
                wanted
            ),
        );
    }

    // Slow to open: keep connections warm so callers do not pay it.
    let create_p99 = w.create.quantile(0.99);
    if w.create.count() > 0 && create_p99 >= SLOW_CONNECT {
        let warm = (w.busy.ceil() as usize).max(1).min(status.max_size);
        let advice = if status.min_size < warm {
            format!(
                "raise min_size to ~{warm} (now {}, {:.1} busy on average) so callers find one open",
                status.min_size, w.busy
            )
        } else {
            "min_size already covers the average load; check the network path and TLS set-up to the server".into()
        };
        add(
            FindingKind::SlowConnect,
            Severity::Info,
            format!(
                "opening a connection takes p99 {} (mean {}, {} opened in {window}, connect_timeout {}): {advice}",
                human(create_p99),
                human(w.create.mean()),
                w.created,
                human(w.now.connect_timeout)
            ),
        );
    }

    // Far too big: many open, few busy, nobody waits.
    let quiet = share(w.waited, w.checkouts) < 0.01 && w.timeouts == 0 && wait_p99 <= QUIET_WAIT;
    let needed = ((w.busy * 2.0).ceil() as usize).max(1);
    if quiet && w.checkouts > 0 && status.size >= 4 && status.size >= needed * 4 {
        let advice = if status.min_size > needed {
            format!(
                "lower min_size to ~{needed} (now {}) to give {} server connections back",
                status.min_size,
                status.size.saturating_sub(needed)
            )
        } else if w.now.idle_timeout.is_none() {
            "set idle_timeout so idle connections above min_size close".into()
        } else {
            format!(
                "idle connections close after idle_timeout {}; lower max_size toward ~{} if bursts allow",
                human(w.now.idle_timeout.unwrap_or_default()),
                needed * 2
            )
        };
        add(
            FindingKind::PoolOversized,
            Severity::Info,
            format!(
                "{:.1} of {} open connections busy on average ({busy_line}) and no caller waited in {window}: {advice}",
                w.busy, status.size
            ),
        );
    }
    out
}

fn list(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(5).map(u64::to_string).collect();
    let more = if ids.len() > 5 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A rate with thousands separators: 2400.2 → "2,400".
fn thousands(v: f64) -> String {
    if v < 10.0 {
        return format!("{v:.1}");
    }
    let digits = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: "850 µs", "4.9 ms", "120 ms", "1.2 s", "45 s".
fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1e-2 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_read_as_people_write_them() {
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
        assert_eq!(human(Duration::from_micros(4_900)), "4.9 ms");
        assert_eq!(human(Duration::from_millis(120)), "120 ms");
        assert_eq!(human(Duration::from_millis(1_200)), "1.2 s");
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(thousands(2_400.2), "2,400");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(2.5), "2.5");
    }
}
