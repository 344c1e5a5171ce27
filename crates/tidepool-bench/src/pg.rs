//! PostgreSQL throughput: tidepool-postgres against deadpool-postgres,
//! bb8-postgres and sqlx's `PgPool`, on `SELECT 1` and on pgbench's
//! prepared point select, plus `pgbench -S -M prepared` itself. Each cycle
//! is get → one query on a cached prepared statement → drop; its latency
//! is the whole cycle, as a caller sees it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio_postgres::NoTls;

/// Rows in `pgbench_accounts` at scale 10.
pub const ACCOUNTS: i32 = 1_000_000;
/// The pgbench scale the benchmark database is initialised at.
pub const SCALE: u32 = 10;
/// The `SELECT 1` workload.
pub const SELECT_ONE: &str = "SELECT 1";
/// pgbench's `-S` query, as a prepared statement.
pub const POINT_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

const MAX_NS: u64 = 60_000_000_000;
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What each cycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `SELECT 1`, prepared once per connection.
    Select1,
    /// pgbench's select-only query on a random account, prepared once per
    /// connection.
    PointSelect,
}

impl Workload {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Select1 => "SELECT 1",
            Workload::PointSelect => "point select",
        }
    }
}

/// The pools (and modes) compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgKind {
    /// tidepool-postgres with its defaults: test-on-borrow with a
    /// validation interval, tracked transaction state, fast reset.
    Tidepool,
    /// tidepool-postgres with `test_on_borrow(false)`.
    TidepoolNotest,
    /// tidepool-postgres with the `Verified` reset policy (a round trip on
    /// every return).
    TidepoolVerified,
    /// tidepool-postgres with the `Clean` reset policy (session state
    /// cleared after every checkout that ran a statement).
    TidepoolClean,
    /// deadpool-postgres, default `RecyclingMethod::Fast` (checks nothing).
    Deadpool,
    /// deadpool-postgres with `RecyclingMethod::Verified` (a round trip on
    /// every checkout).
    DeadpoolVerified,
    /// bb8-postgres with bb8's default `test_on_check_out(true)`.
    Bb8,
    /// bb8-postgres with `test_on_check_out(false)`.
    Bb8Notest,
    /// sqlx `PgPool` with its default `test_before_acquire(true)`.
    Sqlx,
    /// sqlx `PgPool` with `test_before_acquire(false)`.
    SqlxNotest,
    /// `pgbench -S -M prepared` with as many clients as the pool size
    /// (point select only; the concurrency is its connection count).
    Pgbench,
    /// tokio-postgres with no pool: as many tasks as the pool size, each
    /// owning one client and its prepared statement. The driver's own
    /// ceiling, the Rust counterpart of pgbench at the same connection
    /// count (measured once per size; the concurrency is its client count).
    Direct,
}

impl PgKind {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            PgKind::Tidepool => "tidepool",
            PgKind::TidepoolNotest => "tidepool-notest",
            PgKind::TidepoolVerified => "tidepool-verified",
            PgKind::TidepoolClean => "tidepool-clean",
            PgKind::Deadpool => "deadpool",
            PgKind::DeadpoolVerified => "deadpool-verified",
            PgKind::Bb8 => "bb8",
            PgKind::Bb8Notest => "bb8-notest",
            PgKind::Sqlx => "sqlx",
            PgKind::SqlxNotest => "sqlx-notest",
            PgKind::Pgbench => "pgbench",
            PgKind::Direct => "tokio-postgres",
        }
    }

    /// Whether this anchor runs with a fixed number of clients (the pool
    /// size) instead of the benchmark's concurrency levels.
    pub fn is_per_size(self) -> bool {
        matches!(self, PgKind::Pgbench | PgKind::Direct)
    }
}

/// A pool that can run one cycle of a workload.
pub trait PgCycle: Send + Sync + 'static {
    /// Checks out a connection, runs the workload's query (with `aid` for
    /// the point select), returns the connection.
    fn run(&self, w: Workload, aid: i32) -> impl Future<Output = Result<(), String>> + Send;
}

