//! Inline SVG charts for the HTML report: a line chart (numeric or
//! categorical x, linear or log y) and a grouped bar chart. No script and no
//! external resource, so the page renders offline in any browser.

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

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// SVG `stroke-dasharray`, empty for a solid line.
    pub dash: &'static str,
    pub points: Vec<(f64, f64)>,
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
    /// A shaded x range with a label (the warm-up).
    pub shade: Option<(f64, f64, String)>,
    pub width: f64,
    pub height: f64,
}

const LEFT: f64 = 64.0;
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
fn legend(items: &[(&str, &str, &str)], w: f64, top: f64) -> (String, f64) {
    let mut out = String::new();
    let mut x = LEFT;
    let mut y = top;
    for (name, color, dash) in items {
        let width = 34.0 + 7.0 * name.len() as f64;
        if x + width > w - RIGHT && x > LEFT {
            x = LEFT;
            y += 18.0;
        }
        let _ = write!(
            out,
            r##"<line x1="{x}" y1="{y1}" x2="{x2}" y2="{y1}" stroke="{color}" stroke-width="3" stroke-dasharray="{dash}"/><text x="{tx}" y="{y}" fill="#333">{n}</text>"##,
            y1 = y - 4.0,
            x2 = x + 22.0,
            tx = x + 27.0,
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
    legend_items: &[(&str, &str, &str)],
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
        let ymax_data = all.iter().map(|p| p.1).fold(0.0, f64::max);
        // y mapping, linear from zero or log10 over the data's decades.
        let (ylo, yhi, yticks): (f64, f64, Vec<f64>) = if self.log_y {
            let positive = all.iter().map(|p| p.1).filter(|y| *y > 0.0);
            let lo = positive.fold(f64::INFINITY, f64::min);
            let lo = if lo.is_finite() { lo } else { 0.001 };
            let dlo = lo.log10().floor();
            let dhi = ymax_data.max(lo * 10.0).log10().ceil();
            let t = (dlo as i32..=dhi as i32).map(|d| 10f64.powi(d)).collect();
            (dlo, dhi.max(dlo + 1.0), t)
        } else {
            let t = ticks(
                0.0,
                if ymax_data > 0.0 {
                    ymax_data * 1.05
                } else {
                    1.0
                },
            );
            let hi = t.last().copied().unwrap_or(1.0).max(f64::EPSILON);
            (0.0, hi, t)
        };
        let log = self.log_y;
        let sy = |y: f64| -> f64 {
            let v = if log {
                y.max(10f64.powf(ylo)).log10()
            } else {
                y
            };
            TOP + ph - (v - ylo) / (yhi - ylo) * ph
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
        // Lines and points.
        for s in &self.series {
            let pts: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}" points="{}"/>"#,
                s.color,
                s.dash,
                pts.join(" ")
            );
            if s.points.len() <= 12 {
                for (x, y) in &s.points {
                    let _ = write!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{}: {}</title></circle>"#,
                        sx(*x),
                        sy(*y),
                        s.color,
                        esc(&s.name),
                        fmt_num(*y)
                    );
                }
            }
        }
        let items: Vec<(&str, &str, &str)> = self
            .series
            .iter()
            .map(|s| (s.name.as_str(), s.color, s.dash))
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
            let y = sy(v);
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
    let items: Vec<(&str, &str, &str)> = series.iter().map(|s| (s.0, s.1, "")).collect();
    finish(out, title, width, height, &items)
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

    #[test]
    fn a_chart_with_no_points_still_renders_a_frame() {
        let c = LineChart {
            title: "empty".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![],
            x_categories: None,
            log_y: true,
            shade: None,
            width: 400.0,
            height: 300.0,
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
