//! `tidepool serve`: one pool (an embedded SQLite database by default,
//! `--url` for a server), an optional synthetic load of the bench mix, and
//! tidepool-http's router on `--listen`, so an operator can watch the whole
//! thing work — `/dashboard`, `/metrics`, `/health`, `/pools` — in one
//! command. Ctrl-C stops the load, the server and the pool, and drops the
//! tables it made on a server (unless `--keep`). An address it cannot
//! listen on is refused before anything else happens. Beside the pool it
//! watches its own resident memory ([`memwatch`]): a warning at
//! target `tidepool::memory` when it trends upward, and gauges in
//! `/metrics`. Warnings (the pool's and the watch's) go to stderr;
//! `RUST_LOG` chooses more.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tidepool::{Manager, Pool, Queryable};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{one_line, CliError};
use crate::settings::Mix;
use crate::target::{with_manager, Dialect, Target};
use crate::workload::{self, Op, Statements};
use memwatch::{Gauges, Watch};

mod memwatch;

/// `tidepool serve`'s flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database: postgres://, mysql:// or sqlite:// URL. Default: a
    /// temporary SQLite database, removed on exit.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,

    /// Where to serve the router. Default 127.0.0.1:9187.
    #[arg(
        long,
        env = "TIDEPOOL_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:9187"
    )]
    pub listen: String,

    /// Synthetic clients running the bench mix against the pool (0: none,
    /// the pool just sits there). Default 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub load: u32,

    /// Pause of each load client between operations, like `10ms`. Default
    /// 5ms (so a demo does not take every core).
    #[arg(long, value_name = "DURATION", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub think: Duration,

    /// The load's operation mix, percentages adding up to 100. Default
    /// read=70,write=20,txn=10.
    #[arg(
        long,
        value_name = "read=N,write=N,txn=N",
        default_value = "read=70,write=20,txn=10"
    )]
    pub mix: String,

    /// The pool's max_size. Default 10.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_size: u32,

    /// The pool's min_size. Default 2.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_size: u32,

    /// The pool's name (the `pool_name` label). Default: the target,
    /// without credentials (`embedded-sqlite` for the temporary database).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Prefix of the load's tables on a server. Default tidepool_serve_.
    #[arg(long, value_name = "PREFIX", default_value = "tidepool_serve_")]
    pub table_prefix: String,

    /// Keep the load's tables (or the temporary SQLite file) on exit.
    #[arg(long)]
    pub keep: bool,

    /// The span the memory watch fits its trend over; 0 turns the watch
    /// off. Default 5m.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub memory_window: Duration,

    /// Time between resident-memory samples. Default 5s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub memory_interval: Duration,

    /// Growth, in MiB per minute over the window, that the memory watch
    /// warns about. Default 1.
    #[arg(long, value_name = "MIB_PER_MIN", default_value_t = 1.0)]
    pub memory_slope: f64,
}

impl ServeArgs {
    /// The memory watch's settings, or `None` when it is turned off;
    /// refused when the window holds too few samples to judge.
    fn memory_settings(&self) -> Result<Option<memwatch::Settings>, CliError> {
        if self.memory_window.is_zero() {
            return Ok(None);
        }
        if self.memory_interval.is_zero() || self.memory_window < self.memory_interval * 4 {
            return Err(CliError::InvalidValue {
                flag: "--memory-window",
                value: humantime::format_duration(self.memory_window).to_string(),
                reason: format!(
                    "must hold at least 4 samples of --memory-interval ({}), or be 0 to turn the watch off",
                    humantime::format_duration(self.memory_interval)
                ),
            });
        }
        if !(self.memory_slope.is_finite() && self.memory_slope > 0.0) {
            return Err(CliError::InvalidValue {
                flag: "--memory-slope",
                value: self.memory_slope.to_string(),
                reason: "must be a positive number of MiB per minute".into(),
            });
        }
        Ok(Some(memwatch::Settings {
            window: self.memory_window,
            interval: self.memory_interval,
            slope_threshold: self.memory_slope * 1024.0 * 1024.0,
        }))
    }
}

/// Users seeded for the load.
const SEED_USERS: u32 = 1_000;