impl PgCycle for tidepool::Pool<tidepool_postgres::PgManager> {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.get().await.map_err(|e| e.to_string())?;
        let row = match w {
            Workload::Select1 => conn.query_one_native(SELECT_ONE, &[]).await,
            Workload::PointSelect => conn.query_one_native(POINT_SELECT, &[&aid]).await,
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

impl PgCycle for deadpool_postgres::Pool {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let client = self.get().await.map_err(|e| e.to_string())?;
        let (sql, params): (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]) = match w {
            Workload::Select1 => (SELECT_ONE, &[]),
            Workload::PointSelect => (POINT_SELECT, &[&aid]),
        };
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| e.to_string())?;
        client
            .query_one(&stmt, params)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// bb8-postgres's manager plus a per-connection statement cache (bb8-postgres
/// has none; without one every cycle would prepare again, which no real
/// application does).
#[derive(Debug)]
pub struct Bb8Cached(bb8_postgres::PostgresConnectionManager<NoTls>);

/// A bb8-postgres client with its prepared statements.
pub struct CachedClient {
    client: tokio_postgres::Client,
    statements: HashMap<&'static str, tokio_postgres::Statement>,
}

impl bb8::ManageConnection for Bb8Cached {
    type Connection = CachedClient;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<CachedClient, tokio_postgres::Error> {
        Ok(CachedClient {
            client: self.0.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut CachedClient) -> Result<(), tokio_postgres::Error> {
        self.0.is_valid(&mut conn.client).await
    }

    fn has_broken(&self, conn: &mut CachedClient) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

impl PgCycle for bb8::Pool<Bb8Cached> {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.get().await.map_err(|e| format!("{e:?}"))?;
        let (sql, params): (&'static str, &[&(dyn tokio_postgres::types::ToSql + Sync)]) = match w {
            Workload::Select1 => (SELECT_ONE, &[]),
            Workload::PointSelect => (POINT_SELECT, &[&aid]),
        };
        let stmt = match conn.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = conn.client.prepare(sql).await.map_err(|e| e.to_string())?;
                conn.statements.insert(sql, s.clone());
                s
            }
        };
        conn.client
            .query_one(&stmt, params)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

impl PgCycle for sqlx::PgPool {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let mut conn = self.acquire().await.map_err(|e| e.to_string())?;
        let row = match w {
            Workload::Select1 => sqlx::query(SELECT_ONE).fetch_one(&mut *conn).await,
            Workload::PointSelect => {
                sqlx::query(POINT_SELECT)
                    .bind(aid)
                    .fetch_one(&mut *conn)
                    .await
            }
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

/// One tokio-postgres client with both statements prepared, owned by one
/// task: no pool at all.
pub struct DirectClient {
    client: tokio_postgres::Client,
    select1: tokio_postgres::Statement,
    point: tokio_postgres::Statement,
}

impl DirectClient {
    /// Connects and prepares both statements.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (client, conn) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let select1 = client
            .prepare(SELECT_ONE)
            .await
            .map_err(|e| e.to_string())?;
        let point = client
            .prepare(POINT_SELECT)
            .await
            .map_err(|e| e.to_string())?;
        Ok(DirectClient {
            client,
            select1,
            point,
        })
    }
}

impl PgCycle for DirectClient {
    async fn run(&self, w: Workload, aid: i32) -> Result<(), String> {
        let row = match w {
            Workload::Select1 => self.client.query_one(&self.select1, &[]).await,
            Workload::PointSelect => self.client.query_one(&self.point, &[&aid]).await,
        };
        row.map(drop).map_err(|e| e.to_string())
    }
}

/// One built pool.
pub enum BuiltPg {
    /// tidepool-postgres.
    Tidepool(Arc<tidepool::Pool<tidepool_postgres::PgManager>>),
    /// deadpool-postgres.
    Deadpool(Arc<deadpool_postgres::Pool>),
    /// bb8-postgres.
    Bb8(Arc<bb8::Pool<Bb8Cached>>),
    /// sqlx.
    Sqlx(Arc<sqlx::PgPool>),
}

/// Builds a pool of `kind` with `size` connections against `url` (inside a
/// runtime). The acquire timeout is 30 s everywhere it can be set.
pub async fn build(kind: PgKind, size: usize, url: &str) -> Result<BuiltPg, String> {
    let size32 = u32::try_from(size).map_err(|_| format!("pool size {size} is too large"))?;
    let timeout = Duration::from_secs(30);
    let deadpool = |method: deadpool_postgres::RecyclingMethod| -> Result<BuiltPg, String> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: method,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(BuiltPg::Deadpool(Arc::new(pool)))
    };
    Ok(match kind {
        PgKind::Tidepool
        | PgKind::TidepoolNotest
        | PgKind::TidepoolVerified
        | PgKind::TidepoolClean => {
            let policy = match kind {
                PgKind::TidepoolVerified => tidepool_postgres::ResetPolicy::Verified,
                PgKind::TidepoolClean => tidepool_postgres::ResetPolicy::Clean,
                _ => tidepool_postgres::ResetPolicy::default(),
            };
            let manager = tidepool_postgres::PgManager::builder_from_url(url)
                .map_err(|e| e.to_string())?
                .reset_policy(policy)
                .build()
                .map_err(|e| e.to_string())?;
            let pool = tidepool::Pool::builder(manager)
                .max_size(size32)
                .acquire_timeout(timeout)
                .test_on_borrow(kind != PgKind::TidepoolNotest)
                .build()
                .await
                .map_err(|e| e.to_string())?;
            BuiltPg::Tidepool(Arc::new(pool))
        }
        PgKind::Deadpool => deadpool(deadpool_postgres::RecyclingMethod::Fast)?,
        PgKind::DeadpoolVerified => deadpool(deadpool_postgres::RecyclingMethod::Verified)?,
        PgKind::Bb8 | PgKind::Bb8Notest => {
            let manager = bb8_postgres::PostgresConnectionManager::new_from_stringlike(url, NoTls)
                .map_err(|e| e.to_string())?;
            let pool = bb8::Pool::builder()
                .max_size(size32)
                .connection_timeout(timeout)
                .test_on_check_out(kind == PgKind::Bb8)
                .build(Bb8Cached(manager))
                .await
                .map_err(|e| e.to_string())?;
            BuiltPg::Bb8(Arc::new(pool))
        }
        PgKind::Sqlx | PgKind::SqlxNotest => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(size32)
                .acquire_timeout(timeout)
                .test_before_acquire(kind == PgKind::Sqlx)
                .connect(url)
                .await
                .map_err(|e| e.to_string())?;
            BuiltPg::Sqlx(Arc::new(pool))
        }
        PgKind::Pgbench => return Err("pgbench is not a pool; run it with run_pgbench".into()),
        PgKind::Direct => return Err("tokio-postgres is not a pool; run it with run_direct".into()),
    })
}

/// One measurement point.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PgSpec {
    /// The pool.
    pub pool: PgKind,
    /// The query.
    pub workload: Workload,
    /// Pool size (connections).
    pub size: usize,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Unmeasured time first (connections open, statements prepare).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What one run of one point measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgSample {
    /// The point.
    pub spec: PgSpec,
    /// Which repeat (0-based).
    pub repeat: usize,
    /// Cycles (transactions) completed in the window, per second.
    pub tps: f64,
    /// Median cycle latency, ns (none for pgbench).
    pub p50_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// Worst, ns.
    pub max_ns: Option<u64>,
    /// Mean latency, ns (pgbench reports only this).
    pub mean_ns: Option<f64>,
    /// Tasks that completed no cycle in the window.
    pub starved_tasks: usize,
    /// Failed cycles.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

struct TaskOutcome {
    hist: Histogram<u32>,
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
}

/// The benchmark database and the one used to create it, as command-line
/// options shared by the PostgreSQL benchmarks.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The benchmark database (created and initialised if missing). Keep
    /// `sslmode=disable`: deadpool-postgres and bb8-postgres run without TLS
    /// here, while tidepool-postgres, like libpq, uses TLS under the default
    /// `prefer` whenever the server offers it.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/tidepool_bench?sslmode=disable"
    )]
    pub url: String,
    /// A database to connect to while creating the benchmark database.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    pub admin_url: String,
}

