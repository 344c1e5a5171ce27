//! Runs one pool through one load shape: as many client tasks as the shape
//! ever needs, each active while its index is below the shape's client
//! count at that instant (closed loop: get → query → drop, then an
//! exponentially distributed think time), a sampler that reads the pool's
//! gauge every 50 ms (connection-seconds are its integral), and
//! histograms of acquire wait and whole-cycle latency.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;

use super::pools::{build, Decision, Gauge, ShapePool, Variant};

const MAX_NS: u64 = 60_000_000_000;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// How many clients are active at each instant.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub enum Schedule {
    /// `low` → `high` linearly over `up`, then back to `low` over `down`;
    /// measured throughout.
    Ramp {
        /// Clients at the start and the end.
        low: usize,
        /// Clients at the peak.
        high: usize,
        /// Time to climb.
        up: Duration,
        /// Time to descend.
        down: Duration,
    },
    /// `low` for `half`, `high` for `half`, … for `total`; measured
    /// throughout.
    Square {
        /// Clients between bursts.
        low: usize,
        /// Clients in a burst.
        high: usize,
        /// Length of each half-period.
        half: Duration,
        /// The whole run.
        total: Duration,
    },
    /// `clients` throughout; measured after `warmup`.
    Steady {
        /// Clients.
        clients: usize,
        /// Unmeasured time first.
        warmup: Duration,
        /// The measured window.
        window: Duration,
    },
}

impl Schedule {
    /// Active clients `t` into the run.
    pub fn clients_at(&self, t: Duration) -> usize {
        match *self {
            Schedule::Ramp {
                low,
                high,
                up,
                down,
            } => {
                let span = (high - low) as f64;
                if t < up {
                    low + (span * t.as_secs_f64() / up.as_secs_f64()).round() as usize
                } else {
                    let back = (t - up).as_secs_f64() / down.as_secs_f64();
                    high - (span * back.min(1.0)).round() as usize
                }
            }
            Schedule::Square {
                low, high, half, ..
            } => {
                if (t.as_nanos() / half.as_nanos().max(1)).is_multiple_of(2) {
                    low
                } else {
                    high
                }
            }
            Schedule::Steady { clients, .. } => clients,
        }
    }

    /// The most clients ever active.
    pub fn max_clients(&self) -> usize {
        match *self {
            Schedule::Ramp { high, .. } | Schedule::Square { high, .. } => high,
            Schedule::Steady { clients, .. } => clients,
        }
    }

    /// When measurement starts.
    pub fn measure_from(&self) -> Duration {
        match *self {
            Schedule::Steady { warmup, .. } => warmup,
            _ => Duration::ZERO,
        }
    }

    /// The whole run.
    pub fn total(&self) -> Duration {
        match *self {
            Schedule::Ramp { up, down, .. } => up + down,
            Schedule::Square { total, .. } => total,
            Schedule::Steady { warmup, window, .. } => warmup + window,
        }
    }
}

/// What each active client runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Work {
    /// The statement (prepared once per connection).
    pub sql: String,
    /// `Some(n)`: one `int4` parameter, uniform in `1..=n`.
    pub random_param: Option<i32>,
    /// Mean think time between cycles (exponential); zero for none.
    pub think: Duration,
}

/// One gauge reading.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Tick {
    /// Seconds into the run.
    pub at_s: f64,
    /// Clients active.
    pub clients: usize,
    /// The pool.
    pub gauge: Gauge,
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShapeRun {
    /// The pool configuration.
    pub variant: String,
    /// Which repeat (0-based).
    pub repeat: usize,
    /// Cycles started in the measured part that completed.
    pub cycles: u64,
    /// `cycles` ÷ the measured part's length.
    pub throughput: f64,
    /// Failed cycles.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Acquire wait, µs: median, 99th, 99.9th percentile, worst.
    pub wait_us: [f64; 4],
    /// Acquires that waited 10 ms or more (a connection being opened).
    pub slow_waits: u64,
    /// Whole cycle (wait + query + return), µs: median, 99th percentile.
    pub cycle_us: [f64; 2],
    /// ∫ open connections dt over the measured part.
    pub connection_seconds: f64,
    /// Connections opened during the measured part.
    pub opened: u64,
    /// Most connections open at once.
    pub peak_size: usize,
    /// The gauge every 50 ms.
    pub timeline: Vec<Tick>,
    /// tidepool's scaling decisions.
    pub decisions: Vec<Decision>,
}

