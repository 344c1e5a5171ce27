//! The JSON shapes of `/pools` and `/health`: durations in milliseconds
//! (`*_ms`, floats), names in snake_case, nothing that could carry a
//! credential (pool names come from `Builder::name` or the manager's
//! redacted `describe()`, errors from drivers that never show passwords).

use std::time::Duration;

use serde::Serialize;
use tidepool::{
    Buckets, EffectiveConfig, HealthCheck, HealthReport, HealthSample, HistogramSnapshot, Load,
    Metrics, QueryStats, Status,
};

use crate::pools::Entry;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Percentiles of one latency, in milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    count: u64,
    mean_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: Option<f64>,
}

impl From<&HistogramSnapshot> for Latency {
    fn from(h: &HistogramSnapshot) -> Self {
        Latency {
            count: h.count,
            mean_ms: ms(h.mean),
            p50_ms: ms(h.p50),
            p95_ms: ms(h.p95),
            p99_ms: ms(h.p99),
            max_ms: Some(ms(h.max)),
        }
    }
}

impl From<&Buckets> for Latency {
    fn from(b: &Buckets) -> Self {
        Latency {
            count: b.count(),
            mean_ms: ms(b.mean()),
            p50_ms: ms(b.quantile(0.5)),
            p95_ms: ms(b.quantile(0.95)),
            p99_ms: ms(b.quantile(0.99)),
            max_ms: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Counters {
    checkouts: u64,
    checkouts_waited: u64,
    acquires_timed_out: u64,
    connections_created: u64,
    connection_attempts_failed: u64,
    connection_attempts_refused_at_capacity: u64,
    acquires_refused_circuit_open: u64,
    acquires_failed_at_once: u64,
    checkins: u64,
    affinity_hits: u64,
    affinity_misses: u64,
    validations: u64,
    validations_failed: u64,
    validations_timed_out: u64,
    resets: u64,
    leaks_detected: u64,
    slow_acquires: u64,
    acquires_held_while_open: u64,
    scale_ups: u64,
    scale_downs: u64,
    adaptive_tunings: u64,
    /// Since the pool was built, by `FailureKind` (every kind listed).
    failures_by_kind: std::collections::BTreeMap<&'static str, u64>,
    closed: Closed,
}

#[derive(Debug, Serialize)]
struct Closed {
    idle_timeout: u64,
    max_lifetime: u64,
    broken: u64,
    failed_validation: u64,
    failed_reset: u64,
    pool_closed: u64,
    detached: u64,
    overflow: u64,
    resized: u64,
}

impl From<&Metrics> for Counters {
    fn from(m: &Metrics) -> Self {
        Counters {
            checkouts: m.checkouts,
            checkouts_waited: m.checkouts_waited,
            acquires_timed_out: m.acquires_timed_out,
            connections_created: m.connections_created,
            connection_attempts_failed: m.connection_attempts_failed,
            connection_attempts_refused_at_capacity: m.connection_attempts_refused_at_capacity,
            acquires_refused_circuit_open: m.acquires_refused_circuit_open,
            acquires_failed_at_once: m.acquires_failed_at_once,
            checkins: m.checkins,
            affinity_hits: m.affinity_hits,
            affinity_misses: m.affinity_misses,
            validations: m.validations,
            validations_failed: m.validations_failed,
            validations_timed_out: m.validations_timed_out,
            resets: m.resets,
            leaks_detected: m.leaks_detected,
            slow_acquires: m.slow_acquires,
            acquires_held_while_open: m.acquires_held_while_open,
            scale_ups: m.scale_ups,
            scale_downs: m.scale_downs,
            adaptive_tunings: m.adaptive_tunings,
            failures_by_kind: tidepool::FailureKind::ALL
                .iter()
                .map(|k| {
                    let n = m
                        .failures_by_kind
                        .iter()
                        .find(|(kind, _)| kind == k)
                        .map_or(0, |(_, n)| *n);
                    (k.as_str(), n)
                })
                .collect(),
            closed: Closed {
                idle_timeout: m.connections_closed_idle_timeout,
                max_lifetime: m.connections_closed_max_lifetime,
                broken: m.connections_closed_broken,
                failed_validation: m.connections_closed_failed_validation,
                failed_reset: m.connections_closed_failed_reset,
                pool_closed: m.connections_closed_pool_closed,
                detached: m.connections_detached,
                overflow: m.connections_closed_overflow,
                resized: m.connections_closed_resized,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Breaker {
    state: &'static str,
    failures_in_window: std::collections::BTreeMap<&'static str, u32>,
    times_opened: u64,
    last_transition: Option<Transition>,
    last_error: Option<String>,
    /// How long ago the last failure that counted was.
    since_last_failure_ms: Option<f64>,
    /// Each kind's thresholds within the window (`degrade`, `open`).
    thresholds: std::collections::BTreeMap<&'static str, tidepool::Thresholds>,
}

#[derive(Debug, Serialize)]
struct Transition {
    from: &'static str,
    to: &'static str,
    ago_ms: f64,
}

fn state_name(s: tidepool::BreakerState) -> &'static str {
    match s {
        tidepool::BreakerState::Healthy => "healthy",
        tidepool::BreakerState::Degraded => "degraded",
        tidepool::BreakerState::Failed => "open",
        _ => "half_open",
    }
}

impl Breaker {
    fn of(m: &Metrics) -> Breaker {
        match &m.breaker {
            None => Breaker {
                state: "healthy",
                failures_in_window: Default::default(),
                times_opened: 0,
                last_transition: None,
                last_error: None,
                since_last_failure_ms: None,
                thresholds: Default::default(),
            },
            Some(b) => Breaker {
                state: state_name(b.state),
                failures_in_window: b
                    .failures_in_window
                    .iter()
                    .filter(|(k, _)| k.counts_against_database())
                    .map(|(k, n)| (k.as_str(), *n))
                    .collect(),
                times_opened: b.times_opened,
                last_transition: b.last_transition.map(|(from, to, ago)| Transition {
                    from: state_name(from),
                    to: state_name(to),
                    ago_ms: ms(ago),
                }),
                last_error: b.last_error.clone(),
                since_last_failure_ms: b.since_last_failure.map(ms),
                thresholds: b.thresholds.iter().map(|(k, t)| (k.as_str(), *t)).collect(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct Connection {
    id: u64,
    in_use: bool,
    age_ms: f64,
    idle_for_ms: f64,
    times_used: u64,
    last_validated_ms: Option<f64>,
    /// How long its holder has had it (absent when idle, or when leak
    /// detection is off and checkout times are not kept).
    held_for_ms: Option<f64>,
    /// Queries run on it through the pool's query face.
    query_count: u64,
    /// Their mean time.
    avg_query_ms: f64,
}

/// The figures of the window between two readings.
#[derive(Debug, Serialize)]
pub(crate) struct Window {
    secs: f64,
    checkouts: u64,
    checkouts_per_sec: f64,
    timeouts: u64,
    /// Acquires failed at once: refused by an open circuit, or a create
    /// error retrying cannot fix.
    acquires_refused: u64,
    connection_errors: u64,
    acquire_wait: Latency,
    hold_time: Latency,
    create_time: Latency,
}

fn window(now: &HealthSample, earlier: Option<&HealthSample>) -> Window {
    let empty = HealthSample::clone(now);
    let (before, secs) = match earlier {
        Some(e) => (e, e.age().saturating_sub(now.age()).as_secs_f64()),
        None => (&empty, 0.0),
    };
    let (a, b) = (before.metrics(), now.metrics());
    let (ha, hb) = (before.histograms(), now.histograms());
    let checkouts = b.checkouts.saturating_sub(a.checkouts);
    Window {
        secs,
        checkouts,
        checkouts_per_sec: if secs > 0.0 {
            checkouts as f64 / secs
        } else {
            0.0
        },
        timeouts: b.acquires_timed_out.saturating_sub(a.acquires_timed_out),
        acquires_refused: (b.acquires_refused_circuit_open + b.acquires_failed_at_once)
            .saturating_sub(a.acquires_refused_circuit_open + a.acquires_failed_at_once),
        connection_errors: b
            .connection_attempts_failed
            .saturating_sub(a.connection_attempts_failed),
        acquire_wait: (&hb.acquire_wait.since(&ha.acquire_wait)).into(),
        hold_time: (&hb.hold_time.since(&ha.hold_time)).into(),
        create_time: (&hb.create_time.since(&ha.create_time)).into(),
    }
}

/// One pool, as `/pools` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct PoolReport {
    name: String,
    closed: bool,
    status: Status,
    breaker: Breaker,
    counters: Counters,
    /// Since the pool was built.
    latency: LatencySet,
    /// Over the requested window.
    window: Window,
    health: HealthReport,
    /// Over the last scaling window (read now when no scaling part is on).
    load: LoadJson,
    effective_config: Effective,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<Vec<Connection>>,
    queries: Queries,
    /// The cluster the pool belongs to, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterJson>,
}

/// A cluster, as one of its pools shows it.
#[derive(Debug, Serialize)]
struct ClusterJson {
    name: String,
    /// `writer` or `replica`.
    role: &'static str,
    /// Whether reads go to the primary because every replica is out.
    reads_on_primary: bool,
    /// Reads the primary served for want of a replica.
    fallback_reads: u64,
    /// Said while every replica is banned.
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<String>,
    /// This pool's replica (reader pools).
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<ReplicaJson>,
    /// Every replica (the writer pool).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    replicas: Vec<ReplicaJson>,
}

#[derive(Debug, Serialize)]
struct ReplicaJson {
    name: String,
    banned: bool,
    /// `lag`, `failing`, `not_a_replica` or `other`, while banned.
    reason: Option<&'static str>,
    /// The ban in words.
    detail: Option<String>,
    lag_bytes: Option<u64>,
    replay_position: Option<String>,
}

impl From<&crate::cluster::ReplicaState> for ReplicaJson {
    fn from(r: &crate::cluster::ReplicaState) -> Self {
        ReplicaJson {
            name: r.name.clone(),
            banned: r.banned.is_some(),
            reason: r.banned.as_ref().map(crate::cluster::reason_label),
            detail: r.banned.as_ref().map(|b| b.detail.clone()),
            lag_bytes: r.lag_bytes,
            replay_position: r.replay_position.clone(),
        }
    }
}

fn cluster(link: &crate::pools::ClusterLink) -> ClusterJson {
    let state = link.cluster.state();
    let notice = state.reads_on_primary.then(|| {
        format!(
            "every replica is banned ({}): reads go to the primary",
            state
                .replicas
                .iter()
                .map(|r| {
                    let why = r.banned.as_ref().map_or("", |b| b.detail.as_str());
                    format!("{}: {why}", r.name)
                })
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    let (role, replica, replicas) = match &link.replica {
        Some(name) => (
            "replica",
            state
                .replicas
                .iter()
                .find(|r| &r.name == name)
                .map(ReplicaJson::from),
            Vec::new(),
        ),
        None => (
            "writer",
            None,
            state.replicas.iter().map(ReplicaJson::from).collect(),
        ),
    };
    ClusterJson {
        name: link.cluster.name(),
        role,
        reads_on_primary: state.reads_on_primary,
        fallback_reads: state.fallback_reads,
        notice,
        replica,
        replicas,
    }
}

/// The pool's query statistics: the top shapes by total time.
#[derive(Debug, Serialize)]
struct Queries {
    /// Shapes tracked now (the table keeps at most 512).
    shapes_tracked: usize,
    /// Shapes pushed out to make room for others.
    shapes_evicted: u64,
    /// How many of the top shapes are listed (`Pools::query_limit`).
    limit: usize,
    top: Vec<QueryJson>,
}

/// One statement shape. `text` is the normalized text (literals folded):
/// never a parameter's value.
#[derive(Debug, Serialize)]
struct QueryJson {
    id: String,
    kind: String,
    text: String,
    count: u64,
    errors: u64,
    rows: u64,
    slow: u64,
    total_ms: f64,
    total_error_ms: f64,
    mean_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl From<&QueryStats> for QueryJson {
    fn from(q: &QueryStats) -> Self {
        QueryJson {
            id: crate::export::query_id(q.id),
            kind: q.kind.to_string(),
            text: q.text.to_string(),
            count: q.count,
            errors: q.errors,
            rows: q.rows,
            slow: q.slow,
            total_ms: ms(q.total_time),
            total_error_ms: ms(q.total_time_error),
            mean_ms: ms(q.mean),
            p50_ms: ms(q.p50),
            p95_ms: ms(q.p95),
            p99_ms: ms(q.p99),
            max_ms: ms(q.max),
        }
    }
}

fn queries(entry: &Entry, limit: usize) -> Queries {
    let all = entry.pool.queries();
    Queries {
        shapes_tracked: all.len(),
        shapes_evicted: entry.pool.query_stats_evictions(),
        limit,
        top: all.iter().take(limit).map(QueryJson::from).collect(),
    }
}

/// [`Load`] with durations in milliseconds.
#[derive(Debug, Serialize)]
struct LoadJson {
    window_ms: f64,
    load_factor: f64,
    busy: f64,
    queued: f64,
    utilization: f64,
    utilization_of_max: f64,
    arrival_rate_per_sec: f64,
    acquire_wait_p50_ms: f64,
    acquire_wait_p99_ms: f64,
    hold_time_mean_ms: f64,
    hold_time_p99_ms: f64,
    create_time_p99_ms: f64,
    create_errors_per_sec: f64,
    timeouts_per_sec: f64,
}

impl From<&Load> for LoadJson {
    fn from(l: &Load) -> Self {
        LoadJson {
            window_ms: ms(l.window),
            load_factor: l.load_factor,
            busy: l.busy,
            queued: l.queued,
            utilization: l.utilization,
            utilization_of_max: l.utilization_of_max,
            arrival_rate_per_sec: l.arrival_rate,
            acquire_wait_p50_ms: ms(l.acquire_wait_p50),
            acquire_wait_p99_ms: ms(l.acquire_wait_p99),
            hold_time_mean_ms: ms(l.hold_time_mean),
            hold_time_p99_ms: ms(l.hold_time_p99),
            create_time_p99_ms: ms(l.create_time_p99),
            create_errors_per_sec: l.create_errors_per_second,
            timeouts_per_sec: l.timeouts_per_second,
        }
    }
}

/// A setting as configured and as the pool runs with it now.
#[derive(Debug, Serialize)]
struct Pair<T> {
    configured: T,
    now: T,
}

/// [`EffectiveConfig`] with durations in milliseconds.
#[derive(Debug, Serialize)]
struct Effective {
    strategy: &'static str,
    min_size: usize,
    max_size: usize,
    warm_target: usize,
    limit: usize,
    connect_timeout_ms: Pair<f64>,
    validation_interval_ms: Pair<f64>,
    leak_timeout_ms: Option<f64>,
    /// What the hold times suggest (the configured one is what is used).
    leak_timeout_suggested_ms: f64,
    idle_timeout_ms: Option<f64>,
    overflow_idle_timeout_ms: Option<f64>,
    predictor: tidepool::PredictorState,
    forecast: Option<f64>,
    forecast_error: Option<f64>,
}

impl From<&EffectiveConfig> for Effective {
    fn from(c: &EffectiveConfig) -> Self {
        Effective {
            strategy: c.strategy.as_str(),
            min_size: c.min_size,
            max_size: c.max_size,
            warm_target: c.warm_target,
            limit: c.limit,
            connect_timeout_ms: Pair {
                configured: ms(c.connect_timeout.0),
                now: ms(c.connect_timeout.1),
            },
            validation_interval_ms: Pair {
                configured: ms(c.validation_interval.0),
                now: ms(c.validation_interval.1),
            },
            leak_timeout_ms: c.leak_timeout.0.map(ms),
            leak_timeout_suggested_ms: ms(c.leak_timeout.1),
            idle_timeout_ms: c.idle_timeout.0.map(ms),
            overflow_idle_timeout_ms: c.idle_timeout.1.map(ms),
            predictor: c.predictor,
            forecast: c.forecast,
            forecast_error: c.forecast_error,
        }
    }
}

#[derive(Debug, Serialize)]
struct LatencySet {
    acquire_wait: Latency,
    hold_time: Latency,
    create_time: Latency,
}

impl PoolReport {
    pub(crate) fn of(
        entry: &Entry,
        span: Duration,
        with_connections: bool,
        query_limit: usize,
    ) -> PoolReport {
        let (now, earlier, health) = entry.health(span);
        let m = now.metrics();
        PoolReport {
            name: entry.name.clone(),
            closed: entry.pool.is_closed(),
            status: now.status(),
            breaker: Breaker::of(m),
            counters: m.into(),
            latency: LatencySet {
                acquire_wait: (&m.acquire_wait).into(),
                hold_time: (&m.hold_time).into(),
                create_time: (&m.create_time).into(),
            },
            window: window(&now, earlier.as_ref()),
            health,
            load: (&entry.pool.load()).into(),
            effective_config: (&entry.pool.effective_config()).into(),
            connections: with_connections.then(|| {
                m.connections
                    .iter()
                    .map(|c| Connection {
                        id: c.id,
                        in_use: c.in_use,
                        age_ms: ms(c.age),
                        idle_for_ms: ms(c.idle_for),
                        times_used: c.times_used,
                        last_validated_ms: c.last_validated.map(ms),
                        held_for_ms: c.held_for.map(ms),
                        query_count: c.query_count,
                        avg_query_ms: ms(c.avg_query_time),
                    })
                    .collect()
            }),
            queries: queries(entry, query_limit),
            cluster: entry.cluster.as_ref().map(cluster),
        }
    }
}

/// One pool, as `/health` shows it.
#[derive(Debug, Serialize)]
pub(crate) struct PoolHealth {
    pub name: String,
    #[serde(flatten)]
    pub report: HealthReport,
}

/// `/health`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct HealthBody {
    pub status: &'static str,
    /// The lowest score of the pools.
    pub score: u8,
    pub pools: Vec<PoolHealth>,
}

/// `/health/ready`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct ReadyBody {
    pub ready: bool,
    /// Why not, one line per pool that is not ready.
    pub not_ready: Vec<String>,
}

/// Every error body: what was wrong, and what is known.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_pools: Option<Vec<String>>,
}

/// `POST /pools/{name}/check`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct CheckBody {
    pub name: String,
    /// Idle connections pinged.
    pub checked: usize,
    /// Of those, how many failed and were closed.
    pub failed: usize,
    pub took_ms: f64,
    /// Health since the pool was built, after the check.
    pub health: HealthReport,
}

impl CheckBody {
    pub(crate) fn of(name: String, check: HealthCheck, took: Duration) -> CheckBody {
        CheckBody {
            name,
            checked: check.checked,
            failed: check.failed,
            took_ms: ms(took),
            health: check.report,
        }
    }
}
