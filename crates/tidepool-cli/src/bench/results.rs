//! The figures a benchmark produces: one [`RunResult`] per configuration,
//! level and repeat, merged into one [`LevelSummary`] per level, all inside
//! a [`BenchReport`] that serializes to the `--json` file. Only measured
//! figures: nothing here is extrapolated.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::settings::Mix;
use crate::target::Dialect;
use crate::workload::Seeded;

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// A histogram of microseconds from 1 µs to 1 h at 3 significant digits.
/// The bounds are constants hdrhistogram accepts (low >= 1, high >= 2 *
/// low, sigfig <= 5), so no input makes this fail; callers make one and
/// clone it, which copies the configuration.
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
}

/// Records a duration, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.max(1));
}

/// One sample of the pool and the load, taken during a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the run started (warm-up included).
    pub t_s: f64,
    pub size: usize,
    pub in_use: usize,
    pub idle: usize,
    pub waiting: usize,
    /// Connections the pool keeps open and ready (moves with a scaling
    /// strategy; `min_size` otherwise).
    pub warm_target: usize,
    /// Connections that may be out at once (moves with the adaptive
    /// concurrency limit; `max_size` otherwise).
    pub limit: usize,
    /// Client tasks the load shape had active.
    pub clients: u32,
    /// Operations completed per second since the previous sample.
    pub ops_per_s: f64,
    /// Mean and longest acquire wait since the previous sample.
    pub acquire_wait_mean_ms: f64,
    pub acquire_wait_max_ms: f64,
}

/// What the pool itself counted during a run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PoolCounters {
    pub checkouts: u64,
    pub checkouts_waited: u64,
    pub acquires_timed_out: u64,
    pub connections_created: u64,
    pub connections_closed: u64,
    pub validations: u64,
    pub resets: u64,
    pub leaks_detected: u64,
}

impl PoolCounters {
    pub fn of(m: &tidepool::Metrics) -> Self {
        PoolCounters {
            checkouts: m.checkouts,
            checkouts_waited: m.checkouts_waited,
            acquires_timed_out: m.acquires_timed_out,
            connections_created: m.connections_created,
            connections_closed: m.connections_closed_idle_timeout
                + m.connections_closed_max_lifetime
                + m.connections_closed_broken
                + m.connections_closed_failed_validation
                + m.connections_closed_failed_reset
                + m.connections_closed_pool_closed
                + m.connections_detached,
            validations: m.validations,
            resets: m.resets,
            leaks_detected: m.leaks_detected,
        }
    }
}

/// One configuration at one concurrency level, one repeat.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub configuration: String,
    pub concurrency: u32,
    pub repeat: u32,
    /// Cut short by Ctrl-C.
    pub interrupted: bool,
    pub warmup_s: f64,
    /// Seconds actually measured (shorter than asked when interrupted).
    pub measured_s: f64,
    /// Operations completed without error in the measured window.
    pub ops: u64,
    pub throughput_ops_s: f64,
    /// From asking the pool for a connection to the end of the operation.
    pub latency: Latency,
    /// Time spent in `pool.get()`.
    pub acquire_wait: Latency,
    /// Failed operations by `tidepool::FailureKind`.
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
    /// Successful operations by kind.
    pub ops_by_kind: BTreeMap<String, u64>,
    /// The pool's own counters for the run (warm-up included).
    pub pool: PoolCounters,
    pub pool_min_size: u32,
    pub pool_max_size: u32,
    pub timeline: Vec<Sample>,
    #[serde(skip)]
    pub latency_hist: Option<Histogram<u64>>,
    #[serde(skip)]
    pub acquire_hist: Option<Histogram<u64>>,
}

/// All runs of one configuration at one level, merged.
#[derive(Debug, Clone, Serialize)]
pub struct Aggregate {
    pub runs: u32,
    pub ops: u64,
    pub measured_s: f64,
    pub throughput_ops_s: f64,
    /// Lowest and highest throughput among the repeats.
    pub throughput_range: (f64, f64),
    pub latency: Latency,
    pub acquire_wait: Latency,
    pub errors: BTreeMap<String, u64>,
    pub error_rate: f64,
    /// Smallest and largest pool size sampled.
    pub pool_size_range: (usize, usize),
    /// The warm target sampled: lowest, mean, highest.
    pub warm_target: (usize, f64, usize),
    /// The concurrency limit sampled: lowest, mean, highest.
    pub limit: (usize, f64, usize),
    pub interrupted: bool,
}

/// Tuned divided by baseline: above 1 is better for throughput, below 1
/// is better for the latencies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    pub throughput: f64,
    pub p50_latency: f64,
    pub p99_latency: f64,
}

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelSummary {
    pub concurrency: u32,
    pub baseline: Option<Aggregate>,
    pub tuned: Option<Aggregate>,
    /// Present when both configurations were measured.
    pub tuned_over_baseline: Option<Ratio>,
}

