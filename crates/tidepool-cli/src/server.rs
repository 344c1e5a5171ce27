//! What `size` and `doctor` read from a server through the uniform query
//! face: version, connection limit and use, TLS in use, and the server-side
//! timeouts that close idle sessions. Each figure is optional: a query the
//! server refuses (an old version, missing privilege) leaves it unknown.
//! Only reads: every statement is a constant `SELECT` or `SHOW`, sent on a
//! session first made read-only, and a test holds the list.

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
}

/// The only way `size` and `doctor` talk to a server: read statements, each
/// a constant (`&'static str`, so no text is ever built from input), plus
/// the session settings that make the session refuse writes. Nothing here
/// writes, and [`tests`] checks every statement [`facts`] sends.
pub trait Reader: Send {
    /// Runs a read statement; each row as text.
    fn read(
        &mut self,
        sql: &'static str,
    ) -> impl std::future::Future<Output = Result<Vec<Vec<String>>, String>> + Send;

    /// Changes a setting of this session only (never the server's).
    fn set_session(
        &mut self,
        sql: &'static str,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

impl<C: Queryable> Reader for C {
    async fn read(&mut self, sql: &'static str) -> Result<Vec<Vec<String>>, String> {
        let rows = self
            .query_values(sql, &[])
            .await
            .map_err(|e| crate::error::one_line(&e))?;
        Ok(rows
            .iter()
            .map(|row| row.values().iter().map(value_text).collect())
            .collect())
    }

    async fn set_session(&mut self, sql: &'static str) -> Result<(), String> {
        self.execute_values(sql, &[])
            .await
            .map(drop)
            .map_err(|e| crate::error::one_line(&e))
    }
}

/// The statement that makes every later transaction of this session
/// read-only, so that even a mistake here could not write: PostgreSQL and
/// MySQL/MariaDB then refuse INSERT, UPDATE, DELETE and DDL.
fn read_only_session(dialect: Dialect) -> Option<&'static str> {
    match dialect {
        Dialect::Postgres => Some("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"),
        Dialect::Mysql => Some("SET SESSION TRANSACTION READ ONLY"),
        Dialect::Sqlite => None,
    }
}

/// Makes the session read-only (see [`read_only_session`]); whether the
/// server took it. An old server that refuses the statement still only
/// gets reads from [`facts`].
pub async fn make_read_only<R: Reader>(conn: &mut R, dialect: Dialect) -> bool {
    match read_only_session(dialect) {
        Some(sql) => conn.set_session(sql).await.is_ok(),
        None => false,
    }
}

async fn one<R: Reader>(conn: &mut R, sql: &'static str) -> Option<Vec<String>> {
    conn.read(sql).await.ok()?.into_iter().next()
}

async fn number<R: Reader>(conn: &mut R, sql: &'static str, column: usize) -> Option<u64> {
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

/// Reads what the server will tell. SQLite files are read by
/// [`crate::sqlite_file`] instead, without a pool.
pub async fn facts<R: Reader>(conn: &mut R, dialect: Dialect) -> ServerFacts {
    let mut f = ServerFacts::default();
    match dialect {
        Dialect::Sqlite => {
            f.version = one(conn, "SELECT sqlite_version()")
                .await
                .and_then(|r| r.into_iter().next());
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
                .read(
                    "SELECT name, setting, unit FROM pg_settings WHERE name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout')",
                )
                .await
            {
                for cells in rows {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every statement, answering each read with one row of zeros.
    #[derive(Default)]
    struct Recorder {
        reads: Vec<&'static str>,
        settings: Vec<&'static str>,
    }

    impl Reader for Recorder {
        async fn read(&mut self, sql: &'static str) -> Result<Vec<Vec<String>>, String> {
            self.reads.push(sql);
            Ok(vec![vec!["0".into(); 3]])
        }

        async fn set_session(&mut self, sql: &'static str) -> Result<(), String> {
            self.settings.push(sql);
            Ok(())
        }
    }

    #[tokio::test]
    async fn size_and_doctor_send_only_reads_on_a_session_made_read_only() {
        for dialect in [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite] {
            let mut conn = Recorder::default();
            make_read_only(&mut conn, dialect).await;
            facts(&mut conn, dialect).await;
            assert!(!conn.reads.is_empty());
            for sql in &conn.reads {
                let head = sql.trim_start().to_ascii_uppercase();
                assert!(
                    (head.starts_with("SELECT ") || head.starts_with("SHOW "))
                        && !sql.contains(';'),
                    "{dialect:?} sends a statement that is not a plain read: {sql}"
                );
                for word in [
                    "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", " INTO ",
                ] {
                    assert!(!head.contains(word), "{dialect:?}: {sql}");
                }
            }
            match dialect {
                Dialect::Sqlite => assert!(conn.settings.is_empty()),
                _ => {
                    assert_eq!(conn.settings.len(), 1, "{:?}", conn.settings);
                    assert!(
                        conn.settings[0].ends_with("READ ONLY"),
                        "{:?}",
                        conn.settings
                    );
                }
            }
        }
    }
}
