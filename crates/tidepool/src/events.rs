//! Events for integrations: a listener registered on the builder sees each
//! checkout, checkin, creation, close, timeout and leak. Metrics export and
//! leak reports hang on this. Listeners run inline on the pool's paths, so
//! they must be quick and must not block; with none registered the cost is
//! one branch.

use std::panic::Location;
use std::time::Duration;

use crate::metrics::CloseReason;

/// Something that happened in a pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A connection was handed out after `waited`.
    Checkout {
        /// The connection's id.
        id: u64,
        /// Time from `get()` to the hand-out.
        waited: Duration,
    },
    /// A connection came back after being held for `held`.
    Checkin {
        /// The connection's id.
        id: u64,
        /// How long its user held it.
        held: Duration,
    },
    /// A connection was opened in `took`.
    Created {
        /// The new connection's id.
        id: u64,
        /// How long opening it took.
        took: Duration,
    },
    /// A connection attempt failed.
    CreateFailed {
        /// The error, as displayed by the driver.
        error: String,
    },
    /// A connection was closed.
    Closed {
        /// The connection's id.
        id: u64,
        /// Why.
        reason: CloseReason,
    },
    /// An acquire gave up at `acquire_timeout`.
    Timeout {
        /// How long it waited.
        waited: Duration,
    },
    /// The warm target, the concurrency limit or the bounds moved (see
    /// [`ScalingDecision`](crate::ScalingDecision)).
    Scaled(crate::ScalingDecision),
    /// A connection has been held past `leak_timeout`.
    Leak {
        /// The connection's id.
        id: u64,
        /// How long it has been held so far.
        held: Duration,
        /// Where it was checked out.
        location: &'static Location<'static>,
    },
}

/// A function called for every [`Event`].
pub type Listener = std::sync::Arc<dyn Fn(&Event) + Send + Sync>;
