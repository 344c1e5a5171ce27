//! `fault-figures`: the fault-recovery figures of docs/RELIABILITY.md.
//!
//! One run drives the same open-loop workload (a new request every 10 ms,
//! each `get()` + `SELECT 1` under a 3 s deadline) through five pools at
//! once: tidepool with its defaults, holding while open, and with the
//! breaker off, deadpool-postgres and bb8-postgres, each behind its own
//! fault proxy in front of the local PostgreSQL, and makes the same fault
//! for all at the same instant: on every proxy, (a) database down, (b)
//! black hole, (c) a momentary RST, (d) +200 ms each way; on the server,
//! (f) a restart (asked for explicitly: it needs root) and (g)
//! `pg_terminate_backend` of every pool's sessions. Then (e): the latency
//! of a failing acquire against a dead database, pool by pool. Every scenario is
//! repeated (`--repeat`), the pools' order rotating, and the report gives
//! medians as markdown tables (stdout) and, with `--json FILE`, every run.
//!
//! Only loopback addresses are ever contacted.

#[path = "fault_figures/dead.rs"]
mod dead;
#[path = "fault_figures/figures.rs"]
mod figures;
#[path = "fault_figures/report.rs"]
mod report;
#[path = "fault_figures/scenario.rs"]
mod scenario;
#[path = "fault_figures/server.rs"]
mod server;
#[path = "fault_figures/subjects.rs"]
mod subjects;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use scenario::{Scenario, Timing};
use server::{Cluster, Server};
use subjects::{Kind, Settings};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FigureError {
    /// The target is not a loopback address.
    #[error("--upstream {0} is not a loopback address; fault-figures only talks to loopback")]
    NotLoopback(SocketAddr),
    /// PostgreSQL did not answer before the run.
    #[error("PostgreSQL at {addr} is not reachable as user {user}, database {dbname}: {reason}")]
    Unreachable {
        addr: SocketAddr,
        user: String,
        dbname: String,
        reason: String,
    },
    /// A pool could not be built.
    #[error("building a pool failed: {0}")]
    Build(String),
    /// The fault proxy could not start.
    #[error("starting the fault proxy failed: {0}")]
    Proxy(String),
    /// A pool could not even be warmed up before (e).
    #[error("warming the pool up against a healthy database failed: {0}")]
    Warmup(String),
    /// A load task panicked or was cancelled.
    #[error("a load task failed: {0}")]
    Task(String),
    /// A scenario letter that does not exist.
    #[error("unknown scenario {0:?}: pick from a, b, c, d, e, f, g")]
    UnknownScenario(char),
    /// The runtime could not start.
    #[error("starting the tokio runtime failed: {0}")]
    Runtime(std::io::Error),
    /// Writing the JSON file failed.
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A fault on the server (restart, terminate) could not be made.
    #[error("{0}")]
    Server(String),
    /// Encoding the JSON failed.
    #[error("encoding the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Fault-recovery figures: tidepool (breaker on and off), deadpool-postgres
/// and bb8-postgres under the same faults and the same open-loop load.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Repeats of every scenario; the tables show medians.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Also write every run and the medians to this file as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write every request of every run (and tidepool's failed
    /// connection attempts) as CSV files into this directory.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Scenarios to run: a (down), b (black hole), c (momentary RST),
    /// d (latency), e (failing acquire against a dead database),
    /// f (the server restarted: needs root and a local Debian cluster, so
    /// only when asked for), g (pg_terminate_backend of every session).
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,e,g")]
    scenarios: Vec<char>,
    /// PostgreSQL's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:5432")]
    upstream: SocketAddr,
    /// PostgreSQL user (trust authentication expected).
    #[arg(long, default_value = "postgres")]
    user: String,
    /// PostgreSQL database.
    #[arg(long, default_value = "test")]
    dbname: String,
    /// Maximum connections of every pool.
    #[arg(long, default_value_t = 10)]
    pool_size: u32,
    /// Acquire timeout of every pool (deadpool: wait timeout; bb8:
    /// connection_timeout).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    acquire_timeout: Duration,
    /// Connect timeout where the pool has one (tidepool: connect_timeout;
    /// deadpool: create timeout; all: tokio-postgres' socket timeout).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// tidepool-postgres' sslmode. The anchors connect with tokio-postgres'
    /// `NoTls`; `disable` puts tidepool on the same wire (its own default,
    /// `prefer`, adds an SSLRequest round trip and a TLS handshake when the
    /// server offers TLS).
    #[arg(long, default_value = "disable")]
    tidepool_sslmode: String,
    /// Overrides tidepool's `BreakerConfig::max_recovery_timeout` (the
    /// probe spacing cap) for the breaker-on pools.
    #[arg(long, value_parser = humantime::parse_duration)]
    tidepool_max_recovery_timeout: Option<Duration>,
    /// Overrides tidepool's `BreakerConfig::half_open_requests` (probe
    /// attempts a round) for the breaker-on pools.
    #[arg(long)]
    tidepool_half_open_requests: Option<u32>,
    /// Healthy time before the fault.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    healthy: Duration,
    /// How long the fault lasts in (a), (b) and (d).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    fault: Duration,
    /// How long the resets last in (c).
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    rst_fault: Duration,
    /// Healed time after the fault.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    healed: Duration,
    /// Time between two requests (open loop), per pool.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Overall deadline of one request (acquire + query).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    deadline: Duration,
    /// Failing acquires timed per pool in (e).
    #[arg(long, default_value_t = 1000)]
    dead_calls: usize,
    /// Time budget per pool in (e), for pools whose failing acquire is slow.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    dead_budget: Duration,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("fault-figures: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), FigureError> {
    if !args.upstream.ip().is_loopback() {
        return Err(FigureError::NotLoopback(args.upstream));
    }
    let mut scenarios = Vec::new();
    let mut dead = false;
    for c in &args.scenarios {
        match c.to_ascii_lowercase() {
            'a' => scenarios.push(Scenario::Down),
            'b' => scenarios.push(Scenario::BlackHole),
            'c' => scenarios.push(Scenario::Rst),
            'd' => scenarios.push(Scenario::Latency),
            'e' => dead = true,
            'f' => scenarios.push(Scenario::Restart),
            'g' => scenarios.push(Scenario::Terminate),
            other => return Err(FigureError::UnknownScenario(other)),
        }
    }
    let settings = Settings {
        size: args.pool_size,
        acquire_timeout: args.acquire_timeout,
        connect_timeout: args.connect_timeout,
        user: args.user.clone(),
        dbname: args.dbname.clone(),
        tidepool_sslmode: args.tidepool_sslmode.clone(),
        max_recovery_timeout: args.tidepool_max_recovery_timeout,
        half_open_requests: args.tidepool_half_open_requests,
    };
    let timing = Timing {
        healthy: args.healthy,
        fault: args.fault,
        rst_fault: args.rst_fault,
        healed: args.healed,
        interval: args.interval,
        deadline: args.deadline,
    };
    // The pools share a two-worker runtime (the machine's cores); the
    // proxies, standing in for the network, get a worker of their own.
    let main_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(FigureError::Runtime)?;
    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fault-proxy")
        .enable_all()
        .build()
        .map_err(FigureError::Runtime)?;
    let proxies = proxy_rt.handle().clone();
    let server = Server {
        upstream: args.upstream,
        user: args.user.clone(),
        dbname: args.dbname.clone(),
    };
    // Refuse before any figure is made, not a minute into the run.
    let cluster = if scenarios.contains(&Scenario::Restart) {
        Some(Cluster::local(args.upstream)?)
    } else {
        None
    };
    let target = scenario::Target {
        proxies: &proxies,
        server: &server,
        cluster: cluster.as_ref(),
    };

    let collected = main_rt.block_on(async {
        check_reachable(&server).await?;
        let mut out = report::Collected {
            load_before: report::loadavg(),
            ..report::Collected::default()
        };
        for repeat in 0..args.repeat.max(1) {
            let mut order = Kind::ALL;
            order.rotate_left(repeat % Kind::ALL.len());
            out.orders.push(order.to_vec());
            for &scenario in &scenarios {
                eprintln!(
                    "repeat {}/{}: ({}) {} ...",
                    repeat + 1,
                    args.repeat.max(1),
                    scenario.letter(),
                    scenario.title()
                );
                let runs = scenario::run(scenario, &order, &settings, &timing, &target).await?;
                for run in &runs {
                    let f = figures::figures(run);
                    eprintln!(
                        "    {:<24} failed {:>5}  recover {:>9}  attempts {:>4}",
                        run.kind.label(),
                        f.failed,
                        report::fmt_recover(f.recover_ms, &timing),
                        f.attempts_during_fault
                    );
                    if let Some(dir) = &args.trace {
                        report::write_trace(dir, repeat, scenario, run)?;
                    }
                    out.runs.push(report::RunOut {
                        repeat,
                        scenario,
                        pool: run.kind,
                        figures: f,
                        tidepool: run.diagnosis.clone(),
                    });
                }
                // Let the server reap the closed sessions.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            if dead {
                eprintln!(
                    "repeat {}/{}: (e) failing acquire against a dead database ...",
                    repeat + 1,
                    args.repeat.max(1)
                );
                // A holding pool answers a dead database at its timeout by
                // design; (e) measures the fail-fast answer.
                for &kind in order.iter().filter(|&&k| k != Kind::TidepoolHold) {
                    let f = dead::run(
                        kind,
                        &settings,
                        &proxies,
                        args.upstream,
                        args.dead_calls,
                        args.dead_budget,
                    )
                    .await?;
                    eprintln!(
                        "    {:<24} calls {:>5}  p50 {:>10.1} us  p99 {:>10.1} us  attempts {:>5}",
                        kind.label(),
                        f.calls,
                        f.p50_us,
                        f.p99_us,
                        f.attempts
                    );
                    out.dead.push(report::DeadOut {
                        repeat,
                        pool: kind,
                        figures: f,
                    });
                }
            }
        }
        out.load_after = report::loadavg();
        Ok::<_, FigureError>(out)
    })?;
    drop(proxy_rt);

    let report = report::Report::new(&command_line(), settings, timing, collected);
    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).map_err(|source| FigureError::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The command as run (no flag carries a secret).
fn command_line() -> String {
    let mut parts: Vec<String> = std::env::args().collect();
    if let Some(first) = parts.first_mut() {
        *first = "fault-figures".to_string();
    }
    parts.join(" ")
}

/// One direct connection, so a missing server is reported before a
/// minute of figures that would all say "down".
async fn check_reachable(server: &Server) -> Result<(), FigureError> {
    server
        .answer(Duration::from_secs(3))
        .await
        .map_err(|e| FigureError::Unreachable {
            addr: server.upstream,
            user: server.user.clone(),
            dbname: server.dbname.clone(),
            reason: e.to_string(),
        })
}
