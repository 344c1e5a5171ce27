//! `tidepool serve`: one pool (an embedded SQLite database by default,
//! `--url` for a server), an optional synthetic load of the bench mix, and
//! tidepool-http's router on `--listen`, so an operator can watch the whole
//! thing work — `/dashboard`, `/metrics`, `/health`, `/pools` — in one
//! command. Ctrl-C stops the load, the server and the pool, and drops the
//! tables it made on a server (unless `--keep`). An address it cannot
//! listen on is refused before anything else happens.

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
        serve_on(make()?, dialect, &args, mix, listener, stop, temp.is_some()).await
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

async fn serve_on<M>(
    manager: M,
    dialect: Dialect,
    args: &ServeArgs,
    mix: Mix,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    temporary: bool,
) -> Result<(), CliError>
where
    M: Manager,
    M::Connection: Queryable,
{
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
    let router = tidepool_http::router(pool.clone());
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