/// A configuration as run.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigurationInfo {
    pub name: String,
    pub description: String,
    /// The pool configuration per level (it depends on the level for the
    /// default tuned configuration).
    pub by_level: BTreeMap<u32, tidepool::Config>,
}

/// Everything `tidepool bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub tool: String,
    pub version: String,
    pub started_unix_s: u64,
    pub target: String,
    pub dialect: Dialect,
    pub server_version: Option<String>,
    pub temporary_database: bool,
    pub seed: Seeded,
    pub concurrency: Vec<u32>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub repeat: u32,
    pub mix: Mix,
    /// How the client count moved over each run.
    pub shape: crate::settings::Shape,
    pub acquire_timeout_s: f64,
    pub cpus: usize,
    pub configurations: Vec<ConfigurationInfo>,
    pub levels: Vec<LevelSummary>,
    pub runs: Vec<RunResult>,
    pub interrupted: bool,
    /// Who won at each level, by how much and why, and what to try next
    /// (see [`super::verdict`]).
    pub conclusion: Option<super::verdict::Verdict>,
}

impl BenchReport {
    /// The database's product name.
    pub fn dialect_name(&self) -> &'static str {
        self.dialect.name()
    }
}

fn aggregate(runs: &[&RunResult]) -> Option<Aggregate> {
    let first = runs.first()?;
    let mut lat = new_histogram().ok()?;
    let mut acq = lat.clone();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (mut ops, mut secs) = (0u64, 0f64);
    let mut tmin = f64::INFINITY;
    let mut tmax: f64 = 0.0;
    let (mut smin, mut smax) = (usize::MAX, 0usize);
    let (mut warm, mut limit) = (Vec::new(), Vec::new());
    for r in runs {
        if let Some(h) = &r.latency_hist {
            let _ = lat.add(h);
        }
        if let Some(h) = &r.acquire_hist {
            let _ = acq.add(h);
        }
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
        ops += r.ops;
        secs += r.measured_s;
        tmin = tmin.min(r.throughput_ops_s);
        tmax = tmax.max(r.throughput_ops_s);
        for s in &r.timeline {
            smin = smin.min(s.size);
            smax = smax.max(s.size);
            warm.push(s.warm_target);
            limit.push(s.limit);
        }
    }
    let failed: u64 = errors.values().sum();
    Some(Aggregate {
        runs: runs.len() as u32,
        ops,
        measured_s: secs,
        throughput_ops_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        throughput_range: (tmin, tmax),
        latency: Latency::of(&lat),
        acquire_wait: Latency::of(&acq),
        error_rate: if ops + failed > 0 {
            failed as f64 / (ops + failed) as f64
        } else {
            0.0
        },
        errors,
        pool_size_range: if smin == usize::MAX {
            (0, 0)
        } else {
            (smin, smax)
        },
        warm_target: spread(&warm),
        limit: spread(&limit),
        interrupted: first.interrupted || runs.iter().any(|r| r.interrupted),
    })
}

/// Lowest, mean and highest of sampled values; zeros when none.
fn spread(values: &[usize]) -> (usize, f64, usize) {
    let (Some(lo), Some(hi)) = (values.iter().min(), values.iter().max()) else {
        return (0, 0.0, 0);
    };
    let mean = values.iter().sum::<usize>() as f64 / values.len() as f64;
    (*lo, mean, *hi)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Merges runs into one summary per level, in the order the levels were given.
pub fn summarize(levels: &[u32], runs: &[RunResult]) -> Vec<LevelSummary> {
    levels
        .iter()
        .filter_map(|&level| {
            let pick = |name: &str| -> Vec<&RunResult> {
                runs.iter()
                    .filter(|r| r.concurrency == level && r.configuration == name)
                    .collect()
            };
            let baseline = aggregate(&pick("baseline"));
            let tuned = aggregate(&pick("tuned"));
            if baseline.is_none() && tuned.is_none() {
                return None;
            }
            let tuned_over_baseline = match (&baseline, &tuned) {
                (Some(b), Some(t)) => Some(Ratio {
                    throughput: ratio(t.throughput_ops_s, b.throughput_ops_s),
                    p50_latency: ratio(t.latency.p50_ms, b.latency.p50_ms),
                    p99_latency: ratio(t.latency.p99_ms, b.latency.p99_ms),
                }),
                _ => None,
            };
            Some(LevelSummary {
                concurrency: level,
                baseline,
                tuned,
                tuned_over_baseline,
            })
        })
        .collect()
}
