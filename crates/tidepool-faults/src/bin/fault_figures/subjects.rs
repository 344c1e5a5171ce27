//! The four pools under test, each behind its own fault proxy, driven
//! through one face: [`Subject::request`] (get a connection, run
//! `SELECT 1` as a simple query: one round trip for every pool) and
//! [`Subject::acquire`] (get only). Errors come back as short categories so
//! the figures can say what callers saw. Nothing here decides timing.

use std::sync::Arc;
use std::time::Duration;

use tidepool::BreakerConfig;
use tidepool_postgres::PgManager;
use tokio_postgres::NoTls;

use crate::FigureError;

/// Which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// tidepool with its defaults (breaker on).
    Tidepool,
    /// tidepool with `BreakerConfig::hold_while_open`: an open circuit
    /// holds callers until a probe finds the database back.
    TidepoolHold,
    /// tidepool with `BreakerConfig::disabled()`.
    TidepoolNoBreaker,
    /// deadpool-postgres with its defaults (fast recycling).
    Deadpool,
    /// bb8-postgres with its defaults.
    Bb8,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Tidepool,
        Kind::TidepoolHold,
        Kind::TidepoolNoBreaker,
        Kind::Deadpool,
        Kind::Bb8,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Tidepool => "tidepool",
            Kind::TidepoolHold => "tidepool, hold while open",
            Kind::TidepoolNoBreaker => "tidepool, breaker off",
            Kind::Deadpool => "deadpool-postgres",
            Kind::Bb8 => "bb8-postgres",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Kind::Tidepool => "tidepool",
            Kind::TidepoolHold => "tidepool_hold",
            Kind::TidepoolNoBreaker => "tidepool_no_breaker",
            Kind::Deadpool => "deadpool",
            Kind::Bb8 => "bb8",
        }
    }
}

/// What every pool is given alike.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub size: u32,
    #[serde(serialize_with = "crate::ser_ms")]
    pub acquire_timeout: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub connect_timeout: Duration,
    pub user: String,
    pub dbname: String,
    /// tidepool-postgres' sslmode. The anchors are given tokio-postgres'
    /// `NoTls`, so `disable` keeps the wire the same for all four.
    pub tidepool_sslmode: String,
    /// Overrides of the breaker's probe schedule (breaker-on pools only).
    #[serde(serialize_with = "ser_opt_ms")]
    pub max_recovery_timeout: Option<Duration>,
    pub half_open_requests: Option<u32>,
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => crate::ser_ms(d, s),
        None => s.serialize_none(),
    }
}

type Bb8Pool = bb8::Pool<bb8_postgres::PostgresConnectionManager<NoTls>>;

/// What a tidepool pool said about itself during a run: its failed
/// connection attempts (from its event listener), with the time they
/// ended.
#[derive(Default)]
pub struct Diag {
    pub create_failures: parking_lot::Mutex<Vec<(std::time::Instant, String)>>,
}

/// One pool, whichever kind.
pub enum Subject {
    Tidepool(tidepool::Pool<PgManager>, Arc<Diag>),
    Deadpool(deadpool_postgres::Pool),
    Bb8(Bb8Pool),
}

fn driver_config(port: u16, app: &str, s: &Settings) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user(&s.user)
        .dbname(&s.dbname)
        .application_name(app)
        .connect_timeout(s.connect_timeout);
    c
}

