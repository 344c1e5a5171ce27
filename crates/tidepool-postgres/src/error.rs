//! The crate's errors: [`ConfigError`] for a connection string or config that
//! cannot be used, [`PgError`] for everything at run time. Neither ever holds
//! or prints a password: configuration errors name the part that was wrong,
//! never its value, and driver errors carry only what the server said.

use std::fmt;

use tidepool::{Classify, FailureKind};

use crate::classify;

/// Why a connection URL, key=value string, environment or
/// [`PgConfig`](crate::PgConfig) was refused.
///
/// Messages say *where* the string is wrong (which part, which parameter by
/// its position) and never echo the text found there: a password with an
/// unencoded `?`, `&` or space spills into the next part of the string, and
/// short passwords look like any other word. Only names this crate knows
/// (parameter names, well-known URL schemes) and file paths from
/// `sslrootcert`/`sslcert`/`sslkey` appear in them.
///
/// ```
/// use tidepool_postgres::{ConfigError, PgConfig};
/// let err = "password=ab s3cr-et=1".parse::<PgConfig>().unwrap_err();
/// assert_eq!(err, ConfigError::UnknownParameter { position: 2 });
/// assert!(!err.to_string().contains("s3cr"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL's scheme is not `postgres://` or `postgresql://`.
    #[error("unsupported URL scheme `{scheme}`: expected postgres:// or postgresql://")]
    Scheme {
        /// The scheme when it is a well-known one (`mysql`, `http`, ...),
        /// else `(not shown)`.
        scheme: String,
    },
    /// The text is neither a URL nor a key=value connection string.
    #[error("not a connection string: expected postgres://user@host:port/db or key=value pairs")]
    Unrecognized,
    /// A `%` escape is not two hex digits, or decodes to invalid UTF-8.
    #[error(
        "invalid percent-encoding in the {component} (use %XX with two hex digits, encoding UTF-8)"
    )]
    PercentEncoding {
        /// Which part of the URL: `user`, `password`, `host`, `database`, a
        /// parameter name or value.
        component: &'static str,
    },
    /// A port is not a number from 1 to 65535.
    #[error("invalid port (the {} in the list): must be a number from 1 to 65535", Ordinal(*.position))]
    Port {
        /// Which port of the list, from 1 (the text is not shown).
        position: usize,
    },
    /// More than one port was given, but not one per host.
    #[error("{ports} ports given for {hosts} hosts: give one port for all or one per host")]
    PortCount {
        /// How many ports.
        ports: usize,
        /// How many hosts.
        hosts: usize,
    },
    /// A host is empty or malformed (for example an unclosed `[` of an IPv6
    /// address).
    #[error("invalid host: {reason}")]
    Host {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `sslmode` is not one PostgreSQL knows.
    #[error("unknown sslmode: expected disable, allow, prefer, require, verify-ca or verify-full")]
    SslMode,
    /// `target_session_attrs` is not supported.
    #[error("unsupported target_session_attrs: expected any, read-write or read-only")]
    TargetSessionAttrs,
    /// A parameter has a value of the wrong shape.
    #[error("invalid value for `{name}`: {reason}")]
    InvalidValue {
        /// The parameter's name.
        name: &'static str,
        /// What would be accepted.
        reason: &'static str,
    },
    /// A parameter this crate does not know. Its name is not shown: a
    /// misplaced piece of a password looks like a parameter name.
    #[error(
        "unknown connection parameter (the {} parameter; its name is not shown, as it may be part of a password: \
         quote a key=value password holding a space, and percent-encode `?`, `&`, `#`, `/` and `@` in a URL password)",
        Ordinal(*.position)
    )]
    UnknownParameter {
        /// Which parameter of the string, from 1.
        position: usize,
    },
    /// A key=value connection string, or a URL's parameter list, is
    /// malformed.
    #[error("malformed connection string at the {} parameter: {reason}", Ordinal(*.position))]
    KeyValue {
        /// What is wrong, without echoing any value.
        reason: &'static str,
        /// Which parameter of the string, from 1.
        position: usize,
    },
    /// TLS was required for a unix-socket host, where PostgreSQL offers none.
    #[error("sslmode={mode} needs TLS, which PostgreSQL does not offer over unix sockets; use sslmode=disable or prefer for socket hosts")]
    TlsOverUnixSocket {
        /// The sslmode asked for.
        mode: &'static str,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("could not use the CA file {path}: {reason}")]
    CaFile {
        /// The file's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The client certificate (`sslcert`) or its key (`sslkey`) could not be
    /// read or used. The key's content is never shown.
    #[error("could not use the client certificate {path}: {reason}")]
    ClientCert {
        /// The certificate's or the key's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An environment variable read by
    /// [`PgConfig::from_env`](crate::PgConfig::from_env) holds a value that
    /// is refused (the value is not shown).
    #[error("environment variable {var}: {error}")]
    Env {
        /// The variable, such as `PGPORT`.
        var: &'static str,
        /// What is wrong with its value.
        error: Box<ConfigError>,
    },
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `21st`.
pub(crate) struct Ordinal(pub(crate) usize);

impl fmt::Display for Ordinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let suffix = match (n % 10, n % 100) {
            (_, 11..=13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        write!(f, "{n}{suffix}")
    }
}

/// An error from the PostgreSQL driver: configuration, TLS, the server, or
/// converting values. Classified into a [`FailureKind`] by
/// [`Classify::failure_kind`]; see the crate docs for the mapping.
///
/// ```
/// use tidepool::{Classify, FailureKind};
/// use tidepool_postgres::PgError;
/// let err = PgError::RowCount { expected: "exactly one", got: 0 };
/// assert_eq!(err.failure_kind(), FailureKind::Client);
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS handshake failed: an untrusted certificate, a hostname
    /// mismatch, or a server without TLS when TLS is required. Not
    /// retryable: trying again cannot fix it.
    #[error("TLS with {host} failed: {reason} (check sslmode, the CA file and the host name)")]
    Tls {
        /// The host we were connecting to.
        host: String,
        /// What the TLS layer said.
        reason: String,
    },
    /// An error from tokio-postgres or from the server (with its SQLSTATE).
    ///
    /// Its `Display` is complete: the server's message, SQLSTATE, detail
    /// and hint, or the driver's error with its causes. So it has no
    /// [`source`](std::error::Error::source) (a chain printer would show
    /// tokio-postgres's bare "db error" after it); reach the driver's error
    /// with [`PgError::as_driver`].
    #[error("{}", DriverDisplay(.0))]
    Driver(tokio_postgres::Error),
    /// A parameter could not be converted to the type the statement declares.
    #[error("parameter ${position}: {reason}")]
    Parameter {
        /// The parameter's 1-based position (`$1` is 1).
        position: usize,
        /// What could not be converted.
        reason: String,
    },
    /// The statement takes a different number of parameters.
    #[error("the statement takes {expected} parameters but {got} were given")]
    ParameterCount {
        /// How many the statement declares.
        expected: usize,
        /// How many were passed.
        got: usize,
    },
    /// A column's value could not be read into a [`tidepool::Value`].
    #[error("column `{column}`: {reason}")]
    Column {
        /// The column's name.
        column: String,
        /// Why it could not be read.
        reason: String,
    },
    /// A row read with [`tidepool::Row::try_get`] or [`tidepool::FromRow`]
    /// had a missing column or a value of another type; here so that `?`
    /// works inside a transaction body.
    #[error(transparent)]
    Row(#[from] tidepool::RowError),
    /// A query expected a set number of rows and got another.
    #[error("expected {expected} row, got {got}")]
    RowCount {
        /// What was expected (`exactly one`).
        expected: &'static str,
        /// How many rows came back.
        got: usize,
    },
    /// The connection is closed or was found broken.
    #[error("the connection is closed")]
    Closed,
    /// No host of a multi-host target accepted the connection; each is
    /// named (`host:port`, never a password) with its own error.
    #[error("no host accepted the connection (target_session_attrs and reachability are checked per host): {}", NoHostList(.attempts))]
    NoHost {
        /// Each host tried, in order, with why it was refused.
        attempts: Vec<(String, PgError)>,
    },
    /// A pool's configuration was refused (a [`PgCluster`](crate::PgCluster)
    /// builds pools of its own).
    #[error("pool configuration refused: {0}")]
    PoolConfig(tidepool::BuildError),
    /// A cancel request for an abandoned query could not be sent.
    #[error("could not send a cancel request: {reason}")]
    Cancel {
        /// Why.
        reason: String,
    },
}

impl fmt::Debug for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Config(e) => f.debug_tuple("Config").field(e).finish(),
            PgError::Tls { host, reason } => f
                .debug_struct("Tls")
                .field("host", host)
                .field("reason", reason)
                .finish(),
            PgError::Driver(e) => f
                .debug_struct("Driver")
                .field("sqlstate", &e.code().map(|c| c.code()))
                .field("message", &DriverDisplay(e).to_string())
                .finish(),
            PgError::Parameter { position, reason } => f
                .debug_struct("Parameter")
                .field("position", position)
                .field("reason", reason)
                .finish(),
            PgError::ParameterCount { expected, got } => f
                .debug_struct("ParameterCount")
                .field("expected", expected)
                .field("got", got)
                .finish(),
            PgError::Column { column, reason } => f
                .debug_struct("Column")
                .field("column", column)
                .field("reason", reason)
                .finish(),
            PgError::RowCount { expected, got } => f
                .debug_struct("RowCount")
                .field("expected", expected)
                .field("got", got)
                .finish(),
            PgError::Row(e) => f.debug_tuple("Row").field(e).finish(),
            PgError::Closed => f.write_str("Closed"),
            PgError::Cancel { reason } => f.debug_struct("Cancel").field("reason", reason).finish(),
            PgError::PoolConfig(e) => f.debug_tuple("PoolConfig").field(e).finish(),
            PgError::NoHost { attempts } => f
                .debug_struct("NoHost")
                .field("attempts", attempts)
                .finish(),
        }
    }
}

