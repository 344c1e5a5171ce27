//! The pool configurations the load shapes compare, behind one face
//! ([`ShapePool`]): a cycle that times its acquire, and a gauge the
//! sampler reads. tidepool's pools record every scaling decision
//! ([`tidepool::Event::Scaled`]) with the time it was made.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidepool::{Event, ScalingDecision, Strategy};
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::slow::{OpenCount, SlowConnect, SlowDeadpool};

/// One pool configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Variant {
    /// The name in tables.
    pub name: String,
    /// How it is built.
    pub kind: VariantKind,
}

/// How a [`Variant`] is built.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum VariantKind {
    /// tidepool-postgres with its defaults but these.
    Tidepool {
        /// The scaling preset.
        #[serde(serialize_with = "strategy_name")]
        strategy: Strategy,
        /// `min_size`.
        min: u32,
        /// `max_size`.
        max: u32,
        /// Connections opened at build time (before the clock starts).
        initial: u32,
        /// `idle_timeout`; `None` keeps the default (10 min).
        idle_timeout: Option<Duration>,
    },
    /// deadpool-postgres with its defaults (`RecyclingMethod::Fast`) and
    /// `max_size`.
    Deadpool {
        /// `max_size`.
        max: usize,
    },
}

fn strategy_name<S: serde::Serializer>(s: &Strategy, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

impl Variant {
    /// A tidepool pool on a scaling preset, from empty.
    pub fn strategy(name: &str, strategy: Strategy, max: u32) -> Self {
        Variant {
            name: name.into(),
            kind: VariantKind::Tidepool {
                strategy,
                min: 0,
                max,
                initial: 0,
                idle_timeout: None,
            },
        }
    }

    /// tidepool's `fixed` preset from empty, growing on demand, with an
    /// idle timeout (`None`: the default 10 min).
    pub fn on_demand(name: &str, max: u32, idle_timeout: Option<Duration>) -> Self {
        Variant {
            name: name.into(),
            kind: VariantKind::Tidepool {
                strategy: Strategy::Fixed,
                min: 0,
                max,
                initial: 0,
                idle_timeout,
            },
        }
    }

    /// tidepool's `fixed` preset with `min = max = size`, none ever
    /// closed; with `prewarm`, every connection is open before the clock
    /// starts (`initial_size = size`; the build fails if the server cannot
    /// take them all), otherwise they open on demand and by the
    /// maintenance task's top-up to `min_size`.
    pub fn fixed(name: &str, size: u32, prewarm: bool) -> Self {
        Variant {
            name: name.into(),
            kind: VariantKind::Tidepool {
                strategy: Strategy::Fixed,
                min: size,
                max: size,
                initial: if prewarm { size } else { 0 },
                idle_timeout: None,
            },
        }
    }

    /// deadpool-postgres with its defaults.
    pub fn deadpool(name: &str, max: usize) -> Self {
        Variant {
            name: name.into(),
            kind: VariantKind::Deadpool { max },
        }
    }
}

/// What the sampler reads from a pool.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Gauge {
    /// Open connections (including those being opened).
    pub size: usize,
    /// Checked out.
    pub in_use: usize,
    /// Callers waiting.
    pub waiting: usize,
    /// tidepool's warm target (0 for deadpool).
    pub warm_target: usize,
    /// tidepool's concurrency limit (`max_size` for deadpool).
    pub limit: usize,
    /// tidepool's mean hold time over its last scaling window, µs — what
    /// the adaptive limit compares with its baseline (0 for deadpool, or
    /// when no scaling part is on).
    pub hold_mean_us: f64,
}

/// A scaling decision ([`ScalingDecision`]) and when it was made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    /// Seconds since the run started.
    pub at_s: f64,
    /// `"warm_target"`, `"limit"` or `"max_size"`.
    pub knob: &'static str,
    /// The value before.
    pub from: usize,
    /// The value after.
    pub to: usize,
    /// Why ([`tidepool::ScalingReason::as_str`]).
    pub reason: &'static str,
    /// Demand (busy + queued) that drove it.
    pub demand: f64,
    /// The load factor at the time.
    pub load_factor: f64,
}

impl Decision {
    fn new(at_s: f64, d: &ScalingDecision) -> Self {
        Decision {
            at_s,
            knob: d.knob,
            from: d.from,
            to: d.to,
            reason: d.reason.as_str(),
            demand: d.demand,
            load_factor: d.load_factor,
        }
    }
}

/// A built pool.
pub enum ShapePool {
    /// tidepool-postgres over a slowed manager.
    Tidepool(tidepool::Pool<SlowConnect<tidepool_postgres::PgManager>>),
    /// deadpool-postgres over a slowed manager.
    Deadpool(deadpool::managed::Pool<SlowDeadpool>),
}

