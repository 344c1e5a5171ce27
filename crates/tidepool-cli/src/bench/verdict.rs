//! The conclusion a newcomer reads first: at each level, which side won,
//! by how much and why, then what to try next. Drawn from the measured
//! figures only, with every comparison saying which direction is better;
//! the text report and the HTML page both render this one [`Verdict`], so
//! they cannot tell different stories.
//!
//! "Why" rests on one identity: latency = time waiting in `get()` + time
//! running the operation. The mean of each is measured, so where the time
//! went is arithmetic, not a guess.

use serde::Serialize;

use super::results::{Aggregate, BenchReport, LevelSummary};
use crate::target::Dialect;

/// Below this relative difference in throughput, one run cannot tell the
/// two sides apart: on a shared two-core machine the same side's figure
/// moves by about this much from one run to the next. Repeats use their
/// spread instead.
const NOISE: f64 = 0.10;

/// Which side a comparison favours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Winner {
    Baseline,
    Tuned,
    /// Within noise.
    Neither,
}

/// The verdict at one level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelVerdict {
    pub concurrency: u32,
    /// Who served more operations per second, beyond noise.
    pub throughput: Winner,
    /// Who had the lower median and the lower 99th percentile latency
    /// (a difference under 10% is `Neither`).
    pub p50_latency: Winner,
    pub p99_latency: Winner,
    /// One sentence: who won and by how much.
    pub headline: String,
    /// The latency comparisons and where the time went, one sentence each.
    pub details: Vec<String>,
    /// No difference between the pools explains the gap at this level, so
    /// noise between runs is the likeliest cause.
    #[serde(skip)]
    pub noise_suspected: bool,
}

/// The whole conclusion.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The result across levels, in a sentence or two.
    pub summary: String,
    pub levels: Vec<LevelVerdict>,
    /// What to try next, each following from something measured.
    pub next: Vec<String>,
}

/// A number of operations per second, with thousands separators.
pub fn ops(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with about three significant digits.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.3} ms")
    }
}

/// "17% more" or "3.2x more": how much `a` exceeds `b` (both positive).
fn how_much(a: f64, b: f64) -> String {
    let r = a / b;
    if r >= 1.995 {
        format!("{r:.1}x")
    } else {
        format!("{:.0}%", (r - 1.0) * 100.0)
    }
}

fn side(w: Winner) -> &'static str {
    match w {
        Winner::Baseline => "baseline",
        Winner::Tuned => "tuned",
        Winner::Neither => "neither",
    }
}

/// Compares a lower-is-better latency; a 10% margin counts as a draw.
fn lower_wins(baseline: f64, tuned: f64) -> Winner {
    if baseline <= 0.0 || tuned <= 0.0 {
        return Winner::Neither;
    }
    if tuned < baseline / 1.1 {
        Winner::Tuned
    } else if baseline < tuned / 1.1 {
        Winner::Baseline
    } else {
        Winner::Neither
    }
}

fn throughput_winner(b: &Aggregate, t: &Aggregate) -> Winner {
    if b.throughput_ops_s <= 0.0 || t.throughput_ops_s <= 0.0 {
        return Winner::Neither;
    }
    if b.runs > 1 && t.runs > 1 {
        // With repeats, a side wins only if all its runs beat all the other's.
        if t.throughput_range.0 > b.throughput_range.1 {
            return Winner::Tuned;
        }
        if b.throughput_range.0 > t.throughput_range.1 {
            return Winner::Baseline;
        }
        return Winner::Neither;
    }
    let d = t.throughput_ops_s / b.throughput_ops_s - 1.0;
    if d >= NOISE {
        Winner::Tuned
    } else if d <= -NOISE / (1.0 + NOISE) {
        Winner::Baseline
    } else {
        Winner::Neither
    }
}

