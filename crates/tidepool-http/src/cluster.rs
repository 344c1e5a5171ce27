//! Topologies the router serves beside single pools: a [`PoolSource`]
//! whose pools may appear while it is served (a `tidepool::Registry`
//! builds its pools on first use), and a [`ClusterView`] — a primary's
//! writer pool and its replicas' reader pools, with each replica's ban
//! state. Both are traits so that this crate depends on no driver: the
//! core's `Registry` implements [`PoolSource`] here, and with the
//! `postgres` feature tidepool-postgres' `PgCluster` implements
//! [`ClusterView`]; anything else implements them itself. Nothing here
//! touches a checkout path: every method is read at request time.

use std::sync::Arc;

use tidepool::{Manager, Registry};

use crate::view::PoolView;

/// Pools that can change while the router serves them: the router asks at
/// each request and serves every pool listed, under its name (a name
/// already served by another pool is skipped). A pool keeps the readings
/// the router took of it (its `/health` and `/pools` windows) as long as
/// its name stays listed.
///
/// Implemented for [`tidepool::Registry`]: its built pools, named
/// `role/database`.
///
/// ```
/// # use tidepool::{Manager, Registry};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
/// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::builder(|_key| Ok(M)).any_role(true).any_database(true).build()?;
/// let router = tidepool_http::Pools::new().add_registry(registry.clone()).router();
/// registry.pool("app", "orders").await?; // served from now on as `app/orders`
/// # let _: axum::Router = router;
/// # Ok(()) }
/// ```
pub trait PoolSource: Send + Sync + 'static {
    /// The pools now, each with the name to serve it under.
    fn pools(&self) -> Vec<(String, Arc<dyn PoolView>)>;
}

impl<M: Manager> PoolSource for Registry<M> {
    fn pools(&self) -> Vec<(String, Arc<dyn PoolView>)> {
        Registry::pools(self)
            .into_iter()
            .map(|(key, pool)| (key.name(), Arc::new(pool) as Arc<dyn PoolView>))
            .collect()
    }
}

/// A primary and its replicas as the router sees them: the writer pool,
/// each replica's reader pool, and each replica's state. Every pool is
/// served like any other (`/pools`, `/metrics`, `/health`); a pool of a
/// cluster also carries a `cluster` object in `/pools`, and the replicas'
/// states are exported as `tidepool_replica_*` and `tidepool_cluster_*`.
///
/// Implemented for `tidepool_postgres::PgCluster` with this crate's
/// `postgres` feature; implement it yourself for another cluster.
pub trait ClusterView: Send + Sync + 'static {
    /// The cluster's name: the `cluster` label, and what `/pools` calls
    /// it. Defaults to the writer pool's name.
    fn name(&self) -> String {
        self.writer().name()
    }
    /// The writer pool (the primary).
    fn writer(&self) -> Arc<dyn PoolView>;
    /// Each replica's reader pool, by the replica's name (the `name` of
    /// its [`ReplicaState`]), in a fixed order.
    fn replicas(&self) -> Vec<(String, Arc<dyn PoolView>)>;
    /// Each replica's state now, and where reads go.
    fn state(&self) -> ClusterState;
}

/// A cluster's state, read at request time.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClusterState {
    /// Each replica.
    pub replicas: Vec<ReplicaState>,
    /// Whether reads go to the primary because every replica is out.
    pub reads_on_primary: bool,
    /// Reads the primary served because no replica could take them.
    pub fallback_reads: u64,
}

impl ClusterState {
    /// A state from its replicas: reads go to the primary when there are
    /// replicas and every one is banned.
    ///
    /// ```
    /// use tidepool_http::{ClusterState, ReplicaBan, ReplicaState};
    /// let state = ClusterState::new(vec![
    ///     ReplicaState::new("db2:5432").banned(ReplicaBan::new("lag", "replay lag 9000000 bytes over the limit")),
    /// ]);
    /// assert!(state.reads_on_primary);
    /// ```
    pub fn new(replicas: Vec<ReplicaState>) -> Self {
        let reads_on_primary = !replicas.is_empty() && replicas.iter().all(|r| r.banned.is_some());
        ClusterState {
            replicas,
            reads_on_primary,
            fallback_reads: 0,
        }
    }

