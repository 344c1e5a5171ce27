//! The load-shape harness against a real server: every configuration it
//! compares runs a short ramp without errors, the slowed manager really
//! delays each opening and counts it, connection-seconds follow the open
//! connections, and tidepool's scaling decisions are recorded. Skipped
//! (with a notice) when no server answers.

use std::time::Duration;

use tidepool::Strategy;
use tidepool_bench::shapes::{run, Schedule, Variant, Work};

fn light() -> Work {
    Work {
        sql: "SELECT 1 FROM pg_sleep(0.002)".into(),
        random_param: None,
        think: Duration::from_millis(2),
    }
}

#[test]
fn every_configuration_runs_a_short_ramp_without_errors() {
    let Some(url) = tidepool_testkit::postgres_url("bench_load_shapes_ramp") else {
        return;
    };
    let schedule = Schedule::Ramp {
        low: 1,
        high: 4,
        up: Duration::from_millis(300),
        down: Duration::from_millis(300),
    };
    for v in [
        Variant::strategy("balanced", Strategy::Balanced, 4),
        Variant::strategy("dynamic", Strategy::Dynamic, 4),
        Variant::on_demand("on-demand", 4, Some(Duration::from_secs(2))),
        Variant::fixed("fixed", 4, true),
        Variant::deadpool("deadpool", 4),
    ] {
        let r = run(&v, &url, Duration::from_millis(5), schedule, &light(), 0).unwrap();
        assert_eq!(r.errors, 0, "{}: {:?}", v.name, r.first_error);
        assert!(r.cycles > 10, "{}: only {} cycles", v.name, r.cycles);
        assert!(
            r.peak_size >= 1 && r.peak_size <= 4,
            "{}: peak {}",
            v.name,
            r.peak_size
        );
        // At least one connection open for the 0.6 s run, at most four.
        assert!(
            r.connection_seconds > 0.3 && r.connection_seconds < 4.0 * 0.7,
            "{}: {} connection-seconds",
            v.name,
            r.connection_seconds
        );
    }
}

#[test]
fn a_slowed_manager_delays_and_counts_every_opening() {
    let Some(url) = tidepool_testkit::postgres_url("bench_load_shapes_slow") else {
        return;
    };
    let schedule = Schedule::Steady {
        clients: 1,
        warmup: Duration::ZERO,
        window: Duration::from_millis(300),
    };
    for v in [
        Variant::on_demand("on-demand", 2, None),
        Variant::deadpool("deadpool", 2),
    ] {
        let r = run(&v, &url, Duration::from_millis(80), schedule, &light(), 0).unwrap();
        assert_eq!(r.opened, 1, "{}: one client needs one connection", v.name);
        // The first acquire opened it: at least the 80 ms delay.
        assert!(
            r.wait_us[3] >= 80_000.0,
            "{}: worst wait {} µs",
            v.name,
            r.wait_us[3]
        );
        assert_eq!(r.slow_waits, 1, "{}", v.name);
    }
}

#[test]
fn tidepool_scaling_decisions_are_recorded_with_their_reason() {
    let Some(url) = tidepool_testkit::postgres_url("bench_load_shapes_decisions") else {
        return;
    };
    // Four clients holding all the time from an empty pool: the first
    // scaling tick (1 s under `balanced`) sees utilization past 0.8.
    let schedule = Schedule::Steady {
        clients: 4,
        warmup: Duration::ZERO,
        window: Duration::from_millis(1600),
    };
    let work = Work {
        think: Duration::ZERO,
        ..light()
    };
    let v = Variant::strategy("balanced", Strategy::Balanced, 8);
    let r = run(&v, &url, Duration::from_millis(5), schedule, &work, 0).unwrap();
    assert_eq!(r.errors, 0, "{:?}", r.first_error);
    let up = r
        .decisions
        .iter()
        .find(|d| d.knob == "warm_target")
        .unwrap_or_else(|| panic!("no warm-target decision: {:?}", r.decisions));
    assert!(up.to > up.from, "{up:?}");
    assert!(up.at_s > 0.5 && up.at_s < 1.6, "{up:?}");
    assert!(
        r.timeline.iter().any(|t| t.gauge.warm_target == up.to),
        "the gauge shows the warm target"
    );
}