/// A built pool, the connections its manager opened, and (tidepool) its
/// scaling decisions.
pub struct Built {
    /// The pool.
    pub pool: Arc<ShapePool>,
    /// Connections opened through its manager.
    pub opens: Arc<OpenCount>,
    /// Scaling decisions, timed from `started`.
    pub decisions: Arc<Mutex<Vec<Decision>>>,
    /// When the run's clock starts (reset by the driver).
    pub started: Arc<Mutex<Instant>>,
}

/// Builds `variant` against `url`, its connections opened `delay` late.
pub async fn build(variant: &Variant, url: &str, delay: Duration) -> Result<Built, String> {
    let opens = Arc::new(OpenCount::default());
    let decisions = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(Mutex::new(Instant::now()));
    let pool = match &variant.kind {
        VariantKind::Tidepool {
            strategy,
            min,
            max,
            initial,
            idle_timeout,
        } => {
            let pg = tidepool_postgres::PgManager::builder_from_url(url)
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())?;
            let (log, t0) = (decisions.clone(), started.clone());
            let mut b = tidepool::Pool::builder(SlowConnect::new(pg, delay, opens.clone()))
                .min_size(*min)
                .max_size(*max)
                .initial_size(*initial)
                .strategy(*strategy)
                .on_event(move |e| {
                    if let Event::Scaled(d) = e {
                        let at_s = t0.lock().elapsed().as_secs_f64();
                        log.lock().push(Decision::new(at_s, d));
                    }
                });
            if let Some(t) = idle_timeout {
                b = b.idle_timeout(Some(*t));
            }
            ShapePool::Tidepool(b.build().await.map_err(|e| e.to_string())?)
        }
        VariantKind::Deadpool { max } => {
            let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
            let manager = deadpool_postgres::Manager::from_config(
                config,
                NoTls,
                deadpool_postgres::ManagerConfig {
                    recycling_method: deadpool_postgres::RecyclingMethod::Fast,
                },
            );
            let pool =
                deadpool::managed::Pool::builder(SlowDeadpool::new(manager, delay, opens.clone()))
                    .max_size(*max)
                    .build()
                    .map_err(|e| e.to_string())?;
            ShapePool::Deadpool(pool)
        }
    };
    Ok(Built {
        pool: Arc::new(pool),
        opens,
        decisions,
        started,
    })
}

/// How long one cycle waited for its connection and took in all.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    /// `get()` alone.
    pub wait: Duration,
    /// `get()`, the query, the return.
    pub total: Duration,
}

impl ShapePool {
    /// get → one prepared query (one row) → drop.
    pub async fn cycle(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Timed, String> {
        let started = Instant::now();
        match self {
            ShapePool::Tidepool(p) => {
                let mut conn = p.get().await.map_err(|e| e.to_string())?;
                let wait = started.elapsed();
                conn.query_one_native(sql, params)
                    .await
                    .map_err(|e| e.to_string())?;
                drop(conn);
                Ok(Timed {
                    wait,
                    total: started.elapsed(),
                })
            }
            ShapePool::Deadpool(p) => {
                let client = p.get().await.map_err(|e| e.to_string())?;
                let wait = started.elapsed();
                let stmt = client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| e.to_string())?;
                client
                    .query_one(&stmt, params)
                    .await
                    .map_err(|e| e.to_string())?;
                drop(client);
                Ok(Timed {
                    wait,
                    total: started.elapsed(),
                })
            }
        }
    }

    /// The pool's occupancy now.
    pub fn gauge(&self) -> Gauge {
        match self {
            ShapePool::Tidepool(p) => {
                let s = p.status();
                Gauge {
                    size: s.size,
                    in_use: s.in_use,
                    waiting: s.waiting,
                    warm_target: s.warm_target,
                    limit: s.limit,
                    hold_mean_us: p.load().hold_time_mean.as_secs_f64() * 1e6,
                }
            }
            ShapePool::Deadpool(p) => {
                let s = p.status();
                Gauge {
                    size: s.size,
                    in_use: s.size.saturating_sub(s.available),
                    waiting: s.waiting,
                    warm_target: 0,
                    limit: s.max_size,
                    hold_mean_us: 0.0,
                }
            }
        }
    }

    /// Closes the pool (tidepool waits up to 2 s for connections out).
    pub async fn close(&self) {
        match self {
            ShapePool::Tidepool(p) => {
                p.close(Duration::from_secs(2)).await;
            }
            ShapePool::Deadpool(p) => p.close(),
        }
    }
}
