//! One scenario run: all five pools at once, each behind its own proxy,
//! under the same open-loop load (a new request every `interval`, each an
//! independent task with an overall deadline), with the fault switched on
//! and off on every proxy at the same instant, or made once on the server
//! they share. Returns every request's
//! start, end and outcome, and the proxies' accept counts at the fault's
//! edges; [`crate::figures`] turns that into numbers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tidepool_testkit::proxy::{Fault, FaultProxy};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::server::{Cluster, Server};
use crate::subjects::{Diagnosis, Kind, Settings, Subject, DEADLINE};
use crate::FigureError;

/// The faults of the figures.
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
    /// (f) The PostgreSQL cluster restarts in immediate mode (issue 5's
    /// scenario 3): every session dies at once, and the server refuses
    /// connections until it has recovered.
    Restart,
    /// (g) `pg_terminate_backend` of every session of every pool at once
    /// (scenario 4); the server stays up.
    Terminate,
}

/// How a scenario's fault is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Switched on every proxy for a fixed window, then lifted.
    Proxy(Fault),
    /// A server restart; the fault lasts until the server answers again.
    Restart,
    /// One statement that terminates the sessions; nothing to lift.
    Terminate,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Down,
        Scenario::BlackHole,
        Scenario::Rst,
        Scenario::Latency,
        Scenario::Restart,
        Scenario::Terminate,
    ];

    pub fn trigger(self) -> Trigger {
        match self {
            Scenario::Down | Scenario::Rst => Trigger::Proxy(Fault::Reset),
            Scenario::BlackHole => Trigger::Proxy(Fault::BlackHole),
            Scenario::Latency => Trigger::Proxy(Fault::Latency {
                to_server: Duration::from_millis(200),
                to_client: Duration::from_millis(200),
            }),
            Scenario::Restart => Trigger::Restart,
            Scenario::Terminate => Trigger::Terminate,
        }
    }

    /// What the fault's measured length spans, where it is not set.
    pub fn measured_window(self) -> &'static str {
        match self {
            Scenario::Restart => {
                "from the restart command to the server, seen down, answering a query again"
            }
            Scenario::Terminate => "the terminating statement",
            _ => "set by the command line",
        }
    }

    pub fn letter(self) -> char {
        match self {
            Scenario::Down => 'a',
            Scenario::BlackHole => 'b',
            Scenario::Rst => 'c',
            Scenario::Latency => 'd',
            Scenario::Restart => 'f',
            Scenario::Terminate => 'g',
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Scenario::Down => "database down (RST on every connection, existing and new)",
            Scenario::BlackHole => "black hole (established and new connections)",
            Scenario::Rst => "momentary RST of every connection",
            Scenario::Latency => "+200 ms latency each way",
            Scenario::Restart => "PostgreSQL restarted (`pg_ctlcluster ... restart -m immediate`)",
            Scenario::Terminate => "`pg_terminate_backend` of every pool's sessions",
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
    /// How long the fault lasts, when that is set rather than measured
    /// (a restart lasts until the server answers; a terminate is a moment).
    pub fn window(&self, scenario: Scenario) -> Option<Duration> {
        match scenario {
            Scenario::Rst => Some(self.rst_fault),
            Scenario::Down | Scenario::BlackHole | Scenario::Latency => Some(self.fault),
            Scenario::Restart | Scenario::Terminate => None,
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

/// Where a scenario runs: the server, and (for (f)) the cluster this
/// process may restart.
pub struct Target<'a> {
    pub proxies: &'a tokio::runtime::Handle,
    pub server: &'a Server,
    pub cluster: Option<&'a Cluster>,
}

/// Runs `scenario` once for every pool in `order`, all at the same time.
pub async fn run(
    scenario: Scenario,
    order: &[Kind],
    settings: &Settings,
    timing: &Timing,
    target: &Target<'_>,
) -> Result<Vec<Run>, FigureError> {
    let mut rigs = Vec::with_capacity(order.len());
    let mut apps = Vec::with_capacity(order.len());
    for &kind in order {
        let proxy = start_proxy(target.proxies, target.server.upstream).await?;
        let app = app_name(kind);
        let subject = Arc::new(Subject::build(kind, proxy.port(), &app, settings)?);
        rigs.push((kind, proxy, subject));
        apps.push(app);
    }
    let t0 = Instant::now();
    // The load runs until the heal is known (a restart takes what it
    // takes) plus the healed phase.
    let (end_tx, mut end_rx) = tokio::sync::watch::channel(None::<Instant>);

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
            if end_rx.borrow_and_update().is_some_and(|end| at >= end) {
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
    let mut restarting = None;
    let made = match scenario.trigger() {
        Trigger::Proxy(fault) => {
            for (_, proxy, _) in &rigs {
                proxy.set(fault);
            }
            let window = timing.window(scenario).unwrap_or_default();
            tokio::time::sleep_until(t0 + timing.healthy + window).await;
            Ok(())
        }
        Trigger::Restart => match target.cluster {
            Some(cluster) => target
                .server
                .restart(cluster)
                .await
                .map(|r| restarting = Some(r)),
            None => Err(FigureError::Server(
                "scenario f needs a cluster to restart".into(),
            )),
        },
        Trigger::Terminate => target.server.terminate(&apps).await.map(drop),
    };
    let heal_at = t0.elapsed();
    let at_heal: Vec<u64> = rigs.iter().map(|(_, p, _)| p.accepted()).collect();
    let open_at_heal: Vec<usize> = rigs.iter().map(|(_, p, _)| p.open_connections()).collect();
    for (_, proxy, _) in &rigs {
        proxy.set(Fault::PassThrough);
    }
    // Stop the load even when the fault could not be made, so no task
    // outlives the run.
    let _ = end_tx.send(Some(t0 + heal_at + timing.healed));
    let load = load.await.map_err(|e| FigureError::Task(e.to_string()));
    made?;
    if let Some(restarting) = restarting {
        restarting.finish().await?;
    }
    let (handles, breakers) = load?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_its_own_letter_and_a_window_only_where_one_is_set() {
        let letters: std::collections::BTreeSet<char> =
            Scenario::ALL.iter().map(|s| s.letter()).collect();
        assert_eq!(letters.len(), Scenario::ALL.len());
        assert!(
            !letters.contains(&'e'),
            "(e) is the dead-acquire run, not a scenario"
        );
        let timing = Timing {
            healthy: Duration::from_secs(2),
            fault: Duration::from_secs(4),
            rst_fault: Duration::from_millis(200),
            healed: Duration::from_secs(6),
            interval: Duration::from_millis(10),
            deadline: Duration::from_secs(3),
        };
        for s in Scenario::ALL {
            match s.trigger() {
                Trigger::Proxy(_) => assert!(timing.window(s).is_some(), "{s:?}"),
                Trigger::Restart | Trigger::Terminate => {
                    assert_eq!(timing.window(s), None, "{s:?}")
                }
            }
        }
        assert_eq!(
            timing.window(Scenario::Rst),
            Some(Duration::from_millis(200))
        );
    }
}
