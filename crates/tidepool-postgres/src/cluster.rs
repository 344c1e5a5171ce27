//! [`PgCluster`]: one primary and N streaming replicas behind one handle.
//! A writer pool (`target_session_attrs=read-write` over every known host)
//! and a reader pool per replica; reads go round-robin to the replicas
//! that are in, everything else to the writer. A sampler task compares
//! each replica's `pg_last_wal_replay_lsn()` with the primary's
//! `pg_current_wal_lsn()` and bans a replica over `max_replica_lag_bytes`
//! until it catches up; a replica that fails connections is banned with
//! backoff. With every replica out, reads go to the primary (logged once
//! per episode). Read-your-writes rides on an [`Lsn`] token.
//!
//! It never sends a read to a replica it knows to be behind the caller's
//! token, and never a write to a reader pool.
//!
//! Failover: when the writer's connection says the primary is gone or no
//! longer takes writes ([`PgCluster::is_primary_lost`]: `25006`, `57P01`-
//! `57P03`, class `08`, a closed or reset connection), or the sampler finds
//! the writer's host in recovery, the writer pool is soft-evicted
//! ([`Pool::soft_evict`]) and its next connections rediscover the
//! read-write host among every host the cluster knows.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use std::sync::Mutex;
use tidepool::{Config, Error, Pool, Pooled, QueryKind, Queryable, Row, Value};

use crate::config::{PgConfig, PgHost};

/// A poisoned lock only means a panic elsewhere; the state is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ban_kind(b: &Option<BanReason>) -> u8 {
    match b {
        None => 0,
        Some(BanReason::Lag { .. }) => 1,
        Some(BanReason::Failing { .. }) => 2,
        Some(BanReason::NotAReplica) => 3,
    }
}
use crate::connection::PgConnection;
use crate::error::PgError;
use crate::manager::PgManager;
use crate::modes::TargetSessionAttrs;

/// A write-ahead-log position (`pg_lsn`), the token of read-your-writes:
/// a replica whose replay position has reached it sees the write. Written
/// as PostgreSQL writes it (`0/3000060`), so a caller can carry it in a
/// cookie or a header between requests.
///
/// ```
/// use tidepool_postgres::Lsn;
/// let lsn: Lsn = "16/B374D848".parse().unwrap();
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// assert!(lsn > "0/3000060".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = PgError;
    fn from_str(s: &str) -> Result<Lsn, PgError> {
        let invalid = || PgError::Parameter {
            position: 1,
            reason: "an LSN is two hex numbers, high/low (0/3000060)".into(),
        };
        let (hi, lo) = s.trim().split_once('/').ok_or_else(invalid)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| invalid())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| invalid())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// Why a replica takes no reads now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BanReason {
    /// Its replay is more than `max_replica_lag_bytes` behind the primary.
    Lag {
        /// How far behind, in bytes of WAL, at the last sample.
        bytes: u64,
    },
    /// Connecting or sampling failed; tried again after a backoff.
    Failing {
        /// Consecutive failures.
        failures: u32,
        /// The last error (no password: errors never hold one).
        error: String,
    },
    /// It is not in recovery: a primary (the multi-host form lists it
    /// among the hosts, or it was promoted).
    NotAReplica,
}

impl fmt::Display for BanReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanReason::Lag { bytes } => write!(f, "replay lag {bytes} bytes over the limit"),
            BanReason::Failing { failures, error } => {
                write!(f, "{failures} consecutive failure(s), last: {error}")
            }
            BanReason::NotAReplica => f.write_str("not in recovery (a primary)"),
        }
    }
}

/// A replica as the cluster sees it now.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Its target, without credentials.
    pub name: String,
    /// Why it takes no reads, if it does not.
    pub banned: Option<BanReason>,
    /// Its replay lag in bytes at the last sample.
    pub lag_bytes: Option<u64>,
    /// Its replay position at the last sample.
    pub replay_lsn: Option<Lsn>,
    /// Its pool's status.
    pub pool: tidepool::Status,
}

