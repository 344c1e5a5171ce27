//! serde for [`MysqlConfig`] (feature `serde`): `Deserialize` from a table
//! of the URL's option names (snake_case or dashed), optionally on top of a
//! `url`; `Serialize` to the same shape without the password. A
//! deserialization error never shows a password: the password's own errors
//! do not quote what was found, and a `url` is refused as
//! [`MysqlConfig::from_url`] refuses it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::config::{valid_host, MysqlConfig};

/// A password (or a URL holding one): a string, or a bare number read as
/// its digits. Any other type is refused without quoting it.
struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'v> Visitor<'v> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(not_a_string())
            }
            fn visit_seq<A: de::SeqAccess<'v>>(self, _: A) -> Result<Secret, A::Error> {
                Err(not_a_string())
            }
            fn visit_map<A: de::MapAccess<'v>>(self, _: A) -> Result<Secret, A::Error> {
                Err(not_a_string())
            }
        }
        d.deserialize_any(SecretVisitor)
    }
}

fn not_a_string<E: de::Error>() -> E {
    E::custom("`password` and `url` must be strings (the value is not shown)")
}

/// What a config file holds; every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    #[serde(default)]
    url: Option<Secret>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default, alias = "dbname")]
    database: Option<String>,
    #[serde(default, alias = "ssl-mode")]
    ssl_mode: Option<String>,
    #[serde(default, alias = "ssl-ca")]
    ssl_ca: Option<PathBuf>,
    #[serde(default, alias = "ssl-cert")]
    ssl_cert: Option<PathBuf>,
    #[serde(default, alias = "ssl-key")]
    ssl_key: Option<PathBuf>,
    #[serde(default)]
    socket: Option<String>,
    #[serde(default, alias = "stmt-cache-size")]
    stmt_cache_size: Option<usize>,
}

/// Deserializes from `host`, `port`, `user`, `password`, `database`,
/// `ssl_mode`, `ssl_ca`, `ssl_cert`, `ssl_key`, `socket` and
/// `stmt_cache_size` (the URL's dashed option names work too), plus `url`:
/// a `mysql://` URL the other fields then override. Unknown fields are
/// refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use tidepool_mysql::MysqlConfig;
/// let cfg: MysqlConfig = serde_json::from_str(r#"{
///     "url": "mysql://app@db.local/shop",
///     "password": "s3cret",
///     "ssl_mode": "required"
/// }"#).unwrap();
/// assert_eq!(cfg.password(), Some("s3cret"));
/// assert!(!serde_json::to_string(&cfg).unwrap().contains("s3cret"));
/// # }
/// ```
impl<'de> Deserialize<'de> for MysqlConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Form::deserialize(d)?;
        let mut c = match form.url {
            Some(url) => MysqlConfig::from_url(&url.0).map_err(de::Error::custom)?,
            None => MysqlConfig::default(),
        };
        if let Some(host) = form.host {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host);
            if !valid_host(bare) {
                return Err(de::Error::custom(
                    "`host` must be a host name or an IP address",
                ));
            }
            c.host = bare.to_string();
        }
        if let Some(port) = form.port {
            if port == 0 {
                return Err(de::Error::custom("`port` must be from 1 to 65535"));
            }
            c.port = port;
        }
        set(&mut c.user, form.user);
        if let Some(p) = form.password {
            c.password = Some(p.0);
        }
        set(&mut c.database, form.database);
        if let Some(mode) = form.ssl_mode {
            c.ssl_mode = mode.parse().map_err(de::Error::custom)?;
        }
        set(&mut c.ssl_ca, form.ssl_ca);
        set(&mut c.ssl_cert, form.ssl_cert);
        set(&mut c.ssl_key, form.ssl_key);
        set(&mut c.socket, form.socket);
        if let Some(size) = form.stmt_cache_size {
            c.stmt_cache_size = size;
        }
        c.validate().map_err(de::Error::custom)?;
        Ok(c)
    }
}

fn set<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// What a config serializes to: [`Form`]'s names, without `url` and
/// without the password.
#[derive(Serialize)]
struct View<'a> {
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a str>,
    ssl_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_ca: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_cert: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_key: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<&'a str>,
    stmt_cache_size: usize,
}

/// Serializes everything but the password (which has no place in a file
/// written back or a config dump; supply it again when deserializing).
impl Serialize for MysqlConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        View {
            host: &self.host,
            port: self.port,
            user: self.user.as_deref(),
            database: self.database.as_deref(),
            ssl_mode: self.ssl_mode.as_str(),
            ssl_ca: self.ssl_ca.as_deref(),
            ssl_cert: self.ssl_cert.as_deref(),
            ssl_key: self.ssl_key.as_deref(),
            socket: self.socket.as_deref(),
            stmt_cache_size: self.stmt_cache_size,
        }
        .serialize(s)
    }
}
