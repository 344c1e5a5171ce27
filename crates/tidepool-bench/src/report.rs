//! Turns repeated samples into medians, ratios and markdown tables, and
//! reads them against the goals of the core pool's issue: tidepool at
//! least as fast as the faster of deadpool and bb8 at every point, its
//! p99.9 no worse than deadpool's, and its extras (test-on-borrow, leak
//! detection) costing no more than 10%.

use std::fmt::Write as _;

use crate::harness::Sample;
use crate::noop::{Hold, PoolKind};

/// The medians of one point over its repeats.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The pool.
    pub pool: PoolKind,
    /// Pool size.
    pub size: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// What a task did while holding.
    pub hold: Hold,
    /// How many repeats.
    pub repeats: usize,
    /// Median cycles per second.
    pub throughput: f64,
    /// Lowest cycles per second over the repeats.
    pub throughput_min: f64,
    /// Highest cycles per second over the repeats.
    pub throughput_max: f64,
    /// Median cycles per CPU-second.
    pub cycles_per_cpu_s: f64,
    /// Median CPU-seconds per wall-second the workers got (2.0 = both
    /// cores the whole window).
    pub cpu_share: f64,
    /// Median of the repeats' p50, ns.
    pub p50_ns: f64,
    /// Median of the repeats' p99, ns.
    pub p99_ns: f64,
    /// Median of the repeats' p99.9, ns.
    pub p999_ns: f64,
    /// Median of the repeats' maximum, ns.
    pub max_ns: f64,
    /// Median of the repeats' starved task counts.
    pub starved_tasks: f64,
    /// Failed acquires over all repeats.
    pub errors: u64,
}

/// The median of `values` (the mean of the middle two for an even count);
/// `NaN` for none.
///
/// ```
/// use tidepool_bench::report::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
/// ```
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Groups samples by point and takes medians. Points come out ordered by
/// hold, size, tasks, then pool in [`PoolKind::ALL`] order.
pub fn summarize(samples: &[Sample]) -> Vec<Summary> {
    let mut keys: Vec<(Hold, usize, usize, PoolKind)> = Vec::new();
    for s in samples {
        let key = (s.hold, s.size, s.tasks, s.pool);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let hold_rank = |h: Hold| match h {
        Hold::Yield => 0,
        Hold::None => 1,
    };
    let pool_rank = |p: PoolKind| {
        PoolKind::ALL
            .iter()
            .position(|k| *k == p)
            .unwrap_or(usize::MAX)
    };
    keys.sort_by_key(|&(h, size, tasks, p)| (hold_rank(h), size, tasks, pool_rank(p)));
    keys.into_iter()
        .map(|(hold, size, tasks, pool)| {
            let of: Vec<&Sample> = samples
                .iter()
                .filter(|s| (s.hold, s.size, s.tasks, s.pool) == (hold, size, tasks, pool))
                .collect();
            let m = |f: fn(&Sample) -> f64| median(&of.iter().map(|s| f(s)).collect::<Vec<_>>());
            let tps: Vec<f64> = of.iter().map(|s| s.throughput).collect();
            Summary {
                pool,
                size,
                tasks,
                hold,
                repeats: of.len(),
                throughput: median(&tps),
                throughput_min: tps.iter().copied().fold(f64::INFINITY, f64::min),
                throughput_max: tps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                cycles_per_cpu_s: m(|s| s.cycles_per_cpu_s),
                cpu_share: m(|s| s.cpu_seconds / s.seconds),
                p50_ns: m(|s| s.p50_ns as f64),
                p99_ns: m(|s| s.p99_ns as f64),
                p999_ns: m(|s| s.p999_ns as f64),
                max_ns: m(|s| s.max_ns as f64),
                starved_tasks: m(|s| s.starved_tasks as f64),
                errors: of.iter().map(|s| s.errors).sum(),
            }
        })
        .collect()
}

/// A latency in ns, in a readable unit.
///
/// ```
/// use tidepool_bench::report::fmt_ns;
/// assert_eq!(fmt_ns(850.0), "850 ns");
/// assert_eq!(fmt_ns(12_340.0), "12.3 µs");
/// assert_eq!(fmt_ns(1_250_000.0), "1.25 ms");
/// ```
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A rate in a readable unit: `1.23 M/s`, `456 k/s`.
pub fn fmt_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.0} k/s", per_s / 1e3)
    } else {
        format!("{per_s:.0} /s")
    }
}

