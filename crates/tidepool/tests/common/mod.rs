//! A manager whose every hook can be told to succeed, fail, stall for a
//! while or never return, and whose connections count themselves, so a
//! test can check that no connection is leaked or double-counted.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tidepool::{FailureKind, Manager};

/// What a hook does when called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Ok,
    Err,
    /// Succeeds after this long.
    Slow(Duration),
    Never,
}

pub const ALL: [Behavior; 4] = [
    Behavior::Ok,
    Behavior::Err,
    Behavior::Slow(Duration::from_millis(50)),
    Behavior::Never,
];

#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    #[error("fake connect failure")]
    Connect,
    #[error("fake fatal failure (wrong password)")]
    Fatal,
    #[error("fake: the database system is starting up")]
    Restarting,
    #[error("fake validation failure")]
    Validate,
    #[error("fake reset failure")]
    Reset,
    #[error("fake: too many connections")]
    TooMany,
}

pub struct Plan {
    pub create: Mutex<Behavior>,
    pub validate: Mutex<Behavior>,
    pub reset: Mutex<Behavior>,
    /// Create fails with a non-retryable error.
    pub fatal: AtomicBool,
    /// Create fails with an error that says the server is restarting.
    pub restarting: AtomicBool,
    /// Returned connections say they need a reset.
    pub dirty_on_return: AtomicBool,
    /// The server's connection limit: connects past it are refused with
    /// `TooMany`. Defaults to unlimited.
    pub capacity: AtomicI64,
    /// Connections currently in existence.
    pub alive: AtomicI64,
    pub connects: AtomicU64,
    /// Connection attempts in progress now, and the most ever at once.
    pub connecting: AtomicI64,
    pub most_connecting: AtomicI64,
    pub validations: AtomicU64,
    pub resets: AtomicU64,
    next_id: AtomicU64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            create: Mutex::new(Behavior::Ok),
            validate: Mutex::new(Behavior::Ok),
            reset: Mutex::new(Behavior::Ok),
            fatal: AtomicBool::new(false),
            restarting: AtomicBool::new(false),
            dirty_on_return: AtomicBool::new(false),
            capacity: AtomicI64::new(i64::MAX),
            alive: AtomicI64::new(0),
            connects: AtomicU64::new(0),
            connecting: AtomicI64::new(0),
            most_connecting: AtomicI64::new(0),
            validations: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Plan {
    pub fn set_all(&self, b: Behavior) {
        *self.create.lock() = b;
        *self.validate.lock() = b;
        *self.reset.lock() = b;
    }
    pub fn alive(&self) -> i64 {
        self.alive.load(SeqCst)
    }
}

pub struct Conn {
    pub serial: u64,
    pub broken: Arc<AtomicBool>,
    /// Dead without the driver knowing (a half-open socket): only a
    /// validation round trip finds out.
    pub dead: Arc<AtomicBool>,
    pub dirty: bool,
    /// Statement keys this connection "has prepared" (affinity tests).
    pub prepared: std::collections::HashSet<u64>,
    plan: Arc<Plan>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("serial", &self.serial)
            .finish()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.plan.alive.fetch_sub(1, SeqCst);
    }
}

#[derive(Clone, Default)]
pub struct TestManager {
    pub plan: Arc<Plan>,
}

impl TestManager {
    pub fn new() -> Self {
        Self::default()
    }
}

struct Decrement<'a>(&'a AtomicI64);
impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

async fn behave(b: Behavior, err: FakeError) -> Result<(), FakeError> {
    match b {
        Behavior::Ok => Ok(()),
        Behavior::Err => Err(err),
        Behavior::Slow(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Behavior::Never => std::future::pending().await,
    }
}

impl Manager for TestManager {
    type Connection = Conn;
    type Error = FakeError;

    async fn connect(&self) -> Result<Conn, FakeError> {
        self.plan.connects.fetch_add(1, SeqCst);
        if self.plan.fatal.load(SeqCst) {
            return Err(FakeError::Fatal);
        }
        if self.plan.restarting.load(SeqCst) {
            return Err(FakeError::Restarting);
        }
        if self.plan.alive.load(SeqCst) >= self.plan.capacity.load(SeqCst) {
            return Err(FakeError::TooMany);
        }
        let b = *self.plan.create.lock();
        let now = self.plan.connecting.fetch_add(1, SeqCst) + 1;
        self.plan.most_connecting.fetch_max(now, SeqCst);
        let _done = Decrement(&self.plan.connecting);
        behave(b, FakeError::Connect).await?;
        self.plan.alive.fetch_add(1, SeqCst);
        Ok(Conn {
            serial: self.plan.next_id.fetch_add(1, SeqCst),
            broken: Arc::new(AtomicBool::new(false)),
            dead: Arc::new(AtomicBool::new(false)),
            dirty: false,
            prepared: Default::default(),
            plan: self.plan.clone(),
        })
    }

    async fn validate(&self, conn: &mut Conn) -> Result<(), FakeError> {
        self.plan.validations.fetch_add(1, SeqCst);
        if conn.broken.load(SeqCst) || conn.dead.load(SeqCst) {
            return Err(FakeError::Validate);
        }
        let b = *self.plan.validate.lock();
        behave(b, FakeError::Validate).await
    }

    fn needs_reset(&self, conn: &Conn) -> bool {
        conn.dirty || self.plan.dirty_on_return.load(SeqCst)
    }

    async fn reset(&self, conn: &mut Conn) -> Result<(), FakeError> {
        self.plan.resets.fetch_add(1, SeqCst);
        let b = *self.plan.reset.lock();
        behave(b, FakeError::Reset).await?;
        conn.dirty = false;
        Ok(())
    }

    fn is_broken(&self, conn: &Conn) -> bool {
        conn.broken.load(SeqCst)
    }

    fn classify(&self, _e: &FakeError) -> FailureKind {
        FailureKind::Connect
    }

    fn is_retryable(&self, e: &FakeError) -> bool {
        !matches!(e, FakeError::Fatal)
    }

    fn is_restarting(&self, e: &FakeError) -> bool {
        matches!(e, FakeError::Restarting)
    }

    fn has_prepared(&self, conn: &Conn, statement: u64) -> bool {
        conn.prepared.contains(&statement)
    }

    fn is_at_capacity(&self, e: &FakeError) -> bool {
        matches!(e, FakeError::TooMany)
    }

    fn describe(&self) -> String {
        "test://fake".into()
    }
}

/// Checks the accounting invariant and that every connection the pool
/// counts exists (and no other).
pub fn assert_consistent(pool: &tidepool::Pool<TestManager>) {
    let s = pool.status();
    assert_eq!(s.size, s.idle + s.in_use + s.being_created, "{s:?}");
    assert!(s.size <= s.max_size, "{s:?}");
}

/// Lets spawned return-path tasks (resets) run.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
