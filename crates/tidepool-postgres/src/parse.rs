//! Parsing connection strings into [`PgConfig`]: URLs
//! (`postgres://user:pass@host:port,host2:port2/db?param=value`) and libpq
//! key=value strings (`host=a,b port=5432 user=app`). Strict where libpq
//! is: percent escapes must be valid, ports 1-65535, parameters known.
//!
//! It must never put a piece of the connection string into an error: a
//! password with an unencoded `?`, `&`, `#` or a space spills into the
//! parameter list, and a short password looks like any keyword. Errors say
//! which part or which parameter (by position) is wrong, never what is
//! written there. An unencoded `/`, `@`, `#`, `:` or `?` in a URL password
//! is read as libpq reads it where that is unambiguous (see
//! [`split_credentials`]).

use std::time::Duration;

use crate::config::{Password, PgConfig, PgHost};
use crate::error::ConfigError;

/// Parses a URL or key=value string.
pub(crate) fn parse(s: &str) -> Result<PgConfig, ConfigError> {
    let s = s.trim();
    let url = s
        .split_once("://")
        .filter(|(scheme, _)| is_scheme_word(scheme));
    let config = if let Some((scheme, rest)) = url {
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(ConfigError::Scheme {
                scheme: shown_scheme(scheme),
            });
        }
        parse_url(rest)?
    } else if s.contains('=') {
        parse_key_value(s)?
    } else if let Some((scheme, _)) = s.split_once(':').filter(|(w, _)| is_known_scheme(w)) {
        return Err(ConfigError::Scheme {
            scheme: shown_scheme(scheme),
        });
    } else {
        return Err(ConfigError::Unrecognized);
    };
    config.validate()?;
    Ok(config)
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// Schemes people paste by mistake; only these are named in an error, as
/// the text before `://` is otherwise the caller's and could be anything.
const KNOWN_SCHEMES: [&str; 14] = [
    "mysql",
    "mariadb",
    "sqlite",
    "file",
    "http",
    "https",
    "jdbc",
    "redis",
    "mongodb",
    "mssql",
    "sqlserver",
    "oracle",
    "pg",
    "psql",
];

fn is_known_scheme(s: &str) -> bool {
    KNOWN_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(s))
}

fn shown_scheme(s: &str) -> String {
    if is_known_scheme(s) {
        s.to_ascii_lowercase()
    } else {
        "(not shown)".to_string()
    }
}

/// Splits what follows `scheme://` into the credentials (before the `@`
/// that ends them) and the rest, the way libpq reads a password holding
/// an unencoded delimiter wherever the reading is unambiguous:
///
/// - the credentials end at the last `@` before the first `?`, so a
///   password may hold `@`, `/`, `#` and `:`;
/// - if no `@` comes before the first `?` but `user:` does, they end at
///   the last `@` before the first `/` (libpq stops its search for `@` at
///   `/` only), so a password may hold `?` (and then `#`, `&`, `=`).
///
/// A password holding both `?` and `/` cannot be told from a host list and
/// a path: it is refused by the parsing that follows, without being shown.
fn split_credentials(rest: &str) -> (Option<&str>, &str) {
    let query = rest.find('?').unwrap_or(rest.len());
    if let Some(at) = rest[..query].rfind('@') {
        return (Some(&rest[..at]), &rest[at + 1..]);
    }
    if rest[..query].contains(':') {
        let slash = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..slash].rfind('@') {
            return (Some(&rest[..at]), &rest[at + 1..]);
        }
    }
    (None, rest)
}

fn parse_url(rest: &str) -> Result<PgConfig, ConfigError> {
    let mut config = PgConfig::new();
    let (credentials, rest) = split_credentials(rest);
    if let Some(userinfo) = credentials {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            config.user = Some(decode(user, "user")?);
        }
        if let Some(p) = password {
            config.password = Some(Password(decode(p, "password")?));
        }
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (hostspec, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    if !hostspec.is_empty() {
        for (i, part) in hostspec.split(',').enumerate() {
            let (host, port) = split_host_port(part)?;
            if !host.is_empty() {
                config.hosts.push(PgHost::parse(&decode(host, "host")?)?);
            } else if i > 0 || hostspec.contains(',') {
                return Err(ConfigError::Host {
                    reason: "a host in the list is empty",
                });
            }
            if let Some(p) = port {
                config.ports.push(parse_port(p, i + 1)?);
            }
        }
    }
    if let Some(db) = path.strip_prefix('/') {
        // An unencoded `/` here is more often a password's (`user:12/x`
        // without `@host`) than a database name's: refuse it.
        if db.contains('/') {
            return Err(ConfigError::InvalidValue {
                name: "dbname",
                reason: "the URL's database holds a `/`: percent-encode it as %2F (and a `/` in a password as %2F too)",
            });
        }
        if !db.is_empty() {
            config.dbname = Some(decode(db, "database")?);
        }
    }
    if let Some(q) = query {
        for (i, pair) in q.split('&').filter(|p| !p.is_empty()).enumerate() {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(ConfigError::KeyValue {
                    reason: "a URL parameter has no `=`",
                    position: i + 1,
                });
            };
            let key = decode(k, "parameter name")?;
            let value = decode(v, "parameter value")?;
            apply(&mut config, &key, &value, i + 1)?;
        }
    }
    Ok(config)
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(part: &str) -> Result<(&str, Option<&str>), ConfigError> {
    if let Some(rest) = part.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return Err(ConfigError::Host {
                reason: "an IPv6 address has no closing `]`",
            });
        };
        let host = &part[..end + 2];
        let after = &rest[end + 1..];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err(ConfigError::Host {
                    reason: "unexpected text after an IPv6 address",
                }),
            },
        };
    }
    Ok(match part.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (part, None),
    })
}

