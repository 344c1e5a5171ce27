//! `tidepool bench`: seeds the schema, then for each repeat, level and
//! configuration builds a fresh pool, runs the client tasks through a
//! warm-up and a measured window while a sampler records the pool's size
//! and the load, and collects the figures. Ctrl-C (a `watch` flag every
//! task selects on) ends the current window early; what was measured is
//! kept and reported.

pub mod configs;
pub mod progress;
pub mod results;
pub mod shared_reads;
pub mod text;
pub mod verdict;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tidepool::{Classify, FailureKind, Pool, Queryable};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{one_line, CliError};
use crate::settings::BenchSettings;
use crate::target::{with_manager, Dialect, Target};
use crate::workload::{self, Op, Statements};
use progress::Progress;
use results::{new_histogram, record, BenchReport, PoolCounters, RunResult, Sample};
use shared_reads::{ReadPath, SharesReads};

/// Runs the benchmark and returns its report (possibly partial when
/// interrupted). `stop` turns true on Ctrl-C.
pub async fn run(
    settings: &BenchSettings,
    stop: watch::Receiver<bool>,
    progress: &Progress,
) -> Result<BenchReport, CliError> {
    let (target, temp) = match &settings.url {
        // An in-memory SQLite URL is refused when the settings resolve.
        Some(url) => (Target::parse(url)?, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("tidepool-bench-")
                .tempdir()
                .map_err(|e| CliError::io("creating a temporary directory", e))?;
            let config = tidepool_sqlite::SqliteConfig::file(dir.path().join("bench.db"))
                .begin_mode(tidepool_sqlite::BeginMode::Immediate);
            (Target::Sqlite(config), Some(dir))
        }
    };
    let report = with_manager!(&target, |make, dialect| {
        run_on(settings, make, dialect, temp.is_some(), stop, progress).await
    });
    if let Some(dir) = temp {
        if settings.keep {
            let kept = dir.keep();
            progress.note(&format!(
                "kept the SQLite database at {}",
                kept.join("bench.db").display()
            ));
        } else {
            dir.close()
                .map_err(|e| CliError::io("removing the temporary database", e))?;
        }
    }
    report
}

fn db_error(what: &str, target: &str, e: &dyn std::error::Error) -> CliError {
    CliError::Database {
        what: what.to_string(),
        target: target.to_string(),
        reason: one_line(e),
    }
}

/// The server's version string, asked through the uniform query face.
pub async fn server_version<C: Queryable>(conn: &mut C, dialect: Dialect) -> Option<String> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT sqlite_version()",
        Dialect::Postgres => "SHOW server_version",
        Dialect::Mysql => "SELECT VERSION()",
    };
    let row = conn.query_one_values(sql, &[]).await.ok()?;
    row.get(0).map(crate::value_text)
}

