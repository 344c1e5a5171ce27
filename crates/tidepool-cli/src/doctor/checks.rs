//! The checks, one function each, reading a [`Probe`] and the planned pool.
//! Where the databases differ, the difference is data in [`Wording`] (the
//! words and parameter names of each), not a branch inside a check.

use std::time::Duration;

use super::findings::{Finding, Status};
use super::probe::Probe;
use super::{human, ms};
use crate::settings::DoctorSettings;
use crate::sqlite_file::{FileFacts, Journal};
use crate::target::{Dialect, Target};

/// What each database calls things, and what to tell its operator.
struct Wording {
    /// How a successful connection is described.
    connected: &'static str,
    /// What to check when the connection fails.
    connect_advice: &'static str,
    /// The URL parameter that sets TLS, and its default when absent.
    tls_parameter: &'static str,
    tls_default: &'static str,
    /// Parameter values that check the server's certificate against its name.
    tls_verified: &'static [&'static str],
    /// The setting that does, as advice.
    tls_verify_advice: &'static str,
    /// What to do when the connection crosses the network in clear.
    tls_enable_advice: &'static str,
}

const POSTGRES: Wording = Wording {
    connected: "authenticated",
    connect_advice: "check the user name, password and database name in the URL, the server's access rules (pg_hba.conf) and the TLS settings (sslmode)",
    tls_parameter: "sslmode",
    tls_default: "prefer, the default",
    tls_verified: &["verify-full"],
    tls_verify_advice: "use sslmode=verify-full so a machine in the middle cannot pose as the server",
    tls_enable_advice: "enable TLS on the server and connect with sslmode=verify-full",
};

const MYSQL: Wording = Wording {
    connected: "authenticated",
    connect_advice: "check the user name, password and database name in the URL, the hosts the account may connect from (the host part of 'user'@'host' in its grants) and the TLS settings (ssl-mode)",
    tls_parameter: "ssl-mode",
    tls_default: "disabled, the default",
    tls_verified: &["verify_identity", "verify-identity", "verify_full"],
    tls_verify_advice: "use ssl-mode=verify_identity so a machine in the middle cannot pose as the server",
    tls_enable_advice: "enable TLS on the server and connect with ssl-mode=verify_identity",
};

const SQLITE: Wording = Wording {
    connected: "opened read-only",
    connect_advice:
        "check the file's permissions, and that no other program holds an exclusive lock on it",
    tls_parameter: "",
    tls_default: "",
    tls_verified: &[],
    tls_verify_advice: "",
    tls_enable_advice: "",
};

fn wording(dialect: Dialect) -> &'static Wording {
    match dialect {
        Dialect::Postgres => &POSTGRES,
        Dialect::Mysql => &MYSQL,
        Dialect::Sqlite => &SQLITE,
    }
}

/// Every check after the network ones, in the order a connection meets
/// them. When the connection fails, only that finding is reported.
pub fn all(p: &Probe, target: &Target, loopback: bool, s: &DoctorSettings) -> Vec<Finding> {
    let mut out = vec![connect(p)];
    if p.connected.is_err() {
        return out;
    }
    out.push(version(p));
    out.push(tls(p, target, loopback));
    out.push(latency(p));
    out.push(capacity(p, s));
    out.extend(timeouts(p, s));
    out.extend(lifetime(s));
    if p.dialect == Dialect::Sqlite {
        out.push(journal(p.file.as_ref()));
    }
    out
}

/// SQLite: the file exists and is a database (checked before opening it).
pub fn file(examined: &Result<FileFacts, String>) -> Finding {
    match examined {
        Ok(f) => Finding::new(
            Status::Ok,
            "file",
            format!("{} ({} bytes)", f.path.display(), f.bytes),
        ),
        Err(reason) => Finding::new(Status::Fail, "file", reason.clone()).advise(format!(
            "check the path in the URL (a relative path starts from {})",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "the working directory".into())
        )),
    }
}