/// A port, 1 to 65535; `position` says which of a list it is.
fn parse_port(p: &str, position: usize) -> Result<u16, ConfigError> {
    match p.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(ConfigError::Port { position }),
        Ok(port) => Ok(port),
    }
}

/// Strict percent-decoding: `%` must start two hex digits; the result must
/// be UTF-8.
fn decode(s: &str, component: &'static str) -> Result<String, ConfigError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(ConfigError::PercentEncoding { component })?;
            let hi = (hex[0] as char).to_digit(16);
            let lo = (hex[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(ConfigError::PercentEncoding { component }),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConfigError::PercentEncoding { component })
}

/// Parses `key=value key2='quoted \' value'`.
fn parse_key_value(s: &str) -> Result<PgConfig, ConfigError> {
    let mut config = PgConfig::new();
    let mut chars = s.chars().peekable();
    let mut position = 0;
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        position += 1;
        let malformed = |reason| ConfigError::KeyValue { reason, position };
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(malformed(
                "a parameter has no `=` (quote a value that holds a space)",
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(malformed("a quoted value is not closed")),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(malformed("a value ends in `\\`")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(malformed("a value ends in `\\`")),
                    }
                } else {
                    value.push(c);
                }
            }
        }
        apply(&mut config, &key, &value, position)?;
    }
    Ok(config)
}

/// Applies one named parameter (shared by URLs, key=value strings and the
/// environment); `position` names the parameter in errors.
pub(crate) fn apply(
    config: &mut PgConfig,
    key: &str,
    value: &str,
    position: usize,
) -> Result<(), ConfigError> {
    match key {
        "host" => {
            config.hosts.clear();
            for h in value.split(',') {
                config.hosts.push(PgHost::parse(h)?);
            }
        }
        "hostaddr" => {
            config.hostaddrs.clear();
            for a in value.split(',') {
                config
                    .hostaddrs
                    .push(a.trim_matches(['[', ']']).parse().map_err(|_| {
                        ConfigError::InvalidValue {
                            name: "hostaddr",
                            reason: "expected IP addresses separated by commas",
                        }
                    })?);
            }
        }
        "port" => {
            config.ports.clear();
            for (i, p) in value.split(',').enumerate() {
                config.ports.push(parse_port(p, i + 1)?);
            }
        }
        "user" => config.user = Some(value.to_string()),
        "password" => config.password = Some(Password(value.to_string())),
        "dbname" => config.dbname = Some(value.to_string()),
        "application_name" => config.application_name = Some(value.to_string()),
        // libpq uses it only when application_name is not given.
        "fallback_application_name" => {
            if config.application_name.is_none() {
                config.application_name = Some(value.to_string());
            }
        }
        "options" => config.options = Some(value.to_string()),
        "statement_timeout" => config.statement_timeout = Some(parse_server_duration(value)?),
        "sslmode" => config.ssl_mode = value.parse()?,
        "sslrootcert" => config.ssl_root_cert = Some(value.into()),
        "sslcert" => config.ssl_cert = Some(value.into()),
        "sslkey" => config.ssl_key = Some(value.into()),
        "connect_timeout" => {
            let secs: i64 = value
                .trim()
                .parse()
                .map_err(|_| ConfigError::InvalidValue {
                    name: "connect_timeout",
                    reason: "expected whole seconds",
                })?;
            config.connect_timeout = match secs {
                s if s < 0 => {
                    return Err(ConfigError::InvalidValue {
                        name: "connect_timeout",
                        reason: "must not be negative",
                    })
                }
                0 => None,
                // libpq treats 1 as 2 seconds; we keep what was asked.
                s => Some(Duration::from_secs(s as u64)),
            };
        }
        "target_session_attrs" => config.target_session_attrs = value.parse()?,
        "keepalives" => {
            config.keepalives = Some(match value {
                "1" => true,
                "0" => false,
                _ => {
                    return Err(ConfigError::InvalidValue {
                        name: "keepalives",
                        reason: "expected 0 or 1",
                    })
                }
            })
        }
        "keepalives_idle" => {
            let secs: u64 = value.parse().map_err(|_| ConfigError::InvalidValue {
                name: "keepalives_idle",
                reason: "expected whole seconds",
            })?;
            config.keepalives_idle = Some(Duration::from_secs(secs));
        }
        // Ours, not libpq's: the `tidepool_` prefix keeps it from ever
        // meaning something to a server or another client.
        "tidepool_pooler" => {
            config.transaction_pooler = Some(match value {
                "1" | "true" | "on" | "yes" => true,
                "0" | "false" | "off" | "no" => false,
                _ => {
                    return Err(ConfigError::InvalidValue {
                        name: "tidepool_pooler",
                        reason: "expected true or false",
                    })
                }
            })
        }
        _ => return Err(ConfigError::UnknownParameter { position }),
    }
    Ok(())
}

