//! The measurement loop: one task per client runs cycles through warm-up
//! and the measured window on a fresh runtime, recording each cycle's
//! latency; [`run_point`] and [`run_direct`] turn the tasks' histograms into
//! a [`PgSample`]. pgbench's own figures come from [`super::pgbench`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::adapters::{build, BuiltPg, DirectClient, PgCycle};
use super::{PgKind, Workload, ACCOUNTS};

const MAX_NS: u64 = 60_000_000_000;
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// One measurement point.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PgSpec {
    /// The pool.
    pub pool: PgKind,
    /// The query.
    pub workload: Workload,
    /// Pool size (connections).
    pub size: usize,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Unmeasured time first (connections open, statements prepare).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What one run of one point measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgSample {
    /// The point.
    pub spec: PgSpec,
    /// Which repeat (0-based).
    pub repeat: usize,
    /// Cycles (transactions) completed in the window, per second.
    pub tps: f64,
    /// Median cycle latency, ns (none for pgbench).
    pub p50_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// Worst, ns.
    pub max_ns: Option<u64>,
    /// Mean latency, ns (pgbench reports only this).
    pub mean_ns: Option<f64>,
    /// Tasks that completed no cycle in the window.
    pub starved_tasks: usize,
    /// Failed cycles.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

struct TaskOutcome {
    hist: Histogram<u32>,
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
}

/// A fresh two-worker runtime (the machine's cores) for one point.
fn point_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))
}

/// Runs one point once (not pgbench).
pub fn run_point(spec: &PgSpec, url: &str, repeat: usize) -> Result<PgSample, String> {
    let rt = point_runtime()?;
    let built = rt
        .block_on(build(spec.pool, spec.size, url))
        .map_err(|e| format!("could not build the {} pool: {e}", spec.pool.name()))?;
    let measured = match built {
        BuiltPg::Tidepool(p) => {
            let r = drive(&rt, p.clone(), spec);
            rt.block_on(p.close(Duration::from_secs(2)));
            r
        }
        BuiltPg::TidepoolDeadpoolWay(p) => {
            let r = drive(&rt, p.clone(), spec);
            rt.block_on(p.0.close(Duration::from_secs(2)));
            r
        }
        BuiltPg::Deadpool(p) => {
            let r = drive(&rt, p.clone(), spec);
            p.close();
            r
        }
        BuiltPg::Bb8(p) => drive(&rt, p, spec),
        BuiltPg::Multiplexed(m) => {
            let r = drive(&rt, m.clone(), spec);
            m.release();
            rt.block_on(m.pool().close(Duration::from_secs(2)));
            r
        }
        BuiltPg::SharedClients(c) => drive(&rt, c, spec),
        BuiltPg::Sqlx(p) => {
            let r = drive(&rt, p.clone(), spec);
            rt.block_on(p.close());
            r
        }
    };
    rt.shutdown_timeout(Duration::from_secs(2));
    sample(spec, repeat, measured?)
}

/// Runs tokio-postgres with no pool: `spec.size` tasks, each with a client
/// of its own (`spec.concurrency` is ignored).
pub fn run_direct(spec: &PgSpec, url: &str, repeat: usize) -> Result<PgSample, String> {
    let rt = point_runtime()?;
    let clients = rt.block_on(async {
        let mut clients = Vec::with_capacity(spec.size);
        for _ in 0..spec.size {
            clients.push(Arc::new(DirectClient::connect(url).await?));
        }
        Ok::<_, String>(clients)
    })?;
    let spec = PgSpec {
        concurrency: spec.size,
        ..*spec
    };
    let measured = drive_each(&rt, clients, &spec);
    rt.shutdown_timeout(Duration::from_secs(2));
    sample(&spec, repeat, measured?)
}

fn sample(
    spec: &PgSpec,
    repeat: usize,
    (outcomes, seconds): (Vec<TaskOutcome>, f64),
) -> Result<PgSample, String> {
    let mut total = Histogram::<u64>::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?;
    let (mut cycles, mut errors, mut first_error, mut starved) = (0, 0, None, 0);
    for o in outcomes {
        if o.cycles == 0 {
            starved += 1;
        }
        for v in o.hist.iter_recorded() {
            total.saturating_record_n(v.value_iterated_to(), u64::from(v.count_at_value()));
        }
        cycles += o.cycles;
        errors += o.errors;
        if first_error.is_none() {
            first_error = o.first_error;
        }
    }
    Ok(PgSample {
        spec: *spec,
        repeat,
        tps: cycles as f64 / seconds,
        p50_ns: Some(total.value_at_quantile(0.5)),
        p99_ns: Some(total.value_at_quantile(0.99)),
        max_ns: Some(total.max()),
        mean_ns: Some(total.mean()),
        starved_tasks: starved,
        errors,
        first_error,
    })
}

fn drive<C: PgCycle>(
    rt: &tokio::runtime::Runtime,
    pool: Arc<C>,
    spec: &PgSpec,
) -> Result<(Vec<TaskOutcome>, f64), String> {
    drive_each(rt, vec![pool; spec.concurrency], spec)
}

/// Runs one task per entry of `pools` (the same pool shared, or one client
/// each) through warm-up and the measured window.
fn drive_each<C: PgCycle>(
    rt: &tokio::runtime::Runtime,
    pools: Vec<Arc<C>>,
    spec: &PgSpec,
) -> Result<(Vec<TaskOutcome>, f64), String> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(i, pool)| {
            rt.spawn(task(
                pool,
                phase.clone(),
                spec.workload,
                0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
            ))
        })
        .collect();
    std::thread::sleep(spec.warmup);
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(spec.duration);
    phase.store(STOP, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    rt.block_on(async {
        let mut outcomes = Vec::with_capacity(handles.len());
        for h in handles {
            outcomes.push(
                h.await
                    .map_err(|e| format!("a benchmark task failed: {e}"))??,
            );
        }
        Ok((outcomes, seconds))
    })
}

async fn task<C: PgCycle>(
    pool: Arc<C>,
    phase: Arc<AtomicU8>,
    workload: Workload,
    mut seed: u64,
) -> Result<TaskOutcome, String> {
    let mut out = TaskOutcome {
        hist: Histogram::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?,
        cycles: 0,
        errors: 0,
        first_error: None,
    };
    loop {
        // xorshift64: a uniform enough account id without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let aid = (seed % ACCOUNTS as u64) as i32 + 1;
        let before = phase.load(Ordering::Relaxed);
        let started = Instant::now();
        let result = pool.run(workload, aid).await;
        let took = started.elapsed();
        let after = phase.load(Ordering::Relaxed);
        let in_window = after == MEASURE;
        let in_flight_at_stop = after == STOP && before != STOP;
        match result {
            Ok(()) if in_window || in_flight_at_stop => {
                let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
                out.hist.saturating_record(ns);
                if in_window {
                    out.cycles += 1;
                }
            }
            Ok(()) => {}
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
                // A failing pool must not spin the CPU away from the others.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if after == STOP {
            return Ok(out);
        }
    }
}