/// The cluster's state now: what `/pools` shows beside each pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterStatus {
    /// The writer pool's status.
    pub writer: tidepool::Status,
    /// Each replica.
    pub replicas: Vec<ReplicaStatus>,
    /// Whether reads go to the primary because every replica is out.
    pub reads_on_primary: bool,
    /// Reads served by the primary because no replica could take them
    /// (all out, or none had replayed the caller's token).
    pub fallback_reads: u64,
    /// Times the writer pool was soft-evicted because the primary was lost
    /// or answered read-only (see [`PgCluster::note_writer_error`]).
    pub writer_evictions: u64,
    /// Why the writer pool was last soft-evicted (an error message, never
    /// a password), if it was.
    pub last_writer_eviction: Option<String>,
}

#[derive(Default)]
struct ReplicaState {
    banned: Option<BanReason>,
    retry_at: Option<Instant>,
    failures: u32,
    lag_bytes: Option<u64>,
    replay_lsn: Option<Lsn>,
}

struct Replica {
    name: String,
    pool: Pool<PgManager>,
    state: Mutex<ReplicaState>,
}

struct Inner {
    writer: Pool<PgManager>,
    replicas: Vec<Replica>,
    max_lag: u64,
    backoff: (Duration, Duration),
    sample_timeout: Duration,
    primary_reads: bool,
    next: AtomicUsize,
    all_out: AtomicBool,
    fallback_reads: AtomicU64,
    failover: Mutex<FailoverState>,
}

/// When and why the writer pool was last soft-evicted.
#[derive(Default)]
struct FailoverState {
    evictions: u64,
    last_at: Option<Instant>,
    last_reason: Option<String>,
}

/// Signals closer together than this evict once: a primary going away
/// fails every writer connection at about the same moment, and a second
/// eviction would only close connections already opened to the new
/// primary (opened after the first, with the read-write check).
const EVICTION_DEBOUNCE: Duration = Duration::from_millis(250);

