//! The scaling tick: read the pool, ask the monitor, the predictor, the
//! controller, the concurrency limit and the adaptive configuration, then
//! apply what they decided under the pool's lock, log each decision once
//! with the numbers that drove it, count it and send it as an event. Also
//! `Pool::resize`, `Pool::load` and `Pool::effective_config`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::adaptive::{suggested_leak_timeout, Adaptive};
use super::controller::{lead_steps, Controller, Demand};
use super::limit::GradientLimit;
use super::monitor::{Load, Monitor, Reading};
use super::predictor::{Predictor, PredictorState};
use super::Strategy;
use crate::error::BuildError;
use crate::events::Event;
use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::pool::Pool;
use crate::shared::Shared;
use crate::waiters::Wakeups;

/// Why the warm target or the limit moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ScalingReason {
    /// Utilization passed `scale_up_threshold`.
    Utilization,
    /// Callers were queueing.
    Waiters,
    /// The forecaster expects demand to rise within the lead time.
    Forecast,
    /// Utilization stayed under `scale_down_threshold` for `cooldown`.
    LowUtilization,
    /// Latency rose above its baseline: the limit came down.
    LatencyRose,
    /// Latency held at its baseline under load: the limit went up.
    LatencySteady,
    /// [`Pool::resize`] moved the bounds.
    Resized,
}

impl ScalingReason {
    /// A short lowercase name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ScalingReason::Utilization => "utilization",
            ScalingReason::Waiters => "waiters",
            ScalingReason::Forecast => "forecast",
            ScalingReason::LowUtilization => "low_utilization",
            ScalingReason::LatencyRose => "latency_rose",
            ScalingReason::LatencySteady => "latency_steady",
            ScalingReason::Resized => "resized",
        }
    }
}

/// One move of the warm target or the limit, as logged and sent in
/// [`Event::Scaled`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ScalingDecision {
    /// `"warm_target"` or `"limit"`.
    pub knob: &'static str,
    /// The value before.
    pub from: usize,
    /// The value after.
    pub to: usize,
    /// Why.
    pub reason: ScalingReason,
    /// Demand (busy + queued, averaged over the window) that drove it.
    pub demand: f64,
    /// The load factor at the time.
    pub load_factor: f64,
}

/// What the pool runs with now, beside what was configured, from
/// [`Pool::effective_config`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EffectiveConfig {
    /// The scaling preset.
    pub strategy: Strategy,
    /// The floor (from the configuration or [`Pool::resize`]).
    pub min_size: usize,
    /// The hard cap (from the configuration or [`Pool::resize`]).
    pub max_size: usize,
    /// Connections kept open and ready.
    pub warm_target: usize,
    /// Connections that may be out at once.
    pub limit: usize,
    /// `connect_timeout` as configured, and as used now.
    pub connect_timeout: (Duration, Duration),
    /// `validation_interval` as configured, and as used now.
    pub validation_interval: (Duration, Duration),
    /// `leak_timeout` as configured, and what the hold times suggest.
    pub leak_timeout: (Option<Duration>, Duration),
    /// `idle_timeout` as configured (not adapted), and the shorter timeout
    /// overflow connections close after, if any.
    pub idle_timeout: (Option<Duration>, Option<Duration>),
    /// The forecaster's state.
    pub predictor: PredictorState,
    /// Its latest forecast of demand at the lead time.
    pub forecast: Option<f64>,
    /// Its mean absolute percentage error over recent forecasts.
    pub forecast_error: Option<f64>,
}

/// The tick's memory, behind one lock only the tick and readers take.
pub(crate) struct ScalingState {
    monitor: Monitor,
    controller: Controller,
    predictor: Predictor,
    limit: GradientLimit,
    adaptive: Adaptive,
    pub(crate) last_load: Load,
    forecast: Option<f64>,
}

impl ScalingState {
    pub(crate) fn new(config: &crate::Config) -> Self {
        ScalingState {
            monitor: Monitor::default(),
            controller: Controller::default(),
            predictor: Predictor::new(config.scaling.prediction_window),
            limit: GradientLimit::new(config.min_size as usize, config.max_size as usize),
            adaptive: Adaptive::default(),
            last_load: Load::default(),
            forecast: None,
        }
    }

    /// The concurrency limit to start with.
    pub(crate) fn initial_limit(&self, config: &crate::Config) -> usize {
        let (min, max) = (config.min_size as usize, config.max_size as usize);
        if config.scaling.adaptive_limit {
            self.limit.current(min, max)
        } else {
            max
        }
    }
}