/// A fresh two-worker runtime (the machine's cores) for one point.
fn point_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the tokio runtime: {e}"))
}

/// Runs one point once (not pgbench).
pub fn run_point(spec: &PgSpec, url: &str, repeat: usize) -> Result<PgSample, String> {
    let rt = point_runtime()?;
    let built = rt
        .block_on(build(spec.pool, spec.size, url))
        .map_err(|e| format!("could not build the {} pool: {e}", spec.pool.name()))?;
    let measured = match built {
        BuiltPg::Tidepool(p) => {
            let r = drive(&rt, p.clone(), spec);
            rt.block_on(p.close(Duration::from_secs(2)));
            r
        }
        BuiltPg::Deadpool(p) => {
            let r = drive(&rt, p.clone(), spec);
            p.close();
            r
        }
        BuiltPg::Bb8(p) => drive(&rt, p, spec),
        BuiltPg::Sqlx(p) => {
            let r = drive(&rt, p.clone(), spec);
            rt.block_on(p.close());
            r
        }
    };
    rt.shutdown_timeout(Duration::from_secs(2));
    sample(spec, repeat, measured?)
}

/// Runs tokio-postgres with no pool: `spec.size` tasks, each with a client
/// of its own (`spec.concurrency` is ignored).
pub fn run_direct(spec: &PgSpec, url: &str, repeat: usize) -> Result<PgSample, String> {
    let rt = point_runtime()?;
    let clients = rt.block_on(async {
        let mut clients = Vec::with_capacity(spec.size);
        for _ in 0..spec.size {
            clients.push(Arc::new(DirectClient::connect(url).await?));
        }
        Ok::<_, String>(clients)
    })?;
    let spec = PgSpec {
        concurrency: spec.size,
        ..*spec
    };
    let measured = drive_each(&rt, clients, &spec);
    rt.shutdown_timeout(Duration::from_secs(2));
    sample(&spec, repeat, measured?)
}

