//! Which database a URL names, how to show a URL without its password, and
//! the per-driver dispatch: each driver is one arm of [`with_manager!`],
//! and everything behind it is generic over `tidepool::Manager` whose
//! connection implements `tidepool::Queryable`.

use crate::error::CliError;

/// The SQL dialect of a target, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Mysql => "MySQL/MariaDB",
        }
    }
}

/// A parsed database target.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(tidepool_sqlite::SqliteConfig),
    Postgres(String),
    Mysql(String),
}

impl Target {
    /// Reads a URL; the error shows the URL with its password redacted.
    pub fn parse(url: &str) -> Result<Target, CliError> {
        let bad = |reason: String| CliError::Url {
            url: redact(url),
            reason,
        };
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .ok_or_else(|| bad("no scheme; expected postgres://, mysql:// or sqlite://".into()))?;
        match scheme.as_str() {
            "sqlite" => tidepool_sqlite::SqliteConfig::from_url(url)
                .map(Target::Sqlite)
                .map_err(|e| bad(e.to_string())),
            "postgres" | "postgresql" => Ok(Target::Postgres(url.to_string())),
            "mysql" | "mariadb" => Ok(Target::Mysql(url.to_string())),
            other => Err(bad(format!(
                "unsupported scheme `{other}`; expected postgres://, mysql:// or sqlite://"
            ))),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Target::Sqlite(_) => Dialect::Sqlite,
            Target::Postgres(_) => Dialect::Postgres,
            Target::Mysql(_) => Dialect::Mysql,
        }
    }

    /// `host:port` for network targets.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let (url, default_port) = match self {
            Target::Sqlite(_) => return None,
            Target::Postgres(u) => (u, 5432),
            Target::Mysql(u) => (u, 3306),
        };
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?']).next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        // Multi-host URLs: the first host.
        let hostport = hostport.split(',').next()?;
        if let Some(v6) = hostport.strip_prefix('[') {
            let (host, rest) = v6.split_once(']')?;
            let port = rest
                .strip_prefix(':')
                .map_or(Some(default_port), |p| p.parse().ok())?;
            return Some((host.to_string(), port));
        }
        match hostport.rsplit_once(':') {
            Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
            None if hostport.is_empty() => Some(("localhost".into(), default_port)),
            None => Some((hostport.to_string(), default_port)),
        }
    }

    /// A URL query parameter (like `sslmode`), if present.
    pub fn param(&self, name: &str) -> Option<String> {
        let url = match self {
            Target::Sqlite(_) => return None,
            Target::Postgres(u) | Target::Mysql(u) => u,
        };
        let query = url.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    }
}

/// The URL with the password (in the userinfo or a `password=` parameter)
/// replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        let end = url[start..]
            .find(['/', '?'])
            .map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = url[start..at].find(':').map(|i| start + i) {
                out = format!("{}:***{}", &url[..colon], &url[at..]);
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// Runs `$body` with `$make` bound to a closure that makes a fresh manager
/// for `$target`, whatever its driver; `$dialect` is bound to its dialect.
macro_rules! with_manager {
    ($target:expr, |$make:ident, $dialect:ident| $body:expr) => {{
        let target: &$crate::target::Target = $target;
        let $dialect = target.dialect();
        match target {
            $crate::target::Target::Sqlite(config) => {
                let config = config.clone();
                let $make =
                    move || -> Result<tidepool_sqlite::SqliteManager, $crate::error::CliError> {
                        Ok(tidepool_sqlite::SqliteManager::new(config.clone()))
                    };
                $body
            }
            $crate::target::Target::Postgres(url) => {
                let url = url.clone();
                let $make =
                    move || -> Result<tidepool_postgres::PgManager, $crate::error::CliError> {
                        tidepool_postgres::PgManager::from_url(&url).map_err(|e| {
                            $crate::error::CliError::Url {
                                url: $crate::target::redact(&url),
                                reason: $crate::error::one_line(&e),
                            }
                        })
                    };
                $body
            }
            $crate::target::Target::Mysql(url) => {
                let url = url.clone();
                let $make =
                    move || -> Result<tidepool_mysql::MysqlManager, $crate::error::CliError> {
                        tidepool_mysql::MysqlManager::from_url(&url).map_err(|e| {
                            $crate::error::CliError::Url {
                                url: $crate::target::redact(&url),
                                reason: $crate::error::one_line(&e),
                            }
                        })
                    };
                $body
            }
        }
    }};
}
pub(crate) use with_manager;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords_in_userinfo_and_parameters() {
        let url = "postgres://app:s3cr%40t:x@db:5432/orders?password=hunter2&sslmode=require";
        let shown = redact(url);
        assert_eq!(
            shown,
            "postgres://app:***@db:5432/orders?password=***&sslmode=require"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
    }

    #[test]
    fn host_and_port_come_from_the_authority() {
        let t = Target::parse("postgres://u:p@10.0.0.1:6543/db").unwrap();
        assert_eq!(t.host_port(), Some(("10.0.0.1".into(), 6543)));
        let t = Target::parse("mysql://root@localhost/test").unwrap();
        assert_eq!(t.host_port(), Some(("localhost".into(), 3306)));
        let t = Target::parse("postgres://[::1]:5433/db?sslmode=disable").unwrap();
        assert_eq!(t.host_port(), Some(("::1".into(), 5433)));
        assert_eq!(t.param("SSLMODE").as_deref(), Some("disable"));
    }

    #[test]
    fn an_unknown_scheme_is_refused_without_echoing_the_password() {
        let err = Target::parse("oracle://u:topsecret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("oracle"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }
}
