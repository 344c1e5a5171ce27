//! From the requests of one run to the figures of the report, and from the
//! runs of every repeat to their medians. Definitions (also in
//! docs/RELIABILITY.md):
//!
//! - failed: requests that ended in an error (the acquire's, the query's,
//!   or the 3 s request deadline), over the whole run;
//! - detect: fault start to the end of the first failed request that ended
//!   after the fault started;
//! - recover: among requests that ended after the heal, in the order they
//!   were issued, the first of 10 consecutive successes: heal to its end;
//! - attempts: connections the proxy accepted between fault and heal;
//! - window: fault to heal (set for proxy faults; for a restart, until the
//!   server answers again);
//! - failing p50/p99: duration of the failed requests.

use std::collections::BTreeMap;

use crate::scenario::Run;

/// Successes in a row that count as recovered.
pub const RECOVERED_AFTER: usize = 10;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    pub requests: usize,
    /// Fault to heal.
    pub window_ms: f64,
    pub failed: usize,
    /// `None`: no request failed after the fault started.
    pub detect_ms: Option<f64>,
    /// `None`: never 10 successes in a row before the run ended.
    pub recover_ms: Option<f64>,
    pub attempts_during_fault: u64,
    pub attempts_fault_to_end: u64,
    /// Connections open through the proxy just before the heal.
    pub proxy_open_at_heal: usize,
    pub failing_p50_ms: Option<f64>,
    pub failing_p99_ms: Option<f64>,
    /// Failed requests issued after the heal.
    pub failed_issued_after_heal: usize,
    /// Failed requests by what went wrong.
    pub errors: BTreeMap<&'static str, usize>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn figures(run: &Run) -> Figures {
    let mut f = Figures {
        requests: run.reqs.len(),
        window_ms: ms(run.heal_at - run.fault_at),
        attempts_during_fault: run.accepted[1] - run.accepted[0],
        attempts_fault_to_end: run.accepted[2] - run.accepted[0],
        proxy_open_at_heal: run.open_at_heal,
        ..Figures::default()
    };
    let mut failing = Vec::new();
    for r in &run.reqs {
        let Some(category) = r.error else { continue };
        f.failed += 1;
        *f.errors.entry(category).or_default() += 1;
        failing.push(ms(r.end - r.start));
        if r.start >= run.heal_at {
            f.failed_issued_after_heal += 1;
        }
        if r.end >= run.fault_at {
            let detect = ms(r.end - run.fault_at);
            f.detect_ms = Some(f.detect_ms.map_or(detect, |d: f64| d.min(detect)));
        }
    }
    failing.sort_by(f64::total_cmp);
    f.failing_p50_ms = percentile(&failing, 0.50);
    f.failing_p99_ms = percentile(&failing, 0.99);

    let mut after: Vec<_> = run.reqs.iter().filter(|r| r.end >= run.heal_at).collect();
    after.sort_by_key(|r| r.start);
    f.recover_ms = after
        .windows(RECOVERED_AFTER)
        .find(|w| w.iter().all(|r| r.error.is_none()))
        .map(|w| ms(w[0].end - run.heal_at));
    f
}

/// Median of values where `None` sorts above every number (as for a
/// recovery that never came); for an even count, the mean of the middle
/// two when both are numbers.
pub fn median_opt(values: &[Option<f64>]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => a.total_cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        match (v[n / 2 - 1], v[n / 2]) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            _ => v[n / 2],
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    let v: Vec<Option<f64>> = values.iter().map(|&x| Some(x)).collect();
    median_opt(&v).unwrap_or(f64::NAN)
}

