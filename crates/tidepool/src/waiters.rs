//! The wait list: callers that found no idle connection and no room to
//! open one queue here, first come first served, and a returned connection
//! (or the room left by a closed one) is handed straight to the oldest.
//!
//! # Implementation details
//!
//! Each waiter owns a [`Slot`]; the pool's state lock guards the queue and
//! every hand-off, and the slot's own small lock guards what was handed
//! over. Lock order is always state, then slot. A waiter that gives up
//! (cancelled future) marks its slot and leaves it in the queue as a
//! tombstone that hand-offs skip; if something was handed to it in the
//! meantime it gives that back under the state lock, so nothing is lost.
//!
//! Deadlines: every waiter of a pool has the same `acquire_timeout` and the
//! queue is FIFO, so the oldest waiter always has the earliest deadline.
//! One sweeper task per pool sleeps until the head's deadline and times out
//! whoever is past it. Waiters arm no timer of their own — a per-waiter
//! timer was most of the cost of a contended checkout — and the sweeper
//! re-arms at most once per `acquire_timeout` while waiters are served in
//! time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use crate::sync::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::manager::Manager;
use crate::shared::{Idle, Shared, State};

/// What a waiter can be handed.
pub(crate) enum Grant<C> {
    /// An idle connection, already counted in use.
    Conn(Idle<C>),
    /// Room to open a connection, already counted as being created.
    Create,
}

pub(crate) enum Outcome<C> {
    Granted(Grant<C>),
    TimedOut,
    Closed,
}

enum SlotState<C> {
    Waiting(Option<Waker>),
    Done(Outcome<C>),
    Taken,
    Cancelled,
}

pub(crate) struct Slot<C> {
    deadline: Instant,
    inner: Mutex<SlotState<C>>,
}

impl<C> Slot<C> {
    pub(crate) fn new(deadline: Instant) -> Arc<Self> {
        Arc::new(Slot {
            deadline,
            inner: Mutex::new(SlotState::Waiting(None)),
        })
    }

    /// Whether the slot still waits (not cancelled, not served).
    fn is_waiting(&self) -> bool {
        matches!(*self.inner.lock(), SlotState::Waiting(_))
    }

    /// Completes a waiting slot; returns its waker, or gives the outcome
    /// back if the slot no longer waits.
    fn complete(&self, outcome: Outcome<C>) -> Result<Option<Waker>, Outcome<C>> {
        let mut inner = self.inner.lock();
        match std::mem::replace(&mut *inner, SlotState::Taken) {
            SlotState::Waiting(waker) => {
                *inner = SlotState::Done(outcome);
                Ok(waker)
            }
            other => {
                *inner = other;
                Err(outcome)
            }
        }
    }
}

/// Wakers collected under the state lock, woken after it is released.
#[derive(Default)]
pub(crate) struct Wakeups(Vec<Waker>);

impl Wakeups {
    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        if let Some(w) = waker {
            self.0.push(w);
        }
    }
    pub(crate) fn wake(self) {
        for w in self.0 {
            w.wake();
        }
    }
}

impl<C> State<C> {
    /// Hands `grant` to the oldest live waiter. Returns the grant back if
    /// nobody waits.
    pub(crate) fn hand_to_waiter(
        &mut self,
        mut grant: Grant<C>,
        wakeups: &mut Wakeups,
    ) -> Option<Grant<C>> {
        while let Some(slot) = self.waiters.pop_front() {
            match slot.complete(Outcome::Granted(grant)) {
                Ok(waker) => {
                    self.waiting -= 1;
                    wakeups.push(waker);
                    return None;
                }
                Err(Outcome::Granted(back)) => grant = back,
                Err(_) => unreachable!("complete gives back what it was given"),
            }
        }
        Some(grant)
    }

    /// Room for one more connection was freed: give it to the oldest
    /// waiter as the right to create one.
    pub(crate) fn room_freed(&mut self, wakeups: &mut Wakeups) {
        // Under a server's connection ceiling, or at the concurrency limit,
        // a close frees no room.
        if self.has_waiters() && self.may_open() {
            self.creating += 1;
            if self.hand_to_waiter(Grant::Create, wakeups).is_some() {
                self.creating -= 1;
            }
        }
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting > 0
    }

