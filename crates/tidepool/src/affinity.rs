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
//! When none has the statement, rendezvous hashing picks which of them
//! prepares it, so each statement has a home connection and the caches
//! partition the working set instead of all holding the same hot
//! statements — unless the pool holds connections above its warm target,
//! which are left alone to idle out.

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

/// The rank of connection `id` for `statement` (highest wins): a
/// splitmix64 finaliser over both, so every statement orders the
/// connections differently and evenly.
fn rendezvous(id: u64, statement: u64) -> u64 {
    let mut z = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ statement;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
            None if len > 1 && state.size() <= state.warm_target => {
                counters.affinity_misses.fetch_add(1, Relaxed);
                // Nobody has it: prepare it where it will be looked for
                // next time. Rendezvous hashing picks, among the same
                // connections the search looked at, the one that ranks
                // highest for this statement, so each statement settles
                // on a connection of its own and the pool's caches hold
                // different statements rather than all the same hot ones.
                // Only while every connection is one the pool means to
                // keep: surplus ones (above the warm target) must be left
                // at the cold end of the idle list to time out, so then a
                // miss takes the usual most recently returned one.
                let home = state
                    .idle
                    .iter()
                    .rev()
                    .take(AFFINITY_SCAN)
                    .enumerate()
                    .max_by_key(|(_, i)| rendezvous(i.meta.id, statement))
                    .map(|(from_back, _)| from_back)?;
                state.idle.remove(len - 1 - home)
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
