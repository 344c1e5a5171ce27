//! Pools by role and database: a [`Registry`] maps a [`PoolKey`] to a pool
//! built on first use from a default [`Config`] plus per-database,
//! per-role and per-pool overrides, by a manager factory the caller
//! supplies. It owns the arithmetic that keeps every pool of every
//! instance within the server's `max_connections`.
//!
//! It must never create a pool nobody configured (an unknown role or
//! database is a typed error), nor two pools for one key: the first caller
//! builds, concurrent callers wait for that build.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::{BuildError, Config, Error, HealthReport, Manager, Metrics, Pool, Pooled, Status};

/// A pool's place in a [`Registry`]: the role it logs in as and the
/// database it opens. Its [`name`](PoolKey::name) is `role/database`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// The database role (user).
    pub role: String,
    /// The database.
    pub database: String,
}

impl PoolKey {
    /// A key.
    pub fn new(role: impl Into<String>, database: impl Into<String>) -> Self {
        PoolKey {
            role: role.into(),
            database: database.into(),
        }
    }

    /// `role/database`: the pool's name in logs, metrics and health.
    pub fn name(&self) -> String {
        format!("{}/{}", self.role, self.database)
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.role, self.database)
    }
}

type PatchFn = dyn Fn(&mut Config) + Send + Sync;

/// Changes to the default [`Config`] for a role, a database or one pool:
/// a closure from the builder, or (feature `serde`) a table of `Config`'s
/// fields from a file, where only the fields given change (a `breaker`
/// table merges field by field; a `scaling` table replaces the default's).
#[derive(Clone)]
pub struct ConfigPatch(PatchKind);

#[derive(Clone)]
enum PatchKind {
    Fn(Arc<PatchFn>),
    #[cfg(feature = "serde")]
    Fields(serde_json::Map<String, serde_json::Value>),
}

