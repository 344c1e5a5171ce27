//! Statement-cache affinity: a checkout that says which statement it will
//! run prefers an idle connection that has already prepared it, so a pool
//! of connections with bounded statement caches behaves like one large
//! cache instead of each connection preparing everything. Like Vitess's
//! per-setting stacks, affinity is a preference on the idle side only: it
//! picks among idle connections when a caller takes one directly (nobody
//! waiting), it never makes anyone wait longer, and waiters are served in
//! arrival order whatever they asked for. The search looks at the
//! `AFFINITY_SCAN` most recently returned idle connections; the manager
//! answers from its own cache ([`Manager::has_prepared`]) without blocking.

use std::sync::atomic::Ordering::Relaxed;

use crate::manager::Manager;
use crate::shared::{Idle, Shared, State};

/// How many idle connections a preferring checkout looks at.
const AFFINITY_SCAN: usize = 8;

/// The key a statement is known by, for [`Pool::get_for`](crate::Pool::get_for)
/// and [`Manager::has_prepared`]: a 64-bit FNV-1a hash of the exact SQL
/// text (prepared-statement caches are keyed by exact text). Stable across
/// processes and versions.
///
/// ```
/// let a = tidepool::statement_key("SELECT * FROM t WHERE id = $1");
/// assert_eq!(a, tidepool::statement_key("SELECT * FROM t WHERE id = $1"));
/// assert_ne!(a, tidepool::statement_key("SELECT * FROM t WHERE id = $2"));
/// ```
pub fn statement_key(sql: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    sql.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

impl<M: Manager> Shared<M> {
    /// Takes an idle connection, preferring one that has prepared
    /// `statement`; counts the hit or miss.
    pub(crate) fn pop_idle_for(
        &self,
        state: &mut State<M::Connection>,
        statement: u64,
    ) -> Option<Idle<M::Connection>> {
        let len = state.idle.len();
        let found = state
            .idle
            .iter()
            .rev()
            .take(AFFINITY_SCAN)
            .position(|i| self.manager.has_prepared(&i.conn, statement));
        let counters = &self.recorder.counters;
        match found {
            Some(from_back) => {
                counters.affinity_hits.fetch_add(1, Relaxed);
                state.idle.remove(len - 1 - from_back)
            }
            None => {
                if len > 0 {
                    counters.affinity_misses.fetch_add(1, Relaxed);
                }
                self.pop_idle(state)
            }
        }
    }
}
