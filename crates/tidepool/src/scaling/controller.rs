//! The warm-target controller: pure arithmetic over the demand the monitor
//! measured, so scripted load traces can drive it step by step.
//!
//! Up: when utilization (demand ÷ target) passes `scale_up_threshold`, or
//! callers queue, the target grows by `growth_factor` at least, and to what
//! keeps utilization at `target_utilization` — at once, every tick it is
//! needed: a queue is the one thing a pool must not keep. Down: only after
//! utilization has stayed under `scale_down_threshold` for `cooldown`, and
//! at least `cooldown` after the last step up, by `shrink_factor` at most
//! and never below what demand needs. So the direction changes at most once
//! per cooldown, and it never flaps.

use std::time::Duration;

use tokio::time::Instant;

use super::apply::ScalingReason;
use super::ScalingConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

#[derive(Default)]
pub(crate) struct Controller {
    low_since: Option<Instant>,
    last_change: Option<(Instant, Direction)>,
}

/// One tick's input.
pub(crate) struct Demand {
    /// Busy connections plus queued callers, averaged over the window.
    pub demand: f64,
    /// Callers waiting now.
    pub waiting: usize,
    /// A forecast of demand `lead_time` ahead, if the predictor is active.
    pub forecast: Option<f64>,
}

impl Controller {
    /// The new warm target, if it should change, and why.
    pub(crate) fn decide(
        &mut self,
        cfg: &ScalingConfig,
        input: &Demand,
        target: usize,
        min: usize,
        max: usize,
        now: Instant,
    ) -> Option<(usize, ScalingReason)> {
        let target = target.clamp(min, max);
        let sized = |d: f64| (d / cfg.target_utilization).ceil() as usize;
        let utilization = input.demand / target.max(1) as f64;

        if utilization > cfg.scale_up_threshold || input.waiting > 0 {
            self.low_since = None;
            let grown = ((target.max(1) as f64) * cfg.growth_factor).ceil() as usize;
            let new = grown.max(sized(input.demand)).clamp(min, max);
            if new > target {
                self.last_change = Some((now, Direction::Up));
                let reason = if input.waiting > 0 {
                    ScalingReason::Waiters
                } else {
                    ScalingReason::Utilization
                };
                return Some((new, reason));
            }
            return None;
        }

        if let Some(forecast) = input.forecast {
            let wanted = sized(forecast).clamp(min, max);
            if wanted > target {
                self.low_since = None;
                self.last_change = Some((now, Direction::Up));
                return Some((wanted, ScalingReason::Forecast));
            }
        }

        if utilization < cfg.scale_down_threshold && target > min {
            let since = *self.low_since.get_or_insert(now);
            let quiet_long_enough = now.saturating_duration_since(since) >= cfg.cooldown;
            let up_long_ago = self.last_change.is_none_or(|(at, dir)| {
                dir == Direction::Down || now.saturating_duration_since(at) >= cfg.cooldown
            });
            if quiet_long_enough && up_long_ago {
                let shrunk = ((target as f64) * cfg.shrink_factor).floor() as usize;
                let floor = sized(input.demand).max(sized(input.forecast.unwrap_or(0.0)));
                let new = shrunk.max(floor).clamp(min, max);
                if new < target {
                    self.last_change = Some((now, Direction::Down));
                    // The next step down waits a full cooldown again.
                    self.low_since = Some(now);
                    return Some((new, ScalingReason::LowUtilization));
                }
            }
            return None;
        }
        self.low_since = None;
        None
    }
}

