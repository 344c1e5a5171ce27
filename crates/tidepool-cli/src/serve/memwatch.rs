//! The memory watch of `tidepool serve` (seed 000's MemoryLeakDetector): the
//! process's resident memory, sampled every few seconds, a least-squares
//! line fitted over a sliding window, and a verdict — growing or not — with
//! the slope in bytes per minute and the growth over the window as numbers.
//! The trend math ([`fit`], [`Watch`]) is pure: no clock, no I/O, fed
//! `(seconds, bytes)` pairs, so it is tested on made-up series. Reading the
//! memory is [`resident_bytes`]: Linux only (`/proc/self/status`); elsewhere
//! it answers `None` and the watch stays off.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How the watch samples and judges.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The span the line is fitted over. Default 5 minutes.
    pub window: Duration,
    /// Time between samples. Default 5 s.
    pub interval: Duration,
    /// The slope, in bytes per minute, above which memory is growing.
    /// Default 1 MiB a minute.
    pub slope_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: Duration::from_secs(300),
            interval: Duration::from_secs(5),
            slope_threshold: 1024.0 * 1024.0,
        }
    }
}

/// A least-squares line through points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Units of y per unit of x.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// How much of y's variance the line explains, 0 to 1 (1 for a flat
    /// series, which the line explains fully).
    pub r2: f64,
}

/// The least-squares line through `points` (x, y), or `None` with fewer
/// than two points or when every x is the same.
pub fn fit(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<Fit> {
    let n = points.clone().count();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let (sx, sy) = points
        .clone()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / nf, sy / nf);
    // Centred sums: the x values are seconds since start and the y values
    // hundreds of megabytes, so raw sums of squares would lose digits.
    let (sxx, sxy, syy) = points.fold((0.0, 0.0, 0.0), |(sxx, sxy, syy), (x, y)| {
        let (dx, dy) = (x - mx, y - my);
        (sxx + dx * dx, sxy + dx * dy, syy + dy * dy)
    });
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy <= 0.0 {
        1.0
    } else {
        (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0)
    };
    Some(Fit {
        slope,
        intercept: my - slope * mx,
        r2,
    })
}

/// What the window says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Samples in the window.
    pub samples: usize,
    /// Time from the first sample in the window to the last.
    pub span: Duration,
    /// The fitted slope, in bytes per minute.
    pub slope_per_min: f64,
    /// The growth the line says over the span, in bytes (slope × span).
    pub growth: f64,
    /// Resident memory at the last sample, in bytes.
    pub last: u64,
    /// The line's fit, 0 to 1.
    pub r2: f64,
    /// Whether this is growth worth a warning: see [`Watch`].
    pub growing: bool,
}

/// Below this fit the points do not lie along a line: a sawtooth or noise,
/// not a trend.
const MIN_R2: f64 = 0.5;

/// A sliding window of samples and its verdict.
///
/// Memory is *growing* when, over a full window, the fitted slope is at
/// least the threshold, the line fits (R² at least 0.5, so allocator
/// sawtooth is not a trend), and the slope holds — at least half the
/// threshold — in each half of the window, so one large allocation (a
/// step) is not taken for a leak. A warning is due on the first growing
/// verdict, then again only after another full window, so each warning is
/// about new samples.
#[derive(Debug)]
pub struct Watch {
    settings: Settings,
    samples: VecDeque<(f64, u64)>,
    last_warning: Option<f64>,
}

impl Watch {
    /// An empty watch.
    pub fn new(settings: Settings) -> Self {
        Watch {
            settings,
            samples: VecDeque::new(),
            last_warning: None,
        }
    }

    /// Adds the sample taken `at` seconds (from any fixed start) and
    /// returns the trend once the window is (nearly) full, with whether a
    /// warning is due now.
    pub fn record(&mut self, at: f64, resident: u64) -> Option<(Trend, bool)> {
        let window = self.settings.window.as_secs_f64();
        self.samples.push_back((at, resident));
        while self.samples.front().is_some_and(|(t, _)| at - t > window) {
            self.samples.pop_front();
        }
        let first = self.samples.front().map_or(at, |(t, _)| *t);
        let span = at - first;
        // Within one interval of a full window: judging sooner would read
        // start-up (warming the pool, the first caches) as a trend.
        if span + self.settings.interval.as_secs_f64() < window {
            return None;
        }
        let points = self.samples.iter().map(|&(t, b)| (t, b as f64));
        let line = fit(points.clone())?;
        let per_min = line.slope * 60.0;
        let threshold = self.settings.slope_threshold;
        let middle = first + span / 2.0;
        let half = |early: bool| {
            fit(points.clone().filter(move |(t, _)| (*t < middle) == early))
                .map_or(0.0, |f| f.slope * 60.0)
        };
        let growing = per_min >= threshold
            && line.r2 >= MIN_R2
            && half(true) >= threshold / 2.0
            && half(false) >= threshold / 2.0;
        let due = growing
            && self
                .last_warning
                .is_none_or(|last| at - last + self.settings.interval.as_secs_f64() >= window);
        if due {
            self.last_warning = Some(at);
        }
        let trend = Trend {
            samples: self.samples.len(),
            span: Duration::from_secs_f64(span.max(0.0)),
            slope_per_min: per_min,
            growth: line.slope * span,
            last: resident,
            r2: line.r2,
            growing,
        };
        Some((trend, due))
    }
}

