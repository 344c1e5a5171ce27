//! The report: medians per scenario and pool as markdown tables (with
//! tidepool's ratio against each anchor), and everything as JSON.

use std::fmt::Write as _;

use crate::dead::DeadFigures;
use crate::figures::{self, median, Figures, RECOVERED_AFTER};
use crate::scenario::{Scenario, Timing};
use crate::subjects::{Kind, Settings};

#[derive(Debug, Default)]
pub struct Collected {
    /// /proc/loadavg before and after the run (machine noise).
    pub load_before: String,
    pub load_after: String,
    pub orders: Vec<Vec<Kind>>,
    pub runs: Vec<RunOut>,
    pub dead: Vec<DeadOut>,
}

#[derive(Debug, serde::Serialize)]
pub struct RunOut {
    pub repeat: usize,
    pub scenario: Scenario,
    pub pool: Kind,
    pub figures: Figures,
    /// tidepool's own counters and breaker timeline (tidepool pools only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tidepool: Option<crate::subjects::Diagnosis>,
}

#[derive(Debug, serde::Serialize)]
pub struct DeadOut {
    pub repeat: usize,
    pub pool: Kind,
    pub figures: DeadFigures,
}

#[derive(Debug, serde::Serialize)]
pub struct MedianOut {
    pub scenario: Scenario,
    pub pool: Kind,
    pub figures: Figures,
}

#[derive(Debug, serde::Serialize)]
pub struct DeadMedianOut {
    pub pool: Kind,
    pub calls: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub circuit_open: f64,
    pub attempts: f64,
    pub elapsed_ms: f64,
    pub drive_ms: f64,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub command: String,
    pub settings: Settings,
    pub timing: Timing,
    pub repeats: usize,
    /// /proc/loadavg before and after the run (1, 5, 15 min averages).
    pub load_before: String,
    pub load_after: String,
    /// The pools' order in each repeat (requests are issued in this order
    /// at every tick; the pools run at the same time).
    pub orders: Vec<Vec<Kind>>,
    pub medians: Vec<MedianOut>,
    pub dead_medians: Vec<DeadMedianOut>,
    pub runs: Vec<RunOut>,
    pub dead: Vec<DeadOut>,
}

impl Report {
    pub fn new(command: &str, settings: Settings, timing: Timing, c: Collected) -> Report {
        let mut medians = Vec::new();
        for scenario in Scenario::ALL {
            for pool in Kind::ALL {
                let all: Vec<&Figures> = c
                    .runs
                    .iter()
                    .filter(|r| r.scenario == scenario && r.pool == pool)
                    .map(|r| &r.figures)
                    .collect();
                if !all.is_empty() {
                    medians.push(MedianOut {
                        scenario,
                        pool,
                        figures: figures::median_figures(&all),
                    });
                }
            }
        }
        let mut dead_medians = Vec::new();
        for pool in Kind::ALL {
            let all: Vec<&DeadFigures> = c
                .dead
                .iter()
                .filter(|d| d.pool == pool)
                .map(|d| &d.figures)
                .collect();
            if all.is_empty() {
                continue;
            }
            let m = |get: fn(&DeadFigures) -> f64| {
                median(&all.iter().map(|f| get(f)).collect::<Vec<_>>())
            };
            dead_medians.push(DeadMedianOut {
                pool,
                calls: m(|f| f.calls as f64),
                p50_us: m(|f| f.p50_us),
                p99_us: m(|f| f.p99_us),
                max_us: m(|f| f.max_us),
                circuit_open: m(|f| f.circuit_open as f64),
                attempts: m(|f| f.attempts as f64),
                elapsed_ms: m(|f| f.elapsed_ms),
                drive_ms: m(|f| f.drive_ms),
            });
        }
        Report {
            command: command.to_string(),
            settings,
            timing,
            repeats: c.orders.len(),
            load_before: c.load_before,
            load_after: c.load_after,
            orders: c.orders,
            medians,
            dead_medians,
            runs: c.runs,
            dead: c.dead,
        }
    }

