//! Where to connect and how: parses `mysql://` URLs (or the MySQL client's
//! environment variables, or serde) into a [`MysqlConfig`] and turns it into
//! `mysql_async` options. Never prints the password: it is redacted in
//! `Debug`, left out of [`MysqlConfig::describe`] and of `Serialize`, and no
//! error message quotes what the caller wrote (only known option names and
//! file paths): a password with an unencoded `?` spills into the option
//! list, and short passwords look like any keyword.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mysql_async::{ClientIdentity, Opts, OptsBuilder, SslOpts};

use crate::error::MysqlError;

mod env;
#[cfg(feature = "serde")]
mod serde_impl;

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

impl SslMode {
    /// The name used in URLs (`disabled`, `required`, `verify_ca`,
    /// `verify_identity`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify_ca",
            SslMode::VerifyIdentity => "verify_identity",
        }
    }
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
            // The value is not shown: a misplaced piece of a password looks
            // like any keyword.
            _ => {
                return Err(MysqlError::InvalidOption {
                    name: "ssl-mode".into(),
                    reason: "is not one of disabled, required, verify_ca or verify_identity".into(),
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
/// | `ssl-cert`, `ssl-key` | client certificate (PEM) and its RSA key (PKCS#1 PEM, `BEGIN RSA PRIVATE KEY`), presented when the server asks | none |
/// | `socket` | unix socket path, used instead of TCP | none |
/// | `stmt-cache-size` | prepared statements cached per connection | `32` |
///
/// Underscores work in place of dashes (`ssl_mode`). A password holding an
/// unencoded `@`, `/`, `#`, `:` or `?` is read whole where that is
/// unambiguous (the credentials end at the last `@` before the first `?`,
/// else at the last `@` before the first `/`); errors never quote it.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
    ssl_mode: SslMode,
    ssl_ca: Option<PathBuf>,
    ssl_cert: Option<PathBuf>,
    ssl_key: Option<PathBuf>,
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
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
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
            ssl_cert: None,
            ssl_key: None,
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
    /// Presents the client certificate in this PEM file (chain first) when
    /// the server asks for one, as for a user created `REQUIRE X509`.
    /// Needs [`with_ssl_key`](Self::with_ssl_key) and an `ssl-mode` other
    /// than `disabled`. Defaults to none.
    #[must_use]
    pub fn with_ssl_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_cert = Some(path.into());
        self
    }
    /// The private key of [`with_ssl_cert`](Self::with_ssl_cert)'s
    /// certificate: an RSA key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), the
    /// one form mysql_async's rustls support reads (convert a PKCS#8 key
    /// with `openssl rsa -in key.pem -traditional -out key.rsa.pem`). Read
    /// on every connect. Defaults to none.
    #[must_use]
    pub fn with_ssl_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_key = Some(path.into());
        self
    }
    /// Connects through this unix socket instead of TCP. Defaults to none.
    #[must_use]
    pub fn with_socket(mut self, path: impl Into<String>) -> Self {
        self.socket = Some(path.into());
        self
    }
    /// Sets how many prepared statements each connection caches. Defaults
    /// to 32.
    #[must_use]
    pub fn with_stmt_cache_size(mut self, size: usize) -> Self {
        self.stmt_cache_size = size;
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
    /// The client certificate file, if set.
    pub fn ssl_cert(&self) -> Option<&Path> {
        self.ssl_cert.as_deref()
    }
    /// The client key file, if set.
    pub fn ssl_key(&self) -> Option<&Path> {
        self.ssl_key.as_deref()
    }
    /// The unix socket path, if set.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }
    /// Prepared statements cached per connection.
    pub fn stmt_cache_size(&self) -> usize {
        self.stmt_cache_size
    }

    /// Checks what each setting alone cannot: a client certificate comes
    /// with its key, and with TLS. [`from_url`](Self::from_url),
    /// [`from_env`](Self::from_env) and deserializing call it; call it
    /// after the setters.
    pub fn validate(&self) -> Result<(), MysqlError> {
        match (&self.ssl_cert, &self.ssl_key) {
            (Some(_), None) => Err(MysqlError::InvalidOption {
                name: "ssl-cert".into(),
                reason: "needs its key: set ssl-key too".into(),
            }),
            (None, Some(_)) => Err(MysqlError::InvalidOption {
                name: "ssl-key".into(),
                reason: "needs its certificate: set ssl-cert too".into(),
            }),
            (Some(_), Some(_)) if self.ssl_mode == SslMode::Disabled => {
                Err(MysqlError::InvalidOption {
                    name: "ssl-cert".into(),
                    reason: "a client certificate needs TLS: set ssl-mode to required, verify_ca or verify_identity".into(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Applies one URL option by its dashed name (one of `OPTIONS`).
    fn apply(&mut self, name: &'static str, value: String) -> Result<(), MysqlError> {
        match name {
            "ssl-mode" => self.ssl_mode = value.parse()?,
            "ssl-ca" => self.ssl_ca = Some(PathBuf::from(value)),
            "ssl-cert" => self.ssl_cert = Some(PathBuf::from(value)),
            "ssl-key" => self.ssl_key = Some(PathBuf::from(value)),
            "socket" => self.socket = Some(value),
            _ => {
                self.stmt_cache_size = value.parse().map_err(|_| MysqlError::InvalidOption {
                    name: name.into(),
                    reason: "is not a whole number".into(),
                })?
            }
        }
        Ok(())
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
        }
        .map(|ssl| ssl.with_client_identity(self.client_identity()));
        builder = builder.ssl_opts(ssl);
        Opts::from(builder)
    }

    fn ca_opts(&self) -> SslOpts {
        match &self.ssl_ca {
            Some(path) => SslOpts::default().with_root_certs(vec![path.clone().into()]),
            None => SslOpts::default(),
        }
    }

    fn client_identity(&self) -> Option<ClientIdentity> {
        match (&self.ssl_cert, &self.ssl_key) {
            (Some(cert), Some(key)) => {
                Some(ClientIdentity::new(cert.clone().into(), key.clone().into()))
            }
            _ => None,
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

/// Schemes people paste by mistake; only these are named in an error, as
/// the text before `://` is otherwise the caller's and could be anything.
const KNOWN_SCHEMES: [&str; 12] = [
    "postgres",
    "postgresql",
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
];

/// The options a URL may carry, by their dashed names.
const OPTIONS: [&str; 6] = [
    "ssl-mode",
    "ssl-ca",
    "ssl-cert",
    "ssl-key",
    "socket",
    "stmt-cache-size",
];

/// Splits what follows `scheme://` into the credentials and the rest, so
/// that a password holding an unencoded delimiter is read whole wherever
/// that is unambiguous:
///
/// - the credentials end at the last `@` before the first `?`, so a
///   password may hold `@`, `/`, `#` and `:`;
/// - if no `@` comes before the first `?` but `user:` does, they end at
///   the last `@` before the first `/`, so a password may hold `?` (and
///   then `#`, `&`, `=`), as libpq reads PostgreSQL URLs.
///
/// A password holding both `?` and `/` cannot be told from a host and a
/// path: the parsing that follows refuses it, without showing it.
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

/// A host name (letters, digits, `.`, `-`, `_`) or an IP address; anything
/// else is a mistake, often a piece of a password that slipped out of the
/// user-info, and is refused without being shown.
pub(crate) fn valid_host(host: &str) -> bool {
    if host.contains(':') {
        let addr = host.split_once('%').map_or(host, |(a, _)| a);
        addr.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        host.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `21st`.
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn parse_url(url: &str) -> Result<MysqlConfig, MysqlError> {
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return Err(invalid_url(
            "expected `mysql://[user[:password]@]host[:port][/database]`",
        ));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "mysql" | "mariadb") {
        let shown = if KNOWN_SCHEMES.iter().any(|k| k.eq_ignore_ascii_case(scheme)) {
            format!("`{}`", scheme.to_ascii_lowercase())
        } else {
            "another one (not shown)".to_string()
        };
        return Err(invalid_url(format!(
            "expected the scheme `mysql` or `mariadb`, found {shown}"
        )));
    }
    let mut cfg = MysqlConfig::default();
    let (credentials, rest) = split_credentials(rest);
    if let Some(userinfo) = credentials {
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
    let (hostport, path) = match before_query.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (before_query, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(invalid_url("an IPv6 host must be closed with `]`"));
        };
        match after {
            "" => (decode(addr, "host")?, None),
            p if p.starts_with(':') => (decode(addr, "host")?, Some(&p[1..])),
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
    if !valid_host(&host) {
        return Err(invalid_url(
            "the host must be a name (letters, digits, `.`, `-`, `_`) or an IP address (IPv6 in brackets); percent-encode `@`, `/`, `?` and `#` in the password",
        ));
    }
    if let Some(p) = port {
        cfg.port = match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => n as u16,
            _ => return Err(invalid_url("the port is not a number from 1 to 65535")),
        };
    }
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        if path.contains('/') {
            return Err(invalid_url(
                "the database name contains `/`; percent-encode it as `%2F` (and a `/` in the password too)",
            ));
        }
        cfg.database = Some(decode(path, "database name")?);
    }
    let mut seen: Vec<&'static str> = Vec::new();
    for (i, pair) in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name, "option name")?.replace('_', "-");
        let value = decode(raw_value, "option value")?;
        let name = match name.as_str() {
            "sslmode" => "ssl-mode",
            other => match OPTIONS.iter().find(|o| **o == other) {
                Some(known) => *known,
                None => return Err(MysqlError::UnknownOption { position: i + 1 }),
            },
        };
        if seen.contains(&name) {
            return Err(MysqlError::InvalidOption {
                name: name.into(),
                reason: "is given more than once".into(),
            });
        }
        cfg.apply(name, value)?;
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
    cfg.validate()?;
    Ok(cfg)
}