/// A primary and its streaming replicas; a cheap `Clone` handle. See the
/// crate docs' "Clusters" section.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tidepool::{QueryKind, Queryable, Value};
/// let cluster = tidepool_postgres::PgCluster::builder("postgres://app@db1:5432,db2:5432,db3:5432/app")?
///     .max_replica_lag_bytes(16 << 20)
///     .build()
///     .await?;
/// let mut w = cluster.writer().await?;
/// w.execute_values("UPDATE users SET name = $1 WHERE id = $2", &["ada".into(), Value::Int(1)]).await?;
/// let token = cluster.token(&w).await?;
/// drop(w);
/// let mut r = cluster.reader_after(token).await?; // sees the update
/// let rows = cluster.execute_query(QueryKind::Read, "SELECT count(*) FROM users", &[]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgCluster {
    inner: Arc<Inner>,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("writer", &self.inner.writer.name())
            .field(
                "replicas",
                &self
                    .inner
                    .replicas
                    .iter()
                    .map(|r| &r.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Builds a [`PgCluster`]; every setter says its default.
#[must_use]
#[derive(Debug)]
pub struct PgClusterBuilder {
    hosts: PgConfig,
    replicas: Vec<PgConfig>,
    writer_config: Config,
    reader_config: Config,
    max_lag: u64,
    sample_interval: Duration,
    sample_timeout: Duration,
    backoff: (Duration, Duration),
    pooler: bool,
    primary_reads: bool,
}

impl PgCluster {
    /// A builder from a URL. With one host it is the primary and replicas
    /// are added with [`replica`](PgClusterBuilder::replica); with several
    /// (`postgres://app@db1,db2,db3/app`) the writer connects to whichever
    /// is read-write and every host also gets a reader pool, the primary's
    /// being left out of reads once the sampler sees it is not in recovery.
    pub fn builder(url: &str) -> Result<PgClusterBuilder, PgError> {
        let hosts = PgConfig::from_url(url)?;
        hosts.validate()?;
        let mut reader_config = Config::default();
        reader_config.acquire_timeout = Duration::from_secs(2);
        reader_config.connect_timeout = Duration::from_secs(1);
        reader_config.max_retries = 0;
        let replicas = if hosts.hosts.len() > 1 {
            split_hosts(&hosts)
        } else {
            Vec::new()
        };
        Ok(PgClusterBuilder {
            hosts,
            replicas,
            writer_config: Config::default(),
            reader_config,
            max_lag: 16 << 20,
            sample_interval: Duration::from_secs(1),
            sample_timeout: Duration::from_secs(1),
            backoff: (Duration::from_millis(500), Duration::from_secs(30)),
            pooler: false,
            primary_reads: false,
        })
    }
}

/// One config per host of a multi-host config.
fn split_hosts(config: &PgConfig) -> Vec<PgConfig> {
    (0..config.hosts.len())
        .map(|i| {
            let mut one = config.clone();
            one.hosts = vec![config.hosts[i].clone()];
            one.ports = config
                .ports
                .get(i)
                .or(config.ports.first())
                .map(|p| vec![*p])
                .unwrap_or_default();
            one.hostaddrs = config
                .hostaddrs
                .get(i)
                .map(|a| vec![*a])
                .unwrap_or_default();
            one.target_session_attrs = TargetSessionAttrs::Any;
            one
        })
        .collect()
}

impl PgClusterBuilder {
    /// Adds a replica by URL (one host).
    pub fn replica(mut self, url: &str) -> Result<Self, PgError> {
        let config = PgConfig::from_url(url)?;
        config.validate()?;
        self.replicas.push(config);
        Ok(self)
    }
    /// The writer pool's configuration. Defaults to [`Config::default`].
    pub fn writer_config(mut self, config: Config) -> Self {
        self.writer_config = config;
        self
    }
    /// Each reader pool's configuration. Defaults to [`Config::default`]
    /// with `acquire_timeout` 2 s, `connect_timeout` 1 s and no retries, so
    /// a dead replica costs a read little before it falls over to the next.
    pub fn reader_config(mut self, config: Config) -> Self {
        self.reader_config = config;
        self
    }
    /// A replica whose replay is further behind the primary than this is
    /// banned from reads until it catches up. Defaults to 16 MiB.
    pub fn max_replica_lag_bytes(mut self, bytes: u64) -> Self {
        self.max_lag = bytes;
        self
    }
    /// How often lag is sampled (and banned replicas probed). Defaults to
    /// 1 s.
    pub fn sample_interval(mut self, every: Duration) -> Self {
        self.sample_interval = every;
        self
    }
    /// The first and the longest wait before a failing replica is tried
    /// again (doubling between). Defaults to 500 ms and 30 s.
    pub fn failure_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }
    /// Whether the primary takes a share of reads too, as one more member
    /// of the rotation (pgcat's `primary_reads_enabled`). Defaults to
    /// false: the primary serves reads only when no replica can.
    pub fn primary_reads(mut self, on: bool) -> Self {
        self.primary_reads = on;
        self
    }
    /// Transaction-pooler mode for every pool (see the crate docs).
    /// Defaults to the URL's `tidepool_pooler`, else off.
    pub fn transaction_pooler(mut self, on: bool) -> Self {
        self.pooler = on;
        self
    }

    /// Builds the pools (lazily: nothing connects yet but the first
    /// sample) and starts the sampler.
    pub async fn build(self) -> Result<PgCluster, PgError> {
        let mut writer_target = self.hosts.clone();
        writer_target.target_session_attrs = TargetSessionAttrs::ReadWrite;
        // The writer knows the replicas too (with the primary's
        // credentials), so that after a promotion the read-write host is
        // among the hosts it tries.
        if self.hosts.hosts.len() <= 1 && self.hosts.hostaddrs.is_empty() {
            let first = |c: &PgConfig| {
                (
                    c.hosts
                        .first()
                        .cloned()
                        .unwrap_or_else(|| PgHost::Tcp("localhost".into())),
                    c.ports.first().copied().unwrap_or(5432),
                )
            };
            let (host, port) = first(&self.hosts);
            writer_target.hosts = vec![host];
            writer_target.ports = vec![port];
            for r in &self.replicas {
                let (host, port) = first(r);
                writer_target.hosts.push(host);
                writer_target.ports.push(port);
            }
        }
        let pooler = |c: &PgConfig| self.pooler || c.transaction_pooler == Some(true);
        let writer_manager = PgManager::builder(writer_target.clone())
            .transaction_pooler(pooler(&writer_target))
            .build()?;
        let mut wc = self.writer_config.clone();
        wc.name
            .get_or_insert_with(|| format!("writer {}", self.hosts.redacted_url()));
        let writer = Pool::builder(writer_manager)
            .config(wc)
            .build_lazy()
            .map_err(PgError::PoolConfig)?;
        let mut replicas = Vec::new();
        for r in &self.replicas {
            let manager = PgManager::builder(r.clone())
                .transaction_pooler(pooler(r))
                .build()?;
            let name = r.redacted_url();
            let mut rc = self.reader_config.clone();
            rc.name.get_or_insert_with(|| format!("reader {name}"));
            let pool = Pool::builder(manager)
                .config(rc)
                .build_lazy()
                .map_err(PgError::PoolConfig)?;
            replicas.push(Replica {
                name,
                pool,
                state: Mutex::new(ReplicaState::default()),
            });
        }
        let inner = Arc::new(Inner {
            writer,
            replicas,
            max_lag: self.max_lag,
            backoff: self.backoff,
            sample_timeout: self.sample_timeout,
            primary_reads: self.primary_reads,
            next: AtomicUsize::new(0),
            all_out: AtomicBool::new(false),
            fallback_reads: AtomicU64::new(0),
            failover: Mutex::new(FailoverState::default()),
        });
        inner.sample().await;
        let weak = Arc::downgrade(&inner);
        tokio::spawn(sampler(weak, self.sample_interval));
        Ok(PgCluster { inner })
    }
}

async fn sampler(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.sample().await;
    }
}