/// Runs `tidepool serve` until `stop` turns true.
pub async fn run(args: ServeArgs, stop: watch::Receiver<bool>) -> Result<(), CliError> {
    let mix = Mix::parse(&args.mix).map_err(|reason| CliError::InvalidValue {
        flag: "--mix",
        value: args.mix.clone(),
        reason,
    })?;
    let memory = args.memory_settings()?;
    if args.max_size == 0 || args.min_size > args.max_size {
        return Err(CliError::InvalidValue {
            flag: "--max-size",
            value: args.max_size.to_string(),
            reason: format!(
                "must be at least 1 and at least --min-size ({})",
                args.min_size
            ),
        });
    }
    // Listen first: a port that is taken is the operator's first mistake
    // to hear about, before a database is touched.
    let listener = bind(&args.listen).await?;
    log_warnings();
    let (target, temp) = match &args.url {
        Some(url) => (Target::parse(url)?, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("tidepool-serve-")
                .tempdir()
                .map_err(|e| CliError::io("creating a temporary directory", e))?;
            let config = tidepool_sqlite::SqliteConfig::file(dir.path().join("serve.db"))
                .begin_mode(tidepool_sqlite::BeginMode::Immediate);
            (Target::Sqlite(config), Some(dir))
        }
    };
    let outcome = with_manager!(&target, |make, dialect| {
        let place = Place {
            listener,
            temporary: temp.is_some(),
            memory,
        };
        serve_on(make()?, dialect, &args, mix, place, stop).await
    });
    if let Some(dir) = temp {
        if args.keep {
            let kept = dir.keep();
            eprintln!(
                "kept the SQLite database at {}",
                kept.join("serve.db").display()
            );
        }
    }
    outcome
}

/// Binds `--listen`, or says in one line why it cannot.
async fn bind(listen: &str) -> Result<TcpListener, CliError> {
    let bad = |reason: String| CliError::InvalidValue {
        flag: "--listen",
        value: listen.chars().take(100).collect(),
        reason,
    };
    let addr: SocketAddr = listen.trim().parse().map_err(|_| {
        bad("not an address; write it as IP:PORT, like 127.0.0.1:9187 or [::1]:9187".into())
    })?;
    TcpListener::bind(addr).await.map_err(|e| {
        bad(match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the address is in use; stop what listens there or pick another port".into()
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "no interface of this machine has that address".into()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (ports below 1024 need privileges)".into()
            }
            _ => format!("cannot listen there: {e}"),
        })
    })
}

/// Sends the pool's warnings, and the memory watch's, to stderr (`RUST_LOG`
/// for more). A subscriber already set (none is, in the binary) is kept.
fn log_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Where `serve_on` runs: the bound listener, whether the database is the
/// temporary one, and the memory watch's settings (`None`: off).
struct Place {
    listener: TcpListener,
    temporary: bool,
    memory: Option<memwatch::Settings>,
}

async fn serve_on<M>(
    manager: M,
    dialect: Dialect,
    args: &ServeArgs,
    mix: Mix,
    place: Place,
    mut stop: watch::Receiver<bool>,
) -> Result<(), CliError>
where
    M: Manager,
    M::Connection: Queryable,
{
    let Place {
        listener,
        temporary,
        memory,
    } = place;
    let target = manager.describe();
    let mut builder = Pool::builder(manager)
        .min_size(args.min_size)
        .max_size(args.max_size)
        .leak_timeout(Some(Duration::from_secs(30)));
    match &args.name {
        Some(name) => builder = builder.name(name.clone()),
        // A temporary file's path changes every run; a stable name keeps
        // Prometheus' series from churning.
        None if temporary => builder = builder.name("embedded-sqlite"),
        None => {}
    }
    let pool = builder.build().await.map_err(|e| CliError::Pool {
        context: "building the pool".into(),
        source: e,
    })?;

    let statements = Statements::new(dialect, &args.table_prefix, SEED_USERS);
    let seeded = args.load > 0 || temporary;
    if seeded {
        let mut conn = pool.get().await.map_err(|e| CliError::Connect {
            target: target.clone(),
            reason: one_line(&e),
        })?;
        workload::setup(&mut *conn, &statements)
            .await
            .map_err(|e| CliError::Database {
                what: "creating and seeding the load's tables".into(),
                target: target.clone(),
                reason: one_line(&e),
            })?;
    }

    let clients: Vec<_> = (0..args.load)
        .map(|i| {
            tokio::spawn(client(
                pool.clone(),
                statements.clone(),
                mix,
                args.think,
                u64::from(i),
                stop.clone(),
            ))
        })
        .collect();

    let addr = listener
        .local_addr()
        .map_err(|e| CliError::io("reading the listening address", e))?;
    eprintln!(
        "serving pool `{}` ({target}) on http://{addr}: /dashboard /metrics /health /health/ready /pools — {} load clients; Ctrl-C to stop",
        pool.name(),
        args.load
    );
    let gauges = Arc::new(Gauges::default());
    let watcher = memory.and_then(|settings| watch_memory(settings, gauges.clone(), stop.clone()));
    let router = router(&pool, &gauges)?;
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| CliError::io("serving HTTP", e));

    for c in clients {
        let _ = c.await;
    }
    if let Some(w) = watcher {
        let _ = w.await;
    }
    if seeded && !temporary && !args.keep {
        match pool.get().await {
            Ok(mut conn) => {
                if let Err(e) = workload::teardown(&mut *conn, &statements).await {
                    eprintln!("could not drop the load's tables: {}", one_line(&e));
                }
            }
            Err(e) => eprintln!("could not drop the load's tables: {}", one_line(&e)),
        }
    }
    let report = pool.close(Duration::from_secs(2)).await;
    eprintln!(
        "stopped: pool closed ({} idle connections closed, {} still checked out)",
        report.closed_idle, report.still_checked_out
    );
    served
}

