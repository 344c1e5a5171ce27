//! serde for [`PgConfig`] (feature `serde`): `Deserialize` from a table of
//! libpq's parameter names (durations in humantime, `"5s"`), optionally on
//! top of a `url`; `Serialize` to the same shape without the password. A
//! deserialization error never shows a password: the password field's own
//! errors do not quote what was found, and a `url` is refused as
//! [`ConfigError`](crate::ConfigError) refuses it.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::config::{Password, PgConfig, PgHost};

/// One value or a list (`host = "a"` or `host = ["a", "b"]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A password: a string (or a bare number, read as its digits). Any other
/// type is refused without quoting it.
struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'v> Visitor<'v> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a password string")
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
    E::custom("`password` must be a string (the value is not shown)")
}

/// What a config file holds; every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Form {
    #[serde(default)]
    url: Option<Secret>,
    #[serde(default)]
    host: Option<OneOrMany<String>>,
    #[serde(default)]
    hostaddr: Option<OneOrMany<IpAddr>>,
    #[serde(default)]
    port: Option<OneOrMany<u16>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default, alias = "database")]
    dbname: Option<String>,
    #[serde(default)]
    application_name: Option<String>,
    #[serde(default)]
    options: Option<String>,
    #[serde(default, with = "humantime_serde")]
    statement_timeout: Option<Duration>,
    #[serde(default, alias = "ssl_mode")]
    sslmode: Option<String>,
    #[serde(default, alias = "ssl_root_cert")]
    sslrootcert: Option<PathBuf>,
    #[serde(default, alias = "ssl_cert")]
    sslcert: Option<PathBuf>,
    #[serde(default, alias = "ssl_key")]
    sslkey: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    #[serde(default)]
    target_session_attrs: Option<String>,
    #[serde(default)]
    keepalives: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    keepalives_idle: Option<Duration>,
    #[serde(default, alias = "transaction_pooler")]
    tidepool_pooler: Option<bool>,
}

/// Deserializes from libpq's parameter names (`host`, `port`, `user`,
/// `password`, `dbname`, `sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
/// `application_name`, `options`, `statement_timeout`, `connect_timeout`,
/// `target_session_attrs`, `keepalives`, `keepalives_idle`, `hostaddr`),
/// tidepool's own `tidepool_pooler` (alias `transaction_pooler`),
/// plus `url`: a connection string the other fields then override.
/// `host`, `hostaddr` and `port` take one value or a list; durations are
/// humantime strings (`"5s"`, `"1m 30s"`). Unknown fields are refused.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use tidepool_postgres::PgConfig;
/// let cfg: PgConfig = serde_json::from_str(r#"{
///     "url": "postgres://app@db1/orders",
///     "password": "s3cret",
///     "statement_timeout": "5s",
///     "sslmode": "require"
/// }"#).unwrap();
/// assert_eq!(cfg.get_statement_timeout(), Some(std::time::Duration::from_secs(5)));
/// assert!(!serde_json::to_string(&cfg).unwrap().contains("s3cret"));
/// # }
/// ```
impl<'de> Deserialize<'de> for PgConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let form = Form::deserialize(d)?;
        let mut c = match form.url {
            Some(url) => PgConfig::from_url(&url.0).map_err(de::Error::custom)?,
            None => PgConfig::new(),
        };
        if let Some(hosts) = form.host {
            c.hosts = hosts
                .into_vec()
                .iter()
                .map(|h| PgHost::parse(h))
                .collect::<Result<_, _>>()
                .map_err(de::Error::custom)?;
        }
        if let Some(addrs) = form.hostaddr {
            c.hostaddrs = addrs.into_vec();
        }
        if let Some(ports) = form.port {
            c.ports = ports.into_vec();
        }
        set(&mut c.user, form.user);
        if let Some(p) = form.password {
            c.password = Some(Password(p.0));
        }
        set(&mut c.dbname, form.dbname);
        set(&mut c.application_name, form.application_name);
        set(&mut c.options, form.options);
        set(&mut c.statement_timeout, form.statement_timeout);
        if let Some(mode) = form.sslmode {
            c.ssl_mode = mode.parse().map_err(de::Error::custom)?;
        }
        set(&mut c.ssl_root_cert, form.sslrootcert);
        set(&mut c.ssl_cert, form.sslcert);
        set(&mut c.ssl_key, form.sslkey);
        // As in a URL, zero means "no per-host timeout".
        if let Some(t) = form.connect_timeout {
            c.connect_timeout = (!t.is_zero()).then_some(t);
        }
        if let Some(attrs) = form.target_session_attrs {
            c.target_session_attrs = attrs.parse().map_err(de::Error::custom)?;
        }
        set(&mut c.keepalives, form.keepalives);
        set(&mut c.keepalives_idle, form.keepalives_idle);
        set(&mut c.transaction_pooler, form.tidepool_pooler);
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    host: Vec<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    hostaddr: &'a [IpAddr],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    port: &'a [u16],
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dbname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<&'a str>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    statement_timeout: Option<Duration>,
    sslmode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslrootcert: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslcert: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslkey: Option<&'a Path>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    connect_timeout: Option<Duration>,
    target_session_attrs: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    keepalives: Option<bool>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    keepalives_idle: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tidepool_pooler: Option<bool>,
}

/// Serializes everything but the password (which has no place in a file
/// written back or a config dump; supply it again when deserializing).
impl Serialize for PgConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        View {
            host: self
                .hosts
                .iter()
                .map(|h| match h {
                    PgHost::Tcp(name) => name.clone(),
                    PgHost::Unix(path) => path.display().to_string(),
                })
                .collect(),
            hostaddr: &self.hostaddrs,
            port: &self.ports,
            user: self.user.as_deref(),
            dbname: self.dbname.as_deref(),
            application_name: self.application_name.as_deref(),
            options: self.options.as_deref(),
            statement_timeout: self.statement_timeout,
            sslmode: self.ssl_mode.as_str(),
            sslrootcert: self.ssl_root_cert.as_deref(),
            sslcert: self.ssl_cert.as_deref(),
            sslkey: self.ssl_key.as_deref(),
            connect_timeout: self.connect_timeout,
            target_session_attrs: self.target_session_attrs.as_str(),
            keepalives: self.keepalives,
            keepalives_idle: self.keepalives_idle,
            tidepool_pooler: self.transaction_pooler,
        }
        .serialize(s)
    }
}