async fn read_lsn(conn: &PgConnection, sql: &str) -> Result<Option<Lsn>, PgError> {
    let row = conn.query_one(sql, &[]).await?;
    let text: Option<String> = row.try_get(0)?;
    text.map(|t| t.parse()).transpose()
}

impl Inner {
    /// One round of lag sampling and probing of banned replicas.
    async fn sample(&self) {
        let primary = match tokio::time::timeout(self.sample_timeout, self.writer.get()).await {
            Ok(Ok(conn)) => {
                // A writer connection on a host in recovery (it was
                // demoted, or came back as a standby) must not stay.
                let sql = "SELECT pg_is_in_recovery(), \
                           CASE WHEN pg_is_in_recovery() THEN NULL \
                           ELSE pg_current_wal_lsn()::text END";
                match conn.query_one(sql, &[]).await {
                    Ok(row) => {
                        let recovering: bool = row.try_get(0).unwrap_or(false);
                        let lsn: Option<String> = row.try_get(1).unwrap_or(None);
                        if recovering {
                            drop(conn);
                            self.evict_writer("the writer's host is in recovery (a standby)");
                        }
                        lsn.and_then(|t| t.parse::<Lsn>().ok())
                    }
                    Err(e) => {
                        let e = PgError::from(e);
                        drop(conn);
                        if PgCluster::is_primary_lost(&e) {
                            self.evict_writer(&e.to_string());
                        }
                        None
                    }
                }
            }
            _ => None,
        };
        let now = Instant::now();
        for r in &self.replicas {
            if lock(&r.state).retry_at.is_some_and(|t| now < t) {
                continue;
            }
            let outcome = match tokio::time::timeout(self.sample_timeout, r.pool.get()).await {
                Err(_) => Err("timed out sampling".to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(conn)) => {
                    let sql = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text";
                    match conn.query_one(sql, &[]).await {
                        Ok(row) => {
                            let recovering: bool = row.get(0);
                            let replay: Option<String> = row.get(1);
                            Ok((recovering, replay.and_then(|t| t.parse::<Lsn>().ok())))
                        }
                        Err(e) => Err(PgError::from(e).to_string()),
                    }
                }
            };
            let mut s = lock(&r.state);
            let was = s.banned.clone();
            match outcome {
                Err(error) => self.fail(&mut s, error),
                Ok((false, _)) => {
                    s.failures = 0;
                    s.retry_at = None;
                    s.banned = Some(BanReason::NotAReplica);
                }
                Ok((true, replay)) => {
                    s.failures = 0;
                    s.retry_at = None;
                    s.replay_lsn = replay;
                    s.lag_bytes = match (primary, replay) {
                        (Some(p), Some(r)) => Some(p.0.saturating_sub(r.0)),
                        _ => None,
                    };
                    s.banned = match s.lag_bytes {
                        Some(bytes) if bytes > self.max_lag => Some(BanReason::Lag { bytes }),
                        // Lag unknown (the primary did not answer): keep a
                        // lag ban rather than guess it has caught up.
                        None if matches!(was, Some(BanReason::Lag { .. })) => was.clone(),
                        _ => None,
                    };
                }
            }
            if ban_kind(&was) != ban_kind(&s.banned) {
                match &s.banned {
                    Some(reason) => {
                        tracing::warn!(target: "tidepool::postgres::cluster", replica = %r.name, %reason, "replica banned from reads")
                    }
                    None => {
                        tracing::info!(target: "tidepool::postgres::cluster", replica = %r.name, "replica readmitted to reads")
                    }
                }
            }
        }
        self.note_all_out();
    }

