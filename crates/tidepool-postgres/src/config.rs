//! [`PgConfig`]: where and how to connect, built from a URL, a key=value
//! string, the libpq environment variables, serde or setters. It owns
//! validation (ports, sslmode, TLS over sockets, client certificates) and
//! redaction: its `Debug`, `Display` and [`PgConfig::redacted_url`] never
//! show the password. It does not connect; the manager does.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;
use crate::modes::{SslMode, TargetSessionAttrs};

mod env;
#[cfg(feature = "serde")]
mod serde_impl;

/// One server to try: a TCP host name or address, or a unix-socket
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgHost {
    /// A host name or IP address (IPv6 without brackets).
    Tcp(String),
    /// A directory holding the server's socket (`/var/run/postgresql`).
    Unix(PathBuf),
}

impl PgHost {
    /// A host from its text: a leading `/` makes it a socket directory.
    pub fn parse(s: &str) -> Result<PgHost, ConfigError> {
        if s.is_empty() {
            return Err(ConfigError::Host {
                reason: "a host is empty",
            });
        }
        if s.starts_with('/') {
            return Ok(PgHost::Unix(PathBuf::from(s)));
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        // A name, or an IPv6 address (with an optional `%zone`): anything
        // else is a mistake, often a piece of a password that slipped out
        // of the user-info, and is refused without being shown.
        let valid = if bare.contains(':') {
            let addr = bare.split_once('%').map_or(bare, |(a, _)| a);
            addr.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            bare.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if !valid {
            return Err(ConfigError::Host {
                reason: "a host must be a name (letters, digits, `.`, `-`, `_`), an IP address or a socket directory starting with `/`",
            });
        }
        Ok(PgHost::Tcp(bare.to_string()))
    }

    fn write_url(&self, out: &mut String) {
        match self {
            PgHost::Tcp(h) if h.contains(':') => {
                out.push('[');
                out.push_str(h);
                out.push(']');
            }
            PgHost::Tcp(h) => out.push_str(h),
            PgHost::Unix(p) => out.push_str(&p.display().to_string().replace('/', "%2F")),
        }
    }
}

/// A password that never shows itself in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(pub(crate) String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// Where and how to connect.
///
/// From a URL (`postgres://user:pass@host:port/db?sslmode=require`), a
/// key=value string (`host=a,b port=5432 dbname=app`) or setters. `Debug`
/// redacts the password.
///
/// ```
/// use tidepool_postgres::{PgConfig, SslMode};
/// let cfg: PgConfig = "postgres://app:p%40ss@db1:5432,db2:5433/orders?sslmode=require".parse()?;
/// assert_eq!(cfg.get_ports(), &[5432, 5433]);
/// assert_eq!(cfg.get_ssl_mode(), SslMode::Require);
/// assert!(!format!("{cfg:?}").contains("p@ss"));
/// assert_eq!(cfg.redacted_url(), "postgres://app@db1:5432,db2:5433/orders");
///
/// let by_hand = PgConfig::new().host("127.0.0.1").port(5432).user("app").password("secret").dbname("orders");
/// by_hand.validate()?;
/// # Ok::<(), tidepool_postgres::ConfigError>(())
/// ```
#[derive(Clone, Default)]
pub struct PgConfig {
    pub(crate) hosts: Vec<PgHost>,
    pub(crate) hostaddrs: Vec<IpAddr>,
    pub(crate) ports: Vec<u16>,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<Password>,
    pub(crate) dbname: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) options: Option<String>,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_root_cert: Option<PathBuf>,
    pub(crate) ssl_cert: Option<PathBuf>,
    pub(crate) ssl_key: Option<PathBuf>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) target_session_attrs: TargetSessionAttrs,
    pub(crate) keepalives: Option<bool>,
    pub(crate) keepalives_idle: Option<Duration>,
    pub(crate) transaction_pooler: Option<bool>,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("hosts", &self.hosts)
            .field("hostaddrs", &self.hostaddrs)
            .field("ports", &self.ports)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("statement_timeout", &self.statement_timeout)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("connect_timeout", &self.connect_timeout)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("keepalives", &self.keepalives)
            .field("keepalives_idle", &self.keepalives_idle)
            .field("transaction_pooler", &self.transaction_pooler)
            .finish()
    }
}