    fn median_of(&self, scenario: Scenario, pool: Kind) -> Option<&Figures> {
        self.medians
            .iter()
            .find(|m| m.scenario == scenario && m.pool == pool)
            .map(|m| &m.figures)
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let t = &self.timing;
        let s = &self.settings;
        let _ = writeln!(out, "# Fault-recovery figures\n");
        let _ = writeln!(out, "`{}`\n", self.command);
        let _ = writeln!(
            out,
            "Medians of {} repeat(s). Every pool: max {} connections, acquire timeout {}, connect timeout {} (where the pool has one); tidepool with sslmode={}, the anchors with NoTls. \
             Open loop: one request every {} per pool (get + `SELECT 1`, deadline {}). \
             Each scenario: {} healthy, fault for {} ({} for the momentary RST), {} healed.\n",
            self.repeats,
            s.size,
            fmt_ms(Some(s.acquire_timeout.as_secs_f64() * 1e3)),
            fmt_ms(Some(s.connect_timeout.as_secs_f64() * 1e3)),
            s.tidepool_sslmode,
            fmt_ms(Some(t.interval.as_secs_f64() * 1e3)),
            fmt_ms(Some(t.deadline.as_secs_f64() * 1e3)),
            fmt_ms(Some(t.healthy.as_secs_f64() * 1e3)),
            fmt_ms(Some(t.fault.as_secs_f64() * 1e3)),
            fmt_ms(Some(t.rst_fault.as_secs_f64() * 1e3)),
            fmt_ms(Some(t.healed.as_secs_f64() * 1e3)),
        );
        let _ = writeln!(
            out,
            "Load average (1/5/15 min) before: {}; after: {}.\n",
            self.load_before, self.load_after
        );
        for scenario in Scenario::ALL {
            if self.median_of(scenario, Kind::Tidepool).is_none() {
                continue;
            }
            let lasts = match t.window(scenario) {
                Some(w) => fmt_ms(Some(w.as_secs_f64() * 1e3)),
                None => format!(
                    "{} (median, measured: {})",
                    fmt_ms(
                        self.median_of(scenario, Kind::Tidepool)
                            .map(|f| f.window_ms)
                    ),
                    scenario.measured_window()
                ),
            };
            let _ = writeln!(
                out,
                "## ({}) {} — fault lasts {lasts}\n",
                scenario.letter(),
                scenario.title(),
            );
            let _ = writeln!(
                out,
                "| pool | requests | failed | time to detect | time to recover | connects while faulted | failing p50 | failing p99 |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
            for pool in Kind::ALL {
                let Some(f) = self.median_of(scenario, pool) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    pool.label(),
                    f.requests,
                    f.failed,
                    f.detect_ms.map_or("no failure".into(), |d| fmt_ms(Some(d))),
                    fmt_recover(f.recover_ms, t),
                    f.attempts_during_fault,
                    fmt_ms(f.failing_p50_ms),
                    fmt_ms(f.failing_p99_ms),
                );
            }
            let _ = writeln!(
                out,
                "\ntidepool ÷ anchor (below 1 is better for tidepool on every column):\n"
            );
            let _ = writeln!(
                out,
                "| tidepool | anchor | failed | time to detect | time to recover | connects while faulted | failing p99 |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
            let ours_and_anchors = [Kind::Tidepool, Kind::TidepoolHold]
                .into_iter()
                .flat_map(|o| [Kind::TidepoolNoBreaker, Kind::Deadpool, Kind::Bb8].map(|a| (o, a)));
            for (mine, pool) in ours_and_anchors {
                let (Some(ours), Some(a)) = (
                    self.median_of(scenario, mine),
                    self.median_of(scenario, pool),
                ) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    mine.label(),
                    pool.label(),
                    ratio(Some(ours.failed as f64), Some(a.failed as f64)),
                    ratio(ours.detect_ms, a.detect_ms),
                    ratio_recover(ours.recover_ms, a.recover_ms),
                    ratio(
                        Some(ours.attempts_during_fault as f64),
                        Some(a.attempts_during_fault as f64)
                    ),
                    ratio(ours.failing_p99_ms, a.failing_p99_ms),
                );
            }
            let _ = writeln!(out, "\nWhat callers saw (all repeats):\n");
            for pool in Kind::ALL {
                let Some(f) = self.median_of(scenario, pool) else {
                    continue;
                };
                let errors: Vec<String> =
                    f.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let _ = writeln!(
                    out,
                    "- {}: {}",
                    pool.label(),
                    if errors.is_empty() {
                        "no errors".to_string()
                    } else {
                        errors.join(", ")
                    }
                );
            }
            let _ = writeln!(out);
        }
        if !self.dead_medians.is_empty() {
            let _ = writeln!(
                out,
                "## (e) a failing acquire against a dead database\n\n\
                 Back-to-back `get()` calls once the pool has noticed (tidepool: circuit open), up to the call count or the time budget.\n"
            );
            let _ = writeln!(
                out,
                "| pool | calls | p50 | p99 | max | answered circuit open | connects made |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
            for d in &self.dead_medians {
                let _ = writeln!(
                    out,
                    "| {} | {:.0} | {} | {} | {} | {:.0} | {:.0} |",
                    d.pool.label(),
                    d.calls,
                    fmt_us(d.p50_us),
                    fmt_us(d.p99_us),
                    fmt_us(d.max_us),
                    d.circuit_open,
                    d.attempts
                );
            }
            if let Some(ours) = self.dead_medians.iter().find(|d| d.pool == Kind::Tidepool) {
                let _ = writeln!(out, "\ntidepool ÷ anchor:\n");
                let _ = writeln!(out, "| anchor | p50 | p99 |");
                let _ = writeln!(out, "|---|---:|---:|");
                for d in self
                    .dead_medians
                    .iter()
                    .filter(|d| d.pool != Kind::Tidepool)
                {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} |",
                        d.pool.label(),
                        ratio(Some(ours.p50_us), Some(d.p50_us)),
                        ratio(Some(ours.p99_us), Some(d.p99_us)),
                    );
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "Definitions: failed = requests that ended in an error over the whole run; time to detect = fault start to the end of the first failed request; \
             time to recover = heal to the end of the first of {RECOVERED_AFTER} consecutive successes (requests ending after the heal, in issue order); \
             connects while faulted = connections the proxy accepted between fault and heal; failing p50/p99 = duration of the failed requests."
        );
        out
    }
}

pub fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v < 0.01 => format!("{:.2} µs", v * 1e3),
        Some(v) if v < 1.0 => format!("{:.0} µs", v * 1e3),
        Some(v) if v < 1000.0 => format!("{v:.0} ms"),
        Some(v) => format!("{:.2} s", v / 1e3),
    }
}

