//! The two pool configurations a benchmark compares, stated exactly: the
//! baseline (a fixed-size pool with the extras off) and the tuned one (a
//! `[pool]` table from the settings file, or the documented default below).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::settings::BenchSettings;

use super::results::ConfigurationInfo;

/// One side of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Configuration {
    pub name: &'static str,
    tuned: bool,
}

/// Baseline first, then tuned: each level runs both back to back.
pub fn both(_settings: &BenchSettings) -> [Configuration; 2] {
    [
        Configuration {
            name: "baseline",
            tuned: false,
        },
        Configuration {
            name: "tuned",
            tuned: true,
        },
    ]
}

/// The baseline: `size` connections opened up front and kept, nothing
/// checked, nothing retired.
pub fn baseline(size: u32, acquire_timeout: Duration) -> tidepool::Config {
    let mut c = tidepool::Config::default();
    c.min_size = size;
    c.max_size = size;
    c.initial_size = size;
    c.acquire_timeout = acquire_timeout;
    c.test_on_borrow = false;
    c.health_check_interval = None;
    c.leak_timeout = None;
    c.idle_timeout = None;
    c.max_lifetime = None;
    c.slow_acquire_threshold = None;
    c
}

/// The default tuned configuration for `level` concurrent clients.
pub fn tuned_default(level: u32, acquire_timeout: Duration) -> tidepool::Config {
    let mut c = tidepool::Config::default();
    let floor = (level / 4).max(2).min(level);
    c.max_size = level;
    c.min_size = floor;
    c.initial_size = floor;
    c.acquire_timeout = acquire_timeout;
    c.test_on_borrow = true;
    c.validation_interval = Duration::from_millis(500);
    c.health_check_interval = Some(Duration::from_secs(30));
    c.leak_timeout = Some(Duration::from_secs(30));
    c.idle_timeout = Some(Duration::from_secs(60));
    c.max_lifetime = Some(Duration::from_secs(1800));
    c.slow_acquire_threshold = None;
    c
}

impl Configuration {
    /// The pool configuration this side uses at `level`.
    pub fn pool_config(&self, level: u32, settings: &BenchSettings) -> tidepool::Config {
        match (self.tuned, &settings.tuned) {
            (false, _) => baseline(settings.baseline_size, settings.acquire_timeout),
            (true, Some(file)) => file.clone(),
            (true, None) => tuned_default(level, settings.acquire_timeout),
        }
    }

    /// A one-line description for the report.
    pub fn describe(&self, settings: &BenchSettings) -> String {
        let t = humantime::format_duration;
        match (self.tuned, &settings.tuned) {
            (false, _) => format!(
                "fixed pool of {n} (min = max = initial = {n}), no validation on borrow, no health checks, no leak detection, no idle timeout, no lifetime limit",
                n = settings.baseline_size
            ),
            (true, Some(c)) => format!(
                "from the settings file's [pool] table: min {} / max {} / initial {}, test_on_borrow {}, validation_interval {}, leak detection {}",
                c.min_size,
                c.max_size,
                c.initial_size,
                c.test_on_borrow,
                t(c.validation_interval),
                c.leak_timeout.map_or("off".to_string(), |d| t(d).to_string()),
            ),
            (true, None) => "max = concurrency, min = initial = concurrency/4 (at least 2), validation on borrow unless used within 500ms, health checks every 30s, leak detection at 30s, idle_timeout 60s, max_lifetime 30m".to_string(),
        }
    }

    pub fn info(&self, settings: &BenchSettings) -> ConfigurationInfo {
        ConfigurationInfo {
            name: self.name.to_string(),
            description: self.describe(settings),
            by_level: settings
                .concurrency
                .iter()
                .map(|&l| (l, self.pool_config(l, settings)))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_are_valid_at_every_level() {
        for level in [1, 2, 3, 10, 50, 500] {
            assert!(baseline(10, Duration::from_secs(5)).validate().is_ok());
            assert!(tuned_default(level, Duration::from_secs(5))
                .validate()
                .is_ok());
        }
    }

    #[test]
    fn the_tuned_pool_is_sized_from_the_concurrency() {
        let c = tuned_default(50, Duration::from_secs(5));
        assert_eq!((c.min_size, c.max_size), (12, 50));
        let c = tuned_default(1, Duration::from_secs(5));
        assert_eq!((c.min_size, c.max_size), (1, 1));
    }
}
