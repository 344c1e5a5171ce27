//! PostgreSQL: a [`Manager`] handing out diesel-async's
//! [`AsyncPgConnection`]. It reads the URL and opens the socket the way
//! tidepool-postgres does — libpq's parameters and `sslmode` meanings,
//! hosts tried in order, rustls TLS with `sslrootcert` and a client
//! certificate (diesel-async's own `establish` has no TLS) — so a refused
//! connection keeps the server's SQLSTATE (wrong password, unknown
//! database, too many connections, starting up) and a failed handshake is
//! a typed [`Error::Tls`]. It then hands the client and its connection to
//! diesel-async, which runs its usual setup (`SET TIME ZONE 'UTC'`,
//! `SET CLIENT_ENCODING TO 'UTF8'`).

use std::fmt;
use std::sync::Arc;

use diesel::connection::Instrumentation;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use tidepool::{BoxFuture, Classify, FailureKind, Manager};
use tidepool_postgres::PgConfig;

use crate::error::Error;
use crate::tracked::{State, TrackedConnection, Watch};

/// A pooled diesel-async PostgreSQL connection.
pub type PgConnection = TrackedConnection<AsyncPgConnection>;

/// A tidepool pool of diesel-async PostgreSQL connections.
pub type PgPool = tidepool::Pool<PgManager>;

type InstrumentationFactory = Arc<dyn Fn() -> Option<Box<dyn Instrumentation>> + Send + Sync>;

/// Opens one connection: each host in turn, with the TLS connector built
/// once, when the manager was.
type Open = Arc<dyn Fn() -> BoxFuture<'static, Result<AsyncPgConnection, Error>> + Send + Sync>;

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
/// TLS as in tidepool-postgres (libpq's meanings): `sslmode=prefer`, the
/// default, encrypts when the server offers TLS; `require` never falls
/// back to plaintext; `verify-ca` checks the chain and `verify-full` the
/// chain and the host name, against the webpki roots plus `sslrootcert`.
/// `sslcert` + `sslkey` present a client certificate. Certificate files
/// are read once, by [`new`](Self::new); a handshake that fails (an
/// untrusted certificate, a wrong name, a server without TLS under
/// `require`) is [`Error::Tls`], which the pool does not retry.
///
/// ```
/// use tidepool_diesel::PgManager;
/// let err = PgManager::new("postgres://app:hunter2@db/app?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
///     .unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
/// assert!(!err.to_string().contains("hunter2"));
/// ```
pub struct PgManager {
    config: PgConfig,
    target: String,
    open: Open,
    instrumentation: InstrumentationFactory,
}

impl PgManager {
    /// A manager for a `postgres://` URL or a `key=value` connection
    /// string, with tidepool-postgres' parameters (`sslmode` up to
    /// `verify-full`, `sslrootcert`, `sslcert`, `sslkey`, several hosts,
    /// `target_session_attrs`, `connect_timeout`, ...). Refused at once,
    /// with the reason and never the URL, when it cannot be read or a
    /// certificate file cannot be used.
    pub fn new(url: &str) -> Result<Self, Error> {
        let config = PgConfig::from_url(url).map_err(|e| Error::InvalidUrl {
            scheme: "postgres",
            reason: e.to_string(),
        })?;
        Self::from_config(config)
    }

    /// A manager for an already built tidepool-postgres configuration.
    pub fn from_config(config: PgConfig) -> Result<Self, Error> {
        let target = config.redacted_url();
        let tls = config.tls_connector().map_err(|e| Error::Tls {
            target: target.clone(),
            reason: e.to_string(),
        })?;
        let per_host: Arc<[tokio_postgres::Config]> = config.to_tokio_configs().into();
        let open_target = target.clone();
        let open: Open = Arc::new(move || {
            let (tls, per_host, target) = (tls.clone(), per_host.clone(), open_target.clone());
            Box::pin(async move {
                let mut last = None;
                for host in per_host.iter() {
                    match host.connect(tls.clone()).await {
                        Ok((client, connection)) => {
                            return AsyncPgConnection::try_from_client_and_connection(
                                client, connection,
                            )
                            .await
                            .map_err(|source| Error::Setup { target, source });
                        }
                        Err(e) => {
                            tracing::debug!(target: "tidepool::diesel", error = %e, "host failed; trying the next");
                            last = Some(connect_error(&target, e));
                        }
                    }
                }
                Err(last.unwrap_or(Error::InvalidUrl {
                    scheme: "postgres",
                    reason: "no host to connect to".into(),
                }))
            })
        });
        Ok(PgManager {
            config,
            target,
            open,
            instrumentation: Arc::new(diesel::connection::get_default_instrumentation),
        })
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

    /// The configuration connections are opened with.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }
}

/// A failed handshake is [`Error::Tls`] (as tidepool-postgres reports it);
/// anything else keeps tokio-postgres' error and the server's SQLSTATE.
fn connect_error(target: &str, e: tokio_postgres::Error) -> Error {
    if e.to_string().starts_with("error performing TLS handshake") {
        let reason = std::error::Error::source(&e)
            .map_or_else(|| "handshake failed".to_string(), |s| s.to_string());
        return Error::Tls {
            target: target.to_string(),
            reason,
        };
    }
    Error::Postgres {
        target: target.to_string(),
        source: e,
    }
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgManager")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = Error;

    async fn connect(&self) -> Result<PgConnection, Error> {
        let mut conn = (self.open)().await?;
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