/// How many ticks ahead a forecast must look for a connection opened now
/// to be ready in time: the observed connect time, rounded up, plus one.
pub(crate) fn lead_steps(create_p99: Duration, interval: Duration) -> u32 {
    let ticks = create_p99.as_secs_f64() / interval.as_secs_f64().max(1e-9);
    (ticks.ceil() as u32).saturating_add(1).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::Strategy;

    const TICK: Duration = Duration::from_secs(1);

    fn balanced() -> ScalingConfig {
        ScalingConfig {
            cooldown: Duration::from_secs(5),
            ..ScalingConfig::preset(Strategy::Balanced)
        }
    }

    /// Runs a demand trace, one value per tick; returns the target after
    /// each tick.
    fn run(trace: &[f64], start: usize, min: usize, max: usize) -> Vec<usize> {
        let cfg = balanced();
        let mut c = Controller::default();
        let mut target = start;
        let t0 = Instant::now();
        trace
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let input = Demand {
                    demand: d,
                    waiting: 0,
                    forecast: None,
                };
                if let Some((new, _)) =
                    c.decide(&cfg, &input, target, min, max, t0 + TICK * i as u32)
                {
                    assert!(new >= min && new <= max);
                    target = new;
                }
                target
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_ramp_is_followed_up_at_once_and_never_past_max() {
        let trace: Vec<f64> = (0..20).map(|i| f64::from(i) * 2.0).collect();
        let targets = run(&trace, 2, 2, 30);
        for (i, (&t, &d)) in targets.iter().zip(&trace).enumerate() {
            assert!(
                t as f64 >= (d / 0.8).min(30.0) - 1.0,
                "tick {i}: demand {d}, target {t}"
            );
        }
        assert_eq!(*targets.last().unwrap(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_grows_the_target_and_decay_shrinks_it_only_after_the_cooldown() {
        let mut trace = vec![20.0; 3];
        trace.extend(vec![1.0; 20]);
        let targets = run(&trace, 4, 2, 40);
        assert!(targets[0] >= 25, "{targets:?}");
        // No step down within 5 s of the burst.
        assert!(targets[..8].iter().all(|&t| t == targets[2]), "{targets:?}");
        assert!(targets[22] < targets[2], "{targets:?}");
        assert!(targets.iter().all(|&t| t >= 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_square_wave_changes_direction_at_most_once_per_cooldown() {
        let trace: Vec<f64> = (0..60)
            .map(|i| if (i / 2) % 2 == 0 { 30.0 } else { 2.0 })
            .collect();
        let targets = run(&trace, 4, 2, 40);
        let mut changes = Vec::new();
        let mut last_dir = 0i32;
        for i in 1..targets.len() {
            let dir = (targets[i] as i32 - targets[i - 1] as i32).signum();
            if dir != 0 && dir != last_dir {
                if last_dir != 0 {
                    changes.push(i);
                }
                last_dir = dir;
            }
        }
        for w in changes.windows(2) {
            assert!(
                w[1] - w[0] >= 5,
                "direction changed twice within a cooldown: {targets:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_always_push_the_target_up_and_min_is_a_floor() {
        let cfg = balanced();
        let mut c = Controller::default();
        let now = Instant::now();
        let input = Demand {
            demand: 1.0,
            waiting: 3,
            forecast: None,
        };
        let (new, reason) = c.decide(&cfg, &input, 4, 2, 10, now).unwrap();
        assert_eq!((new, reason), (6, ScalingReason::Waiters));
        let idle = Demand {
            demand: 0.0,
            waiting: 0,
            forecast: None,
        };
        let mut target = 10;
        for i in 0..100u32 {
            if let Some((t, _)) = c.decide(&cfg, &idle, target, 2, 10, now + TICK * i) {
                target = t;
            }
        }
        assert_eq!(target, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forecast_pre_warms_before_demand_arrives() {
        let cfg = balanced();
        let mut c = Controller::default();
        let input = Demand {
            demand: 2.0,
            waiting: 0,
            forecast: Some(14.0),
        };
        let (new, reason) = c.decide(&cfg, &input, 4, 0, 40, Instant::now()).unwrap();
        assert_eq!(reason, ScalingReason::Forecast);
        assert_eq!(new, 20, "14 at 0.7 utilization");
    }

    #[test]
    fn lead_time_covers_the_connect_time() {
        assert_eq!(
            lead_steps(Duration::from_millis(40), Duration::from_millis(250)),
            2
        );
        assert_eq!(lead_steps(Duration::ZERO, Duration::from_secs(1)), 1);
    }
}
