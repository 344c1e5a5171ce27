//! Inline SVG charts for the HTML report: a line chart (numeric or
//! categorical x, linear or log y, lines or filled areas), a grouped bar
//! chart and a grouped stacked bar chart. No script and no external
//! resource, so the page renders offline in any browser.
//!
//! Nothing drawn may hide: the lowest value sits above the x axis (the plot
//! keeps a margin at its floor, a log axis starts a decade below a value on
//! a decade), a zero bar is a visible stub, areas go under lines, and series
//! on a categorical axis can be dodged sideways so equal values stand side
//! by side. Each legend swatch has the shape of what it names.

use std::fmt::Write;

/// Escapes text for HTML and SVG.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line (or filled area) of a chart.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// SVG `stroke-dasharray`, empty for a solid line.
    pub dash: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Drawn as a light filled area down to zero (under every line).
    pub fill: bool,
    /// Shifts the points sideways on a categorical axis, in categories
    /// (like -0.1), so two series with equal values do not cover each other.
    pub x_offset: f64,
}

impl Series {
    /// A solid or dashed line.
    pub fn line(
        name: impl Into<String>,
        color: &'static str,
        dash: &'static str,
        points: Vec<(f64, f64)>,
    ) -> Self {
        Series {
            name: name.into(),
            color,
            dash,
            points,
            fill: false,
            x_offset: 0.0,
        }
    }

    /// A filled area.
    pub fn area(name: impl Into<String>, color: &'static str, points: Vec<(f64, f64)>) -> Self {
        Series {
            fill: true,
            ..Series::line(name, color, "", points)
        }
    }

    /// The same, dodged sideways by `offset` categories.
    #[must_use]
    pub fn dodged(mut self, offset: f64) -> Self {
        self.x_offset = offset;
        self
    }
}

/// The shape a legend entry shows: what the series is drawn as.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    /// A line, with its dash pattern.
    Line(&'static str),
    /// A filled square, for bars.
    Bar,
    /// A light filled square under a line, for areas.
    Area,
}

/// A line chart.
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Labels for x = 0, 1, 2, ... (categorical axis) instead of numbers.
    pub x_categories: Option<Vec<String>>,
    pub log_y: bool,
    /// The linear y axis reaches at least this high, so that values far
    /// below it (microseconds of noise on a milliseconds axis) stay flat
    /// instead of being stretched to fill the chart.
    pub y_at_least: f64,
    /// The linear y axis tops out at this value instead of the data's
    /// (charts meant to be compared side by side share one scale).
    pub y_max: Option<f64>,
    /// A shaded x range with a label (the warm-up).
    pub shade: Option<(f64, f64, String)>,
    pub width: f64,
    pub height: f64,
}

const LEFT: f64 = 64.0;
/// Space kept between the lowest value and the x axis, so a series at the
/// floor is drawn above the axis line, not on it.
const FLOOR: f64 = 6.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 64.0;

/// Round tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(mag * 10.0);
    let mut t = (lo / step).floor() * step;
    let mut out = Vec::new();
    // The last tick is at or above `hi`, so data never overflows the axis.
    while out.len() < 20 {
        out.push(t);
        if t >= hi - step * 1e-9 {
            break;
        }
        t += step;
    }
    out
}

/// A number for an axis label: few digits, no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return String::new();
    }
    if a >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        // Two significant digits below 100, without trailing zeros.
        let decimals = (1 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let text = format!("{v:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }
}

fn frame(out: &mut String, w: f64, h: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="system-ui, sans-serif" font-size="12">"#,
        t = esc(title)
    );
    let _ = write!(
        out,
        r##"<rect width="{w}" height="{h}" fill="#fff"/><text x="{x}" y="20" font-size="14" font-weight="600" fill="#222">{t}</text>"##,
        x = LEFT,
        t = esc(title)
    );
}