    /// Soft-evicts the writer pool unless it was evicted within the
    /// debounce window; says whether it did.
    fn evict_writer(&self, reason: &str) -> bool {
        {
            let mut f = lock(&self.failover);
            let now = Instant::now();
            if f.last_at
                .is_some_and(|t| now.saturating_duration_since(t) < EVICTION_DEBOUNCE)
            {
                return false;
            }
            f.evictions += 1;
            f.last_at = Some(now);
            f.last_reason = Some(reason.to_string());
        }
        let closed = self.writer.soft_evict();
        tracing::warn!(target: "tidepool::postgres::cluster", writer = %self.writer.name(), %reason, closed_idle = closed, "primary lost or read-only: writer connections soft-evicted, the next ones look for the read-write host");
        true
    }

    fn fail(&self, s: &mut ReplicaState, error: String) {
        s.failures = s.failures.saturating_add(1);
        let (first, max) = self.backoff;
        let wait = first
            .checked_mul(1u32 << (s.failures - 1).min(16))
            .unwrap_or(max)
            .min(max);
        s.retry_at = Some(Instant::now() + wait);
        s.banned = Some(BanReason::Failing {
            failures: s.failures,
            error,
        });
    }

    fn is_in(&self, r: &Replica) -> bool {
        lock(&r.state).banned.is_none()
    }

    /// Logs once when every replica goes out, and once when one is back.
    fn note_all_out(&self) -> bool {
        let out = !self.replicas.iter().any(|r| self.is_in(r));
        if out != self.all_out.swap(out, Ordering::Relaxed) {
            if out {
                tracing::warn!(target: "tidepool::postgres::cluster", replicas = self.replicas.len(), "every replica is out: reads go to the primary");
            } else {
                tracing::info!(target: "tidepool::postgres::cluster", "a replica is back: reads go to replicas again");
            }
        }
        out
    }
}

impl PgCluster {
    /// A connection to the primary, for writes.
    pub async fn writer(&self) -> Result<Pooled<PgManager>, Error<PgError>> {
        self.inner.writer.get().await
    }

