//! MySQL and MariaDB: a [`Manager`] handing out diesel-async's
//! [`AsyncMysqlConnection`]. It connects through mysql_async itself, with
//! the options diesel-async's own `establish` sets (no driver statement
//! cache, since diesel keeps its own; `CLIENT_FOUND_ROWS`), so a refused
//! connection keeps the server's error number (access denied, unknown
//! database, too many connections); diesel-async then runs its setup
//! (UTC time zone, utf8mb4).

use std::fmt;
use std::sync::Arc;

use diesel::connection::Instrumentation;
use diesel_async::{AsyncConnection, AsyncMysqlConnection};
use tidepool::{Classify, FailureKind, Manager};

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
pub struct MysqlManager {
    opts: mysql_async::Opts,
    target: String,
    instrumentation: InstrumentationFactory,
}

impl MysqlManager {
    /// A manager for a `mysql://` URL. Refused at once, with the reason and
    /// never the URL, when it cannot be read.
    pub fn new(url: &str) -> Result<Self, Error> {
        let opts = mysql_async::Opts::from_url(url).map_err(|e| Error::InvalidUrl {
            scheme: "mysql",
            reason: url_error_reason(&e),
        })?;
        Ok(Self::from_opts(opts))
    }

    /// A manager for already built mysql_async options. diesel-async's
    /// settings (no driver statement cache, `CLIENT_FOUND_ROWS`) are added
    /// to them.
    pub fn from_opts(opts: mysql_async::Opts) -> Self {
        let opts: mysql_async::Opts = mysql_async::OptsBuilder::from_opts(opts)
            .stmt_cache_size(0)
            .client_found_rows(true)
            .into();
        MysqlManager {
            target: describe(&opts),
            opts,
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

/// The reason a URL was refused, in words that cannot carry a password:
/// mysql_async's parse errors name parameters, and the `url` crate's never
/// repeat the input.
fn url_error_reason(e: &mysql_async::UrlError) -> String {
    match e {
        mysql_async::UrlError::UnsupportedScheme { scheme } => {
            format!("unsupported scheme `{scheme}` (expected mysql)")
        }
        mysql_async::UrlError::Parse(p) => p.to_string(),
        mysql_async::UrlError::UnknownParameter { param } => {
            format!("unknown parameter `{param}`")
        }
        mysql_async::UrlError::InvalidParamValue { param, .. } => {
            format!("invalid value for parameter `{param}`")
        }
        other => format!("{:?}", std::mem::discriminant(other)),
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

impl Manager for MysqlManager {
    type Connection = MysqlConnection;
    type Error = Error;

    async fn connect(&self) -> Result<MysqlConnection, Error> {
        let raw = mysql_async::Conn::new(self.opts.clone())
            .await
            .map_err(|source| Error::Mysql {
                target: self.target.clone(),
                source,
            })?;
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