struct NoHostList<'a>(&'a [(String, PgError)]);

impl fmt::Display for NoHostList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (host, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{host}: {e}")?;
        }
        Ok(())
    }
}

/// tokio-postgres's `Display` omits the cause (for a server error, all it
/// says is "db error"); this shows the server's message once, with its
/// SQLSTATE, detail and hint, or the driver's error with every cause.
struct DriverDisplay<'a>(&'a tokio_postgres::Error);

impl fmt::Display for DriverDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(
                f,
                "server {}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            )?;
            if let Some(detail) = db.detail() {
                write!(f, "; detail: {detail}")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, "; hint: {hint}")?;
            }
            if looks_like_a_transaction_pooler(db) {
                f.write_str(POOLER_HINT)?;
            }
            return Ok(());
        }
        let mut shown = self.0.to_string();
        let mut source = std::error::Error::source(self.0);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&shown)
    }
}

/// Appended to the errors a transaction pooler causes in session mode.
pub(crate) const POOLER_HINT: &str = "; if this connection goes through a transaction pooler \
     (PgBouncer, Supavisor, PgDog in transaction mode), turn on pooler mode: \
     ?tidepool_pooler=true in the URL or .transaction_pooler(true)";

/// The ways a transaction pooler breaks named prepared statements: the
/// statement was prepared on another server session (`26000` "prepared
/// statement ... does not exist"), its name was already taken there by
/// another client (`42P05`), or it has other parameters there (`08P01`
/// "bind message supplies ...").
fn looks_like_a_transaction_pooler(db: &tokio_postgres::error::DbError) -> bool {
    match db.code().code() {
        "26000" | "42P05" => true,
        "08P01" => db.message().contains("prepared statement \""),
        _ => false,
    }
}

