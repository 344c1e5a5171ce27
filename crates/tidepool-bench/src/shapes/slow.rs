//! Connection opening slowed to what it costs across a network. On
//! loopback a PostgreSQL connection opens in a few milliseconds, so a pool
//! that opens on demand looks free; across a network (TCP and TLS
//! handshakes, authentication, a backend fork) it takes tens. These
//! wrappers sleep `delay` before delegating `connect`, and count the
//! connections they opened, for tidepool's and for deadpool's managers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tidepool::FailureKind;

/// Connections opened (and attempts made) through a slowed manager.
#[derive(Debug, Default)]
pub struct OpenCount {
    /// Connect calls that returned a connection.
    pub opened: AtomicU64,
    /// Connect calls that failed.
    pub failed: AtomicU64,
}

impl OpenCount {
    fn record<T, E>(&self, r: &Result<T, E>) {
        match r {
            Ok(_) => self.opened.fetch_add(1, Relaxed),
            Err(_) => self.failed.fetch_add(1, Relaxed),
        };
    }
}

/// A tidepool manager whose `connect` sleeps `delay` first; everything
/// else is the wrapped manager's.
pub struct SlowConnect<M> {
    inner: M,
    delay: Duration,
    count: Arc<OpenCount>,
}

impl<M> SlowConnect<M> {
    /// Wraps `inner`; opened connections are counted in `count`.
    pub fn new(inner: M, delay: Duration, count: Arc<OpenCount>) -> Self {
        SlowConnect {
            inner,
            delay,
            count,
        }
    }
}

impl<M: tidepool::Manager> tidepool::Manager for SlowConnect<M> {
    type Connection = M::Connection;
    type Error = M::Error;

    async fn connect(&self) -> Result<M::Connection, M::Error> {
        tokio::time::sleep(self.delay).await;
        let r = self.inner.connect().await;
        self.count.record(&r);
        r
    }

    async fn validate(&self, conn: &mut M::Connection) -> Result<(), M::Error> {
        self.inner.validate(conn).await
    }

    fn needs_reset(&self, conn: &M::Connection) -> bool {
        self.inner.needs_reset(conn)
    }

    async fn reset(&self, conn: &mut M::Connection) -> Result<(), M::Error> {
        self.inner.reset(conn).await
    }

    fn is_broken(&self, conn: &M::Connection) -> bool {
        self.inner.is_broken(conn)
    }

    fn classify(&self, error: &M::Error) -> FailureKind {
        self.inner.classify(error)
    }

    fn is_retryable(&self, error: &M::Error) -> bool {
        self.inner.is_retryable(error)
    }

    fn is_restarting(&self, error: &M::Error) -> bool {
        self.inner.is_restarting(error)
    }

    fn is_at_capacity(&self, error: &M::Error) -> bool {
        self.inner.is_at_capacity(error)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// deadpool-postgres's manager with the same slowed `create`.
pub struct SlowDeadpool {
    inner: deadpool_postgres::Manager,
    delay: Duration,
    count: Arc<OpenCount>,
}

impl SlowDeadpool {
    /// Wraps `inner`; opened connections are counted in `count`.
    pub fn new(inner: deadpool_postgres::Manager, delay: Duration, count: Arc<OpenCount>) -> Self {
        SlowDeadpool {
            inner,
            delay,
            count,
        }
    }
}

impl deadpool::managed::Manager for SlowDeadpool {
    type Type = deadpool_postgres::ClientWrapper;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        tokio::time::sleep(self.delay).await;
        let r = deadpool::managed::Manager::create(&self.inner).await;
        self.count.record(&r);
        r
    }

    async fn recycle(
        &self,
        obj: &mut Self::Type,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Self::Error> {
        deadpool::managed::Manager::recycle(&self.inner, obj, metrics).await
    }

    fn detach(&self, obj: &mut Self::Type) {
        deadpool::managed::Manager::detach(&self.inner, obj)
    }
}