impl Subject {
    /// Builds the pool against the proxy on `port` (loopback). Lazy for
    /// every kind: nothing is opened until the first request. Must run
    /// inside a tokio runtime.
    pub fn build(kind: Kind, port: u16, app: &str, s: &Settings) -> Result<Subject, FigureError> {
        match kind {
            Kind::Tidepool | Kind::TidepoolHold | Kind::TidepoolNoBreaker => {
                // libpq's connect_timeout is whole seconds; the pool's own
                // connect_timeout below is the one that bounds an attempt.
                let url = format!(
                    "postgres://{}@127.0.0.1:{port}/{}?application_name={app}&connect_timeout={}&sslmode={}",
                    s.user,
                    s.dbname,
                    s.connect_timeout.as_secs().max(1),
                    s.tidepool_sslmode
                );
                let manager =
                    PgManager::from_url(&url).map_err(|e| FigureError::Build(e.to_string()))?;
                let diag = Arc::new(Diag::default());
                let listener = diag.clone();
                let mut builder = tidepool::Pool::builder(manager)
                    .on_event(move |event| {
                        if let tidepool::Event::CreateFailed { error } = event {
                            listener
                                .create_failures
                                .lock()
                                .push((std::time::Instant::now(), error.clone()));
                        }
                    })
                    .max_size(s.size)
                    .acquire_timeout(s.acquire_timeout)
                    .connect_timeout(s.connect_timeout);
                if kind == Kind::TidepoolNoBreaker {
                    builder = builder.circuit_breaker(BreakerConfig::disabled());
                } else {
                    let mut breaker = BreakerConfig::default();
                    breaker.hold_while_open = kind == Kind::TidepoolHold;
                    if let Some(cap) = s.max_recovery_timeout {
                        breaker.max_recovery_timeout = cap;
                    }
                    if let Some(n) = s.half_open_requests {
                        breaker.half_open_requests = n;
                    }
                    builder = builder.circuit_breaker(breaker);
                }
                let pool = builder
                    .build_lazy()
                    .map_err(|e| FigureError::Build(e.to_string()))?;
                Ok(Subject::Tidepool(pool, diag))
            }
            Kind::Deadpool => {
                let manager = deadpool_postgres::Manager::new(driver_config(port, app, s), NoTls);
                let pool = deadpool_postgres::Pool::builder(manager)
                    .max_size(s.size as usize)
                    .runtime(deadpool_postgres::Runtime::Tokio1)
                    .wait_timeout(Some(s.acquire_timeout))
                    .create_timeout(Some(s.connect_timeout))
                    .build()
                    .map_err(|e| FigureError::Build(e.to_string()))?;
                Ok(Subject::Deadpool(pool))
            }
            Kind::Bb8 => {
                let manager = bb8_postgres::PostgresConnectionManager::new(
                    driver_config(port, app, s),
                    NoTls,
                );
                let pool = bb8::Pool::builder()
                    .max_size(s.size)
                    .connection_timeout(s.acquire_timeout)
                    .build_unchecked(manager);
                Ok(Subject::Bb8(pool))
            }
        }
    }

    /// Gets a connection and runs `SELECT 1` on it.
    pub async fn request(&self) -> Result<(), &'static str> {
        match self {
            Subject::Tidepool(pool, _) => {
                let conn = pool.get().await.map_err(tidepool_category)?;
                conn.simple_query("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|_| QUERY_FAILED)
            }
            Subject::Deadpool(pool) => {
                let client = pool.get().await.map_err(deadpool_category)?;
                client
                    .simple_query("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|_| QUERY_FAILED)
            }
            Subject::Bb8(pool) => {
                let conn = pool.get().await.map_err(bb8_category)?;
                conn.simple_query("SELECT 1")
                    .await
                    .map(drop)
                    .map_err(|_| QUERY_FAILED)
            }
        }
    }

    /// Gets a connection and gives it straight back.
    pub async fn acquire(&self) -> Result<(), &'static str> {
        match self {
            Subject::Tidepool(pool, _) => pool.get().await.map(drop).map_err(tidepool_category),
            Subject::Deadpool(pool) => pool.get().await.map(drop).map_err(deadpool_category),
            Subject::Bb8(pool) => pool.get().await.map(drop).map_err(bb8_category),
        }
    }

    /// tidepool's breaker state; `None` for the other pools.
    pub fn breaker_state(&self) -> Option<tidepool::BreakerState> {
        match self {
            Subject::Tidepool(pool, _) => Some(pool.breaker_state()),
            _ => None,
        }
    }

