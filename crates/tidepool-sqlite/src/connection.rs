//! One SQLite connection on its own OS thread. The async side sends
//! closures over a channel and awaits their results, so a slow or hung call
//! occupies only its own connection's thread — never the async runtime, and
//! never another connection. This module owns the thread's lifecycle and the
//! state the pool reads synchronously (autocommit, calls in flight, dead);
//! it must never run SQLite calls on the caller's thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

use crate::config::{BeginMode, SqliteConfig, Target};
use crate::error::SqliteError;

type Job = Box<dyn FnOnce(&mut rusqlite::Connection, &Shared) + Send>;

/// State shared between the handle and its worker thread.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Whether a transaction was open after the last finished call
    /// ([`IN_TRANSACTION`]) and how many calls are sent and not yet finished,
    /// including ones whose caller gave up (in units of [`ONE_CALL`]). One
    /// word, so that one load sees both as of the same moment: read as two,
    /// a call finishing between the reads looks like "no transaction, no
    /// call", and the pool would hand out a connection inside a transaction.
    calls: AtomicUsize,
    /// The worker thread has exited, or a call panicked on it.
    dead: AtomicBool,
    /// The handle is being dropped: skip any queued calls.
    closing: AtomicBool,
}

/// Sets `dead` when the worker thread exits, even by unwinding.
struct DeadOnExit(Arc<Shared>);

impl Drop for DeadOnExit {
    fn drop(&mut self) {
        self.0.dead.store(true, Ordering::SeqCst);
    }
}

/// The low bit of [`Shared::calls`]: SQLite was not in autocommit mode after
/// the last finished call.
const IN_TRANSACTION: usize = 1;
/// One call in flight, counted in [`Shared::calls`] above the low bit.
const ONE_CALL: usize = 2;

impl Shared {
    /// Records that a call finished with SQLite in or out of a transaction.
    fn finish_call(&self, in_transaction: bool) {
        let flag = if in_transaction { IN_TRANSACTION } else { 0 };
        // The closure never returns None, so the update always applies.
        let _ = self
            .calls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |calls| {
                Some(((calls & !IN_TRANSACTION) - ONE_CALL) | flag)
            });
    }
}

static CONNECTION_IDS: AtomicU64 = AtomicU64::new(1);

/// A SQLite connection living on a dedicated thread.
///
/// Use [`call`](Self::call) for native [`rusqlite`] access, or the uniform
/// [`tidepool::Queryable`] face (`execute_values`, `query_values`,
/// `query_one_values`, `begin`, `commit`, `rollback`). Dropping the handle
/// interrupts a running statement, skips queued calls and closes the
/// connection on its thread;
/// when no call is running it waits for that close, so a WAL database's
/// log is folded back into the main file by the time the last connection's
/// drop returns.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tidepool_sqlite::SqliteError> {
/// use tidepool_sqlite::{SqliteConfig, SqliteConnection};
///
/// let conn = SqliteConnection::open(&SqliteConfig::memory()).await?;
/// let answer: i64 = conn.call(|c| c.query_row("SELECT 6 * 7", [], |r| r.get(0))).await?;
/// assert_eq!(answer, 42);
/// # Ok(()) }
/// ```
pub struct SqliteConnection {
    /// `None` only inside `drop`, which disconnects the channel before it
    /// waits for the worker to close the connection.
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    interrupt: rusqlite::InterruptHandle,
    id: u64,
    pub(crate) begin_mode: BeginMode,
    /// The database is the in-memory one (see `crate::memdb`).
    pub(crate) in_memory: bool,
}

impl std::fmt::Debug for SqliteConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConnection")
            .field("id", &self.id)
            .field("in_transaction", &self.in_transaction_tracked())
            .field(
                "in_flight",
                &(self.shared.calls.load(Ordering::SeqCst) / ONE_CALL),
            )
            .field("dead", &self.is_dead())
            .finish()
    }
}

impl SqliteConnection {
    /// Opens a standalone connection (outside a pool). For an in-memory
    /// configuration this is a private database; managers share theirs.
    pub async fn open(config: &SqliteConfig) -> Result<Self, SqliteError> {
        let uri = match config.target() {
            Target::Memory => crate::config::unique_memory_uri(),
            Target::File(_) => String::new(),
        };
        Self::open_at(config, uri).await
    }

    /// Opens a connection; `memory_uri` names the shared in-memory database
    /// when the target is memory.
    pub(crate) async fn open_at(
        config: &SqliteConfig,
        memory_uri: String,
    ) -> Result<Self, SqliteError> {
        let shared = Arc::new(Shared {
            calls: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        });
        let id = CONNECTION_IDS.fetch_add(1, Ordering::Relaxed);
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let config_owned = config.clone();
        let thread_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name(format!("tidepool-sqlite-{id}"))
            .spawn(move || {
                let _dead_on_exit = DeadOnExit(Arc::clone(&thread_shared));
                let mut conn = match crate::open::open_blocking(&config_owned, &memory_uri) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::debug!(target: "tidepool::sqlite", error = %e, "opening a sqlite connection failed");
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if !conn.is_autocommit() {
                    thread_shared.calls.store(IN_TRANSACTION, Ordering::SeqCst);
                }
                if ready_tx.send(Ok(conn.get_interrupt_handle())).is_err() {
                    // The caller gave up (connect timeout): close at once.
                    return;
                }
                // Runs until the handle is gone (the channel disconnects), so
                // every interrupt the handle sends happens before the close
                // below. Once the handle is closing, or a call panicked,
                // queued calls are dropped unrun (their callers see
                // `WorkerGone`).
                while let Ok(job) = rx.recv() {
                    if thread_shared.closing.load(Ordering::SeqCst)
                        || thread_shared.dead.load(Ordering::SeqCst)
                    {
                        continue;
                    }
                    job(&mut conn, &thread_shared);
                }
                close_cleanly(conn);
            })
            .map_err(SqliteError::Spawn)?;
        let interrupt = ready_rx.await.map_err(|_| SqliteError::WorkerGone)??;
        Ok(SqliteConnection {
            jobs: Some(jobs),
            worker: Some(worker),
            shared,
            interrupt,
            id,
            begin_mode: config.get_begin_mode(),
            in_memory: matches!(config.target(), Target::Memory),
        })
    }