impl PgError {
    /// Whether the server's error is one a transaction pooler (PgBouncer,
    /// Supavisor in transaction mode) causes when named prepared statements
    /// are used through it: a prepared statement missing (`26000`), already
    /// there (`42P05`) or different (`08P01` "bind message supplies ...
    /// prepared statement ... requires ..."). Its `Display` then names
    /// pooler mode as the fix.
    ///
    /// ```
    /// use tidepool_postgres::PgError;
    /// assert!(!PgError::Closed.is_transaction_pooler_symptom());
    /// ```
    pub fn is_transaction_pooler_symptom(&self) -> bool {
        self.as_driver()
            .and_then(tokio_postgres::Error::as_db_error)
            .is_some_and(looks_like_a_transaction_pooler)
    }

    /// The server's SQLSTATE code, when the server sent an error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Driver(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }

    /// The driver's error, for native inspection.
    pub fn as_driver(&self) -> Option<&tokio_postgres::Error> {
        match self {
            PgError::Driver(e) => Some(e),
            _ => None,
        }
    }

    /// Whether **opening a new connection** could succeed where this one
    /// failed: the question the pool asks about an error from connecting
    /// (it is [`Manager::is_retryable`](tidepool::Manager::is_retryable)).
    ///
    /// `false` for what only a change of setup cures: a wrong password
    /// (28P01), a refused login (28000), an unknown database (3D000), a
    /// missing CONNECT privilege (42501), a bad startup setting (an
    /// `options`/`statement_timeout` the server refuses, class 22 or 42),
    /// a missing password, a TLS failure, a bad configuration — and for
    /// every other caller's mistake ([`FailureKind::Client`]), which a new
    /// connection would repeat. `true` for a refused or lost connection, a
    /// server starting up or shutting down, too many connections.
    ///
    /// This says nothing about running a *statement* again: see
    /// [`is_retryable_statement`](Self::is_retryable_statement).
    ///
    /// ```
    /// use tidepool_postgres::PgError;
    /// assert!(PgError::Closed.is_retryable_connect());
    /// ```
    pub fn is_retryable_connect(&self) -> bool {
        match self {
            PgError::Config(_) | PgError::Tls { .. } | PgError::PoolConfig(_) => false,
            PgError::Driver(e) => match self.sqlstate() {
                Some(code) => {
                    classify::sqlstate_is_retryable_connect(code)
                        && classify::sqlstate_kind(code) != FailureKind::Client
                }
                None => !classify::driver_error_is_permanent(e),
            },
            PgError::Closed | PgError::Cancel { .. } => true,
            PgError::NoHost { attempts } => attempts.iter().any(|(_, e)| e.is_retryable_connect()),
            PgError::Parameter { .. }
            | PgError::ParameterCount { .. }
            | PgError::Column { .. }
            | PgError::Row(_)
            | PgError::RowCount { .. } => false,
        }
    }

