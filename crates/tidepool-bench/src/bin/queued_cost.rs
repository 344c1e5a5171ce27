//! `queued-cost`: a fixed number of get → one prepared query → drop cycles
//! shared by many tasks over a smaller pool, on one thread, so that
//! callers queue for connections the way they do at 50 clients over a
//! pool of 10 (issue 10 item 12). Run under an instruction counter it gives
//! the client-side cost of a cycle *on the queued path* exactly, where
//! `cycle-cost` (one task) only sees the uncontended path. For tidepool it
//! also prints how many validations, checkouts and waited checkouts the
//! pool counted, to stderr.
//!
//! `cargo run --release -p tidepool-bench --bin queued-cost -- --pool tidepool --tasks 50 --size 10 --cycles 5000`

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

use clap::Parser;
use tidepool_bench::pg::{self, BuiltPg, PgCycle, PgKind, Workload};

#[derive(Debug, Parser)]
#[command(
    about = "A fixed number of get-query-drop cycles shared by many tasks over a smaller pool"
)]
struct Args {
    /// The pool.
    #[arg(long, value_enum)]
    pool: PgKind,
    /// Cycles to run, in all.
    #[arg(long, default_value_t = 5000)]
    cycles: u32,
    /// Tasks sharing them.
    #[arg(long, default_value_t = 50)]
    tasks: usize,
    /// Pool size.
    #[arg(long, default_value_t = 10)]
    size: usize,
    /// The query.
    #[arg(long, value_enum, default_value = "select1")]
    workload: Workload,
    /// Worker threads: 0 runs everything on this thread (what an
    /// instruction count wants); 2 is what pg-throughput uses.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    #[command(flatten)]
    target: pg::Target,
}

async fn share<C: PgCycle>(pool: Arc<C>, args: &Args) -> Result<(), String> {
    let left = Arc::new(AtomicU32::new(args.cycles));
    let workload = args.workload;
    let tasks: Vec<_> = (0..args.tasks)
        .map(|t| {
            let (pool, left) = (pool.clone(), left.clone());
            tokio::spawn(async move {
                let mut i = t as u32;
                // Take one cycle at a time until none is left.
                while left
                    .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    i = i.wrapping_add(7919);
                    pool.run(workload, 1 + (i % 100_000) as i32).await?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let rt = if args.workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.workers)
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        pg::ensure_database(&args.target.admin_url, &args.target.url).await?;
        match pg::build(args.pool, args.size, &args.target.url).await? {
            BuiltPg::Tidepool(p) => {
                share(p.clone(), &args).await?;
                let m = p.metrics();
                eprintln!(
                    "validations {} checkouts {} waited {} created {}",
                    m.validations, m.checkouts, m.checkouts_waited, m.connections_created
                );
                Ok(())
            }
            BuiltPg::TidepoolDeadpoolWay(p) => share(p, &args).await,
            BuiltPg::Deadpool(p) => share(p, &args).await,
            BuiltPg::Bb8(p) => share(p, &args).await,
            BuiltPg::Sqlx(p) => share(p, &args).await,
            BuiltPg::Multiplexed(p) => share(p, &args).await,
            BuiltPg::SharedClients(p) => share(p, &args).await,
        }
    })?;
    Ok(())
}
