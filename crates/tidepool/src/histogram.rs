//! A lock-free latency histogram: log-linear buckets of atomic counters,
//! recorded with a handful of relaxed atomic adds and read (percentiles) on
//! demand. Precision is 1/8 of a power of two (about 12%), enough to tell
//! a 1 ms tail from a 10 ms one, in 4 KiB per histogram.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;
/// Copies of the bucket array, one per recording thread (threads take them
/// in turn), so the workers of a busy runtime never write the same cache
/// line: striping by connection instead made consecutive users of a
/// connection on different cores bounce its stripe between them, which
/// cost about 1–2% of throughput on two cores.
const STRIPES: usize = 4;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
}

/// Durations recorded in microseconds into log-linear buckets.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    max_us: AtomicU64,
}

fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) & (SUB - 1);
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The largest value that lands in bucket `i` (reported as the percentile,
/// so estimates err on the pessimistic side).
fn upper_bound_of(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    let low = (SUB + sub) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS * STRIPES).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
        }
    }

    /// Records `d`.
    pub(crate) fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        // One add per record, into this thread's stripe (count and mean
        // come from the buckets when read): recording sits on every
        // checkout and return.
        let stripe = STRIPE.with(|s| *s);
        self.buckets[stripe * BUCKETS + bucket_of(us)].fetch_add(1, Relaxed);
        if us > self.max_us.load(Relaxed) {
            self.max_us.fetch_max(us, Relaxed);
        }
    }

    /// The bucket counts summed over the stripes, sparse (only non-empty
    /// buckets), for export and for windows between two readings.
    pub(crate) fn buckets(&self) -> Buckets {
        let counts = (0..BUCKETS)
            .filter_map(|i| {
                let c: u64 = (0..STRIPES)
                    .map(|s| self.buckets[s * BUCKETS + i].load(Relaxed))
                    .sum();
                (c > 0).then_some((i as u16, c))
            })
            .collect();
        Buckets { counts }
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|i| {
                (0..STRIPES)
                    .map(|s| self.buckets[s * BUCKETS + i].load(Relaxed))
                    .sum()
            })
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max_us.load(Relaxed);
        let pct = |q: f64| -> Duration {
            if count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_micros(upper_bound_of(i).min(max));
                }
            }
            Duration::from_micros(max)
        };
        // The mean from bucket midpoints: within the buckets' ~12%.
        let sum: f64 = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| {
                let high = upper_bound_of(i) as f64;
                let low = if i == 0 {
                    0.0
                } else {
                    upper_bound_of(i - 1) as f64 + 1.0
                };
                (low + high) / 2.0 * *c as f64
            })
            .sum();
        HistogramSnapshot {
            count,
            mean: if count == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(sum / count as f64 / 1e6)
            },
            p50: pct(0.50),
            p95: pct(0.95),
            p99: pct(0.99),
            p999: pct(0.999),
            max: Duration::from_micros(max),
        }
    }
}

/// Percentiles of a recorded duration, computed when read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// How many durations were recorded.
    pub count: u64,
    /// Their mean (from bucket midpoints, within about 12%).
    pub mean: Duration,
    /// The median (an upper bound within about 12%).
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The 99.9th percentile.
    pub p999: Duration,
    /// The largest recorded (exact).
    pub max: Duration,
}

/// The raw counts of one of the pool's latency histograms, read by
/// [`Pool::histograms`](crate::Pool::histograms): what an exporter turns
/// into Prometheus buckets, and what [`since`](Buckets::since) subtracts to
/// get the durations recorded between two readings.
///
/// Buckets are log-linear, eight to each power of two of microseconds, so a
/// duration is known to within about 12%; every figure read from them is
/// the bucket's upper bound (an estimate that errs on the slow side),
/// except [`sum`](Buckets::sum), which uses bucket midpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Buckets {
    /// (bucket index, count), ascending, non-zero counts only.
    counts: Vec<(u16, u64)>,
}

fn lower_bound_of(i: usize) -> u64 {
    if i == 0 {
        0
    } else {
        upper_bound_of(i - 1) + 1
    }
}

impl Buckets {
    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c).sum()
    }

    /// The durations recorded after `earlier` was read (a reading of the
    /// same histogram): the histogram of that window.
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        let mut old = earlier.counts.iter().peekable();
        let counts = self
            .counts
            .iter()
            .filter_map(|&(i, c)| {
                while old.peek().is_some_and(|(j, _)| *j < i) {
                    old.next();
                }
                let before = match old.peek() {
                    Some(&&(j, b)) if j == i => b,
                    _ => 0,
                };
                let d = c.saturating_sub(before);
                (d > 0).then_some((i, d))
            })
            .collect();
        Buckets { counts }
    }

    /// The total of the recorded durations, from bucket midpoints (within
    /// about 6%).
    pub fn sum(&self) -> Duration {
        let us: f64 = self
            .counts
            .iter()
            .map(|&(i, c)| {
                let i = usize::from(i);
                (lower_bound_of(i) as f64 + upper_bound_of(i) as f64) / 2.0 * c as f64
            })
            .sum();
        Duration::from_secs_f64(us / 1e6)
    }

    /// Their mean, from bucket midpoints; zero when empty.
    pub fn mean(&self) -> Duration {
        match self.count() {
            0 => Duration::ZERO,
            n => Duration::from_secs_f64(self.sum().as_secs_f64() / n as f64),
        }
    }

    /// The `q` quantile (0.0..=1.0), as the upper bound of its bucket; zero
    /// when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for &(i, c) in &self.counts {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(upper_bound_of(usize::from(i)));
            }
        }
        Duration::ZERO
    }

    /// Cumulative counts at each of `bounds` (ascending): how many durations
    /// fell in a bucket whose upper bound is at most the bound — Prometheus'
    /// `le` buckets. A bucket straddling a bound is counted above it, so
    /// the figures err on the slow side by at most one bucket's width.
    pub fn cumulative(&self, bounds: &[Duration]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds.len());
        let mut it = self.counts.iter().peekable();
        let mut seen = 0;
        for bound in bounds {
            let limit = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
            while let Some(&&(i, c)) = it.peek() {
                if upper_bound_of(usize::from(i)) > limit {
                    break;
                }
                seen += c;
                it.next();
            }
            out.push(seen);
        }
        out
    }
}

