//! `pg-throughput`: transactions per second and latency of get → one
//! prepared query → drop, through tidepool-postgres, deadpool-postgres,
//! bb8-postgres and sqlx, against `pgbench -S -M prepared`. Markdown to
//! stdout, progress to stderr.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tidepool_bench::pg::{self, PgKind, PgSample, PgSpec, Workload};
use tidepool_bench::report::{fmt_ns, fmt_rate, median};

#[derive(Debug, Parser)]
#[command(
    about = "PostgreSQL throughput of tidepool-postgres, deadpool-postgres, bb8-postgres, sqlx and pgbench"
)]
struct Args {
    #[command(flatten)]
    target: pg::Target,
    /// Repeats of every point; tables show the median.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Measured window per point (pgbench rounds up to whole seconds).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up (connections open, statements prepare).
    #[arg(long, default_value = "400ms", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent tasks.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,200")]
    concurrency: Vec<usize>,
    /// Pool sizes.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    sizes: Vec<usize>,
    /// Queries.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "select1,point-select"
    )]
    workloads: Vec<Workload>,
    /// Pools and modes.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tidepool,tidepool-notest,deadpool,deadpool-verified,bb8,bb8-notest,sqlx,sqlx-notest,pgbench"
    )]
    pools: Vec<PgKind>,
    /// Also write every sample as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.repeat == 0 || args.concurrency.contains(&0) || args.sizes.contains(&0) {
        return Err("--repeat, --concurrency and --sizes must be at least 1".into());
    }
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    setup.block_on(pg::ensure_database(
        &args.target.admin_url,
        &args.target.url,
    ))?;
    drop(setup);

    let pools: Vec<PgKind> = args
        .pools
        .iter()
        .copied()
        .filter(|p| !p.is_per_size())
        .collect();
    let with_pgbench = args.pools.contains(&PgKind::Pgbench);
    let with_direct = args.pools.contains(&PgKind::Direct);
    let load_before = loadavg();
    let started = Instant::now();
    let mut samples: Vec<PgSample> = Vec::new();
    for repeat in 0..args.repeat {
        for &workload in &args.workloads {
            for &size in &args.sizes {
                if with_pgbench && workload == Workload::PointSelect {
                    let s = pg::run_pgbench(&args.target.url, size, args.duration, repeat)?;
                    eprintln!(
                        "[{:>4.0}s] repeat {repeat} {:<12} size {size:>2} pgbench -c {size}: {}",
                        started.elapsed().as_secs_f64(),
                        workload.name(),
                        fmt_rate(s.tps)
                    );
                    samples.push(s);
                }
                if with_direct {
                    let spec = PgSpec {
                        pool: PgKind::Direct,
                        workload,
                        size,
                        concurrency: size,
                        warmup: args.warmup,
                        duration: args.duration,
                    };
                    let s = pg::run_direct(&spec, &args.target.url, repeat)?;
                    eprintln!(
                        "[{:>4.0}s] repeat {repeat} {:<12} size {size:>2} tokio-postgres, {size} clients, no pool: {}",
                        started.elapsed().as_secs_f64(),
                        workload.name(),
                        fmt_rate(s.tps)
                    );
                    samples.push(s);
                }
                for &concurrency in &args.concurrency {
                    for i in 0..pools.len() {
                        let pool = pools[(i + repeat) % pools.len()];
                        let spec = PgSpec {
                            pool,
                            workload,
                            size,
                            concurrency,
                            warmup: args.warmup,
                            duration: args.duration,
                        };
                        let s = pg::run_point(&spec, &args.target.url, repeat)?;
                        eprintln!(
                            "[{:>4.0}s] repeat {repeat} {:<12} size {size:>2} tasks {concurrency:>3} {:<17} {:>9} p50 {:>9} p99 {:>9} max {:>9}{}",
                            started.elapsed().as_secs_f64(),
                            workload.name(),
                            pool.name(),
                            fmt_rate(s.tps),
                            fmt_ns(s.p50_ns.unwrap_or(0) as f64),
                            fmt_ns(s.p99_ns.unwrap_or(0) as f64),
                            fmt_ns(s.max_ns.unwrap_or(0) as f64),
                            s.first_error
                                .as_ref()
                                .map_or(String::new(), |e| format!(" ({} errors, first: {e})", s.errors)),
                        );
                        samples.push(s);
                    }
                }
            }
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!("Command: `{command}`\n");
    println!(
        "{} repeats of {:?} after {:?} warm-up; medians shown; the server runs on the same 2 cores. Load average (1, 5, 15 min) before: {load_before}; after: {}.\n",
        args.repeat, args.duration, args.warmup, loadavg()
    );
    print!("{}", tables(&samples, &args));
    eprintln!("finished in {:.0} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&samples)?)
            .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The machine's load averages, from /proc/loadavg (others share it).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn med(samples: &[&PgSample], f: impl Fn(&PgSample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = samples.iter().filter_map(|s| f(s)).collect();
    (!v.is_empty()).then(|| median(&v))
}

/// Median over repeats of `num(repeat) / den(repeat)`.
fn paired(
    all: &[PgSample],
    num: impl Fn(&PgSample) -> bool,
    den: impl Fn(&PgSample) -> bool,
    key: impl Fn(&PgSample) -> Option<f64>,
) -> Option<f64> {
    let repeats: Vec<usize> = {
        let mut r: Vec<usize> = all.iter().map(|s| s.repeat).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let ratios: Vec<f64> = repeats
        .iter()
        .filter_map(|&r| {
            let a = all
                .iter()
                .find(|s| s.repeat == r && num(s))
                .and_then(&key)?;
            let b = all
                .iter()
                .find(|s| s.repeat == r && den(s))
                .and_then(&key)?;
            (b > 0.0).then(|| a / b)
        })
        .collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

fn opt(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}"))
}

/// Issue 13's benchmark 2: multiplexed reads against the shared-clients
/// ceiling, pgbench and tidepool without multiplexing, paired per repeat,
/// with each ratio's spread (lowest and highest repeat).
fn multiplexed_table(out: &mut String, all: &[PgSample], args: &Args) {
    let tps = |s: &PgSample| Some(s.tps);
    let _ = writeln!(out, "\n### Multiplexed reads\n");
    let _ = writeln!(
        out,
        "Paired ratios: median over repeats of each repeat's ratio, [lowest, highest]. Goals: ≥ 0.9 against the shared clients everywhere; at 200 tasks ≥ 1.2 against pgbench and ≥ 1.8 against tidepool; at 50 tasks ≥ 1.3 against tidepool.\n"
    );
    let _ = writeln!(
        out,
        "| query | size | tasks | multiplexed tx/s | ÷ shared clients | ÷ pgbench -c size | ÷ tidepool | shared clients ÷ pgbench | tidepool ÷ pgbench |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &w in &args.workloads {
        for &size in &args.sizes {
            for &c in &args.concurrency {
                let at = |p: PgKind| {
                    move |s: &PgSample| {
                        s.spec.pool == p
                            && s.spec.workload == w
                            && s.spec.size == size
                            && (p.is_per_size() || s.spec.concurrency == c)
                    }
                };
                let mux: Vec<&PgSample> = all
                    .iter()
                    .filter(|s| at(PgKind::TidepoolMultiplexed)(s))
                    .collect();
                let Some(rate) = med(&mux, tps) else { continue };
                let ratio = |num: PgKind, den: PgKind| -> String {
                    let r = paired_all(all, at(num), at(den), tps);
                    if r.is_empty() {
                        return "–".into();
                    }
                    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    format!("{:.2} [{lo:.2}, {hi:.2}]", median(&r))
                };
                let _ = writeln!(
                    out,
                    "| {} | {size} | {c} | {} | {} | {} | {} | {} | {} |",
                    w.name(),
                    fmt_rate(rate),
                    ratio(PgKind::TidepoolMultiplexed, PgKind::SharedClients),
                    ratio(PgKind::TidepoolMultiplexed, PgKind::Pgbench),
                    ratio(PgKind::TidepoolMultiplexed, PgKind::Tidepool),
                    ratio(PgKind::SharedClients, PgKind::Pgbench),
                    ratio(PgKind::Tidepool, PgKind::Pgbench),
                );
            }
        }
    }
}

/// Each repeat's `num / den`.
fn paired_all(
    all: &[PgSample],
    num: impl Fn(&PgSample) -> bool,
    den: impl Fn(&PgSample) -> bool,
    key: impl Fn(&PgSample) -> Option<f64>,
) -> Vec<f64> {
    let mut repeats: Vec<usize> = all.iter().map(|s| s.repeat).collect();
    repeats.sort_unstable();
    repeats.dedup();
    repeats
        .iter()
        .filter_map(|&r| {
            let a = all
                .iter()
                .find(|s| s.repeat == r && num(s))
                .and_then(&key)?;
            let b = all
                .iter()
                .find(|s| s.repeat == r && den(s))
                .and_then(&key)?;
            (b > 0.0).then(|| a / b)
        })
        .collect()
}

fn tables(all: &[PgSample], args: &Args) -> String {
    let mut out = String::new();
    let tps = |s: &PgSample| Some(s.tps);
    let _ = writeln!(out, "### Against the goals\n");
    let _ = writeln!(
        out,
        "Paired ratios (median over repeats of each repeat's ratio). pgbench, and tokio-postgres with no pool, run with as many clients as the pool has connections.\n"
    );
    let _ = writeln!(
        out,
        "| query | size | tasks | tidepool ÷ deadpool | tidepool ÷ pgbench | tidepool ÷ tokio-postgres, no pool | tokio-postgres, no pool ÷ pgbench | tidepool max ÷ deadpool max | tidepool starved tasks |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &w in &args.workloads {
        for &size in &args.sizes {
            for &c in &args.concurrency {
                let at = |p: PgKind| {
                    move |s: &PgSample| {
                        s.spec.pool == p
                            && s.spec.workload == w
                            && s.spec.size == size
                            && s.spec.concurrency == c
                    }
                };
                let per_size = |p: PgKind| {
                    move |s: &PgSample| {
                        s.spec.pool == p && s.spec.workload == w && s.spec.size == size
                    }
                };
                let pgb = per_size(PgKind::Pgbench);
                let direct = per_size(PgKind::Direct);
                let tide: Vec<&PgSample> = all.iter().filter(|s| at(PgKind::Tidepool)(s)).collect();
                if tide.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} | {size} | {c} | {} | {} | {} | {} | {} | {} |",
                    w.name(),
                    opt(paired(all, at(PgKind::Tidepool), at(PgKind::Deadpool), tps)),
                    opt(paired(all, at(PgKind::Tidepool), pgb, tps)),
                    opt(paired(all, at(PgKind::Tidepool), direct, tps)),
                    opt(paired(all, direct, pgb, tps)),
                    opt(paired(
                        all,
                        at(PgKind::Tidepool),
                        at(PgKind::Deadpool),
                        |s| { s.max_ns.map(|m| m as f64) }
                    )),
                    opt(med(&tide, |s| Some(s.starved_tasks as f64))),
                );
            }
        }
    }
    if args.pools.contains(&PgKind::TidepoolMultiplexed) {
        multiplexed_table(&mut out, all, args);
    }
    let _ = writeln!(out, "\n### Every point\n");
    for &w in &args.workloads {
        for &size in &args.sizes {
            for &c in &args.concurrency {
                let rows: Vec<PgKind> = args
                    .pools
                    .iter()
                    .copied()
                    .filter(|p| !p.is_per_size())
                    .collect();
                let of = |p: PgKind| -> Vec<&PgSample> {
                    all.iter()
                        .filter(|s| {
                            s.spec.pool == p
                                && s.spec.workload == w
                                && s.spec.size == size
                                && (p.is_per_size() || s.spec.concurrency == c)
                        })
                        .collect()
                };
                let dead = med(&of(PgKind::Deadpool), tps);
                let pgbench = of(PgKind::Pgbench);
                let pgb = med(&pgbench, tps);
                let _ = writeln!(out, "#### {}, pool of {size}, {c} tasks\n", w.name());
                let _ = writeln!(
                    out,
                    "| pool | tx/s | spread | ÷ deadpool | ÷ pgbench -c {size} | p50 | p99 | max | starved tasks | errors |"
                );
                let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                let anchors = [PgKind::Direct, PgKind::Pgbench];
                for p in rows.into_iter().chain(anchors) {
                    let ss = of(p);
                    let Some(t) = med(&ss, tps) else { continue };
                    let lo = ss.iter().map(|s| s.tps).fold(f64::INFINITY, f64::min);
                    let hi = ss.iter().map(|s| s.tps).fold(f64::NEG_INFINITY, f64::max);
                    let ratio = |b: Option<f64>| opt(b.filter(|b| *b > 0.0).map(|b| t / b));
                    let lat = |f: fn(&PgSample) -> Option<u64>| {
                        med(&ss, |s| f(s).map(|v| v as f64)).map_or("–".into(), fmt_ns)
                    };
                    let name = match p {
                        PgKind::Pgbench => format!("pgbench -S -M prepared -c {size}"),
                        PgKind::Direct => format!("tokio-postgres, no pool, {size} clients"),
                        PgKind::SharedClients => {
                            format!("{size} tokio-postgres clients shared round-robin, no pool")
                        }
                        _ => p.name().to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "| {name} | {} | ±{:.0}% | {} | {} | {} | {} | {} | {} | {} |",
                        fmt_rate(t),
                        50.0 * (hi - lo) / t,
                        ratio(dead),
                        ratio(pgb),
                        lat(|s| s.p50_ns),
                        lat(|s| s.p99_ns),
                        lat(|s| s.max_ns),
                        opt(med(&ss, |s| Some(s.starved_tasks as f64))),
                        ss.iter().map(|s| s.errors).sum::<u64>(),
                    );
                }
                let _ = writeln!(out);
            }
        }
    }
    out
}