impl fmt::Debug for ConfigPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            PatchKind::Fn(_) => f.write_str("ConfigPatch(fn)"),
            #[cfg(feature = "serde")]
            PatchKind::Fields(m) => f
                .debug_tuple("ConfigPatch")
                .field(&m.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl ConfigPatch {
    /// A patch that runs `f` on the configuration.
    pub fn new(f: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        ConfigPatch(PatchKind::Fn(Arc::new(f)))
    }

    fn apply(&self, config: &mut Config) -> Result<(), String> {
        match &self.0 {
            PatchKind::Fn(f) => {
                f(config);
                Ok(())
            }
            #[cfg(feature = "serde")]
            PatchKind::Fields(fields) => {
                // `scaling` deserializes from a preset table, not from what
                // it serializes to, so it stays out of the round trip.
                let scaling = config.scaling.clone();
                let mut value = serde_json::to_value(&*config).map_err(|e| e.to_string())?;
                let object = value.as_object_mut().ok_or("not a table")?;
                object.remove("scaling");
                for (k, v) in fields {
                    match (object.get_mut(k), v) {
                        (
                            Some(serde_json::Value::Object(base)),
                            serde_json::Value::Object(over),
                        ) if k != "scaling" => {
                            base.extend(over.clone());
                        }
                        _ => {
                            object.insert(k.clone(), v.clone());
                        }
                    }
                }
                let replaces_scaling = fields.contains_key("scaling");
                *config = serde_json::from_value(value).map_err(|e| e.to_string())?;
                if !replaces_scaling {
                    config.scaling = scaling;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ConfigPatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = serde_json::Map::deserialize(d)?;
        let patch = ConfigPatch(PatchKind::Fields(fields));
        // Refused here, with serde's path to it, rather than at first use.
        patch
            .apply(&mut Config::default())
            .map_err(serde::de::Error::custom)?;
        Ok(patch)
    }
}

/// What a [`Registry`] is built from; with feature `serde` it reads from
/// TOML or JSON:
///
/// ```toml
/// any_database = false      # only the databases listed below
/// instances = 3             # processes sharing the server
/// max_connections = 100     # the server's; omit to skip the budget check
///
/// [defaults]                # a tidepool::Config
/// max_size = 10
///
/// [roles.app]               # listed roles are allowed; fields override
/// [roles.analytics]
/// max_size = 4
/// acquire_timeout = "2s"
///
/// [databases.orders]
///
/// [pools."app/orders"]      # one pool, applied last
/// max_size = 20
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct RegistryConfig {
    /// Every pool starts from this. Defaults to [`Config::default`].
    pub defaults: Config,
    /// Per-role overrides; a listed role is allowed. Applied after the
    /// database's, so a role's workload wins over a database's default.
    pub roles: BTreeMap<String, ConfigPatch>,
    /// Per-database overrides; a listed database is allowed.
    pub databases: BTreeMap<String, ConfigPatch>,
    /// Per-pool overrides keyed `role/database`, applied last; a listed
    /// pool is allowed and counted in the budget before it is built.
    pub pools: BTreeMap<String, ConfigPatch>,
    /// Allow roles not listed in `roles`. Defaults to false.
    pub any_role: bool,
    /// Allow databases not listed in `databases`. Defaults to false.
    pub any_database: bool,
    /// The server's `max_connections`: when set, a pool whose `max_size`
    /// would take the total over the budget is refused. Default none.
    pub max_connections: Option<u32>,
    /// Connections kept free on the server (superusers, migrations,
    /// consoles). Defaults to 10% of `max_connections`, at least 3, as
    /// `tidepool size` does.
    pub reserved: Option<u32>,
    /// Processes running this registry against one server. Defaults to 1.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub instances: u32,
}

#[cfg(feature = "serde")]
fn one() -> u32 {
    1
}

/// The connection budget: every pool's `max_size`, times the instances,
/// against `max_connections` less a reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Budget {
    /// Each pool counted (built, being built or listed), by name, with its
    /// `max_size`.
    pub pools: Vec<(String, u32)>,
    /// The sum of their `max_size`: one instance's share.
    pub per_instance: u64,
    /// Instances sharing the server.
    pub instances: u32,
    /// `per_instance × instances`.
    pub total: u64,
    /// The server's `max_connections`.
    pub max_connections: u32,
    /// Kept free.
    pub reserved: u32,
    /// `max_connections - reserved`.
    pub available: u64,
}

impl Budget {
    /// Whether the total fits what is available.
    pub fn fits(&self) -> bool {
        self.total <= self.available
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .pools
            .iter()
            .map(|(name, max)| format!("{name} {max}"))
            .collect();
        write!(
            f,
            "{} instance(s) x ({} = {}) = {} connections against max_connections {} - {} reserved = {} available",
            self.instances,
            if parts.is_empty() { "no pools".to_string() } else { parts.join(" + ") },
            self.per_instance,
            self.total,
            self.max_connections,
            self.reserved,
            self.available
        )
    }
}

/// Why the registry refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError<E: std::error::Error + 'static> {
    /// Neither configured nor allowed by `any_role` / `any_database`.
    #[error("no pool for {key}: {reason}")]
    NotConfigured {
        /// The pool asked for.
        key: PoolKey,
        /// What is missing, and which setting would allow it.
        reason: String,
    },
    /// The pools would hold more connections than the server allows.
    #[error("the connection budget is exceeded: {budget}; lower max_size, run fewer instances, raise max_connections or put a pooler (PgBouncer) in front")]
    OverBudget {
        /// The arithmetic.
        budget: Budget,
    },
    /// An override is refused (the role, database or pool is named).
    #[error("the configuration of {scope} is refused: {reason}")]
    Config {
        /// `role app`, `database orders`, `pool app/orders`, `defaults`.
        scope: String,
        /// What is wrong.
        reason: String,
    },
    /// The manager factory failed for this pool.
    #[error("could not make the manager for {key}: {source}")]
    Manager {
        /// The pool.
        key: PoolKey,
        /// The factory's error.
        source: E,
    },
    /// The pool's configuration is refused.
    #[error("could not build the pool {key}: {source}")]
    Build {
        /// The pool.
        key: PoolKey,
        /// Why.
        source: BuildError,
    },
    /// Checking out a connection failed.
    #[error(transparent)]
    Pool(Error<E>),
}

type Factory<M> = dyn Fn(&PoolKey) -> Result<M, <M as Manager>::Error> + Send + Sync;

struct Entry<M: Manager> {
    max_size: u32,
    pool: OnceCell<Pool<M>>,
}

struct Inner<M: Manager> {
    config: RegistryConfig,
    factory: Box<Factory<M>>,
    pools: Mutex<HashMap<PoolKey, Arc<Entry<M>>>>,
}

/// Pools keyed by (role, database), built lazily; a cheap `Clone` handle.
///
/// ```
/// # use tidepool::{Manager, Registry, RegistryError};
/// # #[derive(Debug)] struct M(String);
/// # impl Manager for M {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
/// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::builder(|key| Ok(M(format!("postgres://{}@db/{}", key.role, key.database))))
///     .role("app", |_| {})
///     .role("analytics", |c| c.max_size = 4)
///     .database("orders", |_| {})
///     .max_connections(100)
///     .build()?;
/// let conn = registry.get("analytics", "orders").await?;
/// assert_eq!(registry.pool("analytics", "orders").await?.config().max_size, 4);
/// assert!(matches!(registry.get("intruder", "orders").await, Err(RegistryError::NotConfigured { .. })));
/// # drop(conn); Ok(()) }
/// ```
pub struct Registry<M: Manager> {
    inner: Arc<Inner<M>>,
}

impl<M: Manager> Clone for Registry<M> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Manager> fmt::Debug for Registry<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.inner.config)
            .field("pools", &self.names())
            .finish()
    }
}

