//! `load-shapes`: adaptive capacity (issue 11) against real PostgreSQL —
//! a ramp, a square wave of bursts and an overload, through tidepool's
//! scaling presets, on-demand and fixed pools and deadpool-postgres, with
//! connection opening slowed by `--connect-delay`. Markdown to stdout,
//! progress to stderr.
//!
//! `cargo run --release -p tidepool-bench --bin load-shapes -- --repeat 3`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tidepool::Strategy;
use tidepool_bench::shapes::tables::{self, goal_line, ratios, Column};
use tidepool_bench::shapes::{self, Schedule, ShapeRun, Variant, Work, RANGE_AGGREGATE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// 2 → 40 clients over 20 s and back.
    Ramp,
    /// 4 ↔ 40 clients, 5 s each, 60 s.
    Burst,
    /// 200 clients, max_size 100, a CPU-heavy query.
    Overload,
}

#[derive(Debug, Parser)]
#[command(about = "Ramp, bursts and overload through tidepool's scaling strategies")]
struct Args {
    /// The database (needs pgbench's tables at scale 10 for the overload;
    /// they are created with `pgbench -i -s 10` when missing).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    )]
    url: String,
    /// A database to connect to while checking the benchmark database.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    admin_url: String,
    /// Which shapes.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ramp,burst,overload"
    )]
    scenarios: Vec<Scenario>,
    /// Repeats of every configuration (interleaved, in a rotated order);
    /// tables show medians and the lowest–highest spread.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Added before every connection opens (both tidepool and deadpool).
    #[arg(long, default_value = "30ms", value_parser = humantime::parse_duration)]
    connect_delay: Duration,
    /// Ramp and burst: what a client holds its connection for (`SELECT 1
    /// FROM pg_sleep(..)`: a wait on the server, not CPU).
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Ramp and burst: mean think time between a client's cycles
    /// (exponential).
    #[arg(long, default_value = "30ms", value_parser = humantime::parse_duration)]
    think: Duration,
    /// Overload: unmeasured time first (the pools open, `dynamic` finds its
    /// limit).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    overload_warmup: Duration,
    /// Overload: the measured window.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    overload_window: Duration,
    /// Halve the ramp and burst time axis (10 s ramps, 2.5 s bursts for
    /// 30 s) and shorten the overload windows (2 s + 3 s): a smoke run
    /// whose figures are not those of the issue's shapes.
    #[arg(long)]
    quick: bool,
    /// Print every scaling decision of the first repeat (otherwise the
    /// first 12 per pool).
    #[arg(long)]
    all_decisions: bool,
    /// Run only these configurations (by their table name, e.g.
    /// `dynamic,balanced`); all when empty.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write every run (timelines and decisions included) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

