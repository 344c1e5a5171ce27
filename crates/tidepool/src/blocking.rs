//! The blocking face: plain threads check connections out of the same pool
//! that async tasks use, by driving the async path on the pool's runtime.
//! A blocking call from inside an async runtime is refused with
//! [`Error::BlockingInAsync`](crate::Error::BlockingInAsync) instead of
//! stalling a worker thread or deadlocking a current-thread runtime.

use tokio::runtime::{Builder, Handle, Runtime};

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
    /// `acquire_timeout`. Works on any pool, whichever way it was built.
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
        if Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsync);
        }
        let location = std::panic::Location::caller();
        let shared = self.shared().clone();
        self.shared()
            .runtime
            .block_on(async move { shared.acquire(location).await })
    }
}
