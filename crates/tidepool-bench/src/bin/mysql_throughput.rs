//! MySQL/MariaDB throughput through tidepool-mysql against mysql_async's own
//! pool, side by side in one run: a prepared point select on a 10,000-row
//! table (created if missing) and `SELECT 1`, at several concurrency
//! levels, pools interleaved within each repeat, medians reported.
//!
//! Every pool uses the same transport: TCP to the URL's host, or with
//! `--socket` the server's unix socket. (mysql_async's pool on its own
//! would switch a loopback TCP URL to the unix socket behind the caller's
//! back, `prefer_socket`, which is most of a 25% difference on this
//! machine; tidepool-mysql never switches transport.)
//!
//! `cargo run --release -p tidepool-bench --bin mysql-throughput`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tidepool::{Pool, Queryable, Value};
use tidepool_mysql::mysql_async::prelude::Queryable as _;
use tidepool_mysql::mysql_async::{self, Opts, OptsBuilder, PoolConstraints, PoolOpts};
use tidepool_mysql::{MysqlConfig, MysqlManager, ResetPolicy};

#[derive(Parser)]
#[command(about = "tidepool-mysql against mysql_async's own pool, side by side")]
struct Args {
    /// The server (loopback only).
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/test")]
    url: String,
    /// Concurrent tasks per point.
    #[arg(long, value_delimiter = ',', default_value = "10,50")]
    concurrency: Vec<usize>,
    /// Connections in each pool.
    #[arg(long, default_value_t = 10)]
    size: usize,
    /// Repeats (medians are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Measured time per point.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Connect every pool through this unix socket instead of TCP (for
    /// example /run/mysqld/mysqld.sock).
    #[arg(long)]
    socket: Option<String>,
    /// tidepool-mysql's reset policy (what a returned connection costs).
    #[arg(long, value_enum, default_value = "fast")]
    reset_policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Policy {
    Fast,
    Verified,
    Clean,
}

impl Policy {
    fn into_reset_policy(self) -> ResetPolicy {
        match self {
            Policy::Fast => ResetPolicy::Fast,
            Policy::Verified => ResetPolicy::Verified,
            Policy::Clean => ResetPolicy::Clean,
        }
    }
}

const POINT: &str = "SELECT v FROM tidepool_bench_kv WHERE id = ?";
const ONE: &str = "SELECT 1";
const ROWS: u64 = 10_000;

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Tidepool,
    TidepoolUniform,
    MysqlAsync,
    MysqlAsyncNoReset,
}

enum Pools {
    Tidepool(Pool<MysqlManager>),
    MysqlAsync(mysql_async::Pool),
}

