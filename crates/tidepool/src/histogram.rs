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
    fn an_empty_histogram_reads_as_zero() {
        let s = Histogram::new().snapshot();
        assert_eq!(s, HistogramSnapshot::default());
    }
}