/// Builds a [`Registry`]; every setter says its default.
#[must_use]
pub struct RegistryBuilder<M: Manager> {
    config: RegistryConfig,
    factory: Box<Factory<M>>,
}

impl<M: Manager> RegistryBuilder<M> {
    /// Replaces the whole configuration (from a file, say); later setters
    /// change it further.
    pub fn config(mut self, config: RegistryConfig) -> Self {
        self.config = config;
        self
    }
    /// The configuration every pool starts from. Defaults to
    /// [`Config::default`].
    pub fn defaults(mut self, defaults: Config) -> Self {
        self.config.defaults = defaults;
        self
    }
    /// Allows `role` and changes its pools' configuration.
    pub fn role(mut self, role: &str, f: impl Fn(&mut Config) + Send + Sync + 'static) -> Self {
        self.config.roles.insert(role.into(), ConfigPatch::new(f));
        self
    }
    /// Allows `database` and changes its pools' configuration.
    pub fn database(
        mut self,
        database: &str,
        f: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        self.config
            .databases
            .insert(database.into(), ConfigPatch::new(f));
        self
    }
    /// Allows one pool and changes its configuration (applied last).
    pub fn pool(
        mut self,
        role: &str,
        database: &str,
        f: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        self.config
            .pools
            .insert(PoolKey::new(role, database).name(), ConfigPatch::new(f));
        self
    }
    /// Allows roles that are not listed. Defaults to false.
    pub fn any_role(mut self, on: bool) -> Self {
        self.config.any_role = on;
        self
    }
    /// Allows databases that are not listed. Defaults to false.
    pub fn any_database(mut self, on: bool) -> Self {
        self.config.any_database = on;
        self
    }
    /// The server's `max_connections`, turning the budget check on.
    /// Defaults to none (no check).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.config.max_connections = Some(max);
        self
    }
    /// Connections kept free on the server. Defaults to 10% of
    /// `max_connections`, at least 3.
    pub fn reserved(mut self, reserved: u32) -> Self {
        self.config.reserved = Some(reserved);
        self
    }
    /// Processes sharing the server. Defaults to 1.
    pub fn instances(mut self, instances: u32) -> Self {
        self.config.instances = instances;
        self
    }

    /// Checks every listed override and the budget of the listed pools.
    pub fn build(mut self) -> Result<Registry<M>, RegistryError<M::Error>> {
        self.config.instances = self.config.instances.max(1);
        self.config
            .defaults
            .validate()
            .map_err(|e| RegistryError::Config {
                scope: "defaults".into(),
                reason: e.to_string(),
            })?;
        let registry = Registry {
            inner: Arc::new(Inner {
                config: self.config,
                factory: self.factory,
                pools: Mutex::new(HashMap::new()),
            }),
        };
        let config = &registry.inner.config;
        for name in config.pools.keys() {
            if !name.contains('/') {
                return Err(RegistryError::Config {
                    scope: format!("pool {name}"),
                    reason: "a pool is named role/database".into(),
                });
            }
        }
        for (role, database) in config
            .roles
            .keys()
            .flat_map(|r| config.databases.keys().map(move |d| (r, d)))
        {
            registry.config_for(&PoolKey::new(role.as_str(), database.as_str()))?;
        }
        let budget = registry.budget_with(None);
        if let Some(budget) = budget.filter(|b| !b.fits()) {
            return Err(RegistryError::OverBudget { budget });
        }
        Ok(registry)
    }
}

