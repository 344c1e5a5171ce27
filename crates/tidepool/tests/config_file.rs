//! The pool's configuration reads from TOML (feature `serde`), with
//! durations written the way people write them, and unknown keys refused.

#![cfg(feature = "serde")]

use std::time::Duration;

use tidepool::{Config, QueueMode};

#[test]
fn a_toml_file_configures_every_knob_with_human_durations() {
    let config: Config = toml::from_str(
        r#"
        min_size = 2
        max_size = 20
        acquire_timeout = "2s"
        idle_timeout = "10m"
        max_lifetime = "1h"
        validation_interval = "250ms"
        queue_mode = "fifo"
        leak_timeout = "30s"

        [breaker]
        window = "5s"
        recovery_timeout = "1s"
        connect = { degrade = 2, open = 4 }
        "#,
    )
    .unwrap();
    assert_eq!((config.min_size, config.max_size), (2, 20));
    assert_eq!(config.acquire_timeout, Duration::from_secs(2));
    assert_eq!(config.idle_timeout, Some(Duration::from_secs(600)));
    assert_eq!(config.max_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(config.validation_interval, Duration::from_millis(250));
    assert_eq!(config.queue_mode, QueueMode::Fifo);
    assert_eq!(config.breaker.window, Duration::from_secs(5));
    assert_eq!(config.breaker.connect.open, 4);
    // Unnamed fields keep their defaults.
    assert_eq!(config.connect_timeout, Config::default().connect_timeout);
    assert!(config.validate().is_ok());
}

#[test]
fn an_unknown_key_is_refused_with_its_name() {
    let err = toml::from_str::<Config>("max_sise = 3").unwrap_err();
    assert!(err.to_string().contains("max_sise"), "{err}");
}

#[test]
fn a_malformed_duration_is_refused() {
    let err = toml::from_str::<Config>(r#"acquire_timeout = "soon""#).unwrap_err();
    assert!(
        err.to_string().contains("acquire_timeout") || err.to_string().contains("soon"),
        "{err}"
    );
}

#[test]
fn a_file_with_min_above_max_parses_but_is_refused_by_validation_naming_the_field() {
    let config: Config = toml::from_str("min_size = 30\nmax_size = 3").unwrap();
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("min_size"));
}
