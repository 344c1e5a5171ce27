//! `cycle-cost`: a fixed number of get → one prepared query → drop cycles,
//! on one task of a single-threaded runtime, through one PostgreSQL pool.
//! Run under an instruction counter it gives the client-side cost of a
//! cycle exactly — the same count for the same binary and inputs however
//! busy the machine is — which wall-clock throughput on two shared cores
//! cannot. `scripts/instructions-per-cycle.sh` runs it under callgrind for
//! every pool and prints the table.
//!
//! `cargo run --release -p tidepool-bench --bin cycle-cost -- --pool tidepool --cycles 1000`

use clap::Parser;
use std::time::Duration;

use tidepool_bench::pg::{self, BuiltPg, DeadpoolWay, DirectClient, PgCycle, PgKind, Workload};

#[derive(Debug, Parser)]
#[command(about = "A fixed number of get-query-drop cycles through one PostgreSQL pool")]
struct Args {
    /// The pool (`direct`: tokio-postgres with no pool).
    #[arg(long, value_enum)]
    pool: PgKind,
    /// Cycles to run.
    #[arg(long, default_value_t = 1000)]
    cycles: u32,
    /// The query.
    #[arg(long, value_enum, default_value = "select1")]
    workload: Workload,
    /// With `tidepool` or `tidepool-deadpool-way`: tidepool-postgres'
    /// session-state dirty bits off (`track_session_state(false)`), the
    /// anchor for what the tracking costs.
    #[arg(long)]
    no_session_tracking: bool,
    #[command(flatten)]
    target: pg::Target,
}

/// The `tidepool` pool of `pg::build` (size 1, its defaults), with the
/// session-state dirty bits off.
async fn untracked(url: &str) -> Result<tidepool::Pool<tidepool_postgres::PgManager>, String> {
    let manager = tidepool_postgres::PgManager::builder_from_url(url)
        .map_err(|e| e.to_string())?
        .track_session_state(false)
        .build()
        .map_err(|e| e.to_string())?;
    tidepool::Pool::builder(manager)
        .max_size(1)
        .acquire_timeout(Duration::from_secs(30))
        .strategy(tidepool::Strategy::Fixed)
        .build()
        .await
        .map_err(|e| e.to_string())
}

async fn cycles<C: PgCycle>(pool: &C, workload: Workload, n: u32) -> Result<(), String> {
    for i in 0..n {
        let aid = 1 + (i % 1000) as i32;
        pool.run(workload, aid).await?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config: tokio_postgres::Config = args.target.url.parse()?;
    let loopback = config.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    });
    if !loopback {
        return Err("only loopback servers may be benchmarked".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        pg::ensure_database(&args.target.admin_url, &args.target.url).await?;
        let (w, n) = (args.workload, args.cycles);
        match args.pool {
            PgKind::Pgbench => Err("pgbench is not a Rust pool".to_string()),
            PgKind::Direct => cycles(&DirectClient::connect(&args.target.url).await?, w, n).await,
            PgKind::Tidepool if args.no_session_tracking => {
                cycles(&untracked(&args.target.url).await?, w, n).await
            }
            PgKind::TidepoolDeadpoolWay if args.no_session_tracking => {
                cycles(&DeadpoolWay(untracked(&args.target.url).await?), w, n).await
            }
            _ if args.no_session_tracking => {
                Err("--no-session-tracking applies to tidepool pools only".to_string())
            }
            kind => match pg::build(kind, 1, &args.target.url).await? {
                BuiltPg::Tidepool(p) => cycles(&*p, w, n).await,
                BuiltPg::TidepoolDeadpoolWay(p) => cycles(&*p, w, n).await,
                BuiltPg::Deadpool(p) => cycles(&*p, w, n).await,
                BuiltPg::Bb8(p) => cycles(&*p, w, n).await,
                BuiltPg::Sqlx(p) => cycles(&*p, w, n).await,
                BuiltPg::Multiplexed(p) => cycles(&*p, w, n).await,
                BuiltPg::SharedClients(p) => cycles(&*p, w, n).await,
            },
        }
    })?;
    Ok(())
}