fn ratio(x: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b > 0.0 && x.is_finite() => format!("{:.2}", x / b),
        _ => "–".to_string(),
    }
}

fn find(all: &[Summary], at: &Summary, pool: PoolKind) -> Option<Summary> {
    all.iter()
        .find(|s| (s.hold, s.size, s.tasks, s.pool) == (at.hold, at.size, at.tasks, pool))
        .cloned()
}

/// The faster of deadpool and bb8 at the same point.
fn best_rival(all: &[Summary], at: &Summary) -> Option<Summary> {
    let d = find(all, at, PoolKind::Deadpool);
    let b = find(all, at, PoolKind::Bb8);
    match (d, b) {
        (Some(d), Some(b)) => Some(if b.throughput > d.throughput { b } else { d }),
        (d, b) => d.or(b),
    }
}

/// The higher cycles per CPU-second of deadpool and bb8 at the same point.
fn best_rival_cpu(all: &[Summary], at: &Summary) -> Option<f64> {
    [PoolKind::Deadpool, PoolKind::Bb8]
        .into_iter()
        .filter_map(|p| find(all, at, p))
        .map(|s| s.cycles_per_cpu_s)
        .reduce(f64::max)
}

/// One markdown table per (hold, size, tasks), every pool a row.
pub fn point_tables(all: &[Summary]) -> String {
    let mut out = String::new();
    let mut points: Vec<(Hold, usize, usize)> = Vec::new();
    for s in all {
        if !points.contains(&(s.hold, s.size, s.tasks)) {
            points.push((s.hold, s.size, s.tasks));
        }
    }
    for (hold, size, tasks) in points {
        let rows: Vec<&Summary> = all
            .iter()
            .filter(|s| (s.hold, s.size, s.tasks) == (hold, size, tasks))
            .collect();
        let Some(first) = rows.first() else { continue };
        let deadpool = find(all, first, PoolKind::Deadpool);
        let best = best_rival(all, first);
        let _ = writeln!(
            out,
            "#### pool of {size}, {tasks} task{} (hold: {})\n",
            if tasks == 1 { "" } else { "s" },
            hold_name(hold)
        );
        let best_name = best.as_ref().map_or("–", |b| b.pool.name());
        let best_cpu = best_rival_cpu(all, first);
        let _ = writeln!(
            out,
            "| pool | cycles/s | spread | ÷ deadpool | ÷ best rival ({best_name}) | cycles/CPU-s | ÷ best rival, per CPU-s | CPU share | p50 | p99 | p99.9 | p99.9 ÷ deadpool | max | starved tasks |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in rows {
            let spread = if s.throughput > 0.0 {
                format!(
                    "±{:.0}%",
                    50.0 * (s.throughput_max - s.throughput_min) / s.throughput
                )
            } else {
                "–".into()
            };
            let errors = if s.errors > 0 {
                format!(" ({} errors)", s.errors)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {}{errors} | {} | {spread} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} | {:.0} |",
                s.pool.name(),
                fmt_rate(s.throughput),
                ratio(s.throughput, deadpool.as_ref().map(|d| d.throughput)),
                ratio(s.throughput, best.as_ref().map(|d| d.throughput)),
                fmt_rate(s.cycles_per_cpu_s),
                ratio(s.cycles_per_cpu_s, best_cpu),
                s.cpu_share,
                fmt_ns(s.p50_ns),
                fmt_ns(s.p99_ns),
                fmt_ns(s.p999_ns),
                ratio(s.p999_ns, deadpool.as_ref().map(|d| d.p999_ns)),
                fmt_ns(s.max_ns),
                s.starved_tasks,
            );
        }
        out.push('\n');
    }
    out
}

fn hold_name(hold: Hold) -> &'static str {
    match hold {
        Hold::Yield => "yield once",
        Hold::None => "none",
    }
}

