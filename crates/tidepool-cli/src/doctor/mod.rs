//! `tidepool doctor`: the checks an operator runs before pointing a pool at
//! a database, in the order a connection goes through them (DNS, TCP, TLS
//! and authentication, the server), each a finding with a status and, when
//! something needs attention, what to do. Exit status 0 when every finding
//! is fine, 1 otherwise.
//!
//! The doctor only looks: it never writes, never runs DDL and never creates
//! a database. Servers are asked on a read-only session
//! ([`probe::server`]); SQLite files are opened read-only and must exist
//! ([`crate::sqlite_file`]).

mod checks;
mod findings;
mod network;
mod pooler;
mod probe;

use std::process::ExitCode;
use std::time::Duration;

use crate::error::CliError;
use crate::settings::DoctorSettings;
use crate::sqlite_file;
use crate::target::{redact, with_manager, Target};
use findings::{Finding, Status};

/// A short duration: milliseconds, or microseconds below 10 µs (an
/// in-process SQLite call would otherwise read as "0.00 ms").
pub(crate) fn ms(d: Duration) -> String {
    if d < Duration::from_micros(10) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1000.0)
    }
}

pub(crate) fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// Runs `tidepool doctor`.
pub async fn run(s: &DoctorSettings) -> Result<ExitCode, CliError> {
    let target = Target::parse(&s.url)?;
    let findings = match &target {
        Target::Sqlite(config) => sqlite(config, &target, s),
        Target::Postgres(_) | Target::Mysql(_) => server(&target, s).await?,
    };
    let shown = match &target {
        Target::Sqlite(c) => c.describe(),
        Target::Postgres(u) | Target::Mysql(u) => redact(u),
    };
    print!("{}", findings::render(&shown, &findings));
    Ok(if findings::attention(&findings) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A server: the network first, then the database through the driver.
async fn server(target: &Target, s: &DoctorSettings) -> Result<Vec<Finding>, CliError> {
    let mut out = Vec::new();
    let Some((host, port)) = target.host_port() else {
        out.push(Finding::new(
            Status::Fail,
            "network",
            "the URL names no host and port",
        ));
        return Ok(out);
    };
    let (resolved, addr) = network::dns(&host, port, s.timeout).await;
    out.push(resolved);
    let Some(addr) = addr else { return Ok(out) };
    let tcp = network::tcp(addr, s.timeout).await;
    let reachable = tcp.status == Status::Ok;
    out.push(tcp);
    if !reachable {
        return Ok(out);
    }
    // PostgreSQL: is a PgBouncer in front? Asked first, so that the
    // doctor's own session behind a transaction pooler runs in pooler
    // mode and sets nothing that would outlive it on a shared server
    // connection.
    let admin = match target {
        Target::Postgres(url) => Some(pooler::admin(url, s.timeout).await),
        _ => None,
    };
    let behind_pooler = admin
        .as_ref()
        .is_some_and(pooler::Admin::pools_transactions);
    let probed = match target {
        Target::Postgres(url) if behind_pooler => Target::Postgres(pooler::with_pooler_mode(url)),
        other => other.clone(),
    };
    let probe = with_manager!(&probed, |make, dialect| probe::server(
        make,
        dialect,
        s,
        behind_pooler,
        Some(port)
    )
    .await)?;
    out.extend(checks::all(&probe, target, addr.ip().is_loopback(), s));
    if let (Target::Postgres(url), Some(admin), Ok(_)) = (target, admin, &probe.connected) {
        out.push(pooler::finding(&pooler::PoolerFacts {
            url_port: port,
            server_port: probe.server_port,
            admin,
            pooler_mode_on: pooler::pooler_mode_on(url),
        }));
    }
    Ok(out)
}

/// A SQLite database: the file must exist and is only read.
fn sqlite(
    config: &tidepool_sqlite::SqliteConfig,
    target: &Target,
    s: &DoctorSettings,
) -> Vec<Finding> {
    let mut out = vec![Finding::new(
        Status::Info,
        "network",
        "not applicable to SQLite (a local file)",
    )];
    let file = match config.target() {
        tidepool_sqlite::Target::File(path) => {
            let examined = sqlite_file::examine(path);
            out.push(checks::file(&examined));
            match examined {
                Ok(facts) => Some(facts),
                Err(_) => return out,
            }
        }
        _ => None,
    };
    let probe = probe::sqlite(config.describe(), file, s.pings);
    out.extend(checks::all(&probe, target, true, s));
    out
}