    /// Runs `f` with the native [`rusqlite::Connection`] on the connection's
    /// thread and returns its result.
    ///
    /// If this future is dropped after the call was sent, the call still
    /// runs to completion on the connection's thread (the connection counts
    /// as busy meanwhile, so the pool resets it before reuse). If `f`
    /// panics, the connection is marked broken and the panic resumes in the
    /// caller.
    pub async fn call<F, R, E>(&self, f: F) -> Result<R, SqliteError>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
        SqliteError: From<E>,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn, shared| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(conn)));
            if outcome.is_err() {
                tracing::warn!(target: "tidepool::sqlite", "a call panicked on a sqlite connection; the connection will be discarded");
                shared.dead.store(true, Ordering::SeqCst);
            }
            shared.finish_call(!conn.is_autocommit());
            let _ = reply_tx.send(outcome);
        });
        if self.is_dead() {
            return Err(SqliteError::WorkerGone);
        }
        self.shared.calls.fetch_add(ONE_CALL, Ordering::SeqCst);
        let sent = match &self.jobs {
            Some(jobs) => jobs.send(job).is_ok(),
            None => false,
        };
        if !sent {
            self.shared.calls.fetch_sub(ONE_CALL, Ordering::SeqCst);
            return Err(SqliteError::WorkerGone);
        }
        match reply_rx.await {
            Ok(Ok(result)) => result.map_err(SqliteError::from),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(SqliteError::WorkerGone),
        }
    }

    /// Interrupts the statement running on this connection, if any (it
    /// fails with `SQLITE_INTERRUPT`, classified as a timeout).
    pub fn interrupt(&self) {
        self.interrupt.interrupt();
    }

    /// A process-unique id for this connection (also in its thread's name).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the worker thread has stopped or a call panicked on it.
    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// Whether calls are queued or running whose callers may have given up.
    pub fn has_calls_in_flight(&self) -> bool {
        self.shared.calls.load(Ordering::SeqCst) >= ONE_CALL
    }

    /// Whether the connection may be inside a transaction: one was open
    /// after the last finished call, or a call still running may open one.
    /// Both facts come from one load, so a call finishing meanwhile cannot
    /// slip between them.
    pub(crate) fn may_be_in_transaction(&self) -> bool {
        self.shared.calls.load(Ordering::SeqCst) != 0
    }

    /// Whether the connection was inside a transaction after its last call
    /// (SQLite's `!is_autocommit()`).
    pub(crate) fn in_transaction_tracked(&self) -> bool {
        self.shared.calls.load(Ordering::SeqCst) & IN_TRANSACTION != 0
    }
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let busy = self.has_calls_in_flight();
        // Only a call that is queued or running is interrupted: SQLite keeps
        // the flag on an idle connection, and the checkpoint it runs when
        // the last connection to a WAL database closes would then give up,
        // leaving the committed rows in the `-wal` file. (A call finishing
        // between the check and the interrupt leaves the flag set too; the
        // worker clears it before closing, see `close_cleanly`.)
        if busy {
            self.interrupt.interrupt();
        }
        // Disconnects the channel: the worker finishes the call it is
        // running, skips the rest and closes the connection.
        drop(self.jobs.take());
        if let Some(worker) = self.worker.take() {
            // With no call in flight the worker is idle, so the close is
            // quick (a checkpoint at most, as when a plain rusqlite
            // connection drops): wait, so that whoever closes the last
            // connection finds the database a single file afterwards. A
            // call in flight may be user code that never returns; never
            // wait for that.
            if !busy && worker.join().is_err() {
                tracing::warn!(target: "tidepool::sqlite", "a sqlite connection's thread panicked while closing");
            }
        }
    }
}

/// Closes `conn` on its own thread. SQLite rolls back an open transaction,
/// and the last connection to a WAL database checkpoints the log into the
/// main file and deletes the `-wal` and `-shm` files — unless an interrupt
/// flag is still set from a `sqlite3_interrupt` that reached no running
/// statement, in which case that checkpoint fails with `SQLITE_INTERRUPT`.
/// Preparing a statement while none is running clears the flag.
fn close_cleanly(conn: rusqlite::Connection) {
    drop(conn.prepare("SELECT 1"));
    if let Err((_, e)) = conn.close() {
        tracing::warn!(target: "tidepool::sqlite", error = %e, "closing a sqlite connection failed");
    }
}
