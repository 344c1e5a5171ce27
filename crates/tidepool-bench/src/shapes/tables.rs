//! Markdown from repeated runs: per configuration the median of each
//! figure with its spread (lowest–highest repeat), ratios taken inside each
//! repeat (the two pools ran minutes apart, not hours) and then their
//! median, timelines of the gauge and the scaling decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::drive::ShapeRun;
use crate::report::median;

/// One column: its header and the figure it shows.
pub struct Column {
    /// The header.
    pub header: &'static str,
    /// The figure of one run.
    pub value: fn(&ShapeRun) -> f64,
    /// Decimals shown.
    pub decimals: usize,
}

/// `median (lowest–highest)`, or the median alone for one repeat.
pub fn spread(values: &[f64], decimals: usize) -> String {
    let m = median(values);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 {
        format!("{m:.decimals$}")
    } else {
        format!("{m:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
    }
}

/// The runs of `variant`, in repeat order.
pub fn of<'a>(runs: &'a [ShapeRun], variant: &str) -> Vec<&'a ShapeRun> {
    let mut v: Vec<_> = runs.iter().filter(|r| r.variant == variant).collect();
    v.sort_by_key(|r| r.repeat);
    v
}

/// A table with one row per variant (in the order given).
pub fn table(runs: &[ShapeRun], variants: &[String], columns: &[Column]) -> String {
    let mut out = String::from("| pool |");
    for c in columns {
        let _ = write!(out, " {} |", c.header);
    }
    out.push_str("\n|---|");
    for _ in columns {
        out.push_str("---:|");
    }
    out.push('\n');
    for v in variants {
        let rs = of(runs, v);
        if rs.is_empty() {
            continue;
        }
        let _ = write!(out, "| {v} |");
        for c in columns {
            let vals: Vec<f64> = rs.iter().map(|r| (c.value)(r)).collect();
            let _ = write!(out, " {} |", spread(&vals, c.decimals));
        }
        out.push('\n');
    }
    out
}

/// `f(a) ÷ f(b)` inside each repeat both ran in.
pub fn ratios(runs: &[ShapeRun], a: &str, b: &str, f: fn(&ShapeRun) -> f64) -> Vec<f64> {
    let bs: BTreeMap<usize, f64> = of(runs, b).iter().map(|r| (r.repeat, f(r))).collect();
    of(runs, a)
        .iter()
        .filter_map(|r| bs.get(&r.repeat).map(|d| f(r) / d))
        .collect()
}

/// One line against a goal: the ratio's median and spread, and whether
/// the median meets it (`at_least`: the ratio must be ≥ `goal`, else ≤).
pub fn goal_line(what: &str, values: &[f64], goal: f64, at_least: bool) -> String {
    if values.is_empty() {
        return format!("- {what}: not measured\n");
    }
    let m = median(values);
    let met = if at_least { m >= goal } else { m <= goal };
    let sign = if at_least { "≥" } else { "≤" };
    format!(
        "- {what}: **{}** (goal {sign} {goal}: {})\n",
        spread(values, 2),
        if met { "met" } else { "missed" }
    )
}

/// The gauge every `every_s` seconds, for one run.
pub fn timeline(run: &ShapeRun, every_s: f64) -> String {
    let mut out = String::from(
        "| t (s) | clients | open | warm target | limit | in use | waiting | hold mean ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut next = 0.0;
    for t in &run.timeline {
        if t.at_s + 1e-6 >= next {
            let g = t.gauge;
            let _ = writeln!(
                out,
                "| {:.0} | {} | {} | {} | {} | {} | {} | {:.2} |",
                t.at_s,
                t.clients,
                g.size,
                g.warm_target,
                g.limit,
                g.in_use,
                g.waiting,
                g.hold_mean_us / 1e3
            );
            next += every_s;
        }
    }
    out
}

/// The scaling decisions of one run, one line each (at most `limit`).
pub fn decisions(run: &ShapeRun, limit: usize) -> String {
    let mut out = String::new();
    for d in run.decisions.iter().take(limit) {
        let _ = writeln!(
            out,
            "  {:6.2}s {} {} → {} ({}, demand {:.1}, load factor {:.2})",
            d.at_s, d.knob, d.from, d.to, d.reason, d.demand, d.load_factor
        );
    }
    if run.decisions.len() > limit {
        let _ = writeln!(out, "  … {} more", run.decisions.len() - limit);
    }
    out
}