    /// Serves waiters while connections out are under the limit (after the
    /// limit or `max_size` went up): idle connections first, then room to
    /// open new ones. Oldest waiter first, as always.
    pub(crate) fn serve_within_limit(&mut self, wakeups: &mut Wakeups) {
        while self.has_waiters() && self.in_use < self.limit {
            if let Some(idle) = self.idle.pop_back() {
                self.in_use += 1;
                if let Some(Grant::Conn(back)) = self.hand_to_waiter(Grant::Conn(idle), wakeups) {
                    self.in_use -= 1;
                    self.idle.push_back(back);
                    break;
                }
            } else if self.may_open() {
                self.creating += 1;
                if self.hand_to_waiter(Grant::Create, wakeups).is_some() {
                    self.creating -= 1;
                    break;
                }
            } else {
                break;
            }
        }
    }

    /// Drops tombstones and served slots from the front of the queue.
    fn trim(&mut self) {
        while self.waiters.front().is_some_and(|s| !s.is_waiting()) {
            self.waiters.pop_front();
        }
    }
}

/// A queued acquire. Resolves to what it was handed; dropping it early
/// gives back anything handed to it.
pub(crate) struct Wait<'a, M: Manager> {
    pub(crate) shared: &'a Shared<M>,
    pub(crate) slot: Arc<Slot<M::Connection>>,
    pub(crate) done: bool,
}

impl<M: Manager> Future for Wait<'_, M> {
    type Output = Outcome<M::Connection>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.slot.inner.lock();
        match &mut *inner {
            SlotState::Waiting(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            SlotState::Done(_) => {
                let SlotState::Done(outcome) = std::mem::replace(&mut *inner, SlotState::Taken)
                else {
                    unreachable!("matched Done above")
                };
                drop(inner);
                self.done = true;
                Poll::Ready(outcome)
            }
            SlotState::Taken | SlotState::Cancelled => {
                unreachable!("a wait is polled only until it completes")
            }
        }
    }
}

impl<M: Manager> Drop for Wait<'_, M> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut wakeups = Wakeups::default();
        {
            let mut state = self.shared.state.lock();
            let previous = std::mem::replace(&mut *self.slot.inner.lock(), SlotState::Cancelled);
            match previous {
                SlotState::Waiting(_) => state.waiting -= 1,
                SlotState::Done(Outcome::Granted(Grant::Conn(idle))) => {
                    self.shared
                        .release_locked(&mut state, idle, false, &mut wakeups);
                }
                SlotState::Done(Outcome::Granted(Grant::Create)) => {
                    state.creating -= 1;
                    state.room_freed(&mut wakeups);
                }
                SlotState::Done(_) | SlotState::Taken | SlotState::Cancelled => {}
            }
        }
        wakeups.wake();
    }
}

/// The per-pool deadline sweeper. Holds only a weak reference; the pool
/// wakes it through `arrivals` when a waiter joins an empty queue and when
/// it shuts down.
pub(crate) fn spawn_sweeper<M: Manager>(shared: &Arc<Shared<M>>) {
    let Some(token) = shared.sweeper_alive.claim() else {
        return;
    };
    let weak: Weak<Shared<M>> = Arc::downgrade(shared);
    let arrivals: Arc<Notify> = shared.arrivals.clone();
    drop(shared.spawn(async move {
        let _token = token;
        loop {
            let next = {
                let Some(shared) = weak.upgrade() else { break };
                if shared.is_closed() {
                    break;
                }
                shared.expire_waiters()
            };
            match next {
                Some(deadline) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = arrivals.notified() => {}
                    }
                }
                None => arrivals.notified().await,
            }
        }
    }));
}

impl<M: Manager> Shared<M> {
    /// Times out every waiter past its deadline; returns the next deadline.
    fn expire_waiters(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut wakeups = Wakeups::default();
        let next = {
            let mut state = self.state.lock();
            loop {
                state.trim();
                let Some(head) = state.waiters.front() else {
                    break None;
                };
                if head.deadline > now {
                    break Some(head.deadline);
                }
                if let Some(slot) = state.waiters.pop_front() {
                    if let Ok(waker) = slot.complete(Outcome::TimedOut) {
                        state.waiting -= 1;
                        wakeups.push(waker);
                    }
                }
            }
        };
        wakeups.wake();
        next
    }

