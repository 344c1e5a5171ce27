//! The report printed on stdout: what ran, both configurations in words,
//! one table row per level and configuration with the tuned/baseline
//! ratio under each level (saying which way is better), then the
//! conclusion: who won at each level, by how much and why, and what to try
//! next (see [`super::verdict`]).

use std::fmt::Write;

use super::results::{Aggregate, BenchReport};
use super::verdict::Verdict;

fn errors_cell(a: &Aggregate) -> String {
    let total: u64 = a.errors.values().sum();
    if total == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = a.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{:.2}% ({})", a.error_rate * 100.0, kinds.join(", "))
}

/// Renders the report as plain text.
pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tidepool bench: {} {}{}",
        r.dialect_name(),
        r.server_version.as_deref().unwrap_or(""),
        if r.temporary_database {
            " (temporary database, removed afterwards)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "target:   {}", r.target);
    let _ = writeln!(
        out,
        "data:     {} users, {} orders, {} events (seeded in {:.0} ms)",
        r.seed.users, r.seed.orders, r.seed.events, r.seed.took_ms
    );
    let _ = writeln!(
        out,
        "workload: mix {} | warm-up {:.1}s + {:.1}s measured per level and configuration | {} repeat(s) | {} CPUs",
        r.mix, r.warmup_s, r.duration_s, r.repeat, r.cpus
    );
    if r.shape != crate::settings::Shape::Steady {
        let _ = writeln!(
            out,
            "shape:    {} (the client count moves over each run; the level is its peak)",
            r.shape
        );
    }
    for c in &r.configurations {
        let _ = writeln!(out, "{:<9} {}", format!("{}:", c.name), c.description);
    }
    let _ = writeln!(
        out,
        "latency = get() + operation; acquire = time in get(); figures are measured, per level merged over repeats"
    );
    let _ = writeln!(out);
    let header = format!(
        "{:>5}  {:<9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}  {}",
        "conc",
        "config",
        "ops/s",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "acq p50",
        "acq p99",
        "pool size",
        "errors"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len().max(100)));
    for level in &r.levels {
        for (name, agg) in [("baseline", &level.baseline), ("tuned", &level.tuned)] {
            let Some(a) = agg else { continue };
            let _ = writeln!(
                out,
                "{:>5}  {:<9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>9.3} {:>9}  {}{}",
                level.concurrency,
                name,
                a.throughput_ops_s,
                a.latency.mean_ms,
                a.latency.p50_ms,
                a.latency.p95_ms,
                a.latency.p99_ms,
                a.latency.max_ms,
                a.acquire_wait.p50_ms,
                a.acquire_wait.p99_ms,
                format!("{}-{}", a.pool_size_range.0, a.pool_size_range.1),
                errors_cell(a),
                if a.interrupted { " (interrupted)" } else { "" }
            );
        }
        for (name, agg) in [("baseline", &level.baseline), ("tuned", &level.tuned)] {
            let Some(a) = agg else { continue };
            let (wl, wm, wh) = a.warm_target;
            let (ll, lm, lh) = a.limit;
            let limit = if ll == lh {
                format!("{ll}")
            } else {
                format!("min {ll} / avg {lm:.1} / max {lh}")
            };
            let _ = writeln!(
                out,
                "{:>5}  {name} over time: warm target min {wl} / avg {wm:.1} / max {wh}, limit {limit}",
                ""
            );
        }
        if let Some(ratio) = &level.tuned_over_baseline {
            let _ = writeln!(
                out,
                "{:>5}  tuned/baseline: throughput {:.2}x (higher is better), latency p50 {:.2}x and p99 {:.2}x (lower is better)",
                "", ratio.throughput, ratio.p50_latency, ratio.p99_latency
            );
        }
    }
    if r.levels.is_empty() {
        let _ = writeln!(out, "(nothing was measured)");
    }
    if let Some(v) = &r.conclusion {
        conclusion(&mut out, v);
    }
    if r.interrupted {
        let _ = writeln!(
            out,
            "\ninterrupted: the figures above cover what was measured before Ctrl-C"
        );
    }
    out
}

const WIDTH: usize = 100;

/// Writes `text` wrapped at [`WIDTH`]: the first line after `first`, the
/// rest indented by `rest` spaces.
fn wrapped(out: &mut String, first: &str, rest: usize, text: &str) {
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(out, "{line}");
            line = " ".repeat(rest);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    let _ = writeln!(out, "{line}");
}

fn conclusion(out: &mut String, v: &Verdict) {
    let _ = writeln!(out, "\nConclusion");
    wrapped(out, " ", 1, &v.summary);
    for l in &v.levels {
        let head = format!("{:>5} clients: ", l.concurrency);
        wrapped(out, &head, head.len(), &l.headline);
        for d in &l.details {
            wrapped(out, &" ".repeat(head.len()), head.len(), d);
        }
    }
    if !v.next.is_empty() {
        let _ = writeln!(out, "\nWhat to try next");
        for n in &v.next {
            wrapped(out, " - ", 3, n);
        }
    }
}