struct ClientOut {
    wait: Histogram<u64>,
    total: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Builds `variant`, runs `schedule` of `work` against it on a fresh
/// two-worker runtime, closes it.
pub fn run(
    variant: &Variant,
    url: &str,
    delay: Duration,
    schedule: Schedule,
    work: &Work,
    repeat: usize,
) -> Result<ShapeRun, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))?;
    rt.block_on(async {
        let built = build(variant, url, delay)
            .await
            .map_err(|e| format!("could not build {}: {e}", variant.name))?;
        let start = Instant::now();
        *built.started.lock() = start;
        built.decisions.lock().clear();
        let opened_before = built.opens.opened.load(Relaxed);
        let opened_at_measure = Arc::new(AtomicU64::new(opened_before));
        let work = Arc::new(work.clone());
        let clients: Vec<_> = (0..schedule.max_clients())
            .map(|i| {
                tokio::spawn(client(
                    built.pool.clone(),
                    i,
                    schedule,
                    work.clone(),
                    start,
                    0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
                ))
            })
            .collect();
        let sampler = {
            let (pool, opens, at_measure) = (
                built.pool.clone(),
                built.opens.clone(),
                opened_at_measure.clone(),
            );
            tokio::spawn(sample(pool, schedule, start, opens, at_measure))
        };
        let mut wait =
            Histogram::<u64>::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?;
        let mut total = wait.clone();
        let (mut errors, mut first_error) = (0, None);
        for c in clients {
            let out = c
                .await
                .map_err(|e| format!("a client task failed: {e}"))??;
            wait.add(&out.wait).map_err(|e| e.to_string())?;
            total.add(&out.total).map_err(|e| e.to_string())?;
            errors += out.errors;
            if first_error.is_none() {
                first_error = out.first_error;
            }
        }
        let (timeline, connection_seconds) = sampler
            .await
            .map_err(|e| format!("the sampler failed: {e}"))?;
        let opened = built.opens.opened.load(Relaxed) - opened_at_measure.load(Relaxed);
        built.pool.close().await;
        let decisions = std::mem::take(&mut *built.decisions.lock());
        let measured = (schedule.total() - schedule.measure_from()).as_secs_f64();
        let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1e3;
        Ok(ShapeRun {
            variant: variant.name.clone(),
            repeat,
            cycles: wait.len(),
            throughput: wait.len() as f64 / measured,
            errors,
            first_error,
            wait_us: [
                q(&wait, 0.5),
                q(&wait, 0.99),
                q(&wait, 0.999),
                wait.max() as f64 / 1e3,
            ],
            slow_waits: wait.count_between(10_000_000, MAX_NS),
            cycle_us: [q(&total, 0.5), q(&total, 0.99)],
            connection_seconds,
            opened,
            peak_size: timeline.iter().map(|t| t.gauge.size).max().unwrap_or(0),
            timeline,
            decisions,
        })
    })
}

async fn client(
    pool: Arc<ShapePool>,
    index: usize,
    schedule: Schedule,
    work: Arc<Work>,
    start: Instant,
    mut seed: u64,
) -> Result<ClientOut, String> {
    let mut out = ClientOut {
        wait: Histogram::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?,
        total: Histogram::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?,
        errors: 0,
        first_error: None,
    };
    let (end, from) = (schedule.total(), schedule.measure_from());
    let mut next = || {
        // xorshift64: uniform enough, no dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    loop {
        let t = start.elapsed();
        if t >= end {
            return Ok(out);
        }
        if index >= schedule.clients_at(t) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let aid = work
            .random_param
            .map(|n| (next() % n.max(1) as u64) as i32 + 1);
        let params: Vec<&(dyn ToSql + Sync)> = match &aid {
            Some(a) => vec![a],
            None => Vec::new(),
        };
        let result = pool.cycle(&work.sql, &params).await;
        let measured = t >= from;
        match result {
            Ok(timed) if measured => {
                out.wait.saturating_record(ns(timed.wait));
                out.total.saturating_record(ns(timed.total));
            }
            Ok(_) => {}
            Err(e) => {
                if measured {
                    out.errors += 1;
                    out.first_error.get_or_insert(e);
                }
                // A failing pool must not spin the CPU away from the others.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if !work.think.is_zero() {
            let u = ((next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            tokio::time::sleep(work.think.mul_f64(-u.ln())).await;
        }
    }
}

async fn sample(
    pool: Arc<ShapePool>,
    schedule: Schedule,
    start: Instant,
    opens: Arc<super::slow::OpenCount>,
    opened_at_measure: Arc<AtomicU64>,
) -> (Vec<Tick>, f64) {
    let mut timeline = Vec::new();
    let mut connection_seconds = 0.0;
    let mut last: Option<(Duration, usize)> = None;
    let mut marked = schedule.measure_from().is_zero();
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    loop {
        ticker.tick().await;
        let t = start.elapsed().min(schedule.total());
        if !marked && t >= schedule.measure_from() {
            opened_at_measure.store(opens.opened.load(Relaxed), Relaxed);
            marked = true;
        }
        let gauge = pool.gauge();
        if let Some((at, size)) = last {
            if t > schedule.measure_from() {
                let from = at.max(schedule.measure_from());
                connection_seconds += size as f64 * t.saturating_sub(from).as_secs_f64();
            }
        }
        last = Some((t, gauge.size));
        timeline.push(Tick {
            at_s: t.as_secs_f64(),
            clients: schedule.clients_at(t),
            gauge,
        });
        if t >= schedule.total() {
            return (timeline, connection_seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(f64) -> Duration = Duration::from_secs_f64;

    #[test]
    fn a_ramp_climbs_and_descends_linearly() {
        let r = Schedule::Ramp {
            low: 2,
            high: 40,
            up: S(20.0),
            down: S(20.0),
        };
        assert_eq!(r.clients_at(S(0.0)), 2);
        assert_eq!(r.clients_at(S(10.0)), 21);
        assert_eq!(r.clients_at(S(20.0)), 40);
        assert_eq!(r.clients_at(S(30.0)), 21);
        assert_eq!(r.clients_at(S(40.0)), 2);
        assert_eq!(
            (r.max_clients(), r.total(), r.measure_from()),
            (40, S(40.0), S(0.0))
        );
    }

    #[test]
    fn a_square_wave_starts_low_and_alternates_each_half_period() {
        let s = Schedule::Square {
            low: 4,
            high: 40,
            half: S(5.0),
            total: S(60.0),
        };
        let at: Vec<usize> = [0.0, 4.9, 5.0, 9.9, 10.0, 59.9]
            .iter()
            .map(|&t| s.clients_at(S(t)))
            .collect();
        assert_eq!(at, [4, 4, 40, 40, 4, 40]);
    }

    #[test]
    fn a_steady_load_is_measured_after_its_warmup() {
        let s = Schedule::Steady {
            clients: 200,
            warmup: S(3.0),
            window: S(5.0),
        };
        assert_eq!(
            (s.clients_at(S(1.0)), s.measure_from(), s.total()),
            (200, S(3.0), S(8.0))
        );
    }
}