/// The raw buckets of the pool's three latency histograms at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Histograms {
    /// Time from `get()` to having a connection.
    pub acquire_wait: Buckets,
    /// Time a connection was held by its user.
    pub hold_time: Buckets,
    /// Time to open a connection.
    pub create_time: Buckets,
}

impl<M: crate::Manager> crate::Pool<M> {
    /// The raw buckets of the acquire wait, hold and create time
    /// histograms, for exporters (read at scrape time, nothing is recorded
    /// twice) and for windows between two readings
    /// ([`Buckets::since`]).
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let pool = Pool::builder(M).build().await?;
    /// let before = pool.histograms();
    /// drop(pool.get().await?);
    /// let window = pool.histograms().acquire_wait.since(&before.acquire_wait);
    /// assert_eq!(window.count(), 1);
    /// assert_eq!(window.cumulative(&[Duration::from_secs(10)]), vec![1]);
    /// # Ok(()) }
    /// ```
    pub fn histograms(&self) -> Histograms {
        let recorder = &self.shared().recorder;
        Histograms {
            acquire_wait: recorder.acquire_wait.buckets(),
            hold_time: recorder.hold_time.buckets(),
            create_time: recorder.create_time.buckets(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bounds_contain_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket order broke at {v}");
            assert!(b < BUCKETS);
            assert!(upper_bound_of(b) >= v, "upper bound of {v} too small");
            last = b;
        }
    }

    #[test]
    fn records_from_more_threads_than_stripes_are_all_counted() {
        let h = Histogram::new();
        std::thread::scope(|s| {
            for t in 0..(STRIPES as u64 + 2) {
                let h = &h;
                s.spawn(move || {
                    for _ in 0..1_000 {
                        h.record(Duration::from_micros(t + 1));
                    }
                });
            }
        });
        let snapshot = h.snapshot();
        assert_eq!(snapshot.count, 1_000 * (STRIPES as u64 + 2));
        assert_eq!(snapshot.max, Duration::from_micros(STRIPES as u64 + 2));
    }

    #[test]
    fn percentiles_are_within_the_stated_precision() {
        let h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max, Duration::from_micros(10_000));
        let p50 = s.p50.as_micros() as f64;
        let p99 = s.p99.as_micros() as f64;
        assert!((5_000.0..=5_000.0 * 1.13).contains(&p50), "p50 {p50}");
        assert!((9_900.0..=10_000.0).contains(&p99), "p99 {p99}");
        let mean = s.mean.as_micros() as f64;
        assert!(
            (5_000.0 * 0.94..=5_000.0 * 1.06).contains(&mean),
            "mean {mean}"
        );
    }

    #[test]
    fn buckets_agree_with_the_snapshot_and_subtract_to_a_window() {
        let h = Histogram::new();
        for us in 1..=1_000u64 {
            h.record(Duration::from_micros(us));
        }
        let early = h.buckets();
        for us in 1..=1_000u64 {
            h.record(Duration::from_micros(us * 1_000));
        }
        let s = h.snapshot();
        let all = h.buckets();
        assert_eq!(all.count(), s.count);
        assert_eq!(all.quantile(0.5), s.p50);
        assert_eq!(all.quantile(0.95), s.p95);
        let window = all.since(&early);
        assert_eq!(window.count(), 1_000);
        // The window holds only the millisecond durations.
        assert!(window.quantile(0.0) >= Duration::from_millis(1));
        let mean = window.mean().as_secs_f64();
        assert!(
            (0.5005 * 0.94..=0.5005 * 1.06).contains(&mean),
            "mean {mean}"
        );
        let cumulative = window.cumulative(&[
            Duration::from_micros(999),
            Duration::from_millis(100),
            Duration::from_secs(10),
        ]);
        assert_eq!(cumulative[0], 0);
        assert!((88..=100).contains(&cumulative[1]), "{cumulative:?}");
        assert_eq!(cumulative[2], 1_000);
    }

    #[test]
    fn an_empty_histogram_reads_as_zero() {
        let s = Histogram::new().snapshot();
        assert_eq!(s, HistogramSnapshot::default());
    }
}
