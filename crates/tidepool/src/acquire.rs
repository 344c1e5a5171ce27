//! The checkout path: a fair permit, then an idle connection (validated if
//! due) or a new one, all inside the acquire deadline. Every step that can
//! be cancelled holds its resources in a drop guard, so dropping the future
//! at any await point leaks neither a permit nor a connection.

use std::panic::Location;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{Admission, Rejected};
use crate::conn::{CheckoutSite, ConnMeta};
use crate::error::Error;
use crate::events::Event;
use crate::guard::Pooled;
use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::shared::{Checkout, Shared};
use crate::validation::Checked;
use crate::waiters::{Grant, Outcome, Wait};

/// How one attempt at opening a connection ended, when it did not succeed.
pub(crate) enum CreateFailure<E> {
    /// The manager's error; `retryable` per `Manager::is_retryable`.
    Error { error: E, retryable: bool },
    /// `connect_timeout` (or the acquire deadline) ran out.
    TimedOut(Duration),
    /// The server is full ([`Manager::is_at_capacity`]); the ceiling has
    /// been learned. `open` is how many connections the pool has open,
    /// `others_opening` how many other attempts were in flight.
    AtCapacity { open: usize, others_opening: usize },
}

impl<M: Manager> Shared<M> {
    /// One connection attempt, bounded by `limit`. Records the outcome.
    /// `gate` is the one-at-a-time permit taken while the database is in
    /// trouble (see `pass_gate`); waiting for it is not part of `limit`.
    pub(crate) async fn connect_once(
        &self,
        limit: Duration,
        gate: Option<tokio::sync::OwnedSemaphorePermit>,
        failed: Option<&AtomicBool>,
    ) -> Result<Box<M::Connection>, CreateFailure<M::Error>> {
        let started = Instant::now();
        let attempt = async {
            let mut outcome = self.manager.connect().await;
            if let (Ok(conn), Some(hook)) = (&mut outcome, &self.after_connect) {
                // Inside the connect timeout: a hook that hangs is a
                // connection that did not open.
                match hook(conn).await {
                    Ok(()) => self.manager.session_baseline(conn),
                    Err(error) => outcome = Err(error),
                }
            }
            if let (Some(gate), Err(_)) = (gate, &outcome) {
                // Keep the gate shut a little after a failure, so a
                // database that refuses at once sees a trickle, not a loop.
                let spacing = self.config.breaker.degraded_attempt_spacing;
                self.spawn(async move {
                    tokio::time::sleep(spacing).await;
                    drop(gate);
                });
            }
            outcome
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(conn)) => {
                self.recorder.create_time.record(started.elapsed());
                self.recorder.counters.created.fetch_add(1, Relaxed);
                self.breaker.record_success();
                Ok(Box::new(conn))
            }
            Ok(Err(error)) if self.manager.is_at_capacity(&error) => {
                let text = error.to_string();
                self.recorder
                    .counters
                    .refused_at_capacity
                    .fetch_add(1, Relaxed);
                let (open, others_opening, changed) = {
                    let mut state = self.state.lock();
                    let open = state.size() - state.creating;
                    let others_opening = state.creating.saturating_sub(1);
                    let changed = state.ceiling.refused(
                        open,
                        Instant::now(),
                        self.config.retry_delay,
                        self.config.max_retry_delay,
                    );
                    (open, others_opening, changed)
                };
                if changed.is_some() {
                    tracing::warn!(target: "tidepool::pool", target_db = %self.manager.describe(), open, error = %text, "the server is at its connection limit: the pool will not open more than {open} until it has room (callers queue for those)");
                }
                self.set_last_error(text);
                Err(CreateFailure::AtCapacity {
                    open,
                    others_opening,
                })
            }
            Ok(Err(error)) => {
                if let Some(failed) = failed {
                    // Before the breaker hears of it (see `create::Attempt`).
                    failed.store(true, Release);
                }
                self.recorder.counters.create_failed.fetch_add(1, Relaxed);
                let retryable = self.manager.is_retryable(&error);
                let text = error.to_string();
                if !retryable {
                    self.breaker.record_fatal(&text);
                } else if self.manager.is_restarting(&error) {
                    self.breaker.record_restarting(&text);
                } else {
                    self.breaker
                        .record_failure(self.manager.classify(&error), &text);
                }
                self.recorder.counters.failed(self.manager.classify(&error));
                tracing::warn!(target: "tidepool::pool", target_db = %self.manager.describe(), error = %text, retryable, "connection attempt failed");
                self.set_last_error(text.clone());
                self.emit(|| Event::CreateFailed { error: text });
                Err(CreateFailure::Error { error, retryable })
            }
            Err(_) => {
                self.recorder.counters.create_failed.fetch_add(1, Relaxed);
                self.recorder.counters.failed(crate::FailureKind::Timeout);
                let text = format!("connecting timed out after {limit:?}");
                self.breaker
                    .record_failure(crate::FailureKind::Timeout, &text);
                tracing::warn!(target: "tidepool::pool", target_db = %self.manager.describe(), "{text}");
                self.set_last_error(text.clone());
                self.emit(|| Event::CreateFailed { error: text });
                Err(CreateFailure::TimedOut(limit))
            }
        }
    }

    /// The circuit is open: fail at once, or — with `hold_while_open` —
    /// wait for it to close (or to let this caller probe) until `deadline`.
    /// A held caller makes no connection attempt of its own.
    async fn hold_while_open(
        &self,
        mut rejected: Rejected,
        deadline: Instant,
        count_it: bool,
    ) -> Result<Admission<'_>, Error<M::Error>> {
        if !self.config.breaker.hold_while_open {
            return Err(rejected.into_error());
        }
        if count_it {
            self.recorder.counters.held.fetch_add(1, Relaxed);
        }
        loop {
            let now = Instant::now();
            if now >= deadline || self.is_closed() {
                return Err(rejected.into_error());
            }
            // Registered before the state is read again, so a transition
            // between the two cannot be missed.
            let changed = self.breaker.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.breaker.admit() {
                Ok(admission) => return Ok(admission),
                Err(r) => rejected = r,
            }
            let wake = deadline.min(now + rejected.retry_after);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    pub(crate) fn timed_out(&self, started: Instant) -> Error<M::Error> {
        let waited = started.elapsed();
        self.recorder.counters.timed_out.fetch_add(1, Relaxed);
        self.emit(|| Event::Timeout { waited });
        tracing::debug!(target: "tidepool::pool", ?waited, "acquire timed out");
        Error::Timeout {
            waited,
            last_error: self.last_error(),
        }
    }

    fn checkout_site(&self, location: &'static Location<'static>) -> Option<CheckoutSite> {
        self.config.leak_timeout.map(|_| CheckoutSite {
            location,
            backtrace: self
                .config
                .track_stack_trace
                .then(std::backtrace::Backtrace::force_capture),
        })
    }

    /// The whole checkout. `self` is the `Arc` the guard will share.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        location: &'static Location<'static>,
        statement: Option<u64>,
    ) -> Result<Pooled<M>, Error<M::Error>> {
        let started = Instant::now();
        // A span for tracing subscribers that want one (an OpenTelemetry
        // layer, say): it lives as long as the acquire and carries the
        // pool's name, the wait and the outcome. Disabled, it costs a
        // static check.
        let span = tracing::debug_span!(
            target: "tidepool::acquire",
            "acquire",
            pool = tracing::field::Empty,
            waited_us = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let deadline = started + self.config.acquire_timeout;
        let result = match self.breaker.admit() {
            Ok(Admission::Normal) => {
                self.checkout_until(started, deadline, location, statement)
                    .await
            }
            // The database is in trouble: the slower path, boxed so that
            // its state does not weigh on every checkout's future.
            admitted => {
                Box::pin(
                    self.acquire_past_breaker(admitted, started, deadline, location, statement),
                )
                .await
            }
        };
        if let Err(e) = &result {
            self.count_acquire_error(e);
        }
        if !span.is_disabled() {
            let name = self
                .config
                .name
                .clone()
                .unwrap_or_else(|| self.manager.describe());
            span.record("pool", name.as_str());
            span.record("waited_us", started.elapsed().as_micros() as u64);
            span.record("outcome", acquire_outcome(&result));
        }
        result
    }

    /// Counts the failures `timed_out` does not: refusals by an open
    /// circuit, and create errors returned at once.
    fn count_acquire_error(&self, error: &Error<M::Error>) {
        let counters = &self.recorder.counters;
        match error {
            Error::CircuitOpen { .. } => counters.refused_circuit_open.fetch_add(1, Relaxed),
            Error::Create(_) => counters.failed_at_once.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    /// A checkout the breaker did not simply let through: holding while
    /// the circuit is open, or probing.
    async fn acquire_past_breaker(
        self: &Arc<Self>,
        mut admitted: Result<Admission<'_>, Rejected>,
        started: Instant,
        deadline: Instant,
        location: &'static Location<'static>,
        statement: Option<u64>,
    ) -> Result<Pooled<M>, Error<M::Error>> {
        let mut held = false;
        loop {
            let admission = match admitted {
                Ok(admission) => admission,
                Err(rejected) => {
                    let first_hold = !std::mem::replace(&mut held, true);
                    self.hold_while_open(rejected, deadline, first_hold).await?
                }
            };
            let probing = matches!(admission, Admission::Probe { .. });
            let result = self
                .checkout_until(started, deadline, location, statement)
                .await;
            drop(admission);
            match result {
                // A held caller let through as a probe that found the
                // database still down goes back to holding.
                Err(e)
                    if probing
                        && self.config.breaker.hold_while_open
                        && Instant::now() < deadline
                        && self.worth_holding_after(&e) =>
                {
                    admitted = self.breaker.admit();
                }
                result => return result,
            }
        }
    }

    /// Whether a failed probe's error is one waiting could cure.
    fn worth_holding_after(&self, error: &Error<M::Error>) -> bool {
        match error {
            Error::Timeout { .. } => true,
            Error::Create(e) => self.manager.is_retryable(e),
            _ => false,
        }
    }

    /// The checkout once the breaker has let it through.
    async fn checkout_until(
        self: &Arc<Self>,
        started: Instant,
        deadline: Instant,
        location: &'static Location<'static>,
        statement: Option<u64>,
    ) -> Result<Pooled<M>, Error<M::Error>> {
        // `now` is read again only after something that takes time (a
        // wait, a validation, a connect): clock reads are a measurable
        // share of an uncontended checkout.
        let mut now = started;
        let mut grant = match self.checkout(deadline, statement) {
            Checkout::Now(grant) => grant,
            Checkout::Closed => return Err(Error::Closed),
            Checkout::Wait(slot) => {
                self.recorder.counters.waited.fetch_add(1, Relaxed);
                // The sweeper ends this wait at the deadline: make sure it
                // did not die with the runtime the pool was built in.
                self.revive_background();
                let wait = Wait {
                    shared: self,
                    slot,
                    done: false,
                };
                let outcome = wait.await;
                now = Instant::now();
                match outcome {
                    Outcome::Granted(grant) => grant,
                    Outcome::TimedOut => return Err(self.timed_out(started)),
                    Outcome::Closed => return Err(Error::Closed),
                }
            }
        };
        loop {
            match grant {
                Grant::Conn(idle) => {
                    let verdict = if idle.meta.expired(now) {
                        Err((idle, CloseReason::MaxLifetime))
                    } else if self.is_evicted(&idle.meta) {
                        Err((idle, CloseReason::Evicted))
                    } else if self.manager.is_broken(&idle.conn) {
                        // Died while idle (reset, server shutdown): the
                        // driver noticed, so no round trip is needed.
                        Err((idle, CloseReason::Broken))
                    } else if idle.fresh {
                        Ok(idle)
                    } else if !self.breaker.is_healthy()
                        || (self.config.test_on_borrow
                            && idle.meta.quiet_for(self.epoch, now)
                                >= self.tuned.validation_interval())
                    {
                        // Checked in a task that owns the connection, so a
                        // caller dropped mid-check does not cost it.
                        let answer = self.check_detached(idle, deadline).await;
                        now = Instant::now();
                        match answer {
                            Ok(Checked { idle, valid: true }) => Ok(idle),
                            Ok(Checked { idle, valid: false }) => {
                                Err((idle, CloseReason::FailedValidation))
                            }
                            // The task was dropped unrun (its runtime is
                            // shutting down); it closed the connection.
                            Err(_) => return Err(self.timed_out(started)),
                        }
                    } else {
                        Ok(idle)
                    };
                    match verdict {
                        Ok(idle) => {
                            let guard = self.guard(idle.conn, idle.meta, started, false);
                            return Ok(self.hand_out(guard, started, now, location));
                        }
                        Err((idle, reason)) => {
                            grant = self.discard_and_retake(idle.conn, &idle.meta, reason);
                            if now >= deadline {
                                self.give_back(grant);
                                return Err(self.timed_out(started));
                            }
                        }
                    }
                }
                Grant::Create => {
                    self.revive_background();
                    // Boxed: the opening path's state (a task handle, a
                    // select over the queue and the breaker) stays off the
                    // future of every checkout that finds a connection.
                    grant = Box::pin(self.create_and_wait(started, deadline)).await?;
                    now = Instant::now();
                }
            }
        }
    }

    /// Returns a grant a checkout will not use.
    fn give_back(&self, grant: Grant<M::Connection>) {
        match grant {
            Grant::Conn(idle) => self.release(idle.conn, idle.meta, false),
            Grant::Create => self.creation_abandoned(),
        }
    }

    fn guard(
        self: &Arc<Self>,
        conn: Box<M::Connection>,
        meta: Arc<ConnMeta>,
        started: Instant,
        is_new: bool,
    ) -> Pooled<M> {
        Pooled {
            shared: self.clone(),
            conn: Some(conn),
            meta,
            checked_out: started,
            is_new,
            broken: false,
        }
    }

    fn hand_out(
        &self,
        mut guard: Pooled<M>,
        started: Instant,
        now: Instant,
        location: &'static Location<'static>,
    ) -> Pooled<M> {
        let waited = now.saturating_duration_since(started);
        guard.checked_out = now;
        // New to its user: never handed out before, wherever it was opened.
        guard.is_new = guard.meta.never_used();
        guard
            .meta
            .mark_checked_out(self.epoch, now, self.checkout_site(location));
        self.recorder.acquire_wait.record(waited);
        if let Some(threshold) = self.config.slow_acquire_threshold {
            if waited >= threshold {
                self.recorder.counters.slow_acquires.fetch_add(1, Relaxed);
                tracing::warn!(target: "tidepool::pool", ?waited, %location, "slow acquire");
            }
        }
        let id = guard.meta.id;
        self.breaker.record_success();
        self.emit(|| Event::Checkout { id, waited });
        guard
    }
}

/// The outcome of an acquire, as the span records it.
fn acquire_outcome<T, E: std::error::Error + 'static>(
    result: &Result<T, Error<E>>,
) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Timeout { .. }) => "timeout",
        Err(Error::CircuitOpen { .. }) => "circuit_open",
        Err(Error::Create(_)) => "create_failed",
        Err(Error::Closed) => "closed",
        Err(_) => "error",
    }
}