fn sample(
    spec: &PgSpec,
    repeat: usize,
    (outcomes, seconds): (Vec<TaskOutcome>, f64),
) -> Result<PgSample, String> {
    let mut total = Histogram::<u64>::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?;
    let (mut cycles, mut errors, mut first_error, mut starved) = (0, 0, None, 0);
    for o in outcomes {
        if o.cycles == 0 {
            starved += 1;
        }
        for v in o.hist.iter_recorded() {
            total.saturating_record_n(v.value_iterated_to(), u64::from(v.count_at_value()));
        }
        cycles += o.cycles;
        errors += o.errors;
        if first_error.is_none() {
            first_error = o.first_error;
        }
    }
    Ok(PgSample {
        spec: *spec,
        repeat,
        tps: cycles as f64 / seconds,
        p50_ns: Some(total.value_at_quantile(0.5)),
        p99_ns: Some(total.value_at_quantile(0.99)),
        max_ns: Some(total.max()),
        mean_ns: Some(total.mean()),
        starved_tasks: starved,
        errors,
        first_error,
    })
}

fn drive<C: PgCycle>(
    rt: &tokio::runtime::Runtime,
    pool: Arc<C>,
    spec: &PgSpec,
) -> Result<(Vec<TaskOutcome>, f64), String> {
    drive_each(rt, vec![pool; spec.concurrency], spec)
}

/// Runs one task per entry of `pools` (the same pool shared, or one client
/// each) through warm-up and the measured window.
fn drive_each<C: PgCycle>(
    rt: &tokio::runtime::Runtime,
    pools: Vec<Arc<C>>,
    spec: &PgSpec,
) -> Result<(Vec<TaskOutcome>, f64), String> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(i, pool)| {
            rt.spawn(task(
                pool,
                phase.clone(),
                spec.workload,
                0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
            ))
        })
        .collect();
    std::thread::sleep(spec.warmup);
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(spec.duration);
    phase.store(STOP, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    rt.block_on(async {
        let mut outcomes = Vec::with_capacity(handles.len());
        for h in handles {
            outcomes.push(
                h.await
                    .map_err(|e| format!("a benchmark task failed: {e}"))??,
            );
        }
        Ok((outcomes, seconds))
    })
}

async fn task<C: PgCycle>(
    pool: Arc<C>,
    phase: Arc<AtomicU8>,
    workload: Workload,
    mut seed: u64,
) -> Result<TaskOutcome, String> {
    let mut out = TaskOutcome {
        hist: Histogram::new_with_bounds(1, MAX_NS, 2).map_err(|e| e.to_string())?,
        cycles: 0,
        errors: 0,
        first_error: None,
    };
    loop {
        // xorshift64: a uniform enough account id without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let aid = (seed % ACCOUNTS as u64) as i32 + 1;
        let before = phase.load(Ordering::Relaxed);
        let started = Instant::now();
        let result = pool.run(workload, aid).await;
        let took = started.elapsed();
        let after = phase.load(Ordering::Relaxed);
        let in_window = after == MEASURE;
        let in_flight_at_stop = after == STOP && before != STOP;
        match result {
            Ok(()) if in_window || in_flight_at_stop => {
                let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
                out.hist.saturating_record(ns);
                if in_window {
                    out.cycles += 1;
                }
            }
            Ok(()) => {}
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
                // A failing pool must not spin the CPU away from the others.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if after == STOP {
            return Ok(out);
        }
    }
}

