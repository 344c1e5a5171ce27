//! Where to connect and how: parses `mysql://` URLs into a [`MysqlConfig`]
//! and turns it into `mysql_async` options. Never prints the password: it is
//! redacted in `Debug`, left out of [`MysqlConfig::describe`], and no error
//! message quotes any part of the URL's user-info.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mysql_async::{Opts, OptsBuilder, SslOpts};

use crate::error::MysqlError;

/// How TLS is used (`ssl-mode`). Modes that ask for TLS never fall back to
/// plain text: a server without TLS, a certificate that does not verify, or
/// a host name that does not match fails the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS (the default, as loopback test servers rarely have it).
    #[default]
    Disabled,
    /// TLS, without verifying the certificate (MySQL's `REQUIRED`).
    Required,
    /// TLS, verifying the certificate chain against `ssl-ca` (or the
    /// built-in roots) but not the host name.
    ///
    /// Known limitation: `mysql_async` up to 0.37.1 with rustls 0.23 still
    /// refuses a certificate that does not name the host
    /// (blackbeam/mysql_async#404), so today this checks the name too,
    /// like [`SslMode::VerifyIdentity`]. It fails closed: never less
    /// checking than asked for.
    VerifyCa,
    /// TLS, verifying the chain and that the certificate names the host.
    VerifyIdentity,
}

impl FromStr for SslMode {
    type Err = MysqlError;
    fn from_str(s: &str) -> Result<Self, MysqlError> {
        Ok(match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" | "disable" => SslMode::Disabled,
            "required" | "require" => SslMode::Required,
            "verify_ca" => SslMode::VerifyCa,
            "verify_identity" | "verify_full" => SslMode::VerifyIdentity,
            "preferred" | "prefer" => {
                return Err(MysqlError::InvalidOption {
                    name: "ssl-mode".into(),
                    reason: "`preferred` is not supported: it silently falls back to plain text; use disabled, required, verify_ca or verify_identity".into(),
                })
            }
            _ => {
                return Err(MysqlError::InvalidOption {
                    name: "ssl-mode".into(),
                    reason: format!("`{s}` is not valid; expected disabled, required, verify_ca or verify_identity"),
                })
            }
        })
    }
}

/// Where and how to connect to MySQL or MariaDB.
///
/// ```
/// use tidepool_mysql::{MysqlConfig, SslMode};
///
/// let cfg: MysqlConfig = "mysql://app:p%40ss%3Aw%25rd@127.0.0.1:3307/shop?ssl-mode=required".parse()?;
/// assert_eq!(cfg.host(), "127.0.0.1");
/// assert_eq!(cfg.port(), 3307);
/// assert_eq!(cfg.user(), Some("app"));
/// assert_eq!(cfg.password(), Some("p@ss:w%rd"));
/// assert_eq!(cfg.database(), Some("shop"));
/// assert_eq!(cfg.ssl_mode(), SslMode::Required);
/// // The password never shows:
/// assert!(!format!("{cfg:?}").contains("p@ss"));
/// assert_eq!(cfg.describe(), "mysql://app@127.0.0.1:3307/shop");
/// # Ok::<(), tidepool_mysql::MysqlError>(())
/// ```
///
/// # URL form
///
/// `mysql://[user[:password]@]host[:port][/database][?options]` (also
/// `mariadb://`). User, password and database are percent-decoded; an IPv6
/// host is written in brackets (`[::1]`). Options:
///
/// | option | meaning | default |
/// | --- | --- | --- |
/// | `ssl-mode` | `disabled`, `required`, `verify_ca`, `verify_identity` | `disabled` |
/// | `ssl-ca` | PEM file of the CA to trust (with the verify modes) | built-in web roots |
/// | `socket` | unix socket path, used instead of TCP | none |
/// | `stmt-cache-size` | prepared statements cached per connection | `32` |
///
/// Underscores work in place of dashes (`ssl_mode`).
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    ssl_mode: SslMode,
    ssl_ca: Option<PathBuf>,
    socket: Option<String>,
    stmt_cache_size: usize,
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .field("socket", &self.socket)
            .field("stmt_cache_size", &self.stmt_cache_size)
            .finish()
    }
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            host: "127.0.0.1".into(),
            port: 3306,
            user: None,
            password: None,
            database: None,
            ssl_mode: SslMode::Disabled,
            ssl_ca: None,
            socket: None,
            stmt_cache_size: 32,
        }
    }
}

impl FromStr for MysqlConfig {
    type Err = MysqlError;
    fn from_str(s: &str) -> Result<Self, MysqlError> {
        Self::from_url(s)
    }
}

impl MysqlConfig {
    /// A configuration for `127.0.0.1:3306`, no user, no database; adjust
    /// with the setters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `mysql://` URL (see the type's docs).
    pub fn from_url(url: &str) -> Result<Self, MysqlError> {
        parse_url(url)
    }