/// Lays out legend items in rows under the x-axis label; returns the
/// markup and the height the rows need.
fn legend(items: &[(&str, &str, Swatch)], w: f64, top: f64) -> (String, f64) {
    let mut out = String::new();
    let mut x = LEFT;
    let mut y = top;
    for (name, color, swatch) in items {
        let width = 34.0 + 7.0 * name.len() as f64;
        if x + width > w - RIGHT && x > LEFT {
            x = LEFT;
            y += 18.0;
        }
        match swatch {
            Swatch::Line(dash) => {
                let _ = write!(
                    out,
                    r##"<line x1="{x}" y1="{y1}" x2="{x2}" y2="{y1}" stroke="{color}" stroke-width="3" stroke-dasharray="{dash}"/>"##,
                    y1 = y - 4.0,
                    x2 = x + 22.0,
                );
            }
            Swatch::Bar => {
                let _ = write!(
                    out,
                    r##"<rect x="{x}" y="{y0}" width="14" height="12" fill="{color}"/>"##,
                    y0 = y - 10.0,
                );
            }
            Swatch::Area => {
                let _ = write!(
                    out,
                    r##"<rect x="{x}" y="{y0}" width="22" height="12" fill="{color}" fill-opacity="0.25" stroke="{color}" stroke-width="1"/>"##,
                    y0 = y - 10.0,
                );
            }
        }
        let tx = match swatch {
            Swatch::Bar => x + 19.0,
            _ => x + 27.0,
        };
        let _ = write!(
            out,
            r##"<text x="{tx}" y="{y}" fill="#333">{n}</text>"##,
            n = esc(name)
        );
        x += width;
    }
    (out, y - top + 18.0)
}

/// Opens the chart's `<svg>`, grown by `extra` pixels for the legend.
fn finish(
    body: String,
    title: &str,
    w: f64,
    h: f64,
    legend_items: &[(&str, &str, Swatch)],
) -> String {
    let (legend_svg, legend_h) = legend(legend_items, w, h - BOTTOM + 54.0);
    let total = h - BOTTOM + 54.0 + legend_h - 10.0;
    let mut out = String::new();
    frame(&mut out, w, total, title);
    out.push_str(&body);
    out.push_str(&legend_svg);
    out.push_str("</svg>");
    out
}

/// The y axis of a line chart: its range (log10 of it on a log axis) and
/// its ticks.
fn y_axis(chart: &LineChart, values: &[f64]) -> (f64, f64, Vec<f64>) {
    let ymax_data = values.iter().copied().fold(0.0, f64::max);
    if chart.log_y {
        let lo = values
            .iter()
            .copied()
            .filter(|y| *y > 0.0)
            .fold(f64::INFINITY, f64::min);
        let lo = if lo.is_finite() { lo } else { 0.001 };
        // A value on (or just above) a decade would sit on the bottom of
        // the axis; start a decade lower instead.
        let dlo = (lo.log10() - 0.2).floor();
        let dhi = ymax_data.max(lo * 10.0).log10().ceil();
        let t = (dlo as i32..=dhi as i32).map(|d| 10f64.powi(d)).collect();
        (dlo, dhi.max(dlo + 1.0), t)
    } else {
        let top = match chart.y_max {
            Some(m) if m > 0.0 => m,
            _ => (ymax_data * 1.05).max(chart.y_at_least),
        };
        let t = ticks(0.0, if top > 0.0 { top } else { 1.0 });
        let hi = t.last().copied().unwrap_or(1.0).max(f64::EPSILON);
        (0.0, hi, t)
    }
}

