//! Is a PgBouncer in front of the PostgreSQL server, and in which pool
//! mode? Asked two ways, both read-only: PgBouncer's admin console (the
//! database `pgbouncer` at the same address, with the URL's credentials:
//! `SHOW VERSION`, then the target database's `pool_mode` from `SHOW
//! DATABASES` or the default from `SHOW CONFIG` — commands that only
//! report), and the regular session's `inet_server_port()`, the port the
//! server itself listens on: another port than the URL's means something
//! (a pooler, a proxy, a port mapping) stands in between.
//!
//! Transaction and statement pooling hand each transaction (or
//! statement) a server connection of PgBouncer's choosing, so named
//! prepared statements and session state do not last: the pool needs
//! pooler mode (`?tidepool_pooler=true`) there, and not in session mode.

use std::time::Duration;

use tidepool_postgres::PgManager;
use tokio_postgres::SimpleQueryMessage;

use super::findings::{Finding, Status};

/// What the admin console said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// PgBouncer answered `SHOW VERSION`.
    PgBouncer {
        /// Its version line (`PgBouncer 1.18.0`).
        version: String,
        /// The target database's pool mode (`session`, `transaction`,
        /// `statement`), if it could be read.
        pool_mode: Option<String>,
    },
    /// Something answered as PgBouncer does to a user it does not admit
    /// to its console.
    Refused(String),
    /// No PgBouncer console there (PostgreSQL itself answered, or nothing
    /// did): the reason, in one line.
    Absent(String),
}

impl Admin {
    /// Whether this may be a pooler that hands server connections out per
    /// transaction or statement (or one whose mode is unknown): the
    /// doctor's own session then runs in pooler mode and is not made
    /// read-only.
    pub fn pools_transactions(&self) -> bool {
        match self {
            Admin::PgBouncer { pool_mode, .. } => pool_mode.as_deref() != Some("session"),
            Admin::Refused(_) => true,
            Admin::Absent(_) => false,
        }
    }
}

/// The URL with pooler mode on (unless it is already).
pub(crate) fn with_pooler_mode(url: &str) -> String {
    if pooler_mode_on(url) {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}tidepool_pooler=true")
}

/// What the doctor learned about a pooler in front.
#[derive(Debug, Clone)]
pub struct PoolerFacts {
    /// The port the URL names.
    pub url_port: u16,
    /// The port the server behind the session listens on
    /// (`inet_server_port()`; `None` over a Unix socket or if unknown).
    pub server_port: Option<u16>,
    pub admin: Admin,
    /// Whether the URL asks for pooler mode (`tidepool_pooler=true`).
    pub pooler_mode_on: bool,
}

/// The URL with its database replaced by `pgbouncer` (the admin console).
pub(crate) fn admin_url(url: &str) -> Option<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://")? + 3;
    let after_scheme = &base[scheme_end..];
    let authority_start = after_scheme.rfind('@').map_or(0, |at| at + 1);
    let authority_len = after_scheme[authority_start..]
        .find('/')
        .unwrap_or(after_scheme.len() - authority_start);
    let authority_end = scheme_end + authority_start + authority_len;
    let mut out = format!("{}/pgbouncer", &base[..authority_end]);
    // A `dbname=` parameter would override the path; the console is the
    // only database asked for.
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("dbname="))
        .collect();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Some(out)
}

/// The URL's database (the path, or `dbname=`), defaulting to the user as
/// libpq does.
fn database(url: &str) -> Option<String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    if let Some(db) = query.split('&').find_map(|p| p.strip_prefix("dbname=")) {
        return Some(db.to_string());
    }
    let after_scheme = &base[base.find("://")? + 3..];
    let after_at = &after_scheme[after_scheme.rfind('@').map_or(0, |a| a + 1)..];
    let path = after_at.split_once('/').map(|(_, p)| p).unwrap_or("");
    if !path.is_empty() {
        return Some(path.to_string());
    }
    let user = after_scheme.split_once('@')?.0;
    Some(user.split(':').next().unwrap_or(user).to_string())
}

/// Whether the URL turns pooler mode on.
pub(crate) fn pooler_mode_on(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|p| {
            matches!(
                p.to_ascii_lowercase().as_str(),
                "tidepool_pooler=true" | "tidepool_pooler=1" | "tidepool_pooler=on"
            )
        })
    })
}