impl<M: Manager> Registry<M> {
    /// A builder whose pools' managers come from `factory`, called once
    /// per pool with its key.
    pub fn builder(
        factory: impl Fn(&PoolKey) -> Result<M, M::Error> + Send + Sync + 'static,
    ) -> RegistryBuilder<M> {
        RegistryBuilder {
            config: RegistryConfig {
                instances: 1,
                ..RegistryConfig::default()
            },
            factory: Box::new(factory),
        }
    }

    /// The configuration a pool for `key` gets: the defaults, then the
    /// database's, the role's and the pool's overrides; refused when the
    /// key is neither listed nor allowed.
    pub fn config_for(&self, key: &PoolKey) -> Result<Config, RegistryError<M::Error>> {
        let c = &self.inner.config;
        let pool = c.pools.get(&key.name());
        let role = c.roles.get(&key.role);
        let database = c.databases.get(&key.database);
        if pool.is_none() {
            let mut missing = Vec::new();
            if role.is_none() && !c.any_role {
                missing.push(format!(
                    "the role `{}` is not configured (list it under roles, or set any_role)",
                    key.role
                ));
            }
            if database.is_none() && !c.any_database {
                missing.push(format!(
                    "the database `{}` is not configured (list it under databases, or set any_database)",
                    key.database
                ));
            }
            if !missing.is_empty() {
                return Err(RegistryError::NotConfigured {
                    key: key.clone(),
                    reason: missing.join("; "),
                });
            }
        }
        let mut config = c.defaults.clone();
        for (scope, patch) in [
            (format!("database {}", key.database), database),
            (format!("role {}", key.role), role),
            (format!("pool {key}"), pool),
        ] {
            if let Some(patch) = patch {
                patch
                    .apply(&mut config)
                    .map_err(|reason| RegistryError::Config {
                        scope: scope.clone(),
                        reason,
                    })?;
            }
        }
        config.name = Some(key.name());
        config.validate().map_err(|e| RegistryError::Config {
            scope: format!("pool {key}"),
            reason: e.to_string(),
        })?;
        Ok(config)
    }

    /// The pool for (role, database), built on first use. Concurrent first
    /// callers wait for one build; a failed build is tried again by the
    /// next caller.
    pub async fn pool(
        &self,
        role: &str,
        database: &str,
    ) -> Result<Pool<M>, RegistryError<M::Error>> {
        let key = PoolKey::new(role, database);
        let entry = {
            let mut pools = self.inner.pools.lock();
            match pools.get(&key) {
                Some(entry) => entry.clone(),
                None => {
                    let config = self.config_for(&key)?;
                    let budget = self.budget_locked(&pools, Some((&key, config.max_size)));
                    if let Some(budget) = budget.filter(|b| !b.fits()) {
                        return Err(RegistryError::OverBudget { budget });
                    }
                    let entry = Arc::new(Entry {
                        max_size: config.max_size,
                        pool: OnceCell::new(),
                    });
                    pools.insert(key.clone(), entry.clone());
                    entry
                }
            }
        };
        entry
            .pool
            .get_or_try_init(|| async {
                let config = self.config_for(&key)?;
                let manager = (self.inner.factory)(&key).map_err(|source| RegistryError::Manager {
                    key: key.clone(),
                    source,
                })?;
                tracing::debug!(target: "tidepool::registry", pool = %key, "building the pool on first use");
                Pool::builder(manager)
                    .config(config)
                    .build()
                    .await
                    .map_err(|source| RegistryError::Build {
                        key: key.clone(),
                        source,
                    })
            })
            .await
            .cloned()
    }