/// Shows [`PgConfig::redacted_url`]: the target without the password.
impl fmt::Display for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl FromStr for PgConfig {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        crate::parse::parse(s)
    }
}

impl PgConfig {
    /// An empty configuration: `localhost:5432`, sslmode `prefer`, the
    /// user and database left to the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a URL or key=value connection string.
    pub fn from_url(s: &str) -> Result<Self, ConfigError> {
        s.parse()
    }

    /// Adds a host to try (call again for multi-host). A leading `/` names
    /// a unix-socket directory.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        let h = host.into();
        self.hosts.push(if h.starts_with('/') {
            PgHost::Unix(h.into())
        } else {
            PgHost::Tcp(h)
        });
        self
    }

    /// Adds a port (one for all hosts, or one per host). Defaults to 5432.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.ports.push(port);
        self
    }

    /// The user to log in as. Defaults to the server's default (the OS
    /// user name for libpq; tokio-postgres requires one, so set it).
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The password. Never shown by `Debug`, errors or logs.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(Password(password.into()));
        self
    }

    /// The database. Defaults to the user name.
    #[must_use]
    pub fn dbname(mut self, dbname: impl Into<String>) -> Self {
        self.dbname = Some(dbname.into());
        self
    }

    /// The `application_name` reported to the server. Defaults to none.
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Command-line options sent to the server in the startup packet, as
    /// libpq's `options` (`-c search_path=app -c statement_timeout=5s`):
    /// settings applied at connect time, with no extra round trip. A
    /// setting the server refuses fails the connection, and is not
    /// retried. Defaults to none.
    #[must_use]
    pub fn options(mut self, options: impl Into<String>) -> Self {
        self.options = Some(options.into());
        self
    }

    /// The server's `statement_timeout` for every connection, sent with the
    /// startup packet after [`options`](Self::options) (so it wins over a
    /// `-c statement_timeout` there). Zero turns the timeout off, even
    /// where the role or database sets one. Defaults to none: the server's
    /// own setting.
    ///
    /// A statement that runs past it fails with SQLSTATE 57014, a
    /// [`FailureKind::Timeout`](tidepool::FailureKind::Timeout). Rounded up
    /// to whole milliseconds.
    #[must_use]
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// The TLS mode. Defaults to [`SslMode::Prefer`].
    #[must_use]
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = mode;
        self
    }

    /// A PEM file of CA certificates to trust besides the webpki roots
    /// (libpq's `sslrootcert`). Defaults to none.
    #[must_use]
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// A PEM file holding the client certificate (and any intermediates)
    /// to present when the server asks for one (libpq's `sslcert`). Needs
    /// [`ssl_key`](Self::ssl_key). Defaults to none (no client
    /// certificate; libpq's `~/.postgresql/postgresql.crt` is not read).
    #[must_use]
    pub fn ssl_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_cert = Some(path.into());
        self
    }

    /// A PEM file holding the private key of [`ssl_cert`](Self::ssl_cert)
    /// (libpq's `sslkey`; PKCS#8, PKCS#1 or SEC1, unencrypted). Defaults
    /// to none.
    #[must_use]
    pub fn ssl_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_key = Some(path.into());
        self
    }

    /// The time allowed for each host's connection attempt. Defaults to
    /// none (the pool's `connect_timeout` bounds the whole attempt).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Which server of a multi-host list to accept. Defaults to
    /// [`TargetSessionAttrs::Any`].
    #[must_use]
    pub fn target_session_attrs(mut self, attrs: TargetSessionAttrs) -> Self {
        self.target_session_attrs = attrs;
        self
    }

    /// Transaction-pooler mode for the manager built from this config
    /// (the URL's `tidepool_pooler=true`): see
    /// [`PgManagerBuilder::transaction_pooler`](crate::PgManagerBuilder::transaction_pooler),
    /// which wins when both are set. Defaults to off.
    #[must_use]
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.transaction_pooler = Some(on);
        self
    }

    /// The hosts, in the order they are tried.
    pub fn get_hosts(&self) -> &[PgHost] {
        &self.hosts
    }
    /// The ports (empty means 5432).
    pub fn get_ports(&self) -> &[u16] {
        &self.ports
    }
    /// The user, if set.
    pub fn get_user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
    /// The password, if set. Handle with care: never log it.
    pub fn get_password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.0.as_str())
    }
    /// The database, if set.
    pub fn get_dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }
    /// The application name, if set.
    pub fn get_application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }
    /// The server options, if set.
    pub fn get_options(&self) -> Option<&str> {
        self.options.as_deref()
    }
    /// The statement timeout, if set.
    pub fn get_statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }
    /// The TLS mode.
    pub fn get_ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }
    /// The CA file, if set.
    pub fn get_ssl_root_cert(&self) -> Option<&std::path::Path> {
        self.ssl_root_cert.as_deref()
    }
    /// The client certificate file, if set.
    pub fn get_ssl_cert(&self) -> Option<&std::path::Path> {
        self.ssl_cert.as_deref()
    }
    /// The client key file, if set.
    pub fn get_ssl_key(&self) -> Option<&std::path::Path> {
        self.ssl_key.as_deref()
    }
    /// The per-host connect timeout, if set.
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }
    /// The target session attributes.
    pub fn get_target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }
    /// Transaction-pooler mode, if set (`tidepool_pooler` in a URL).
    pub fn get_transaction_pooler(&self) -> Option<bool> {
        self.transaction_pooler
    }

    /// Checks what parsing cannot: port values and counts, TLS over unix
    /// sockets, a client certificate without its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(i) = self.ports.iter().position(|&p| p == 0) {
            return Err(ConfigError::Port { position: i + 1 });
        }
        match (&self.ssl_cert, &self.ssl_key) {
            (Some(_), None) => {
                return Err(ConfigError::InvalidValue {
                    name: "sslcert",
                    reason: "a client certificate needs its key: set sslkey too",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::InvalidValue {
                    name: "sslkey",
                    reason: "a client key needs its certificate: set sslcert too",
                })
            }
            _ => {}
        }
        let hosts = self.hosts.len().max(1);
        if self.ports.len() > 1 && self.ports.len() != hosts {
            return Err(ConfigError::PortCount {
                ports: self.ports.len(),
                hosts,
            });
        }
        if !self.hostaddrs.is_empty() && self.hostaddrs.len() != hosts {
            return Err(ConfigError::InvalidValue {
                name: "hostaddr",
                reason: "give one address per host",
            });
        }
        for h in &self.hosts {
            match h {
                PgHost::Tcp(name) if name.is_empty() => {
                    return Err(ConfigError::Host {
                        reason: "a host is empty",
                    })
                }
                PgHost::Unix(_) if self.ssl_mode.requires_tls() => {
                    return Err(ConfigError::TlsOverUnixSocket {
                        mode: self.ssl_mode.as_str(),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `host:port` of the `i`th host, as `redacted_url` writes it.
    pub(crate) fn host_label(&self, i: usize) -> String {
        let mut out = String::new();
        match self.hosts.get(i) {
            Some(h) => h.write_url(&mut out),
            None => out.push_str("localhost"),
        }
        let port = self
            .ports
            .get(i)
            .or(self.ports.first())
            .copied()
            .unwrap_or(5432);
        out.push(':');
        out.push_str(&port.to_string());
        out
    }

    /// The target as a URL without the password or parameters, for logs:
    /// `postgres://app@db1:5432,db2:5433/orders`.
    pub fn redacted_url(&self) -> String {
        let mut out = String::from("postgres://");
        if let Some(user) = &self.user {
            out.push_str(user);
            out.push('@');
        }
        let default_host = [PgHost::Tcp("localhost".into())];
        let hosts: &[PgHost] = if self.hosts.is_empty() {
            &default_host
        } else {
            &self.hosts
        };
        for (i, h) in hosts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            h.write_url(&mut out);
            let port = self
                .ports
                .get(i)
                .or(self.ports.first())
                .copied()
                .unwrap_or(5432);
            out.push(':');
            out.push_str(&port.to_string());
        }
        if let Some(db) = &self.dbname {
            out.push('/');
            out.push_str(db);
        }
        out
    }
}