    /// Whether **running the same statement again** could succeed: the
    /// failure was transient. `true` for a serialization failure (40001), a
    /// deadlock (40P01), a lock timeout (55P03), the server out of memory
    /// (53200) or connections (53300), a lost or closed connection (class
    /// 08, 57P01-57P03, I/O) — run it again on a fresh connection when
    /// [`is_fatal_for_connection`](Self::is_fatal_for_connection) says so.
    /// `false` for a caller's mistake (a syntax error 42601, an unknown
    /// column 42703, a constraint violation), a statement timeout or cancel
    /// (57014: it would likely run as long again), and everything else.
    ///
    /// It does not say whether running it again is *safe*: a write whose
    /// connection was lost may have committed. Inside a transaction, retry
    /// the whole transaction ([`tidepool::transaction`] does so for
    /// [`Classify::is_retryable_transaction`]), not the statement.
    ///
    /// ```
    /// use tidepool_postgres::PgError;
    /// assert!(PgError::Closed.is_retryable_statement());
    /// assert!(!PgError::RowCount { expected: "exactly one", got: 0 }.is_retryable_statement());
    /// ```
    pub fn is_retryable_statement(&self) -> bool {
        match self {
            PgError::Driver(e) => match self.sqlstate() {
                Some(code) => classify::sqlstate_is_transient(code),
                None => classify::driver_error_is_fatal(e),
            },
            PgError::Closed | PgError::NoHost { .. } => true,
            PgError::Config(_)
            | PgError::Tls { .. }
            | PgError::PoolConfig(_)
            | PgError::Parameter { .. }
            | PgError::ParameterCount { .. }
            | PgError::Column { .. }
            | PgError::Row(_)
            | PgError::RowCount { .. }
            | PgError::Cancel { .. } => false,
        }
    }

    /// Whether the server refused because it is starting up or shutting
    /// down (SQLSTATE `57P03`): a restart in progress.
    ///
    /// ```
    /// use tidepool_postgres::PgError;
    /// assert!(!PgError::Closed.is_server_restarting());
    /// ```
    pub fn is_server_restarting(&self) -> bool {
        match self {
            PgError::NoHost { attempts } => attempts.iter().any(|(_, e)| e.is_server_restarting()),
            _ => self
                .sqlstate()
                .is_some_and(classify::sqlstate_says_restarting),
        }
    }

    /// Whether this error means the connection can no longer be used.
    pub fn is_fatal_for_connection(&self) -> bool {
        match self {
            PgError::Closed => true,
            PgError::Driver(e) => classify::driver_error_is_fatal(e),
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError::Driver(e)
    }
}

impl Classify for PgError {
    fn failure_kind(&self) -> FailureKind {
        match self {
            PgError::Config(_) | PgError::PoolConfig(_) => FailureKind::Client,
            PgError::Tls { .. } | PgError::Closed | PgError::Cancel { .. } => FailureKind::Connect,
            PgError::NoHost { attempts } => {
                if attempts
                    .iter()
                    .all(|(_, e)| e.failure_kind() == FailureKind::Client)
                {
                    FailureKind::Client
                } else {
                    FailureKind::Connect
                }
            }
            PgError::Driver(e) => classify::driver_error_kind(e),
            PgError::Parameter { .. }
            | PgError::ParameterCount { .. }
            | PgError::Column { .. }
            | PgError::Row(_)
            | PgError::RowCount { .. } => FailureKind::Client,
        }
    }

    fn is_retryable_transaction(&self) -> bool {
        self.sqlstate()
            .is_some_and(classify::sqlstate_is_retryable_transaction)
    }
}
