//! Runs one measurement point: a fresh two-worker tokio runtime, a fresh
//! pool, `tasks` tasks looping get → hold → drop, a warm-up, then a
//! measured window. The window is timed from the main thread (outside the
//! runtime, so it costs the workers nothing); each task keeps its own
//! histogram of `get()` latency, merged when the tasks end.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::noop::{self, Built, Cycle, Hold, PoolKind};

/// Longest latency a histogram holds (larger values are clamped): 60 s.
const MAX_NS: u64 = 60_000_000_000;
/// Two significant digits: 1% precision, 14 KiB per task.
const SIGFIGS: u8 = 2;

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What went wrong while running a point.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The tokio runtime could not be started.
    #[error("could not start the tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The pool under test could not be built.
    #[error("could not build the {pool} pool: {reason}")]
    Build {
        /// Which pool.
        pool: &'static str,
        /// Its error.
        reason: String,
    },
    /// A histogram could not be made or merged.
    #[error("histogram error: {0}")]
    Histogram(String),
    /// A benchmark task panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(String),
}

/// One measurement point.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PointSpec {
    /// The pool under test.
    pub pool: PoolKind,
    /// Its `max_size`.
    pub size: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// What a task does while holding a connection.
    pub hold: Hold,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What one run of one point measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// The point.
    pub pool: PoolKind,
    /// Pool size.
    pub size: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// What a task did while holding.
    pub hold: Hold,
    /// Which repeat this was (0-based).
    pub repeat: usize,
    /// Cycles completed inside the window.
    pub cycles: u64,
    /// The window's length in seconds.
    pub seconds: f64,
    /// `cycles / seconds`.
    pub throughput: f64,
    /// CPU seconds the process used during the window (at most 2 per
    /// second: two workers).
    pub cpu_seconds: f64,
    /// `cycles / cpu_seconds`: cycles per CPU-second, which time stolen
    /// by other programs on the machine does not lower.
    pub cycles_per_cpu_s: f64,
    /// Median `get()` latency, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Largest, ns.
    pub max_ns: u64,
    /// Tasks that completed no cycle inside the window (starved by an
    /// unfair pool). Their wait is in the latency figures: the cycle in
    /// flight when the window closed is recorded when it completes.
    pub starved_tasks: usize,
    /// Failed `get()`s (none expected: every pool waits without limit or
    /// for 30 s).
    pub errors: u64,
    /// The first error's text, if any.
    pub first_error: Option<String>,
}

struct TaskOutcome {
    hist: Histogram<u32>,
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
}

/// CPU time this process has used, from `CLOCK_PROCESS_CPUTIME_ID`.
/// While a window runs, the main thread sleeps, so this is the time the
/// runtime's workers got: other programs on the machine do not inflate it.
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: `ts` is a valid, writable timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Runs one point once.
///
/// ```
/// use std::time::Duration;
/// use tidepool_bench::harness::{run_point, PointSpec};
/// use tidepool_bench::noop::{Hold, PoolKind};
///
/// let spec = PointSpec {
///     pool: PoolKind::Floor,
///     size: 2,
///     tasks: 4,
///     hold: Hold::Yield,
///     warmup: Duration::from_millis(5),
///     duration: Duration::from_millis(20),
/// };
/// let sample = run_point(&spec, 0)?;
/// assert!(sample.cycles > 0);
/// # Ok::<(), tidepool_bench::harness::BenchError>(())
/// ```
pub fn run_point(spec: &PointSpec, repeat: usize) -> Result<Sample, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let built = rt
        .block_on(noop::build(spec.pool, spec.size))
        .map_err(|reason| BenchError::Build {
            pool: spec.pool.name(),
            reason,
        })?;
    let measured = match built {
        Built::Tidepool(p) => drive(&rt, p, spec),
        Built::Deadpool(p) => drive(&rt, p, spec),
        Built::Bb8(p) => drive(&rt, p, spec),
        Built::Floor(p) => drive(&rt, p, spec),
    };
    rt.shutdown_timeout(Duration::from_secs(2));
    let (outcomes, seconds, cpu_seconds) = measured?;

    let mut total = Histogram::<u64>::new_with_bounds(1, MAX_NS, SIGFIGS)
        .map_err(|e| BenchError::Histogram(e.to_string()))?;
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
    Ok(Sample {
        pool: spec.pool,
        size: spec.size,
        tasks: spec.tasks,
        hold: spec.hold,
        repeat,
        cycles,
        seconds,
        throughput: cycles as f64 / seconds,
        cpu_seconds,
        cycles_per_cpu_s: if cpu_seconds > 0.0 {
            cycles as f64 / cpu_seconds
        } else {
            0.0
        },
        p50_ns: total.value_at_quantile(0.50),
        p99_ns: total.value_at_quantile(0.99),
        p999_ns: total.value_at_quantile(0.999),
        max_ns: total.max(),
        starved_tasks: starved,
        errors,
        first_error,
    })
}

/// Spawns the tasks, times the window from this thread, collects.
fn drive<C: Cycle>(
    rt: &tokio::runtime::Runtime,
    pool: Arc<C>,
    spec: &PointSpec,
) -> Result<(Vec<TaskOutcome>, f64, f64), BenchError> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = (0..spec.tasks)
        .map(|_| rt.spawn(task(pool.clone(), phase.clone(), spec.hold)))
        .collect();
    std::thread::sleep(spec.warmup);
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    let cpu_started = process_cpu_time();
    std::thread::sleep(spec.duration);
    phase.store(STOP, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_time().saturating_sub(cpu_started).as_secs_f64();
    let outcomes = rt.block_on(async {
        let mut outcomes = Vec::with_capacity(handles.len());
        for h in handles {
            match h.await {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => return Err(BenchError::Histogram(e)),
                Err(e) => return Err(BenchError::Task(e.to_string())),
            }
        }
        Ok(outcomes)
    })?;
    // Dropped inside the runtime: bb8 and tidepool stop background tasks.
    rt.block_on(async move { drop(pool) });
    Ok((outcomes, seconds, cpu_seconds))
}

async fn task<C: Cycle>(
    pool: Arc<C>,
    phase: Arc<AtomicU8>,
    hold: Hold,
) -> Result<TaskOutcome, String> {
    let mut out = TaskOutcome {
        hist: Histogram::new_with_bounds(1, MAX_NS, SIGFIGS).map_err(|e| e.to_string())?,
        cycles: 0,
        errors: 0,
        first_error: None,
    };
    loop {
        let before = phase.load(Ordering::Relaxed);
        let result = pool.cycle(hold).await;
        let after = phase.load(Ordering::Relaxed);
        // Throughput counts cycles completed inside the window. Latency
        // also takes the one cycle in flight when the window closed: a
        // task starved by an unfair pool never completes a cycle in the
        // window, and its wait must still show.
        let in_window = after == MEASURE;
        let in_flight_at_stop = after == STOP && before != STOP;
        match result {
            Ok(waited) if in_window || in_flight_at_stop => {
                let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX).max(1);
                out.hist.saturating_record(ns);
                if in_window {
                    out.cycles += 1;
                }
            }
            Ok(_) => {}
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
        if after == STOP {
            return Ok(out);
        }
    }
}