impl<M: Manager> Shared<M> {
    /// One scaling tick.
    pub(crate) async fn scale_tick(self: &Arc<Self>) {
        let cfg = &self.config.scaling;
        let now = Instant::now();
        let (reading, min, max, warm, limit) = {
            let state = self.state.lock();
            (
                Reading {
                    at: now,
                    size: state.size(),
                    in_use: state.in_use,
                    waiting: state.waiting,
                    max_size: state.max_size,
                    acquire_wait: self.recorder.acquire_wait.buckets(),
                    hold_time: self.recorder.hold_time.buckets(),
                    create_time: self.recorder.create_time.buckets(),
                    create_failed: self.recorder.counters.create_failed.load(Relaxed),
                    timed_out: self.recorder.counters.timed_out.load(Relaxed),
                },
                state.min_size,
                state.max_size,
                state.warm_target,
                state.limit,
            )
        };
        let create_life = reading.create_time.clone();
        let healthy = self.breaker.is_healthy();
        let mut decisions: Vec<ScalingDecision> = Vec::new();
        let tunings = {
            let mut s = self.scaling.lock();
            let load = s.monitor.sample(reading);
            let demand = load.busy + load.queued;
            let mut forecast = None;
            if cfg.predictive {
                s.predictor.observe(demand);
                let lead = lead_steps(create_life.quantile(0.99), cfg.scale_interval);
                s.forecast = s.predictor.forecast(lead);
                if s.predictor.state() == PredictorState::Active {
                    forecast = s.forecast;
                }
            }
            // An open or degraded circuit means the database is in trouble:
            // no pre-warming into it, no resizing on its symptoms.
            if healthy && (cfg.autoscale || cfg.predictive) {
                let input = Demand {
                    demand,
                    waiting: load.waiting,
                    forecast,
                };
                // Under the adaptive limit, callers past it queue by
                // design: keeping more connections warm than may be out
                // at once would only hold server slots nobody can use.
                let top = if cfg.adaptive_limit {
                    limit.clamp(min, max)
                } else {
                    max
                };
                if let Some((to, reason)) = s.controller.decide(cfg, &input, warm, min, top, now) {
                    decisions.push(ScalingDecision {
                        knob: "warm_target",
                        from: warm,
                        to,
                        reason,
                        demand,
                        load_factor: load.load_factor,
                    });
                }
            }
            if healthy && cfg.adaptive_limit {
                let hold = (load.hold_time_mean > Duration::ZERO).then_some(load.hold_time_mean);
                let to = s.limit.update(hold, load.busy, min, max);
                if to != limit {
                    decisions.push(ScalingDecision {
                        knob: "limit",
                        from: limit,
                        to,
                        reason: if to < limit {
                            ScalingReason::LatencyRose
                        } else {
                            ScalingReason::LatencySteady
                        },
                        demand,
                        load_factor: load.load_factor,
                    });
                }
            }
            let tunings = if cfg.adaptive_config {
                let creates = create_life.count();
                s.adaptive.update(
                    &self.config,
                    &self.tuned,
                    create_life.quantile(0.99),
                    creates,
                    self.recorder.counters.closed_validation.load(Relaxed),
                )
            } else {
                Vec::new()
            };
            s.last_load = load;
            tunings
        };
        for d in &decisions {
            self.apply(d);
        }
        for t in tunings {
            tracing::info!(target: "tidepool::scaling", knob = t.knob, from = ?t.from, to = ?t.to, "adaptive configuration moved a knob");
            self.recorder.counters.tunings.fetch_add(1, Relaxed);
        }
        let floor = {
            let state = self.state.lock();
            state.warm_target.max(state.min_size)
        };
        if healthy && (cfg.autoscale || cfg.predictive) {
            if let Err(e) = self.top_up(floor).await {
                tracing::debug!(target: "tidepool::scaling", error = %e, "could not pre-warm to the warm target");
            }
        }
    }

    fn apply(&self, d: &ScalingDecision) {
        let mut wakeups = Wakeups::default();
        {
            let mut state = self.state.lock();
            match d.knob {
                "limit" => {
                    state.limit = d.to.clamp(state.min_size.max(1), state.max_size);
                    state.warm_target = state.warm_target.min(state.limit.max(state.min_size));
                    state.serve_within_limit(&mut wakeups);
                }
                _ => state.warm_target = d.to.clamp(state.min_size, state.max_size),
            }
        }
        wakeups.wake();
        let up = d.to > d.from;
        let counter = if up {
            &self.recorder.counters.scale_ups
        } else {
            &self.recorder.counters.scale_downs
        };
        counter.fetch_add(1, Relaxed);
        tracing::info!(
            target: "tidepool::scaling",
            knob = d.knob, from = d.from, to = d.to, reason = d.reason.as_str(),
            demand = format_args!("{:.1}", d.demand), load_factor = format_args!("{:.2}", d.load_factor),
            "scaling decision"
        );
        self.emit(|| Event::Scaled(d.clone()));
    }
}