/// The `PGSSLMODE` that libpq tools (pgbench) need to connect the way the
/// URL says: without it they default to `prefer` and use TLS whenever the
/// server offers it, while the Rust pools here connect without TLS.
pub fn libpq_sslmode(url: &str) -> Result<&'static str, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    Ok(match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "disable",
        tokio_postgres::config::SslMode::Require => "require",
        _ => "prefer",
    })
}

/// Connection arguments for the `pgbench` and `psql`-style command-line
/// tools, from a URL.
pub fn cli_args(url: &str) -> Result<(Vec<String>, String), String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    let mut args = Vec::new();
    if let Some(tokio_postgres::config::Host::Tcp(h)) = config.get_hosts().first() {
        args.extend(["-h".to_string(), h.clone()]);
    }
    if let Some(p) = config.get_ports().first() {
        args.extend(["-p".to_string(), p.to_string()]);
    }
    if let Some(u) = config.get_user() {
        args.extend(["-U".to_string(), u.to_string()]);
    }
    let db = config
        .get_dbname()
        .ok_or("the URL names no database")?
        .to_string();
    Ok((args, db))
}

/// Runs `pgbench -S -M prepared` with `clients` connections for
/// `duration` (whole seconds, at least 1) and reads its throughput.
pub fn run_pgbench(
    url: &str,
    clients: usize,
    duration: Duration,
    repeat: usize,
) -> Result<PgSample, String> {
    let (args, db) = cli_args(url)?;
    let secs = duration.as_secs().max(1);
    let output = std::process::Command::new("pgbench")
        .env("PGSSLMODE", libpq_sslmode(url)?)
        .args(&args)
        .args(["-n", "-S", "-M", "prepared", "-j", "2"])
        .args(["-c", &clients.to_string(), "-T", &secs.to_string()])
        .arg(&db)
        .output()
        .map_err(|e| format!("could not run pgbench: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let number_after = |key: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split('=').nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let tps =
        number_after("tps").ok_or_else(|| format!("no tps line in pgbench's output: {text}"))?;
    let mean_ms = number_after("latency average");
    Ok(PgSample {
        spec: PgSpec {
            pool: PgKind::Pgbench,
            workload: Workload::PointSelect,
            size: clients,
            concurrency: clients,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(secs),
        },
        repeat,
        tps,
        p50_ns: None,
        p99_ns: None,
        max_ns: None,
        mean_ns: mean_ms.map(|ms| ms * 1e6),
        starved_tasks: 0,
        errors: 0,
        first_error: None,
    })
}

/// Makes sure the benchmark database exists and holds pgbench's tables at
/// scale 10: creates the database through `admin_url` if needed, and runs
/// `pgbench -i -s 10` if `pgbench_accounts` is missing or the wrong size.
pub async fn ensure_database(admin_url: &str, url: &str) -> Result<(), String> {
    let (_, db) = cli_args(url)?;
    if !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "database name {db:?} must be letters, digits and _"
        ));
    }
    let (admin, conn) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .map_err(|e| format!("could not connect to the admin database: {e}"))?;
    let task = tokio::spawn(conn);
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        eprintln!("creating database {db}");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .map_err(|e| format!("could not create database {db}: {e}"))?;
    }
    drop(admin);
    task.abort();

    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("could not connect to {db}: {e}"))?;
    let task = tokio::spawn(conn);
    let rows: Option<i64> = client
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .ok()
        .map(|r| r.get(0));
    drop(client);
    task.abort();
    if rows == Some(i64::from(ACCOUNTS)) {
        return Ok(());
    }
    eprintln!("initialising {db} with pgbench -i -s {SCALE} (about a minute)");
    let (args, db) = cli_args(url)?;
    let status = std::process::Command::new("pgbench")
        .env("PGSSLMODE", libpq_sslmode(url)?)
        .args(&args)
        .args(["-i", "-q", "-s", &SCALE.to_string()])
        .arg(&db)
        .status()
        .map_err(|e| format!("could not run pgbench -i: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pgbench -i failed: {status}"))
    }
}
