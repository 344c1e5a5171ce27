//! The `--report` page: one self-contained HTML file (inline CSS and SVG,
//! no script, no external resource). It opens with the conclusion (the
//! same [`crate::bench::verdict`] the text report prints), then what ran,
//! the figures table, four charts by concurrency (throughput, where the
//! time went, latency and acquire-wait percentiles) and, per level, the
//! pool and the acquire wait over time with one panel per configuration so
//! that neither side's lines can cover the other's. Every chart grid is
//! two by two: no empty cell.

use std::fmt::Write;

use crate::bench::results::{Aggregate, BenchReport, RunResult, Sample};
use crate::bench::verdict::{LevelVerdict, Verdict, Winner};
use crate::svg::{bar_chart, esc, fmt_num, stacked_bar_chart, LineChart, Series, Stack};

const BASELINE: &str = "#6b7b8c";
const TUNED: &str = "#e07b00";
/// The lighter shades: time spent waiting in `get()`.
const BASELINE_WAIT: &str = "#c3ccd5";
const TUNED_WAIT: &str = "#f6cf9c";
/// Clients waiting for a connection, on the pool charts of both sides.
const WAITING: &str = "#b03a2e";
/// The concurrency limit line on the pool-over-time charts.
const LIMIT: &str = "#2e6fb0";
/// Side-by-side offset of the two configurations on categorical charts.
const DODGE: f64 = 0.07;

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta, dl, p.note { color: #444; font-size: 14px; }
dt { font-weight: 600; margin-top: 6px; }
dd { margin-left: 16px; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; }
td.l, th.l { text-align: left; }
tr.ratio td { color: #555; font-style: italic; border-bottom: 2px solid #ddd; }
tr.ratio td.win-tuned { color: #b35f00; font-weight: 600; font-style: normal; }
tr.ratio td.win-baseline { color: #46535f; font-weight: 600; font-style: normal; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.grid svg { width: 100%; height: auto; border: 1px solid #e6e6e6; border-radius: 4px; }
.verdict { background: #f7f9fb; border: 1px solid #dde3ea; border-radius: 4px; padding: 4px 18px 10px; font-size: 14px; line-height: 1.45; }
.verdict ul { padding-left: 18px; }
.verdict li { margin-bottom: 6px; }
.verdict li li { margin-bottom: 2px; }
.warn { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px 12px; border-radius: 4px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: middle; margin-right: 4px; }
"#;

fn color_of(name: &str) -> &'static str {
    if name == "tuned" {
        TUNED
    } else {
        BASELINE
    }
}

fn agg_row(out: &mut String, level: u32, name: &str, a: &Aggregate) {
    let errors: u64 = a.errors.values().sum();
    let err_text = if errors == 0 {
        "0".to_string()
    } else {
        let kinds: Vec<String> = a.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!("{:.2}% ({})", a.error_rate * 100.0, kinds.join(", "))
    };
    let _ = write!(
        out,
        "<tr><td>{level}</td><td class=l><span class=swatch style=\"background:{}\"></span>{name}{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{:.3}</td><td>{}&ndash;{}</td><td class=l>{}</td></tr>",
        color_of(name),
        if a.interrupted { " (interrupted)" } else { "" },
        a.throughput_ops_s,
        a.latency.mean_ms,
        a.latency.p50_ms,
        a.latency.p95_ms,
        a.latency.p99_ms,
        a.latency.max_ms,
        a.acquire_wait.p50_ms,
        a.acquire_wait.p99_ms,
        a.pool_size_range.0,
        a.pool_size_range.1,
        esc(&err_text)
    );
}

/// The class of a ratio cell: coloured by the side the verdict favours.
fn win_class(w: Option<Winner>) -> &'static str {
    match w {
        Some(Winner::Tuned) => " class=win-tuned",
        Some(Winner::Baseline) => " class=win-baseline",
        _ => "",
    }
}

fn by_level<'a>(
    r: &'a BenchReport,
    pick: impl Fn(&'a Aggregate) -> f64,
    tuned: bool,
) -> Vec<(f64, f64)> {
    r.levels
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let a = if tuned { &l.tuned } else { &l.baseline };
            a.as_ref().map(|a| (i as f64, pick(a)))
        })
        .collect()
}

fn per_level(r: &BenchReport, tuned: bool, pick: impl Fn(&Aggregate) -> f64) -> Vec<f64> {
    r.levels
        .iter()
        .map(|l| {
            let a = if tuned { &l.tuned } else { &l.baseline };
            a.as_ref().map_or(f64::NAN, &pick)
        })
        .collect()
}

fn categories(r: &BenchReport) -> Vec<String> {
    r.levels.iter().map(|l| l.concurrency.to_string()).collect()
}

/// One percentile line: its label, dash pattern and figure.
type Percentile = (&'static str, &'static str, fn(&Aggregate) -> f64);

/// Percentile lines by level, the two sides dodged apart.
fn percentile_chart(r: &BenchReport, title: &str, y_label: &str, lines: &[Percentile]) -> String {
    let mut series = Vec::new();
    for (name, color, tuned, offset) in [
        ("baseline", BASELINE, false, -DODGE),
        ("tuned", TUNED, true, DODGE),
    ] {
        for (label, dash, pick) in lines {
            series.push(
                Series::line(
                    format!("{name} {label}"),
                    color,
                    dash,
                    by_level(r, pick, tuned),
                )
                .dodged(offset),
            );
        }
    }
    LineChart {
        title: title.into(),
        x_label: "concurrent clients".into(),
        y_label: y_label.into(),
        series,
        x_categories: Some(categories(r)),
        log_y: true,
        y_at_least: 0.0,
        y_max: None,
        shade: None,
        width: 560.0,
        height: 340.0,
    }
    .render()
}

fn latency_chart(r: &BenchReport) -> String {
    percentile_chart(
        r,
        "Latency by concurrency (log scale; lower is better)",
        "latency, ms",
        &[
            ("p50", "", |a| a.latency.p50_ms),
            ("p95", "6 3", |a| a.latency.p95_ms),
            ("p99", "2 3", |a| a.latency.p99_ms),
        ],
    )
}

fn acquire_chart(r: &BenchReport) -> String {
    percentile_chart(
        r,
        "Acquire wait in get() by concurrency (log; lower is better)",
        "acquire wait, ms",
        &[
            ("p50", "", |a| a.acquire_wait.p50_ms),
            ("p99", "2 3", |a| a.acquire_wait.p99_ms),
        ],
    )
}

fn throughput_chart(r: &BenchReport) -> String {
    bar_chart(
        "Throughput by concurrency (higher is better)",
        "concurrent clients",
        "operations per second",
        &categories(r),
        &[
            (
                "baseline",
                BASELINE,
                per_level(r, false, |a| a.throughput_ops_s),
            ),
            ("tuned", TUNED, per_level(r, true, |a| a.throughput_ops_s)),
        ],
        560.0,
        340.0,
    )
}

/// Mean latency split into waiting in `get()` and running the operation.
fn time_split_chart(r: &BenchReport) -> String {
    let wait = |tuned| per_level(r, tuned, |a| a.acquire_wait.mean_ms);
    let run = |tuned| {
        per_level(r, tuned, |a| {
            (a.latency.mean_ms - a.acquire_wait.mean_ms).max(0.0)
        })
    };
    stacked_bar_chart(
        "Where the time went (mean per operation)",
        "concurrent clients",
        "waiting in get() + running it, ms",
        &categories(r),
        &["baseline", "tuned"],
        &[
            Stack {
                segments: vec![
                    ("baseline: running", BASELINE, run(false)),
                    ("baseline: waiting in get()", BASELINE_WAIT, wait(false)),
                ],
            },
            Stack {
                segments: vec![
                    ("tuned: running", TUNED, run(true)),
                    ("tuned: waiting in get()", TUNED_WAIT, wait(true)),
                ],
            },
        ],
        560.0,
        340.0,
    )
}

fn first_run<'a>(r: &'a BenchReport, level: u32, name: &str) -> Option<&'a RunResult> {
    r.runs
        .iter()
        .find(|x| x.concurrency == level && x.configuration == name)
}