fn latency_sentence(what: &str, b: f64, t: f64, w: Winner) -> String {
    let figures = format!("tuned {} vs baseline {}", ms(t), ms(b));
    match w {
        Winner::Tuned => format!(
            "{what} latency (lower is better): {figures}, tuned {} lower.",
            how_lower(b, t)
        ),
        Winner::Baseline => format!(
            "{what} latency (lower is better): {figures}, baseline {} lower.",
            how_lower(t, b)
        ),
        Winner::Neither => format!("{what} latency (lower is better): {figures}, about the same."),
    }
}

/// "25x" or "40%": how much lower `small` is than `big`.
fn how_lower(big: f64, small: f64) -> String {
    let r = big / small;
    if r >= 9.95 {
        format!("{r:.0}x")
    } else if r >= 1.995 {
        format!("{r:.1}x")
    } else {
        format!("{:.0}%", (1.0 - small / big) * 100.0)
    }
}

/// Mean time in `get()` and mean time running the operation.
fn split(a: &Aggregate) -> (f64, f64) {
    let wait = a.acquire_wait.mean_ms;
    (wait, (a.latency.mean_ms - wait).max(0.0))
}

fn level(l: &LevelSummary, r: &BenchReport) -> Option<LevelVerdict> {
    let c = l.concurrency;
    let (b, t) = match (&l.baseline, &l.tuned) {
        (Some(b), Some(t)) => (b, t),
        (Some(_), None) | (None, Some(_)) => {
            let only = if l.baseline.is_some() {
                "baseline"
            } else {
                "tuned"
            };
            return Some(LevelVerdict {
                concurrency: c,
                throughput: Winner::Neither,
                p50_latency: Winner::Neither,
                p99_latency: Winner::Neither,
                headline: format!(
                    "only {only} was measured (interrupted), so there is no comparison"
                ),
                details: Vec::new(),
                noise_suspected: false,
            });
        }
        (None, None) => return None,
    };
    let throughput = throughput_winner(b, t);
    let (bt, tt) = (b.throughput_ops_s, t.throughput_ops_s);
    let headline = match throughput {
        Winner::Tuned => format!(
            "tuned won: {} more operations per second ({} vs {} ops/s; higher is better)",
            how_much(tt, bt),
            ops(tt),
            ops(bt)
        ),
        Winner::Baseline => format!(
            "baseline won: {} more operations per second ({} vs {} ops/s; higher is better)",
            how_much(bt, tt),
            ops(bt),
            ops(tt)
        ),
        Winner::Neither if b.runs > 1 && t.runs > 1 => format!(
            "a draw on throughput: tuned {} vs baseline {} ops/s, and the repeats of the two overlap",
            ops(tt),
            ops(bt)
        ),
        Winner::Neither => format!(
            "a draw on throughput: tuned {} vs baseline {} ops/s, {:.0}% apart, within what one run can tell apart",
            ops(tt),
            ops(bt),
            (tt / bt - 1.0).abs() * 100.0
        ),
    };
    let p50 = lower_wins(b.latency.p50_ms, t.latency.p50_ms);
    let p99 = lower_wins(b.latency.p99_ms, t.latency.p99_ms);
    let mut details = vec![
        latency_sentence("Median", b.latency.p50_ms, t.latency.p50_ms, p50),
        latency_sentence("p99", b.latency.p99_ms, t.latency.p99_ms, p99),
    ];

    let (bw, bo) = split(b);
    let (tw, to) = split(t);
    details.push(format!(
        "Where the time went, per operation on average: baseline {} waiting in get() + {} running it; tuned {} + {}.",
        ms(bw),
        ms(bo),
        ms(tw),
        ms(to)
    ));
    if throughput != Winner::Neither && b.latency.mean_ms > 0.0 && t.latency.mean_ms > 0.0 {
        // A closed loop: each client waits for its answer before asking
        // again, so throughput is clients / mean latency (Little's law).
        let per_s = |mean_ms: f64| f64::from(c) / (mean_ms / 1000.0);
        details.push(format!(
            "Each client waits for its answer before asking again, so throughput is about clients / mean latency: tuned {c} / {} = {}, baseline {c} / {} = {} ops/s.",
            ms(t.latency.mean_ms),
            ops(per_s(t.latency.mean_ms)),
            ms(b.latency.mean_ms),
            ops(per_s(b.latency.mean_ms)),
        ));
    }
    let (bmax, tmax) = (b.pool_size_range.1, t.pool_size_range.1);
    let mut why = Vec::new();
    if bw > 0.5 * bo && bw > 0.05 && c as usize > bmax {
        why.push(format!(
            "baseline's {bmax} connections were fewer than the {c} clients, so clients queued in the pool"
        ));
    }
    if tw > 0.5 * to && tw > 0.05 && c as usize > tmax {
        why.push(format!(
            "tuned's {tmax} connections were fewer than the {c} clients, so clients queued in the pool"
        ));
    }
    if to > 1.3 * bo && to - bo > 0.05 && tmax > bmax {
        let mut s = format!(
            "tuned, with up to {tmax} connections open, let more operations into the database at once, and each took longer there"
        );
        if r.dialect == Dialect::Sqlite {
            s.push_str(": SQLite runs one writer at a time, and a writer that finds the lock taken sleeps and retries (SQLite's busy handler), which is slower and less even than waiting in the pool's first-come, first-served queue");
        }
        why.push(s);
    } else if bo > 1.3 * to && bo - to > 0.05 && bmax > tmax {
        why.push(format!(
            "baseline, with {bmax} connections, let more operations into the database at once, and each took longer there"
        ));
    }
    let mut noise_suspected = false;
    if why.is_empty() && bw < 0.05 && tw < 0.05 {
        if lower_wins(bo, to) == Winner::Neither {
            why.push(
                "neither pool made clients wait and the operations ran alike, so all that differs is what each pool does per checkout (tuned validates a connection idle for more than 500 ms before handing it out), small next to an operation, and noise"
                    .to_string(),
            );
        } else {
            let (faster, slower) = if to < bo {
                ("tuned", "baseline")
            } else {
                ("baseline", "tuned")
            };
            why.push(format!(
                "neither pool made clients wait, yet operations ran faster on {faster}'s connections than on {slower}'s ({} vs {}); with {} and {} connections open for {c} clients, no setting of either pool explains that, so it is most likely noise between the two runs",
                ms(to.min(bo)),
                ms(to.max(bo)),
                tmax.min(bmax),
                tmax.max(bmax),
            ));
            noise_suspected = true;
        }
    }
    if !why.is_empty() {
        let mut s = why.join("; ");
        if let Some(first) = s.get(..1) {
            s = first.to_uppercase() + &s[1..];
        }
        details.push(format!("Why: {s}."));
    }
    for (name, a) in [("baseline", b), ("tuned", t)] {
        let failed: u64 = a.errors.values().sum();
        if failed > 0 {
            let kinds: Vec<String> = a.errors.iter().map(|(k, v)| format!("{v} {k}")).collect();
            details.push(format!(
                "{name} had {failed} failed operation(s) ({}, {:.2}% of all); failures are not in its throughput.",
                kinds.join(", "),
                a.error_rate * 100.0
            ));
        }
    }
    Some(LevelVerdict {
        concurrency: c,
        throughput,
        p50_latency: p50,
        p99_latency: p99,
        headline,
        details,
        noise_suspected,
    })
}

