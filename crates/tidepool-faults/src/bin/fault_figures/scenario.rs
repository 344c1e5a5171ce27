//! One scenario run: all four pools at once, each behind its own proxy,
//! under the same open-loop load (a new request every `interval`, each an
//! independent task with an overall deadline), with the fault switched on
//! and off on every proxy at the same instant. Returns every request's
//! start, end and outcome, and the proxies' accept counts at the fault's
//! edges; [`crate::figures`] turns that into numbers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidepool_testkit::proxy::{Fault, FaultProxy};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::subjects::{Diagnosis, Kind, Settings, Subject, DEADLINE};
use crate::FigureError;

/// The network faults of the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// (a) The database is down: existing connections are reset, new ones
    /// accepted then reset.
    Down,
    /// (b) Established and new connections are black-holed.
    BlackHole,
    /// (c) Every connection is reset once (a short Reset window).
    Rst,
    /// (d) +200 ms each way.
    Latency,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Down,
        Scenario::BlackHole,
        Scenario::Rst,
        Scenario::Latency,
    ];

    pub fn fault(self) -> Fault {
        match self {
            Scenario::Down | Scenario::Rst => Fault::Reset,
            Scenario::BlackHole => Fault::BlackHole,
            Scenario::Latency => Fault::Latency {
                to_server: Duration::from_millis(200),
                to_client: Duration::from_millis(200),
            },
        }
    }

    pub fn letter(self) -> char {
        match self {
            Scenario::Down => 'a',
            Scenario::BlackHole => 'b',
            Scenario::Rst => 'c',
            Scenario::Latency => 'd',
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Down => "database down (RST on every connection, existing and new)",
            Scenario::BlackHole => "black hole (established and new connections)",
            Scenario::Rst => "momentary RST of every connection",
            Scenario::Latency => "+200 ms latency each way",
        }
    }
}

/// The clock of a scenario run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    #[serde(serialize_with = "crate::ser_ms")]
    pub healthy: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub fault: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub rst_fault: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub healed: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub interval: Duration,
    #[serde(serialize_with = "crate::ser_ms")]
    pub deadline: Duration,
}

impl Timing {
    pub fn window(&self, scenario: Scenario) -> Duration {
        match scenario {
            Scenario::Rst => self.rst_fault,
            _ => self.fault,
        }
    }
}

/// One request as a caller saw it; times from the run's start.
#[derive(Debug, Clone)]
pub struct Req {
    pub start: Duration,
    pub end: Duration,
    /// `None` when it succeeded, else what went wrong.
    pub error: Option<&'static str>,
}

/// What one pool saw in one run.
#[derive(Debug)]
pub struct Run {
    pub kind: Kind,
    pub reqs: Vec<Req>,
    pub fault_at: Duration,
    pub heal_at: Duration,
    /// Connections the proxy had accepted at the fault, at the heal, and
    /// once every request had ended.
    pub accepted: [u64; 3],
    /// Connections open through the proxy just before the heal (in a black
    /// hole: the ones it holds, which it forwards when the fault lifts).
    pub open_at_heal: usize,
    /// tidepool's own account (tidepool pools only).
    pub diagnosis: Option<Diagnosis>,
}

static NEXT_APP: AtomicU64 = AtomicU64::new(0);

pub fn app_name(kind: Kind) -> String {
    format!(
        "tp_fig_{}_{}_{}",
        std::process::id(),
        NEXT_APP.fetch_add(1, Ordering::Relaxed),
        kind.key()
    )
}

/// Starts a proxy on the proxy runtime, so a pool that busies the main
/// runtime cannot slow the "network" down.
pub async fn start_proxy(
    proxies: &tokio::runtime::Handle,
    upstream: SocketAddr,
) -> Result<FaultProxy, FigureError> {
    proxies
        .spawn(FaultProxy::start(upstream))
        .await
        .map_err(|e| FigureError::Proxy(e.to_string()))?
        .map_err(|e| FigureError::Proxy(e.to_string()))
}

