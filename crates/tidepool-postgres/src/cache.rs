//! The per-connection prepared-statement cache: a bounded LRU from SQL text
//! to the server-side statement, what it does to the transaction state and
//! the session state it touches (worked out once, when it is cached, so a
//! cache hit never reads the text again). Evicting a statement drops it, and
//! tokio-postgres then closes it on the server, so the server's memory stays
//! bounded too. Capacity 0 turns caching off (each statement is prepared,
//! used once and closed).

use std::collections::HashMap;
use std::num::NonZeroUsize;

use lru::LruCache;
use tidepool_sql::SessionState;
use tokio_postgres::Statement;

use crate::txstate::{statement_effect, Effect};

/// A bounded LRU of prepared statements.
pub(crate) struct StatementCache {
    inner: Option<LruCache<String, (Statement, Effect, SessionState)>>,
    /// How many cached statements have each `tidepool::statement_key`, so
    /// the pool can ask "has this connection prepared it?" without text.
    keys: HashMap<u64, u32>,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StatementCache {
            inner: NonZeroUsize::new(capacity).map(LruCache::new),
            keys: HashMap::new(),
        }
    }

    /// The statement cached for `sql`, its effect and its session state.
    pub(crate) fn get(&mut self, sql: &str) -> Option<(Statement, Effect, SessionState)> {
        self.inner.as_mut()?.get(sql).cloned()
    }

    pub(crate) fn insert(&mut self, sql: &str, statement: Statement, session: SessionState) {
        let Some(cache) = self.inner.as_mut() else {
            return;
        };
        let pushed = cache.push(sql.to_string(), (statement, statement_effect(sql), session));
        match pushed {
            // Replaced the same text: the key count is unchanged.
            Some((old, _)) if old == sql => {}
            evicted => {
                *self.keys.entry(tidepool::statement_key(sql)).or_default() += 1;
                if let Some((old, _)) = evicted {
                    self.forget(&old);
                }
            }
        }
    }

    fn forget(&mut self, sql: &str) {
        let key = tidepool::statement_key(sql);
        if let Some(n) = self.keys.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.keys.remove(&key);
            }
        }
    }

    pub(crate) fn remove(&mut self, sql: &str) {
        if let Some(cache) = self.inner.as_mut() {
            if cache.pop(sql).is_some() {
                self.forget(sql);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        if let Some(cache) = self.inner.as_mut() {
            cache.clear();
        }
        self.keys.clear();
    }

    /// Whether a statement with this `tidepool::statement_key` is cached.
    pub(crate) fn has_key(&self, key: u64) -> bool {
        self.keys.contains_key(&key)
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, LruCache::len)
    }

    pub(crate) fn contains(&self, sql: &str) -> bool {
        self.inner.as_ref().is_some_and(|c| c.contains(sql))
    }
}
