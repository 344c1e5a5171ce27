//! `pgbench` orchestration: the libpq connection arguments a URL means,
//! one `pgbench -S -M prepared` run read back as a [`PgSample`], and the
//! benchmark database created and initialised at scale 10 when missing.

use std::time::Duration;

use tokio_postgres::NoTls;

use super::measure::{PgSample, PgSpec};
use super::{PgKind, Workload, ACCOUNTS, SCALE};

/// The `PGSSLMODE` that libpq tools (pgbench) need to connect the way the
/// URL says: without it they default to `prefer` and use TLS whenever the
/// server offers it, while the Rust pools here connect without TLS.
pub fn libpq_sslmode(url: &str) -> Result<&'static str, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    Ok(match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "disable",
        tokio_postgres::config::SslMode::Require => "require",
        _ => "prefer",
    })
}

/// Connection arguments for the `pgbench` and `psql`-style command-line
/// tools, from a URL.
pub fn cli_args(url: &str) -> Result<(Vec<String>, String), String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    let mut args = Vec::new();
    if let Some(tokio_postgres::config::Host::Tcp(h)) = config.get_hosts().first() {
        args.extend(["-h".to_string(), h.clone()]);
    }
    if let Some(p) = config.get_ports().first() {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    if let Some(u) = config.get_user() {
        args.extend(["-U".to_string(), u.to_string()]);
    }
    let db = config
        .get_dbname()
        .ok_or("the URL names no database")?
        .to_string();
    Ok((args, db))
}

/// Runs `pgbench -S -M prepared` with `clients` connections for
/// `duration` (whole seconds, at least 1) and reads its throughput.
pub fn run_pgbench(
    url: &str,
    clients: usize,
    duration: Duration,
    repeat: usize,
) -> Result<PgSample, String> {
    let (args, db) = cli_args(url)?;
    let secs = duration.as_secs().max(1);
    let output = std::process::Command::new("pgbench")
        .env("PGSSLMODE", libpq_sslmode(url)?)
        .args(&args)
        .args(["-n", "-S", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &secs.to_string()])
        .arg(&db)
        .output()
        .map_err(|e| format!("could not run pgbench: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let number_after = |key: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split('=').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tps =
        number_after("tps").ok_or_else(|| format!("no tps line in pgbench's output: {text}"))?;
    let mean_ms = number_after("latency average");
    Ok(PgSample {
        spec: PgSpec {
            pool: PgKind::Pgbench,
            workload: Workload::PointSelect,
            size: clients,
            concurrency: clients,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(secs),
        },
        repeat,
        tps,
        p50_ns: None,
        p99_ns: None,
        max_ns: None,
        mean_ns: mean_ms.map(|ms| ms * 1e6),
        starved_tasks: 0,
        errors: 0,
        first_error: None,
    })
}

/// Makes sure the benchmark database exists and holds pgbench's tables at
/// scale 10: creates the database through `admin_url` if needed, and runs
/// `pgbench -i -s 10` if `pgbench_accounts` is missing or the wrong size.
pub async fn ensure_database(admin_url: &str, url: &str) -> Result<(), String> {
    let (_, db) = cli_args(url)?;
    if !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "database name {db:?} must be letters, digits and _"
        ));
    }
    let (admin, conn) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .map_err(|e| format!("could not connect to the admin database: {e}"))?;
    let task = tokio::spawn(conn);
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        eprintln!("creating database {db}");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .map_err(|e| format!("could not create database {db}: {e}"))?;
    }
    drop(admin);
    task.abort();

    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("could not connect to {db}: {e}"))?;
    let task = tokio::spawn(conn);
    let rows: Option<i64> = client
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .ok()
        .map(|r| r.get(0));
    drop(client);
    task.abort();
    if rows == Some(i64::from(ACCOUNTS)) {
        return Ok(());
    }
    eprintln!("initialising {db} with pgbench -i -s {SCALE} (about a minute)");
    let (args, db) = cli_args(url)?;
    let status = std::process::Command::new("pgbench")
        .env("PGSSLMODE", libpq_sslmode(url)?)
        .args(&args)
        .args(["-i", "-q", "-s", &SCALE.to_string()])
        .arg(&db)
        .status()
        .map_err(|e| format!("could not run pgbench -i: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pgbench -i failed: {status}"))
    }
}