const RAMP_MAX: u32 = 40;
const OVERLOAD_MAX: u32 = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.scenarios.contains(&Scenario::Overload) {
        setup.block_on(tidepool_bench::pg::ensure_database(
            &args.admin_url,
            &args.url,
        ))?;
    }
    drop(setup);
    let scale = if args.quick { 0.5 } else { 1.0 };
    let secs = |s: f64| Duration::from_secs_f64(s * scale);
    let mut out = String::new();
    let mut all: Vec<ShapeRun> = Vec::new();
    let _ = writeln!(
        out,
        "Connection opening slowed by {:?} (a manager wrapper sleeps before delegating connect, for tidepool and deadpool alike); \
         PostgreSQL at {}, no TLS; each run on a fresh two-worker tokio runtime; {} repeat(s), configurations interleaved in a rotated order.\n",
        args.connect_delay,
        redacted(&args.url),
        args.repeat
    );
    let started = Instant::now();
    let hold_sql = format!("SELECT 1 FROM pg_sleep({})", args.hold.as_secs_f64());
    let light = Work {
        sql: hold_sql,
        random_param: None,
        think: args.think,
    };

    if args.scenarios.contains(&Scenario::Ramp) {
        let variants = vec![
            Variant::strategy("balanced", Strategy::Balanced, RAMP_MAX),
            Variant::strategy("dynamic", Strategy::Dynamic, RAMP_MAX),
            Variant::on_demand("on-demand", RAMP_MAX, None),
            Variant::fixed("fixed-at-max", RAMP_MAX, true),
        ];
        let schedule = Schedule::Ramp {
            low: 2,
            high: 40,
            up: secs(20.0),
            down: secs(20.0),
        };
        let load_before = loadavg();
        let (runs, failed) = repeat(&args, "ramp", &variants, schedule, &light);
        ramp_report(&mut out, &runs, &variants, &args, schedule);
        failures(&mut out, &failed);
        let _ = writeln!(
            out,
            "Load average (1 min) at the start: {load_before}, at the end: {}.\n",
            loadavg()
        );
        all.extend(runs);
        flush(&mut out, &all, &args)?;
    }

    if args.scenarios.contains(&Scenario::Burst) {
        let variants = vec![
            Variant::strategy("balanced", Strategy::Balanced, RAMP_MAX),
            Variant::strategy("dynamic", Strategy::Dynamic, RAMP_MAX),
            Variant::on_demand("on-demand-idle-2s", RAMP_MAX, Some(Duration::from_secs(2))),
            Variant::on_demand("on-demand", RAMP_MAX, None),
        ];
        let schedule = Schedule::Square {
            low: 4,
            high: 40,
            half: secs(5.0),
            total: secs(60.0),
        };
        let load_before = loadavg();
        let (runs, failed) = repeat(&args, "burst", &variants, schedule, &light);
        burst_report(&mut out, &runs, &variants, &args, schedule);
        failures(&mut out, &failed);
        let _ = writeln!(
            out,
            "Load average (1 min) at the start: {load_before}, at the end: {}.\n",
            loadavg()
        );
        all.extend(runs);
        flush(&mut out, &all, &args)?;
    }

    if args.scenarios.contains(&Scenario::Overload) {
        let mut variants = vec![Variant::strategy(
            "dynamic",
            Strategy::Dynamic,
            OVERLOAD_MAX,
        )];
        for n in [2, 4, 8, 16, 32, 64, 100] {
            variants.push(Variant::fixed(&format!("fixed-{n}"), n, false));
        }
        variants.push(Variant::deadpool("deadpool-100", OVERLOAD_MAX as usize));
        let (warmup, window) = if args.quick {
            (Duration::from_secs(2), Duration::from_secs(3))
        } else {
            (args.overload_warmup, args.overload_window)
        };
        let schedule = Schedule::Steady {
            clients: 200,
            warmup,
            window,
        };
        let heavy = Work {
            sql: RANGE_AGGREGATE.into(),
            random_param: Some(tidepool_bench::pg::ACCOUNTS - 2000),
            think: Duration::ZERO,
        };
        let load_before = loadavg();
        let (runs, failed) = repeat(&args, "overload", &variants, schedule, &heavy);
        overload_report(&mut out, &runs, &variants, &args, schedule);
        failures(&mut out, &failed);
        let _ = writeln!(
            out,
            "Load average (1 min) at the start: {load_before}, at the end: {}.\n",
            loadavg()
        );
        all.extend(runs);
        flush(&mut out, &all, &args)?;
    }

    let _ = writeln!(out, "Whole run: {:.0} s.", started.elapsed().as_secs_f64());
    flush(&mut out, &all, &args)
}

/// Prints what is ready (so an interrupted run keeps its finished shapes)
/// and rewrites the JSON with every run so far.
fn flush(
    out: &mut String,
    all: &[ShapeRun],
    args: &Args,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write as _;
    print!("{out}");
    std::io::stdout().flush()?;
    out.clear();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(all)?)?;
    }
    Ok(())
}

/// The 1-minute load average, from `/proc/loadavg` (other sessions share
/// the machine: say how busy it was).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn failures(out: &mut String, failed: &[String]) {
    if !failed.is_empty() {
        let _ = writeln!(out, "Runs that failed (left out of the medians above):\n");
        for f in failed {
            let _ = writeln!(out, "- {f}");
        }
        out.push('\n');
    }
}

/// The URL without any password (there is none by default; a user's own
/// URL may carry one).
fn redacted(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => format!(
            "{}/{}",
            c.get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default(),
            c.get_dbname().unwrap_or("")
        ),
        Err(_) => "(unparsable URL)".into(),
    }
}

/// Every variant once per repeat, in an order rotated each repeat. A run
/// that fails (a pool that cannot be built, say, when other sessions hold
/// the server's connection slots) is reported and left out.
fn repeat(
    args: &Args,
    scenario: &str,
    variants: &[Variant],
    schedule: Schedule,
    work: &Work,
) -> (Vec<ShapeRun>, Vec<String>) {
    let (mut runs, mut failed) = (Vec::new(), Vec::new());
    let variants: Vec<&Variant> = variants
        .iter()
        .filter(|v| args.only.is_empty() || args.only.contains(&v.name))
        .collect();
    for r in 0..args.repeat {
        for i in 0..variants.len() {
            let v = variants[(i + r) % variants.len()];
            eprint!(
                "{scenario} repeat {}/{} {:<18} ",
                r + 1,
                args.repeat,
                v.name
            );
            let run = match shapes::run(v, &args.url, args.connect_delay, schedule, work, r) {
                Ok(run) => run,
                Err(e) => {
                    eprintln!("failed: {e}");
                    failed.push(format!("{scenario}, repeat {}, `{}`: {e}", r + 1, v.name));
                    continue;
                }
            };
            eprintln!(
                "wait p99 {:>8.0} µs  conn-s {:>6.0}  opened {:>4}  {:>7.0} q/s  errors {}",
                run.wait_us[1], run.connection_seconds, run.opened, run.throughput, run.errors
            );
            if let Some(e) = &run.first_error {
                eprintln!("  first error: {e}");
            }
            runs.push(run);
        }
    }
    (runs, failed)
}

