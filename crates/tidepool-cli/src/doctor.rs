//! `tidepool doctor`: the checks an operator runs before pointing a pool at
//! a database, in the order a connection goes through them (DNS, TCP, TLS
//! and authentication, the server), each a finding with a status and, when
//! something needs attention, what to do. Exit status 0 when every finding
//! is fine, 1 otherwise.

use std::fmt::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tidepool::{Manager, Pool, Queryable};

use crate::error::{one_line, CliError};
use crate::server::facts;
use crate::settings::DoctorSettings;
use crate::target::{redact, with_manager, Dialect, Target};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
    pub advice: Option<String>,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, status: Status, check: &'static str, detail: impl Into<String>) {
        self.0.push(Finding {
            status,
            check,
            detail: detail.into(),
            advice: None,
        });
    }
    fn advise(
        &mut self,
        status: Status,
        check: &'static str,
        detail: impl Into<String>,
        advice: impl Into<String>,
    ) {
        self.0.push(Finding {
            status,
            check,
            detail: detail.into(),
            advice: Some(advice.into()),
        });
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

async fn network(host: &str, port: u16, timeout: Duration, f: &mut Findings) -> Option<IpAddr> {
    let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await;
    let addrs: Vec<std::net::SocketAddr> = match lookup {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(e)) => {
            f.advise(
                Status::Fail,
                "dns",
                format!("{host} does not resolve: {e}"),
                "check the host name in the URL and the resolver (/etc/hosts, DNS)",
            );
            return None;
        }
        Err(_) => {
            f.advise(
                Status::Fail,
                "dns",
                format!("resolving {host} took longer than {}", human(timeout)),
                "check the resolver",
            );
            return None;
        }
    };
    let Some(first) = addrs.first().copied() else {
        f.add(
            Status::Fail,
            "dns",
            format!("{host} resolves to no address"),
        );
        return None;
    };
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    f.add(Status::Ok, "dns", format!("{host} -> {}", list.join(", ")));
    let started = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(first)).await {
        Ok(Ok(_stream)) => {
            f.add(
                Status::Ok,
                "tcp",
                format!("{first} accepted a connection in {}", ms(started.elapsed())),
            );
            Some(first.ip())
        }
        Ok(Err(e)) => {
            f.advise(
                Status::Fail,
                "tcp",
                format!("{first}: {e}"),
                "is the server running and listening on this address and port? check firewalls and security groups",
            );
            None
        }
        Err(_) => {
            f.advise(
                Status::Fail,
                "tcp",
                format!("{first}: no answer within {}", human(timeout)),
                "packets are being dropped: check firewalls, routes and security groups",
            );
            None
        }
    }
}

