//! Point selects through sqlx: tidepool-sqlx against sqlx's own pool, at
//! its defaults and with `test_before_acquire(false)`. Closed loop: `c`
//! tasks each check out, run one prepared point select, return; ops/s over
//! a window, rounds interleaved, medians of `--repeat`, ratios within each
//! round. Markdown to stdout. Release builds only:
//!
//! `cargo bench -p tidepool-sqlx --all-features --bench point_select -- --duration 3s --repeat 3`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

const ROWS: i32 = 10_000;
const POINT: &str = "SELECT v FROM tp_bench_points_sqlx WHERE id = $1";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Tidepool,
    TidepoolNoCheck,
    Sqlx,
    SqlxNoTest,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Tidepool => "tidepool-sqlx (defaults: check on return)",
            Kind::TidepoolNoCheck => "tidepool-sqlx, check_on_return(false)",
            Kind::Sqlx => "sqlx PgPool (defaults)",
            Kind::SqlxNoTest => "sqlx PgPool, test_before_acquire(false)",
        }
    }
}

const KINDS: [Kind; 4] = [
    Kind::Tidepool,
    Kind::TidepoolNoCheck,
    Kind::Sqlx,
    Kind::SqlxNoTest,
];
const ANCHOR: usize = 2;

struct Args {
    url: String,
    duration: Duration,
    warmup: Duration,
    repeat: usize,
    size: u32,
    concurrency: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        url: std::env::var("TIDEPOOL_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        duration: Duration::from_secs(3),
        warmup: Duration::from_millis(500),
        repeat: 3,
        size: 16,
        concurrency: vec![16, 64],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = value(),
            "--duration" => a.duration = humantime::parse_duration(&value()).unwrap_or(a.duration),
            "--warmup" => a.warmup = humantime::parse_duration(&value()).unwrap_or(a.warmup),
            "--repeat" => a.repeat = value().parse().unwrap_or(a.repeat),
            "--size" => a.size = value().parse().unwrap_or(a.size),
            "--concurrency" => {
                a.concurrency = value().split(',').filter_map(|c| c.parse().ok()).collect()
            }
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// A pool of any kind behind one checkout-and-query call.
enum AnyPool {
    Tidepool(tidepool_sqlx::PgPool),
    Sqlx(sqlx::PgPool),
}

async fn point(conn: &mut sqlx::PgConnection, id: i32) -> i32 {
    sqlx::query_scalar(POINT)
        .bind(id)
        .fetch_one(conn)
        .await
        .expect("point select")
}

impl AnyPool {
    async fn build(kind: Kind, url: &str, size: u32) -> AnyPool {
        match kind {
            Kind::Tidepool | Kind::TidepoolNoCheck => AnyPool::Tidepool(
                tidepool::Pool::builder(
                    tidepool_sqlx::PgManager::new(url)
                        .expect("url")
                        .check_on_return(kind == Kind::Tidepool),
                )
                .max_size(size)
                .build()
                .await
                .expect("pool"),
            ),
            Kind::Sqlx | Kind::SqlxNoTest => AnyPool::Sqlx(
                PgPoolOptions::new()
                    .max_connections(size)
                    .test_before_acquire(kind == Kind::Sqlx)
                    .connect_lazy(url)
                    .expect("pool"),
            ),
        }
    }

    async fn once(&self, id: i32) -> i32 {
        match self {
            AnyPool::Tidepool(p) => point(&mut p.get().await.expect("get"), id).await,
            AnyPool::Sqlx(p) => point(&mut p.acquire().await.expect("acquire"), id).await,
        }
    }
}

/// ops/s of `c` tasks looping over `pool` for `window`, after `warmup`.
async fn measure(pool: Arc<AnyPool>, c: usize, warmup: Duration, window: Duration) -> f64 {
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..c)
        .map(|t| {
            let (pool, counting, stop, done) =
                (pool.clone(), counting.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut id = (t as i32 * 7919) % ROWS + 1;
                while !stop.load(Ordering::Relaxed) {
                    let v = pool.once(id).await;
                    std::hint::black_box(v);
                    if counting.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    id = (id * 31 + 17) % ROWS + 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let ops = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    ops as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .connect(&a.url)
            .await
            .expect("connect");
        setup
            .execute(sqlx::raw_sql(&format!(
                "DROP TABLE IF EXISTS tp_bench_points_sqlx;
                 CREATE TABLE tp_bench_points_sqlx (id INT PRIMARY KEY, v INT NOT NULL);
                 INSERT INTO tp_bench_points_sqlx SELECT g, g * 2 FROM generate_series(1, {ROWS}) g;
                 ANALYZE tp_bench_points_sqlx;"
            )))
            .await
            .expect("setup");

        println!(
            "point select through sqlx, pool size {}, {} window, medians of {} rounds (kinds interleaved per round); ratio = kind / sqlx's PgPool at its defaults, within each round\n",
            a.size,
            humantime::format_duration(a.duration),
            a.repeat
        );
        for &c in &a.concurrency {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
            let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
            for round in 0..a.repeat {
                let mut this_round = [0.0; KINDS.len()];
                for k in 0..KINDS.len() {
                    // Rotate the order each round so no kind always runs first.
                    let k = (k + round) % KINDS.len();
                    let pool = Arc::new(AnyPool::build(KINDS[k], &a.url, a.size).await);
                    let rate = measure(pool.clone(), c, a.warmup, a.duration).await;
                    eprintln!("c={c} round {round} {:<42} {rate:>9.0} ops/s", KINDS[k].label());
                    this_round[k] = rate;
                    drop(pool);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let anchor = this_round[ANCHOR];
                for k in 0..KINDS.len() {
                    rates[k].push(this_round[k]);
                    ratios[k].push(this_round[k] / anchor);
                }
            }
            println!("**{c} concurrent tasks**\n");
            println!("| pool | ops/s (median) | ratio to sqlx's pool at defaults (median) |");
            println!("|---|---:|---:|");
            for k in 0..KINDS.len() {
                println!(
                    "| {} | {:.0} | {:.2}× |",
                    KINDS[k].label(),
                    median(rates[k].clone()),
                    median(ratios[k].clone())
                );
            }
            println!();
        }
        setup
            .execute("DROP TABLE tp_bench_points_sqlx")
            .await
            .expect("cleanup");
    });
}