fn fmt_us(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        fmt_ms(Some(v / 1e3))
    }
}

pub fn fmt_recover(v: Option<f64>, t: &Timing) -> String {
    match v {
        Some(_) => fmt_ms(v),
        None => format!("> {}", fmt_ms(Some(t.healed.as_secs_f64() * 1e3))),
    }
}

/// As [`ratio`], where `None` means "never recovered".
fn ratio_recover(ours: Option<f64>, anchor: Option<f64>) -> String {
    match (ours, anchor) {
        (Some(_), Some(_)) => ratio(ours, anchor),
        (None, None) => "both never".into(),
        (Some(_), None) => "better (anchor never)".into(),
        (None, Some(_)) => "worse (tidepool never)".into(),
    }
}

/// tidepool's value over the anchor's, lower is better.
fn ratio(ours: Option<f64>, anchor: Option<f64>) -> String {
    match (ours, anchor) {
        (Some(a), Some(b)) if a == 0.0 && b == 0.0 => "= (both 0)".into(),
        (Some(a), Some(0.0)) => format!("∞ ({} vs 0)", trim(a)),
        (Some(a), Some(b)) if a / b < 0.01 => format!("1/{:.0}", b / a),
        (Some(a), Some(b)) => format!("{:.2}×", a / b),
        (None, None) => "n/a".into(),
        (Some(_), None) => "n/a (anchor: none)".into(),
        (None, Some(_)) => "n/a (tidepool: none)".into(),
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Writes one run's requests (and tidepool's failed attempts and breaker
/// timeline) as CSV: `start_ms,end_ms,error`.
pub fn write_trace(
    dir: &std::path::Path,
    repeat: usize,
    scenario: Scenario,
    run: &crate::scenario::Run,
) -> Result<(), crate::FigureError> {
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|source| crate::FigureError::Write { path, source })
    };
    let stem = format!("r{}_{}_{}", repeat + 1, scenario.letter(), run.kind.key());
    let mut text = format!(
        "# fault at {:.1} ms, heal at {:.1} ms\nstart_ms,end_ms,error\n",
        run.fault_at.as_secs_f64() * 1e3,
        run.heal_at.as_secs_f64() * 1e3
    );
    for r in &run.reqs {
        let _ = writeln!(
            text,
            "{:.1},{:.1},{}",
            r.start.as_secs_f64() * 1e3,
            r.end.as_secs_f64() * 1e3,
            r.error.unwrap_or("")
        );
    }
    write(format!("{stem}.csv"), text)?;
    if let Some(d) = &run.diagnosis {
        let mut text = String::from("at_ms,event\n");
        for (at, state) in &d.breaker {
            let _ = writeln!(text, "{at:.1},breaker {state}");
        }
        for (at, e) in &d.failed_attempts {
            let _ = writeln!(text, "{at:.1},attempt failed: {}", e.replace(',', ";"));
        }
        write(format!("{stem}_events.csv"), text)?;
    }
    Ok(())
}

/// The machine's load averages, or "unknown" off Linux.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}
