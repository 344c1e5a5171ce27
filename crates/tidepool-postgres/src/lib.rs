#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod cancel;
mod classify;
mod cluster;
mod config;
mod connection;
mod error;
mod manager;
mod modes;
mod multiplex;
mod native;
mod params;
mod parse;
mod queryable;
mod reset;
mod rows;
mod target;
mod tls;
mod track;
mod transaction;
mod txstate;

pub use classify::sqlstate_kind;
pub use cluster::{BanReason, ClusterStatus, Lsn, PgCluster, PgClusterBuilder, ReplicaStatus};
pub use config::{PgConfig, PgHost};
pub use connection::PgConnection;
pub use error::{ConfigError, PgError};
pub use manager::{PgManager, PgManagerBuilder};
pub use modes::{SslMode, TargetSessionAttrs};
pub use multiplex::{
    sharing, MultiplexConfig, MultiplexError, MultiplexStatus, Multiplexer, ReadOnly, SharedSql,
    Sharing,
};
pub use native::AsStatement;
pub use reset::{ResetPolicy, CLEAN_SQL};
pub use tls::PgTls;
pub use transaction::{PgTransaction, PgTransactionBuilder};
pub use txstate::TxState;

/// The pool type for PostgreSQL.
pub type PgPool = tidepool::Pool<PgManager>;

/// A pool builder for a URL with the manager's defaults: the shortest way
/// from a connection string to a pool.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = tidepool_postgres::pool("postgres://app:secret@127.0.0.1:5432/app")?
///     .max_size(16)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub fn pool(url: &str) -> Result<tidepool::Builder<PgManager>, PgError> {
    Ok(tidepool::Pool::builder(PgManager::from_url(url)?))
}

/// Re-exported so users need not depend on tokio-postgres to name its types.
pub use tokio_postgres;
