//! Opening connections for callers. Each attempt runs in a task of its
//! own, holding the room it was granted, while the caller waits in the
//! queue like any other: the connection, once open, goes to the oldest
//! waiter (or to the idle queue). So an attempt outlives a caller that
//! gives up — a database that comes back serves whoever waits by then —
//! and at most `max_size - size` attempts are ever in flight: a database
//! that has gone silent sees a handful of attempts, not one per request.
//! The caller that asked learns of a failure from the task at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::acquire::CreateFailure;
use crate::error::Error;
use crate::manager::Manager;
use crate::metrics::CloseReason;
use crate::shared::{Creating, Shared};
use crate::waiters::{Grant, Outcome, Wait};

/// Why a task gave up. The room travels with the failure, so the caller
/// can leave the queue before the room goes to the next waiter (it would
/// otherwise be handed straight back to the caller, who would try again).
pub(crate) struct Failed<M: Manager> {
    /// The manager's error; `None` when attempts timed out or the task
    /// stopped because its caller's deadline passed.
    error: Option<M::Error>,
    room: Creating<M>,
    /// The server refused for lack of room: not a failure, the caller
    /// waits in the queue for the connections that exist.
    at_capacity: bool,
}

/// An attempt's task, and whether its connect has just failed with an
/// error: set before the breaker hears of it, so that when the circuit
/// opens, the caller that started the attempt can tell its own failure
/// (whose typed error it should get) from someone else's.
struct Attempt<M: Manager> {
    task: JoinHandle<Result<(), Failed<M>>>,
    failed: Arc<AtomicBool>,
}

impl<M: Manager> Shared<M> {
    /// Opens a connection with the room a checkout was granted, and waits
    /// in the queue for the first connection to come free. Returns a
    /// connection grant, or the error that stopped the attempt.
    pub(crate) async fn create_and_wait(
        self: &Arc<Self>,
        started: Instant,
        deadline: Instant,
    ) -> Result<Grant<M::Connection>, Error<M::Error>> {
        let Some(slot) = self.enqueue(deadline) else {
            self.creation_abandoned();
            return Err(Error::Closed);
        };
        self.recorder
            .counters
            .waited
            .fetch_add(1, Ordering::Relaxed);
        let mut wait = Wait {
            shared: self,
            slot,
            done: false,
        };
        let mut attempt: Option<Attempt<M>> = Some(self.spawn_attempt(deadline));
        let hold = self.config.breaker.hold_while_open;
        loop {
            let changed = self.breaker.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // The circuit opened while this caller waited for a connection
            // to open: fail fast like any other caller (unless holding) —
            // but if this caller's own attempt failed and opened it, take
            // that attempt's error, which the task is about to return.
            let own_failure = attempt
                .as_ref()
                .is_some_and(|a| a.failed.load(Ordering::Acquire));
            if !hold && !own_failure {
                if let Some(open) = self.breaker.open_circuit() {
                    drop(wait);
                    return Err(open.into_error());
                }
            }
            let event = tokio::select! {
                // A failure first: its room must not come back to us.
                biased;
                joined = async {
                    match attempt.as_mut() {
                        Some(a) => (&mut a.task).await,
                        None => std::future::pending().await,
                    }
                }, if attempt.is_some() => Some(Err(joined)),
                outcome = &mut wait => Some(Ok(outcome)),
                _ = changed => None,
            };
            let Some(event) = event else { continue };
            match event {
                Err(joined) => {
                    attempt = None;
                    match joined {
                        Ok(Ok(())) => {}
                        Ok(Err(failed)) if failed.at_capacity => {
                            // The server is full: wait in the queue for a
                            // connection to come back (the sweeper ends the
                            // wait at the deadline).
                            drop(failed.room);
                        }
                        Ok(Err(failed)) => {
                            let curable = failed
                                .error
                                .as_ref()
                                .is_some_and(|e| self.manager.is_retryable(e));
                            if curable
                                && self.breaker.state() == crate::BreakerState::Degraded
                                && Instant::now() < deadline
                            {
                                // Degraded, not down: ride the blip out in the
                                // queue. The room goes to the oldest waiter,
                                // whose attempt passes the one-at-a-time gate.
                                drop(failed.room);
                                continue;
                            }
                            drop(wait);
                            drop(failed.room);
                            return Err(match failed.error {
                                Some(error) => Error::Create(error),
                                None => self.timed_out(started),
                            });
                        }
                        // The task panicked (a manager bug) or the runtime
                        // is shutting down: its room was given back.
                        Err(_) => {}
                    }
                }
                Ok(outcome) => match outcome {
                    Outcome::Granted(Grant::Create) => {
                        // More room came free: open another connection for
                        // the queue, without waiting on its outcome.
                        let extra = self.spawn_attempt(deadline);
                        if attempt.is_none() {
                            attempt = Some(extra);
                        }
                        wait = Wait {
                            shared: self,
                            slot: match self.enqueue(deadline) {
                                Some(slot) => slot,
                                None => return Err(Error::Closed),
                            },
                            done: false,
                        };
                    }
                    Outcome::Granted(grant) => return Ok(grant),
                    Outcome::TimedOut => return Err(self.timed_out(started)),
                    Outcome::Closed => return Err(Error::Closed),
                },
            }
        }
    }

