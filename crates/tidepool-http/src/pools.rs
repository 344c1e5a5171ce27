//! The set of pools a router serves, each with the few readings it keeps
//! to judge recent windows: a sample is kept at most once a second, for
//! ten minutes, taken whenever an endpoint reads the pool (the dashboard
//! polls, Prometheus scrapes, a load balancer checks). No background task:
//! a router nobody calls costs nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidepool::{HealthReport, HealthSample};

use crate::cluster::{ClusterView, PoolSource};
use crate::error::HttpError;
use crate::view::PoolView;

/// Readings closer together than this replace each other.
const SAMPLE_SPACING: Duration = Duration::from_secs(1);
/// Readings older than this are dropped.
const KEEP: Duration = Duration::from_secs(600);

pub(crate) struct Entry {
    pub name: String,
    pub pool: Arc<dyn PoolView>,
    history: Mutex<VecDeque<HealthSample>>,
    /// Held while `POST /pools/{name}/check` pings the pool, so requests
    /// never ping its connections in parallel.
    pub checking: tokio::sync::Mutex<()>,
    /// The cluster the pool belongs to, if it does.
    pub cluster: Option<ClusterLink>,
}

/// A pool's place in a cluster.
#[derive(Clone)]
pub(crate) struct ClusterLink {
    pub cluster: Arc<dyn ClusterView>,
    /// The replica's name for a reader pool; `None` for the writer.
    pub replica: Option<String>,
}

impl Entry {
    fn new(name: String, pool: Arc<dyn PoolView>, cluster: Option<ClusterLink>) -> Self {
        Entry {
            name,
            pool,
            history: Mutex::new(VecDeque::new()),
            checking: tokio::sync::Mutex::new(()),
            cluster,
        }
    }

    /// Reads the pool now and returns the reading together with the one
    /// taken closest to `window` ago (or the oldest kept; `None` if this is
    /// the first), keeping the new one.
    pub fn sample(&self, window: Duration) -> (HealthSample, Option<HealthSample>) {
        let now = self.pool.health_sample();
        let mut history = self.history.lock();
        while history.front().is_some_and(|s| s.age() > KEEP) {
            history.pop_front();
        }
        let earlier = history
            .iter()
            .rev()
            .find(|s| s.age() >= window)
            .or_else(|| history.front())
            .cloned();
        if history.back().is_some_and(|s| s.age() < SAMPLE_SPACING) {
            history.pop_back();
        }
        history.push_back(now.clone());
        (now, earlier)
    }

    /// Health over about the last `window` (since the pool was built when
    /// nothing was read before).
    pub fn health(&self, window: Duration) -> (HealthSample, Option<HealthSample>, HealthReport) {
        let (now, earlier) = self.sample(window);
        let report = match &earlier {
            Some(e) => now.report_since(e),
            None => self.pool.health(),
        };
        (now, earlier, report)
    }
}

/// The pools one router serves, by name.
///
/// ```
/// # use tidepool::{Manager, Pool};
/// # struct M;
/// # impl Manager for M {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
/// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let orders = Pool::builder(M).name("orders").build().await?;
/// let reports = Pool::builder(M).name("reports").build().await?;
/// let router = tidepool_http::Pools::new()
///     .add_pool(orders)?
///     .add_pool(reports)?
///     .router();
/// # let _: axum::Router = router;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pools {
    /// Pools added one by one, and the pools of clusters.
    fixed: Vec<Arc<Entry>>,
    /// Sources asked at each request (registries).
    sources: Vec<Arc<dyn PoolSource>>,
    /// The entries of the sources' pools, by name, so their readings last.
    seen: Arc<Mutex<HashMap<String, Arc<Entry>>>>,
    pub(crate) clusters: Vec<Arc<dyn ClusterView>>,
    pub(crate) gauges: Vec<Gauge>,
    pub(crate) query_limit: usize,
}

/// How many statement shapes per pool `/metrics` and `/pools` show unless
/// told otherwise ([`Pools::query_limit`]).
pub const DEFAULT_QUERY_LIMIT: usize = 50;