    /// A connection for reads: the next replica that is in, round-robin;
    /// a replica whose checkout fails is banned with backoff and the next
    /// one tried; the primary when none is left.
    pub async fn reader(&self) -> Result<Pooled<PgManager>, Error<PgError>> {
        self.read_where(None).await
    }

    /// A connection that sees the caller's write: a replica whose replay
    /// position has reached `token` (checked on that connection), else
    /// the primary.
    pub async fn reader_after(&self, token: Lsn) -> Result<Pooled<PgManager>, Error<PgError>> {
        self.read_where(Some(token)).await
    }

    async fn read_where(&self, token: Option<Lsn>) -> Result<Pooled<PgManager>, Error<PgError>> {
        self.read_from(token).await.map(|(conn, _)| conn)
    }

    /// A read connection, and whether it came from the writer pool.
    async fn read_from(
        &self,
        token: Option<Lsn>,
    ) -> Result<(Pooled<PgManager>, bool), Error<PgError>> {
        let inner = &self.inner;
        let n = inner.replicas.len();
        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        if inner.primary_reads && start % (n + 1) == n {
            return Ok((inner.writer.get().await?, true));
        }
        for i in 0..n {
            let r = &inner.replicas[(start + i) % n];
            let known_replay = {
                let s = lock(&r.state);
                if s.banned.is_some() {
                    continue;
                }
                s.replay_lsn
            };
            match r.pool.get().await {
                Ok(conn) => {
                    let Some(token) = token else {
                        return Ok((conn, false));
                    };
                    if known_replay.is_some_and(|l| l >= token) {
                        return Ok((conn, false));
                    }
                    // The sample is older than the write: ask this replica.
                    if let Ok(Some(replay)) =
                        read_lsn(&conn, "SELECT pg_last_wal_replay_lsn()::text").await
                    {
                        lock(&r.state).replay_lsn = Some(replay);
                        if replay >= token {
                            return Ok((conn, false));
                        }
                    }
                }
                Err(
                    e @ Error::Timeout {
                        last_error: None, ..
                    },
                ) => {
                    // Busy, not broken: no ban.
                    tracing::debug!(target: "tidepool::postgres::cluster", replica = %r.name, error = %e, "replica busy; trying the next");
                }
                Err(e) => {
                    let mut s = lock(&r.state);
                    inner.fail(&mut s, e.to_string());
                    tracing::warn!(target: "tidepool::postgres::cluster", replica = %r.name, error = %e, "replica banned from reads");
                }
            }
        }
        inner.note_all_out();
        inner.fallback_reads.fetch_add(1, Ordering::Relaxed);
        Ok((inner.writer.get().await?, true))
    }

    /// The primary's WAL position now, on the connection that just wrote
    /// (after its commit): the token for [`reader_after`](Self::reader_after).
    pub async fn token(&self, writer: &PgConnection) -> Result<Lsn, PgError> {
        read_lsn(writer, "SELECT pg_current_wal_lsn()::text")
            .await?
            .ok_or(PgError::RowCount {
                expected: "an LSN",
                got: 0,
            })
    }