async fn run_on<M, F>(
    settings: &BenchSettings,
    make: F,
    dialect: Dialect,
    temporary: bool,
    stop: watch::Receiver<bool>,
    progress: &Progress,
) -> Result<BenchReport, CliError>
where
    M: SharesReads,
    M::Connection: Queryable,
    F: Fn() -> Result<M, CliError>,
{
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let manager = make()?;
    let target = manager.describe();
    // One plain pool for setup and teardown.
    let admin = Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(settings.acquire_timeout.max(Duration::from_secs(10)))
        .max_retries(0)
        .build()
        .await
        .map_err(|e| CliError::Pool {
            context: "building the setup pool".into(),
            source: e,
        })?;
    let mut conn = admin.get().await.map_err(|e| CliError::Connect {
        target: target.clone(),
        reason: one_line(&e),
    })?;
    let server_version = server_version(&mut *conn, dialect).await;
    let statements = Statements::new(dialect, &settings.table_prefix, settings.seed_users);
    progress.note(&format!(
        "seeding {} users, {} orders and {} events on {target}",
        settings.seed_users,
        settings.seed_users * 3,
        settings.seed_users * 3
    ));
    let seed = workload::setup(&mut *conn, &statements)
        .await
        .map_err(|e| db_error("creating and seeding the benchmark tables", &target, &e))?;
    drop(conn);

    let configurations = configs::both(settings);
    let mut runs = Vec::new();
    let mut interrupted = false;
    'outer: for repeat in 1..=settings.repeat {
        for &level in &settings.concurrency {
            for configuration in &configurations {
                if *stop.borrow() {
                    interrupted = true;
                    break 'outer;
                }
                let config = configuration.pool_config(level, settings);
                let label = run_label(configuration.name, level, repeat, settings.repeat);
                let run = run_one(RunSpec {
                    manager: make()?,
                    config,
                    configuration: configuration.name,
                    level,
                    repeat,
                    settings,
                    statements: statements.clone(),
                    stop: stop.clone(),
                    progress,
                    label: &label,
                })
                .await?;
                if run.interrupted {
                    interrupted = true;
                }
                if run.measured_s > 0.0 {
                    runs.push(run);
                }
                if interrupted {
                    break 'outer;
                }
            }
        }
    }

    if !temporary && !settings.keep {
        match admin.get().await {
            Ok(mut conn) => {
                if let Err(e) = workload::teardown(&mut *conn, &statements).await {
                    progress.note(&format!(
                        "could not drop the benchmark tables: {}",
                        one_line(&e)
                    ));
                }
            }
            Err(e) => progress.note(&format!(
                "could not drop the benchmark tables: {}",
                one_line(&e)
            )),
        }
    }
    admin.close(Duration::from_secs(2)).await;

    let levels = results::summarize(&settings.concurrency, &runs);
    let mut report = BenchReport {
        tool: "tidepool bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_unix_s,
        target,
        dialect,
        server_version,
        temporary_database: temporary,
        seed,
        concurrency: settings.concurrency.clone(),
        duration_s: settings.duration.as_secs_f64(),
        warmup_s: settings.warmup.as_secs_f64(),
        repeat: settings.repeat,
        mix: settings.mix,
        shape: settings.shape,
        acquire_timeout_s: settings.acquire_timeout.as_secs_f64(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        configurations: configurations.iter().map(|c| c.info(settings)).collect(),
        levels,
        runs,
        interrupted,
        conclusion: None,
    };
    report.conclusion = Some(verdict::conclude(&report));
    Ok(report)
}

fn run_label(name: &str, level: u32, repeat: u32, repeats: u32) -> String {
    if repeats > 1 {
        format!("c={level:<4} {name:<8} #{repeat}")
    } else {
        format!("c={level:<4} {name:<8}")
    }
}

struct RunSpec<'a, M> {
    manager: M,
    config: tidepool::Config,
    configuration: &'static str,
    level: u32,
    repeat: u32,
    settings: &'a BenchSettings,
    statements: Arc<Statements>,
    stop: watch::Receiver<bool>,
    progress: &'a Progress,
    label: &'a str,
}

/// Counters the client tasks share with the sampler.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    wait_sum_us: AtomicU64,
    wait_count: AtomicU64,
    wait_max_us: AtomicU64,
}

/// What one client task measured.
struct WorkerTally {
    latency: hdrhistogram::Histogram<u64>,
    acquire: hdrhistogram::Histogram<u64>,
    errors: BTreeMap<FailureKind, u64>,
    ops: BTreeMap<Op, u64>,
}