fn timeline(run: &RunResult, y: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    run.timeline.iter().map(|s| (s.t_s, y(s))).collect()
}

/// One configuration's pool over time: connections open (an area), in use
/// (a line over it) and clients waiting (a second colour), on `y_max`.
fn pool_panel(run: &RunResult, name: &str, level: u32, y_max: f64) -> String {
    let color = color_of(name);
    LineChart {
        title: format!("{} pool, {level} clients", capitalized(name)),
        x_label: "seconds since the pool was built".into(),
        y_label: "connections / clients".into(),
        series: vec![
            Series::area("connections open", color, timeline(run, |s| s.size as f64)),
            Series::line("in use", color, "", timeline(run, |s| s.in_use as f64)),
            Series::line(
                "clients waiting",
                WAITING,
                "4 3",
                timeline(run, |s| s.waiting as f64),
            ),
            Series::line(
                "warm target",
                color,
                "2 2",
                timeline(run, |s| s.warm_target as f64),
            ),
            Series::line("limit", LIMIT, "8 3", timeline(run, |s| s.limit as f64)),
        ],
        x_categories: None,
        log_y: false,
        y_at_least: 1.0,
        y_max: Some(y_max),
        shade: (run.warmup_s > 0.0).then(|| (0.0, run.warmup_s, "warm-up".to_string())),
        width: 560.0,
        height: 300.0,
    }
    .render()
}

