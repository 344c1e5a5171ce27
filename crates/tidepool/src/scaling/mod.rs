//! Adaptive capacity: the pool sizes itself. Three numbers, always
//! `min_size <= warm_target <= max_size` and `min_size <= limit <= max_size`:
//!
//! - the **warm target** — connections kept open and ready. The
//!   controller ([`controller`]) moves it with demand (up past
//!   `scale_up_threshold`, down after `cooldown` under
//!   `scale_down_threshold`), the predictor ([`predictor`]) lifts it ahead
//!   of a ramp, the reaper never closes below it, and the maintenance task
//!   opens up to it through the same opening path and breaker gate as any
//!   acquire. Connections above it are *overflow*: opened for a burst,
//!   closed after `overflow_idle_timeout` idle.
//! - the **limit** — connections out at once. Equal to `max_size` unless
//!   the adaptive concurrency limit ([`limit`]) is on; callers past it wait
//!   in the same FIFO queue as everyone else.
//! - `max_size` — the hard cap of invariant 1, movable with
//!   [`Pool::resize`](crate::Pool::resize).
//!
//! Every decision is made on the scaling tick from figures the checkout
//! path already keeps (counters and histograms); nothing here runs per
//! checkout. [`Strategy`] presets set the knobs; each can be set on top.

pub(crate) mod adaptive;
pub(crate) mod apply;
pub(crate) mod controller;
pub(crate) mod limit;
pub(crate) mod monitor;
pub(crate) mod predictor;

use std::time::Duration;

use crate::error::BuildError;

pub use apply::{EffectiveConfig, ScalingDecision, ScalingReason};
pub use monitor::Load;
pub use predictor::PredictorState;

/// A preset of the scaling knobs. Each is a table in the core README.
///
/// ```
/// use tidepool::{ScalingConfig, Strategy};
/// let balanced = ScalingConfig::preset(Strategy::Balanced);
/// assert!(balanced.autoscale && !balanced.adaptive_limit);
/// assert_eq!("high-throughput".parse::<Strategy>(), Ok(Strategy::HighThroughput));
/// assert!("fastest".parse::<Strategy>().unwrap_err().contains("balanced"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum Strategy {
    /// Today's behaviour: grow on demand up to `max_size`, shrink by
    /// `idle_timeout` to `min_size`. The default.
    #[default]
    Fixed,
    /// Keep a warm target that follows demand, with hysteresis; close
    /// burst connections soon after the burst.
    Balanced,
    /// Keep more connections warm and reap slowly.
    HighThroughput,
    /// Pre-warm aggressively (predictor on), check idle connections more
    /// often.
    LowLatency,
    /// Everything on: warm target, predictor, adaptive concurrency limit,
    /// adaptive configuration.
    Dynamic,
}

impl Strategy {
    /// Every strategy, in the order the docs list them.
    pub const ALL: [Strategy; 5] = [
        Strategy::Fixed,
        Strategy::Balanced,
        Strategy::HighThroughput,
        Strategy::LowLatency,
        Strategy::Dynamic,
    ];

    /// The name used in TOML and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Fixed => "fixed",
            Strategy::Balanced => "balanced",
            Strategy::HighThroughput => "high-throughput",
            Strategy::LowLatency => "low-latency",
            Strategy::Dynamic => "dynamic",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    /// Parses a strategy name; the error lists the known ones.
    fn from_str(s: &str) -> Result<Self, String> {
        Strategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase().replace('_', "-"))
            .ok_or_else(|| {
                let known: Vec<_> = Strategy::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown strategy `{s}`; known: {}", known.join(", "))
            })
    }
}

