//! Point selects through diesel-async: tidepool-diesel against the pools
//! diesel-async users plug in (its deadpool and bb8 integrations, at their
//! defaults and with the per-checkout check off). Closed loop: `c` tasks
//! each check out, run one prepared point select, return; ops/s over a
//! window, rounds interleaved, medians of `--repeat`, ratios within each
//! round. Markdown to stdout. Release builds only:
//!
//! `cargo bench -p tidepool-diesel --all-features --bench point_select -- --duration 3s --repeat 3`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryDsl;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::AsyncPgConnection;

diesel::table! {
    tp_bench_points (id) {
        id -> Integer,
        v -> Integer,
    }
}

const ROWS: i32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Tidepool,
    DeadpoolVerified,
    DeadpoolFast,
    Bb8,
    Bb8NoTest,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Tidepool => "tidepool-diesel (defaults)",
            Kind::DeadpoolVerified => "deadpool (diesel-async default: Verified)",
            Kind::DeadpoolFast => "deadpool, RecyclingMethod::Fast",
            Kind::Bb8 => "bb8 (defaults: test_on_check_out)",
            Kind::Bb8NoTest => "bb8, test_on_check_out(false)",
        }
    }
}

const KINDS: [Kind; 5] = [
    Kind::Tidepool,
    Kind::DeadpoolVerified,
    Kind::DeadpoolFast,
    Kind::Bb8,
    Kind::Bb8NoTest,
];

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
    Tidepool(tidepool_diesel::PgPool),
    Deadpool(diesel_async::pooled_connection::deadpool::Pool<AsyncPgConnection>),
    Bb8(bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>),
}

async fn point(conn: &mut AsyncPgConnection, id: i32) -> i32 {
    // Imported here only: its blanket `load` would shadow `AtomicBool::load`.
    use diesel_async::RunQueryDsl;
    tp_bench_points::table
        .find(id)
        .select(tp_bench_points::v)
        .first(conn)
        .await
        .expect("point select")
}

/// The URL with `sslmode=disable` unless it names an sslmode.
fn plain(url: &str) -> String {
    match (url.contains("sslmode="), url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&sslmode=disable"),
        (false, false) => format!("{url}?sslmode=disable"),
    }
}

impl AnyPool {
    async fn build(kind: Kind, url: &str, size: u32) -> AnyPool {
        match kind {
            // diesel-async's managers connect in plaintext; tidepool-diesel's
            // default (`prefer`) would negotiate TLS, so the URL says disable
            // unless it names a mode.
            Kind::Tidepool => AnyPool::Tidepool(
                tidepool::Pool::builder(tidepool_diesel::PgManager::new(&plain(url)).expect("url"))
                    .max_size(size)
                    .build()
                    .await
                    .expect("pool"),
            ),
            Kind::DeadpoolVerified | Kind::DeadpoolFast => {
                let mut config = ManagerConfig::default();
                if kind == Kind::DeadpoolFast {
                    config.recycling_method = RecyclingMethod::Fast;
                }
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                AnyPool::Deadpool(
                    diesel_async::pooled_connection::deadpool::Pool::builder(manager)
                        .max_size(size as usize)
                        .build()
                        .expect("pool"),
                )
            }
            Kind::Bb8 | Kind::Bb8NoTest => AnyPool::Bb8(
                bb8::Pool::builder()
                    .max_size(size)
                    .test_on_check_out(kind == Kind::Bb8)
                    .build(AsyncDieselConnectionManager::new(url))
                    .await
                    .expect("pool"),
            ),
        }
    }

    async fn once(&self, id: i32) -> i32 {
        match self {
            AnyPool::Tidepool(p) => point(&mut p.get().await.expect("get"), id).await,
            AnyPool::Deadpool(p) => point(&mut p.get().await.expect("get"), id).await,
            AnyPool::Bb8(p) => point(&mut p.get().await.expect("get"), id).await,
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
        let (client, connection) = tokio_postgres::connect(&a.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS tp_bench_points;
                 CREATE TABLE tp_bench_points (id INT PRIMARY KEY, v INT NOT NULL);
                 INSERT INTO tp_bench_points SELECT g, g * 2 FROM generate_series(1, {ROWS}) g;
                 ANALYZE tp_bench_points;"
            ))
            .await
            .expect("setup");

        println!(
            "point select through diesel-async, pool size {}, {} window, medians of {} rounds (kinds interleaved per round); ratio = kind / deadpool's diesel-async default, within each round\n",
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
                    eprintln!("c={c} round {round} {:<45} {rate:>9.0} ops/s", KINDS[k].label());
                    this_round[k] = rate;
                    drop(pool);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let anchor = this_round[1];
                for k in 0..KINDS.len() {
                    rates[k].push(this_round[k]);
                    ratios[k].push(this_round[k] / anchor);
                }
            }
            println!("**{c} concurrent tasks**\n");
            println!("| pool | ops/s (median) | ratio to deadpool default (median) |");
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
        client
            .batch_execute("DROP TABLE tp_bench_points")
            .await
            .expect("cleanup");
    });
}
