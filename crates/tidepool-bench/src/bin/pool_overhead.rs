//! `pool-overhead`: acquire+release cycles per second and `get()` latency
//! of tidepool, deadpool, bb8 and the floor, with a manager that does
//! nothing, at several task counts and pool sizes. Prints markdown tables
//! of the medians of the repeats, with ratios, to stdout; progress goes to
//! stderr.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tidepool_bench::harness::{run_point, PointSpec, Sample};
use tidepool_bench::noop::{Hold, PoolKind};
use tidepool_bench::report;

#[derive(Debug, Parser)]
#[command(about = "Pool overhead: cycles/s and get() latency with a no-op manager")]
struct Args {
    /// Repeats of every point; tables show the median.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Measured window per point.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before each window.
    #[arg(long, default_value = "150ms", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Concurrent task counts.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256,4096")]
    tasks: Vec<usize>,
    /// Pool sizes (`max_size`).
    #[arg(long, value_delimiter = ',', default_value = "4,16")]
    sizes: Vec<usize>,
    /// Pools to compare.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tidepool,tidepool-bare,deadpool,bb8,floor"
    )]
    pools: Vec<PoolKind>,
    /// What a task does while it holds a connection: yield once, or
    /// nothing. Several run one after the other.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "yield")]
    hold: Vec<Hold>,
    /// Also write every sample and the medians as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    command: String,
    machine: Machine,
    samples: &'a [Sample],
    medians: &'a [report::Summary],
    paired: Vec<report::Paired>,
}

#[derive(serde::Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        cpu,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.repeat == 0 || args.tasks.is_empty() || args.sizes.is_empty() || args.pools.is_empty() {
        return Err("--repeat, --tasks, --sizes and --pools must not be empty or zero".into());
    }
    if args.tasks.contains(&0) || args.sizes.contains(&0) {
        return Err("task counts and pool sizes must be at least 1".into());
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let machine = machine();
    let runs =
        args.repeat * args.hold.len() * args.sizes.len() * args.tasks.len() * args.pools.len();
    let estimate = (args.duration + args.warmup).as_secs_f64() * runs as f64;
    eprintln!(
        "{runs} runs of {:?} (+{:?} warm-up): about {:.0} s",
        args.duration, args.warmup, estimate
    );

    let started = Instant::now();
    let mut samples = Vec::with_capacity(runs);
    let mut done = 0;
    for repeat in 0..args.repeat {
        for &hold in &args.hold {
            for &size in &args.sizes {
                for &tasks in &args.tasks {
                    // Pools interleave within a repeat, in an order rotated
                    // each repeat, so drift and noise hit every pool alike.
                    let n = args.pools.len();
                    for i in 0..n {
                        let pool = args.pools[(i + repeat) % n];
                        let spec = PointSpec {
                            pool,
                            size,
                            tasks,
                            hold,
                            warmup: args.warmup,
                            duration: args.duration,
                        };
                        let sample = run_point(&spec, repeat)?;
                        done += 1;
                        eprintln!(
                            "[{done}/{runs} {:>4.0}s] repeat {repeat} size {size:>2} tasks {tasks:>4} {:<13} {:>10} p50 {:>9} p99 {:>9} p99.9 {:>9}{}",
                            started.elapsed().as_secs_f64(),
                            pool.name(),
                            report::fmt_rate(sample.throughput),
                            report::fmt_ns(sample.p50_ns as f64),
                            report::fmt_ns(sample.p99_ns as f64),
                            report::fmt_ns(sample.p999_ns as f64),
                            sample
                                .first_error
                                .as_ref()
                                .map_or(String::new(), |e| format!(" ({} errors, first: {e})", sample.errors)),
                        );
                        samples.push(sample);
                    }
                }
            }
        }
    }

    let medians = report::summarize(&samples);
    println!("Command: `{command}`\n");
    println!(
        "Machine: {} cores ({}); tokio multi-thread runtime with 2 workers; {} repeats of {:?} after {:?} warm-up; medians shown; spread = half the range of the repeats' throughput, relative to the median.\n",
        machine.cores, machine.cpu, args.repeat, args.duration, args.warmup
    );
    println!("### Against the goals\n");
    println!("Ratios are medians of per-repeat ratios (pools run back to back within a repeat).\n");
    println!("{}", report::goals_table(&samples));
    println!("### Every point\n");
    print!("{}", report::point_tables(&medians));
    eprintln!("finished in {:.0} s", started.elapsed().as_secs_f64());

    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&JsonReport {
            command,
            machine,
            samples: &samples,
            medians: &medians,
            paired: report::paired(&samples),
        })?;
        std::fs::write(path, json)
            .map_err(|e| format!("could not write {}: {e}", path.display()))?;
    }
    Ok(())
}