/// The process's resident memory in bytes: the `VmRSS` line of
/// `/proc/self/status` on Linux (in kB there, so no page size is needed,
/// which std does not expose). `None` on other systems, or if the file
/// cannot be read.
pub fn resident_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = line.split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => n.checked_mul(1024),
        _ => None,
    }
}

/// The latest figures, shared with `/metrics` (written by the sampler,
/// read at scrape time; f64s as bits).
#[derive(Debug, Default)]
pub struct Gauges {
    resident: AtomicU64,
    slope: AtomicU64,
    growth: AtomicU64,
    /// 0 before the first sample, 1 once resident memory is known, 2 once
    /// a window has been judged.
    known: AtomicU64,
}

impl Gauges {
    /// Records a sample, and the trend when there is one.
    pub fn set(&self, resident: u64, trend: Option<&Trend>) {
        self.resident.store(resident, Relaxed);
        match trend {
            Some(t) => {
                self.slope.store(t.slope_per_min.to_bits(), Relaxed);
                self.growth.store(t.growth.to_bits(), Relaxed);
                self.known.store(2, Relaxed);
            }
            None => {
                self.known.fetch_max(1, Relaxed);
            }
        }
    }

    /// Resident memory in bytes, once sampled.
    pub fn resident(&self) -> Option<f64> {
        (self.known.load(Relaxed) >= 1).then(|| self.resident.load(Relaxed) as f64)
    }

    /// The slope over the window in bytes per minute, once judged.
    pub fn slope_per_min(&self) -> Option<f64> {
        (self.known.load(Relaxed) >= 2).then(|| f64::from_bits(self.slope.load(Relaxed)))
    }

    /// The growth over the window in bytes, once judged.
    pub fn growth(&self) -> Option<f64> {
        (self.known.load(Relaxed) >= 2).then(|| f64::from_bits(self.growth.load(Relaxed)))
    }
}

