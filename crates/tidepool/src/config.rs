//! Pool configuration: every knob with its default, validated once at build
//! time. A bad value is refused with a [`BuildError`] naming the field;
//! nothing here panics on user input. With the `serde` feature the same
//! configuration deserializes from TOML or JSON, durations written like
//! `"30s"` or `"10m"`.

use std::time::Duration;

use crate::breaker::BreakerConfig;
use crate::error::BuildError;

/// Which idle connection a checkout takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum QueueMode {
    /// The most recently returned connection first: keeps a warm working
    /// set and lets the rest age out through `idle_timeout`. The default.
    #[default]
    Lifo,
    /// The least recently returned connection first: spreads use evenly.
    Fifo,
}

/// A pool's configuration. Build one with [`Pool::builder`](crate::Pool::builder),
/// or deserialize it (feature `serde`) and pass it to
/// [`Builder::config`](crate::Builder::config).
///
/// ```
/// let config = tidepool::Config::default();
/// assert_eq!(config.max_size, 10);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Config {
    /// The pool's name, used as the `pool.name` label in logs, metrics and
    /// health reports. `None` uses the manager's
    /// [`describe`](crate::Manager::describe) (its target, without
    /// credentials). Default `None`.
    pub name: Option<String>,
    /// Connections kept open even when idle. Default 0.
    pub min_size: u32,
    /// Hard limit on open connections (idle + in use + being created).
    /// Default 10.
    pub max_size: u32,
    /// Connections opened at build time. Default 0.
    pub initial_size: u32,
    /// Longest a `get()` waits for a connection, creation included.
    /// Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub acquire_timeout: Duration,
    /// Longest one connection attempt may take. Default 10 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub connect_timeout: Duration,
    /// Longest a validation (ping) may take. Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub validation_timeout: Duration,
    /// Longest cleaning a returned connection may take before it is
    /// discarded instead. Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub reset_timeout: Duration,
    /// Idle connections above `min_size` are closed after this long unused.
    /// `None` keeps them. Default 10 min.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub idle_timeout: Option<Duration>,
    /// Connections are retired after about this long, whatever their use.
    /// Each connection's own limit is drawn from
    /// `[max_lifetime * (1 - max_lifetime_jitter), max_lifetime]`, so
    /// connections born together never die together. `None` keeps them.
    /// Default 30 min.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_lifetime: Option<Duration>,
    /// The width of the lifetime window, as a fraction of `max_lifetime`,
    /// between 0.1 and 0.5. Default 0.1.
    pub max_lifetime_jitter: f64,
    /// Validate a connection before handing it out, unless it was used or
    /// validated within `validation_interval`. Default true.
    pub test_on_borrow: bool,
    /// How recently a connection must have been used or validated to skip
    /// the check on borrow. Zero checks every borrow. Default 500 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub validation_interval: Duration,
    /// Idle connections not checked for this long are pinged in the
    /// background. `None` disables it. Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub health_check_interval: Option<Duration>,
    /// How often the maintenance task runs. Default 1 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub maintenance_interval: Duration,
    /// Extra connection attempts after a failed one, within the acquire
    /// deadline. Default 3.
    pub max_retries: u32,
    /// Delay before the first retry, doubled each time with jitter.
    /// Default 100 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub retry_delay: Duration,
    /// Cap on the delay between retries. Default 5 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_retry_delay: Duration,
    /// Which idle connection a checkout takes. Default LIFO.
    pub queue_mode: QueueMode,
    /// A connection held longer than this is reported once as a possible
    /// leak. `None` disables leak detection. Default 5 min.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub leak_timeout: Option<Duration>,
    /// Capture the checkout's backtrace for leak reports (costly: only for
    /// hunting a leak). The caller's source location is always recorded.
    /// Default false.
    pub track_stack_trace: bool,
    /// An acquire that waits longer than this is logged at warn.
    /// `None` disables it. Default 1 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_acquire_threshold: Option<Duration>,
    /// Keep per-shape statistics of the queries run through the pool
    /// ([`Pool::queries`](crate::Pool::queries)) and write the slow-query
    /// log. Default true.
    pub query_stats: bool,
    /// A query slower than this is logged at warn (target
    /// `tidepool::slow_query`), once per statement shape per minute, with
    /// its normalized text and time. `None` disables the log. Default
    /// 150 ms.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_query_threshold: Option<Duration>,
    /// Add the parameter values to slow-query log lines. They may hold
    /// personal data or secrets: off unless asked for. Default false.
    pub log_query_parameters: bool,
    /// A checkout for a statement ([`Pool::get_for`](crate::Pool::get_for),
    /// `execute_query`) prefers an idle connection that has prepared it.
    /// Default true.
    pub statement_affinity: bool,
    /// The circuit breaker. Defaults to [`BreakerConfig::default`].
    pub breaker: BreakerConfig,
    /// How the pool sizes itself: warm target, predictor, concurrency
    /// limit, adaptive configuration. Defaults to the `fixed` preset
    /// (none of them). In TOML, a `[pool.scaling]` table with a `strategy`
    /// and overrides.
    pub scaling: crate::scaling::ScalingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: None,
            min_size: 0,
            max_size: 10,
            initial_size: 0,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            validation_timeout: Duration::from_secs(5),
            reset_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            max_lifetime_jitter: 0.1,
            test_on_borrow: true,
            validation_interval: Duration::from_millis(500),
            health_check_interval: Some(Duration::from_secs(30)),
            maintenance_interval: Duration::from_secs(1),
            max_retries: 3,
            retry_delay: Duration::from_millis(100),
            max_retry_delay: Duration::from_secs(5),
            queue_mode: QueueMode::Lifo,
            leak_timeout: Some(Duration::from_secs(300)),
            track_stack_trace: false,
            slow_acquire_threshold: Some(Duration::from_secs(1)),
            query_stats: true,
            slow_query_threshold: Some(Duration::from_millis(150)),
            log_query_parameters: false,
            statement_affinity: true,
            breaker: BreakerConfig::default(),
            scaling: crate::scaling::ScalingConfig::default(),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> BuildError {
    BuildError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

fn nonzero(field: &'static str, d: Duration) -> Result<(), BuildError> {
    if d.is_zero() {
        return Err(invalid(field, "must be greater than zero"));
    }
    Ok(())
}

fn nonzero_opt(field: &'static str, d: Option<Duration>) -> Result<(), BuildError> {
    match d {
        Some(d) if d.is_zero() => Err(invalid(
            field,
            "must be greater than zero (use None to disable it)",
        )),
        _ => Ok(()),
    }
}

impl Config {
    /// Checks every field; the error names the first one that is wrong.
    ///
    /// ```
    /// let mut config = tidepool::Config::default();
    /// config.min_size = 20;
    /// let err = config.validate().unwrap_err();
    /// assert!(err.to_string().contains("min_size"));
    /// ```
    pub fn validate(&self) -> Result<(), BuildError> {
        if let Some(name) = &self.name {
            // The name becomes a metric label and a URL path segment.
            if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "name",
                    "must be 1 to 128 characters with no control characters",
                ));
            }
        }
        if self.max_size == 0 {
            return Err(invalid("max_size", "must be at least 1"));
        }
        // A pool this large is a typo.
        if self.max_size > 1_000_000 {
            return Err(invalid(
                "max_size",
                format!("must be at most 1000000 (got {})", self.max_size),
            ));
        }
        if self.min_size > self.max_size {
            return Err(invalid(
                "min_size",
                format!(
                    "({}) must not exceed max_size ({})",
                    self.min_size, self.max_size
                ),
            ));
        }
        if self.initial_size > self.max_size {
            return Err(invalid(
                "initial_size",
                format!(
                    "({}) must not exceed max_size ({})",
                    self.initial_size, self.max_size
                ),
            ));
        }
        nonzero("acquire_timeout", self.acquire_timeout)?;
        nonzero("connect_timeout", self.connect_timeout)?;
        nonzero("validation_timeout", self.validation_timeout)?;
        nonzero("reset_timeout", self.reset_timeout)?;
        nonzero("maintenance_interval", self.maintenance_interval)?;
        nonzero_opt("idle_timeout", self.idle_timeout)?;
        nonzero_opt("max_lifetime", self.max_lifetime)?;
        nonzero_opt("health_check_interval", self.health_check_interval)?;
        nonzero_opt("leak_timeout", self.leak_timeout)?;
        nonzero_opt("slow_acquire_threshold", self.slow_acquire_threshold)?;
        nonzero_opt("slow_query_threshold", self.slow_query_threshold)?;
        if !(0.1..=0.5).contains(&self.max_lifetime_jitter) {
            return Err(invalid(
                "max_lifetime_jitter",
                format!(
                    "must be between 0.1 and 0.5 (got {})",
                    self.max_lifetime_jitter
                ),
            ));
        }
        if self.retry_delay > self.max_retry_delay {
            return Err(invalid("retry_delay", "must not exceed max_retry_delay"));
        }
        self.breaker.validate()?;
        self.scaling.validate()
    }

    /// The lifetime of one new connection: `max_lifetime` less a random
    /// share of the jitter window.
    pub(crate) fn draw_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
            .map(|max| max.mul_f64(1.0 - self.max_lifetime_jitter * crate::backoff::unit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: Config) -> &'static str {
        match config.validate() {
            Err(BuildError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn each_bad_value_is_refused_naming_its_field() {
        let base = Config::default;
        assert_eq!(
            field_of(Config {
                max_size: 0,
                ..base()
            }),
            "max_size"
        );
        assert_eq!(
            field_of(Config {
                min_size: 11,
                ..base()
            }),
            "min_size"
        );
        assert_eq!(
            field_of(Config {
                initial_size: 11,
                ..base()
            }),
            "initial_size"
        );
        assert_eq!(
            field_of(Config {
                acquire_timeout: Duration::ZERO,
                ..base()
            }),
            "acquire_timeout"
        );
        assert_eq!(
            field_of(Config {
                connect_timeout: Duration::ZERO,
                ..base()
            }),
            "connect_timeout"
        );
        assert_eq!(
            field_of(Config {
                validation_timeout: Duration::ZERO,
                ..base()
            }),
            "validation_timeout"
        );
        assert_eq!(
            field_of(Config {
                idle_timeout: Some(Duration::ZERO),
                ..base()
            }),
            "idle_timeout"
        );
        assert_eq!(
            field_of(Config {
                max_lifetime: Some(Duration::ZERO),
                ..base()
            }),
            "max_lifetime"
        );
        assert_eq!(
            field_of(Config {
                max_lifetime_jitter: 0.05,
                ..base()
            }),
            "max_lifetime_jitter"
        );
        assert_eq!(
            field_of(Config {
                leak_timeout: Some(Duration::ZERO),
                ..base()
            }),
            "leak_timeout"
        );
    }

    #[test]
    fn lifetimes_spread_over_at_least_ten_percent() {
        let config = Config {
            max_lifetime: Some(Duration::from_secs(1000)),
            ..Config::default()
        };
        let draws: Vec<Duration> = (0..2000).filter_map(|_| config.draw_lifetime()).collect();
        let min = draws.iter().min().copied().unwrap_or_default();
        let max = draws.iter().max().copied().unwrap_or_default();
        assert!(min >= Duration::from_secs(900) && max <= Duration::from_secs(1000));
        assert!(
            max - min >= Duration::from_secs(90),
            "spread {:?}",
            max - min
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn config_reads_from_json_with_human_durations() {
        let json = r#"{"max_size": 20, "acquire_timeout": "2s", "idle_timeout": null, "queue_mode": "fifo"}"#;
        let config: Config = serde_json::from_str(json).unwrap();
        assert_eq!(config.max_size, 20);
        assert_eq!(config.acquire_timeout, Duration::from_secs(2));
        assert_eq!(config.idle_timeout, None);
        assert_eq!(config.queue_mode, QueueMode::Fifo);
    }
}