    /// Runs a query where its kind belongs: [`QueryKind::Read`] and
    /// [`QueryKind::Analytics`] on a reader, everything else on the
    /// writer. `None` infers the kind from the SQL with tidepool-sql
    /// ([`Pool::query_kind`]: `SELECT ... FOR UPDATE` and a writing `WITH`
    /// go to the writer).
    pub async fn execute_query(
        &self,
        kind: impl Into<Option<QueryKind>>,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Row>, Error<PgError>> {
        let kind = kind
            .into()
            .unwrap_or_else(|| self.inner.writer.query_kind(sql));
        let (mut conn, on_writer) = match kind {
            QueryKind::Read | QueryKind::Analytics => self.read_from(None).await?,
            _ => (self.writer().await?, true),
        };
        let result = conn.query_values(sql, params).await;
        if let Err(e) = &result {
            // A read served by the writer (fallback) says as much about
            // the primary as a write does.
            if on_writer {
                drop(conn);
                self.note_writer_error(e);
            }
        }
        result.map_err(Error::Query)
    }

    /// Whether `error`, from a writer connection, means the primary is gone
    /// or no longer takes writes: a read-only answer (`25006`
    /// read_only_sql_transaction), an administrator or crash shutdown
    /// (`57P01`, `57P02`), a server that cannot take connections now
    /// (`57P03`), a connection-class error (`08xxx`), or a connection closed,
    /// reset or refused. Not a full server (`53300`), a timeout or a
    /// caller's mistake.
    ///
    /// ```
    /// use tidepool_postgres::{PgCluster, PgError};
    /// assert!(PgCluster::is_primary_lost(&PgError::Closed));
    /// assert!(!PgCluster::is_primary_lost(&PgError::RowCount { expected: "one", got: 0 }));
    /// ```
    pub fn is_primary_lost(error: &PgError) -> bool {
        match error.sqlstate() {
            Some("25006") => true,
            Some("53300") => false,
            Some(code) => code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03"),
            None => match error {
                PgError::Closed | PgError::NoHost { .. } => true,
                PgError::Driver(_) => {
                    error.is_fatal_for_connection()
                        && tidepool::Classify::failure_kind(error) == tidepool::FailureKind::Connect
                }
                _ => false,
            },
        }
    }

    /// Tells the cluster that work on a writer connection failed with
    /// `error`. When it means the primary was lost or answered read-only
    /// ([`is_primary_lost`](Self::is_primary_lost)) the writer pool is
    /// soft-evicted — idle connections close now, checked-out ones when
    /// returned — so the next writer connections rediscover the read-write
    /// host among every host the cluster knows. Signals within 250 ms of
    /// an eviction are folded into it. Returns whether it evicted.
    /// [`execute_query`](Self::execute_query) and the sampler call this
    /// themselves; call it after an error on a [`writer`](Self::writer)
    /// checkout. It never retries anything: whether a failed write
    /// committed is unknown to the caller, as it is to the pool.
    ///
    /// ```no_run
    /// # async fn demo(cluster: tidepool_postgres::PgCluster) -> Result<(), Box<dyn std::error::Error>> {
    /// use tidepool::Queryable;
    /// let mut w = cluster.writer().await?;
    /// if let Err(e) = w.execute_values("INSERT INTO t VALUES (1)", &[]).await {
    ///     drop(w);
    ///     cluster.note_writer_error(&e);
    ///     return Err(e.into());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn note_writer_error(&self, error: &PgError) -> bool {
        Self::is_primary_lost(error) && self.inner.evict_writer(&error.to_string())
    }

    /// Samples lag and probes banned replicas now, outside the interval.
    pub async fn sample_now(&self) {
        self.inner.sample().await;
    }

    /// The writer pool.
    pub fn writer_pool(&self) -> &Pool<PgManager> {
        &self.inner.writer
    }

    /// The replicas' reader pools, in the order they were given.
    pub fn reader_pools(&self) -> Vec<Pool<PgManager>> {
        self.inner.replicas.iter().map(|r| r.pool.clone()).collect()
    }

    /// What each replica's state is, and where reads go.
    pub fn status(&self) -> ClusterStatus {
        let replicas = self
            .inner
            .replicas
            .iter()
            .map(|r| {
                let s = lock(&r.state);
                ReplicaStatus {
                    name: r.name.clone(),
                    banned: s.banned.clone(),
                    lag_bytes: s.lag_bytes,
                    replay_lsn: s.replay_lsn,
                    pool: r.pool.status(),
                }
            })
            .collect::<Vec<_>>();
        let failover = lock(&self.inner.failover);
        ClusterStatus {
            writer: self.inner.writer.status(),
            reads_on_primary: replicas.iter().all(|r| r.banned.is_some()),
            replicas,
            fallback_reads: self.inner.fallback_reads.load(Ordering::Relaxed),
            writer_evictions: failover.evictions,
            last_writer_eviction: failover.last_reason.clone(),
        }
    }
}