impl LineChart {
    /// Renders the chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
        let mut out = String::new();

        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let (xmin, xmax) = match &self.x_categories {
            Some(c) => (-0.5, c.len() as f64 - 0.5),
            None => {
                let lo = all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                let hi = all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() && hi > lo {
                    (lo.min(0.0), hi)
                } else {
                    (0.0, 1.0)
                }
            }
        };
        let values: Vec<f64> = all.iter().map(|p| p.1).collect();
        // y mapping, linear from zero or log10 over the data's decades.
        let (ylo, yhi, yticks) = y_axis(self, &values);
        let log = self.log_y;
        let sy = |y: f64| -> f64 {
            let v = if log {
                y.max(10f64.powf(ylo)).log10()
            } else {
                y.min(yhi)
            };
            TOP + ph - FLOOR - (v - ylo) / (yhi - ylo) * (ph - FLOOR)
        };
        let sx = |x: f64| LEFT + (x - xmin) / (xmax - xmin) * pw;

        if let Some((a, b, label)) = &self.shade {
            let (xa, xb) = (sx(a.max(xmin)), sx(b.min(xmax)));
            if xb > xa {
                let _ = write!(
                    out,
                    r##"<rect x="{xa:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="#f1f1f1"/><text x="{:.1}" y="{:.1}" fill="#888" font-size="11">{}</text>"##,
                    xb - xa,
                    xa + 3.0,
                    TOP + 12.0,
                    esc(label)
                );
            }
        }
        // Grid and y labels.
        for t in &yticks {
            let y = sy(*t);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                fmt_num(*t)
            );
        }
        // x labels.
        match &self.x_categories {
            Some(cats) => {
                for (i, c) in cats.iter().enumerate() {
                    let x = sx(i as f64);
                    let _ = write!(
                        out,
                        r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                        TOP + ph + 16.0,
                        esc(c)
                    );
                }
            }
            None => {
                for t in ticks(xmin, xmax) {
                    if t < xmin - 1e-9 || t > xmax + 1e-9 {
                        continue;
                    }
                    let x = sx(t);
                    let _ = write!(
                        out,
                        r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
                        TOP + ph,
                        TOP + ph + 4.0,
                        TOP + ph + 16.0,
                        fmt_num(t)
                    );
                }
            }
        }
        // Axes and their labels.
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{yb:.1}" stroke="#999"/><line x1="{LEFT}" y1="{yb:.1}" x2="{xr:.1}" y2="{yb:.1}" stroke="#999"/><text x="{xm:.1}" y="{xl:.1}" text-anchor="middle" fill="#333">{xlab}</text><text transform="translate(14 {ym:.1}) rotate(-90)" text-anchor="middle" fill="#333">{ylab}</text>"##,
            yb = TOP + ph,
            xr = LEFT + pw,
            xm = LEFT + pw / 2.0,
            xl = TOP + ph + 34.0,
            ym = TOP + ph / 2.0,
            xlab = esc(&self.x_label),
            ylab = esc(&self.y_label)
        );
        // Areas first, so no line is ever under one; then lines and points.
        let mut order: Vec<&Series> = self.series.iter().filter(|s| s.fill).collect();
        order.extend(self.series.iter().filter(|s| !s.fill));
        for s in order {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| (sx(*x + s.x_offset), sy(*y)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            if s.fill {
                let (first, last) = (pts[0].0, pts[pts.len() - 1].0);
                let base = sy(0.0);
                let _ = write!(
                    out,
                    r#"<polygon fill="{c}" fill-opacity="0.22" stroke="none" points="{first:.1},{base:.1} {} {last:.1},{base:.1}"/><polyline fill="none" stroke="{c}" stroke-width="1" stroke-opacity="0.7" points="{}"/>"#,
                    line.join(" "),
                    line.join(" "),
                    c = s.color,
                );
                continue;
            }
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}" points="{}"/>"#,
                s.color,
                s.dash,
                line.join(" ")
            );
            if s.points.len() <= 12 {
                for ((x, y), (_, value)) in pts.iter().zip(&s.points) {
                    let _ = write!(
                        out,
                        r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}" stroke="#fff" stroke-width="1"><title>{}: {}</title></circle>"##,
                        s.color,
                        esc(&s.name),
                        fmt_num(*value)
                    );
                }
            }
        }
        let items: Vec<(&str, &str, Swatch)> = self
            .series
            .iter()
            .map(|s| {
                let swatch = if s.fill {
                    Swatch::Area
                } else {
                    Swatch::Line(s.dash)
                };
                (s.name.as_str(), s.color, swatch)
            })
            .collect();
        finish(out, &self.title, w, h, &items)
    }
}

