//! The command line: every subcommand and flag, with the help text users
//! read. Flags are optional here so that the configuration file can fill
//! what the command line and the environment leave out
//! (see [`crate::settings`]); defaults are stated in each flag's help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load-test a database through the tidepool pool, size a pool, and check
/// a database before pointing a pool at it.
///
/// Settings come from, in order of precedence: command-line flags,
/// environment variables (`DATABASE_URL`, `TIDEPOOL_*`, named in each
/// flag's help), the TOML file given by `--config` / `TIDEPOOL_CONFIG`,
/// and built-in defaults.
#[derive(Debug, Parser)]
#[command(name = "tidepool", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// A TOML settings file: top-level `url`, and tables `[bench]`,
    /// `[pool]` (a tidepool pool configuration: the tuned side of `bench`,
    /// the planned pool of `doctor`), `[size]` and `[doctor]`. A file with
    /// none of these keys is read as a bare `[pool]` table.
    #[arg(long, global = true, env = "TIDEPOOL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load-test a database through the pool: a baseline and a tuned pool
    /// configuration side by side, at several concurrency levels.
    ///
    /// With no --url it creates a temporary SQLite database, seeds it with
    /// users, orders and events, runs the workload and removes it. With
    /// --url postgres://... or mysql://... it runs the same workload on
    /// tables named with --table-prefix, dropped afterwards unless --keep.
    ///
    /// Baseline: a fixed-size pool (min = max = --baseline-size, all opened
    /// up front) with the extras off: no validation on borrow, no
    /// background health checks, no leak detection, no idle timeout and no
    /// lifetime limit.
    ///
    /// Tuned (unless a [pool] configuration is given): the --strategy
    /// preset (default: balanced on SQLite, dynamic on a server) with
    /// max_size = what the database runs well at once (SQLite: cores + 1,
    /// readers and its one writer; a server under a strategy other than
    /// dynamic: cores x 2 + 1, the `tidepool size` arithmetic), at most the
    /// concurrency level (under dynamic: the concurrency level, the
    /// adaptive limit finds the knee); on PostgreSQL its reads pipelined
    /// through a multiplexer (--multiplex-reads), min_size = initial_size = a quarter
    /// of max (at least 2), validation on borrow skipped for connections
    /// used within 500ms, background health checks every 30s, leak
    /// detection at 30s, idle_timeout 60s, max_lifetime 30m.
    ///
    /// Latency is measured from asking the pool for a connection to the
    /// end of the operation; acquire wait is the part spent in `get()`.
    /// Ctrl-C stops the run and prints what was measured so far.
    Bench(BenchArgs),

    /// Recommend min/max pool sizes per application instance, and show the
    /// arithmetic: Little's law (connections busy = query rate x query
    /// time), the database's useful concurrency (cores x 2 + spindles),
    /// and the server's max_connections shared by all instances.
    Size(SizeArgs),

    /// Check a database the way an operator would before pointing a pool at
    /// it: DNS, TCP, TLS, authentication, server version, round-trip
    /// latency, max_connections against the planned pools, and server
    /// timeouts that would kill idle pooled connections. Exits 0 when all is
    /// well, 1 when something needs attention.
    Doctor(DoctorArgs),

    /// Run a pool and serve tidepool-http's router over it: /dashboard (a
    /// live page), /metrics (Prometheus), /health, /health/ready and
    /// /pools. With no --url it uses a temporary SQLite database; --load N
    /// runs N synthetic clients of the bench mix against it. Ctrl-C stops
    /// cleanly. An address it cannot listen on exits 2 at once.
    Serve(crate::serve::ServeArgs),
}

#[derive(Debug, Args, Default)]
pub struct BenchArgs {
    /// The database to load: postgres://, mysql:// or sqlite:// URL.
    /// Default: a temporary SQLite database, removed afterwards.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,

    /// Concurrency levels (client tasks), comma-separated. Default 10,25,50.
    #[arg(long, short = 'c', env = "TIDEPOOL_CONCURRENCY", value_name = "N,N,..")]
    pub concurrency: Option<String>,

    /// Measured time per level and configuration, like 5s or 1m. Default 5s.
    #[arg(long, short = 'd', env = "TIDEPOOL_DURATION", value_name = "DURATION")]
    pub duration: Option<String>,

    /// Unmeasured warm-up before each measurement. Default 1s.
    #[arg(long, env = "TIDEPOOL_WARMUP", value_name = "DURATION")]
    pub warmup: Option<String>,

    /// Runs of the whole matrix; figures per level merge all runs. Default 1.
    #[arg(long, env = "TIDEPOOL_REPEAT", value_name = "N")]
    pub repeat: Option<u32>,

    /// Operation mix in percent, adding up to 100 (an operation left out
    /// is 0): read (half point selects by primary key, half range selects
    /// of a user's latest orders), write (half event inserts, half balance
    /// updates), txn (a transaction: read a user, insert an order, update
    /// the balance, insert an event). Default read=70,write=20,txn=10.
    #[arg(long, env = "TIDEPOOL_MIX", value_name = "read=N,write=N,txn=N")]
    pub mix: Option<String>,

    /// Size of the baseline's fixed pool. Default 10.
    #[arg(long, env = "TIDEPOOL_BASELINE_SIZE", value_name = "N")]
    pub baseline_size: Option<u32>,