/// Tidepool against its rivals at one point, each ratio the median over
/// the repeats of that repeat's own ratio: pools run back to back within a
/// repeat, so a ratio compares runs that saw the same machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Paired {
    /// What a task did while holding.
    pub hold: Hold,
    /// Pool size.
    pub size: usize,
    /// Concurrent tasks.
    pub tasks: usize,
    /// tidepool's throughput ÷ the faster of deadpool and bb8.
    pub vs_best: Option<f64>,
    /// The same per CPU-second.
    pub vs_best_cpu: Option<f64>,
    /// tidepool-bare's throughput ÷ the faster of deadpool and bb8.
    pub bare_vs_best: Option<f64>,
    /// tidepool's p99.9 ÷ deadpool's.
    pub p999_vs_deadpool: Option<f64>,
    /// tidepool's throughput ÷ tidepool-bare's (the extras' cost).
    pub vs_bare: Option<f64>,
    /// The same per CPU-second.
    pub vs_bare_cpu: Option<f64>,
}

/// Per-repeat ratios for every point that has a tidepool row.
pub fn paired(samples: &[Sample]) -> Vec<Paired> {
    let mut points: Vec<(Hold, usize, usize)> = Vec::new();
    for s in samples.iter().filter(|s| s.pool == PoolKind::Tidepool) {
        if !points.contains(&(s.hold, s.size, s.tasks)) {
            points.push((s.hold, s.size, s.tasks));
        }
    }
    points
        .into_iter()
        .map(|(hold, size, tasks)| {
            let at = |pool: PoolKind, repeat: usize| {
                samples.iter().find(|s| {
                    (s.hold, s.size, s.tasks, s.pool, s.repeat) == (hold, size, tasks, pool, repeat)
                })
            };
            let repeats: Vec<usize> = {
                let mut r: Vec<usize> = samples
                    .iter()
                    .filter(|s| (s.hold, s.size, s.tasks) == (hold, size, tasks))
                    .map(|s| s.repeat)
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            };
            let med = |f: &dyn Fn(usize) -> Option<f64>| {
                let v: Vec<f64> = repeats.iter().filter_map(|&r| f(r)).collect();
                (!v.is_empty()).then(|| median(&v))
            };
            let best = |r: usize, key: fn(&Sample) -> f64| {
                [PoolKind::Deadpool, PoolKind::Bb8]
                    .into_iter()
                    .filter_map(|p| at(p, r))
                    .map(key)
                    .reduce(f64::max)
                    .filter(|b| *b > 0.0)
            };
            let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            let tp = |r: usize, key: fn(&Sample) -> f64| at(PoolKind::Tidepool, r).map(key);
            let bare = |r: usize, key: fn(&Sample) -> f64| at(PoolKind::TidepoolBare, r).map(key);
            let thr: fn(&Sample) -> f64 = |s| s.throughput;
            let cpu: fn(&Sample) -> f64 = |s| s.cycles_per_cpu_s;
            let p999: fn(&Sample) -> f64 = |s| s.p999_ns as f64;
            Paired {
                hold,
                size,
                tasks,
                vs_best: med(&|r| div(tp(r, thr), best(r, thr))),
                vs_best_cpu: med(&|r| div(tp(r, cpu), best(r, cpu))),
                bare_vs_best: med(&|r| div(bare(r, thr), best(r, thr))),
                p999_vs_deadpool: med(&|r| div(tp(r, p999), at(PoolKind::Deadpool, r).map(p999))),
                vs_bare: med(&|r| div(tp(r, thr), bare(r, thr))),
                vs_bare_cpu: med(&|r| div(tp(r, cpu), bare(r, cpu))),
            }
        })
        .collect()
}

fn opt(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.2}"))
}

