//! What the doctor learns from the database, gathered once for the checks
//! to read: how the connection went, the server's figures, the round
//! trips. A server is asked through a one-connection tidepool pool, on a
//! session first made read-only; a SQLite file is read by
//! [`crate::sqlite_file`], without a pool, so nothing is created or
//! switched to WAL. Nothing here writes.

use std::time::{Duration, Instant};

use tidepool::{Manager, Pool, Queryable};

use crate::error::{one_line, CliError};
use crate::server::{facts, make_read_only, Reader, ServerFacts};
use crate::settings::DoctorSettings;
use crate::sqlite_file::{self, FileFacts};
use crate::target::Dialect;

/// Everything the checks read.
#[derive(Debug)]
pub struct Probe {
    pub dialect: Dialect,
    /// The target as the driver describes it (never with a password).
    pub described: String,
    /// How long opening (and authenticating) took, or why it failed.
    pub connected: Result<Duration, String>,
    pub facts: ServerFacts,
    /// Whether the server took the read-only session setting.
    pub read_only_session: bool,
    /// Round trips of `SELECT 1`, sorted, or the error that ended them.
    pub pings: Result<Vec<Duration>, String>,
    /// SQLite: the file as its header describes it (`None` in memory).
    pub file: Option<FileFacts>,
    /// SQLite: tables in the schema, a sign of whether this is the
    /// database meant.
    pub tables: Option<u64>,
    /// PostgreSQL: the port the server behind the session listens on
    /// (`inet_server_port()`), to tell whether something stands between.
    pub server_port: Option<u16>,
    /// Whether the read-only session setting was left out because a
    /// pooler stands in front: through a transaction pooler a session
    /// setting stays on the server connection and reaches other clients.
    pub read_only_skipped: bool,
}

impl Probe {
    fn failed(dialect: Dialect, described: String, reason: String) -> Self {
        Probe {
            dialect,
            described,
            connected: Err(reason),
            facts: ServerFacts::default(),
            read_only_session: false,
            pings: Ok(Vec::new()),
            file: None,
            tables: None,
            server_port: None,
            read_only_skipped: false,
        }
    }
}

/// Asks a server through a pool of one connection. `behind_pooler` says
/// a pooler was found in front already; `url_port` is the port the URL
/// names. Behind a pooler — found so, or because the server listens on
/// another port than the URL's — the session is not made read-only (the
/// setting would stay on a server connection other clients get); only
/// `SELECT` and `SHOW` are sent either way.
pub async fn server<M, F>(
    make: F,
    dialect: Dialect,
    s: &DoctorSettings,
    behind_pooler: bool,
    url_port: Option<u16>,
) -> Result<Probe, CliError>
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
        Err(e) => return Ok(Probe::failed(dialect, described, one_line(&e))),
    };
    let connected = started.elapsed();
    let server_port: Option<u16> = if dialect == Dialect::Postgres {
        conn.read("SELECT inet_server_port()")
            .await
            .ok()
            .and_then(|rows| rows.first()?.first()?.parse().ok())
    } else {
        None
    };
    let read_only_skipped =
        behind_pooler || matches!((server_port, url_port), (Some(a), Some(b)) if a != b);
    let read_only_session = !read_only_skipped && make_read_only(&mut *conn, dialect).await;
    let facts = facts(&mut *conn, dialect).await;
    let mut rtts = Vec::with_capacity(s.pings as usize);
    let mut pings = Ok(());
    for _ in 0..s.pings {
        let t = Instant::now();
        match conn.read("SELECT 1").await {
            Ok(_) => rtts.push(t.elapsed()),
            Err(e) => {
                pings = Err(e);
                break;
            }
        }
    }
    rtts.sort();
    drop(conn);
    pool.close(Duration::from_secs(1)).await;
    Ok(Probe {
        dialect,
        described,
        connected: Ok(connected),
        facts,
        read_only_session,
        pings: pings.map(|()| rtts),
        file: None,
        tables: None,
        server_port,
        read_only_skipped,
    })
}

/// Reads a SQLite file that [`sqlite_file::examine`] found, read-only.
pub fn sqlite(described: String, file: Option<FileFacts>, pings: u32) -> Probe {
    let started = Instant::now();
    let opened = match &file {
        Some(f) => sqlite_file::open_read_only(f),
        None => sqlite_file::open_memory(),
    };
    let conn = match opened {
        Ok(conn) => conn,
        Err(e) => {
            let mut p = Probe::failed(Dialect::Sqlite, described, e);
            p.file = file;
            return p;
        }
    };
    let tables = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string());
    let connected = tables
        .as_ref()
        .map(|_| started.elapsed())
        .map_err(Clone::clone);
    Probe {
        dialect: Dialect::Sqlite,
        described,
        connected,
        facts: ServerFacts {
            version: sqlite_file::version(&conn),
            ..ServerFacts::default()
        },
        read_only_session: true,
        pings: sqlite_file::pings(&conn, pings),
        file,
        tables: tables.ok().map(|n| u64::try_from(n).unwrap_or(0)),
        server_port: None,
        read_only_skipped: false,
    }
}
