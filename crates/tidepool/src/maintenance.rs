//! The background tick, one task per pool, holding only a weak reference:
//! reap idle connections past `idle_timeout` (down to `min_size`), retire
//! connections past their lifetime, ping idle connections not checked
//! within `health_check_interval`, top up to `min_size`, and scan for
//! leaks. It never holds the pool alive: when the pool closes or its last
//! handle drops, the next tick ends the task.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use tokio::time::Instant;

use crate::events::Event;
use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::shared::{Creating, Idle, Shared};

pub(crate) fn spawn<M: Manager>(shared: &Arc<Shared<M>>) {
    let Some(token) = shared.maintenance_alive.claim() else {
        return;
    };
    let weak: Weak<Shared<M>> = Arc::downgrade(shared);
    let interval = shared.config.maintenance_interval;
    let scaling = shared.config.scaling.any_on();
    let scale_interval = shared.config.scaling.scale_interval;
    drop(shared.spawn(async move {
        let _token = token;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut scale_ticker =
            tokio::time::interval_at(Instant::now() + scale_interval, scale_interval);
        scale_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let scale = tokio::select! {
                _ = ticker.tick() => false,
                _ = scale_ticker.tick(), if scaling => true,
            };
            let Some(shared) = weak.upgrade() else { break };
            if shared.is_closed() {
                break;
            }
            if scale {
                shared.scale_tick().await;
            } else {
                shared.tick().await;
            }
        }
        tracing::trace!(target: "tidepool::maintenance", "maintenance task stopped");
    }));
}

impl<M: Manager> Shared<M> {
    pub(crate) async fn tick(self: &Arc<Self>) {
        self.reap_and_retire();
        self.ping_quiet_idle().await;
        let floor = {
            let state = self.state.lock();
            state.min_size.max(state.warm_target)
        };
        if let Err(e) = self.top_up(floor).await {
            tracing::debug!(target: "tidepool::maintenance", error = %e, "could not top up to min_size");
        }
        self.scan_for_leaks();
    }

    /// Closes idle connections past their lifetime, and those idle past
    /// `idle_timeout` while the pool is above `min_size`.
    pub(crate) fn reap_and_retire(&self) {
        let now = Instant::now();
        // Connections above the warm target are overflow: with a scaling
        // strategy they close after the shorter overflow idle timeout.
        let overflow_timeout = self.config.scaling.overflow_idle_timeout;
        let (idle_limit, reason) = match overflow_timeout {
            Some(t) => (Some(t), CloseReason::Overflow),
            None => (self.config.idle_timeout, CloseReason::IdleTimeout),
        };
        let mut doomed: Vec<(Idle<M::Connection>, CloseReason)> = Vec::new();
        {
            let mut state = self.state.lock();
            let floor = state.min_size.max(state.warm_target);
            let mut excess = state.size().saturating_sub(floor);
            let old = std::mem::take(&mut state.idle);
            for idle in old {
                if idle.meta.expired(now) {
                    excess = excess.saturating_sub(1);
                    doomed.push((idle, CloseReason::MaxLifetime));
                } else if self.is_evicted(&idle.meta) {
                    // Raced a soft_evict into the idle queue.
                    excess = excess.saturating_sub(1);
                    doomed.push((idle, CloseReason::Evicted));
                } else if excess > 0
                    && idle_limit.is_some_and(|t| idle.meta.idle_for(self.epoch, now) >= t)
                {
                    excess -= 1;
                    doomed.push((idle, reason));
                } else {
                    state.idle.push_back(idle);
                }
            }
            for (idle, _) in &doomed {
                state.live.remove(&idle.meta.id);
            }
        }
        for (idle, reason) in doomed {
            self.closed_one(idle.meta.id, reason);
        }
    }

    /// Pings idle connections that have been quiet past
    /// `health_check_interval`, one at a time, each under a permit so it
    /// counts as in use while it is checked.
    async fn ping_quiet_idle(&self) {
        if let Some(interval) = self.config.health_check_interval {
            self.ping_idle(interval).await;
        }
    }