/// The connection opened (and authenticated).
pub fn connect(p: &Probe) -> Finding {
    let w = wording(p.dialect);
    match &p.connected {
        Ok(took) => {
            let mut detail = format!("{}: {} in {}", p.described, w.connected, ms(*took));
            if let Some(tables) = p.tables {
                detail.push_str(&format!(", {tables} table(s)"));
            } else if p.read_only_session {
                detail.push_str(", session set read-only");
            } else if p.read_only_skipped {
                detail.push_str(", session not set read-only (behind a pooler that setting would stay on a server connection other clients get; only SELECT and SHOW are sent)");
            }
            Finding::new(Status::Ok, "connect", detail)
        }
        Err(reason) => Finding::new(
            Status::Fail,
            "connect",
            format!("{}: {reason}", p.described),
        )
        .advise(w.connect_advice),
    }
}

/// The server's version, for the record.
pub fn version(p: &Probe) -> Finding {
    Finding::new(
        Status::Info,
        "version",
        format!(
            "{} {}",
            p.dialect.name(),
            p.facts.version.as_deref().unwrap_or("(unknown)")
        ),
    )
}

/// TLS in use, and whether the server's name is checked.
pub fn tls(p: &Probe, target: &Target, loopback: bool) -> Finding {
    if p.dialect == Dialect::Sqlite {
        return Finding::new(Status::Info, "tls", "not applicable to SQLite");
    }
    let w = wording(p.dialect);
    let given = target
        .param("sslmode")
        .or_else(|| target.param("ssl-mode"))
        .or_else(|| target.param("ssl_mode"));
    let verified = given
        .as_deref()
        .is_some_and(|v| w.tls_verified.iter().any(|ok| v.eq_ignore_ascii_case(ok)));
    let mode = format!(
        "{} {}",
        w.tls_parameter,
        given.unwrap_or_else(|| w.tls_default.to_string())
    );
    let offered = match p.facts.tls_offered {
        Some(true) => "the server offers TLS",
        Some(false) => "the server does not offer TLS",
        None => "whether the server offers TLS is unknown",
    };
    match p.facts.tls_in_use.as_deref() {
        Some("") | None if loopback => Finding::new(
            Status::Ok,
            "tls",
            format!("not in use on a loopback connection ({offered}; {mode})"),
        ),
        Some("") => Finding::new(
            Status::Warn,
            "tls",
            format!("not in use: credentials and data cross the network in clear ({offered}; {mode})"),
        )
        .advise(w.tls_enable_advice),
        None => Finding::new(
            Status::Info,
            "tls",
            format!("could not tell whether this connection uses TLS ({offered}; {mode})"),
        ),
        Some(cipher) if verified || loopback => {
            Finding::new(Status::Ok, "tls", format!("in use: {cipher} ({mode})"))
        }
        Some(cipher) => Finding::new(
            Status::Warn,
            "tls",
            format!("in use ({cipher}) but the server's certificate is not checked against its name ({mode})"),
        )
        .advise(w.tls_verify_advice),
    }
}

/// Round trips of `SELECT 1`: the floor under every query's latency.
pub fn latency(p: &Probe) -> Finding {
    let rtts = match &p.pings {
        Ok(rtts) => rtts,
        Err(e) => return Finding::new(Status::Fail, "latency", format!("SELECT 1 failed: {e}")),
    };
    if rtts.is_empty() {
        return Finding::new(Status::Info, "latency", "no pings asked for");
    }
    let pick = |q: f64| rtts[((q * rtts.len() as f64).ceil() as usize).clamp(1, rtts.len()) - 1];
    let (p50, p99) = (pick(0.50), pick(0.99));
    let what = if p.dialect == Dialect::Sqlite {
        "runs of SELECT 1 (in this process: no network)"
    } else {
        "pings of SELECT 1"
    };
    let detail = format!(
        "{} {what}: p50 {}, p99 {}, max {}",
        rtts.len(),
        ms(p50),
        ms(p99),
        ms(rtts[rtts.len() - 1])
    );
    if p50 > Duration::from_millis(10) {
        Finding::new(Status::Warn, "latency", detail).advise(
            "every query pays this round trip: keep the application near the database, batch statements, and keep validation on borrow skipped for recently used connections (validation_interval)",
        )
    } else if p99 > p50 * 20 && p99 > Duration::from_millis(5) {
        Finding::new(Status::Warn, "latency", detail).advise(
            "the tail is far above the median: look for a congested network or an overloaded server",
        )
    } else {
        Finding::new(Status::Ok, "latency", detail)
    }
}

