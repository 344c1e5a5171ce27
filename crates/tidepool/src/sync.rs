//! The locks of the checkout path, routed through one place so that the
//! loom model test (`waiters::loom_model`) can swap in loom's, which
//! explore every interleaving. Normal builds use parking_lot.

#[cfg(not(all(test, loom)))]
pub(crate) use parking_lot::Mutex;

#[cfg(all(test, loom))]
pub(crate) use self::mocked::Mutex;

#[cfg(all(test, loom))]
mod mocked {
    /// loom's mutex with parking_lot's infallible `lock()`.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            match self.0.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }
    }
}