    /// With the count of reads the primary served for want of a replica.
    #[must_use]
    pub fn fallback_reads(mut self, n: u64) -> Self {
        self.fallback_reads = n;
        self
    }
}

/// One replica as the cluster sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicaState {
    /// Its name (a target without credentials).
    pub name: String,
    /// Why it takes no reads, if it does not.
    pub banned: Option<ReplicaBan>,
    /// How far its replay is behind the primary, in bytes of WAL, at the
    /// last sample.
    pub lag_bytes: Option<u64>,
    /// Its replay position at the last sample, as the server writes it.
    pub replay_position: Option<String>,
}

impl ReplicaState {
    /// A replica taking reads, lag unknown.
    pub fn new(name: impl Into<String>) -> Self {
        ReplicaState {
            name: name.into(),
            banned: None,
            lag_bytes: None,
            replay_position: None,
        }
    }
    /// Banned, for `ban`.
    #[must_use]
    pub fn banned(mut self, ban: ReplicaBan) -> Self {
        self.banned = Some(ban);
        self
    }
    /// With its lag in bytes.
    #[must_use]
    pub fn lag_bytes(mut self, bytes: u64) -> Self {
        self.lag_bytes = Some(bytes);
        self
    }
    /// With its replay position.
    #[must_use]
    pub fn replay_position(mut self, position: impl Into<String>) -> Self {
        self.replay_position = Some(position.into());
        self
    }
}

/// Why a replica takes no reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaBan {
    /// A short, fixed word for the `reason` label: [`BAN_REASONS`] lists
    /// those the router exports (`lag`, `failing`, `not_a_replica`); any
    /// other is exported as `other`.
    pub reason: String,
    /// The whole story, for `/pools` (never a password: it is shown).
    pub detail: String,
}

impl ReplicaBan {
    /// A ban for `reason` (see [`BAN_REASONS`]) with its `detail`.
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        ReplicaBan {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// The `reason` label values of `tidepool_replica_banned`.
pub const BAN_REASONS: [&str; 4] = ["lag", "failing", "not_a_replica", "other"];

/// A ban's reason as exported: one of [`BAN_REASONS`].
pub(crate) fn reason_label(ban: &ReplicaBan) -> &'static str {
    BAN_REASONS
        .iter()
        .find(|r| **r == ban.reason)
        .copied()
        .unwrap_or("other")
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;

    use tidepool_postgres::{BanReason, PgCluster};

    use super::{ClusterState, ClusterView, ReplicaBan, ReplicaState};
    use crate::view::PoolView;

    impl ClusterView for PgCluster {
        fn writer(&self) -> Arc<dyn PoolView> {
            Arc::new(self.writer_pool().clone())
        }
        fn replicas(&self) -> Vec<(String, Arc<dyn PoolView>)> {
            let names = self.status().replicas.into_iter().map(|r| r.name);
            names
                .zip(self.reader_pools())
                .map(|(name, pool)| (name, Arc::new(pool) as Arc<dyn PoolView>))
                .collect()
        }
        fn state(&self) -> ClusterState {
            let status = self.status();
            let replicas = status
                .replicas
                .iter()
                .map(|r| {
                    let mut s = ReplicaState::new(r.name.clone());
                    if let Some(ban) = &r.banned {
                        let reason = match ban {
                            BanReason::Lag { .. } => "lag",
                            BanReason::Failing { .. } => "failing",
                            BanReason::NotAReplica => "not_a_replica",
                            _ => "other",
                        };
                        s = s.banned(ReplicaBan::new(reason, ban.to_string()));
                    }
                    if let Some(lag) = r.lag_bytes {
                        s = s.lag_bytes(lag);
                    }
                    if let Some(lsn) = r.replay_lsn {
                        s = s.replay_position(lsn.to_string());
                    }
                    s
                })
                .collect();
            ClusterState {
                replicas,
                reads_on_primary: status.reads_on_primary,
                fallback_reads: status.fallback_reads,
            }
        }
    }
}