/// A duration as PostgreSQL's settings take it: a whole number with an
/// optional unit (`us`, `ms`, `s`, `min`, `h`, `d`), milliseconds when
/// there is none (`statement_timeout=5000` is five seconds).
pub(crate) fn parse_server_duration(value: &str) -> Result<Duration, ConfigError> {
    let invalid = ConfigError::InvalidValue {
        name: "statement_timeout",
        reason: "expected a whole number with a unit (us, ms, s, min, h, d) such as 5s, 500ms or 1min; a bare number is milliseconds",
    };
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let n: u64 = v[..digits].parse().map_err(|_| invalid.clone())?;
    let unit_nanos: u64 = match v[digits..].trim_start() {
        "us" => 1_000,
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err(invalid),
    };
    n.checked_mul(unit_nanos)
        .map(Duration::from_nanos)
        .ok_or(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_percent_decoding_refuses_bad_escapes() {
        assert_eq!(decode("p%40ss%3Aw%25rd", "password").unwrap(), "p@ss:w%rd");
        assert!(decode("w%rd", "password").is_err());
        assert!(decode("w%2", "password").is_err());
        assert!(decode("%ff", "password").is_err());
    }

    /// The parameter names `apply` knows, as libpq spells them.
    const PARAMETERS: [&str; 19] = [
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "application_name",
        "options",
        "statement_timeout",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "connect_timeout",
        "target_session_attrs",
        "keepalives",
        "keepalives_idle",
        "fallback_application_name",
        "tidepool_pooler",
    ];

    #[test]
    fn every_parameter_is_accepted_and_listed_in_the_readme() {
        let readme = include_str!("../README.md");
        for name in PARAMETERS {
            let value = match name {
                "port" => "5432",
                "hostaddr" => "127.0.0.1",
                "sslmode" => "require",
                "target_session_attrs" => "any",
                "keepalives" => "1",
                "tidepool_pooler" => "true",
                "connect_timeout" | "keepalives_idle" | "statement_timeout" => "5",
                _ => "x",
            };
            let mut config = PgConfig::new();
            apply(&mut config, name, value, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                readme.contains(&format!("`{name}`")),
                "README lacks `{name}`"
            );
        }
    }

    #[test]
    fn server_durations_read_as_postgresql_reads_them() {
        for (text, ms) in [
            ("5s", 5_000),
            ("5000", 5_000),
            ("250ms", 250),
            ("1min", 60_000),
            ("2 h", 7_200_000),
            ("0", 0),
        ] {
            assert_eq!(
                parse_server_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        for bad in ["", "5 seconds", "-1s", "1.5s", "s", "99999999999999999999d"] {
            assert!(parse_server_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_end_where_libpq_ends_them() {
        assert_eq!(
            split_credentials("u:a@b/c@h/db?x=y@z"),
            (Some("u:a@b/c"), "h/db?x=y@z")
        );
        assert_eq!(
            split_credentials("u:2024?s=1@h:5432/db"),
            (Some("u:2024?s=1"), "h:5432/db")
        );
        assert_eq!(split_credentials("h/db?x=a@b"), (None, "h/db?x=a@b"));
        assert_eq!(split_credentials("h?x=a@b"), (None, "h?x=a@b"));
    }

    #[test]
    fn ipv6_hosts_split_from_their_ports() {
        assert_eq!(
            split_host_port("[::1]:5433").unwrap(),
            ("[::1]", Some("5433"))
        );
        assert_eq!(split_host_port("[::1]").unwrap(), ("[::1]", None));
        assert!(split_host_port("[::1").is_err());
    }
}
