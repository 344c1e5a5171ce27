//! MySQL and MariaDB: a [`Manager`] handing out diesel-async's
//! [`AsyncMysqlConnection`]. It reads the URL as tidepool-mysql does
//! (`ssl-mode`, `ssl-ca`, client certificates; TCP is never switched to
//! the server's Unix socket behind the caller's back) and connects through
//! mysql_async itself, with the options diesel-async's own `establish`
//! sets (no driver statement cache, since diesel keeps its own;
//! `CLIENT_FOUND_ROWS`), so a refused connection keeps the server's error
//! number (access denied, unknown database, too many connections) and a
//! failed TLS handshake is a typed [`Error::Tls`]; diesel-async then runs
//! its setup (UTC time zone, utf8mb4).

use std::fmt;
use std::sync::Arc;

use diesel::connection::Instrumentation;
use diesel_async::{AsyncConnection, AsyncMysqlConnection};
use tidepool::{Classify, FailureKind, Manager};
use tidepool_mysql::{MysqlConfig, MysqlError, SslMode};

use crate::error::Error;
use crate::tracked::{State, TrackedConnection, Watch};

/// A pooled diesel-async MySQL connection.
pub type MysqlConnection = TrackedConnection<AsyncMysqlConnection>;

/// A tidepool pool of diesel-async MySQL connections.
pub type MysqlPool = tidepool::Pool<MysqlManager>;

type InstrumentationFactory = Arc<dyn Fn() -> Option<Box<dyn Instrumentation>> + Send + Sync>;

/// Opens diesel-async MySQL / MariaDB connections for a tidepool pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tidepool_diesel::MysqlManager;
/// let pool = tidepool::Pool::builder(MysqlManager::new("mysql://app:secret@127.0.0.1/app")?)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// TLS as in tidepool-mysql: `ssl-mode=required` encrypts without checking
/// the certificate, `verify_ca` and `verify_identity` check it against
/// `ssl-ca` (or the built-in roots), `ssl-cert` + `ssl-key` present a
/// client certificate. A file that cannot be read is refused by
/// [`new`](Self::new); a handshake that fails is [`Error::Tls`], never
/// retried.
///
/// ```
/// use tidepool_diesel::{Error, MysqlManager};
/// let err = MysqlManager::new("mysql://app:hunter2@db/app?ssl-mode=verify_identity&ssl-ca=/nonexistent/ca.pem")
///     .unwrap_err();
/// assert!(matches!(err, Error::Tls { .. }), "{err}");
/// assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
/// assert!(!err.to_string().contains("hunter2"));
/// ```
pub struct MysqlManager {
    opts: mysql_async::Opts,
    target: String,
    tls: bool,
    instrumentation: InstrumentationFactory,
}

impl MysqlManager {
    /// A manager for a `mysql://` URL, with tidepool-mysql's parameters
    /// (`ssl-mode`, `ssl-ca`, `ssl-cert`, `ssl-key`, `socket`). Refused at
    /// once, with the reason and never the URL, when it cannot be read or
    /// a certificate file cannot be opened.
    pub fn new(url: &str) -> Result<Self, Error> {
        let config = MysqlConfig::from_url(url).map_err(|e| Error::InvalidUrl {
            scheme: "mysql",
            reason: match e {
                MysqlError::InvalidUrl { reason } => reason,
                other => other.to_string(),
            },
        })?;
        Self::from_config(&config)
    }

    /// A manager for a tidepool-mysql configuration.
    pub fn from_config(config: &MysqlConfig) -> Result<Self, Error> {
        let target = config.describe();
        config.validate().map_err(|e| Error::InvalidUrl {
            scheme: "mysql",
            reason: e.to_string(),
        })?;
        if config.ssl_mode() != SslMode::Disabled {
            // mysql_async reads these when it connects; a missing one is
            // the caller's mistake, said now.
            for (name, path) in [
                ("ssl-ca", config.ssl_ca()),
                ("ssl-cert", config.ssl_cert()),
                ("ssl-key", config.ssl_key()),
            ] {
                let Some(path) = path else { continue };
                std::fs::File::open(path).map_err(|e| Error::Tls {
                    target: target.clone(),
                    reason: format!("cannot read the {name} file {}: {e}", path.display()),
                })?;
            }
        }
        let mut manager = Self::from_opts(config.to_opts());
        manager.target = target;
        manager.tls = config.ssl_mode() != SslMode::Disabled;
        Ok(manager)
    }