/// One configuration's acquire wait over time, on an axis of at least a
/// millisecond shared by both panels: microseconds of scheduling noise stay
/// a flat line instead of being stretched into spikes.
fn wait_panel(run: &RunResult, name: &str, level: u32, y_max: f64) -> String {
    LineChart {
        title: format!("Acquire wait, {name}, {level} clients"),
        x_label: "seconds since the pool was built".into(),
        y_label: "mean wait per sample, ms".into(),
        series: vec![Series::line(
            "mean time in get()",
            color_of(name),
            "",
            timeline(run, |s| s.acquire_wait_mean_ms),
        )],
        x_categories: None,
        log_y: false,
        y_at_least: 1.0,
        y_max: Some(y_max),
        shade: (run.warmup_s > 0.0).then(|| (0.0, run.warmup_s, "warm-up".to_string())),
        width: 560.0,
        height: 300.0,
    }
    .render()
}

fn capitalized(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The four over-time panels of one level: pools on top, waits below, each
/// row on one scale so the two sides compare at a glance.
fn over_time(out: &mut String, r: &BenchReport, level: u32) {
    let runs: Vec<(&str, &RunResult)> = ["baseline", "tuned"]
        .into_iter()
        .filter_map(|name| first_run(r, level, name).map(|run| (name, run)))
        .collect();
    if runs.is_empty() {
        return;
    }
    let most = |f: fn(&Sample) -> f64| {
        runs.iter()
            .flat_map(|(_, run)| run.timeline.iter().map(f))
            .fold(0.0, f64::max)
    };
    let pool_max =
        most(|s| (s.size.max(s.in_use).max(s.waiting).max(s.limit)) as f64).max(1.0) * 1.05;
    let wait_max = (most(|s| s.acquire_wait_mean_ms) * 1.05).max(1.0);
    let _ = write!(out, "<h3>{level} clients</h3><div class=grid>");
    for (name, run) in &runs {
        out.push_str(&pool_panel(run, name, level, pool_max));
    }
    for (name, run) in &runs {
        out.push_str(&wait_panel(run, name, level, wait_max));
    }
    out.push_str("</div>");
}

/// Escapes `text`, and sets `backticked` spans (commands, settings) as code.
fn prose(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn conclusion(out: &mut String, v: &Verdict) {
    out.push_str("<h2>Conclusion</h2><div class=verdict>");
    let _ = write!(out, "<p>{}</p><ul>", prose(&v.summary));
    for l in &v.levels {
        level_item(out, l);
    }
    out.push_str("</ul>");
    if !v.next.is_empty() {
        out.push_str("<p><strong>What to try next</strong></p><ul>");
        for n in &v.next {
            let _ = write!(out, "<li>{}</li>", prose(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</div>");
}

fn level_item(out: &mut String, l: &LevelVerdict) {
    let _ = write!(
        out,
        "<li><strong>{} clients: {}.</strong><ul>",
        l.concurrency,
        prose(&l.headline),
    );
    for d in &l.details {
        let _ = write!(out, "<li>{}</li>", prose(d));
    }
    out.push_str("</ul></li>");
}

/// Renders the whole page.
pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width, initial-scale=1\"><title>tidepool bench: {}</title><style>{STYLE}</style></head><body>",
        esc(r.dialect_name())
    );
    let _ = write!(
        out,
        "<h1>tidepool bench &mdash; {} {}</h1><p class=meta>{}{} &middot; {} users, {} orders, {} events seeded in {:.0} ms &middot; mix {} &middot; warm-up {}s + {}s measured per level and configuration &middot; {} repeat(s) &middot; {} CPUs &middot; tidepool {}</p>",
        esc(r.dialect_name()),
        esc(r.server_version.as_deref().unwrap_or("")),
        esc(&r.target),
        if r.temporary_database { " (temporary database)" } else { "" },
        r.seed.users,
        r.seed.orders,
        r.seed.events,
        r.seed.took_ms,
        r.mix,
        fmt_num(r.warmup_s),
        fmt_num(r.duration_s),
        r.repeat,
        r.cpus,
        esc(&r.version)
    );
    if r.interrupted {
        out.push_str("<p class=warn>Interrupted with Ctrl-C: the figures cover what was measured before that.</p>");
    }
    if let Some(v) = &r.conclusion {
        conclusion(&mut out, v);
    }
    out.push_str("<h2>Configurations</h2><dl>");
    for c in &r.configurations {
        let _ = write!(
            out,
            "<dt><span class=swatch style=\"background:{}\"></span>{}</dt><dd>{}</dd>",
            color_of(&c.name),
            esc(&c.name),
            esc(&c.description)
        );
    }
    out.push_str("</dl><p class=meta>Latency runs from asking the pool for a connection to the end of the operation; acquire wait is the part spent in <code>get()</code>. Every figure was measured in this run; levels merge all repeats.</p>");

    out.push_str("<h2>Figures</h2><table><tr><th>clients</th><th class=l>configuration</th><th>ops/s</th><th>mean ms</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>acquire p50 ms</th><th>acquire p99 ms</th><th>pool size</th><th class=l>errors</th></tr>");
    for l in &r.levels {
        if let Some(a) = &l.baseline {
            agg_row(&mut out, l.concurrency, "baseline", a);
        }
        if let Some(a) = &l.tuned {
            agg_row(&mut out, l.concurrency, "tuned", a);
        }
        if let Some(x) = &l.tuned_over_baseline {
            let verdict = r
                .conclusion
                .as_ref()
                .and_then(|v| v.levels.iter().find(|v| v.concurrency == l.concurrency));
            let _ = write!(
                out,
                "<tr class=ratio><td></td><td class=l>tuned / baseline</td><td{}>{:.2}&times;</td><td></td><td{}>{:.2}&times;</td><td></td><td{}>{:.2}&times;</td><td colspan=5></td></tr>",
                win_class(verdict.map(|v| v.throughput)),
                x.throughput,
                win_class(verdict.map(|v| v.p50_latency)),
                x.p50_latency,
                win_class(verdict.map(|v| v.p99_latency)),
                x.p99_latency
            );
        }
    }
    out.push_str("</table><p class=note>In the <em>tuned / baseline</em> rows a throughput ratio above 1 favours tuned (higher is better) and a latency ratio below 1 favours tuned (lower is better). A ratio in a side's colour is a win for that side in the conclusion; an uncoloured one is within noise.</p>");
    if r.levels.is_empty() {
        out.push_str("<p>Nothing was measured.</p>");
    } else {
        out.push_str("<h2>By concurrency</h2><div class=grid>");
        out.push_str(&throughput_chart(r));
        out.push_str(&time_split_chart(r));
        out.push_str(&latency_chart(r));
        out.push_str(&acquire_chart(r));
        out.push_str("</div><h2>Over time</h2><p class=note>Each configuration has its own panel, on the same scale as the other side's. The shaded area is the connections open, the solid line those in use, the dashed line clients waiting for one. Acquire-wait axes reach at least 1 ms, so waits of microseconds read as the flat zero they are.");
        if r.repeat > 1 {
            out.push_str(" From the first repeat of each level.");
        }
        out.push_str("</p>");
        for l in &r.levels {
            over_time(&mut out, r, l.concurrency);
        }
    }
    out.push_str("</body></html>\n");
    out
}