fn names(variants: &[Variant]) -> Vec<String> {
    variants.iter().map(|v| v.name.clone()).collect()
}

fn first<'a>(runs: &'a [ShapeRun], v: &str) -> Option<&'a ShapeRun> {
    tables::of(runs, v).into_iter().next()
}

fn dump_decisions(out: &mut String, runs: &[ShapeRun], variants: &[&str], args: &Args) {
    for v in variants {
        if let Some(r) = first(runs, v) {
            let limit = if args.all_decisions { usize::MAX } else { 12 };
            let _ = writeln!(
                out,
                "Scaling decisions of `{v}`, repeat 1 ({} in all):\n\n```text\n{}```\n",
                r.decisions.len(),
                tables::decisions(r, limit)
            );
        }
    }
}

fn ramp_report(
    out: &mut String,
    runs: &[ShapeRun],
    variants: &[Variant],
    args: &Args,
    s: Schedule,
) {
    let _ = writeln!(
        out,
        "### Ramp: {s:?}\n\nClients: get → `SELECT 1 FROM pg_sleep({:?})` → drop, then think {:?} (mean, exponential). max_size {RAMP_MAX}.\n",
        args.hold, args.think
    );
    out.push_str(&tables::table(
        runs,
        &names(variants),
        &[
            Column {
                header: "wait p50 µs",
                value: |r| r.wait_us[0],
                decimals: 0,
            },
            Column {
                header: "wait p99 µs",
                value: |r| r.wait_us[1],
                decimals: 0,
            },
            Column {
                header: "wait p99.9 µs",
                value: |r| r.wait_us[2],
                decimals: 0,
            },
            Column {
                header: "wait max ms",
                value: |r| r.wait_us[3] / 1e3,
                decimals: 1,
            },
            Column {
                header: "waits ≥ 10 ms",
                value: |r| r.slow_waits as f64,
                decimals: 0,
            },
            Column {
                header: "acquires",
                value: |r| r.cycles as f64,
                decimals: 0,
            },
            Column {
                header: "connection-s",
                value: |r| r.connection_seconds,
                decimals: 0,
            },
            Column {
                header: "opened",
                value: |r| r.opened as f64,
                decimals: 0,
            },
            Column {
                header: "peak open",
                value: |r| r.peak_size as f64,
                decimals: 0,
            },
            Column {
                header: "errors",
                value: |r| r.errors as f64,
                decimals: 0,
            },
        ],
    ));
    out.push('\n');
    for v in ["balanced", "dynamic"] {
        out.push_str(&goal_line(
            &format!("p99 wait, on-demand ÷ {v}"),
            &ratios(runs, "on-demand", v, |r| r.wait_us[1]),
            3.0,
            true,
        ));
        out.push_str(&goal_line(
            &format!("connection-seconds, {v} ÷ fixed-at-max"),
            &ratios(runs, v, "fixed-at-max", |r| r.connection_seconds),
            0.6,
            false,
        ));
        out.push_str(&goal_line(
            &format!("(not a goal) p99.9 wait, on-demand ÷ {v}"),
            &ratios(runs, "on-demand", v, |r| r.wait_us[2]),
            3.0,
            true,
        ));
    }
    out.push('\n');
    for v in ["balanced", "dynamic"] {
        if let Some(r) = first(runs, v) {
            let _ = writeln!(
                out,
                "Timeline of `{v}`, repeat 1:\n\n{}",
                tables::timeline(r, 4.0)
            );
        }
    }
    dump_decisions(out, runs, &["balanced", "dynamic"], args);
}