    /// A manager for already built mysql_async options. diesel-async's
    /// settings (no driver statement cache, `CLIENT_FOUND_ROWS`) are added
    /// to them.
    pub fn from_opts(opts: mysql_async::Opts) -> Self {
        let tls = opts.ssl_opts().is_some();
        let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(opts)
            .stmt_cache_size(0)
            .client_found_rows(true)
            .into();
        MysqlManager {
            target: describe(&opts),
            opts,
            tls,
            instrumentation: Arc::new(diesel::connection::get_default_instrumentation),
        }
    }

    /// Your instrumentation for every new connection; see
    /// [`PgManager::instrumentation`](crate::PgManager::instrumentation).
    /// Defaults to diesel's global default instrumentation.
    #[must_use]
    pub fn instrumentation<F>(mut self, factory: F) -> Self
    where
        F: Fn() -> Option<Box<dyn Instrumentation>> + Send + Sync + 'static,
    {
        self.instrumentation = Arc::new(factory);
        self
    }
}

impl fmt::Debug for MysqlManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlManager")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `mysql://user@host:port/db`, never the password.
fn describe(opts: &mysql_async::Opts) -> String {
    let user = opts.user().unwrap_or("");
    let at = if user.is_empty() { "" } else { "@" };
    let host = opts.ip_or_hostname();
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!(
        "mysql://{user}{at}{host}:{}/{}",
        opts.tcp_port(),
        opts.db_name().unwrap_or("")
    )
}

impl MysqlManager {
    /// A failed handshake is [`Error::Tls`] (tidepool-mysql's reading of
    /// mysql_async's errors); anything else keeps the server's error.
    fn connect_error(&self, source: mysql_async::Error) -> Error {
        let wrapped = MysqlError::Mysql(source);
        let tls = wrapped.is_tls();
        match wrapped {
            MysqlError::Mysql(source) if !tls => Error::Mysql {
                target: self.target.clone(),
                source,
            },
            e => Error::Tls {
                target: self.target.clone(),
                reason: e.to_string(),
            },
        }
    }
}

impl Manager for MysqlManager {
    type Connection = MysqlConnection;
    type Error = Error;

    async fn connect(&self) -> Result<MysqlConnection, Error> {
        if self.tls {
            // mysql_async builds its rustls config with the process-wide
            // crypto provider; make sure there is one (ring, as
            // tidepool-mysql does), unless the application installed its own.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let raw = mysql_async::Conn::new(self.opts.clone())
            .await
            .map_err(|source| self.connect_error(source))?;
        let mut conn = AsyncMysqlConnection::try_from(raw)
            .await
            .map_err(|source| Error::Setup {
                target: self.target.clone(),
                source,
            })?;
        let state = Arc::new(State::default());
        conn.set_instrumentation(Watch::new(state.clone(), (self.instrumentation)()));
        Ok(TrackedConnection::new(conn, state))
    }

    async fn validate(&self, conn: &mut MysqlConnection) -> Result<(), Error> {
        crate::clean::validate(conn).await
    }

    fn needs_reset(&self, conn: &MysqlConnection) -> bool {
        conn.state().needs_reset()
    }

    async fn reset(&self, conn: &mut MysqlConnection) -> Result<(), Error> {
        crate::clean::clean(conn).await
    }

    fn is_broken(&self, conn: &MysqlConnection) -> bool {
        conn.state().is_lost()
    }

    fn classify(&self, error: &Error) -> FailureKind {
        error.failure_kind()
    }

    fn is_retryable(&self, error: &Error) -> bool {
        error.is_retryable_connect()
    }

    /// `1040` too many connections, `1203` too many for this user, `1226`
    /// an account's `MAX_USER_CONNECTIONS`.
    fn is_at_capacity(&self, error: &Error) -> bool {
        error.is_at_capacity()
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_names_user_host_and_database_but_never_the_password() {
        let m = MysqlManager::new("mysql://app:hunter2@db.example:3307/orders").unwrap();
        assert_eq!(m.describe(), "mysql://app@db.example:3307/orders");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        for url in [
            "mysql://app:hunter2@db:notaport/x",
            "postgres://app:hunter2@db/x",
            "mysql://app:hunter2@db/x?nonsense=hunter2",
        ] {
            let text = MysqlManager::new(url).unwrap_err().to_string();
            assert!(text.starts_with("invalid mysql connection URL"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
