#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod bench;
mod cli;
mod doctor;
mod error;
mod html;
mod serve;
mod server;
mod settings;
mod size;
mod sqlite_file;
mod svg;
mod target;
mod workload;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tokio::sync::watch;

use cli::{Cli, Command};
use error::{one_line, CliError, EXIT_USAGE};

/// A value as text, for figures read from a server.
pub(crate) fn value_text(v: &tidepool::Value) -> String {
    match v {
        tidepool::Value::Null => String::new(),
        tidepool::Value::Bool(b) => b.to_string(),
        tidepool::Value::Int(i) => i.to_string(),
        tidepool::Value::Float(f) => f.to_string(),
        tidepool::Value::Text(s) => s.clone(),
        tidepool::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        tidepool::Value::Timestamp(t) => t.to_string(),
        tidepool::Value::Date(d) => d.to_string(),
        tidepool::Value::Time(t) => t.to_string(),
        tidepool::Value::TimestampTz(t) => t.to_rfc3339(),
        tidepool::Value::Decimal(d) => d.to_string(),
        tidepool::Value::Uuid(u) => u.to_string(),
        tidepool::Value::Json(j) => j.to_string(),
        other => format!("{other:?}"),
    }
}

/// Exit codes: 0 success, 1 failure (or doctor findings), 2 usage errors
/// (clap's), 130 interrupted by Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // No panic should reach a user; if one does, say so in one line
    // instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let _ = writeln!(
            std::io::stderr(),
            "error: internal error (please report it): {}",
            what.lines().next().unwrap_or("")
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&CliError::io("starting the async runtime", e)),
    };
    let outcome = runtime.block_on(run(cli));
    // Pools close in the background; do not wait on stray blocking threads.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {}", one_line(e));
    ExitCode::from(e.exit_code())
}

/// clap's refusal of the command line, as one line like every other error
/// (clap's own rendering spans several: the error, a tip, the usage).
/// Help and version requests print as clap renders them.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
    }
    let rendered = e.render().to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        let line = line.strip_prefix("tip: ").unwrap_or(line);
        parts.push(line.to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "error: {} (see --help)",
        parts.join("; ")
    );
    ExitCode::from(EXIT_USAGE)
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let file = settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Bench(args) => {
            let settings = settings::BenchSettings::resolve(args, file)?;
            bench_command(settings).await
        }
        Command::Size(args) => {
            let settings = settings::SizeSettings::resolve(args, file)?;
            size::run(&settings).await
        }
        Command::Serve(args) => serve::run(args, interrupt_flag())
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Doctor(args) => {
            let settings = settings::DoctorSettings::resolve(args, file)?;
            doctor::run(&settings).await
        }
    }
}

/// A flag that turns true on the first Ctrl-C; a second one exits at once.
fn interrupt_flag() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted: finishing up and reporting what was measured (Ctrl-C again to quit now)"
        );
        let _ = tx.send(true);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
    rx
}

async fn bench_command(settings: settings::BenchSettings) -> Result<ExitCode, CliError> {
    let stop = interrupt_flag();
    let progress = bench::progress::Progress::detect();
    let report = bench::run(&settings, stop, &progress).await?;
    let text = bench::text::render(&report);
    let _ = std::io::stdout().write_all(text.as_bytes());
    if let Some(path) = &settings.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::io("encoding the JSON report", std::io::Error::other(e)))?;
        std::fs::write(path, json)
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
        progress.note(&format!("wrote {}", path.display()));
    }
    if let Some(path) = &settings.report {
        std::fs::write(path, html::render(&report))
            .map_err(|e| CliError::io(format!("writing {}", path.display()), e))?;
        progress.note(&format!("wrote {}", path.display()));
    }
    Ok(if report.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}
