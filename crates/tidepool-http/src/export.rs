//! Prometheus export under the OpenTelemetry semantic conventions for
//! database connection pools, read from the pools at scrape time: one
//! [`Collector`] walks the pools, and nothing is recorded twice on the
//! checkout path. The conventions' `db.client.connection.*` instruments
//! become `db_client_connection_*` (seconds histograms get `_seconds`,
//! counters `_total`); what they lack is under `tidepool_*`. Every series
//! carries `pool_name`. The exposition is prometheus-client's, never
//! written by hand.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tidepool::{BreakerState, Buckets, FailureKind, QueryKind, QueryStats};

use crate::pools::{Entry, Pools};

/// The `le` bounds of the exported histograms, in seconds: from 100 µs (a
/// checkout from a warm pool) to a minute (a connection opened through a
/// slow network), about three per decade.
pub const BUCKET_BOUNDS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// The window the exported health score covers.
const HEALTH_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct PoolCollector {
    pools: Arc<Pools>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

type Labels = Vec<(&'static str, String)>;

/// One pool's figures, read once per scrape.
struct Reading {
    /// The pool's name, as given (escaped in `labels`).
    name: String,
    labels: Labels,
    status: tidepool::Status,
    metrics: tidepool::Metrics,
    histograms: tidepool::Histograms,
    health_score: u8,
    load_factor: f64,
    /// The top shapes by total time, at most `Pools::query_limit`.
    queries: Vec<QueryStats>,
    /// Shapes the pool tracks (before the limit).
    shapes_tracked: usize,
    query_evictions: u64,
}

/// A label value as the exposition formats want it: backslash, double
/// quote and line feed escaped (prometheus-client writes values as given).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(name: &str, extra: &[(&'static str, &str)]) -> Labels {
    let mut l = vec![("pool_name", escape(name))];
    l.extend(extra.iter().map(|(k, v)| (*k, escape(v))));
    l
}

/// The longest normalized text exported in `tidepool_query_info`'s `query`
/// label, in bytes; longer texts are cut at a character boundary and end
/// in `…`. The full text (up to 2 KiB) is in `/pools/{name}`.
pub const QUERY_LABEL_MAX: usize = 200;

/// A shape's text for the `query` label: at most [`QUERY_LABEL_MAX`]
/// bytes, control characters as spaces.
pub(crate) fn query_label(text: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    if text.len() <= QUERY_LABEL_MAX {
        return clean(text);
    }
    let mut end = QUERY_LABEL_MAX - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", clean(&text[..end]))
}

/// A shape's id as exported: 16 lower-case hex digits.
pub(crate) fn query_id(id: u64) -> String {
    format!("{id:016x}")
}

fn kind_name(k: QueryKind) -> String {
    k.to_string()
}

/// The labels of one shape's series.
fn shape_labels(r: &Reading, q: &QueryStats, extra: &[(&'static str, &str)]) -> Labels {
    let mut l = r.labels.clone();
    l.push(("query_id", query_id(q.id)));
    l.push(("kind", kind_name(q.kind)));
    l.extend(extra.iter().map(|(k, v)| (*k, escape(v))));
    l
}

/// One series per exported shape.
fn per_shape<V>(r: &Reading, v: impl Fn(&QueryStats) -> V) -> Vec<(Labels, V)> {
    r.queries
        .iter()
        .map(|q| (shape_labels(r, q, &[]), v(q)))
        .collect()
}

impl PoolCollector {
    fn read(&self) -> Vec<Reading> {
        self.pools
            .entries()
            .iter()
            .map(|e| {
                let (now, _, report) = e.health(HEALTH_WINDOW);
                let mut queries = e.pool.queries();
                let shapes_tracked = queries.len();
                queries.truncate(self.pools.query_limit);
                Reading {
                    queries,
                    shapes_tracked,
                    query_evictions: e.pool.query_stats_evictions(),
                    name: e.name.clone(),
                    labels: labels(&e.name, &[]),
                    status: now.status(),
                    metrics: now.metrics().clone(),
                    histograms: now.histograms().clone(),
                    health_score: report.score,
                    load_factor: e.pool.load().load_factor,
                }
            })
            .collect()
    }
}

/// Writes one family: `value` for each pool, with extra label sets.
fn family<'a, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    readings: &'a [Reading],
    series: impl Fn(&'a Reading) -> Vec<(Labels, V)>,
) -> Result<(), std::fmt::Error>
where
    V: Value,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for r in readings {
        for (labels, v) in series(r) {
            let e = metric.encode_family(&labels)?;
            v.write(e)?;
        }
    }
    Ok(())
}

trait Value {
    fn write(
        self,
        e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error>;
}

struct Gauge(i64);
struct GaugeF(f64);
struct Counter(u64);
struct CounterF(f64);

impl Value for Gauge {
    fn write(
        self,
        mut e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        e.encode_gauge(&self.0)
    }
}
impl Value for GaugeF {
    fn write(
        self,
        mut e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        e.encode_gauge(&self.0)
    }
}
impl Value for Counter {
    fn write(
        self,
        mut e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        e.encode_counter::<NoLabelSet, u64, u64>(&self.0, None)
    }
}
impl Value for CounterF {
    fn write(
        self,
        mut e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        e.encode_counter::<NoLabelSet, f64, u64>(&self.0, None)
    }
}
impl Value for &Buckets {
    fn write(
        self,
        mut e: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let bounds: Vec<Duration> = BUCKET_BOUNDS
            .iter()
            .map(|s| Duration::from_secs_f64(*s))
            .collect();
        let cumulative = self.cumulative(&bounds);
        let count = self.count();
        // prometheus-client takes per-bucket counts and adds them up.
        let mut last = 0;
        let mut buckets: Vec<(f64, u64)> = BUCKET_BOUNDS
            .iter()
            .zip(&cumulative)
            .map(|(b, c)| {
                let n = c - last;
                last = *c;
                (*b, n)
            })
            .collect();
        buckets.push((f64::MAX, count - last));
        e.encode_histogram::<NoLabelSet>(self.sum().as_secs_f64(), count, &buckets, None)
    }
}

fn one<V>(r: &Reading, v: V) -> Vec<(Labels, V)> {
    vec![(r.labels.clone(), v)]
}

fn count(n: usize) -> Gauge {
    Gauge(i64::try_from(n).unwrap_or(i64::MAX))
}

fn breaker_name(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Healthy => "healthy",
        BreakerState::Degraded => "degraded",
        BreakerState::Failed => "open",
        _ => "half_open",
    }
}

/// The breaker states as labelled in `tidepool_breaker_state`.
pub const BREAKER_STATES: [&str; 4] = ["healthy", "degraded", "open", "half_open"];

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings = self.read();
        let r = readings.as_slice();
        let e = &mut encoder;

        // The OpenTelemetry conventions (db.client.connection.*).
        family(e, "db_client_connection_count", "Connections open now, by state (a connection being opened counts as used, so the states add up to the pool's size).", None, MetricType::Gauge, r, |r| {
            let s = &r.status;
            let name = &r.name;
            vec![
                (labels(name, &[("state", "idle")]), count(s.idle)),
                (labels(name, &[("state", "used")]), count(s.in_use + s.being_created)),
            ]
        })?;
        family(e, "db_client_connection_idle_max", "The most idle connections the pool keeps (tidepool caps idle connections only by max_size).", None, MetricType::Gauge, r, |r| one(r, count(r.status.max_size)))?;
        family(
            e,
            "db_client_connection_idle_min",
            "The fewest connections the pool keeps open (min_size).",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.min_size)),
        )?;
        family(
            e,
            "db_client_connection_max",
            "The most connections the pool may open (max_size).",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.max_size)),
        )?;
        family(
            e,
            "db_client_connection_pending_requests",
            "Callers waiting for a connection now.",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.waiting)),
        )?;
        family(
            e,
            "db_client_connection_timeouts",
            "Acquires that gave up at acquire_timeout.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.acquires_timed_out)),
        )?;
        let seconds = Unit::Seconds;
        family(
            e,
            "db_client_connection_create_time",
            "Time to open a connection.",
            Some(&seconds),
            MetricType::Histogram,
            r,
            |r| one(r, &r.histograms.create_time),
        )?;
        family(
            e,
            "db_client_connection_wait_time",
            "Time from asking for a connection to having one (its count is the checkouts).",
            Some(&seconds),
            MetricType::Histogram,
            r,
            |r| one(r, &r.histograms.acquire_wait),
        )?;
        family(e, "db_client_connection_use_time", "Time a connection was held by its user, from checkout to return (its count is the check-ins).", Some(&seconds), MetricType::Histogram, r, |r| one(r, &r.histograms.hold_time))?;

        // What the conventions lack.
        family(
            e,
            "tidepool_connections_pending_open",
            "Connections being opened now (counted as used in db_client_connection_count).",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.being_created)),
        )?;
        family(
            e,
            "tidepool_connections_created",
            "Connections opened.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.connections_created)),
        )?;
        family(e, "tidepool_connection_errors", "Connection attempts that failed (every FailureKind; by kind, with failures the application reported, in tidepool_failures_total).", None, MetricType::Counter, r, |r| one(r, Counter(r.metrics.connection_attempts_failed)))?;
        family(e, "tidepool_failures", "Failures by FailureKind since the pool was built: failed connection attempts (a timed-out one as timeout) and outcomes reported with Pool::report_failure; client failures never count against the database.", None, MetricType::Counter, r, |r| {
            let name = &r.name;
            FailureKind::ALL
                .iter()
                .map(|k| {
                    let n = r
                        .metrics
                        .failures_by_kind
                        .iter()
                        .find(|(kind, _)| kind == k)
                        .map_or(0, |(_, n)| *n);
                    (labels(name, &[("kind", k.as_str())]), Counter(n))
                })
                .collect()
        })?;
        family(
            e,
            "tidepool_connection_refusals_at_capacity",
            "Connection attempts the server refused for lack of room (too many connections); not failures: the pool holds at the server's ceiling instead.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.connection_attempts_refused_at_capacity)),
        )?;
        family(
            e,
            "tidepool_server_connection_ceiling",
            "The server's own connection limit as the pool learned it from too-many-connections refusals, while it holds the pool below max_size (absent otherwise).",
            None,
            MetricType::Gauge,
            r,
            |r| match r.status.server_ceiling {
                Some(n) => one(r, count(n)),
                None => Vec::new(),
            },
        )?;
        family(e, "tidepool_acquires_refused", "Acquires that failed at once, by reason: circuit_open (refused by an open circuit) or create_failed (opening a connection failed with an error retrying cannot fix). Timeouts are db_client_connection_timeouts_total.", None, MetricType::Counter, r, |r| {
            let name = &r.name;
            vec![
                (labels(name, &[("reason", "circuit_open")]), Counter(r.metrics.acquires_refused_circuit_open)),
                (labels(name, &[("reason", "create_failed")]), Counter(r.metrics.acquires_failed_at_once)),
            ]
        })?;
        family(e, "tidepool_affinity_checkouts", "Checkouts for a statement (Pool::get_for) that found idle connections, by outcome: hit (one had prepared the statement) or miss (none had).", None, MetricType::Counter, r, |r| {
            let name = &r.name;
            vec![
                (labels(name, &[("outcome", "hit")]), Counter(r.metrics.affinity_hits)),
                (labels(name, &[("outcome", "miss")]), Counter(r.metrics.affinity_misses)),
            ]
        })?;
        family(
            e,
            "tidepool_checkins",
            "Connections returned to the pool.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.checkins)),
        )?;
        family(
            e,
            "tidepool_connections_closed",
            "Connections closed, by reason.",
            None,
            MetricType::Counter,
            r,
            |r| {
                let m = &r.metrics;
                let name = &r.name;
                [
                    ("idle_timeout", m.connections_closed_idle_timeout),
                    ("max_lifetime", m.connections_closed_max_lifetime),
                    ("broken", m.connections_closed_broken),
                    ("failed_validation", m.connections_closed_failed_validation),
                    ("failed_reset", m.connections_closed_failed_reset),
                    ("pool_closed", m.connections_closed_pool_closed),
                    ("detached", m.connections_detached),
                    ("overflow", m.connections_closed_overflow),
                    ("resized", m.connections_closed_resized),
                ]
                .into_iter()
                .map(|(reason, n)| (labels(name, &[("reason", reason)]), Counter(n)))
                .collect()
            },
        )?;
        family(
            e,
            "tidepool_checkouts_waited",
            "Checkouts that had to wait for a connection.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.checkouts_waited)),
        )?;
        family(
            e,
            "tidepool_validations",
            "Validations run (on borrow and in the background).",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.validations)),
        )?;
        family(
            e,
            "tidepool_validation_failures",
            "Validations that failed (each closed its connection), by cause: the check returned an error, or did not answer within validation_timeout.",
            None,
            MetricType::Counter,
            r,
            |r| {
                let name = &r.name;
                vec![
                    (labels(name, &[("cause", "error")]), Counter(r.metrics.validations_failed)),
                    (labels(name, &[("cause", "timeout")]), Counter(r.metrics.validations_timed_out)),
                ]
            },
        )?;
        family(
            e,
            "tidepool_resets",
            "Returned connections that needed cleaning.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.resets)),
        )?;
        family(
            e,
            "tidepool_leaks_detected",
            "Checkouts held past leak_timeout.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.leaks_detected)),
        )?;
        family(
            e,
            "tidepool_slow_acquires",
            "Acquires slower than slow_acquire_threshold.",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.slow_acquires)),
        )?;
        family(
            e,
            "tidepool_acquires_held_while_open",
            "Acquires that found the circuit open and waited for it to close (hold_while_open).",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.acquires_held_while_open)),
        )?;
        family(e, "tidepool_breaker_state", "The circuit breaker's state: 1 for the current one (healthy, degraded, open, half_open), 0 for the others.", None, MetricType::Gauge, r, |r| {
            let state = r.metrics.breaker.as_ref().map_or("healthy", |b| breaker_name(b.state));
            let name = &r.name;
            BREAKER_STATES
                .iter()
                .map(|s| (labels(name, &[("state", s)]), Gauge(i64::from(*s == state))))
                .collect()
        })?;
        family(
            e,
            "tidepool_breaker_opened",
            "Times the circuit opened.",
            None,
            MetricType::Counter,
            r,
            |r| {
                one(
                    r,
                    Counter(r.metrics.breaker.as_ref().map_or(0, |b| b.times_opened)),
                )
            },
        )?;
        family(e, "tidepool_breaker_failures_in_window", "Failures counted against the database in the breaker's rolling window, by FailureKind.", None, MetricType::Gauge, r, |r| {
            let name = &r.name;
            FailureKind::ALL
                .iter()
                .filter(|k| k.counts_against_database())
                .map(|k| {
                    let n = r
                        .metrics
                        .breaker
                        .as_ref()
                        .and_then(|b| b.failures_in_window.iter().find(|(kind, _)| kind == k))
                        .map_or(0, |(_, n)| *n);
                    (labels(name, &[("kind", k.as_str())]), Gauge(i64::from(n)))
                })
                .collect()
        })?;
        family(
            e,
            "tidepool_warm_target",
            "Connections the pool keeps open and ready (moved by a scaling strategy; min_size otherwise).",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.warm_target)),
        )?;
        family(
            e,
            "tidepool_concurrency_limit",
            "Connections that may be out at once (moved by the adaptive concurrency limit; max_size otherwise); callers past it wait.",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.limit)),
        )?;
        family(
            e,
            "tidepool_overflow_connections",
            "Open connections above the warm target: opened for a burst, closed when it has passed.",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, count(r.status.overflow)),
        )?;
        family(
            e,
            "tidepool_load_factor",
            "Demand (connections busy plus callers queued) over max_size, capped at 1, over the last scaling window (read now when no scaling part is on).",
            None,
            MetricType::Gauge,
            r,
            |r| one(r, GaugeF(r.load_factor)),
        )?;
        family(
            e,
            "tidepool_scaling_adjustments",
            "Times the warm target or the concurrency limit moved, by direction (up, down).",
            None,
            MetricType::Counter,
            r,
            |r| {
                let name = &r.name;
                vec![
                    (
                        labels(name, &[("direction", "up")]),
                        Counter(r.metrics.scale_ups),
                    ),
                    (
                        labels(name, &[("direction", "down")]),
                        Counter(r.metrics.scale_downs),
                    ),
                ]
            },
        )?;
        family(
            e,
            "tidepool_adaptive_tunings",
            "Times adaptive configuration moved a knob (connect_timeout, validation_interval).",
            None,
            MetricType::Counter,
            r,
            |r| one(r, Counter(r.metrics.adaptive_tunings)),
        )?;
        family(e, "tidepool_health_score", "The pool's health score, 0-100, over about the last minute (see /health for its components and recommendations).", None, MetricType::Gauge, r, |r| one(r, GaugeF(f64::from(r.health_score))))?;
        queries(e, r, &seconds)?;
        clusters(e, &self.pools)?;
        Ok(())
    }
}