/// `n` bytes as MiB with one decimal, for log lines.
pub fn mib(n: f64) -> String {
    format!("{:.1} MiB", n / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn settings() -> Settings {
        Settings {
            window: Duration::from_secs(300),
            interval: Duration::from_secs(5),
            slope_threshold: MIB,
        }
    }

    /// Feeds `f(seconds)` every 5 s for `secs` seconds; returns every
    /// verdict and the times warnings were due.
    fn run(secs: u32, f: impl Fn(f64) -> f64) -> (Vec<Trend>, Vec<f64>) {
        let mut watch = Watch::new(settings());
        let (mut trends, mut warnings) = (Vec::new(), Vec::new());
        for i in 0..=secs / 5 {
            let t = f64::from(i * 5);
            if let Some((trend, due)) = watch.record(t, f(t) as u64) {
                trends.push(trend);
                if due {
                    warnings.push(t);
                }
            }
        }
        (trends, warnings)
    }

    /// A small deterministic wobble, ±`amplitude` bytes.
    fn wobble(t: f64, amplitude: f64) -> f64 {
        amplitude * ((t * 0.37).sin() + (t * 1.91).cos()) / 2.0
    }

    #[test]
    fn a_line_through_exact_points_has_their_slope_and_a_perfect_fit() {
        let f = fit([(0.0, 10.0), (1.0, 12.0), (2.0, 14.0), (3.0, 16.0)].into_iter()).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12);
        assert!((f.intercept - 10.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_line_keeps_its_digits_at_hundreds_of_megabytes() {
        let base = 400.0 * MIB;
        let points: Vec<_> = (0..60)
            .map(|i| (f64::from(i) * 5.0 + 1e6, base + f64::from(i) * 5.0 * 3.0))
            .collect();
        let f = fit(points.iter().copied()).unwrap();
        assert!((f.slope - 3.0).abs() < 1e-6, "{}", f.slope);
    }

    #[test]
    fn no_line_is_fitted_through_one_point_or_one_instant() {
        assert_eq!(fit(std::iter::empty()), None);
        assert_eq!(fit([(1.0, 5.0)].into_iter()), None);
        assert_eq!(fit([(1.0, 5.0), (1.0, 9.0)].into_iter()), None);
    }

    #[test]
    fn a_flat_series_fits_perfectly_with_no_slope() {
        let f = fit((0..10).map(|i| (f64::from(i), 7.0))).unwrap();
        assert_eq!((f.slope, f.r2), (0.0, 1.0));
    }

    #[test]
    fn nothing_is_judged_before_the_window_is_full() {
        let mut watch = Watch::new(settings());
        for i in 0..59 {
            let t = f64::from(i) * 5.0;
            assert_eq!(watch.record(t, (100.0 * MIB + t * MIB) as u64), None, "{t}");
        }
        assert!(watch
            .record(295.0, (100.0 * MIB + 295.0 * MIB) as u64)
            .is_some());
    }

    #[test]
    fn steady_growth_warns_once_per_window_with_its_slope_and_growth() {
        // 2 MiB a minute, with noise, for fifteen minutes.
        let (trends, warnings) = run(900, |t| {
            80.0 * MIB + t / 60.0 * 2.0 * MIB + wobble(t, 0.3 * MIB)
        });
        assert_eq!(
            warnings,
            [295.0, 590.0, 885.0],
            "first at a full window, then once a window"
        );
        let t = trends.last().unwrap();
        assert!(t.growing);
        assert!(
            (t.slope_per_min / MIB - 2.0).abs() < 0.05,
            "{}",
            t.slope_per_min / MIB
        );
        // Over the 300 s window: 10 MiB.
        assert!((t.growth / MIB - 10.0).abs() < 0.3, "{}", t.growth / MIB);
        assert_eq!(t.samples, 61);
        assert_eq!(t.span, Duration::from_secs(300));
    }

    #[test]
    fn a_flat_series_with_noise_never_warns() {
        let (trends, warnings) = run(900, |t| 120.0 * MIB + wobble(t, 2.0 * MIB));
        assert!(warnings.is_empty());
        assert!(trends.iter().all(|t| !t.growing));
        assert!(trends.iter().all(|t| t.slope_per_min.abs() < 0.5 * MIB));
    }

    #[test]
    fn growth_below_the_threshold_is_reported_but_not_warned() {
        let (trends, warnings) = run(600, |t| 50.0 * MIB + t / 60.0 * 0.5 * MIB);
        assert!(warnings.is_empty());
        let t = trends.last().unwrap();
        assert!((t.slope_per_min / MIB - 0.5).abs() < 1e-6);
        assert!(!t.growing);
    }

    #[test]
    fn one_large_allocation_is_a_step_not_a_leak() {
        // 40 MiB at once, two minutes in; flat on either side.
        let (trends, warnings) = run(900, |t| {
            let step = if t >= 120.0 { 40.0 * MIB } else { 0.0 };
            60.0 * MIB + step + wobble(t, 0.2 * MIB)
        });
        assert!(warnings.is_empty(), "{trends:?}");
        // While the step is in the window the whole-window slope is steep;
        // it is the halves that tell.
        assert!(trends.iter().any(|t| t.slope_per_min > 4.0 * MIB));
    }

    #[test]
    fn an_allocator_sawtooth_is_no_trend() {
        // Grows 6 MiB over 40 s, then falls back, again and again.
        let (_, warnings) = run(900, |t| 90.0 * MIB + (t % 40.0) / 40.0 * 6.0 * MIB);
        assert!(warnings.is_empty());
    }

    #[test]
    fn growth_that_stops_stops_being_growing_once_it_leaves_the_window() {
        let (trends, warnings) = run(1200, |t| 70.0 * MIB + t.min(400.0) / 60.0 * 3.0 * MIB);
        assert_eq!(warnings.first(), Some(&295.0));
        assert!(!trends.last().unwrap().growing);
        assert!(trends.last().unwrap().slope_per_min.abs() < 1.0);
    }

    #[test]
    fn resident_memory_is_read_from_the_vm_rss_line_in_kilobytes() {
        let status = "Name:\ttidepool\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(51234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 pages\n"), None);
    }

    #[test]
    fn this_process_has_resident_memory_on_linux() {
        let rss = resident_bytes();
        if cfg!(target_os = "linux") {
            assert!(rss.is_some_and(|b| b > 1024 * 1024), "{rss:?}");
        } else {
            assert_eq!(rss, None);
        }
    }

    #[test]
    fn the_gauges_are_absent_until_known() {
        let g = Gauges::default();
        assert_eq!(
            (g.resident(), g.slope_per_min(), g.growth()),
            (None, None, None)
        );
        g.set(5, None);
        assert_eq!((g.resident(), g.slope_per_min()), (Some(5.0), None));
        let trend = Trend {
            samples: 3,
            span: Duration::from_secs(10),
            slope_per_min: 60.0,
            growth: 10.0,
            last: 6,
            r2: 1.0,
            growing: false,
        };
        g.set(6, Some(&trend));
        assert_eq!(
            (g.resident(), g.slope_per_min(), g.growth()),
            (Some(6.0), Some(60.0), Some(10.0))
        );
    }
}
