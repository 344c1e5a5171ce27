//! PostgreSQL throughput: tidepool-postgres against deadpool-postgres,
//! bb8-postgres and sqlx's `PgPool`, on `SELECT 1` and on pgbench's
//! prepared point select, plus `pgbench -S -M prepared` itself. Each cycle
//! is get → one query on a cached prepared statement → drop; its latency
//! is the whole cycle, as a caller sees it.
//!
//! One room per concern: [`adapters`] wraps each rival pool behind
//! [`PgCycle`] and builds it, [`measure`] drives the tasks and turns their
//! histograms into a [`PgSample`], [`pgbench`] runs PostgreSQL's own tool
//! and prepares the benchmark database. This file holds only what all three
//! share: the workloads, the pool kinds and the command-line target.

pub mod adapters;
pub mod measure;
pub mod pgbench;

pub use adapters::{
    build, Bb8Cached, BuiltPg, CachedClient, DeadpoolWay, DirectClient, PgCycle, SharedClients,
};
pub use measure::{run_direct, run_point, PgSample, PgSpec};
pub use pgbench::{cli_args, ensure_database, libpq_sslmode, run_pgbench};

/// Rows in `pgbench_accounts` at scale 10.
pub const ACCOUNTS: i32 = 1_000_000;
/// The pgbench scale the benchmark database is initialised at.
pub const SCALE: u32 = 10;
/// The `SELECT 1` workload.
pub const SELECT_ONE: &str = "SELECT 1";
/// pgbench's `-S` query, as a prepared statement.
pub const POINT_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

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
    /// tidepool-postgres with its defaults and the `balanced` scaling
    /// strategy: what sizing itself costs on a steady load.
    TidepoolBalanced,
    /// tidepool-postgres with its defaults, written the deadpool-postgres
    /// way: `prepare_cached` then `query_one(&stmt, ..)` on the pooled
    /// connection (the same code as the `deadpool` row), not
    /// `query_one_native`.
    TidepoolDeadpoolWay,
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
    /// tidepool-postgres with its defaults, every query through a
    /// `Multiplexer` holding up to the pool size of connections (default
    /// depth): shared reads pipelined over pooled connections.
    TidepoolMultiplexed,
    /// As many tokio-postgres clients as the pool size, no pool, shared
    /// round-robin (per query) by all the tasks: the driver's pipelining
    /// ceiling at that many connections.
    SharedClients,
}

impl PgKind {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            PgKind::Tidepool => "tidepool",
            PgKind::TidepoolNotest => "tidepool-notest",
            PgKind::TidepoolBalanced => "tidepool-balanced",
            PgKind::TidepoolDeadpoolWay => "tidepool-deadpool-way",
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
            PgKind::TidepoolMultiplexed => "tidepool-multiplexed",
            PgKind::SharedClients => "shared-clients",
        }
    }

    /// Whether this anchor runs with a fixed number of clients (the pool
    /// size) instead of the benchmark's concurrency levels.
    pub fn is_per_size(self) -> bool {
        matches!(self, PgKind::Pgbench | PgKind::Direct)
    }
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