    /// Ends every wait with `Closed`.
    pub(crate) fn close_waiters(&self) {
        let mut wakeups = Wakeups::default();
        {
            let mut state = self.state.lock();
            while let Some(slot) = state.waiters.pop_front() {
                if let Ok(waker) = slot.complete(Outcome::Closed) {
                    state.waiting -= 1;
                    wakeups.push(waker);
                }
            }
        }
        wakeups.wake();
        self.arrivals.notify_one();
    }
}

/// Model checks of the hand-off protocol under loom, which runs each test
/// body under every interleaving of its threads' lock operations:
/// `RUSTFLAGS="--cfg loom" cargo test -p tidepool --lib loom_model --release`.
#[cfg(all(test, loom))]
mod loom_model {
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::metrics::CloseReason;
    use crate::shared::Checkout;

    struct Numbers;

    impl Manager for Numbers {
        type Connection = u32;
        type Error = std::io::Error;
        async fn connect(&self) -> Result<u32, std::io::Error> {
            Ok(0)
        }
        async fn validate(&self, _: &mut u32) -> Result<(), std::io::Error> {
            Ok(())
        }
    }

    /// A pool of one connection, which is checked out.
    fn pool_with_its_connection_out() -> (Arc<Shared<Numbers>>, Idle<u32>) {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let runtime = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime for the handle")
        });
        let mut config = Config::default();
        config.max_size = 1;
        let shared = Arc::new(Shared::new(
            Numbers,
            config,
            Vec::new(),
            runtime.handle().clone(),
        ));
        assert!(matches!(
            shared.checkout(deadline(), None),
            Checkout::Now(Grant::Create)
        ));
        let meta = shared.created(Instant::now(), 0);
        (
            shared,
            Idle {
                conn: Box::new(7),
                meta,
                fresh: false,
            },
        )
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    fn queue(shared: &Arc<Shared<Numbers>>) -> Arc<Slot<u32>> {
        match shared.checkout(deadline(), None) {
            Checkout::Wait(slot) => slot,
            _ => panic!("a full pool must queue the caller"),
        }
    }

    #[test]
    fn a_connection_returned_while_its_waiter_gives_up_is_never_lost() {
        loom::model(|| {
            let (shared, held) = pool_with_its_connection_out();
            let slot = queue(&shared);
            let returner = {
                let shared = shared.clone();
                loom::thread::spawn(move || shared.release(held.conn, held.meta, false))
            };
            drop(Wait {
                shared: &*shared,
                slot,
                done: false,
            });
            returner.join().expect("returner");
            let state = shared.state.lock();
            assert_eq!(
                (
                    state.idle.len(),
                    state.in_use,
                    state.creating,
                    state.waiting
                ),
                (1, 0, 0, 0)
            );
        });
    }

    #[test]
    fn a_returned_connection_reaches_the_waiter() {
        loom::model(|| {
            let (shared, held) = pool_with_its_connection_out();
            let slot = queue(&shared);
            let returner = {
                let shared = shared.clone();
                loom::thread::spawn(move || shared.release(held.conn, held.meta, false))
            };
            let outcome = loom::future::block_on(Wait {
                shared: &*shared,
                slot,
                done: false,
            });
            returner.join().expect("returner");
            assert!(matches!(outcome, Outcome::Granted(Grant::Conn(_))));
            let state = shared.state.lock();
            assert_eq!((state.idle.len(), state.in_use, state.waiting), (0, 1, 0));
        });
    }

    #[test]
    fn room_freed_while_its_waiter_gives_up_goes_back_to_the_pool() {
        loom::model(|| {
            let (shared, held) = pool_with_its_connection_out();
            let slot = queue(&shared);
            let closer = {
                let shared = shared.clone();
                loom::thread::spawn(move || {
                    shared.discard_in_use(held.conn, &held.meta, CloseReason::Broken)
                })
            };
            drop(Wait {
                shared: &*shared,
                slot,
                done: false,
            });
            closer.join().expect("closer");
            let state = shared.state.lock();
            assert_eq!((state.size(), state.creating, state.waiting), (0, 0, 0));
        });
    }
}