async fn one_request(subject: Arc<Subject>, t0: Instant, deadline: Duration) -> Req {
    let start = t0.elapsed();
    let outcome = tokio::time::timeout(deadline, subject.request()).await;
    let end = t0.elapsed();
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(category)) => Some(category),
        Err(_) => Some(DEADLINE),
    };
    Req { start, end, error }
}

/// Runs `scenario` once for every pool in `order`, all at the same time.
pub async fn run(
    scenario: Scenario,
    order: &[Kind],
    settings: &Settings,
    timing: &Timing,
    proxies: &tokio::runtime::Handle,
    upstream: SocketAddr,
) -> Result<Vec<Run>, FigureError> {
    let mut rigs = Vec::with_capacity(order.len());
    for &kind in order {
        let proxy = start_proxy(proxies, upstream).await?;
        let subject = Arc::new(Subject::build(
            kind,
            proxy.port(),
            &app_name(kind),
            settings,
        )?);
        rigs.push((kind, proxy, subject));
    }
    let window = timing.window(scenario);
    let t0 = Instant::now();
    let total = timing.healthy + window + timing.healed;

    let subjects: Vec<Arc<Subject>> = rigs.iter().map(|(_, _, s)| s.clone()).collect();
    let (interval, deadline) = (timing.interval, timing.deadline);
    type Breakers = Vec<Vec<(f64, String)>>;
    let load: JoinHandle<(Vec<Vec<JoinHandle<Req>>>, Breakers)> = tokio::spawn(async move {
        let mut handles: Vec<Vec<JoinHandle<Req>>> = subjects.iter().map(|_| Vec::new()).collect();
        let mut breakers: Breakers = subjects.iter().map(|_| Vec::new()).collect();
        let mut tick = tokio::time::interval_at(t0, interval);
        // Open loop: arrivals follow the clock, whatever the pools do.
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        loop {
            let at = tick.tick().await;
            if at.duration_since(t0) >= total {
                break;
            }
            for (i, subject) in subjects.iter().enumerate() {
                if let Some(state) = subject.breaker_state() {
                    let state = format!("{state:?}");
                    if breakers[i].last().is_none_or(|(_, last)| *last != state) {
                        breakers[i].push((t0.elapsed().as_secs_f64() * 1e3, state));
                    }
                }
                handles[i].push(tokio::spawn(one_request(subject.clone(), t0, deadline)));
            }
        }
        (handles, breakers)
    });

    tokio::time::sleep_until(t0 + timing.healthy).await;
    let at_fault: Vec<u64> = rigs.iter().map(|(_, p, _)| p.accepted()).collect();
    let fault_at = t0.elapsed();
    for (_, proxy, _) in &rigs {
        proxy.set(scenario.fault());
    }
    tokio::time::sleep_until(t0 + timing.healthy + window).await;
    let heal_at = t0.elapsed();
    let at_heal: Vec<u64> = rigs.iter().map(|(_, p, _)| p.accepted()).collect();
    let open_at_heal: Vec<usize> = rigs.iter().map(|(_, p, _)| p.open_connections()).collect();
    for (_, proxy, _) in &rigs {
        proxy.set(Fault::PassThrough);
    }

    let (handles, breakers) = load.await.map_err(|e| FigureError::Task(e.to_string()))?;
    let mut runs = Vec::with_capacity(rigs.len());
    for (i, per_pool) in handles.into_iter().enumerate() {
        let mut reqs = Vec::with_capacity(per_pool.len());
        for h in per_pool {
            reqs.push(h.await.map_err(|e| FigureError::Task(e.to_string()))?);
        }
        let (kind, proxy, subject) = &rigs[i];
        let diagnosis = subject.diagnosis(t0.into_std()).map(|mut d| {
            d.breaker = breakers[i].clone();
            d
        });
        runs.push(Run {
            diagnosis,
            kind: *kind,
            reqs,
            fault_at,
            heal_at,
            accepted: [at_fault[i], at_heal[i], proxy.accepted()],
            open_at_heal: open_at_heal[i],
        });
    }
    for (_, _, subject) in &rigs {
        subject.close().await;
    }
    drop(rigs);
    Ok(runs)
}