impl Default for Pools {
    fn default() -> Self {
        Pools {
            fixed: Vec::new(),
            sources: Vec::new(),
            seen: Arc::default(),
            clusters: Vec::new(),
            gauges: Vec::new(),
            query_limit: DEFAULT_QUERY_LIMIT,
        }
    }
}

/// How an extra gauge is read at scrape time.
pub(crate) type ReadGauge = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// A gauge of the serving process beside the pools' families (see
/// [`Pools::gauge`]).
#[derive(Clone)]
pub(crate) struct Gauge {
    pub name: String,
    pub help: String,
    pub read: ReadGauge,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries().iter().map(|e| e.name.clone()))
            .finish()
    }
}

impl Pools {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of one pool, under its name made usable (a control character
    /// becomes `_`, an empty name `pool`).
    pub(crate) fn one(pool: impl PoolView) -> Self {
        let mut name: String = pool
            .name()
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect();
        if name.is_empty() {
            name = "pool".into();
        }
        let mut pools = Pools::new();
        pools.push(name, pool);
        pools
    }

    fn push(&mut self, name: String, pool: impl PoolView) {
        self.fixed
            .push(Arc::new(Entry::new(name, Arc::new(pool), None)));
    }

    /// Adds a pool under its own [`name`](tidepool::Pool::name).
    pub fn add_pool(self, pool: impl PoolView) -> Result<Self, HttpError> {
        let name = pool.name();
        self.add_named(name, pool)
    }

    /// Adds a pool under `name`. Refused if another pool has that name, or
    /// if the name is empty, longer than 200 bytes, or holds a control
    /// character. A name may hold `/`: `/pools/{name}` takes the rest of
    /// the path, raw or percent-encoded.
    pub fn add_named(
        mut self,
        name: impl Into<String>,
        pool: impl PoolView,
    ) -> Result<Self, HttpError> {
        let name = name.into();
        self.check_name(&name)?;
        self.push(name, pool);
        Ok(self)
    }

    fn check_name(&self, name: &str) -> Result<(), HttpError> {
        let bad = |reason| HttpError::BadName {
            name: name.chars().take(200).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(bad("it is empty"));
        }
        if name.len() > 200 {
            return Err(bad("it is longer than 200 bytes"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("it holds a control character"));
        }
        if self.fixed.iter().any(|e| e.name == name) {
            return Err(HttpError::DuplicateName { name: name.into() });
        }
        Ok(())
    }

    /// Serves every pool of `source` — a [`tidepool::Registry`], whose
    /// pools appear as they are built — asked at each request, each under
    /// the name the source gives (`role/database` for a registry). A
    /// source's pool whose name is taken by a pool added otherwise, or by
    /// an earlier source, is not served.
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
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = Registry::builder(|_key| Ok(M)).any_role(true).any_database(true).build()?;
    /// let router = tidepool_http::Pools::new().add_registry(registry).router();
    /// # let _: axum::Router = router;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn add_registry(mut self, source: impl PoolSource) -> Self {
        self.sources.push(Arc::new(source));
        self
    }

    /// Serves a cluster: its writer pool and each replica's reader pool,
    /// under their own names, each with a `cluster` object in `/pools`
    /// (the replica's ban, reason and lag; whether reads go to the
    /// primary), and the replicas' states in `/metrics`
    /// (`tidepool_replica_banned`, `tidepool_replica_lag_bytes`,
    /// `tidepool_cluster_reads_on_primary`,
    /// `tidepool_cluster_fallback_reads_total`). Refused as
    /// [`add_named`](Pools::add_named) refuses a name, for any of its
    /// pools. With the `postgres` feature, a
    /// `tidepool_postgres::PgCluster` is one.
    pub fn add_cluster(mut self, cluster: impl ClusterView) -> Result<Self, HttpError> {
        let cluster: Arc<dyn ClusterView> = Arc::new(cluster);
        let writer = cluster.writer();
        let mut members = vec![(writer.name(), writer, None)];
        for (replica, pool) in cluster.replicas() {
            members.push((pool.name(), pool, Some(replica)));
        }
        for (i, (name, _, _)) in members.iter().enumerate() {
            self.check_name(name)?;
            if members[..i].iter().any(|(n, _, _)| n == name) {
                return Err(HttpError::DuplicateName { name: name.clone() });
            }
        }
        for (name, pool, replica) in members {
            let link = ClusterLink {
                cluster: cluster.clone(),
                replica,
            };
            self.fixed
                .push(Arc::new(Entry::new(name, pool, Some(link))));
        }
        self.clusters.push(cluster);
        Ok(self)
    }

    /// Exports a gauge of your own in `/metrics`, beside the pools'
    /// families: `read` is called at each scrape, and `None` leaves the
    /// series out of that scrape. The series has no labels (it is about the
    /// process, not a pool). Refused if `name` is not a Prometheus metric
    /// name, or is taken by another gauge or by a family the pools export.
    ///
    /// ```
    /// let started = std::time::Instant::now();
    /// let pools = tidepool_http::Pools::new().gauge(
    ///     "myapp_uptime_seconds",
    ///     "Seconds since the service started.",
    ///     move || Some(started.elapsed().as_secs_f64()),
    /// )?;
    /// assert!(pools.clone().gauge("db_client_connection_max", "taken", || None).is_err());
    /// # Ok::<(), tidepool_http::HttpError>(())
    /// ```
    pub fn gauge(
        mut self,
        name: impl Into<String>,
        help: impl Into<String>,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) -> Result<Self, HttpError> {
        let name = name.into();
        let bad = |reason| HttpError::BadMetricName {
            name: name.chars().take(200).collect(),
            reason,
        };
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            return Err(bad(
                "a metric name is a letter, `_` or `:` followed by letters, digits, `_` or `:`",
            ));
        }
        if self.gauges.iter().any(|g| g.name == name) {
            return Err(bad("another gauge has that name"));
        }
        if crate::export::pool_families().contains(&name) {
            return Err(bad("the pools export a family of that name"));
        }
        self.gauges.push(Gauge {
            name,
            help: help.into(),
            read: Arc::new(read),
        });
        Ok(self)
    }