async fn one_cycle(pools: &Pools, sql: &'static str, id: u64, uniform: bool) -> Result<(), String> {
    match pools {
        // The same native call on both sides (mysql_async's `exec_first`,
        // through tidepool's guard), as the PostgreSQL bench does, so the
        // pools are compared and not the uniform face's row conversion.
        Pools::Tidepool(pool) if !uniform => {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            exec_first(&mut conn, sql, id).await
        }
        Pools::Tidepool(pool) => {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            let params = if sql == POINT {
                vec![Value::Int(id as i64)]
            } else {
                Vec::new()
            };
            conn.query_one_values(sql, &params)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Pools::MysqlAsync(pool) => {
            let mut conn = pool.get_conn().await.map_err(|e| e.to_string())?;
            exec_first(&mut conn, sql, id).await
        }
    }
}

/// mysql_async's native call, the same for both pools.
async fn exec_first(
    conn: &mut mysql_async::Conn,
    sql: &'static str,
    id: u64,
) -> Result<(), String> {
    let row: Option<i64> = if sql == POINT {
        conn.exec_first(sql, (id,)).await
    } else {
        conn.exec_first(sql, ()).await
    }
    .map_err(|e| e.to_string())?;
    row.map(drop).ok_or_else(|| "no row".to_string())
}

async fn measure(
    pools: Arc<Pools>,
    sql: &'static str,
    tasks: usize,
    duration: Duration,
    uniform: bool,
) -> f64 {
    // Warm up every connection first.
    let warm_until = Instant::now() + Duration::from_millis(300);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (pools, stop, done, counting) =
                (pools.clone(), stop.clone(), done.clone(), counting.clone());
            tokio::spawn(async move {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if one_cycle(&pools, sql, 1 + x % ROWS, uniform).await.is_ok()
                        && counting.load(Ordering::Relaxed)
                    {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(warm_until.into()).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    n as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if !args.url.contains("127.0.0.1")
        && !args.url.contains("localhost")
        && !args.url.contains("[::1]")
    {
        return Err("only loopback servers may be benchmarked".into());
    }
    if args.repeat == 0 || args.size == 0 || args.concurrency.contains(&0) {
        return Err("--repeat, --size and --concurrency must be at least 1".into());
    }
    // The table, seeded once.
    let admin = mysql_async::Pool::new(Opts::from_url(&args.url)?);
    let mut conn = admin.get_conn().await?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS tidepool_bench_kv (id INT PRIMARY KEY, v BIGINT NOT NULL)",
    )
    .await?;
    conn.query_drop(format!(
        "INSERT IGNORE INTO tidepool_bench_kv (id, v) SELECT seq, seq * 7 FROM seq_1_to_{ROWS}"
    ))
    .await?;
    drop(conn);
    admin.disconnect().await?;

    let size32 = u32::try_from(args.size)?;
    let mut config = MysqlConfig::from_url(&args.url)?;
    if let Some(socket) = &args.socket {
        config = config.with_socket(socket.clone());
    }
    let tidepool = Arc::new(Pools::Tidepool(
        Pool::builder(
            MysqlManager::new(config).with_reset_policy(args.reset_policy.into_reset_policy()),
        )
        .max_size(size32)
        .min_size(size32)
        .initial_size(size32)
        .build()
        .await?,
    ));
    let constraints = PoolConstraints::new(args.size, args.size).ok_or("bad pool size")?;
    // The same transport as tidepool's: no switch to the socket unless
    // asked for.
    let transport = OptsBuilder::from_opts(Opts::from_url(&args.url)?)
        .prefer_socket(false)
        .socket(args.socket.clone());
    let opts = transport
        .clone()
        .pool_opts(PoolOpts::default().with_constraints(constraints));
    let native = Arc::new(Pools::MysqlAsync(mysql_async::Pool::new(opts.clone())));
    // mysql_async resets every connection it takes back by default
    // (COM_RESET_CONNECTION, which also drops its statement cache); this
    // one does not, like tidepool-mysql's default Fast policy.
    let no_reset = transport.pool_opts(
        PoolOpts::default()
            .with_constraints(constraints)
            .with_reset_connection(false),
    );
    let native_no_reset = Arc::new(Pools::MysqlAsync(mysql_async::Pool::new(no_reset)));

    println!(
        "`mysql-throughput --concurrency {:?} --size {} --repeat {} --duration {:?} --reset-policy {:?}`, over {}\n",
        args.concurrency,
        args.size,
        args.repeat,
        args.duration,
        args.reset_policy,
        args.socket
            .as_deref()
            .map_or("TCP".to_string(), |s| format!("the unix socket {s}"))
    );
    println!("| query | tasks | tidepool tx/s | tidepool, uniform face, tx/s | mysql_async pool (default: resets on return) tx/s | mysql_async, reset off, tx/s | tidepool ÷ mysql_async default | tidepool ÷ mysql_async reset off | uniform face ÷ mysql_async reset off |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, sql) in [("point select", POINT), ("SELECT 1", ONE)] {
        for &tasks in &args.concurrency {
            let (mut ours, mut uni, mut theirs, mut theirs_nr) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut ratios, mut ratios_nr, mut ratios_uni) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..args.repeat {
                let mut order = [
                    Which::Tidepool,
                    Which::TidepoolUniform,
                    Which::MysqlAsync,
                    Which::MysqlAsyncNoReset,
                ];
                order.rotate_left(r % 4);
                let (mut a, mut u, mut b, mut c) = (0.0, 0.0, 0.0, 0.0);
                for which in order {
                    let pools = match which {
                        Which::Tidepool | Which::TidepoolUniform => tidepool.clone(),
                        Which::MysqlAsync => native.clone(),
                        Which::MysqlAsyncNoReset => native_no_reset.clone(),
                    };
                    let uniform = which == Which::TidepoolUniform;
                    let rate = measure(pools, sql, tasks, args.duration, uniform).await;
                    match which {
                        Which::Tidepool => a = rate,
                        Which::TidepoolUniform => u = rate,
                        Which::MysqlAsync => b = rate,
                        Which::MysqlAsyncNoReset => c = rate,
                    }
                }
                ours.push(a);
                uni.push(u);
                theirs.push(b);
                theirs_nr.push(c);
                ratios.push(a / b);
                ratios_nr.push(a / c);
                ratios_uni.push(u / c);
            }
            println!(
                "| {name} | {tasks} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} |",
                median(ours),
                median(uni),
                median(theirs),
                median(theirs_nr),
                median(ratios),
                median(ratios_nr),
                median(ratios_uni)
            );
        }
    }
    Ok(())
}
