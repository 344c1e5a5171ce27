//! The server's own connection cap, learned from its refusals. A server
//! that says "too many connections" (PostgreSQL `53300`, MySQL `1040` /
//! `1203`, see [`Manager::is_at_capacity`](crate::Manager::is_at_capacity))
//! is full, not down: the pool stops opening connections past the number
//! it had open when refused, queues callers on the connections that exist
//! (their deadlines still hold), and never tells the circuit breaker.
//!
//! The ceiling is retried one connection at a time: with connections open,
//! at most once per backoff period (`retry_delay` doubling up to
//! `max_retry_delay`), so a capped role is not hammered; with none open,
//! every `retry_delay`, so a pool shut out by other clients serves again
//! within about that long of them leaving. An attempt that succeeds past
//! the ceiling raises it by one and allows the next try at once, so a
//! server that gained room is refilled as fast as demand asks; at
//! `max_size` the ceiling is forgotten.

use std::time::Duration;

use tokio::time::Instant;

/// Lives in the pool's state, under its lock.
#[derive(Debug, Default)]
pub(crate) struct Ceiling {
    /// Connections the server has room for, as last learned.
    at: Option<usize>,
    /// When an attempt past the ceiling may next be made.
    next_try: Option<Instant>,
    /// Refusals in a row, for the backoff.
    refusals: u32,
    /// An attempt past the ceiling is in flight.
    trying: bool,
}

impl Ceiling {
    /// The most connections the pool may open now.
    pub(crate) fn limit(&self, max_size: usize) -> usize {
        self.at.map_or(max_size, |at| at.min(max_size))
    }

    /// The ceiling, if one is known.
    pub(crate) fn known(&self) -> Option<usize> {
        self.at
    }

    /// The server refused a connection with `open` connections open.
    /// Returns the new ceiling when it changed (worth a log line).
    pub(crate) fn refused(
        &mut self,
        open: usize,
        now: Instant,
        base: Duration,
        cap: Duration,
    ) -> Option<usize> {
        self.trying = false;
        self.refusals = self.refusals.saturating_add(1);
        let wait = if open == 0 {
            base
        } else {
            base.saturating_mul(1u32 << (self.refusals - 1).min(20))
                .min(cap)
        };
        self.next_try = Some(now + wait);
        let changed = self.at != Some(open);
        self.at = Some(open);
        changed.then_some(open)
    }

    /// When an attempt may next be made with nothing open (the opening
    /// task waits for it).
    pub(crate) fn next_try(&self) -> Option<Instant> {
        self.next_try
    }

    /// A connection opened, leaving `open` open. Returns true when a known
    /// ceiling was forgotten.
    pub(crate) fn opened(&mut self, open: usize, max_size: usize) -> bool {
        let Some(at) = self.at else { return false };
        if open < at {
            return false;
        }
        if !std::mem::replace(&mut self.trying, false) {
            // An attempt that started before the refusal taught us the
            // ceiling: the server had room for it, so the ceiling is at
            // least this, but it is no answer to a try and must not reset
            // the backoff.
            self.at = Some(open.min(max_size));
            return false;
        }
        self.refusals = 0;
        self.next_try = None;
        if open >= max_size {
            self.at = None;
            return true;
        }
        self.at = Some(open);
        false
    }

    /// An attempt ended without a connection or a refusal (it failed
    /// otherwise, or was abandoned): the next one may go.
    pub(crate) fn attempt_over(&mut self) {
        self.trying = false;
    }

    /// Whether a caller that found no room under the ceiling may make one
    /// attempt past it now; at most one such attempt is in flight.
    pub(crate) fn take_try(&mut self, now: Instant) -> bool {
        if self.at.is_none() || self.trying || self.next_try.is_some_and(|t| now < t) {
            return false;
        }
        self.trying = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);
    const CAP: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn a_refusal_caps_the_pool_at_what_was_open_and_backs_off_its_retries() {
        let mut c = Ceiling::default();
        let t0 = Instant::now();
        assert_eq!(c.limit(10), 10);
        assert_eq!(c.refused(3, t0, BASE, CAP), Some(3));
        assert_eq!(c.limit(10), 3);
        assert!(!c.take_try(t0), "no retry before the backoff");
        assert!(c.take_try(t0 + BASE));
        assert!(
            !c.take_try(t0 + BASE),
            "one attempt past the ceiling at a time"
        );
        assert_eq!(c.refused(3, t0 + BASE, BASE, CAP), None, "same ceiling");
        assert!(!c.take_try(t0 + BASE * 2), "the second wait is doubled");
        assert!(c.take_try(t0 + BASE * 3));
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_open_the_ceiling_is_retried_every_base_period() {
        let mut c = Ceiling::default();
        let t0 = Instant::now();
        for i in 0..10u32 {
            c.refused(0, t0 + BASE * i, BASE, CAP);
        }
        assert_eq!(c.next_try(), Some(t0 + BASE * 10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_already_in_flight_at_the_refusal_raises_the_ceiling_but_keeps_the_backoff()
    {
        let mut c = Ceiling::default();
        let t0 = Instant::now();
        c.refused(1, t0, BASE, CAP);
        assert!(!c.opened(2, 10), "not a try: it started before the refusal");
        assert_eq!(c.limit(10), 2);
        assert!(!c.take_try(t0), "the backoff still holds");
        assert!(c.take_try(t0 + BASE));
    }

    #[tokio::test(start_paused = true)]
    async fn successes_past_the_ceiling_raise_it_until_max_size_forgets_it() {
        let mut c = Ceiling::default();
        let t0 = Instant::now();
        c.refused(3, t0, BASE, CAP);
        assert!(c.take_try(t0 + BASE));
        assert!(!c.opened(4, 5));
        assert_eq!(c.limit(5), 4);
        assert!(
            c.take_try(t0 + BASE),
            "a success allows the next try at once"
        );
        assert!(c.opened(5, 5));
        assert_eq!(c.known(), None);
        assert_eq!(c.limit(5), 5);
    }
}