/// The query statistics: per shape, the top `Pools::query_limit` by total
/// time, labelled by `query_id` (the fingerprint) and `kind`; the
/// normalized text only in `tidepool_query_info`, cut to
/// [`QUERY_LABEL_MAX`].
fn queries(
    e: &mut DescriptorEncoder,
    r: &[Reading],
    seconds: &Unit,
) -> Result<(), std::fmt::Error> {
    family(e, "tidepool_query_shapes_tracked", "Statement shapes the pool keeps statistics for now (at most 512; the top tidepool_query_* series show the heaviest of them by total time).", None, MetricType::Gauge, r, |r| one(r, count(r.shapes_tracked)))?;
    family(e, "tidepool_query_shapes_evicted", "Shapes pushed out of the statistics table to make room for others (many distinct shapes: literals inlined where a parameter belongs).", None, MetricType::Counter, r, |r| one(r, Counter(r.query_evictions)))?;
    family(e, "tidepool_query_info", "One series per exported statement shape, value 1, carrying its normalized text (literals folded, never a parameter's value; cut to 200 bytes) in `query`: join on query_id.", None, MetricType::Gauge, r, |r| {
        r.queries
            .iter()
            .map(|q| (shape_labels(r, q, &[("query", &query_label(&q.text))]), Gauge(1)))
            .collect()
    })?;
    family(
        e,
        "tidepool_query_calls",
        "Statements run, per shape (counted from when the shape entered the statistics table).",
        None,
        MetricType::Counter,
        r,
        |r| per_shape(r, |q| Counter(q.count)),
    )?;
    family(
        e,
        "tidepool_query_errors",
        "Statements that failed or were abandoned (a timeout, a caller gone), per shape.",
        None,
        MetricType::Counter,
        r,
        |r| per_shape(r, |q| Counter(q.errors)),
    )?;
    family(
        e,
        "tidepool_query_rows",
        "Rows returned or affected by the successful statements, per shape.",
        None,
        MetricType::Counter,
        r,
        |r| per_shape(r, |q| Counter(q.rows)),
    )?;
    family(
        e,
        "tidepool_query_slow",
        "Statements slower than slow_query_threshold, per shape.",
        None,
        MetricType::Counter,
        r,
        |r| per_shape(r, |q| Counter(q.slow)),
    )?;
    family(e, "tidepool_query_time", "Time spent in the statements, per shape (rate over tidepool_query_calls_total is the mean).", Some(seconds), MetricType::Counter, r, |r| per_shape(r, |q| CounterF(q.total_time.as_secs_f64())))?;
    // Gauges with a `percentile` label: prometheus-client writes no
    // summaries, and promtool reserves the `quantile` label for them.
    family(e, "tidepool_query_time_percentile", "Percentiles of a statement's time per shape since it entered the table (upper bounds within 12.5%), by percentile (50, 95, 99).", Some(seconds), MetricType::Gauge, r, |r| {
        r.queries
            .iter()
            .flat_map(|q| {
                [("50", q.p50), ("95", q.p95), ("99", q.p99)].map(|(percentile, d)| {
                    (shape_labels(r, q, &[("percentile", percentile)]), GaugeF(d.as_secs_f64()))
                })
            })
            .collect()
    })?;
    Ok(())
}