/// A grouped bar chart: one group per category, one bar per series.
pub fn bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    series: &[(&str, &'static str, Vec<f64>)],
    width: f64,
    height: f64,
) -> String {
    let (pw, ph) = (width - LEFT - RIGHT, height - TOP - BOTTOM);
    let mut out = String::new();
    let ymax = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let yt = ticks(0.0, if ymax > 0.0 { ymax * 1.08 } else { 1.0 });
    let yhi = yt.last().copied().unwrap_or(1.0).max(f64::EPSILON);
    let sy = |y: f64| TOP + ph - y / yhi * ph;
    // A zero or tiny value still shows as a stub, with its number on top.
    let bar_top = |v: f64| sy(v).min(TOP + ph - 2.0);
    for t in &yt {
        let y = sy(*t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(*t)
        );
    }
    let groups = categories.len().max(1) as f64;
    let gw = pw / groups;
    let bw = (gw * 0.7) / series.len().max(1) as f64;
    for (gi, cat) in categories.iter().enumerate() {
        let gx = LEFT + gw * gi as f64 + gw * 0.15;
        for (si, (name, color, values)) in series.iter().enumerate() {
            let Some(v) = values.get(gi).copied().filter(|v| v.is_finite()) else {
                continue;
            };
            let x = gx + bw * si as f64;
            let y = bar_top(v);
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#333">{}</text>"##,
                (bw - 2.0).max(1.0),
                (TOP + ph - y).max(0.0),
                esc(name),
                fmt_num(v),
                x + bw / 2.0 - 1.0,
                y - 4.0,
                fmt_num(v)
            );
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            LEFT + gw * (gi as f64 + 0.5),
            TOP + ph + 16.0,
            esc(cat)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{yb:.1}" stroke="#999"/><line x1="{LEFT}" y1="{yb:.1}" x2="{xr:.1}" y2="{yb:.1}" stroke="#999"/><text x="{xm:.1}" y="{xl:.1}" text-anchor="middle" fill="#333">{xlab}</text><text transform="translate(14 {ym:.1}) rotate(-90)" text-anchor="middle" fill="#333">{ylab}</text>"##,
        yb = TOP + ph,
        xr = LEFT + pw,
        xm = LEFT + pw / 2.0,
        xl = TOP + ph + 34.0,
        ym = TOP + ph / 2.0,
        xlab = esc(x_label),
        ylab = esc(y_label)
    );
    let items: Vec<(&str, &str, Swatch)> = series.iter().map(|s| (s.0, s.1, Swatch::Bar)).collect();
    finish(out, title, width, height, &items)
}

/// One bar of a stacked bar chart: segments bottom up, each with a legend
/// name, a colour and a value per category.
pub struct Stack<'a> {
    pub segments: Vec<(&'a str, &'static str, Vec<f64>)>,
}