    fn spawn_attempt(self: &Arc<Self>, deadline: Instant) -> Attempt<M> {
        let room = Creating::new(self.clone());
        let failed = Arc::new(AtomicBool::new(false));
        Attempt {
            task: self.spawn(room.open(deadline, failed.clone())),
            failed,
        }
    }

    /// Passes the one-at-a-time gate while the breaker is not healthy.
    pub(crate) async fn pass_gate(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.breaker.throttling() {
            self.connect_gate.clone().acquire_owned().await.ok()
        } else {
            None
        }
    }
}

impl<M: Manager> Creating<M> {
    /// The task: attempts with retries and backoff while the breaker is
    /// healthy, each attempt given the full `connect_timeout`; no new
    /// attempt once `deadline` has passed and nobody waits.
    async fn open(self, deadline: Instant, failed: Arc<AtomicBool>) -> Result<(), Failed<M>> {
        let shared = self.shared.clone();
        let mut attempt = 0u32;
        loop {
            // While the circuit is open only the breaker's probes touch the
            // database: an attempt opened for the queue waits for the
            // circuit to change, or gives up at its caller's deadline.
            while shared.breaker.state() == crate::BreakerState::Failed {
                let changed = shared.breaker.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if shared.breaker.state() != crate::BreakerState::Failed {
                    break;
                }
                if Instant::now() >= deadline || shared.is_closed() {
                    return Err(Failed {
                        error: None,
                        room: self,
                        at_capacity: false,
                    });
                }
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                }
            }
            let gate = shared.pass_gate().await;
            // The circuit may have opened while this attempt queued at the
            // gate (behind others that failed): check again, or a queue of
            // attempts would drain into a dead database one by one.
            if shared.breaker.state() == crate::BreakerState::Failed {
                drop(gate);
                continue;
            }
            if shared.is_closed() || (Instant::now() >= deadline && !shared.has_waiters()) {
                return Err(Failed {
                    error: None,
                    room: self,
                    at_capacity: false,
                });
            }
            let failure = match shared
                .connect_once(shared.tuned.connect_timeout(), gate, Some(&failed))
                .await
            {
                Ok(conn) => {
                    let meta = self.finish(Instant::now());
                    if shared.is_closed() {
                        shared.discard_in_use(conn, &meta, CloseReason::PoolClosed);
                    } else {
                        shared.release_new(conn, meta);
                    }
                    return Ok(());
                }
                Err(CreateFailure::AtCapacity {
                    open,
                    others_opening,
                }) => {
                    // Connections open, or others still opening (which may
                    // yet succeed): callers queue for those.
                    if open > 0 || others_opening > 0 || shared.is_closed() {
                        // Callers queue for the connections that exist;
                        // the room is given up (under the ceiling it goes
                        // to nobody).
                        return Err(Failed {
                            error: None,
                            room: self,
                            at_capacity: true,
                        });
                    }
                    // Nothing is open, so nothing will come back: keep the
                    // room and try again at the ceiling's pace while
                    // anyone waits. Not a failure, not a retry.
                    let next = shared.state.lock().ceiling.next_try();
                    if Instant::now() >= deadline && !shared.has_waiters() {
                        return Err(Failed {
                            error: None,
                            room: self,
                            at_capacity: true,
                        });
                    }
                    if let Some(next) = next {
                        tokio::time::sleep_until(next).await;
                    }
                    continue;
                }
                Err(failure) => failure,
            };
            attempt += 1;
            // Retries ride out a blip; once the breaker sees trouble, its
            // probes decide when the database is tried again.
            let retries_left = attempt <= shared.config.max_retries && shared.breaker.is_healthy();
            let error = match failure {
                CreateFailure::Error {
                    error,
                    retryable: false,
                } => {
                    return Err(Failed {
                        error: Some(error),
                        room: self,
                        at_capacity: false,
                    })
                }
                CreateFailure::Error { error, .. } => Some(error),
                CreateFailure::TimedOut(_) | CreateFailure::AtCapacity { .. } => None,
            };
            let delay = crate::backoff::delay(
                shared.config.retry_delay,
                shared.config.max_retry_delay,
                attempt,
            );
            if !retries_left {
                return Err(Failed {
                    error,
                    room: self,
                    at_capacity: false,
                });
            }
            // Trying again later: this failure is no longer the news.
            failed.store(false, Ordering::Release);
            if Instant::now() + delay >= deadline {
                // No time for another attempt: keep the room until the
                // deadline, so the caller times out with the cause instead
                // of the room coming back for an early retry.
                tokio::time::sleep_until(deadline).await;
                return Err(Failed {
                    error: None,
                    room: self,
                    at_capacity: false,
                });
            }
            tokio::time::sleep(delay).await;
        }
    }
}