/// "10, 25 and 50 clients".
fn levels_text(levels: &[u32]) -> String {
    let names: Vec<String> = levels.iter().map(u32::to_string).collect();
    let list = match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("{list} clients")
}

fn summary(levels: &[LevelVerdict]) -> String {
    if levels.is_empty() {
        return "Nothing was measured.".into();
    }
    let pick = |f: fn(&LevelVerdict) -> Winner, w: Winner| -> Vec<u32> {
        levels
            .iter()
            .filter(|l| f(l) == w)
            .map(|l| l.concurrency)
            .collect()
    };
    let mut parts = Vec::new();
    for (what, f) in [
        (
            "Throughput",
            (|l: &LevelVerdict| l.throughput) as fn(&LevelVerdict) -> Winner,
        ),
        (
            "Median latency (the typical operation)",
            |l: &LevelVerdict| l.p50_latency,
        ),
        ("p99 latency (the slowest 1%)", |l: &LevelVerdict| {
            l.p99_latency
        }),
    ] {
        let mut said = Vec::new();
        for w in [Winner::Tuned, Winner::Baseline] {
            let at = pick(f, w);
            if !at.is_empty() {
                said.push(format!("{} at {}", side(w), levels_text(&at)));
            }
        }
        let draws = pick(f, Winner::Neither);
        if said.is_empty() {
            parts.push(format!("{what}: a draw at every level."));
        } else {
            let draw = if draws.is_empty() {
                String::new()
            } else {
                format!("; a draw at {}", levels_text(&draws))
            };
            parts.push(format!("{what}: {}{draw}.", said.join(", ")));
        }
    }
    parts.join(" ")
}