    /// Users seeded (orders and events are three times as many). Default 2000.
    #[arg(long, env = "TIDEPOOL_SEED_USERS", value_name = "N")]
    pub seed_users: Option<u32>,

    /// Prefix of the tables created on a server. Default tidepool_bench_.
    #[arg(long, env = "TIDEPOOL_TABLE_PREFIX", value_name = "PREFIX")]
    pub table_prefix: Option<String>,

    /// Keep the benchmark tables (or the SQLite file) afterwards.
    #[arg(long, env = "TIDEPOOL_KEEP", value_parser = clap::builder::BoolishValueParser::new())]
    pub keep: bool,

    /// Write every figure as JSON to FILE.
    #[arg(long, env = "TIDEPOOL_JSON", value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML page with charts to FILE.
    #[arg(long, env = "TIDEPOOL_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Longest a client waits for a connection before counting a timeout
    /// error, in both configurations. Default 5s.
    #[arg(long, env = "TIDEPOOL_ACQUIRE_TIMEOUT", value_name = "DURATION")]
    pub acquire_timeout: Option<String>,

    /// The tuned side's scaling preset: fixed, balanced, high-throughput,
    /// low-latency or dynamic. Default balanced on SQLite, dynamic on a
    /// server (whose knee the adaptive limit finds; cores x 2 + 1 was
    /// measured below it).
    #[arg(long, env = "TIDEPOOL_STRATEGY", value_name = "NAME")]
    pub strategy: Option<String>,

    /// How the client count moves over each run: steady (all clients all
    /// the time), ramp (from 2 up to the level and back down over the run)
    /// or burst (a square wave between a tenth of the level and the level,
    /// three periods per run). Default steady.
    #[arg(long, env = "TIDEPOOL_SHAPE", value_name = "SHAPE")]
    pub shape: Option<String>,

    /// On PostgreSQL, the tuned side sends its reads (the point and range
    /// selects: single autocommit statements, no session state) through a
    /// multiplexer that pipelines them over a few shared connections;
    /// writes and transactions keep a connection of their own. on or off.
    /// Default on. Other databases have no multiplexer and ignore it.
    #[arg(long, env = "TIDEPOOL_MULTIPLEX_READS", value_name = "on|off")]
    pub multiplex_reads: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct SizeArgs {
    /// Read max_connections (and current use) from this server.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,

    /// Peak queries per second across all instances. Default 1000.
    #[arg(long, env = "TIDEPOOL_RATE", value_name = "QPS")]
    pub rate: Option<f64>,

    /// Mean time a query holds a connection, like 5ms. Default 5ms.
    #[arg(long, env = "TIDEPOOL_QUERY_TIME", value_name = "DURATION")]
    pub query_time: Option<String>,

    /// Concurrent requests one instance serves at most (a pool never needs
    /// more connections than that). Default: no cap.
    #[arg(long, env = "TIDEPOOL_REQUESTS", value_name = "N")]
    pub concurrent_requests: Option<u32>,

    /// Application instances sharing the database. Default 1.
    #[arg(long, env = "TIDEPOOL_INSTANCES", value_name = "N")]
    pub instances: Option<u32>,

    /// CPU cores of the database server. When not given, 4 is assumed and
    /// the arithmetic says so.
    #[arg(long, env = "TIDEPOOL_DB_CORES", value_name = "N")]
    pub cores: Option<u32>,

    /// Effective spindles (disks that seek independently; 0 when the data
    /// set is cached, about 1 for an SSD). Default 1.
    #[arg(long, env = "TIDEPOOL_SPINDLES", value_name = "N")]
    pub spindles: Option<u32>,

    /// The server's max_connections (read from --url when given).
    /// Default 100 (PostgreSQL's default).
    #[arg(long, env = "TIDEPOOL_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,

    /// Connections kept free for admins, migrations and other clients.
    /// Default 10% of max_connections (at least 3).
    #[arg(long, env = "TIDEPOOL_RESERVED", value_name = "N")]
    pub reserved: Option<u32>,
}

#[derive(Debug, Args, Default)]
pub struct DoctorArgs {
    /// The database to check: postgres://, mysql:// or sqlite:// URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,

    /// Planned max_size per instance. Default: the [pool] table's, else 10.
    #[arg(long, env = "TIDEPOOL_MAX_SIZE", value_name = "N")]
    pub max_size: Option<u32>,

    /// Planned application instances. Default 1.
    #[arg(long, env = "TIDEPOOL_INSTANCES", value_name = "N")]
    pub instances: Option<u32>,

    /// Planned idle_timeout. Default: the [pool] table's, else 10m.
    #[arg(long, env = "TIDEPOOL_IDLE_TIMEOUT", value_name = "DURATION")]
    pub idle_timeout: Option<String>,

    /// Planned max_lifetime. Default: the [pool] table's, else 30m.
    #[arg(long, env = "TIDEPOOL_MAX_LIFETIME", value_name = "DURATION")]
    pub max_lifetime: Option<String>,

    /// Pings for the round-trip measurement. Default 100.
    #[arg(long, env = "TIDEPOOL_PINGS", value_name = "N")]
    pub pings: Option<u32>,

    /// Give up on each network step after this long. Default 5s.
    #[arg(long, env = "TIDEPOOL_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
}