/// The clusters' replicas: ban state and lag per replica (labelled by its
/// reader pool's `pool_name`, the `cluster` and the `replica`), and per
/// cluster (on the writer pool's `pool_name`) whether reads go to the
/// primary and how many it served for want of a replica.
fn clusters(e: &mut DescriptorEncoder, pools: &Pools) -> Result<(), std::fmt::Error> {
    struct Replica {
        labels: Labels,
        state: crate::cluster::ReplicaState,
    }
    let mut replicas = Vec::new();
    let mut writers = Vec::new();
    for c in &pools.clusters {
        let name = c.name();
        let state = c.state();
        let pools_by_replica = c.replicas();
        for r in state.replicas.iter().cloned() {
            let pool_name = pools_by_replica
                .iter()
                .find(|(n, _)| *n == r.name)
                .map_or_else(|| r.name.clone(), |(_, p)| p.name());
            replicas.push(Replica {
                labels: labels(&pool_name, &[("cluster", &name), ("replica", &r.name)]),
                state: r,
            });
        }
        writers.push((
            labels(&c.writer().name(), &[("cluster", &name)]),
            state.reads_on_primary,
            state.fallback_reads,
        ));
    }
    let mut m = e.encode_descriptor("tidepool_replica_banned", "Whether a replica is banned from reads, by reason (lag: replay too far behind; failing: connections or samples fail; not_a_replica: not in recovery; other): 1 for the current reason, 0 for the others (all 0 while it takes reads).", None, MetricType::Gauge)?;
    for r in &replicas {
        let current = r.state.banned.as_ref().map(crate::cluster::reason_label);
        for reason in crate::cluster::BAN_REASONS {
            let mut l = r.labels.clone();
            l.push(("reason", reason.to_string()));
            Gauge(i64::from(current == Some(reason))).write(m.encode_family(&l)?)?;
        }
    }
    let mut m = e.encode_descriptor("tidepool_replica_lag_bytes", "How far a replica's replay is behind the primary, in bytes of WAL, at the last sample (absent until sampled).", None, MetricType::Gauge)?;
    for r in &replicas {
        if let Some(lag) = r.state.lag_bytes {
            GaugeF(lag as f64).write(m.encode_family(&r.labels)?)?;
        }
    }
    let mut m = e.encode_descriptor(
        "tidepool_cluster_reads_on_primary",
        "1 while every replica is banned and reads go to the primary.",
        None,
        MetricType::Gauge,
    )?;
    for (l, on, _) in &writers {
        Gauge(i64::from(*on)).write(m.encode_family(l)?)?;
    }
    let mut m = e.encode_descriptor(
        "tidepool_cluster_fallback_reads",
        "Reads the primary served because no replica could take them.",
        None,
        MetricType::Counter,
    )?;
    for (l, _, n) in &writers {
        Counter(*n).write(m.encode_family(l)?)?;
    }
    Ok(())
}