/// The scaling knobs. Start from a [`preset`](ScalingConfig::preset) and
/// change what you need; [`Builder::strategy`](crate::Builder::strategy)
/// and [`Builder::scaling`](crate::Builder::scaling) set them, and in
/// TOML a `[pool.scaling]` table names a `strategy` and overrides on top.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "crate::scaling::ScalingToml"))]
#[non_exhaustive]
pub struct ScalingConfig {
    /// The preset these knobs started from (informational).
    pub strategy: Strategy,
    /// Move the warm target with demand. Off under `fixed`.
    pub autoscale: bool,
    /// How often scaling decisions are made. Default 1 s (250 ms under
    /// `dynamic`, whose concurrency limit needs quicker samples).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub scale_interval: Duration,
    /// The utilization (busy ÷ warm target) the controller sizes for when
    /// it moves the target. Default 0.7.
    pub target_utilization: f64,
    /// Utilization above which the warm target grows. Default 0.8.
    pub scale_up_threshold: f64,
    /// Utilization below which, held for `cooldown`, it shrinks.
    /// Default 0.3.
    pub scale_down_threshold: f64,
    /// The factor a step up multiplies the target by, at least. Must be
    /// above 1. Default 1.5.
    pub growth_factor: f64,
    /// The factor a step down multiplies the target by, at most. Between
    /// 0 and 1. Default 0.8.
    pub shrink_factor: f64,
    /// How long utilization must stay low before a step down, and the
    /// least time between two changes of direction. Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub cooldown: Duration,
    /// Idle connections above the warm target (overflow) close after this
    /// long idle, instead of `idle_timeout`. `None` uses `idle_timeout`.
    /// Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub overflow_idle_timeout: Option<Duration>,
    /// Forecast demand and pre-warm ahead of a ramp. Default off (on under
    /// `low-latency` and `dynamic`).
    pub predictive: bool,
    /// Samples (scaling ticks) the forecaster learns from. Default 30.
    pub prediction_window: u32,
    /// Move the concurrency limit by the latency gradient. Default off (on
    /// under `dynamic`).
    pub adaptive_limit: bool,
    /// Tune `connect_timeout`, `validation_interval` and `idle_timeout`
    /// from what the pool observes, within bounds. Default off (on under
    /// `dynamic`).
    pub adaptive_config: bool,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        ScalingConfig::preset(Strategy::Fixed)
    }
}

impl ScalingConfig {
    /// The knobs of one strategy.
    pub fn preset(strategy: Strategy) -> Self {
        let base = ScalingConfig {
            strategy,
            autoscale: false,
            scale_interval: Duration::from_secs(1),
            target_utilization: 0.7,
            scale_up_threshold: 0.8,
            scale_down_threshold: 0.3,
            growth_factor: 1.5,
            shrink_factor: 0.8,
            cooldown: Duration::from_secs(30),
            overflow_idle_timeout: Some(Duration::from_secs(30)),
            predictive: false,
            prediction_window: 30,
            adaptive_limit: false,
            adaptive_config: false,
        };
        match strategy {
            Strategy::Fixed => ScalingConfig {
                overflow_idle_timeout: None,
                ..base
            },
            Strategy::Balanced => ScalingConfig {
                autoscale: true,
                ..base
            },
            Strategy::HighThroughput => ScalingConfig {
                autoscale: true,
                target_utilization: 0.6,
                scale_up_threshold: 0.7,
                scale_down_threshold: 0.2,
                growth_factor: 2.0,
                shrink_factor: 0.9,
                cooldown: Duration::from_secs(60),
                overflow_idle_timeout: Some(Duration::from_secs(120)),
                ..base
            },
            Strategy::LowLatency => ScalingConfig {
                autoscale: true,
                target_utilization: 0.6,
                scale_up_threshold: 0.7,
                scale_down_threshold: 0.2,
                growth_factor: 2.0,
                cooldown: Duration::from_secs(60),
                overflow_idle_timeout: Some(Duration::from_secs(60)),
                predictive: true,
                ..base
            },
            Strategy::Dynamic => ScalingConfig {
                autoscale: true,
                scale_interval: Duration::from_millis(250),
                predictive: true,
                adaptive_limit: true,
                adaptive_config: true,
                ..base
            },
        }
    }