fn next_steps(r: &BenchReport, levels: &[LevelVerdict]) -> Vec<String> {
    let mut next = Vec::new();
    let both = |c: u32| -> Option<(&Aggregate, &Aggregate)> {
        let l = r.levels.iter().find(|l| l.concurrency == c)?;
        Some((l.baseline.as_ref()?, l.tuned.as_ref()?))
    };
    // The tuned side's extra connections cost tail latency.
    let costly: Vec<u32> = levels
        .iter()
        .filter(|v| v.p99_latency == Winner::Baseline)
        .filter(|v| {
            both(v.concurrency).is_some_and(|(b, t)| t.pool_size_range.1 > b.pool_size_range.1)
        })
        .map(|v| v.concurrency)
        .collect();
    if !costly.is_empty() {
        let fixed = r
            .configurations
            .first()
            .and_then(|c| c.by_level.values().next())
            .map_or(10, |c| c.max_size);
        let target = if r.dialect == Dialect::Sqlite {
            "SQLite gains little from more than a few connections (one writer at a time)"
                .to_string()
        } else {
            "a database runs only so many queries at once well (`tidepool size --cores N` estimates how many)".to_string()
        };
        next.push(format!(
            "At {} tuned's extra connections cost tail latency: {target}. Try the tuned side capped near the baseline's size: a pool.toml with `max_size = {fixed}` and `min_size = {}`, run as `tidepool bench --config pool.toml`, and compare p99.",
            levels_text(&costly),
            (fixed / 4).max(2)
        ));
    }
    // The baseline's fixed size was the bottleneck.
    let starved: Vec<u32> = levels
        .iter()
        .filter(|v| {
            both(v.concurrency).is_some_and(|(b, _)| {
                let (w, o) = split(b);
                w > o && v.concurrency as usize > b.pool_size_range.1
            })
        })
        .map(|v| v.concurrency)
        .collect();
    if let Some(&worst) = starved.iter().max() {
        next.push(format!(
            "At {} baseline clients spent most of their time waiting for one of its connections: `--baseline-size {worst}` shows a fixed pool as large as the load.",
            levels_text(&starved)
        ));
    }
    let failed = r.levels.iter().any(|l| {
        [&l.baseline, &l.tuned]
            .into_iter()
            .flatten()
            .any(|a| a.errors.values().sum::<u64>() > 0)
    });
    if failed {
        next.push(
            "Some operations failed (see the errors column): timeouts mean a client waited longer than --acquire-timeout for a connection; other kinds come from the database."
                .to_string(),
        );
    }
    let close = levels
        .iter()
        .any(|v| v.throughput == Winner::Neither || v.noise_suspected);
    if r.repeat == 1 && close {
        next.push(
            "Differences of a few percent are within run-to-run noise on a shared machine: `--repeat 3` runs everything three times and calls a winner only when all its runs beat all the other side's."
                .to_string(),
        );
    }
    if r.temporary_database {
        next.push(
            "This ran on a temporary SQLite file. `--url postgres://...` or `--url mysql://...` runs the same workload on your own server, where opening a connection costs a network round trip and the pool's choices weigh differently."
                .to_string(),
        );
    }
    next
}