fn burst_report(
    out: &mut String,
    runs: &[ShapeRun],
    variants: &[Variant],
    args: &Args,
    s: Schedule,
) {
    let _ = writeln!(
        out,
        "### Bursts: {s:?}\n\nClients as in the ramp: get → `SELECT 1 FROM pg_sleep({:?})` → drop, think {:?}. max_size {RAMP_MAX}.\n",
        args.hold, args.think
    );
    out.push_str(&tables::table(
        runs,
        &names(variants),
        &[
            Column {
                header: "opened",
                value: |r| r.opened as f64,
                decimals: 0,
            },
            Column {
                header: "wait p99 µs",
                value: |r| r.wait_us[1],
                decimals: 0,
            },
            Column {
                header: "wait p99.9 µs",
                value: |r| r.wait_us[2],
                decimals: 0,
            },
            Column {
                header: "waits ≥ 10 ms",
                value: |r| r.slow_waits as f64,
                decimals: 0,
            },
            Column {
                header: "acquires",
                value: |r| r.cycles as f64,
                decimals: 0,
            },
            Column {
                header: "connection-s",
                value: |r| r.connection_seconds,
                decimals: 0,
            },
            Column {
                header: "peak open",
                value: |r| r.peak_size as f64,
                decimals: 0,
            },
            Column {
                header: "errors",
                value: |r| r.errors as f64,
                decimals: 0,
            },
        ],
    ));
    out.push('\n');
    for v in ["balanced", "dynamic"] {
        let opened: Vec<f64> = tables::of(runs, v)
            .iter()
            .map(|r| r.opened as f64 / f64::from(RAMP_MAX))
            .collect();
        out.push_str(&goal_line(
            &format!("connections opened ÷ max_size, {v}"),
            &opened,
            2.0,
            false,
        ));
        out.push_str(&goal_line(
            &format!("(anchor) opened, {v} ÷ on-demand-idle-2s"),
            &ratios(runs, v, "on-demand-idle-2s", |r| r.opened as f64),
            1.0,
            false,
        ));
        out.push_str(&goal_line(
            &format!("(anchor) p99 wait, {v} ÷ on-demand-idle-2s"),
            &ratios(runs, v, "on-demand-idle-2s", |r| r.wait_us[1]),
            1.0,
            false,
        ));
    }
    out.push('\n');
    for v in ["balanced", "dynamic"] {
        if let Some(r) = first(runs, v) {
            let _ = writeln!(
                out,
                "Timeline of `{v}`, repeat 1:\n\n{}",
                tables::timeline(r, 2.5 * if args.quick { 0.5 } else { 1.0 })
            );
        }
    }
    dump_decisions(out, runs, &["balanced", "dynamic"], args);
}

fn overload_report(
    out: &mut String,
    runs: &[ShapeRun],
    variants: &[Variant],
    args: &Args,
    s: Schedule,
) {
    let _ = writeln!(
        out,
        "### Overload: {s:?}\n\nClients: get → `{RANGE_AGGREGATE}` (random $1) → drop, no think time. `dynamic` has max_size {OVERLOAD_MAX} and is not told the size; fixed-N has min = max = N, opened during the warm-up (on demand and by the top-up to min_size).\n"
    );
    out.push_str(&tables::table(
        runs,
        &names(variants),
        &[
            Column {
                header: "q/s",
                value: |r| r.throughput,
                decimals: 0,
            },
            Column {
                header: "cycle p50 ms",
                value: |r| r.cycle_us[0] / 1e3,
                decimals: 1,
            },
            Column {
                header: "cycle p99 ms",
                value: |r| r.cycle_us[1] / 1e3,
                decimals: 1,
            },
            Column {
                header: "wait p99 ms",
                value: |r| r.wait_us[1] / 1e3,
                decimals: 1,
            },
            Column {
                header: "peak open",
                value: |r| r.peak_size as f64,
                decimals: 0,
            },
            Column {
                header: "errors",
                value: |r| r.errors as f64,
                decimals: 0,
            },
        ],
    ));
    out.push('\n');
    let fixed: Vec<&Variant> = variants
        .iter()
        .filter(|v| v.name.starts_with("fixed-"))
        .collect();
    let best = fixed
        .iter()
        .map(|v| {
            let tps: Vec<f64> = tables::of(runs, &v.name)
                .iter()
                .map(|r| r.throughput)
                .collect();
            (v.name.clone(), tidepool_bench::report::median(&tps))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((best, _)) = best {
        let _ = writeln!(out, "Best fixed size by median throughput: `{best}`.\n");
        out.push_str(&goal_line(
            &format!("throughput, dynamic ÷ {best}"),
            &ratios(runs, "dynamic", &best, |r| r.throughput),
            0.95,
            true,
        ));
        out.push_str(&goal_line(
            &format!("cycle p99, dynamic ÷ {best}"),
            &ratios(runs, "dynamic", &best, |r| r.cycle_us[1]),
            1.1,
            false,
        ));
        out.push_str(&goal_line(
            "(anchor) throughput, dynamic ÷ deadpool-100",
            &ratios(runs, "dynamic", "deadpool-100", |r| r.throughput),
            1.0,
            true,
        ));
    }
    out.push('\n');
    if let Some(r) = first(runs, "dynamic") {
        let every = (s.total().as_secs_f64() / 10.0).max(0.5);
        let _ = writeln!(
            out,
            "Timeline of `dynamic`, repeat 1:\n\n{}",
            tables::timeline(r, every)
        );
    }
    dump_decisions(out, runs, &["dynamic"], args);
}