/// A grouped stacked bar chart: one group per category, one stacked bar
/// per [`Stack`], labelled under the bar with `bar_labels`.
#[allow(clippy::too_many_arguments)]
pub fn stacked_bar_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    categories: &[String],
    bar_labels: &[&str],
    stacks: &[Stack<'_>],
    width: f64,
    height: f64,
) -> String {
    let (pw, ph) = (width - LEFT - RIGHT, height - TOP - BOTTOM);
    let mut out = String::new();
    let total = |stack: &Stack<'_>, i: usize| -> f64 {
        stack
            .segments
            .iter()
            .filter_map(|s| s.2.get(i).copied().filter(|v| v.is_finite()))
            .sum()
    };
    let ymax = (0..categories.len())
        .flat_map(|i| stacks.iter().map(move |st| (st, i)))
        .map(|(st, i)| total(st, i))
        .fold(0.0, f64::max);
    let yt = ticks(0.0, if ymax > 0.0 { ymax * 1.12 } else { 1.0 });
    let yhi = yt.last().copied().unwrap_or(1.0).max(f64::EPSILON);
    let scale = |v: f64| v / yhi * ph;
    for t in &yt {
        let y = TOP + ph - scale(*t);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(*t)
        );
    }
    let groups = categories.len().max(1) as f64;
    let gw = pw / groups;
    let bw = (gw * 0.7) / stacks.len().max(1) as f64;
    for (gi, cat) in categories.iter().enumerate() {
        let gx = LEFT + gw * gi as f64 + gw * 0.15;
        for (si, stack) in stacks.iter().enumerate() {
            let x = gx + bw * si as f64;
            let mut base = TOP + ph;
            for (name, color, values) in &stack.segments {
                let Some(v) = values.get(gi).copied().filter(|v| v.is_finite()) else {
                    continue;
                };
                // Every segment keeps at least a 2px sliver, so a part that
                // is nearly zero is seen to be there and nearly zero.
                let h = scale(v).max(2.0);
                base -= h;
                let _ = write!(
                    out,
                    r##"<rect x="{x:.1}" y="{base:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{}: {}</title></rect>"##,
                    (bw - 2.0).max(1.0),
                    esc(name),
                    fmt_num(v)
                );
            }
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#333">{}</text>"##,
                x + bw / 2.0 - 1.0,
                base - 4.0,
                fmt_num(total(stack, gi))
            );
            if let Some(label) = bar_labels.get(si) {
                let _ = write!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#777">{}</text>"##,
                    x + bw / 2.0 - 1.0,
                    TOP + ph + 12.0,
                    esc(label)
                );
            }
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            LEFT + gw * (gi as f64 + 0.5),
            TOP + ph + 26.0,
            esc(cat)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{yb:.1}" stroke="#999"/><line x1="{LEFT}" y1="{yb:.1}" x2="{xr:.1}" y2="{yb:.1}" stroke="#999"/><text x="{xm:.1}" y="{xl:.1}" text-anchor="middle" fill="#333">{xlab}</text><text transform="translate(14 {ym:.1}) rotate(-90)" text-anchor="middle" fill="#333">{ylab}</text>"##,
        yb = TOP + ph,
        xr = LEFT + pw,
        xm = LEFT + pw / 2.0,
        xl = TOP + ph + 42.0,
        ym = TOP + ph / 2.0,
        xlab = esc(x_label),
        ylab = esc(y_label)
    );
    let items: Vec<(&str, &str, Swatch)> = stacks
        .iter()
        .flat_map(|st| st.segments.iter().map(|s| (s.0, s.1, Swatch::Bar)))
        .collect();
    // The bar labels take a line under the axis: the legend goes one lower.
    finish(out, title, width, height + 12.0, &items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(0.0, 13_456.0);
        assert!(t.last().copied().unwrap() >= 13_456.0);
        assert!(t.len() <= 8);
    }

    #[test]
    fn axis_numbers_keep_two_significant_digits() {
        assert_eq!(fmt_num(0.015), "0.015");
        assert_eq!(fmt_num(0.005), "0.005");
        assert_eq!(fmt_num(2.5), "2.5");
        assert_eq!(fmt_num(12.6), "13");
        assert_eq!(fmt_num(7500.0), "7500");
        assert_eq!(fmt_num(12_000.0), "12k");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
    }

    fn chart(series: Vec<Series>, log_y: bool, y_at_least: f64) -> LineChart {
        LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series,
            x_categories: Some(vec!["a".into(), "b".into()]),
            log_y,
            y_at_least,
            y_max: None,
            shade: None,
            width: 400.0,
            height: 300.0,
        }
    }

    /// The y of every `<circle>` in an SVG.
    fn circle_ys(svg: &str) -> Vec<f64> {
        svg.split("<circle ")
            .skip(1)
            .filter_map(|c| c.split("cy=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn a_value_at_the_bottom_of_the_axis_is_drawn_above_the_axis_line() {
        let axis = TOP + (300.0 - TOP - BOTTOM);
        for log in [true, false] {
            let floor = if log { 0.001 } else { 0.0 };
            let svg = chart(
                vec![Series::line(
                    "s",
                    "#000",
                    "",
                    vec![(0.0, floor), (1.0, 5.0)],
                )],
                log,
                0.0,
            )
            .render();
            let ys = circle_ys(&svg);
            assert!(ys[0] < axis - 3.0, "log {log}: {} vs axis {axis}", ys[0]);
        }
    }

    #[test]
    fn microseconds_of_noise_stay_flat_on_an_axis_of_at_least_a_millisecond() {
        let noise = vec![(0.0, 0.001), (1.0, 0.008)];
        let axis = TOP + (300.0 - TOP - BOTTOM);
        let stretched = circle_ys(
            &chart(
                vec![Series::line("s", "#000", "", noise.clone())],
                false,
                0.0,
            )
            .render(),
        );
        let flat =
            circle_ys(&chart(vec![Series::line("s", "#000", "", noise)], false, 1.0).render());
        assert!(axis - stretched[1] > 100.0, "{stretched:?}");
        assert!(axis - flat[1] < FLOOR + 3.0, "{flat:?}");
    }

    #[test]
    fn dodged_series_with_equal_values_stand_side_by_side() {
        let pts = vec![(0.0, 1.0), (1.0, 2.0)];
        let svg = chart(
            vec![
                Series::line("a", "#111", "", pts.clone()).dodged(-0.1),
                Series::line("b", "#222", "", pts).dodged(0.1),
            ],
            true,
            0.0,
        )
        .render();
        let xs: Vec<&str> = svg
            .split("<circle ")
            .skip(1)
            .filter_map(|c| c.split("cx=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(xs.len(), 4);
        assert_ne!(xs[0], xs[2]);
    }

    #[test]
    fn an_area_is_drawn_before_any_line_and_its_swatch_is_a_filled_square() {
        let svg = chart(
            vec![
                Series::line("in use", "#111", "", vec![(0.0, 1.0), (1.0, 1.0)]),
                Series::area("open", "#111", vec![(0.0, 1.0), (1.0, 1.0)]),
            ],
            false,
            0.0,
        )
        .render();
        assert!(svg.find("<polygon").unwrap() < svg.find("stroke-width=\"2\"").unwrap());
        assert!(
            svg.contains("fill-opacity=\"0.25\" stroke=\"#111\""),
            "{svg}"
        );
    }

    #[test]
    fn bars_have_square_swatches_and_a_zero_bar_is_a_visible_stub() {
        let svg = bar_chart(
            "t",
            "x",
            "y",
            &["a".to_string()],
            &[
                ("zero", "#123456", vec![0.0]),
                ("some", "#654321", vec![10.0]),
            ],
            400.0,
            300.0,
        );
        assert!(
            !svg.contains(r##"stroke="#123456""##),
            "a line swatch for a bar: {svg}"
        );
        assert!(
            svg.contains(r##"width="14" height="12" fill="#123456""##),
            "{svg}"
        );
        let zero = svg.split(r##"fill="#123456"><title>"##).next().unwrap();
        let height: f64 = zero
            .rsplit("height=\"")
            .next()
            .and_then(|h| h.split('"').next())
            .and_then(|h| h.parse().ok())
            .unwrap();
        assert!(height >= 2.0, "{height}");
    }

    #[test]
    fn a_chart_with_no_points_still_renders_a_frame() {
        let c = LineChart {
            title: "empty".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![],
            x_categories: None,
            log_y: true,
            y_at_least: 0.0,
            y_max: None,
            shade: None,
            width: 400.0,
            height: 300.0,
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
