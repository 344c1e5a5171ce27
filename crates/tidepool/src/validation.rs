//! Test-on-borrow, in a task of its own that owns the connection while it
//! is checked. A caller that gives up mid-check (its future dropped by a
//! client timeout) no longer throws a healthy connection away: the check
//! finishes without it, and a connection that passes goes to the next
//! waiter or the idle queue, like one just returned. One that fails is
//! closed. The caller that stays gets the connection back either way and
//! decides, so it keeps its claim on the next one.
//!
//! A failed check is not reported to the circuit breaker: it says that a
//! *connection* died (killed by the server, an idle timeout in a firewall),
//! which happens to many connections at once while the database is fine;
//! the connection attempt that replaces it is what tests the database, and
//! the breaker counts that.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::shared::{Idle, Shared};

/// What a finished check hands back to a caller still waiting for it.
pub(crate) struct Checked<C> {
    pub idle: Idle<C>,
    pub valid: bool,
}

/// The connection under check. Dropped unfinished (its runtime shutting
/// down), it closes the connection and frees its room.
struct UnderCheck<M: Manager> {
    shared: Arc<Shared<M>>,
    idle: Option<Idle<M::Connection>>,
}

impl<M: Manager> Drop for UnderCheck<M> {
    fn drop(&mut self) {
        if let Some(idle) = self.idle.take() {
            self.shared
                .discard_in_use(idle.conn, &idle.meta, CloseReason::FailedValidation);
        }
    }
}

impl<M: Manager> Shared<M> {
    /// Checks `idle` (counted in use) in a task of its own. The receiver
    /// yields the connection and the verdict; if the receiver is gone by
    /// then, the task returns or closes the connection itself.
    pub(crate) fn check_detached(
        self: &Arc<Self>,
        idle: Idle<M::Connection>,
        deadline: Instant,
    ) -> oneshot::Receiver<Checked<M::Connection>> {
        let (reply, answer) = oneshot::channel();
        let mut under = UnderCheck {
            shared: self.clone(),
            idle: Some(idle),
        };
        drop(self.spawn(async move {
            let shared = under.shared.clone();
            let valid = match under.idle.as_mut() {
                Some(idle) => shared.validate(idle, deadline).await,
                None => false,
            };
            let Some(idle) = under.idle.take() else {
                return;
            };
            if let Err(Checked { idle, valid }) = reply.send(Checked { idle, valid }) {
                // The caller gave up while the check ran.
                if valid && !shared.is_closed() {
                    shared.release(idle.conn, idle.meta, false);
                } else {
                    let reason = if valid {
                        CloseReason::PoolClosed
                    } else {
                        CloseReason::FailedValidation
                    };
                    shared.discard_in_use(idle.conn, &idle.meta, reason);
                }
            }
        }));
        answer
    }

    /// One validation, bounded by `validation_timeout` and the caller's
    /// deadline; marks the connection validated when it passes.
    async fn validate(&self, idle: &mut Idle<M::Connection>, deadline: Instant) -> bool {
        self.recorder.counters.validations.fetch_add(1, Relaxed);
        let limit = self
            .config
            .validation_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(limit, self.manager.validate(&mut idle.conn)).await {
            Ok(Ok(())) => {
                idle.meta.mark_validated(self.epoch, Instant::now());
                true
            }
            Ok(Err(e)) => {
                self.recorder
                    .counters
                    .validations_failed
                    .fetch_add(1, Relaxed);
                tracing::debug!(target: "tidepool::pool", id = idle.meta.id, error = %e, "connection failed validation");
                false
            }
            Err(_) => {
                self.recorder
                    .counters
                    .validations_timed_out
                    .fetch_add(1, Relaxed);
                tracing::debug!(target: "tidepool::pool", id = idle.meta.id, ?limit, "connection validation timed out");
                false
            }
        }
    }
}
