//! PostgreSQL: a [`Manager`] handing out diesel-async's
//! [`AsyncPgConnection`]. It connects through tokio-postgres itself, so a
//! refused connection keeps the server's SQLSTATE (wrong password, unknown
//! database, too many connections, starting up), then hands the socket to
//! diesel-async, which runs its usual setup (`SET TIME ZONE 'UTC'`,
//! `SET CLIENT_ENCODING TO 'UTF8'`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use diesel::connection::Instrumentation;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tidepool::{Classify, FailureKind, Manager};

use crate::error::Error;
use crate::tracked::{State, TrackedConnection, Watch};

/// A pooled diesel-async PostgreSQL connection.
pub type PgConnection = TrackedConnection<AsyncPgConnection>;

/// A tidepool pool of diesel-async PostgreSQL connections.
pub type PgPool = tidepool::Pool<PgManager>;

type InstrumentationFactory = Arc<dyn Fn() -> Option<Box<dyn Instrumentation>> + Send + Sync>;

/// Opens diesel-async PostgreSQL connections for a tidepool pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tidepool_diesel::PgManager;
/// let pool = tidepool::Pool::builder(PgManager::new("postgres://app:secret@127.0.0.1/app")?)
///     .max_size(16)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// TLS: like diesel-async's own `establish`, connections are made without
/// TLS (`sslmode=require` fails with tokio-postgres' "TLS required" error
/// rather than silently going plain).
pub struct PgManager {
    config: tokio_postgres::Config,
    target: String,
    instrumentation: InstrumentationFactory,
}

impl PgManager {
    /// A manager for a `postgres://` URL or a `key=value` connection
    /// string. Refused at once, with the reason and never the URL, when it
    /// cannot be read.
    pub fn new(url: &str) -> Result<Self, Error> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| Error::InvalidUrl {
            scheme: "postgres",
            reason: e.to_string(),
        })?;
        let target = describe(&config);
        Ok(PgManager {
            config,
            target,
            instrumentation: Arc::new(diesel::connection::get_default_instrumentation),
        })
    }

    /// A manager for an already built tokio-postgres configuration.
    pub fn from_config(config: tokio_postgres::Config) -> Self {
        PgManager {
            target: describe(&config),
            config,
            instrumentation: Arc::new(diesel::connection::get_default_instrumentation),
        }
    }

    /// Your instrumentation for every new connection (diesel's
    /// `Connection::set_instrumentation`, which would otherwise replace
    /// the pool's watch). Called once per connection; the pool forwards
    /// every event to what it returns. Defaults to diesel's global default
    /// instrumentation.
    #[must_use]
    pub fn instrumentation<F>(mut self, factory: F) -> Self
    where
        F: Fn() -> Option<Box<dyn Instrumentation>> + Send + Sync + 'static,
    {
        self.instrumentation = Arc::new(factory);
        self
    }

    /// The tokio-postgres configuration connections are opened with.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// `postgres://user@host:port/db`, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(h) if h.contains(':') => format!("[{h}]"),
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let db = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{}/{db}", hosts.join(","))
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<PgConnection, Error> {
        let (client, connection) =
            self.config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|source| Error::Postgres {
                    target: self.target.clone(),
                    source,
                })?;
        let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|source| Error::Setup {
                target: self.target.clone(),
                source,
            })?;
        let state = Arc::new(State::default());
        conn.set_instrumentation(Watch::new(state.clone(), (self.instrumentation)()));
        Ok(TrackedConnection::new(conn, state))
    }

    async fn validate(&self, conn: &mut PgConnection) -> Result<(), Error> {
        crate::clean::validate(conn).await
    }

    fn needs_reset(&self, conn: &PgConnection) -> bool {
        conn.state().needs_reset()
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), Error> {
        crate::clean::clean(conn).await
    }

    fn is_broken(&self, conn: &PgConnection) -> bool {
        conn.state().is_lost()
    }

    fn classify(&self, error: &Error) -> FailureKind {
        error.failure_kind()
    }

    fn is_retryable(&self, error: &Error) -> bool {
        error.is_retryable_connect()
    }

    fn is_restarting(&self, error: &Error) -> bool {
        error.is_restarting()
    }

    /// `53300` too many connections (`max_connections`, a role's
    /// `CONNECTION LIMIT`, a database's).
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
        let m = PgManager::new("postgres://app:hunter2@db.example:6432/orders").unwrap();
        assert_eq!(m.describe(), "postgres://app@db.example:6432/orders");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_url_is_refused_without_repeating_it() {
        let err = PgManager::new("postgres://app:hunter2@db:notaport/x").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("invalid postgres connection URL"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
