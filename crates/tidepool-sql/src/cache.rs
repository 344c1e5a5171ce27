//! A bounded cache from SQL text to its analysis, for the hot path: an
//! application sends the same few hundred texts over and over, so after
//! the first time a lookup is a hash of the text, one short lock and a
//! comparison — no tokenizing, no allocation.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tidepool::QueryShape;

use crate::{analyze, Analysis, Dialect};

const SHARDS: usize = 16;
/// Texts longer than this are analyzed every time, never cached: a bound
/// on the cache's memory (they are rare, and their own cost dwarfs a
/// tokenizer pass).
const MAX_CACHED_LEN: usize = 4096;

struct Entry {
    sql: Box<str>,
    analysis: Arc<Analysis>,
    shape: QueryShape,
}

type Shard = HashMap<u64, Entry, foldhash::fast::FixedState>;

/// Analyzes SQL text in one dialect, remembering the last texts it saw.
///
/// At most `capacity` texts of at most 4 KiB each are kept (default 1,024);
/// when full, an arbitrary entry makes room. `Send + Sync`: share one per
/// pool.
///
/// ```
/// use tidepool_sql::{Analyzer, Dialect};
/// let analyzer = Analyzer::new(Dialect::Postgres);
/// let a = analyzer.analyze("SELECT name FROM users WHERE id = $1");
/// let b = analyzer.analyze("SELECT name FROM users WHERE id = $1");
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// assert_eq!(analyzer.shape("SELECT 1").id(), analyzer.shape("SELECT 2").id());
/// ```
pub struct Analyzer {
    dialect: Dialect,
    per_shard: usize,
    hasher: foldhash::fast::FixedState,
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("dialect", &self.dialect)
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Analyzer {
    /// An analyzer for `dialect` caching up to 1,024 texts.
    pub fn new(dialect: Dialect) -> Self {
        Self::with_capacity(dialect, 1024)
    }

    /// An analyzer caching up to `capacity` texts (rounded up to a
    /// multiple of 16; 0 caches nothing).
    pub fn with_capacity(dialect: Dialect, capacity: usize) -> Self {
        Analyzer {
            dialect,
            per_shard: capacity.div_ceil(SHARDS),
            hasher: foldhash::fast::FixedState::with_seed(0x7469_6465_706f_6f6c),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// The dialect it reads.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn lookup<T>(&self, sql: &str, pick: impl Fn(&Entry) -> T) -> T {
        let key = self.hasher.hash_one(sql);
        let shard = &self.shards[(key as usize) % SHARDS];
        if let Some(e) = shard.lock().get(&key).filter(|e| &*e.sql == sql) {
            return pick(e);
        }
        let analysis = Arc::new(analyze(sql, self.dialect));
        let entry = Entry {
            sql: sql.into(),
            shape: QueryShape::new(
                analysis.fingerprint.id,
                analysis.fingerprint.normalized.as_str(),
                analysis.kind,
            ),
            analysis,
        };
        let out = pick(&entry);
        if self.per_shard > 0 && sql.len() <= MAX_CACHED_LEN {
            let mut map = shard.lock();
            if map.len() >= self.per_shard && !map.contains_key(&key) {
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
            map.insert(key, entry);
        }
        out
    }

    /// The analysis of `sql`, from the cache when it was seen before.
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        self.lookup(sql, |e| e.analysis.clone())
    }

    /// The session state `sql` changes (see [`SessionState`](crate::SessionState)),
    /// from the cache when it was seen before: what a driver's dirty bits
    /// call on every statement it sends outside its statement cache.
    ///
    /// ```
    /// use tidepool_sql::{Analyzer, Dialect, SessionState};
    /// let analyzer = Analyzer::new(Dialect::Postgres);
    /// assert_eq!(analyzer.session("LISTEN jobs"), SessionState::LISTEN);
    /// assert!(analyzer.session("SELECT 1").is_empty());
    /// ```
    pub fn session(&self, sql: &str) -> crate::SessionState {
        self.lookup(sql, |e| e.analysis.session)
    }

    /// The shape of `sql` as the pool's statistics take it (id, normalized
    /// text, kind); no allocation when `sql` was seen before. What the
    /// drivers' [`Manager::query_shape`](tidepool::Manager::query_shape)
    /// returns.
    pub fn shape(&self, sql: &str) -> QueryShape {
        self.lookup(sql, |e| e.shape.clone())
    }

    /// A process-wide analyzer for `dialect` (1,024 texts), for drivers
    /// and code that have nowhere better to keep one: the texts an
    /// application sends are the same whichever pool sends them.
    pub fn global(dialect: Dialect) -> &'static Analyzer {
        static POSTGRES: OnceLock<Analyzer> = OnceLock::new();
        static MYSQL: OnceLock<Analyzer> = OnceLock::new();
        static SQLITE: OnceLock<Analyzer> = OnceLock::new();
        let cell = match dialect {
            Dialect::Postgres => &POSTGRES,
            Dialect::MySql => &MYSQL,
            Dialect::Sqlite => &SQLITE,
        };
        cell.get_or_init(|| Analyzer::new(dialect))
    }
}