async fn database<M, F>(
    make: F,
    dialect: Dialect,
    target: &Target,
    ip: Option<IpAddr>,
    s: &DoctorSettings,
    f: &mut Findings,
) -> Result<(), CliError>
where
    M: Manager,
    M::Connection: Queryable,
    F: Fn() -> Result<M, CliError>,
{
    let manager = make()?;
    let described = manager.describe();
    let pool = Pool::builder(manager)
        .max_size(1)
        .max_retries(0)
        .connect_timeout(s.timeout)
        .acquire_timeout(s.timeout)
        .build()
        .await
        .map_err(|e| CliError::Pool {
            context: "building a pool".into(),
            source: e,
        })?;
    let started = Instant::now();
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            let advice = match dialect {
                Dialect::Sqlite => "check the path and its permissions",
                _ => "check the user name, password and database name in the URL, the server's access rules (pg_hba.conf / user hosts) and the TLS settings (sslmode)",
            };
            f.advise(
                Status::Fail,
                "connect",
                format!("{described}: {}", one_line(&e)),
                advice,
            );
            return Ok(());
        }
    };
    f.add(
        Status::Ok,
        "connect",
        format!(
            "{described}: {} in {}",
            if dialect == Dialect::Sqlite {
                "opened"
            } else {
                "authenticated"
            },
            ms(started.elapsed())
        ),
    );
    let facts = facts(&mut *conn, dialect).await;
    f.add(
        Status::Info,
        "version",
        format!(
            "{} {}",
            dialect.name(),
            facts.version.as_deref().unwrap_or("(unknown)")
        ),
    );

    // TLS.
    if dialect != Dialect::Sqlite {
        let loopback = ip.is_some_and(|ip| ip.is_loopback());
        let mode_name = if dialect == Dialect::Postgres {
            "sslmode"
        } else {
            "ssl-mode"
        };
        let mode = target
            .param("sslmode")
            .or_else(|| target.param("ssl-mode"))
            .or_else(|| target.param("ssl_mode"))
            .unwrap_or_else(|| match dialect {
                Dialect::Postgres => "prefer, the default".into(),
                _ => "disabled, the default".into(),
            });
        let mode = format!("{mode_name} {mode}");
        let offered = match facts.tls_offered {
            Some(true) => "the server offers TLS",
            Some(false) => "the server does not offer TLS",
            None => "whether the server offers TLS is unknown",
        };
        match facts.tls_in_use.as_deref() {
            Some("") | None if loopback => f.add(
                Status::Ok,
                "tls",
                format!("not in use on a loopback connection ({offered}; {mode})"),
            ),
            Some("") => f.advise(
                Status::Warn,
                "tls",
                format!("not in use: credentials and data cross the network in clear ({offered}; {mode})"),
                "enable TLS on the server and use sslmode=verify-full (PostgreSQL) or ssl-mode=verify_identity (MySQL)",
            ),
            None => f.add(
                Status::Info,
                "tls",
                format!("could not tell whether this connection uses TLS ({offered}; {mode})"),
            ),
            Some(cipher) => {
                let verified = matches!(
                    mode.to_ascii_lowercase().as_str(),
                    "sslmode verify-full"
                        | "ssl-mode verify_identity"
                        | "ssl-mode verify_full"
                        | "ssl-mode verify-identity"
                );
                if verified || loopback {
                    f.add(
                        Status::Ok,
                        "tls",
                        format!("in use: {cipher} ({mode})"),
                    );
                } else {
                    f.advise(
                        Status::Warn,
                        "tls",
                        format!("in use ({cipher}) but the server's certificate is not checked against its name ({mode})"),
                        if dialect == Dialect::Postgres {
                            "use sslmode=verify-full so a machine in the middle cannot pose as the server"
                        } else {
                            "use ssl-mode=verify_identity so a machine in the middle cannot pose as the server"
                        },
                    );
                }
            }
        }
    } else {
        f.add(Status::Info, "tls", "not applicable to SQLite");
    }

    // Round trips.
    let mut rtts = Vec::with_capacity(s.pings as usize);
    let mut ping_error = None;
    for _ in 0..s.pings {
        let t = Instant::now();
        match conn.query("SELECT 1", &[]).await {
            Ok(_) => rtts.push(t.elapsed()),
            Err(e) => {
                ping_error = Some(one_line(&e));
                break;
            }
        }
    }
    if let Some(e) = ping_error {
        f.add(Status::Fail, "latency", format!("SELECT 1 failed: {e}"));
    } else if !rtts.is_empty() {
        rtts.sort();
        let pick =
            |q: f64| rtts[((q * rtts.len() as f64).ceil() as usize).clamp(1, rtts.len()) - 1];
        let (p50, p99) = (pick(0.50), pick(0.99));
        let detail = format!(
            "{} pings of SELECT 1: p50 {}, p99 {}, max {}",
            rtts.len(),
            ms(p50),
            ms(p99),
            ms(rtts[rtts.len() - 1])
        );
        if p50 > Duration::from_millis(10) {
            f.advise(
                Status::Warn,
                "latency",
                detail,
                "every query pays this round trip: keep the application near the database, batch statements, and keep validation on borrow skipped for recently used connections (validation_interval)",
            );
        } else if p99 > p50 * 20 && p99 > Duration::from_millis(5) {
            f.advise(
                Status::Warn,
                "latency",
                detail,
                "the tail is far above the median: look for a congested network or an overloaded server",
            );
        } else {
            f.add(Status::Ok, "latency", detail);
        }
    }

    // Connection budget.
    let planned = u64::from(s.max_size) * u64::from(s.instances);
    match facts.max_connections {
        Some(max) => {
            let reserved = facts.reserved.unwrap_or(0);
            let usable = max.saturating_sub(reserved);
            let current = facts.current_connections.unwrap_or(0);
            let detail = format!(
                "max_connections {max}{}, {current} open now; planned pools: {} x {} = {planned}",
                if reserved > 0 {
                    format!(" ({reserved} reserved for superusers)")
                } else {
                    String::new()
                },
                s.instances,
                s.max_size
            );
            if planned > usable {
                f.advise(
                    Status::Fail,
                    "capacity",
                    detail,
                    format!(
                        "the pools can ask for more connections than the server allows: lower max_size to {} per instance, raise max_connections, or put a pooler in front",
                        usable / u64::from(s.instances)
                    ),
                );
            } else if planned + current > usable {
                f.advise(
                    Status::Warn,
                    "capacity",
                    detail,
                    "with the connections already open, the planned pools would not all fit: check who else holds connections",
                );
            } else {
                f.add(Status::Ok, "capacity", detail);
            }
        }
        None if dialect == Dialect::Sqlite => f.add(
            Status::Info,
            "capacity",
            "SQLite has no connection limit; one writer at a time, so a few connections serve best",
        ),
        None => f.add(Status::Info, "capacity", "could not read max_connections"),
    }

    // Server timeouts against the pool's.
    let idle = s.idle_timeout.map_or("never".to_string(), human);
    for t in &facts.timeouts {
        let Some(server) = t.value else {
            f.add(
                Status::Ok,
                "timeouts",
                format!(
                    "{} is off: the server does not close {}",
                    t.name, t.applies_to
                ),
            );
            continue;
        };
        if t.name == "idle_in_transaction_session_timeout" {
            f.add(
                Status::Info,
                "timeouts",
                format!("{} = {} (pooled connections are returned outside transactions, so this only ends stuck work)", t.name, human(server)),
            );
            continue;
        }
        let pool_drops_first = s.idle_timeout.is_some_and(|i| i < server);
        let pinged = s.health_check_interval.is_some_and(|h| h < server);
        let detail = format!(
            "{} = {}: the server closes {} after that; the pool's idle_timeout is {idle}",
            t.name,
            human(server),
            t.applies_to
        );
        if pool_drops_first || pinged {
            f.add(Status::Ok, "timeouts", detail);
        } else {
            f.advise(
                Status::Warn,
                "timeouts",
                detail,
                format!(
                    "idle pooled connections will be cut by the server and fail their next query: set idle_timeout below {} (or keep health_check_interval below it)",
                    human(server)
                ),
            );
        }
    }
    if let Some(life) = s.max_lifetime {
        f.add(
            Status::Info,
            "lifetime",
            format!("the pool retires connections after about {}", human(life)),
        );
    }
    for note in facts.notes {
        if dialect == Dialect::Sqlite
            && note.starts_with("journal_mode")
            && !note.ends_with("wal")
            && !note.ends_with("memory")
        {
            f.advise(
                Status::Warn,
                "sqlite",
                note,
                "use journal_mode=wal so readers do not block the writer",
            );
        } else {
            f.add(Status::Info, "sqlite", note);
        }
    }
    drop(conn);
    pool.close(Duration::from_secs(1)).await;
    Ok(())
}

