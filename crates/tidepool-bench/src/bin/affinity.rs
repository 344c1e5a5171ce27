//! `affinity`: statement-cache-aware checkout (issue 13, benchmark 1).
//!
//! Many distinct statement shapes with Zipf-distributed popularity run
//! through `Pool::execute_query` over a pool of 10 whose connections each
//! cache at most 64 prepared statements, so no one connection can hold the
//! working set but the pool as a whole can. With affinity on, a checkout
//! prefers an idle connection that already prepared its statement; off, it
//! takes the most recently returned one. Each repeat runs both back to back
//! (the order rotating) and reports throughput, the affinity hit rate, and
//! how many prepared statements the server holds at the end, summed over
//! every connection's `pg_prepared_statements`.
//!
//! `cargo run --release -p tidepool-bench --bin affinity -- --repeat 3`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tidepool::{Pool, QueryKind, Value};
use tidepool_bench::pg::{self, pgbench::ensure_database};
use tidepool_bench::report::median;
use tidepool_postgres::PgManager;

#[derive(Debug, Parser)]
#[command(about = "Statement-cache affinity on and off over many Zipf-popular statement shapes")]
struct Args {
    /// Distinct statement shapes.
    #[arg(long, default_value_t = 500)]
    shapes: usize,
    /// Zipf exponent of the shapes' popularity (1.0: the k-th most popular
    /// runs 1/k as often as the first).
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Pool size.
    #[arg(long, default_value_t = 10)]
    size: u32,
    /// Prepared statements each connection caches.
    #[arg(long, default_value_t = 64)]
    cache: usize,
    /// Concurrent clients, comma-separated (fewer than the pool size leaves
    /// idle connections to choose among; at or above it every checkout is
    /// a hand-off and affinity has nothing to pick from).
    #[arg(long, value_delimiter = ',', default_value = "4,8")]
    clients: Vec<usize>,
    /// Unmeasured time first (caches fill).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Measured window.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Repeats of each pair.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[command(flatten)]
    target: pg::Target,
}

/// One run of one side.
#[derive(Debug, Clone, Copy)]
struct Run {
    qps: f64,
    /// Prepared statements held by the server at the end, all connections.
    server_prepared: u64,
    hits: u64,
    misses: u64,
}

/// The `k`-th shape: the same plan work for every shape (a join and an
/// aggregate over the bench tables), a distinct text (the alias).
fn shape_sql(k: usize) -> String {
    format!(
        "SELECT a.aid, a.abalance, b.bbalance AS s{k} FROM pgbench_accounts a \
         JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid = $1"
    )
}

/// splitmix64: a small, seedable generator (the benchmark needs no more).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cumulative Zipf weights, for sampling by binary search.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += 1.0 / (k as f64).powf(s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

async fn build(args: &Args, affinity: bool) -> Result<Pool<PgManager>, String> {
    let manager = PgManager::builder_from_url(&args.target.url)
        .map_err(|e| e.to_string())?
        .statement_cache_capacity(args.cache)
        .build()
        .map_err(|e| e.to_string())?;
    Pool::builder(manager)
        .min_size(args.size)
        .max_size(args.size)
        .initial_size(args.size)
        .statement_affinity(affinity)
        .build()
        .await
        .map_err(|e| e.to_string())
}

