//! The blocking face: plain threads check connections out of the same pool
//! that async tasks use, by driving the async path on the pool's runtime.
//! Blocking is allowed wherever tokio allows it — a plain thread, a
//! `spawn_blocking` closure, a `block_in_place` section, and a
//! multi-threaded runtime's worker (through `block_in_place`, which moves
//! the worker's other tasks elsewhere first). It is refused with
//! [`Error::BlockingInAsync`](crate::Error::BlockingInAsync) only on the
//! thread that drives a current-thread runtime, where it would stall every
//! task on it, or deadlock if the pool needs that runtime.

use tokio::runtime::{Builder, Handle, Runtime, RuntimeFlavor};

use crate::error::{BuildError, Error};
use crate::guard::Pooled;
use crate::manager::Manager;
use crate::pool::Pool;

/// A runtime a blocking pool started for itself. Shut down in the
/// background on drop, so dropping the pool anywhere (even inside another
/// runtime) never panics.
pub(crate) struct OwnedRuntime(Option<Runtime>);

impl OwnedRuntime {
    pub(crate) fn start() -> Result<Self, BuildError> {
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tidepool")
            .enable_time()
            .enable_io()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(|e| BuildError::WarmUp(format!("could not start the pool's runtime: {e}")))
    }

    pub(crate) fn handle(&self) -> Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl<M: Manager> Pool<M> {
    /// Checks out a connection from a plain thread, blocking it up to
    /// `acquire_timeout`. Works on any pool, whichever way it was built,
    /// from a plain thread, inside `spawn_blocking` or `block_in_place`, and
    /// on a multi-threaded runtime's worker (it steps out of the worker with
    /// `block_in_place` first). Refused with
    /// [`Error::BlockingInAsync`] on the thread driving a current-thread
    /// runtime, where blocking would stall every task on it.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool, Pooled};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// let pool = Pool::builder(M).max_size(4).build_blocking()?;
    /// let conn = pool.get_blocking()?;
    /// assert!(Pooled::is_new(&conn));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn get_blocking(&self) -> Result<Pooled<M>, Error<M::Error>> {
        let location = std::panic::Location::caller();
        let shared = self.shared().clone();
        let wait = move || {
            let runtime = shared.runtime.clone();
            runtime.block_on(async move { shared.acquire(location, None).await })
        };
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => wait(),
            // Outside a worker (spawn_blocking, block_in_place) this just
            // calls `wait`; on a worker it hands the worker's tasks to
            // another thread first, so nothing stalls.
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            Ok(_) if on_blocking_pool_thread() => wait(),
            Ok(_) => Err(Error::BlockingInAsync),
        }
    }
}

/// Whether this thread is one of a runtime's `spawn_blocking` threads. A
/// current-thread runtime runs its tasks on the thread that called
/// `block_on`, so a thread carrying tokio's default worker name inside one
/// is a blocking-pool thread (tokio has no public way to ask). A runtime
/// built with its own `thread_name` makes this answer no, which refuses a
/// call that would have been safe: the mistake errs on the side that cannot
/// stall a runtime. `tests/blocking.rs` fails if tokio renames its threads.
fn on_blocking_pool_thread() -> bool {
    matches!(
        std::thread::current().name(),
        Some("tokio-rt-worker" | "tokio-runtime-worker")
    )
}