    /// tidepool's own account of the run; `None` for the other pools.
    /// Times are from `t0`.
    pub fn diagnosis(&self, t0: std::time::Instant) -> Option<Diagnosis> {
        let Subject::Tidepool(pool, diag) = self else {
            return None;
        };
        let m = pool.metrics();
        let failures: Vec<(f64, String)> = diag
            .create_failures
            .lock()
            .iter()
            .map(|(at, e)| {
                (
                    at.saturating_duration_since(t0).as_secs_f64() * 1e3,
                    e.clone(),
                )
            })
            .collect();
        let mut by_cause = std::collections::BTreeMap::new();
        for (_, e) in &failures {
            *by_cause.entry(cause(e)).or_default() += 1;
        }
        Some(Diagnosis {
            created: m.connections_created,
            attempts_failed: m.connection_attempts_failed,
            acquires_timed_out: m.acquires_timed_out,
            validations: m.validations,
            closed_broken: m.connections_closed_broken,
            closed_failed_validation: m.connections_closed_failed_validation,
            closed_failed_reset: m.connections_closed_failed_reset,
            times_opened: m.breaker.map_or(0, |b| b.times_opened),
            failed_attempts_by_cause: by_cause,
            breaker: Vec::new(),
            failed_attempts: failures,
        })
    }

    /// Closes the pool, waiting briefly for connections still out.
    pub async fn close(&self) {
        match self {
            Subject::Tidepool(pool, _) => {
                pool.close(Duration::from_millis(500)).await;
            }
            Subject::Deadpool(pool) => pool.close(),
            // bb8 closes its connections when the last handle drops.
            Subject::Bb8(_) => {}
        }
    }
}

/// Connection attempt errors with the numbers taken out, so they group.
fn cause(error: &str) -> String {
    let text: String = error
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                '#'
            } else {
                c
            }
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == '#' && out.ends_with('#')) {
            out.push(c);
        }
    }
    out.chars().take(120).collect()
}

/// What a tidepool pool counted in one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Diagnosis {
    pub created: u64,
    pub attempts_failed: u64,
    pub acquires_timed_out: u64,
    pub validations: u64,
    pub closed_broken: u64,
    pub closed_failed_validation: u64,
    pub closed_failed_reset: u64,
    pub times_opened: u64,
    pub failed_attempts_by_cause: std::collections::BTreeMap<String, usize>,
    /// Breaker states as sampled at every tick: (ms from start, state),
    /// one entry per change.
    pub breaker: Vec<(f64, String)>,
    /// Every failed attempt: (ms from start, error). Only in `--trace`.
    #[serde(skip)]
    pub failed_attempts: Vec<(f64, String)>,
}

pub const QUERY_FAILED: &str = "query failed";
pub const DEADLINE: &str = "request deadline";
pub const CIRCUIT_OPEN: &str = "circuit open";

fn tidepool_category(e: tidepool::Error<tidepool_postgres::PgError>) -> &'static str {
    match e {
        tidepool::Error::CircuitOpen { .. } => CIRCUIT_OPEN,
        tidepool::Error::Timeout {
            last_error: Some(_),
            ..
        } => "acquire timeout (connects failing)",
        tidepool::Error::Timeout { .. } => "acquire timeout",
        tidepool::Error::Create(_) => "connect failed",
        tidepool::Error::Closed => "pool closed",
        _ => "other acquire error",
    }
}

fn deadpool_category(e: deadpool_postgres::PoolError) -> &'static str {
    use deadpool_postgres::{PoolError, TimeoutType};
    match e {
        PoolError::Timeout(TimeoutType::Wait) => "acquire timeout",
        PoolError::Timeout(TimeoutType::Create) => "connect timeout",
        PoolError::Timeout(TimeoutType::Recycle) => "recycle timeout",
        PoolError::Backend(_) => "connect failed",
        PoolError::Closed => "pool closed",
        _ => "other acquire error",
    }
}

fn bb8_category(e: bb8::RunError<tokio_postgres::Error>) -> &'static str {
    match e {
        bb8::RunError::TimedOut => "acquire timeout",
        bb8::RunError::User(_) => "connect failed",
    }
}