/// The rows of a simple query, as text.
async fn rows(
    conn: &tidepool_postgres::PgConnection,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let messages = conn
        .simple_query(sql)
        .await
        .map_err(|e| crate::error::one_line(&e))?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// The column `name` of `sql`'s result, by header: the admin console's
/// columns differ between versions, so they are found by name.
async fn column(
    conn: &tidepool_postgres::PgConnection,
    sql: &str,
    key: (&str, &str),
    name: &str,
) -> Option<String> {
    let messages = conn.simple_query(sql).await.ok()?;
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => {
            let cols = r.columns();
            let k = cols.iter().position(|c| c.name() == key.0)?;
            let v = cols.iter().position(|c| c.name() == name)?;
            (r.get(k) == Some(key.1))
                .then(|| r.get(v).map(str::to_string))
                .flatten()
        }
        _ => None,
    })
}

/// Asks PgBouncer's admin console at the URL's address.
pub async fn admin(url: &str, timeout: Duration) -> Admin {
    let Some(console) = admin_url(url) else {
        return Admin::Absent("the URL has no host part".into());
    };
    let manager = match PgManager::from_url(&console) {
        Ok(m) => m,
        Err(e) => return Admin::Absent(crate::error::one_line(&e)),
    };
    let conn = match tokio::time::timeout(timeout, manager.connect_one()).await {
        Err(_) => return Admin::Absent(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => {
            let text = crate::error::one_line(&e);
            // PostgreSQL: database "pgbouncer" does not exist (3D000).
            // PgBouncer to a user not in admin_users/stats_users: "not
            // allowed"; to an unknown user: "no such user".
            let lower = text.to_ascii_lowercase();
            return if lower.contains("not allowed") || lower.contains("no such user") {
                Admin::Refused(text)
            } else {
                Admin::Absent(text)
            };
        }
        Ok(Ok(conn)) => conn,
    };
    let version = match tokio::time::timeout(timeout, rows(&conn, "SHOW VERSION")).await {
        Ok(Ok(rows)) => rows
            .into_iter()
            .flatten()
            .flatten()
            .next()
            .unwrap_or_default(),
        Ok(Err(e)) => return Admin::Absent(e),
        Err(_) => return Admin::Absent(format!("SHOW VERSION: no answer within {timeout:?}")),
    };
    if !version.to_ascii_lowercase().contains("pgbouncer") {
        return Admin::Absent(format!("SHOW VERSION answered `{version}`"));
    }
    let db = database(url).unwrap_or_default();
    let per_db = column(&conn, "SHOW DATABASES", ("name", &db), "pool_mode")
        .await
        .filter(|m| !m.is_empty());
    let pool_mode = match per_db {
        Some(m) => Some(m),
        None => column(&conn, "SHOW CONFIG", ("key", "pool_mode"), "value").await,
    };
    Admin::PgBouncer { version, pool_mode }
}

const POOLER_ADVICE: &str = "add tidepool_pooler=true to the URL (or PgManager::builder(..).transaction_pooler(true)): the pool then uses no named prepared statements and relies on no session state, which a transaction pooler does not keep between transactions";

/// The `pooler` finding.
pub fn finding(f: &PoolerFacts) -> Finding {
    let mode_word = if f.pooler_mode_on { "on" } else { "off" };
    match &f.admin {
        Admin::PgBouncer { version, pool_mode } => {
            let mode = pool_mode.as_deref().unwrap_or("unknown");
            let needs = matches!(mode, "transaction" | "statement");
            let detail = format!(
                "{version} in front (pool_mode {mode}); pooler mode is {mode_word}"
            );
            match (needs, f.pooler_mode_on, pool_mode.is_some()) {
                (true, true, _) => Finding::new(
                    Status::Ok,
                    "pooler",
                    format!("{detail}, as {mode} pooling needs"),
                ),
                (true, false, _) => Finding::new(
                    Status::Warn,
                    "pooler",
                    format!("{detail}: {mode} pooling needs pooler mode — named prepared statements and session settings do not survive between transactions"),
                )
                .advise(POOLER_ADVICE),
                (false, _, true) => Finding::new(
                    Status::Ok,
                    "pooler",
                    format!("{detail}; session pooling keeps a server connection per client, so pooler mode is not needed"),
                ),
                (false, true, false) => Finding::new(Status::Ok, "pooler", detail),
                (false, false, false) => Finding::new(
                    Status::Warn,
                    "pooler",
                    format!("{detail}: its pool_mode could not be read"),
                )
                .advise(format!("if PgBouncer pools by transaction or statement, {POOLER_ADVICE}")),
            }
        }
        Admin::Refused(reason) => Finding::new(
            Status::Warn,
            "pooler",
            format!("a PgBouncer seems to be in front (its admin console refused this user: {reason}); pooler mode is {mode_word}"),
        )
        .advise(format!("if it pools by transaction or statement, {POOLER_ADVICE}; to let the doctor read its pool_mode, add the user to PgBouncer's stats_users")),
        Admin::Absent(reason) => match f.server_port {
            Some(port) if port != f.url_port => Finding::new(
                Status::Warn,
                "pooler",
                format!("something stands between you and the server: it listens on port {port}, the URL names {}; no PgBouncer admin console answered ({reason}); pooler mode is {mode_word}", f.url_port),
            )
            .advise(format!("if that is a transaction pooler (PgBouncer, Supavisor, pgcat), {POOLER_ADVICE}; a port mapping or TCP proxy needs nothing")),
            _ => Finding::new(
                Status::Ok,
                "pooler",
                format!("none detected: no PgBouncer admin console answered and the server listens on the port the URL names; pooler mode is {mode_word}"),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_url_keeps_the_credentials_and_parameters_but_names_the_console() {
        assert_eq!(
            admin_url("postgres://app:pw@db:6432/orders?sslmode=disable&dbname=x").as_deref(),
            Some("postgres://app:pw@db:6432/pgbouncer?sslmode=disable")
        );
        assert_eq!(
            admin_url("postgresql://app@[::1]:6432").as_deref(),
            Some("postgresql://app@[::1]:6432/pgbouncer")
        );
        assert_eq!(
            admin_url("postgres://a:p/w@db/x").as_deref(),
            Some("postgres://a:p/w@db/pgbouncer"),
            "a slash in the password"
        );
    }

    #[test]
    fn the_database_comes_from_the_path_the_parameter_or_the_user() {
        assert_eq!(
            database("postgres://app@db/orders").as_deref(),
            Some("orders")
        );
        assert_eq!(
            database("postgres://app@db/orders?dbname=other").as_deref(),
            Some("other")
        );
        assert_eq!(
            database("postgres://app:pw@db:6432").as_deref(),
            Some("app")
        );
    }

    fn facts(admin: Admin, on: bool) -> PoolerFacts {
        PoolerFacts {
            url_port: 6432,
            server_port: Some(5432),
            admin,
            pooler_mode_on: on,
        }
    }

    #[test]
    fn transaction_pooling_without_pooler_mode_warns_and_names_the_parameter() {
        let pgb = |mode: &str| Admin::PgBouncer {
            version: "PgBouncer 1.18.0".into(),
            pool_mode: Some(mode.into()),
        };
        for mode in ["transaction", "statement"] {
            let f = finding(&facts(pgb(mode), false));
            assert_eq!(f.status, Status::Warn, "{f:?}");
            assert!(f.advice.unwrap().contains("tidepool_pooler=true"));
            assert_eq!(finding(&facts(pgb(mode), true)).status, Status::Ok);
        }
        let session = finding(&facts(pgb("session"), false));
        assert_eq!(session.status, Status::Ok);
        assert!(session.detail.contains("not needed"), "{session:?}");
    }

    #[test]
    fn another_port_behind_the_session_is_reported_as_something_in_front() {
        let f = finding(&facts(Admin::Absent("refused".into()), false));
        assert_eq!(f.status, Status::Warn);
        assert!(f.detail.contains("listens on port 5432"), "{f:?}");
        let mut direct = facts(Admin::Absent("no such database".into()), false);
        direct.server_port = Some(6432);
        assert_eq!(finding(&direct).status, Status::Ok);
    }

    #[test]
    fn pooler_mode_is_read_from_the_url() {
        assert!(pooler_mode_on(
            "postgres://a@b/c?sslmode=disable&tidepool_pooler=true"
        ));
        assert!(!pooler_mode_on("postgres://a@b/c?tidepool_pooler=false"));
        assert!(!pooler_mode_on("postgres://a@b/c"));
    }
}