/// Prepared statements on every connection of `pool`, summed: all of them
/// checked out at once so each is counted exactly once.
async fn server_prepared(pool: &Pool<PgManager>, size: u32) -> Result<u64, String> {
    let mut guards = Vec::new();
    for _ in 0..size {
        guards.push(pool.get().await.map_err(|e| e.to_string())?);
    }
    let mut total = 0;
    for g in &guards {
        for msg in g
            .simple_query("SELECT count(*) FROM pg_prepared_statements")
            .await
            .map_err(|e| e.to_string())?
        {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = msg {
                total += row.get(0).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    Ok(total)
}

async fn run(args: &Args, clients: usize, affinity: bool, seed: u64) -> Result<Run, String> {
    let pool = build(args, affinity).await?;
    let shapes: Arc<Vec<String>> = Arc::new((0..args.shapes).map(shape_sql).collect());
    let cdf = Arc::new(zipf_cdf(args.shapes, args.zipf));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (pool, shapes, cdf) = (pool.clone(), shapes.clone(), cdf.clone());
            let (measuring, stop, done, failed) = (
                measuring.clone(),
                stop.clone(),
                done.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                let mut rng = Rng(seed ^ (c as u64).wrapping_mul(0x9e37_79b9));
                while !stop.load(Relaxed) {
                    let u = rng.unit();
                    let k = cdf.partition_point(|&p| p < u).min(shapes.len() - 1);
                    let aid = Value::Int(1 + (rng.next() % 1_000_000) as i64);
                    let ok = pool
                        .execute_query(QueryKind::Read, &shapes[k], &[aid])
                        .await
                        .is_ok();
                    if measuring.load(Relaxed) {
                        if ok {
                            done.fetch_add(1, Relaxed);
                        } else {
                            failed.fetch_add(1, Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(args.warmup).await;
    let before = pool.metrics();
    measuring.store(true, Relaxed);
    let started = Instant::now();
    tokio::time::sleep(args.duration).await;
    measuring.store(false, Relaxed);
    let elapsed = started.elapsed();
    let after = pool.metrics();
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.map_err(|e| e.to_string())?;
    }
    if failed.load(Relaxed) > 0 {
        return Err(format!("{} queries failed", failed.load(Relaxed)));
    }
    let server_prepared = server_prepared(&pool, args.size).await?;
    let queries = done.load(Relaxed);
    let hits = after.affinity_hits - before.affinity_hits;
    let misses = after.affinity_misses - before.affinity_misses;
    pool.close(Duration::from_secs(5)).await;
    Ok(Run {
        qps: queries as f64 / elapsed.as_secs_f64(),
        server_prepared,
        hits,
        misses,
    })
}

fn spread(values: &[f64]) -> String {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({lo:.2}–{hi:.2})", median(values))
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(ensure_database(&args.target.admin_url, &args.target.url))?;
    println!(
        "{} shapes, Zipf s = {}, pool of {}, {} prepared statements cached per connection; \
         warm-up {:?}, window {:?}, {} repeat(s), on and off back to back in a rotating order.\n",
        args.shapes, args.zipf, args.size, args.cache, args.warmup, args.duration, args.repeat
    );
    println!("| clients | q/s on | q/s off | throughput on ÷ off | server-side prepared on / off | fewer prepared (off ÷ on) | affinity hit rate on |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &clients in &args.clients {
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for r in 0..args.repeat {
            let seed = 0x5eed + r as u64;
            let order = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for affinity in order {
                let run = rt.block_on(run(&args, clients, affinity, seed))?;
                eprintln!(
                    "clients {clients} repeat {}/{} affinity {:<3} {:>8.0} q/s  server prepared {:>4}  hits {} misses {}",
                    r + 1,
                    args.repeat,
                    if affinity { "on" } else { "off" },
                    run.qps,
                    run.server_prepared,
                    run.hits,
                    run.misses
                );
                if affinity {
                    on.push(run)
                } else {
                    off.push(run)
                }
            }
        }
        let ratio: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a.qps / b.qps).collect();
        let fewer: Vec<f64> = on
            .iter()
            .zip(&off)
            .map(|(a, b)| b.server_prepared as f64 / a.server_prepared.max(1) as f64)
            .collect();
        let med = |v: &[Run], f: fn(&Run) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let hit_rate: Vec<f64> = on
            .iter()
            .map(|r| 100.0 * r.hits as f64 / (r.hits + r.misses).max(1) as f64)
            .collect();
        println!(
            "| {clients} | {:.0} | {:.0} | {} | {:.0} / {:.0} | {} | {:.0}% |",
            med(&on, |r| r.qps),
            med(&off, |r| r.qps),
            spread(&ratio),
            med(&on, |r| r.server_prepared as f64),
            med(&off, |r| r.server_prepared as f64),
            spread(&fewer),
            median(&hit_rate),
        );
    }
    Ok(())
}
