//! (e) The failing acquire against a dead database: warm the pool, kill
//! the database (every connection reset, new ones accepted then reset),
//! drive the pool until it has noticed (for tidepool: until an acquire
//! answers `circuit open`; for the others: three failed acquires in a
//! row), then time back-to-back `get()` calls, one pool at a time so
//! nothing else competes for the clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidepool_testkit::proxy::Fault;

use crate::figures::percentile;
use crate::scenario::{app_name, start_proxy};
use crate::subjects::{Kind, Settings, Subject, CIRCUIT_OPEN};
use crate::FigureError;

/// What one pool's failing acquires looked like.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeadFigures {
    /// Acquires timed (fewer than asked when the time budget ran out).
    pub calls: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Acquires that answered `circuit open`.
    pub circuit_open: usize,
    /// Acquires that (wrongly) succeeded.
    pub succeeded: usize,
    /// Connection attempts the pool made while the calls ran.
    pub attempts: u64,
    /// Wall time of the timed calls.
    pub elapsed_ms: f64,
    /// Time it took to reach the measured state.
    pub drive_ms: f64,
}

pub async fn run(
    kind: Kind,
    settings: &Settings,
    proxies: &tokio::runtime::Handle,
    upstream: SocketAddr,
    calls: usize,
    budget: Duration,
) -> Result<DeadFigures, FigureError> {
    let proxy = start_proxy(proxies, upstream).await?;
    let subject = Arc::new(Subject::build(
        kind,
        proxy.port(),
        &app_name(kind),
        settings,
    )?);
    // Warm: a few connections open and idle, as in a running service.
    let warm = warm_up(&subject, 5).await;
    if warm.iter().any(Result::is_err) {
        return Err(FigureError::Warmup(format!(
            "{}: {:?}",
            kind.label(),
            warm.iter().filter_map(|r| r.err()).collect::<Vec<_>>()
        )));
    }
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let driving = Instant::now();
    let mut failed_in_a_row = 0;
    while driving.elapsed() < Duration::from_secs(15) {
        match subject.acquire().await {
            Err(CIRCUIT_OPEN) => break,
            Err(_) => failed_in_a_row += 1,
            Ok(()) => failed_in_a_row = 0,
        }
        if kind != Kind::Tidepool && failed_in_a_row >= 3 {
            break;
        }
    }
    let drive_ms = driving.elapsed().as_secs_f64() * 1e3;

    let before = proxy.accepted();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(calls);
    let (mut circuit_open, mut succeeded) = (0, 0);
    while latencies.len() < calls && started.elapsed() < budget {
        let t = Instant::now();
        let outcome = subject.acquire().await;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
        match outcome {
            Ok(()) => succeeded += 1,
            Err(CIRCUIT_OPEN) => circuit_open += 1,
            Err(_) => {}
        }
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let attempts = proxy.accepted() - before;
    subject.close().await;
    latencies.sort_by(f64::total_cmp);
    Ok(DeadFigures {
        calls: latencies.len(),
        p50_us: percentile(&latencies, 0.50).unwrap_or(f64::NAN),
        p99_us: percentile(&latencies, 0.99).unwrap_or(f64::NAN),
        max_us: latencies.last().copied().unwrap_or(f64::NAN),
        circuit_open,
        succeeded,
        attempts,
        elapsed_ms,
        drive_ms,
    })
}

/// `n` requests at once, so the pool opens several connections.
async fn warm_up(subject: &Arc<Subject>, n: usize) -> Vec<Result<(), &'static str>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let subject = subject.clone();
        set.spawn(async move { subject.request().await });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        out.push(joined.unwrap_or(Err("warm-up task panicked")));
    }
    out
}
