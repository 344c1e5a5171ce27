//! What exporting costs the checkout path: the same checkout loop with and
//! without a scraper reading `/metrics` (and `/pools`, as the dashboard
//! does) through the router, run back to back and repeated, as the median
//! ratio of checkouts per second. The export records nothing on the hot
//! path — it reads the pool's own counters and histograms when scraped —
//! so what this measures is the scrape's reading (bucket sums, the state
//! lock for the per-connection view) competing with checkouts, at a scrape
//! every 100 ms: 150 times Prometheus' default rate.
//!
//! ```text
//! cargo run --release -p tidepool-http --example export_overhead -- [REPEATS] [SECONDS] [TASKS] [SIZE]
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool::{Manager, Pool};

struct Noop;

impl Manager for Noop {
    type Connection = ();
    type Error = std::io::Error;
    async fn connect(&self) -> std::io::Result<()> {
        Ok(())
    }
    async fn validate(&self, _: &mut ()) -> std::io::Result<()> {
        Ok(())
    }
}

async fn checkouts(
    pool: &Pool<Noop>,
    tasks: usize,
    run: Duration,
    scrape: Option<axum::Router>,
) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (pool, done, count) = (pool.clone(), done.clone(), count.clone());
            tokio::spawn(async move {
                while !done.load(Relaxed) {
                    if let Ok(conn) = pool.get().await {
                        tokio::task::yield_now().await;
                        drop(conn);
                        count.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();
    let scraper = scrape.map(|router| {
        let done = done.clone();
        tokio::spawn(async move {
            use tower_service::Service;
            let mut router = router;
            while !done.load(Relaxed) {
                for path in ["/metrics", "/pools?window=5s"] {
                    let req = axum::http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let resp = router.call(req).await.unwrap();
                    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let started = Instant::now();
    tokio::time::sleep(run).await;
    done.store(true, Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let n = count.load(Relaxed) as f64;
    for w in workers {
        let _ = w.await;
    }
    if let Some(s) = scraper {
        let _ = s.await;
    }
    n / elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (repeats, seconds, tasks, size) = (
        arg(0, 7.0) as usize,
        arg(1, 1.0),
        arg(2, 16.0) as usize,
        arg(3, 4.0) as u32,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = Pool::builder(Noop).name("bench").max_size(size).build().await.unwrap();
        let router = tidepool_http::router(pool.clone());
        let run = Duration::from_secs_f64(seconds);
        let _ = checkouts(&pool, tasks, Duration::from_millis(200), None).await;
        let mut ratios = Vec::new();
        for r in 0..repeats {
            // Alternate which goes first, so drift does not favour one.
            let (off, on) = if r.is_multiple_of(2) {
                let off = checkouts(&pool, tasks, run, None).await;
                (off, checkouts(&pool, tasks, run, Some(router.clone())).await)
            } else {
                let on = checkouts(&pool, tasks, run, Some(router.clone())).await;
                (checkouts(&pool, tasks, run, None).await, on)
            };
            println!("repeat {r}: {off:.0}/s without scraping, {on:.0}/s scraped every 100 ms: {:.3}", on / off);
            ratios.push(on / off);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "median ratio (scraped ÷ not) over {repeats} repeats, {tasks} tasks, max_size {size}: {:.3}",
            ratios[ratios.len() / 2]
        );
    });
}