/// The conclusion of a report.
pub fn conclude(r: &BenchReport) -> Verdict {
    let levels: Vec<LevelVerdict> = r.levels.iter().filter_map(|l| level(l, r)).collect();
    Verdict {
        summary: summary(&levels),
        next: next_steps(r, &levels),
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_easily() {
        assert_eq!(ops(18_114.4), "18,114");
        assert_eq!(ops(999.0), "999");
        assert_eq!(ops(1_234_567.0), "1,234,567");
        assert_eq!(ms(0.0012), "0.001 ms");
        assert_eq!(ms(2.561), "2.56 ms");
        assert_eq!(ms(54.37), "54.4 ms");
        assert_eq!(how_much(18_114.0, 15_469.0), "17%");
        assert_eq!(how_much(40.0, 10.0), "4.0x");
        assert_eq!(how_lower(2.56, 0.10), "26x");
        assert_eq!(how_lower(54.4, 13.6), "4.0x");
        assert_eq!(how_lower(1.0, 0.75), "25%");
    }

    #[test]
    fn a_latency_within_ten_percent_is_a_draw_and_lower_wins_otherwise() {
        assert_eq!(lower_wins(1.0, 1.05), Winner::Neither);
        assert_eq!(lower_wins(1.0, 0.5), Winner::Tuned);
        assert_eq!(lower_wins(1.0, 2.0), Winner::Baseline);
    }

    use crate::bench::results::{ConfigurationInfo, Latency};

    fn side_of(
        tps: f64,
        mean: f64,
        wait: f64,
        p50: f64,
        p99: f64,
        pool: (usize, usize),
    ) -> Aggregate {
        let lat = |mean, p50, p99| Latency {
            count: 1000,
            mean_ms: mean,
            p50_ms: p50,
            p95_ms: p99,
            p99_ms: p99,
            max_ms: p99,
        };
        Aggregate {
            runs: 1,
            ops: 1000,
            measured_s: 5.0,
            throughput_ops_s: tps,
            throughput_range: (tps, tps),
            latency: lat(mean, p50, p99),
            acquire_wait: lat(wait, wait, wait),
            errors: Default::default(),
            error_rate: 0.0,
            pool_size_range: pool,
            warm_target: (pool.0, pool.0 as f64, pool.0),
            limit: (pool.1, pool.1 as f64, pool.1),
            interrupted: false,
        }
    }

    /// The figures of a real run on SQLite: at 50 clients the baseline's 10
    /// connections queue clients in the pool; the tuned pool opens 50 and
    /// the queue moves into SQLite.
    fn sqlite_run() -> BenchReport {
        let level = |c: u32, b: Aggregate, t: Aggregate| LevelSummary {
            concurrency: c,
            baseline: Some(b),
            tuned: Some(t),
            tuned_over_baseline: None,
        };
        let mut by_level = std::collections::BTreeMap::new();
        by_level.insert(
            10,
            crate::bench::configs::baseline(10, std::time::Duration::from_secs(5)),
        );
        BenchReport {
            tool: "tidepool bench".into(),
            version: "0".into(),
            started_unix_s: 0,
            target: "sqlite://x".into(),
            dialect: Dialect::Sqlite,
            server_version: None,
            temporary_database: true,
            seed: crate::workload::Seeded {
                users: 1,
                orders: 1,
                events: 1,
                took_ms: 1.0,
            },
            concurrency: vec![10, 50],
            duration_s: 5.0,
            warmup_s: 1.0,
            repeat: 1,
            mix: crate::settings::Mix {
                read: 70,
                write: 20,
                txn: 10,
            },
            shape: crate::settings::Shape::Steady,
            acquire_timeout_s: 5.0,
            cpus: 2,
            configurations: vec![ConfigurationInfo {
                name: "baseline".into(),
                description: String::new(),
                by_level,
            }],
            levels: vec![
                level(
                    10,
                    side_of(19_010.0, 0.52, 0.001, 0.05, 8.52, (10, 10)),
                    side_of(19_330.0, 0.48, 0.001, 0.05, 8.44, (10, 10)),
                ),
                level(
                    50,
                    side_of(15_469.0, 3.23, 2.58, 2.56, 13.6, (10, 10)),
                    side_of(18_114.0, 2.63, 0.001, 0.10, 54.4, (12, 50)),
                ),
            ],
            runs: Vec::new(),
            interrupted: false,
            conclusion: None,
        }
    }

    #[test]
    fn each_level_names_its_winner_by_how_much_and_why() {
        let v = conclude(&sqlite_run());
        let (ten, fifty) = (&v.levels[0], &v.levels[1]);
        assert_eq!(ten.throughput, Winner::Neither);
        assert!(
            ten.headline.starts_with("a draw on throughput"),
            "{}",
            ten.headline
        );
        assert!(ten
            .details
            .iter()
            .any(|d| d.contains("Why: Neither pool made clients wait")));

        assert_eq!(fifty.throughput, Winner::Tuned);
        assert_eq!(fifty.p50_latency, Winner::Tuned);
        assert_eq!(fifty.p99_latency, Winner::Baseline);
        assert_eq!(
            fifty.headline,
            "tuned won: 17% more operations per second (18,114 vs 15,469 ops/s; higher is better)"
        );
        let text = fifty.details.join(" ");
        assert!(text.contains("p99 latency (lower is better): tuned 54.4 ms vs baseline 13.6 ms, baseline 4.0x lower."), "{text}");
        assert!(
            text.contains("baseline 2.58 ms waiting in get() + 0.650 ms running it"),
            "{text}"
        );
        assert!(
            text.contains("Baseline's 10 connections were fewer than the 50 clients"),
            "{text}"
        );
        assert!(text.contains("SQLite runs one writer at a time"), "{text}");
        assert!(
            text.contains("throughput is about clients / mean latency: tuned 50 / 2.63 ms = 19,011, baseline 50 / 3.23 ms = 15,480 ops/s."),
            "{text}"
        );
    }

    #[test]
    fn a_win_no_difference_between_the_pools_explains_is_called_likely_noise() {
        let mut r = sqlite_run();
        r.levels[0].tuned = Some(side_of(22_761.0, 0.427, 0.001, 0.042, 8.34, (10, 10)));
        r.levels[0].baseline = Some(side_of(19_625.0, 0.503, 0.001, 0.048, 8.47, (10, 10)));
        let v = conclude(&r);
        assert_eq!(v.levels[0].throughput, Winner::Tuned);
        let why = v.levels[0].details.join(" ");
        assert!(
            why.contains("most likely noise between the two runs"),
            "{why}"
        );
        assert!(v.next.iter().any(|n| n.contains("`--repeat 3`")));
    }

    #[test]
    fn the_summary_and_next_steps_follow_from_the_figures() {
        let v = conclude(&sqlite_run());
        assert_eq!(
            v.summary,
            "Throughput: tuned at 50 clients; a draw at 10 clients. Median latency (the typical operation): tuned at 50 clients; a draw at 10 clients. p99 latency (the slowest 1%): baseline at 50 clients; a draw at 10 clients."
        );
        let next = v.next.join("\n");
        assert!(
            next.contains("At 50 clients tuned's extra connections cost tail latency"),
            "{next}"
        );
        assert!(next.contains("`max_size = 10`"), "{next}");
        assert!(next.contains("`--baseline-size 50`"), "{next}");
        assert!(next.contains("`--repeat 3`"), "{next}");
        assert!(next.contains("--url postgres://"), "{next}");
    }

    #[test]
    fn levels_are_listed_as_a_sentence() {
        assert_eq!(levels_text(&[10]), "10 clients");
        assert_eq!(levels_text(&[10, 25, 50]), "10, 25 and 50 clients");
    }
}
