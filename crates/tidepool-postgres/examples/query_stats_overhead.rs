//! What fingerprinting and per-shape statistics cost on the PostgreSQL
//! throughput path: point selects through `Pool::execute_query` from
//! `TASKS` tasks over a pool of 10, with `query_stats` on (the default:
//! tidepool-sql's fingerprint through `Manager::query_shape`, the stats
//! table, the slow-query check) and off, in alternating windows, each
//! order in turn; prints each pair and the median ratio of queries per
//! second.
//!
//! ```text
//! cargo build --release -p tidepool-postgres --example query_stats_overhead
//! # arguments: URL REPEATS SECONDS TASKS
//! crates/tidepool-bench/scripts/prioritized.sh target/release/examples/query_stats_overhead \
//!     'postgres://postgres@127.0.0.1:5432/test?sslmode=disable' 9 2 50
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool::{Pool, QueryKind, Value};
use tidepool_postgres::PgManager;

const SQL: &str = "SELECT $1::int4 + 1 AS v";

async fn pool(url: &str, stats: bool) -> Pool<PgManager> {
    let manager = PgManager::builder_from_url(url)
        .expect("url")
        .build()
        .expect("manager");
    let pool = Pool::builder(manager)
        .max_size(10)
        .min_size(10)
        .initial_size(10)
        .query_stats(stats)
        .build()
        .await
        .expect("pool");
    // Warm every connection's statement cache.
    let warm: Vec<_> = (0..40)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.execute_query(QueryKind::Read, SQL, &[Value::Int(i)])
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for w in warm {
        w.await.expect("task").expect("warm-up query");
    }
    pool
}

/// Queries per second over one window.
async fn window(pool: &Pool<PgManager>, tasks: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (pool, stop, done) = (pool.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = t as i64;
                while !stop.load(Relaxed) {
                    i = (i * 1_103_515_245 + 12_345) % 1_000_000;
                    pool.execute_query(QueryKind::Read, SQL, &[Value::Int(i)])
                        .await
                        .expect("query");
                    done.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Relaxed);
    let n = done.load(Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for h in handles {
        h.await.expect("task");
    }
    n as f64 / elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test?sslmode=disable".into());
    let repeats: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(9);
    let seconds: f64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let tasks: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let on = pool(&url, true).await;
        let off = pool(&url, false).await;
        // The added work per query, alone: the manager's shape (a cached
        // fingerprint) and the record into the statistics table.
        let analyzer = tidepool_sql::Analyzer::global(tidepool_sql::Dialect::Postgres);
        let n = 1_000_000u32;
        let started = Instant::now();
        for _ in 0..n {
            let shape = analyzer.shape(std::hint::black_box(SQL));
            on.record_query(&shape, Duration::from_micros(40), Some(1));
        }
        println!(
            "shape + record, one thread: {:.0} ns per query",
            started.elapsed().as_nanos() as f64 / f64::from(n)
        );
        let mut ratios = Vec::new();
        println!("repeat  on q/s      off q/s     on/off");
        for r in 0..repeats {
            let (a, b) = if r.is_multiple_of(2) {
                let a = window(&on, tasks, seconds).await;
                (a, window(&off, tasks, seconds).await)
            } else {
                let b = window(&off, tasks, seconds).await;
                (window(&on, tasks, seconds).await, b)
            };
            ratios.push(a / b);
            println!("{r:>6}  {a:>10.0}  {b:>10.0}  {:.3}", a / b);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "median on/off {:.3} over {repeats} repeats ({tasks} tasks, pool of 10, {seconds} s windows); shapes tracked: {}",
            ratios[ratios.len() / 2],
            on.queries().len()
        );
    });
}
