//! [`PgConfig`]: where and how to connect, built from a URL, a key=value
//! string or setters. It owns validation (ports, sslmode, TLS over sockets)
//! and redaction: its `Debug`, `Display` and [`PgConfig::redacted_url`]
//! never show the password. It does not connect; the manager does.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;
use crate::modes::{SslMode, TargetSessionAttrs};

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
        if bare.contains(['[', ']', '/', '@', ' ']) {
            return Err(ConfigError::Host {
                reason: "a host name contains `[`, `]`, `/`, `@` or a space",
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
    pub(crate) ssl_mode: SslMode,
    pub(crate) ssl_root_cert: Option<PathBuf>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) target_session_attrs: TargetSessionAttrs,
    pub(crate) keepalives: Option<bool>,
    pub(crate) keepalives_idle: Option<Duration>,
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
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("connect_timeout", &self.connect_timeout)
            .field("target_session_attrs", &self.target_session_attrs)
            .finish_non_exhaustive()
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

    /// Command-line options passed to the server (`-c search_path=app`).
    #[must_use]
    pub fn options(mut self, options: impl Into<String>) -> Self {
        self.options = Some(options.into());
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
    /// Whether a password is set (the password itself is not exposed).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
    /// The database, if set.
    pub fn get_dbname(&self) -> Option<&str> {
        self.dbname.as_deref()
    }
    /// The application name, if set.
    pub fn get_application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }
    /// The TLS mode.
    pub fn get_ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }
    /// The CA file, if set.
    pub fn get_ssl_root_cert(&self) -> Option<&std::path::Path> {
        self.ssl_root_cert.as_deref()
    }
    /// The per-host connect timeout, if set.
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }
    /// The target session attributes.
    pub fn get_target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
    }

    /// Checks what parsing cannot: port values and counts, and TLS over
    /// unix sockets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(&p) = self.ports.iter().find(|&&p| p == 0) {
            return Err(ConfigError::Port {
                shown: p.to_string(),
            });
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
