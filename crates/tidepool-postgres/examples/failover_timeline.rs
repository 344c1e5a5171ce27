//! The failover timeline in docs/TOPOLOGY.md and docs/BENCHMARKS.md: the
//! failover test's scenario, measured. Needs root and the private pair of
//! `.ci/setup-failover.sh` (127.0.0.1:5434/:5435; it runs the script
//! itself, and holds the pair's lock, so it never runs at the same time as
//! the failover test):
//!
//! ```sh
//! cargo run --release -p tidepool-postgres --example failover_timeline -- [rounds] [writers]
//! ```
//!
//! Each round: `writers` tasks insert unique ids for 2 s, the primary is
//! stopped (`pg_ctlcluster ... stop -m fast`), the standby promoted
//! (`pg_ctlcluster ... promote`), the load runs 3 s more, then the pair is
//! rebuilt (the old primary as a standby of the new one). Two sides,
//! alternating, each round on a fresh pair:
//!
//! * `cluster`: a `PgCluster` over the pair (the writer soft-evicts when
//!   the primary is lost and rediscovers the read-write host);
//! * `multi-host`: the anchor, libpq's way — one `Pool` over the URL
//!   `postgres://...@127.0.0.1:P,127.0.0.1:S/test?target_session_attrs=read-write`,
//!   which drops broken connections and finds the read-write host when it
//!   opens new ones, with no eviction.
//!
//! Figures per round: *detect* (from the stop command to the first failed
//! write, and to the writer's soft eviction), *first write* (from the
//! promote command to the first insert acknowledged by the promoted
//! server), *full throughput* (from the promote command to the first
//! 100 ms window, after the first write, with at least 90% of the median
//! 100 ms window before the stop), and the inserts acknowledged and lost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidepool::{Pool, QueryKind, Queryable, Value};
use tidepool_postgres::{PgCluster, PgManager};
use tidepool_testkit::failover::FailoverPair;

const WINDOW: Duration = Duration::from_millis(100);

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
enum Side {
    Cluster(PgCluster),
    Plain(Pool<PgManager>),
}