    /// How many statement shapes per pool to export and show: the top
    /// `n` by total time of [`Pool::queries`](tidepool::Pool::queries)
    /// (which keeps at most [`QUERY_STATS_CAPACITY`](tidepool::QUERY_STATS_CAPACITY)).
    /// Each shape is nine series in `/metrics` (info, five counters, three
    /// percentiles), so this bounds what query statistics add to a scrape: `n × 9` series per pool. `0`
    /// exports none (the shape counters `tidepool_query_shapes_*` stay).
    /// Defaults to [`DEFAULT_QUERY_LIMIT`] (50).
    ///
    /// ```
    /// let pools = tidepool_http::Pools::new().query_limit(10);
    /// # let _ = pools;
    /// ```
    #[must_use]
    pub fn query_limit(mut self, n: usize) -> Self {
        self.query_limit = n;
        self
    }

    /// The names served now, in the order added (a source's pools where
    /// the source was added, in the order it lists them).
    pub fn names(&self) -> Vec<String> {
        self.entries().iter().map(|e| e.name.clone()).collect()
    }

    /// Every pool served now: those added, then each source's.
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        let mut out = self.fixed.clone();
        if self.sources.is_empty() {
            return out;
        }
        let mut seen = self.seen.lock();
        let mut listed = std::collections::HashSet::new();
        for source in &self.sources {
            for (name, pool) in source.pools() {
                if out.iter().any(|e| e.name == name) {
                    continue;
                }
                let entry = seen
                    .entry(name.clone())
                    .or_insert_with(|| Arc::new(Entry::new(name.clone(), pool, None)))
                    .clone();
                listed.insert(name);
                out.push(entry);
            }
        }
        seen.retain(|name, _| listed.contains(name));
        out
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.entries().into_iter().find(|e| e.name == name)
    }

    /// The router over these pools: see the [crate documentation](crate).
    pub fn router(self) -> axum::Router {
        crate::routes::router(self)
    }
}
