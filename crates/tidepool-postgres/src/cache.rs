//! The per-connection prepared-statement cache: a bounded LRU from SQL text
//! to the server-side statement and what it does to the transaction state
//! (worked out once, when it is cached). Evicting a statement drops it, and
//! tokio-postgres then closes it on the server, so the server's memory stays
//! bounded too. Capacity 0 turns caching off (each statement is prepared,
//! used once and closed).

use std::num::NonZeroUsize;

use lru::LruCache;
use tokio_postgres::Statement;

use crate::txstate::{statement_effect, Effect};

/// A bounded LRU of prepared statements.
pub(crate) struct StatementCache {
    inner: Option<LruCache<String, (Statement, Effect)>>,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StatementCache {
            inner: NonZeroUsize::new(capacity).map(LruCache::new),
        }
    }

    /// The statement cached for `sql`, and its effect.
    pub(crate) fn get(&mut self, sql: &str) -> Option<(Statement, Effect)> {
        self.inner.as_mut()?.get(sql).cloned()
    }

    pub(crate) fn insert(&mut self, sql: &str, statement: Statement) {
        if let Some(cache) = self.inner.as_mut() {
            cache.put(sql.to_string(), (statement, statement_effect(sql)));
        }
    }

    pub(crate) fn remove(&mut self, sql: &str) {
        if let Some(cache) = self.inner.as_mut() {
            cache.pop(sql);
        }
    }

    pub(crate) fn clear(&mut self) {
        if let Some(cache) = self.inner.as_mut() {
            cache.clear();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, LruCache::len)
    }

    pub(crate) fn contains(&self, sql: &str) -> bool {
        self.inner.as_ref().is_some_and(|c| c.contains(sql))
    }
}
