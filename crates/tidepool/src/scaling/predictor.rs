//! The demand forecaster behind predictive pre-warm: Holt's double
//! exponential smoothing (a level and a trend) over the demand series, one
//! sample per scaling tick. It follows a ramp with one step of lag where a
//! least-squares line over a window lags by half the window, and it needs
//! no matrix, only two numbers. Accuracy is the mean absolute percentage
//! error of its past forecasts against what then happened, over a fixed
//! window; memory is bounded by the window.

use std::collections::VecDeque;

/// Where the forecaster stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum PredictorState {
    /// Predictive pre-warm is off.
    #[default]
    Off,
    /// Too few samples to trust a forecast; not acting on it yet.
    Learning,
    /// Forecasting, and pre-warming to what it forecasts.
    Active,
}

const ALPHA: f64 = 0.5;
const BETA: f64 = 0.3;

pub(crate) struct Predictor {
    window: usize,
    level: Option<f64>,
    trend: f64,
    samples: usize,
    /// Forecasts made for future ticks: (tick it is for, value).
    pending: VecDeque<(u64, f64)>,
    /// Absolute percentage errors of forecasts that came due.
    errors: VecDeque<f64>,
    tick: u64,
}

impl Predictor {
    pub(crate) fn new(window: u32) -> Self {
        Predictor {
            window: window as usize,
            level: None,
            trend: 0.0,
            samples: 0,
            pending: VecDeque::new(),
            errors: VecDeque::new(),
            tick: 0,
        }
    }

    /// Adds this tick's demand.
    pub(crate) fn observe(&mut self, demand: f64) {
        self.tick += 1;
        while let Some(&(due, forecast)) = self.pending.front() {
            if due > self.tick {
                break;
            }
            self.pending.pop_front();
            if due == self.tick {
                // Percentage error against at least one connection, so an
                // idle pool does not divide by zero.
                self.errors
                    .push_back((forecast - demand).abs() / demand.max(1.0));
                if self.errors.len() > self.window {
                    self.errors.pop_front();
                }
            }
        }
        match self.level {
            None => self.level = Some(demand),
            Some(level) => {
                let next = ALPHA * demand + (1.0 - ALPHA) * (level + self.trend);
                self.trend = BETA * (next - level) + (1.0 - BETA) * self.trend;
                self.level = Some(next);
            }
        }
        self.samples += 1;
    }

    /// Demand forecast `steps` ticks ahead (never negative); remembered so
    /// its error is measured when that tick comes.
    pub(crate) fn forecast(&mut self, steps: u32) -> Option<f64> {
        let level = self.level?;
        let value = (level + self.trend * f64::from(steps)).max(0.0);
        self.pending
            .push_back((self.tick + u64::from(steps), value));
        if self.pending.len() > self.window.max(1) * 2 {
            self.pending.pop_front();
        }
        Some(value)
    }

    pub(crate) fn state(&self) -> PredictorState {
        if self.samples < (self.window / 3).max(5) {
            PredictorState::Learning
        } else {
            PredictorState::Active
        }
    }

    /// Mean absolute percentage error of recent forecasts, if any came due.
    pub(crate) fn mape(&self) -> Option<f64> {
        (!self.errors.is_empty())
            .then(|| self.errors.iter().sum::<f64>() / self.errors.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_learns_before_it_acts_and_follows_a_ramp_ahead() {
        let mut p = Predictor::new(30);
        for d in 0..5 {
            p.observe(f64::from(d));
        }
        assert_eq!(p.state(), PredictorState::Learning);
        for d in 5..40 {
            p.observe(f64::from(d));
            p.forecast(3);
        }
        assert_eq!(p.state(), PredictorState::Active);
        let f = p.forecast(3).unwrap();
        assert!((40.0..=44.0).contains(&f), "a ramp at 39 now, 3 ahead: {f}");
        assert!(p.mape().unwrap() < 0.1, "{:?}", p.mape());
    }

    #[test]
    fn a_flat_series_forecasts_flat_with_no_error() {
        let mut p = Predictor::new(10);
        for _ in 0..50 {
            p.observe(8.0);
            p.forecast(2);
        }
        assert!((p.forecast(2).unwrap() - 8.0).abs() < 1e-9);
        assert!(p.mape().unwrap() < 1e-9);
    }

    #[test]
    fn memory_stays_bounded_whatever_it_is_fed() {
        let mut p = Predictor::new(10);
        for i in 0..100_000u32 {
            p.observe(f64::from(i % 97));
            p.forecast(5);
        }
        assert!(p.pending.len() <= 20 && p.errors.len() <= 10);
    }
}
