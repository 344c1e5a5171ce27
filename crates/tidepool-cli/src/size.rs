//! `tidepool size`: the pool-size arithmetic, shown step by step.
//!
//! 1. Little's law: connections busy on average = query rate x time each
//!    query holds a connection. Per instance, that load is divided.
//! 2. Bursts: arrivals are random, so the number busy at an instant varies
//!    around the mean; for Poisson arrivals it exceeds `L + 3 * sqrt(L)`
//!    only about 0.1% of the time. That is the per-instance max_size that
//!    almost never makes a request wait.
//! 3. The database's useful concurrency, `cores * 2 + spindles` (the
//!    PostgreSQL wiki's and HikariCP's rule of thumb): beyond this many
//!    active connections in total, more connections add queueing on the
//!    server, not throughput.
//! 4. The server's `max_connections`, less a reserve for admins and other
//!    clients, shared by all instances, is the hard ceiling.

use std::fmt::Write;
use std::process::ExitCode;
use std::time::Duration;

use tidepool::{Manager, Pool, Queryable};

use crate::error::{one_line, CliError};
use crate::server::{facts, make_read_only, Reader, ServerFacts};
use crate::settings::{SizeSettings, ASSUMED_CORES};
use crate::sqlite_file;
use crate::target::{with_manager, Dialect, Target};

/// The inputs of the arithmetic.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub rate: f64,
    pub query_time: Duration,
    pub concurrent_requests: Option<u32>,
    pub instances: u32,
    /// `None`: not given, so [`ASSUMED_CORES`] is used and said to be a guess.
    pub cores: Option<u32>,
    pub spindles: u32,
    pub max_connections: Option<u64>,
    pub reserved: Option<u64>,
    /// Connections already open on the server (from --url).
    pub current_connections: Option<u64>,
}

/// The recommendation and the lines that explain it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub min_size: u32,
    pub max_size: u32,
    pub lines: Vec<String>,
    /// Findings the user should act on.
    pub warnings: Vec<String>,
}

