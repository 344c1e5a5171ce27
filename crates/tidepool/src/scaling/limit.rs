//! The adaptive concurrency limit: past some point more connections make a
//! database slower, not faster, and callers are better off queueing in the
//! pool (cheap, fair, bounded by their deadline) than on the server.
//!
//! It follows the gradient idea of Netflix's concurrency-limits and TCP
//! Vegas: compare the hold time (checkout to return, which tracks the
//! server's latency) with the lowest seen at light load. While they agree,
//! the limit grows by √limit a tick; when latency rises, the limit is
//! scaled by `lowest ÷ now` (at most halved a tick) plus √limit of
//! headroom, which settles where a little queueing shows — the knee of the
//! throughput curve. It starts low (slow start) so the baseline is measured
//! before the database is crowded; the baseline is re-measured every
//! `PROBE_EVERY` ticks by holding the limit low for one tick, so it follows
//! a workload that changes. A pool that uses less than half its limit
//! leaves the limit alone (the application, not the database, is the
//! bottleneck).

use std::time::Duration;

const PROBE_EVERY: u64 = 120;
/// Latency within this factor of the baseline counts as no rise.
const TOLERANCE: f64 = 1.1;

pub(crate) struct GradientLimit {
    limit: f64,
    baseline: Option<f64>,
    ticks: u64,
    /// The limit to return to after a probe tick.
    probing: Option<f64>,
}

impl GradientLimit {
    pub(crate) fn new(min: usize, max: usize) -> Self {
        GradientLimit {
            limit: (min.max(4) as f64).min(max as f64),
            baseline: None,
            ticks: 0,
            probing: None,
        }
    }

    pub(crate) fn current(&self, min: usize, max: usize) -> usize {
        (self.limit.round() as usize).clamp(min.max(1), max)
    }

    /// One tick: `hold` is the mean hold time in the window (`None` when
    /// nothing came back), `busy` the average connections out.
    pub(crate) fn update(
        &mut self,
        hold: Option<Duration>,
        busy: f64,
        min: usize,
        max: usize,
    ) -> usize {
        let (lo, hi) = (min.max(1) as f64, max as f64);
        self.ticks += 1;
        let Some(rtt) = hold.map(|d| d.as_secs_f64()).filter(|r| *r > 0.0) else {
            return self.current(min, max);
        };
        if let Some(resume) = self.probing.take() {
            // The probe tick ran at low concurrency: its latency is the
            // new baseline.
            self.baseline = Some(rtt);
            self.limit = resume.clamp(lo, hi);
            return self.current(min, max);
        }
        let baseline = *self.baseline.get_or_insert(rtt);
        if rtt < baseline {
            self.baseline = Some(rtt);
        }
        let baseline = self.baseline.unwrap_or(baseline);
        let gradient = if rtt <= baseline * TOLERANCE {
            1.0
        } else {
            (baseline / rtt).clamp(0.5, 1.0)
        };
        if gradient >= 1.0 && busy < self.limit / 2.0 {
            return self.current(min, max);
        }
        let headroom = self.limit.sqrt();
        let next = self.limit * gradient + headroom;
        self.limit = next.clamp(lo, hi);
        if self.ticks.is_multiple_of(PROBE_EVERY) {
            self.probing = Some(self.limit);
            self.limit = headroom.max(lo).min(self.limit);
        }
        self.current(min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database whose throughput saturates at `knee` concurrent
    /// statements of `service` each: latency is flat below the knee and
    /// grows with the queue above it.
    fn latency(limit: usize, knee: usize, service: f64) -> Duration {
        let l = limit.max(1) as f64;
        Duration::from_secs_f64(service * (l / knee as f64).max(1.0))
    }

    #[test]
    fn an_overloaded_database_is_held_near_its_knee_not_at_max() {
        let mut g = GradientLimit::new(0, 100);
        let mut limit = g.current(0, 100);
        for _ in 0..200 {
            limit = g.update(Some(latency(limit, 4, 0.0007)), limit as f64, 0, 100);
        }
        assert!((4..=12).contains(&limit), "settled at {limit}");
    }

    #[test]
    fn a_database_that_never_slows_lets_the_limit_grow_to_max() {
        let mut g = GradientLimit::new(2, 50);
        let mut limit = g.current(2, 50);
        for _ in 0..100 {
            limit = g.update(Some(Duration::from_millis(2)), limit as f64, 2, 50);
        }
        assert_eq!(limit, 50);
    }

    #[test]
    fn a_light_load_leaves_the_limit_alone_and_it_stays_within_bounds() {
        let mut g = GradientLimit::new(3, 20);
        let start = g.current(3, 20);
        for _ in 0..50 {
            let l = g.update(Some(Duration::from_millis(1)), 1.0, 3, 20);
            assert_eq!(l, start);
        }
        for _ in 0..50 {
            let l = g.update(Some(Duration::from_secs(5)), 20.0, 3, 20);
            assert!((3..=20).contains(&l));
        }
    }
}