async fn run_one<M>(spec: RunSpec<'_, M>) -> Result<RunResult, CliError>
where
    M: SharesReads,
    M::Connection: Queryable,
{
    let RunSpec {
        manager,
        config,
        configuration,
        level,
        repeat,
        settings,
        statements,
        stop,
        progress,
        label,
    } = spec;
    let (pool_min, pool_max) = (config.min_size, config.max_size);
    // Every task's histograms are clones of this one (same bounds).
    let empty = new_histogram()?;
    let pool = Pool::builder(manager)
        .config(config)
        .build()
        .await
        .map_err(|e| CliError::Pool {
            context: format!("building the {configuration} pool for concurrency {level}"),
            source: e,
        })?;
    let reads = if configuration == "tuned" && settings.multiplex_reads {
        M::shared_reads(&pool, shared_reads::lanes_for(pool_max))
    } else {
        None
    };
    let live = Arc::new(Live::default());
    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let end = measure_from + settings.duration;
    let bar = progress.start_run(label, settings.warmup + settings.duration);

    let mut workers = Vec::with_capacity(level as usize);
    for i in 0..level {
        let pool = pool.clone();
        let reads = reads.clone();
        let empty = empty.clone();
        let statements = statements.clone();
        let live = live.clone();
        let stop = stop.clone();
        let mix = settings.mix;
        let seed = u64::from(level) << 32 | u64::from(repeat) << 16 | u64::from(i);
        let turn = Turn {
            index: i,
            level,
            shape: settings.shape,
            start,
            total: settings.warmup + settings.duration,
        };
        workers.push(tokio::spawn(async move {
            client(
                pool,
                reads,
                empty,
                statements,
                mix,
                live,
                measure_from,
                end,
                stop,
                seed,
                turn,
            )
            .await
        }));
    }

    // The sampler: pool status and load, until the window ends or Ctrl-C.
    let sample_every = ((settings.warmup + settings.duration) / 100)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut timeline = Vec::new();
    let mut ticker = tokio::time::interval(sample_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop_rx = stop.clone();
    let mut last = (start, 0u64);
    let mut stopped_at = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop_rx.wait_for(|s| *s) => { stopped_at = Some(Instant::now()); }
        }
        let now = Instant::now();
        let ops = live.ops.load(Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        let count = live.wait_count.swap(0, Relaxed);
        let sum = live.wait_sum_us.swap(0, Relaxed);
        let max = live.wait_max_us.swap(0, Relaxed);
        let status = pool.status();
        let sample = Sample {
            t_s: now.duration_since(start).as_secs_f64(),
            size: status.size,
            in_use: status.in_use,
            idle: status.idle,
            waiting: status.waiting,
            warm_target: status.warm_target,
            limit: status.limit,
            clients: settings.shape.active(
                level,
                now.duration_since(start),
                settings.warmup + settings.duration,
            ),
            ops_per_s: if dt > 0.0 {
                (ops - last.1) as f64 / dt
            } else {
                0.0
            },
            acquire_wait_mean_ms: if count > 0 {
                sum as f64 / count as f64 / 1000.0
            } else {
                0.0
            },
            acquire_wait_max_ms: max as f64 / 1000.0,
        };
        last = (now, ops);
        bar.update(now.duration_since(start), &sample);
        timeline.push(sample);
        if stopped_at.is_some() || now >= end {
            break;
        }
    }

    let mut latency = empty.clone();
    let mut acquire = empty;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut ops_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for w in workers {
        // A client task only fails by panicking; count nothing from it.
        let Ok(t) = w.await else { continue };
        let _ = latency.add(&t.latency);
        let _ = acquire.add(&t.acquire);
        for (k, v) in t.errors {
            *errors.entry(k.as_str().to_string()).or_default() += v;
        }
        for (k, v) in t.ops {
            *ops_by_kind.entry(k.name().to_string()).or_default() += v;
        }
    }
    if let Some(reads) = &reads {
        reads.release();
    }
    let pool_counters = PoolCounters::of(&pool.metrics());
    pool.close(Duration::from_secs(2)).await;

    let interrupted = stopped_at.is_some();
    let measured_until = stopped_at.map_or(end, |s| s.min(end));
    let measured_s = measured_until
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let ops = latency.len();
    let failed: u64 = errors.values().sum();
    let result = RunResult {
        configuration: configuration.to_string(),
        concurrency: level,
        repeat,
        interrupted,
        warmup_s: settings.warmup.as_secs_f64(),
        measured_s,
        ops,
        throughput_ops_s: if measured_s > 0.0 {
            ops as f64 / measured_s
        } else {
            0.0
        },
        latency: results::Latency::of(&latency),
        acquire_wait: results::Latency::of(&acquire),
        error_rate: if ops + failed > 0 {
            failed as f64 / (ops + failed) as f64
        } else {
            0.0
        },
        errors,
        ops_by_kind,
        pool: pool_counters,
        pool_min_size: pool_min,
        pool_max_size: pool_max,
        timeline,
        latency_hist: Some(latency),
        acquire_hist: Some(acquire),
    };
    bar.finish(&result);
    Ok(result)
}

/// When a client task takes part: client `index` works while the shape
/// has more than `index` clients active.
struct Turn {
    index: u32,
    level: u32,
    shape: crate::settings::Shape,
    start: Instant,
    total: Duration,
}

impl Turn {
    fn active(&self, now: Instant) -> bool {
        self.shape
            .active(self.level, now.duration_since(self.start), self.total)
            > self.index
    }
}

#[allow(clippy::too_many_arguments)]
async fn client<M>(
    pool: Pool<M>,
    reads: Option<Arc<dyn ReadPath>>,
    empty: hdrhistogram::Histogram<u64>,
    statements: Arc<Statements>,
    mix: crate::settings::Mix,
    live: Arc<Live>,
    measure_from: Instant,
    end: Instant,
    mut stop: watch::Receiver<bool>,
    seed: u64,
    turn: Turn,
) -> WorkerTally
where
    M: SharesReads,
    M::Connection: Queryable,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = WorkerTally {
        latency: empty.clone(),
        acquire: empty,
        errors: BTreeMap::new(),
        ops: BTreeMap::new(),
    };
    loop {
        let t0 = Instant::now();
        if t0 >= end || *stop.borrow() {
            break;
        }
        if !turn.active(t0) {
            // Off in this part of the shape: look again shortly.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            continue;
        }
        let op = Op::pick(&mix, &mut rng);
        let shared = reads
            .as_deref()
            .and_then(|r| statements.read_sql(op).map(|sql| (r, sql)));
        let work = async {
            if let Some((reads, sql)) = shared {
                // No checkout: the read joins others in flight on a shared
                // connection, so it has no acquire wait of its own.
                let user = statements.random_user(&mut rng);
                let outcome = reads.read(sql, user).await;
                return (t0, Some(outcome));
            }
            let mut conn = match pool.get().await {
                Ok(conn) => conn,
                Err(tidepool::Error::Closed) => return (Instant::now(), None),
                Err(e) => {
                    let kind = match &e {
                        tidepool::Error::Create(inner) => pool.manager().classify(inner),
                        tidepool::Error::CircuitOpen { .. } => FailureKind::Connect,
                        _ => FailureKind::Timeout,
                    };
                    return (Instant::now(), Some(Err(kind)));
                }
            };
            let acquired = Instant::now();
            let outcome = workload::run(&mut *conn, &statements, op, &mut rng).await;
            (acquired, Some(outcome.map_err(|e| e.failure_kind())))
        };
        let (acquired, outcome) = tokio::select! {
            r = work => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let t1 = Instant::now();
        let Some(outcome) = outcome else { break };
        let wait = acquired.duration_since(t0);
        let wait_us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        live.wait_sum_us.fetch_add(wait_us, Relaxed);
        live.wait_count.fetch_add(1, Relaxed);
        live.wait_max_us.fetch_max(wait_us, Relaxed);
        let measured = t0 >= measure_from && t1 <= end;
        match outcome {
            Ok(()) => {
                live.ops.fetch_add(1, Relaxed);
                if measured {
                    record(&mut tally.latency, t1.duration_since(t0));
                    record(&mut tally.acquire, wait);
                    *tally.ops.entry(op).or_default() += 1;
                }
            }
            Err(kind) => {
                if measured {
                    *tally.errors.entry(kind).or_default() += 1;
                }
                // Do not spin on a database that fails at once.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    tally
}
