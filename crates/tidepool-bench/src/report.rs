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
        let _ = writeln!(
            out,
            "| pool | cycles/s | spread | ÷ deadpool | ÷ best rival ({best_name}) | p50 | p99 | p99.9 | p99.9 ÷ deadpool | max | starved tasks |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
                "| {}{errors} | {} | {spread} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
                s.pool.name(),
                fmt_rate(s.throughput),
                ratio(s.throughput, deadpool.as_ref().map(|d| d.throughput)),
                ratio(s.throughput, best.as_ref().map(|d| d.throughput)),
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

/// One line per point: tidepool against the goals, naming each miss and
/// its size. Compare a miss with the point's spread before believing it.
pub fn goals_table(all: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| hold | size | tasks | tidepool ÷ best rival | tidepool-bare ÷ best rival | tidepool p99.9 ÷ deadpool | tidepool ÷ tidepool-bare | goals |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for tp in all.iter().filter(|s| s.pool == PoolKind::Tidepool) {
        let best = best_rival(all, tp);
        let bare = find(all, tp, PoolKind::TidepoolBare);
        let dead = find(all, tp, PoolKind::Deadpool);
        let mut missed = Vec::new();
        if let Some(b) = &best {
            if tp.throughput < b.throughput {
                missed.push(format!(
                    "throughput {:.0}% below {}",
                    100.0 * (1.0 - tp.throughput / b.throughput),
                    b.pool.name()
                ));
            }
        }
        if let Some(d) = &dead {
            if tp.p999_ns > d.p999_ns {
                missed.push(format!("p99.9 {:.2}× deadpool's", tp.p999_ns / d.p999_ns));
            }
        }
        if let Some(b) = &bare {
            if tp.throughput < 0.9 * b.throughput {
                missed.push(format!(
                    "extras cost {:.0}%",
                    100.0 * (1.0 - tp.throughput / b.throughput)
                ));
            }
        }
        let verdict = if missed.is_empty() {
            "met".to_string()
        } else {
            format!("missed: {}", missed.join("; "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {verdict} |",
            hold_name(tp.hold),
            tp.size,
            tp.tasks,
            ratio(tp.throughput, best.as_ref().map(|b| b.throughput)),
            bare.as_ref().map_or("–".into(), |b| ratio(
                b.throughput,
                best.as_ref().map(|x| x.throughput)
            )),
            ratio(tp.p999_ns, dead.as_ref().map(|d| d.p999_ns)),
            ratio(tp.throughput, bare.as_ref().map(|b| b.throughput)),
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
        let table = goals_table(&summarize(&samples));
        assert!(table.contains("throughput 20% below deadpool"), "{table}");
        assert!(table.contains("p99.9 3.00× deadpool's"), "{table}");
        assert!(table.contains("extras cost 20%"), "{table}");
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
        assert!(row.contains("| 1.50 | 0.75 |"), "{row}");
        assert!(row.contains("| 0.50 |"), "{row}");
    }
}