fn ceil_u32(x: f64) -> u32 {
    if x.is_finite() && x > 0.0 {
        x.ceil().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// Does the arithmetic. Every number in the final line comes from a
/// printed step, and the final line names the step (or the cap) that set it.
pub fn plan(i: &Inputs) -> Plan {
    let mut lines = Vec::new();
    let mut warnings = Vec::new();
    let w = i.query_time.as_secs_f64();
    let n = f64::from(i.instances);
    let load = i.rate * w;
    let per = load / n;
    lines.push(format!(
        "1. Little's law: {} queries/s x {} per query = {:.2} connections busy on average{}",
        crate::svg::fmt_num(i.rate),
        humantime::format_duration(i.query_time),
        load,
        if i.instances > 1 {
            format!(", {:.2} per instance ({} instances)", per, i.instances)
        } else {
            String::new()
        }
    ));

    // max_size, and the step that set it.
    let burst = per + 3.0 * per.sqrt();
    let mut max = ceil_u32(burst).max(1);
    let mut max_why = "step 2's burst figure".to_string();
    lines.push(format!(
        "2. Bursts: with random arrivals the busy count stays under L + 3*sqrt(L) = {:.2} + 3*{:.2} = {:.2} about 99.9% of the time -> max {} per instance",
        per,
        per.sqrt(),
        burst,
        max
    ));
    if let Some(c) = i.concurrent_requests {
        if c < max {
            lines.push(format!(
                "   capped at {c}: an instance serving at most {c} concurrent requests never needs more connections"
            ));
            max = c;
            max_why = format!("step 2, capped at --concurrent-requests {c}");
        }
    }

    let (cores, cores_text) = match i.cores {
        Some(c) => (c, c.to_string()),
        None => (
            ASSUMED_CORES,
            format!("{ASSUMED_CORES} (assumed: pass --cores)"),
        ),
    };
    let useful = cores * 2 + i.spindles;
    let useful_per = ceil_u32(f64::from(useful) / n).max(1);
    lines.push(format!(
        "3. Database concurrency: cores x 2 + spindles = {cores_text} x 2 + {} = {useful} active connections in total{}",
        i.spindles,
        if i.instances > 1 {
            format!(", {useful} / {} = {useful_per} per instance (rounded up)", i.instances)
        } else {
            String::new()
        }
    ));
    if load > f64::from(useful) {
        let finding = format!(
            "the load ({load:.1} busy connections) exceeds what the database runs well at once ({useful}): queries will queue on the server; more connections will not raise throughput, faster queries or a bigger server will"
        );
        if i.cores.is_some() {
            warnings.push(finding);
        } else {
            // A finding drawn from a guessed core count is a question to
            // check, not a warning.
            lines.push(format!(
                "   the load ({load:.1}) is above {useful}; if the server really has {ASSUMED_CORES} cores, queries will queue on it (pass --cores to check)"
            ));
        }
        if max > useful_per {
            lines.push(format!(
                "   max stays {max}, above {useful_per}: the load itself needs more than the database runs well at once, so a smaller pool would only move the queue from the server into the pool"
            ));
        }
    } else if max < useful_per {
        let raised = useful_per.min(i.concurrent_requests.unwrap_or(u32::MAX));
        lines.push(format!(
            "   the load needs fewer than the database could serve; max raised to {raised} for headroom at no cost"
        ));
        max = raised;
        max_why = if raised < useful_per {
            "step 3's headroom, capped at --concurrent-requests".to_string()
        } else {
            "step 3's headroom".to_string()
        };
    } else if max > useful_per {
        lines.push(format!(
            "   max stays {max}, above {useful_per}: only bursts pass what the database runs well at once, and only briefly"
        ));
    }

    if let Some(mc) = i.max_connections {
        let reserved = i.reserved.unwrap_or_else(|| (mc / 10).max(3));
        let budget = mc.saturating_sub(reserved);
        let budget_per = (budget / u64::from(i.instances)) as u32;
        lines.push(format!(
            "4. Server limit: max_connections {mc} - {reserved} kept free = {budget} for the pools, {budget_per} per instance{}",
            i.current_connections
                .map(|c| format!(" ({c} in use right now)"))
                .unwrap_or_default()
        ));
        if budget_per == 0 {
            warnings.push(format!(
                "{} instances cannot each hold even one connection within max_connections {mc}: raise max_connections or put a pooler (PgBouncer) in front",
                i.instances
            ));
        } else if max > budget_per {
            warnings.push(format!(
                "max {max} per instance x {} instances would exceed the server's budget; capped at {budget_per} (requests will wait in the pool at peak)",
                i.instances
            ));
            max = budget_per;
            max_why = "capped at step 4's budget".to_string();
        }
        if let Some(c) = i.current_connections {
            if c + u64::from(max) * u64::from(i.instances) > mc {
                warnings.push(format!(
                    "with {c} connections already open, {} more would pass max_connections {mc}",
                    u64::from(max) * u64::from(i.instances)
                ));
            }
        }
    } else {
        lines.push("4. Server limit: unknown (pass --max-connections or --url)".into());
    }
    let max = max.max(1);

    // min_size: the average load, kept warm, never above max_size.
    let average = ceil_u32(per).max(1);
    let min = average.min(max);
    let min_why = if average > max {
        if let Some(c) = i.concurrent_requests.filter(|c| f64::from(*c) < per) {
            warnings.push(format!(
                "the average load per instance ({per:.2} busy connections) exceeds --concurrent-requests {c}: an instance cannot keep more queries in flight than requests; check --rate and --query-time"
            ));
        }
        format!("step 1's average load of {per:.2}, capped at max_size")
    } else {
        format!("step 1's average load of {per:.2}, rounded up, kept warm")
    };
    lines.push(format!(
        "=> min_size {min} ({min_why}), max_size {max} ({max_why}) per instance; {} connections at most across {} instance(s)",
        u64::from(max) * u64::from(i.instances),
        i.instances
    ));
    Plan {
        min_size: min,
        max_size: max,
        lines,
        warnings,
    }
}

/// The server's figures, on a session made read-only — unless the server
/// behind it listens on another port than `url_port` (a pooler or proxy
/// stands between): through a transaction pooler the read-only setting
/// would stay on a server connection other clients get. Only `SELECT`
/// and `SHOW` are sent either way.
async fn read_facts<M, F>(
    make: F,
    dialect: Dialect,
    url_port: Option<u16>,
) -> Result<ServerFacts, CliError>
where
    M: Manager,
    M::Connection: Queryable,
    F: Fn() -> Result<M, CliError>,
{
    let manager = make()?;
    let target = manager.describe();
    let pool = Pool::builder(manager)
        .max_size(1)
        .max_retries(0)
        .acquire_timeout(Duration::from_secs(10))
        .build()
        .await
        .map_err(|e| CliError::Pool {
            context: "building a pool".into(),
            source: e,
        })?;
    let mut conn = pool.get().await.map_err(|e| CliError::Connect {
        target,
        reason: one_line(&e),
    })?;
    let behind = if dialect == Dialect::Postgres {
        let server_port: Option<u16> = conn
            .read("SELECT inet_server_port()")
            .await
            .ok()
            .and_then(|rows| rows.first()?.first()?.parse().ok());
        matches!((server_port, url_port), (Some(a), Some(b)) if a != b)
    } else {
        false
    };
    if !behind {
        make_read_only(&mut *conn, dialect).await;
    }
    let f = facts(&mut *conn, dialect).await;
    drop(conn);
    pool.close(Duration::from_secs(1)).await;
    Ok(f)
}

/// SQLite's version, read without creating or changing the database (a
/// pool would create a missing file and switch it to WAL).
fn sqlite_facts(config: &tidepool_sqlite::SqliteConfig) -> Result<ServerFacts, CliError> {
    let refused = |reason: String| CliError::Connect {
        target: config.describe(),
        reason,
    };
    let conn = match config.target() {
        tidepool_sqlite::Target::File(path) => {
            let file = sqlite_file::examine(path).map_err(refused)?;
            sqlite_file::open_read_only(&file).map_err(refused)?
        }
        _ => sqlite_file::open_memory().map_err(refused)?,
    };
    Ok(ServerFacts {
        version: sqlite_file::version(&conn),
        ..ServerFacts::default()
    })
}

/// Runs `tidepool size`.
pub async fn run(s: &SizeSettings) -> Result<ExitCode, CliError> {
    let mut out = String::new();
    let mut inputs = Inputs {
        rate: s.rate,
        query_time: s.query_time,
        concurrent_requests: s.concurrent_requests,
        instances: s.instances,
        cores: s.cores,
        spindles: s.spindles,
        max_connections: s.max_connections.map(u64::from),
        reserved: s.reserved.map(u64::from),
        current_connections: None,
    };
    if let Some(url) = &s.url {
        let target = Target::parse(url)?;
        let f = match &target {
            Target::Sqlite(config) => sqlite_facts(config)?,
            _ => {
                let port = target.host_port().map(|(_, p)| p);
                with_manager!(&target, |make, dialect| read_facts(make, dialect, port)
                    .await)?
            }
        };
        let _ = writeln!(
            out,
            "server: {} {}",
            target.dialect().name(),
            f.version.as_deref().unwrap_or("(version unknown)")
        );
        if target.dialect() == Dialect::Sqlite {
            let _ = writeln!(
                out,
                "SQLite has no connection limit, but runs one writer at a time: a pool of a few connections serves it best."
            );
        }
        if s.max_connections.is_none() {
            inputs.max_connections = f.max_connections;
        }
        if s.reserved.is_none() {
            // The server's own superuser reserve, when it is larger than
            // the usual 10% (at least 3) kept free.
            let usual = inputs.max_connections.map_or(3, |mc| (mc / 10).max(3));
            inputs.reserved = f.reserved.filter(|&r| r > usual);
        }
        inputs.current_connections = f.current_connections;
    } else if inputs.max_connections.is_none() {
        inputs.max_connections = Some(100);
        let _ = writeln!(
            out,
            "assuming max_connections = 100 (PostgreSQL's default; pass --max-connections or --url)"
        );
    }
    let p = plan(&inputs);
    for line in &p.lines {
        let _ = writeln!(out, "{line}");
    }
    for w in &p.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(
        out,
        "\nIn a pool.toml:\nmin_size = {}\nmax_size = {}",
        p.min_size, p.max_size
    );
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            rate: 1000.0,
            query_time: Duration::from_millis(5),
            concurrent_requests: None,
            instances: 1,
            cores: Some(4),
            spindles: 1,
            max_connections: Some(100),
            reserved: None,
            current_connections: None,
        }
    }

    #[test]
    fn littles_law_with_burst_headroom_sets_the_max() {
        // L = 1000/s * 5ms = 5; 5 + 3*sqrt(5) = 11.7 -> 12.
        let p = plan(&inputs());
        assert_eq!((p.min_size, p.max_size), (5, 12));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_light_load_gets_the_databases_concurrency_as_headroom() {
        let p = plan(&Inputs {
            rate: 10.0,
            ..inputs()
        });
        assert_eq!((p.min_size, p.max_size), (1, 9));
    }

    #[test]
    fn many_instances_are_capped_by_max_connections_with_a_warning() {
        let p = plan(&Inputs {
            rate: 20_000.0,
            instances: 10,
            cores: Some(64),
            ..inputs()
        });
        // 100 - 10 reserved = 90, 9 per instance.
        assert_eq!(p.max_size, 9);
        assert!(p.warnings.iter().any(|w| w.contains("capped at 9")));
    }

    #[test]
    fn a_load_beyond_the_databases_cores_is_flagged() {
        let p = plan(&Inputs {
            rate: 10_000.0,
            ..inputs()
        });
        assert!(p.warnings.iter().any(|w| w.contains("queue on the server")));
    }

    #[test]
    fn concurrent_requests_cap_the_pool() {
        let p = plan(&Inputs {
            concurrent_requests: Some(4),
            ..inputs()
        });
        assert_eq!(p.max_size, 4);
        assert!(p.min_size <= 4);
    }
}
