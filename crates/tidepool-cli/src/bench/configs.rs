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

/// What the database runs well at once, and how that was worked out.
///
/// The tuned side must not flood the database: past this many busy
/// connections queries queue on the server (or, on SQLite, in its busy
/// handler, sleeping), where they cost more than queueing in the pool.
/// For a server it is `tidepool size`'s arithmetic, cores x 2 + 1 spindle,
/// with this host's cores when the server runs on it (a loopback URL) and
/// `size`'s assumed 4 otherwise. SQLite runs on this host and lets one
/// writer in at a time while readers run beside it, so cores + 1.
pub fn database_concurrency(url: Option<&str>) -> (u32, String) {
    let here = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let url = url.unwrap_or("sqlite:");
    if url.starts_with("sqlite:") {
        return (
            here + 1,
            format!("SQLite: {here} cores for readers + its one writer"),
        );
    }
    let local = [
        "@127.",
        "@localhost",
        "@[::1]",
        "//127.",
        "//localhost",
        "//[::1]",
    ]
    .iter()
    .any(|h| url.contains(h));
    let (cores, whose) = if local {
        (here, "this host's")
    } else {
        (crate::settings::ASSUMED_CORES, "an assumed")
    };
    (
        cores * 2 + 1,
        format!("{whose} {cores} cores x 2 + 1, as `tidepool size` counts"),
    )
}

/// Whether the tuned side sends its reads through tidepool-postgres'
/// multiplexer: on PostgreSQL unless `--multiplex-reads off`.
pub fn multiplexes_reads(settings: &BenchSettings) -> bool {
    settings.multiplex_reads
        && settings
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

/// The default tuned configuration for `level` concurrent clients: the
/// strategy's preset, capped at what the database runs well at once
/// (`db_concurrency`) so that extra clients queue in the pool rather than
/// on the database. Under `dynamic` the cap is the client count: its
/// adaptive limit finds the database's knee by itself.
pub fn tuned_default(
    level: u32,
    acquire_timeout: Duration,
    strategy: tidepool::Strategy,
    db_concurrency: u32,
) -> tidepool::Config {
    let mut c = tidepool::Config::default();
    let max = if strategy == tidepool::Strategy::Dynamic {
        level
    } else {
        level.min(db_concurrency.max(1))
    };
    let floor = (max / 4).max(2).min(max);
    c.max_size = max;
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
    c.scaling = tidepool::ScalingConfig::preset(strategy);
    c
}

impl Configuration {
    /// The pool configuration this side uses at `level`.
    pub fn pool_config(&self, level: u32, settings: &BenchSettings) -> tidepool::Config {
        match (self.tuned, &settings.tuned) {
            (false, _) => baseline(settings.baseline_size, settings.acquire_timeout),
            (true, Some(file)) => {
                let mut c = file.clone();
                if let Some(strategy) = settings.strategy {
                    c.scaling = tidepool::ScalingConfig::preset(strategy);
                }
                c
            }
            (true, None) => tuned_default(
                level,
                settings.acquire_timeout,
                settings.tuned_strategy(),
                database_concurrency(settings.url.as_deref()).0,
            ),
        }
    }

    /// A one-line description for the report.
    pub fn describe(&self, settings: &BenchSettings) -> String {
        let mut text = self.describe_pool(settings);
        if self.tuned && multiplexes_reads(settings) {
            text.push_str("; reads (the point and range selects) pipelined over a quarter of the pool's connections (one or two) shared by a multiplexer, writes and transactions on connections of their own (--multiplex-reads off compares without)");
        }
        text
    }

    fn describe_pool(&self, settings: &BenchSettings) -> String {
        let t = humantime::format_duration;
        match (self.tuned, &settings.tuned) {
            (false, _) => format!(
                "fixed pool of {n} (min = max = initial = {n}), no validation on borrow, no health checks, no leak detection, no idle timeout, no lifetime limit",
                n = settings.baseline_size
            ),
            (true, Some(c)) => format!(
                "from the settings file's [pool] table: strategy {}, min {} / max {} / initial {}, test_on_borrow {}, validation_interval {}, leak detection {}",
                settings.strategy.unwrap_or(c.scaling.strategy),
                c.min_size,
                c.max_size,
                c.initial_size,
                c.test_on_borrow,
                t(c.validation_interval),
                c.leak_timeout.map_or("off".to_string(), |d| t(d).to_string()),
            ),
            (true, None) => {
                let strategy = settings.tuned_strategy();
                let (db, why) = database_concurrency(settings.url.as_deref());
                let max = if strategy == tidepool::Strategy::Dynamic {
                    "max = concurrency (the adaptive limit finds the database's knee)".to_string()
                } else {
                    format!("max = the concurrency, at most {db} (what the database runs well at once: {why})")
                };
                format!(
                    "strategy {strategy} (the pool sizes itself between min and max), {max}, min = initial = max/4 (at least 2), validation on borrow unless used within 500ms, health checks every 30s, leak detection at 30s, idle_timeout 60s, max_lifetime 30m"
                )
            }
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

    use tidepool::Strategy;

    #[test]
    fn both_configurations_are_valid_at_every_level_and_strategy() {
        for level in [1, 2, 3, 10, 50, 500] {
            assert!(baseline(10, Duration::from_secs(5)).validate().is_ok());
            for strategy in Strategy::ALL {
                for db in [1, 3, 9, 100] {
                    let c = tuned_default(level, Duration::from_secs(5), strategy, db);
                    assert!(c.validate().is_ok(), "{level} {strategy} {db}");
                    assert_eq!(c.scaling.strategy, strategy);
                }
            }
        }
    }

    #[test]
    fn the_tuned_pool_never_opens_more_than_the_database_runs_well_at_once() {
        let c = tuned_default(50, Duration::from_secs(5), Strategy::Balanced, 9);
        assert_eq!((c.min_size, c.max_size), (2, 9));
        let c = tuned_default(50, Duration::from_secs(5), Strategy::Balanced, 100);
        assert_eq!((c.min_size, c.max_size), (12, 50));
        let c = tuned_default(1, Duration::from_secs(5), Strategy::Balanced, 9);
        assert_eq!((c.min_size, c.max_size), (1, 1));
    }

    #[test]
    fn under_dynamic_the_adaptive_limit_not_the_cap_bounds_the_pool() {
        let c = tuned_default(50, Duration::from_secs(5), Strategy::Dynamic, 9);
        assert_eq!(c.max_size, 50);
        assert!(c.scaling.adaptive_limit);
    }

    #[test]
    fn the_database_concurrency_follows_the_backend_and_the_host() {
        let here = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        assert_eq!(database_concurrency(None).0, here + 1);
        assert_eq!(
            database_concurrency(Some("postgres://u@127.0.0.1:5432/db")).0,
            here * 2 + 1
        );
        assert_eq!(
            database_concurrency(Some("mysql://u@db.example.com/db")).0,
            9
        );
    }
}