impl Side {
    async fn write(&self, sql: &str, params: &[Value]) -> Result<Vec<tidepool::Row>, String> {
        match self {
            Side::Cluster(c) => c
                .execute_query(QueryKind::Write, sql, params)
                .await
                .map_err(|e| e.to_string()),
            Side::Plain(p) => match p.get().await {
                Ok(mut conn) => conn
                    .query_values(sql, params)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

struct Round {
    detect_error: Option<Duration>,
    detect_evict: Option<Duration>,
    promote_took: Duration,
    first_write: Option<Duration>,
    full: Option<Duration>,
    acked: usize,
    lost: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn round(pair: FailoverPair, anchor: bool, writers: usize) -> (FailoverPair, Round) {
    let mut pair = pair;
    let (old, new) = (pair.primary_port, pair.standby_port);
    let side = if anchor {
        let url = format!(
            "postgres://postgres@127.0.0.1:{old},127.0.0.1:{new}/test?sslmode=disable&target_session_attrs=read-write"
        );
        let manager = PgManager::from_url(&url).expect("url");
        Side::Plain(Pool::builder(manager).build().await.expect("pool"))
    } else {
        Side::Cluster(
            PgCluster::builder(&pair.url(old))
                .expect("url")
                .replica(&pair.url(new))
                .expect("url")
                .sample_interval(Duration::from_millis(200))
                .build()
                .await
                .expect("cluster"),
        )
    };
    let table = format!("tidepool_failover_timeline_{}", std::process::id());
    side.write(&format!("DROP TABLE IF EXISTS {table}"), &[])
        .await
        .expect("drop");
    side.write(
        &format!("CREATE TABLE {table} (id int8 NOT NULL, port int4 NOT NULL)"),
        &[],
    )
    .await
    .expect("create");
    let insert =
        format!("INSERT INTO {table} (id, port) VALUES ($1, inet_server_port()) RETURNING port");

    let acks = Arc::new(Mutex::new(Vec::<(i64, i32, Instant)>::new()));
    let errors = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let next = Arc::new(AtomicI64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (side, acks, errors, next, stop, insert) = (
                side.clone(),
                acks.clone(),
                errors.clone(),
                next.clone(),
                stop.clone(),
                insert.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    match side.write(&insert, &[Value::Int(id)]).await {
                        Ok(rows) => {
                            let port: i32 =
                                rows.first().and_then(|r| r.try_get(0).ok()).unwrap_or(0);
                            lock(&acks).push((id, port, Instant::now()));
                        }
                        Err(_) => {
                            lock(&errors).push(Instant::now());
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            })
        })
        .collect();
    // Watch for the cluster's soft eviction.
    let evicted_at = Arc::new(Mutex::new(None::<Instant>));
    let watcher = if let Side::Cluster(c) = &side {
        let (c, evicted_at, stop) = (c.clone(), evicted_at.clone(), stop.clone());
        Some(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if c.status().writer_evictions > 0 {
                    *lock(&evicted_at) = Some(Instant::now());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }))
    } else {
        None
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let stop_at = Instant::now();
    pair = tokio::task::spawn_blocking(move || {
        pair.stop_primary().expect("stop");
        pair
    })
    .await
    .expect("join");
    let promote_at = Instant::now();
    pair = tokio::task::spawn_blocking(move || {
        pair.promote_standby().expect("promote");
        pair
    })
    .await
    .expect("join");
    let promote_took = promote_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("writer");
    }
    if let Some(w) = watcher {
        w.await.expect("watcher");
    }

    let acks = std::mem::take(&mut *lock(&acks));
    let errors = std::mem::take(&mut *lock(&errors));
    // Throughput before the stop: acks per 100 ms window over its last
    // 1.5 s.
    let windows_before: Vec<usize> = (1..=15)
        .map(|k| {
            let end = stop_at - WINDOW * (k - 1);
            let start = end - WINDOW;
            acks.iter()
                .filter(|(_, _, at)| *at >= start && *at < end)
                .count()
        })
        .collect();
    let mut sorted = windows_before.clone();
    sorted.sort_unstable();
    let baseline = sorted[sorted.len() / 2];
    let first_new = acks
        .iter()
        .filter(|(_, port, _)| *port == i32::from(new))
        .map(|(_, _, at)| *at)
        .min();
    let full = first_new.and_then(|first| {
        (0..60).find_map(|k| {
            let start = first + Duration::from_millis(10 * k);
            let end = start + WINDOW;
            let n = acks
                .iter()
                .filter(|(_, _, at)| *at >= start && *at < end)
                .count();
            (n * 10 >= baseline * 9).then(|| end.saturating_duration_since(promote_at))
        })
    });
    let present: HashSet<i64> = side
        .write(&format!("SELECT id FROM {table}"), &[])
        .await
        .expect("count")
        .iter()
        .filter_map(|r| r.try_get::<i64, _>(0).ok())
        .collect();
    let lost = acks
        .iter()
        .filter(|(id, _, _)| !present.contains(id))
        .count();
    side.write(&format!("DROP TABLE {table}"), &[])
        .await
        .expect("drop");
    let r = Round {
        detect_error: errors
            .iter()
            .filter(|at| **at >= stop_at)
            .min()
            .map(|at| at.saturating_duration_since(stop_at)),
        detect_evict: lock(&evicted_at).map(|at| at.saturating_duration_since(stop_at)),
        promote_took,
        first_write: first_new.map(|at| at.saturating_duration_since(promote_at)),
        full,
        acked: acks.len(),
        lost,
    };
    drop(side);
    pair = tokio::task::spawn_blocking(move || {
        pair.rebuild().expect("rebuild");
        pair
    })
    .await
    .expect("join");
    (pair, r)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{}", d.as_millis()))
}

fn median_range(v: &[Option<Duration>]) -> String {
    let mut xs: Vec<u128> = v.iter().flatten().map(|d| d.as_millis()).collect();
    if xs.is_empty() {
        return "-".into();
    }
    xs.sort_unstable();
    format!(
        "{} ({}-{}){}",
        xs[xs.len() / 2],
        xs[0],
        xs[xs.len() - 1],
        if xs.len() < v.len() { " [missing]" } else { "" }
    )
}

#[tokio::main]
async fn main() {
    let rounds = arg(1, 3);
    let writers = arg(2, 8);
    let Some(mut pair) = tokio::task::spawn_blocking(|| FailoverPair::acquire("failover_timeline"))
        .await
        .expect("join")
    else {
        eprintln!("the failover pair is not available (needs root and .ci/setup-failover.sh)");
        std::process::exit(1);
    };
    let mut results: Vec<(&str, Vec<Round>)> =
        vec![("cluster", Vec::new()), ("multi-host", Vec::new())];
    for n in 0..rounds {
        for (i, anchor) in [false, true].into_iter().enumerate() {
            let (p, r) = round(pair, anchor, writers).await;
            pair = p;
            println!(
                "round {n} {:10} detect: first error {} ms, eviction {} ms | promote took {} ms | first write {} ms | full throughput {} ms | acked {} lost {}",
                results[i].0,
                ms(r.detect_error),
                ms(r.detect_evict),
                r.promote_took.as_millis(),
                ms(r.first_write),
                ms(r.full),
                r.acked,
                r.lost
            );
            results[i].1.push(r);
        }
    }
    println!("\nmedians (range) of {rounds} rounds, {writers} writers, ms from the stop (detect) or the promote command:");
    println!("| side | detect: first failed write | detect: soft eviction | promotion (pg_ctlcluster) | first write on the new primary | back to 90% throughput | acked inserts lost |");
    println!("|---|---|---|---|---|---|---|");
    for (name, rs) in &results {
        let col = |f: &dyn Fn(&Round) -> Option<Duration>| {
            median_range(&rs.iter().map(f).collect::<Vec<_>>())
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            col(&|r| r.detect_error),
            col(&|r| r.detect_evict),
            col(&|r| Some(r.promote_took)),
            col(&|r| r.first_write),
            col(&|r| r.full),
            rs.iter().map(|r| r.lost).sum::<usize>()
        );
    }
}