/// Runs `tidepool doctor`.
pub async fn run(s: &DoctorSettings) -> Result<ExitCode, CliError> {
    let target = Target::parse(&s.url)?;
    let mut f = Findings::default();
    let ip = match target.host_port() {
        Some((host, port)) => {
            let ip = network(&host, port, s.timeout, &mut f).await;
            if ip.is_none() {
                return Ok(print(&target, &f));
            }
            ip
        }
        None => {
            f.add(
                Status::Info,
                "network",
                "not applicable to SQLite (a local file)",
            );
            None
        }
    };
    with_manager!(&target, |make, dialect| {
        database(make, dialect, &target, ip, s, &mut f).await
    })?;
    Ok(print(&target, &f))
}

fn print(target: &Target, f: &Findings) -> ExitCode {
    let mut out = String::new();
    let shown = match target {
        Target::Sqlite(c) => c.describe(),
        Target::Postgres(u) | Target::Mysql(u) => redact(u),
    };
    let _ = writeln!(out, "tidepool doctor: {shown}");
    for finding in &f.0 {
        let _ = writeln!(
            out,
            "  {:<5} {:<9} {}",
            finding.status.label(),
            finding.check,
            finding.detail
        );
        if let Some(a) = &finding.advice {
            let _ = writeln!(out, "  {:<5} {:<9} -> {a}", "", "");
        }
    }
    let attention =
        f.0.iter()
            .filter(|x| matches!(x.status, Status::Warn | Status::Fail))
            .count();
    if attention == 0 {
        let _ = writeln!(out, "all good");
    } else {
        let _ = writeln!(out, "{attention} finding(s) need attention");
    }
    print!("{out}");
    if attention == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