/// tidepool-http's router over `pool`, with the memory watch's gauges.
fn router<M: Manager>(pool: &Pool<M>, gauges: &Arc<Gauges>) -> Result<axum::Router, CliError> {
    let name = pool.name();
    let bad = |e: tidepool_http::HttpError| CliError::InvalidValue {
        flag: "--name",
        value: name.chars().take(100).collect(),
        reason: e.to_string(),
    };
    let (g1, g2, g3) = (gauges.clone(), gauges.clone(), gauges.clone());
    let pools = tidepool_http::Pools::new()
        .add_named(name.clone(), pool.clone())
        .map_err(bad)?
        .gauge(
            "process_resident_memory_bytes",
            "Resident memory of the tidepool serve process, in bytes (sampled by the memory watch; Linux only).",
            move || g1.resident(),
        )
        .map_err(bad)?
        .gauge(
            "tidepool_memory_slope_bytes_per_minute",
            "The least-squares slope of resident memory over the memory watch's window, in bytes per minute (absent until a window is full).",
            move || g2.slope_per_min(),
        )
        .map_err(bad)?
        .gauge(
            "tidepool_memory_growth_bytes",
            "Resident memory growth over the memory watch's window along the fitted line, in bytes (absent until a window is full).",
            move || g3.growth(),
        )
        .map_err(bad)?;
    Ok(pools.router())
}

/// Samples resident memory every `settings.interval` until `stop`, keeps
/// the gauges current, and warns at target `tidepool::memory` when memory
/// trends upward. `None` (with one line on stderr) where resident memory
/// cannot be read: every system but Linux.
fn watch_memory(
    settings: memwatch::Settings,
    gauges: Arc<Gauges>,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if memwatch::resident_bytes().is_none() {
        eprintln!(
            "memory watch off: resident memory is read from /proc/self/status, which this system does not have"
        );
        return None;
    }
    Some(tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut watch = Watch::new(settings);
        let mut tick = tokio::time::interval(settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            let Some(resident) = memwatch::resident_bytes() else {
                continue;
            };
            let at = started.elapsed().as_secs_f64();
            let verdict = watch.record(at, resident);
            gauges.set(resident, verdict.as_ref().map(|(t, _)| t));
            if let Some((t, true)) = verdict {
                tracing::warn!(
                    target: "tidepool::memory",
                    slope_bytes_per_min = t.slope_per_min.round() as i64,
                    growth_bytes = t.growth.round() as i64,
                    window_secs = t.span.as_secs(),
                    resident_bytes = t.last,
                    r2 = format_args!("{:.2}", t.r2),
                    "resident memory is growing: {} over the last {} ({}/min, steady through the window), now {}: a leak, or a cache still filling",
                    memwatch::mib(t.growth),
                    humantime::format_duration(Duration::from_secs(t.span.as_secs_f64().round() as u64)),
                    memwatch::mib(t.slope_per_min),
                    memwatch::mib(t.last as f64),
                );
            }
        }
    }))
}

/// One synthetic client: the bench mix, back to back with `think` between
/// operations, until `stop`.
async fn client<M>(
    pool: Pool<M>,
    statements: Arc<Statements>,
    mix: Mix,
    think: Duration,
    seed: u64,
    stop: watch::Receiver<bool>,
) where
    M: Manager,
    M::Connection: Queryable,
{
    let mut rng = fastrand::Rng::with_seed(seed);
    while !*stop.borrow() {
        let op = Op::pick(&mix, &mut rng);
        // Failures show on the dashboard through the pool's own counters
        // and breaker; the load goes on, pausing after a failed acquire so
        // an open circuit is not a busy loop.
        let pause = match pool.get().await {
            Ok(mut conn) => {
                let _ = workload::run(&mut *conn, &statements, op, &mut rng).await;
                think
            }
            Err(_) => think.max(Duration::from_millis(50)),
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