    /// Sets the host (name, IPv4 or IPv6 address). Defaults to `127.0.0.1`.
    #[must_use]
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }
    /// Sets the TCP port. Defaults to 3306.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Sets the user. Defaults to none (the server decides).
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Sets the password. Defaults to none.
    #[must_use]
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
    /// Sets the default database. Defaults to none.
    #[must_use]
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }
    /// Sets the TLS mode. Defaults to [`SslMode::Disabled`].
    #[must_use]
    pub fn with_ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = mode;
        self
    }
    /// Trusts the CA in this PEM file. Defaults to the built-in web roots.
    #[must_use]
    pub fn with_ssl_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_ca = Some(path.into());
        self
    }
    /// Connects through this unix socket instead of TCP. Defaults to none.
    #[must_use]
    pub fn with_socket(mut self, path: impl Into<String>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The user, if set.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// The password, if set. Handle with care: never log it.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
    /// The default database, if set.
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }
    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }
    /// The CA file trusted by the verify modes, if set.
    pub fn ssl_ca(&self) -> Option<&Path> {
        self.ssl_ca.as_deref()
    }
    /// The unix socket path, if set.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// A description for logs, without the password:
    /// `mysql://user@host:port/db`.
    pub fn describe(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let db = self.database.as_deref().unwrap_or("");
        match &self.socket {
            Some(socket) => format!("mysql://{user}{host}/{db}?socket={socket}"),
            None => format!("mysql://{user}{host}:{}/{db}", self.port),
        }
    }

    /// The `mysql_async` options for a single connection (its own pool is
    /// not used).
    pub fn to_opts(&self) -> Opts {
        let mut builder = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(self.database.clone())
            // Never switch to a socket behind the caller's back.
            .prefer_socket(false)
            .socket(self.socket.clone())
            .stmt_cache_size(self.stmt_cache_size);
        let ssl = match self.ssl_mode {
            SslMode::Disabled => None,
            SslMode::Required => Some(
                SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            ),
            SslMode::VerifyCa => Some(self.ca_opts().with_danger_skip_domain_validation(true)),
            SslMode::VerifyIdentity => Some(self.ca_opts()),
        };
        builder = builder.ssl_opts(ssl);
        Opts::from(builder)
    }

    fn ca_opts(&self) -> SslOpts {
        match &self.ssl_ca {
            Some(path) => SslOpts::default().with_root_certs(vec![path.clone().into()]),
            None => SslOpts::default(),
        }
    }
}

fn invalid_url(reason: impl Into<String>) -> MysqlError {
    MysqlError::InvalidUrl {
        reason: reason.into(),
    }
}

/// Percent-decodes `part`, refusing malformed escapes. `what` names the
/// part in the error; the part's content is never quoted.
fn decode(part: &str, what: &str) -> Result<String, MysqlError> {
    let bytes = part.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(invalid_url(format!(
                    "bad percent-encoding in the {what}: `%` must be followed by two hex digits (write `%25` for a literal `%`)"
                )));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            invalid_url(format!(
                "the {what} is not valid UTF-8 after percent-decoding"
            ))
        })
}

fn parse_url(url: &str) -> Result<MysqlConfig, MysqlError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid_url(
            "expected `mysql://[user[:password]@]host[:port][/database]`",
        ));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "mysql" | "mariadb") {
        return Err(invalid_url(format!(
            "expected the scheme `mysql` or `mariadb`, found `{}`",
            scheme.chars().take(32).collect::<String>()
        )));
    }
    if rest.contains('#') {
        return Err(invalid_url(
            "fragments (`#...`) are not supported; percent-encode a `#` in the password as `%23`",
        ));
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The user-info ends at the last `@` before the path, so an unencoded
    // `@` in the password still parses.
    let (authority, path) = {
        let at = before_query.rfind('@').map_or(0, |i| i + 1);
        match before_query[at..].find('/') {
            Some(slash) => (
                &before_query[..at + slash],
                Some(&before_query[at + slash + 1..]),
            ),
            None => (before_query, None),
        }
    };
    let mut cfg = MysqlConfig::default();
    let hostport = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, pass) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            let user = decode(user, "user name")?;
            if !user.is_empty() {
                cfg.user = Some(user);
            }
            if let Some(p) = pass {
                cfg.password = Some(decode(p, "password")?);
            }
            hostport
        }
        None => authority,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(invalid_url("an IPv6 host must be closed with `]`"));
        };
        match after {
            "" => (addr.to_string(), None),
            p if p.starts_with(':') => (addr.to_string(), Some(&p[1..])),
            _ => {
                return Err(invalid_url(
                    "unexpected text after the IPv6 host; expected `:port`",
                ))
            }
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (decode(h, "host")?, Some(p)),
            None => (decode(hostport, "host")?, None),
        }
    };
    if let Some(p) = port {
        cfg.port = match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => n as u16,
            Ok(_) => {
                return Err(invalid_url(format!(
                    "port {p} is out of range; expected 1 to 65535"
                )))
            }
            Err(_) => return Err(invalid_url("the port is not a number; expected 1 to 65535")),
        };
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        let db = decode(path, "database name")?;
        if db.contains('/') {
            return Err(invalid_url(
                "the database name contains `/`; percent-encode it as `%2F`",
            ));
        }
        cfg.database = Some(db);
    }
    let mut seen: Vec<String> = Vec::new();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name, "option name")?.replace('_', "-");
        let value = decode(raw_value, "option value")?;
        if seen.contains(&name) {
            return Err(MysqlError::InvalidOption {
                name,
                reason: "is given more than once".into(),
            });
        }
        match name.as_str() {
            "ssl-mode" | "sslmode" => cfg.ssl_mode = value.parse()?,
            "ssl-ca" => cfg.ssl_ca = Some(PathBuf::from(value)),
            "socket" => cfg.socket = Some(value),
            "stmt-cache-size" => {
                cfg.stmt_cache_size = value.parse().map_err(|_| MysqlError::InvalidOption {
                    name: name.clone(),
                    reason: format!("`{value}` is not a number"),
                })?
            }
            _ => {
                return Err(MysqlError::InvalidOption {
                    name,
                    reason:
                        "is not a known option (known: ssl-mode, ssl-ca, socket, stmt-cache-size)"
                            .into(),
                })
            }
        }
        seen.push(name);
    }
    if host.is_empty() && cfg.socket.is_none() {
        return Err(invalid_url("the URL names no host"));
    }
    cfg.host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    Ok(cfg)
}