    /// Pings the idle connections quiet for at least `interval`; returns
    /// how many it checked and how many failed (and were closed).
    pub(crate) async fn ping_idle(&self, interval: std::time::Duration) -> (usize, usize) {
        let (mut checked, mut failed) = (0, 0);
        let now = Instant::now();
        let quiet: Vec<u64> = {
            let state = self.state.lock();
            state
                .idle
                .iter()
                .filter(|i| i.meta.quiet_for(self.epoch, now) >= interval)
                .map(|i| i.meta.id)
                .collect()
        };
        for id in quiet {
            let Some(Idle { mut conn, meta, .. }) = self.take_idle_by_id(id) else {
                continue;
            };
            self.recorder.counters.validations.fetch_add(1, Relaxed);
            checked += 1;
            let outcome = tokio::time::timeout(
                self.config.validation_timeout,
                self.manager.validate(&mut conn),
            )
            .await;
            let ok = matches!(outcome, Ok(Ok(())));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    self.recorder
                        .counters
                        .validations_failed
                        .fetch_add(1, Relaxed);
                }
                Err(_) => {
                    self.recorder
                        .counters
                        .validations_timed_out
                        .fetch_add(1, Relaxed);
                }
            }
            if !ok {
                failed += 1;
            }
            if ok && !self.is_closed() {
                meta.mark_validated(self.epoch, Instant::now());
                self.release(conn, meta, true);
            } else {
                let reason = if ok {
                    CloseReason::PoolClosed
                } else {
                    CloseReason::FailedValidation
                };
                if !ok {
                    tracing::info!(target: "tidepool::maintenance", id = meta.id, "idle connection failed its health check; closed");
                }
                self.discard_in_use(conn, &meta, reason);
            }
        }
        (checked, failed)
    }

    /// Opens connections until the pool holds `target` (never past
    /// `max_size`, and never while callers wait: they have first claim on
    /// any room). Stops at the first failure.
    pub(crate) async fn top_up(self: &Arc<Self>, target: usize) -> Result<(), String> {
        while !self.is_closed() && self.state.lock().size() < target {
            // An open circuit means the database is down: leave probing to
            // the breaker's schedule instead of hammering it every tick.
            let Ok(_admission) = self.breaker.admit() else {
                return Ok(());
            };
            if !self.reserve_for_top_up(target) {
                return Ok(());
            }
            let creating = Creating::new(self.clone());
            let gate = self.pass_gate().await;
            match self
                .connect_once(self.tuned.connect_timeout(), gate, None)
                .await
            {
                Ok(conn) => {
                    let meta = creating.finish(Instant::now());
                    self.release(conn, meta, false);
                }
                Err(crate::acquire::CreateFailure::Error { error, .. }) => {
                    return Err(error.to_string())
                }
                Err(crate::acquire::CreateFailure::TimedOut(limit)) => {
                    return Err(format!("connecting timed out after {limit:?}"))
                }
                Err(crate::acquire::CreateFailure::AtCapacity { open, .. }) => {
                    return Err(format!(
                        "the server is at its connection limit ({open} open)"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Opens `n` connections at build time.
    pub(crate) async fn warm_up(self: &Arc<Self>, n: usize) -> Result<(), String> {
        self.top_up(n.min(self.config.max_size as usize)).await
    }

    /// Reports each checkout held past `leak_timeout`, once.
    fn scan_for_leaks(&self) {
        let Some(limit) = self.config.leak_timeout else {
            return;
        };
        let now = Instant::now();
        let live: Vec<_> = self.state.lock().live.values().cloned().collect();
        for meta in live {
            if let Some((held, location, backtrace)) = meta.take_leak(self.epoch, now, limit) {
                self.recorder.counters.leaks_detected.fetch_add(1, Relaxed);
                match &backtrace {
                    Some(bt) => tracing::warn!(
                        target: "tidepool::leak",
                        id = meta.id, ?held, %location, backtrace = %bt,
                        "connection held past leak_timeout; possible leak"
                    ),
                    None => tracing::warn!(
                        target: "tidepool::leak",
                        id = meta.id, ?held, %location,
                        "connection held past leak_timeout; possible leak"
                    ),
                }
                self.emit(|| Event::Leak {
                    id: meta.id,
                    held,
                    location,
                });
            }
        }
    }
}