/// The planned pools against the server's connection limit.
pub fn capacity(p: &Probe, s: &DoctorSettings) -> Finding {
    let planned = u64::from(s.max_size) * u64::from(s.instances);
    let Some(max) = p.facts.max_connections else {
        return if p.dialect == Dialect::Sqlite {
            Finding::new(
                Status::Info,
                "capacity",
                "SQLite has no connection limit; one writer at a time, so a few connections serve best",
            )
        } else {
            Finding::new(Status::Info, "capacity", "could not read max_connections")
        };
    };
    let reserved = p.facts.reserved.unwrap_or(0);
    let usable = max.saturating_sub(reserved);
    let current = p.facts.current_connections.unwrap_or(0);
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
        Finding::new(Status::Fail, "capacity", detail).advise(format!(
            "the pools can ask for more connections than the server allows: lower max_size to {} per instance, raise max_connections, or put a pooler in front",
            usable / u64::from(s.instances)
        ))
    } else if planned + current > usable {
        Finding::new(Status::Warn, "capacity", detail).advise(
            "with the connections already open, the planned pools would not all fit: check who else holds connections",
        )
    } else {
        Finding::new(Status::Ok, "capacity", detail)
    }
}

/// Server timeouts that close idle sessions, against the pool's own.
pub fn timeouts(p: &Probe, s: &DoctorSettings) -> Vec<Finding> {
    let idle = s.idle_timeout.map_or("never".to_string(), human);
    p.facts
        .timeouts
        .iter()
        .map(|t| {
            let Some(server) = t.value else {
                return Finding::new(
                    Status::Ok,
                    "timeouts",
                    format!("{} is off: the server does not close {}", t.name, t.applies_to),
                );
            };
            if t.name == "idle_in_transaction_session_timeout" {
                return Finding::new(
                    Status::Info,
                    "timeouts",
                    format!("{} = {} (pooled connections are returned outside transactions, so this only ends stuck work)", t.name, human(server)),
                );
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
                Finding::new(Status::Ok, "timeouts", detail)
            } else {
                Finding::new(Status::Warn, "timeouts", detail).advise(format!(
                    "idle pooled connections will be cut by the server and fail their next query: set idle_timeout below {} (or keep health_check_interval below it)",
                    human(server)
                ))
            }
        })
        .collect()
}

/// The pool's own connection lifetime, for the record.
pub fn lifetime(s: &DoctorSettings) -> Option<Finding> {
    s.max_lifetime.map(|life| {
        Finding::new(
            Status::Info,
            "lifetime",
            format!("the pool retires connections after about {}", human(life)),
        )
    })
}

/// SQLite: the journal mode the file is in, from its header.
pub fn journal(file: Option<&FileFacts>) -> Finding {
    let Some(file) = file else {
        return Finding::new(
            Status::Info,
            "journal",
            "an in-memory database lives only inside the process that opens it: nothing on disk to examine",
        );
    };
    match file.journal {
        Some(Journal::Wal) => Finding::new(
            Status::Ok,
            "journal",
            "journal_mode = wal (from the file header): readers and the writer do not block each other",
        ),
        Some(Journal::Rollback) => Finding::new(
            Status::Warn,
            "journal",
            "journal_mode = delete, truncate or persist (a rollback journal, from the file header): while one connection writes, no other can read",
        )
        .advise("use journal_mode=wal so readers do not block the writer (a tidepool-sqlite pool switches a file to WAL when it opens it, unless its URL sets journal_mode; the doctor changed nothing)"),
        None => Finding::new(
            Status::Info,
            "journal",
            "the file is empty: the first connection that writes to it sets up the database and its journal mode",
        ),
    }
}
