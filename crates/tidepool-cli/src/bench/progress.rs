//! Progress on stderr: an indicatif bar per run on a terminal, one plain
//! line per run otherwise (logs, CI, pipes). The report itself goes to
//! stdout, so `tidepool bench > report.txt` keeps only the figures.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::results::{RunResult, Sample};

/// Where progress goes.
pub struct Progress {
    terminal: bool,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// A note line (seeding, cleanup).
    pub fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    /// Starts showing one run of `total` (warm-up included).
    pub fn start_run(&self, label: &str, total: Duration) -> RunProgress {
        if self.terminal {
            let bar = ProgressBar::with_draw_target(
                Some(total.as_millis() as u64),
                ProgressDrawTarget::stderr(),
            );
            let style = ProgressStyle::with_template("{prefix} [{bar:20.cyan/blue}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            RunProgress {
                bar: Some(bar),
                label: label.to_string(),
            }
        } else {
            self.note(&format!(
                "{label}  running ({} incl. warm-up)",
                humantime::format_duration(total)
            ));
            RunProgress {
                bar: None,
                label: label.to_string(),
            }
        }
    }
}

/// One run's progress display.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    label: String,
}

impl RunProgress {
    /// Shows the latest sample.
    pub fn update(&self, elapsed: Duration, s: &Sample) {
        if let Some(bar) = &self.bar {
            bar.set_position(elapsed.as_millis() as u64);
            bar.set_message(format!(
                "{:>6.0} ops/s, {}/{} conns busy, {} waiting",
                s.ops_per_s, s.in_use, s.size, s.waiting
            ));
        }
    }

    /// Replaces the bar with the run's result line.
    pub fn finish(self, r: &RunResult) {
        let errors: u64 = r.errors.values().sum();
        let line = format!(
            "{}  {:>9.0} ops/s  p50 {:>7.2}ms  p99 {:>7.2}ms  acquire p99 {:>7.2}ms  errors {}{}",
            self.label,
            r.throughput_ops_s,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.acquire_wait.p99_ms,
            errors,
            if r.interrupted { "  (interrupted)" } else { "" }
        );
        match self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}
