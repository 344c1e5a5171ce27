//! Parsing connection strings into [`PgConfig`]: URLs
//! (`postgres://user:pass@host:port,host2:port2/db?param=value`) and libpq
//! key=value strings (`host=a,b port=5432 user=app`). Strict where libpq
//! is: percent escapes must be valid, ports 1-65535, parameters known.
//! Errors name the part at fault and never carry a value that could be a
//! password.

use std::time::Duration;

use crate::config::{Password, PgConfig, PgHost};
use crate::error::ConfigError;

/// Parses a URL or key=value string.
pub(crate) fn parse(s: &str) -> Result<PgConfig, ConfigError> {
    let s = s.trim();
    let config = if let Some((scheme, rest)) = s.split_once("://") {
        if !matches!(scheme, "postgres" | "postgresql") {
            // A scheme is letters only; anything else was not a scheme and
            // might hold a secret, so it is not echoed.
            let shown = if scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                scheme.chars().take(32).collect()
            } else {
                "(unreadable)".to_string()
            };
            return Err(ConfigError::Scheme { scheme: shown });
        }
        parse_url(rest)?
    } else if s.contains('=') {
        parse_key_value(s)?
    } else if let Some((scheme, _)) = s.split_once(':') {
        if scheme.chars().all(|c| c.is_ascii_alphanumeric()) && !scheme.is_empty() {
            return Err(ConfigError::Scheme {
                scheme: scheme.chars().take(32).collect(),
            });
        }
        return Err(ConfigError::Unrecognized);
    } else {
        return Err(ConfigError::Unrecognized);
    };
    config.validate()?;
    Ok(config)
}

fn parse_url(rest: &str) -> Result<PgConfig, ConfigError> {
    let mut config = PgConfig::new();
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    // The authority ends at the first `/` after the last `@` (so a `/` in
    // an unencoded password does not cut it short).
    let at = before_query.rfind('@');
    let search_from = at.map_or(0, |i| i + 1);
    let (authority, path) = match before_query[search_from..].find('/') {
        Some(i) => before_query.split_at(search_from + i),
        None => (before_query, ""),
    };
    let hostspec = match authority.rsplit_once('@') {
        Some((userinfo, hostspec)) => {
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
            hostspec
        }
        None => authority,
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
                config.ports.push(parse_port(p)?);
            }
        }
    }
    if let Some(db) = path.strip_prefix('/') {
        if !db.is_empty() {
            config.dbname = Some(decode(db, "database")?);
        }
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(ConfigError::KeyValue {
                    reason: "a URL parameter has no `=`",
                });
            };
            let key = decode(k, "parameter name")?;
            let value = decode(v, "parameter value")?;
            apply(&mut config, &key, &value)?;
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

fn parse_port(p: &str) -> Result<u16, ConfigError> {
    let shown = || {
        if !p.is_empty() && p.len() <= 12 && p.bytes().all(|b| b.is_ascii_digit()) {
            format!("`{p}`")
        } else {
            "(not a number)".to_string()
        }
    };
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(ConfigError::Port { shown: shown() }),
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
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(ConfigError::KeyValue {
                reason: "a parameter has no `=`",
            });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(ConfigError::KeyValue {
                            reason: "a quoted value is not closed",
                        })
                    }
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(ConfigError::KeyValue {
                                reason: "a value ends in `\\`",
                            })
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(ConfigError::KeyValue {
                                reason: "a value ends in `\\`",
                            })
                        }
                    }
                } else {
                    value.push(c);
                }
            }
        }
        apply(&mut config, &key, &value)?;
    }
    Ok(config)
}

/// Applies one named parameter (shared by both formats).
fn apply(config: &mut PgConfig, key: &str, value: &str) -> Result<(), ConfigError> {
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
            for p in value.split(',') {
                config.ports.push(parse_port(p)?);
            }
        }
        "user" => config.user = Some(value.to_string()),
        "password" => config.password = Some(Password(value.to_string())),
        "dbname" => config.dbname = Some(value.to_string()),
        "application_name" => config.application_name = Some(value.to_string()),
        "options" => config.options = Some(value.to_string()),
        "sslmode" => config.ssl_mode = value.parse()?,
        "sslrootcert" => config.ssl_root_cert = Some(value.into()),
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
        other => {
            return Err(ConfigError::UnknownParameter {
                name: crate::modes::shown_token(other),
            });
        }
    }
    Ok(())
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