/// The medians of one pool's figures over the repeats. Error categories
/// are summed, not medianed.
pub fn median_figures(all: &[&Figures]) -> Figures {
    let num =
        |get: &dyn Fn(&Figures) -> f64| median(&all.iter().map(|f| get(f)).collect::<Vec<_>>());
    let opt = |get: &dyn Fn(&Figures) -> Option<f64>| {
        median_opt(&all.iter().map(|f| get(f)).collect::<Vec<_>>())
    };
    let some = |get: &dyn Fn(&Figures) -> Option<f64>| {
        let v: Vec<Option<f64>> = all.iter().filter_map(|f| get(f)).map(Some).collect();
        median_opt(&v)
    };
    let mut errors = BTreeMap::new();
    for f in all {
        for (k, v) in &f.errors {
            *errors.entry(*k).or_default() += v;
        }
    }
    Figures {
        requests: num(&|f| f.requests as f64).round() as usize,
        window_ms: num(&|f| f.window_ms),
        failed: num(&|f| f.failed as f64).round() as usize,
        // A run without failures has nothing to detect (nor failing
        // latencies): the median is over the runs that had some.
        detect_ms: some(&|f| f.detect_ms),
        recover_ms: opt(&|f| f.recover_ms),
        attempts_during_fault: num(&|f| f.attempts_during_fault as f64).round() as u64,
        attempts_fault_to_end: num(&|f| f.attempts_fault_to_end as f64).round() as u64,
        proxy_open_at_heal: num(&|f| f.proxy_open_at_heal as f64).round() as usize,
        failing_p50_ms: some(&|f| f.failing_p50_ms),
        failing_p99_ms: some(&|f| f.failing_p99_ms),
        failed_issued_after_heal: num(&|f| f.failed_issued_after_heal as f64).round() as usize,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::{Req, Run};
    use crate::subjects::Kind;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn req(start: u64, end: u64, error: Option<&'static str>) -> Req {
        Req {
            start: ms(start),
            end: ms(end),
            error,
        }
    }

    fn run(reqs: Vec<Req>) -> Run {
        Run {
            kind: Kind::Tidepool,
            reqs,
            fault_at: ms(1000),
            heal_at: ms(2000),
            accepted: [3, 10, 15],
            open_at_heal: 0,
            diagnosis: None,
        }
    }

    #[test]
    fn nearest_rank_percentiles_pick_observed_values() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn detection_is_the_end_of_the_first_failure_after_the_fault() {
        let f = figures(&run(vec![
            req(0, 5, None),
            req(990, 1300, Some("acquire timeout")),
            req(1010, 1020, Some("circuit open")),
        ]));
        assert_eq!(f.failed, 2);
        assert_eq!(f.detect_ms, Some(20.0));
        assert_eq!(f.attempts_during_fault, 7);
        assert_eq!(f.window_ms, 1000.0, "the fault lasts from fault to heal");
        assert_eq!(f.attempts_fault_to_end, 12);
        assert_eq!(f.errors.get("circuit open"), Some(&1));
    }

    #[test]
    fn recovery_is_the_first_of_ten_successes_in_a_row_after_the_heal() {
        let mut reqs = vec![req(1990, 2050, None), req(2000, 2100, Some("circuit open"))];
        // Nine successes, a failure, then ten successes from 2200 ms on.
        reqs.extend((0..9).map(|i| req(2110 + i, 2120 + i, None)));
        reqs.push(req(2150, 2160, Some("circuit open")));
        reqs.extend((0..10).map(|i| req(2200 + i * 10, 2205 + i * 10, None)));
        let f = figures(&run(reqs));
        assert_eq!(f.recover_ms, Some(205.0));
        assert_eq!(f.failed_issued_after_heal, 2);
    }

    #[test]
    fn a_run_that_never_recovers_has_no_recovery_time() {
        let reqs = (0..30)
            .map(|i| {
                req(
                    2000 + i * 10,
                    2001 + i * 10,
                    i.is_multiple_of(5).then_some("x"),
                )
            })
            .collect();
        assert_eq!(figures(&run(reqs)).recover_ms, None);
    }

    #[test]
    fn medians_sort_a_missing_recovery_above_every_number() {
        assert_eq!(median_opt(&[Some(3.0), None, Some(1.0)]), Some(3.0));
        assert_eq!(median_opt(&[None, None, Some(1.0)]), None);
        assert_eq!(median_opt(&[Some(1.0), Some(3.0)]), Some(2.0));
    }
}