/// One line per point: tidepool against the goals (from [`paired`]
/// ratios), naming each miss and its size.
pub fn goals_table(samples: &[Sample]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| hold | size | tasks | tidepool ÷ best rival | same, per CPU-s | tidepool-bare ÷ best rival | tidepool p99.9 ÷ deadpool | tidepool ÷ tidepool-bare | same, per CPU-s | goals |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for p in paired(samples) {
        let mut missed = Vec::new();
        if let Some(r) = p.vs_best.filter(|r| *r < 1.0) {
            missed.push(format!(
                "throughput {:.0}% below the best rival",
                100.0 * (1.0 - r)
            ));
        }
        if let Some(r) = p.p999_vs_deadpool.filter(|r| *r > 1.0) {
            missed.push(format!("p99.9 {r:.2}× deadpool's"));
        }
        if let Some(r) = p.vs_bare.filter(|r| *r < 0.9) {
            missed.push(format!("extras cost {:.0}%", 100.0 * (1.0 - r)));
        }
        let verdict = if missed.is_empty() {
            "met".to_string()
        } else {
            format!("missed: {}", missed.join("; "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {verdict} |",
            hold_name(p.hold),
            p.size,
            p.tasks,
            opt(p.vs_best),
            opt(p.vs_best_cpu),
            opt(p.bare_vs_best),
            opt(p.p999_vs_deadpool),
            opt(p.vs_bare),
            opt(p.vs_bare_cpu),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pool: PoolKind, repeat: usize, throughput: f64, p999: u64) -> Sample {
        Sample {
            pool,
            size: 4,
            tasks: 16,
            hold: Hold::Yield,
            repeat,
            cycles: throughput as u64,
            seconds: 1.0,
            throughput,
            cpu_seconds: 2.0,
            cycles_per_cpu_s: throughput / 2.0,
            p50_ns: 100,
            p99_ns: p999 / 2,
            p999_ns: p999,
            max_ns: p999 * 2,
            starved_tasks: 0,
            errors: 0,
            first_error: None,
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[1.0, 10.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summaries_take_the_median_of_each_repeat_and_keep_pool_order() {
        let samples = vec![
            sample(PoolKind::Deadpool, 0, 100.0, 1000),
            sample(PoolKind::Tidepool, 0, 90.0, 900),
            sample(PoolKind::Deadpool, 1, 300.0, 3000),
            sample(PoolKind::Tidepool, 1, 110.0, 1100),
            sample(PoolKind::Deadpool, 2, 200.0, 2000),
            sample(PoolKind::Tidepool, 2, 500.0, 5000),
        ];
        let s = summarize(&samples);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].pool, PoolKind::Tidepool);
        assert_eq!(s[0].throughput, 110.0);
        assert_eq!(s[0].throughput_min, 90.0);
        assert_eq!(s[0].throughput_max, 500.0);
        assert_eq!(s[1].pool, PoolKind::Deadpool);
        assert_eq!(s[1].throughput, 200.0);
        assert_eq!(s[1].p999_ns, 2000.0);
    }

    #[test]
    fn the_goals_table_names_what_tidepool_missed_and_by_how_much() {
        let samples = vec![
            sample(PoolKind::Tidepool, 0, 80.0, 3000),
            sample(PoolKind::TidepoolBare, 0, 100.0, 900),
            sample(PoolKind::Deadpool, 0, 100.0, 1000),
            sample(PoolKind::Bb8, 0, 50.0, 1000),
        ];
        let table = goals_table(&samples);
        assert!(
            table.contains("throughput 20% below the best rival"),
            "{table}"
        );
        assert!(table.contains("p99.9 3.00× deadpool's"), "{table}");
        assert!(table.contains("extras cost 20%"), "{table}");
    }

    #[test]
    fn paired_ratios_compare_pools_within_each_repeat() {
        // The machine was twice as fast in repeat 1: ratios of medians
        // would mix the two, per-repeat ratios do not.
        let samples = vec![
            sample(PoolKind::Tidepool, 0, 90.0, 1000),
            sample(PoolKind::Deadpool, 0, 100.0, 1000),
            sample(PoolKind::Tidepool, 1, 180.0, 1000),
            sample(PoolKind::Deadpool, 1, 200.0, 1000),
            sample(PoolKind::Tidepool, 2, 95.0, 1000),
            sample(PoolKind::Deadpool, 2, 200.0, 1000),
        ];
        let p = paired(&samples);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].vs_best, Some(0.9));
        assert_eq!(p[0].p999_vs_deadpool, Some(1.0));
        assert_eq!(p[0].vs_bare, None);
    }

    #[test]
    fn point_tables_show_ratios_against_deadpool_and_the_best_rival() {
        let samples = vec![
            sample(PoolKind::Tidepool, 0, 150.0, 1000),
            sample(PoolKind::Deadpool, 0, 100.0, 2000),
            sample(PoolKind::Bb8, 0, 200.0, 1000),
        ];
        let table = point_tables(&summarize(&samples));
        assert!(table.contains("best rival (bb8)"), "{table}");
        let row = table
            .lines()
            .find(|l| l.starts_with("| tidepool |"))
            .unwrap_or_default();
        assert!(
            row.contains("| 1.50 | 0.75 | 75 /s | 0.75 | 2.00 |"),
            "{row}"
        );
        assert!(row.contains("| 0.50 |"), "{row}");
    }
}
