//! Where the pool's own work runs, and keeping its two long-lived tasks
//! (the deadline sweeper and the maintenance tick) alive.
//!
//! A task lives on the runtime it was spawned on and is dropped when that
//! runtime shuts down. A pool kept in a `static` and used from several
//! `#[tokio::test]`s outlives the runtime it was built in, so nothing an
//! acquire needs may depend on that runtime: short-lived work (opening a
//! connection, cleaning one, holding the degraded gate) is spawned on the
//! caller's runtime when there is one, and a long-lived task that died with
//! its runtime is started again, on the caller's runtime, by the next
//! acquire that queues or opens a connection. Each long-lived task carries
//! a [`Token`] whose drop says it is gone.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::manager::Manager;
use crate::shared::Shared;

/// Whether one long-lived task is running. At most one [`Token`] exists
/// for it at a time, so two callers that find it dead start it once.
#[derive(Default)]
pub(crate) struct Liveness(Arc<AtomicBool>);

impl Liveness {
    /// The right to start the task, if it is not running.
    pub(crate) fn claim(&self) -> Option<Token> {
        self.0
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Token(self.0.clone()))
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Held by a running long-lived task; dropped with it — when it ends, or
/// when its runtime shuts down and drops it unfinished.
pub(crate) struct Token(Arc<AtomicBool>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<M: Manager> Shared<M> {
    /// Spawns short-lived work for an acquire: on the caller's runtime when
    /// there is one (it is alive: the caller is running on it), else on
    /// the runtime the pool was built in.
    pub(crate) fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match Handle::try_current() {
            Ok(current) => current.spawn(work),
            Err(_) => self.runtime.spawn(work),
        }
    }

    /// Starts the sweeper or the maintenance task again if its runtime
    /// shut down under it. Called on the paths that need them (queueing,
    /// opening a connection), not on every checkout.
    pub(crate) fn revive_background(self: &Arc<Self>) {
        if !self.sweeper_alive.is_alive() {
            crate::waiters::spawn_sweeper(self);
        }
        if !self.maintenance_alive.is_alive() {
            crate::maintenance::spawn(self);
        }
    }
}
