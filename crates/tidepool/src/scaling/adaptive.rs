//! Adaptive configuration (seed 000's `AdaptiveConfigManager`), bounded by
//! what the user set and off unless asked for:
//!
//! - `connect_timeout` follows the observed connect time: four times its
//!   99th percentile, at least 1 s, never above the configured value — so a
//!   server that opens connections in 30 ms does not leave a caller hanging
//!   10 s on one that will never open.
//! - `validation_interval` halves after a connection fails validation (down
//!   to an eighth of the configured value) and relaxes by a quarter every
//!   30 quiet ticks, back to the configured value: a dying database is
//!   checked more often, a healthy one costs nothing extra.
//! - `leak_timeout` is only suggested (20 × the hold-time p99.9, at least
//!   1 s): a leak report is an alarm the user chose, not a knob to move.
//!
//! `idle_timeout` is not adapted: the warm target already keeps what demand
//! needs, and overflow closes on its own timer.
//!
//! The effective values live in atomics the checkout path reads (one
//! relaxed load where it used to read a config field).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::config::Config;

const QUIET_TICKS_TO_RELAX: u32 = 30;
const MIN_CONNECT_SAMPLES: u64 = 10;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The values the pool uses now, where adaptation may have moved them.
pub(crate) struct Tuned {
    connect_timeout: AtomicU64,
    validation_interval: AtomicU64,
}

impl Tuned {
    pub(crate) fn new(config: &Config) -> Self {
        Tuned {
            connect_timeout: AtomicU64::new(nanos(config.connect_timeout)),
            validation_interval: AtomicU64::new(nanos(config.validation_interval)),
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_nanos(self.connect_timeout.load(Relaxed))
    }

    pub(crate) fn validation_interval(&self) -> Duration {
        Duration::from_nanos(self.validation_interval.load(Relaxed))
    }
}

/// One knob moved, for the log and the event.
pub(crate) struct Tuning {
    pub knob: &'static str,
    pub from: Duration,
    pub to: Duration,
}

#[derive(Default)]
pub(crate) struct Adaptive {
    seen_validation_failures: u64,
    quiet_ticks: u32,
}

impl Adaptive {
    /// One tick. `create_p99` and `creates` are over the pool's life;
    /// `validation_failures` is the running count.
    pub(crate) fn update(
        &mut self,
        config: &Config,
        tuned: &Tuned,
        create_p99: Duration,
        creates: u64,
        validation_failures: u64,
    ) -> Vec<Tuning> {
        let mut moved = Vec::new();
        if creates >= MIN_CONNECT_SAMPLES {
            let wanted = (create_p99 * 4)
                .max(Duration::from_secs(1))
                .min(config.connect_timeout);
            let now = tuned.connect_timeout();
            // Move only on a real difference, so it does not chatter.
            if wanted.abs_diff(now) > now / 5 {
                tuned.connect_timeout.store(nanos(wanted), Relaxed);
                moved.push(Tuning {
                    knob: "connect_timeout",
                    from: now,
                    to: wanted,
                });
            }
        }
        let now = tuned.validation_interval();
        let floor = (config.validation_interval / 8).max(Duration::from_millis(10));
        let wanted = if validation_failures > self.seen_validation_failures {
            self.quiet_ticks = 0;
            (now / 2).max(floor.min(config.validation_interval))
        } else {
            self.quiet_ticks += 1;
            if self.quiet_ticks >= QUIET_TICKS_TO_RELAX {
                self.quiet_ticks = 0;
                (now + now / 4).min(config.validation_interval)
            } else {
                now
            }
        };
        self.seen_validation_failures = validation_failures;
        if wanted != now {
            tuned.validation_interval.store(nanos(wanted), Relaxed);
            moved.push(Tuning {
                knob: "validation_interval",
                from: now,
                to: wanted,
            });
        }
        moved
    }
}

/// The leak timeout the hold times suggest.
pub(crate) fn suggested_leak_timeout(hold_p999: Duration) -> Duration {
    (hold_p999 * 20).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeout_follows_the_connect_time_within_the_configured_bound() {
        let config = Config::default();
        let tuned = Tuned::new(&config);
        let mut a = Adaptive::default();
        a.update(&config, &tuned, Duration::from_millis(30), 50, 0);
        assert_eq!(tuned.connect_timeout(), Duration::from_secs(1));
        a.update(&config, &tuned, Duration::from_secs(60), 50, 0);
        assert_eq!(tuned.connect_timeout(), config.connect_timeout);
    }

    #[test]
    fn validation_interval_tightens_on_failure_and_relaxes_back_when_quiet() {
        let config = Config::default();
        let tuned = Tuned::new(&config);
        let mut a = Adaptive::default();
        a.update(&config, &tuned, Duration::ZERO, 0, 1);
        a.update(&config, &tuned, Duration::ZERO, 0, 2);
        assert_eq!(tuned.validation_interval(), config.validation_interval / 4);
        for _ in 0..1000 {
            a.update(&config, &tuned, Duration::ZERO, 0, 2);
        }
        assert_eq!(tuned.validation_interval(), config.validation_interval);
    }
}