    /// Whether any part is on (the scaling tick runs at all).
    pub(crate) fn any_on(&self) -> bool {
        self.autoscale || self.predictive || self.adaptive_limit || self.adaptive_config
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        let invalid =
            |field: &'static str, reason: String| Err(BuildError::InvalidConfig { field, reason });
        let unit = |x: f64| x > 0.0 && x < 1.0;
        if self.scale_interval.is_zero() {
            return invalid("scaling.scale_interval", "must be greater than zero".into());
        }
        if !unit(self.target_utilization) {
            return invalid(
                "scaling.target_utilization",
                format!("must be between 0 and 1 (got {})", self.target_utilization),
            );
        }
        if !unit(self.scale_up_threshold) && self.scale_up_threshold != 1.0 {
            return invalid(
                "scaling.scale_up_threshold",
                format!("must be in (0, 1] (got {})", self.scale_up_threshold),
            );
        }
        if !(self.scale_down_threshold > 0.0 && self.scale_down_threshold < self.scale_up_threshold)
        {
            return invalid(
                "scaling.scale_down_threshold",
                format!(
                    "must be above 0 and below scale_up_threshold ({}) (got {})",
                    self.scale_up_threshold, self.scale_down_threshold
                ),
            );
        }
        if !(self.growth_factor > 1.0 && self.growth_factor <= 10.0) {
            return invalid(
                "scaling.growth_factor",
                format!(
                    "must be above 1 and at most 10 (got {})",
                    self.growth_factor
                ),
            );
        }
        if !unit(self.shrink_factor) {
            return invalid(
                "scaling.shrink_factor",
                format!("must be between 0 and 1 (got {})", self.shrink_factor),
            );
        }
        if self.cooldown.is_zero() {
            return invalid("scaling.cooldown", "must be greater than zero".into());
        }
        if self.overflow_idle_timeout.is_some_and(|d| d.is_zero()) {
            return invalid(
                "scaling.overflow_idle_timeout",
                "must be greater than zero (use None to use idle_timeout)".into(),
            );
        }
        if !(3..=1000).contains(&self.prediction_window) {
            return invalid(
                "scaling.prediction_window",
                format!("must be 3 to 1000 samples (got {})", self.prediction_window),
            );
        }
        Ok(())
    }
}

/// The TOML/JSON shape of `[pool.scaling]`: a strategy, then overrides.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScalingToml {
    strategy: Option<Strategy>,
    autoscale: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    scale_interval: Option<Duration>,
    target_utilization: Option<f64>,
    scale_up_threshold: Option<f64>,
    scale_down_threshold: Option<f64>,
    growth_factor: Option<f64>,
    shrink_factor: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    cooldown: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    overflow_idle_timeout: Option<Duration>,
    predictive: Option<bool>,
    prediction_window: Option<u32>,
    adaptive_limit: Option<bool>,
    adaptive_config: Option<bool>,
}

#[cfg(feature = "serde")]
impl TryFrom<ScalingToml> for ScalingConfig {
    type Error = String;

    fn try_from(t: ScalingToml) -> Result<Self, String> {
        let mut c = ScalingConfig::preset(t.strategy.unwrap_or_default());
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = t.$f { c.$f = v; } )* };
        }
        over!(
            autoscale,
            scale_interval,
            target_utilization,
            scale_up_threshold,
            scale_down_threshold,
            growth_factor,
            shrink_factor,
            cooldown,
            predictive,
            prediction_window,
            adaptive_limit,
            adaptive_config
        );
        if let Some(v) = t.overflow_idle_timeout {
            c.overflow_idle_timeout = Some(v);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(c: ScalingConfig) -> &'static str {
        match c.validate() {
            Err(BuildError::InvalidConfig { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn every_preset_is_valid() {
        for s in Strategy::ALL {
            assert!(ScalingConfig::preset(s).validate().is_ok(), "{s}");
        }
    }

    #[test]
    fn bad_knobs_are_refused_naming_the_field() {
        let b = || ScalingConfig::preset(Strategy::Balanced);
        let mut c = b();
        c.scale_down_threshold = 0.9;
        assert_eq!(field(c), "scaling.scale_down_threshold");
        let mut c = b();
        c.growth_factor = 1.0;
        assert_eq!(field(c), "scaling.growth_factor");
        let mut c = b();
        c.cooldown = Duration::ZERO;
        assert_eq!(field(c), "scaling.cooldown");
        let mut c = b();
        c.target_utilization = 1.5;
        assert_eq!(field(c), "scaling.target_utilization");
        let mut c = b();
        c.shrink_factor = 1.0;
        assert_eq!(field(c), "scaling.shrink_factor");
    }

    #[test]
    fn strategy_names_round_trip_and_unknown_ones_list_the_known() {
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>(), Ok(s));
        }
        let err = "turbo".parse::<Strategy>().unwrap_err();
        for s in Strategy::ALL {
            assert!(err.contains(s.as_str()), "{err}");
        }
    }
}
