//! The `--report` page: one self-contained HTML file (inline CSS and SVG,
//! no script, no external resource) with what ran, the figures table and
//! charts of throughput, latency percentiles and acquire wait by
//! concurrency, and pool size and acquire wait over time for each level.

use std::fmt::Write;

use crate::bench::results::{Aggregate, BenchReport, RunResult};
use crate::svg::{bar_chart, esc, fmt_num, LineChart, Series};

const BASELINE: &str = "#6b7b8c";
const TUNED: &str = "#e07b00";

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta, dl { color: #444; font-size: 14px; }
dt { font-weight: 600; margin-top: 6px; }
dd { margin-left: 16px; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; }
td.l, th.l { text-align: left; }
tr.ratio td { color: #555; font-style: italic; border-bottom: 2px solid #ddd; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #e6e6e6; border-radius: 4px; }
.warn { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px 12px; border-radius: 4px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: middle; margin-right: 4px; }
"#;

fn agg_row(out: &mut String, level: u32, name: &str, a: &Aggregate) {
    let errors: u64 = a.errors.values().sum();
    let err_text = if errors == 0 {
        "0".to_string()
    } else {
        let kinds: Vec<String> = a.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!("{:.2}% ({})", a.error_rate * 100.0, kinds.join(", "))
    };
    let color = if name == "tuned" { TUNED } else { BASELINE };
    let _ = write!(
        out,
        "<tr><td>{level}</td><td class=l><span class=swatch style=\"background:{color}\"></span>{name}{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{:.3}</td><td>{}&ndash;{}</td><td class=l>{}</td></tr>",
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

fn categories(r: &BenchReport) -> Vec<String> {
    r.levels.iter().map(|l| l.concurrency.to_string()).collect()
}

fn latency_chart(r: &BenchReport) -> String {
    let mut series = Vec::new();
    for (name, color, tuned) in [("baseline", BASELINE, false), ("tuned", TUNED, true)] {
        series.push(Series {
            name: format!("{name} p50"),
            color,
            dash: "",
            points: by_level(r, |a| a.latency.p50_ms, tuned),
        });
        series.push(Series {
            name: format!("{name} p95"),
            color,
            dash: "6 3",
            points: by_level(r, |a| a.latency.p95_ms, tuned),
        });
        series.push(Series {
            name: format!("{name} p99"),
            color,
            dash: "2 3",
            points: by_level(r, |a| a.latency.p99_ms, tuned),
        });
    }
    LineChart {
        title: "Latency percentiles by concurrency (log scale)".into(),
        x_label: "concurrent clients".into(),
        y_label: "latency, ms".into(),
        series,
        x_categories: Some(categories(r)),
        log_y: true,
        shade: None,
        width: 560.0,
        height: 340.0,
    }
    .render()
}

fn acquire_chart(r: &BenchReport) -> String {
    let mut series = Vec::new();
    for (name, color, tuned) in [("baseline", BASELINE, false), ("tuned", TUNED, true)] {
        series.push(Series {
            name: format!("{name} p50"),
            color,
            dash: "",
            points: by_level(r, |a| a.acquire_wait.p50_ms, tuned),
        });
        series.push(Series {
            name: format!("{name} p99"),
            color,
            dash: "2 3",
            points: by_level(r, |a| a.acquire_wait.p99_ms, tuned),
        });
    }
    LineChart {
        title: "Acquire wait (time in get()) by concurrency (log scale)".into(),
        x_label: "concurrent clients".into(),
        y_label: "acquire wait, ms".into(),
        series,
        x_categories: Some(categories(r)),
        log_y: true,
        shade: None,
        width: 560.0,
        height: 340.0,
    }
    .render()
}

fn throughput_chart(r: &BenchReport) -> String {
    let values = |tuned: bool| -> Vec<f64> {
        r.levels
            .iter()
            .map(|l| {
                let a = if tuned { &l.tuned } else { &l.baseline };
                a.as_ref().map_or(f64::NAN, |a| a.throughput_ops_s)
            })
            .collect()
    };
    bar_chart(
        "Throughput by concurrency",
        "concurrent clients",
        "operations per second",
        &categories(r),
        &[
            ("baseline", BASELINE, values(false)),
            ("tuned", TUNED, values(true)),
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

fn over_time(r: &BenchReport, level: u32, what: &str) -> String {
    let mut series = Vec::new();
    let mut warmup = 0.0;
    for (name, color) in [("baseline", BASELINE), ("tuned", TUNED)] {
        let Some(run) = first_run(r, level, name) else {
            continue;
        };
        warmup = run.warmup_s;
        let line = |label: String,
                    dash: &'static str,
                    y: &dyn Fn(&crate::bench::results::Sample) -> f64| Series {
            name: label,
            color,
            dash,
            points: run.timeline.iter().map(|s| (s.t_s, y(s))).collect(),
        };
        if what == "size" {
            series.push(line(format!("{name} open"), "", &|s| s.size as f64));
            series.push(line(format!("{name} in use"), "4 3", &|s| s.in_use as f64));
        } else {
            series.push(line(name.to_string(), "", &|s| s.acquire_wait_mean_ms));
        }
    }
    let (title, y_label) = match what {
        "size" => (
            format!("Pool size over time, {level} clients"),
            "connections",
        ),
        _ => (
            format!("Acquire wait over time, {level} clients"),
            "mean wait per sample, ms",
        ),
    };
    LineChart {
        title,
        x_label: "seconds since the pool was built".into(),
        y_label: y_label.into(),
        series,
        x_categories: None,
        log_y: false,
        shade: (warmup > 0.0).then(|| (0.0, warmup, "warm-up".to_string())),
        width: 560.0,
        height: 300.0,
    }
    .render()
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
    out.push_str("<h2>Configurations</h2><dl>");
    for c in &r.configurations {
        let color = if c.name == "tuned" { TUNED } else { BASELINE };
        let _ = write!(
            out,
            "<dt><span class=swatch style=\"background:{color}\"></span>{}</dt><dd>{}</dd>",
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
            let _ = write!(
                out,
                "<tr class=ratio><td></td><td class=l>tuned / baseline</td><td>{:.2}&times;</td><td></td><td>{:.2}&times;</td><td></td><td>{:.2}&times;</td><td colspan=5></td></tr>",
                x.throughput, x.p50_latency, x.p99_latency
            );
        }
    }
    out.push_str("</table>");
    if r.levels.is_empty() {
        out.push_str("<p>Nothing was measured.</p>");
    } else {
        out.push_str("<h2>By concurrency</h2><div class=charts>");
        out.push_str(&throughput_chart(r));
        out.push_str(&latency_chart(r));
        out.push_str(&acquire_chart(r));
        out.push_str("</div><h2>Over time</h2>");
        if r.repeat > 1 {
            out.push_str("<p class=meta>From the first repeat of each level.</p>");
        }
        for l in &r.levels {
            out.push_str("<div class=charts>");
            out.push_str(&over_time(r, l.concurrency, "size"));
            out.push_str(&over_time(r, l.concurrency, "wait"));
            out.push_str("</div>");
        }
    }
    out.push_str("</body></html>\n");
    out
}