    /// A connection from the pool for (role, database).
    pub async fn get(
        &self,
        role: &str,
        database: &str,
    ) -> Result<Pooled<M>, RegistryError<M::Error>> {
        let pool = self.pool(role, database).await?;
        pool.get().await.map_err(RegistryError::Pool)
    }

    /// The pools built so far, by key.
    pub fn pools(&self) -> Vec<(PoolKey, Pool<M>)> {
        let mut out: Vec<_> = self
            .inner
            .pools
            .lock()
            .iter()
            .filter_map(|(k, e)| Some((k.clone(), e.pool.get()?.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The names (`role/database`) of the pools built so far.
    pub fn names(&self) -> Vec<String> {
        self.pools().iter().map(|(k, _)| k.name()).collect()
    }

    /// Every built pool's status, by name.
    pub fn status(&self) -> Vec<(String, Status)> {
        self.pools()
            .iter()
            .map(|(k, p)| (k.name(), p.status()))
            .collect()
    }

    /// Every built pool's metrics, by name.
    pub fn metrics(&self) -> Vec<(String, Metrics)> {
        self.pools()
            .iter()
            .map(|(k, p)| (k.name(), p.metrics()))
            .collect()
    }

    /// Every built pool's health report, by name, and the worst verdict
    /// among them (healthy when there are none).
    pub fn health(&self) -> (crate::HealthStatus, Vec<(String, HealthReport)>) {
        use crate::HealthStatus::*;
        let reports: Vec<_> = self
            .pools()
            .iter()
            .map(|(k, p)| (k.name(), p.health()))
            .collect();
        let rank = |s: crate::HealthStatus| match s {
            Healthy => 0,
            Degraded => 1,
            _ => 2,
        };
        let worst = reports
            .iter()
            .map(|(_, r)| r.status)
            .max_by_key(|s| rank(*s))
            .unwrap_or(Healthy);
        (worst, reports)
    }

    /// The budget now (pools built, being built, or listed under `pools`),
    /// or `None` when `max_connections` is not set.
    pub fn budget(&self) -> Option<Budget> {
        self.budget_with(None)
    }

    /// Checks the budget against a `max_connections` read from the server
    /// (`SHOW max_connections`), whatever the configuration says.
    pub fn check_budget(&self, max_connections: u32) -> Result<Budget, RegistryError<M::Error>> {
        let pools = self.inner.pools.lock();
        let budget = self.compute_budget(&pools, None, max_connections);
        if budget.fits() {
            Ok(budget)
        } else {
            Err(RegistryError::OverBudget { budget })
        }
    }

    fn budget_with(&self, extra: Option<(&PoolKey, u32)>) -> Option<Budget> {
        let pools = self.inner.pools.lock();
        self.budget_locked(&pools, extra)
    }

    fn budget_locked(
        &self,
        pools: &HashMap<PoolKey, Arc<Entry<M>>>,
        extra: Option<(&PoolKey, u32)>,
    ) -> Option<Budget> {
        let max_connections = self.inner.config.max_connections?;
        Some(self.compute_budget(pools, extra, max_connections))
    }

    fn compute_budget(
        &self,
        pools: &HashMap<PoolKey, Arc<Entry<M>>>,
        extra: Option<(&PoolKey, u32)>,
        max_connections: u32,
    ) -> Budget {
        let c = &self.inner.config;
        let mut counted: BTreeMap<String, u32> =
            pools.iter().map(|(k, e)| (k.name(), e.max_size)).collect();
        for name in c.pools.keys() {
            if !counted.contains_key(name) {
                if let Some((role, database)) = name.split_once('/') {
                    if let Ok(config) = self.config_for(&PoolKey::new(role, database)) {
                        counted.insert(name.clone(), config.max_size);
                    }
                }
            }
        }
        if let Some((key, max)) = extra {
            counted.insert(key.name(), max);
        }
        let per_instance: u64 = counted.values().map(|&m| u64::from(m)).sum();
        let instances = c.instances.max(1);
        let reserved = c.reserved.unwrap_or((max_connections / 10).max(3));
        Budget {
            pools: counted.into_iter().collect(),
            per_instance,
            instances,
            total: per_instance * u64::from(instances),
            max_connections,
            reserved,
            available: u64::from(max_connections.saturating_sub(reserved)),
        }
    }
}