/// The gauges added with [`Pools::gauge`], read at scrape time.
struct GaugeCollector {
    gauges: Vec<crate::pools::Gauge>,
}

impl std::fmt::Debug for GaugeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.gauges.iter().map(|g| &g.name))
            .finish()
    }
}

impl Collector for GaugeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for g in &self.gauges {
            let metric = encoder.encode_descriptor(&g.name, &g.help, None, MetricType::Gauge)?;
            if let Some(v) = (g.read)() {
                // Straight on the descriptor: a series without labels
                // (`name 1.0`, not `name{} 1.0`).
                GaugeF(v).write(metric)?;
            }
        }
        Ok(())
    }
}

/// A registry holding the collector over `pools`, and their extra gauges.
pub(crate) fn registry(pools: Arc<Pools>) -> Registry {
    let mut registry = Registry::default();
    let gauges = pools.gauges.clone();
    registry.register_collector(Box::new(PoolCollector { pools }));
    if !gauges.is_empty() {
        registry.register_collector(Box::new(GaugeCollector { gauges }));
    }
    registry
}

/// The names of the families the pools export (their `# TYPE` lines,
/// written for no pool at all).
pub(crate) fn pool_families() -> Vec<String> {
    let registry = registry(Arc::new(Pools::new()));
    let text = render(&registry).unwrap_or_default();
    let openmetrics = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string);
    // A counter family `x` is `x_total` in the classic format; both are taken.
    openmetrics
        .flat_map(|n| [format!("{n}_total"), n])
        .collect()
}

/// The exposition of `registry`, in the OpenMetrics text format.
pub(crate) fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

/// The content type of the OpenMetrics exposition, served to scrapers that
/// ask for it (Prometheus does).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the classic Prometheus text format, served to
/// everyone else (`curl`, `promtool check metrics`).
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// prometheus-client's OpenMetrics exposition in the classic text format
/// (0.0.4) that Prometheus 2's tools read: the two differ, for what is
/// exported here, only in that OpenMetrics names a counter family without
/// its `_total` (classic names it with), and in the `# UNIT` and `# EOF`
/// lines, which classic lacks. Samples are the same lines in both.
pub(crate) fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(prefix);
                out.push_str(name);
                out.push_str(suffix);
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
