//! The figures in docs/TOPOLOGY.md: point-select throughput through the
//! topologies `.ci/setup-topology.sh` starts, same clients and pool size
//! each time.
//!
//! ```sh
//! cargo run --release -p tidepool-postgres --example topology_figures -- [seconds] [clients] [rounds]
//! ```
//!
//! Runs, alternating so that drift on a shared machine hits every side:
//! `primary` (one pool on :5432), `primary+replica` (a `PgCluster` with
//! primary reads on: the rotation sends half the reads to :5433),
//! `replica` (the cluster's reads all on :5433), `direct` (a pool of 20 on
//! :5432 with the statement cache), `direct-pooler` (the same in pooler
//! mode: unnamed statements), `pgbouncer` (pooler mode through PgBouncer
//! on :6432, `default_pool_size = 4`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool::{Pool, Queryable, Value};
use tidepool_postgres::{PgCluster, PgManager};

const ROWS: i64 = 10_000;
const POOL: u32 = 20;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

#[derive(Clone)]
enum Side {
    Pool(Pool<PgManager>),
    Cluster(PgCluster),
}

async fn run(side: &Side, secs: u64, clients: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let sql = "SELECT id, name FROM tidepool_topology_bench WHERE id = $1";
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let side = side.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = c as i64;
                while Instant::now() < deadline {
                    i = (i * 7919 + 13) % ROWS;
                    let params = [Value::Int(i + 1)];
                    let row = match &side {
                        Side::Pool(p) => {
                            p.get().await.unwrap().query_one_values(sql, &params).await
                        }
                        Side::Cluster(c) => {
                            c.reader()
                                .await
                                .unwrap()
                                .query_one_values(sql, &params)
                                .await
                        }
                    };
                    row.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}

async fn pool(url: &str, pooler: bool) -> Pool<PgManager> {
    let manager = PgManager::builder_from_url(url)
        .unwrap()
        .transaction_pooler(pooler)
        .build()
        .unwrap();
    Pool::builder(manager)
        .max_size(POOL)
        .min_size(POOL)
        .build()
        .await
        .unwrap()
}

#[tokio::main]
async fn main() {
    let secs = arg(1, 5);
    let clients = arg(2, 20);
    let rounds = arg(3, 3);
    let primary =
        env_url("TIDEPOOL_PG_URL", "postgres://postgres@127.0.0.1:5432/test") + "?sslmode=disable";
    let replica = env_url(
        "TIDEPOOL_PG_REPLICA_URL",
        "postgres://postgres@127.0.0.1:5433/test",
    ) + "?sslmode=disable";
    let bouncer = env_url(
        "TIDEPOOL_PGBOUNCER_URL",
        "postgres://postgres@127.0.0.1:6432/test",
    ) + "?sslmode=disable";

    let setup = pool(&primary, false).await;
    setup
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS tidepool_topology_bench;
             CREATE TABLE tidepool_topology_bench (id int8 PRIMARY KEY, name text NOT NULL);
             INSERT INTO tidepool_topology_bench SELECT g, 'name ' || g FROM generate_series(1, {ROWS}) g;
             ANALYZE tidepool_topology_bench"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await; // let the replica replay it

    let mut reader_config = tidepool::Config::default();
    reader_config.max_size = POOL;
    let mut writer_config = reader_config.clone();
    writer_config.max_size = POOL;
    let split = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .primary_reads(true)
        .writer_config(writer_config.clone())
        .reader_config(reader_config.clone())
        .build()
        .await
        .unwrap();
    let replica_only = PgCluster::builder(&primary)
        .unwrap()
        .replica(&replica)
        .unwrap()
        .writer_config(writer_config)
        .reader_config(reader_config)
        .build()
        .await
        .unwrap();
    let sides = [
        ("primary", Side::Pool(pool(&primary, false).await)),
        ("primary+replica", Side::Cluster(split)),
        ("replica", Side::Cluster(replica_only)),
        ("direct-pooler", Side::Pool(pool(&primary, true).await)),
        ("pgbouncer", Side::Pool(pool(&bouncer, true).await)),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for (i, (name, side)) in sides.iter().enumerate() {
            run(side, 1, clients).await; // warm
            let qps = run(side, secs, clients).await;
            println!("round {round} {name:16} {qps:9.0} point selects/s");
            results[i].push(qps);
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!("\nmedians of {rounds} rounds, {clients} clients, pools of {POOL}, {secs} s each:");
    let base = median(&results[0]);
    for (i, (name, _)) in sides.iter().enumerate() {
        let m = median(&results[i]);
        println!("{name:16} {m:9.0}/s  {:.2}x primary", m / base);
    }
    let direct = median(&results[0]);
    let bouncer = median(&results[4]);
    let direct_pooler = median(&results[3]);
    println!(
        "pgbouncer / direct = {:.2}; pgbouncer / direct-pooler = {:.2}",
        bouncer / direct,
        bouncer / direct_pooler
    );
    setup
        .get()
        .await
        .unwrap()
        .batch_execute("DROP TABLE tidepool_topology_bench")
        .await
        .unwrap();
}
