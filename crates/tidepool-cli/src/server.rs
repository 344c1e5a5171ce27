//! What `size` and `doctor` read from a server through the uniform query
//! face: version, connection limit and use, TLS in use, and the server-side
//! timeouts that close idle sessions. Each figure is optional: a query the
//! server refuses (an old version, missing privilege) leaves it unknown.

use std::time::Duration;

use tidepool::Queryable;

use crate::target::Dialect;
use crate::value_text;

/// A server-side timeout that can close a pooled connection.
#[derive(Debug, Clone)]
pub struct ServerTimeout {
    /// The server's name for it.
    pub name: &'static str,
    /// `None` when disabled (zero).
    pub value: Option<Duration>,
    /// What it applies to, in words.
    pub applies_to: &'static str,
}

/// Figures read from the server.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub version: Option<String>,
    pub max_connections: Option<u64>,
    /// Connections reserved for superusers (PostgreSQL).
    pub reserved: Option<u64>,
    pub current_connections: Option<u64>,
    pub timeouts: Vec<ServerTimeout>,
    /// TLS in use on this connection: `Some("TLSv1.3 TLS_AES_256_GCM_SHA384")`,
    /// `Some("")` for none, `None` if unknown.
    pub tls_in_use: Option<String>,
    /// Whether the server accepts TLS at all.
    pub tls_offered: Option<bool>,
    /// Notes such as SQLite's journal mode.
    pub notes: Vec<String>,
}

async fn one<C: Queryable>(conn: &mut C, sql: &str) -> Option<Vec<String>> {
    let rows = conn.query(sql, &[]).await.ok()?;
    let row = rows.into_iter().next()?;
    Some(row.values().iter().map(value_text).collect())
}

async fn number<C: Queryable>(conn: &mut C, sql: &str, column: usize) -> Option<u64> {
    one(conn, sql)
        .await?
        .get(column)?
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n as u64)
}

fn duration_from(setting: &str, unit_seconds: f64) -> Option<Option<Duration>> {
    let n: f64 = setting.trim().parse().ok()?;
    Some((n > 0.0).then(|| Duration::from_secs_f64(n * unit_seconds)))
}

/// Reads what the server will tell.
pub async fn facts<C: Queryable>(conn: &mut C, dialect: Dialect) -> ServerFacts {
    let mut f = ServerFacts::default();
    match dialect {
        Dialect::Sqlite => {
            f.version = one(conn, "SELECT sqlite_version()")
                .await
                .and_then(|r| r.into_iter().next());
            if let Some(mode) = one(conn, "PRAGMA journal_mode")
                .await
                .and_then(|r| r.into_iter().next())
            {
                f.notes.push(format!("journal_mode = {mode}"));
            }
        }
        Dialect::Postgres => {
            f.version = one(conn, "SHOW server_version")
                .await
                .and_then(|r| r.into_iter().next());
            f.max_connections = number(conn, "SHOW max_connections", 0).await;
            f.reserved = number(conn, "SHOW superuser_reserved_connections", 0).await;
            f.current_connections = number(
                conn,
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
                0,
            )
            .await;
            if let Ok(rows) = conn
                .query(
                    "SELECT name, setting, unit FROM pg_settings WHERE name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout')",
                    &[],
                )
                .await
            {
                for row in rows {
                    let cells: Vec<String> = row.values().iter().map(value_text).collect();
                    let [name, setting, unit] = cells.as_slice() else {
                        continue;
                    };
                    let scale = match unit.as_str() {
                        "ms" => 0.001,
                        "min" => 60.0,
                        _ => 1.0,
                    };
                    let Some(value) = duration_from(setting, scale) else {
                        continue;
                    };
                    let (name, applies_to): (&'static str, &'static str) =
                        if name == "idle_session_timeout" {
                            ("idle_session_timeout", "idle sessions")
                        } else {
                            (
                                "idle_in_transaction_session_timeout",
                                "sessions idle inside a transaction",
                            )
                        };
                    f.timeouts.push(ServerTimeout {
                        name,
                        value,
                        applies_to,
                    });
                }
            }
            f.tls_offered = one(conn, "SHOW ssl")
                .await
                .and_then(|r| r.into_iter().next())
                .map(|s| s == "on");
            f.tls_in_use = one(
                conn,
                "SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            )
            .await
            .map(|r| {
                if r.first().map(String::as_str) == Some("true") {
                    r[1..].join(" ")
                } else {
                    String::new()
                }
            });
        }
        Dialect::Mysql => {
            f.version = one(conn, "SELECT VERSION()")
                .await
                .and_then(|r| r.into_iter().next());
            f.max_connections = number(conn, "SELECT @@max_connections", 0).await;
            f.current_connections = number(conn, "SHOW STATUS LIKE 'Threads_connected'", 1).await;
            if let Some(r) = one(conn, "SELECT @@wait_timeout").await {
                if let Some(value) = r.first().and_then(|s| duration_from(s, 1.0)) {
                    f.timeouts.push(ServerTimeout {
                        name: "wait_timeout",
                        value,
                        applies_to: "idle sessions",
                    });
                }
            }
            f.tls_in_use = one(conn, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .await
                .map(|r| r.get(1).cloned().unwrap_or_default());
            f.tls_offered = one(conn, "SHOW VARIABLES LIKE 'have_ssl'")
                .await
                .map(|r| r.get(1).is_some_and(|v| v.eq_ignore_ascii_case("YES")));
        }
    }
    f
}