impl<M: Manager> Pool<M> {
    /// The load over the last scaling window (see [`Load`]). Sampled on the
    /// scaling tick when any scaling part is on; otherwise read now from
    /// the pool's occupancy.
    pub fn load(&self) -> Load {
        let shared = self.shared();
        if shared.config.scaling.any_on() {
            return shared.scaling.lock().last_load.clone();
        }
        let state = shared.state.lock();
        let max = state.max_size.max(1) as f64;
        let size = state.size();
        Load {
            size,
            in_use: state.in_use,
            waiting: state.waiting,
            busy: state.in_use as f64,
            queued: state.waiting as f64,
            utilization: if size == 0 {
                0.0
            } else {
                state.in_use as f64 / size as f64
            },
            utilization_of_max: state.in_use as f64 / max,
            load_factor: ((state.in_use + state.waiting) as f64 / max).min(1.0),
            ..Load::default()
        }
    }

    /// What the pool runs with now, beside what was configured.
    pub fn effective_config(&self) -> EffectiveConfig {
        let shared = self.shared();
        let c = &shared.config;
        let (min_size, max_size, warm_target, limit) = {
            let state = shared.state.lock();
            (
                state.min_size,
                state.max_size,
                state.warm_target,
                state.limit,
            )
        };
        let hold = shared.recorder.hold_time.buckets();
        let s = shared.scaling.lock();
        EffectiveConfig {
            strategy: c.scaling.strategy,
            min_size,
            max_size,
            warm_target,
            limit,
            connect_timeout: (c.connect_timeout, shared.tuned.connect_timeout()),
            validation_interval: (c.validation_interval, shared.tuned.validation_interval()),
            leak_timeout: (c.leak_timeout, suggested_leak_timeout(hold.quantile(0.999))),
            idle_timeout: (c.idle_timeout, c.scaling.overflow_idle_timeout),
            predictor: if c.scaling.predictive {
                s.predictor.state()
            } else {
                PredictorState::Off
            },
            forecast: s.forecast,
            forecast_error: s.predictor.mape(),
        }
    }

    /// Changes `min_size` and `max_size` now. Shrinking closes idle
    /// connections past the new `max_size` at once and in-use ones as they
    /// come back; callers already waiting keep their place in the queue
    /// and are served, in order, as connections free up within the new
    /// bounds (or time out at their deadline). Growing lets waiters open
    /// connections at once. The warm target and the limit are kept inside
    /// the new bounds.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M).max_size(10).build().await?;
    /// pool.resize(2, 4)?;
    /// assert_eq!((pool.status().min_size, pool.status().max_size), (2, 4));
    /// assert!(pool.resize(5, 4).is_err(), "min above max is refused");
    /// # Ok(()) }
    /// ```
    pub fn resize(&self, min_size: u32, max_size: u32) -> Result<(), BuildError> {
        let mut check = self.shared().config.clone();
        check.min_size = min_size;
        check.max_size = max_size;
        check.initial_size = check.initial_size.min(max_size);
        check.validate()?;
        let shared = self.shared();
        let (min, max) = (min_size as usize, max_size as usize);
        let mut wakeups = Wakeups::default();
        let (surplus, from, to) = {
            let mut state = shared.state.lock();
            let from = (state.min_size, state.max_size);
            state.min_size = min;
            state.max_size = max;
            state.warm_target = state.warm_target.clamp(min, max);
            state.limit = if shared.config.scaling.adaptive_limit {
                state.limit.clamp(min.max(1), max)
            } else {
                max
            };
            let mut surplus = Vec::new();
            while state.size() > max {
                let Some(idle) = state.idle.pop_front() else {
                    break;
                };
                state.live.remove(&idle.meta.id);
                surplus.push(idle);
            }
            state.serve_within_limit(&mut wakeups);
            (surplus, from, (min, max))
        };
        wakeups.wake();
        for idle in surplus {
            shared.closed_one(idle.meta.id, CloseReason::Resized);
        }
        tracing::info!(target: "tidepool::scaling", ?from, ?to, "pool resized");
        shared.emit(|| {
            Event::Scaled(ScalingDecision {
                knob: "max_size",
                from: from.1,
                to: to.1,
                reason: ScalingReason::Resized,
                demand: 0.0,
                load_factor: 0.0,
            })
        });
        Ok(())
    }
}
