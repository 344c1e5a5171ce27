//! Per-shape query statistics and the slow-query log. A shape is a 64-bit
//! id with its normalized text, supplied by the caller — the drivers
//! fingerprint SQL with tidepool-sql through [`Manager::query_shape`]; the
//! core never parses SQL.
//!
//! Memory is bounded whatever the traffic: the table keeps at most
//! [`QUERY_STATS_CAPACITY`] shapes, chosen by total time with Space-Saving
//! (Metwally, Agrawal and El Abbadi, 2005) over 16 shards: a shape not in
//! its shard's table takes the place of the one with the least total time,
//! inheriting that total as its error bound. A shape whose true total time
//! exceeds a shard's share of all time is never evicted, so a flood of
//! one-off shapes cannot push the heavy ones out. Recording a known shape
//! takes one uncontended shard lock and no allocation; it must never log,
//! allocate or wait under that lock (the slow-query log is written after
//! the lock is released).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::manager::Manager;
use crate::pool::Pool;
use crate::query::QueryKind;

/// How many statement shapes a pool keeps statistics for.
pub const QUERY_STATS_CAPACITY: usize = 512;
const SHARDS: usize = 16;
const PER_SHARD: usize = QUERY_STATS_CAPACITY / SHARDS;
/// Normalized texts longer than this are kept truncated.
const MAX_TEXT: usize = 2048;
/// A slow shape is logged at most once per this interval.
pub(crate) const SLOW_LOG_INTERVAL: Duration = Duration::from_secs(60);

// The latency sketch: log-linear buckets of microseconds, eight per power
// of two (within 12.5%), up to 2^32 µs (71 minutes), in 960 bytes.
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const SKETCH: usize = (32 - SUB_BITS as usize + 1) * SUB as usize;

fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (us >> shift) & (SUB - 1);
    (((shift as u64 + 1) * SUB + sub) as usize).min(SKETCH - 1)
}

fn upper_bound_of(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    ((SUB + i % SUB) << shift) + ((1u64 << shift) - 1)
}

/// A statement's shape, the key of the pool's query statistics: a stable
/// 64-bit id, the normalized text shown for it (never holding a
/// parameter's value), and what kind of statement it is.
///
/// ```
/// use tidepool::{QueryKind, QueryShape};
/// let shape = QueryShape::new(42, "select * from users where id = ?", QueryKind::Read);
/// assert_eq!(shape.id(), 42);
/// assert_eq!(shape.text(), "select * from users where id = ?");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryShape {
    id: u64,
    text: Arc<str>,
    kind: QueryKind,
}

impl QueryShape {
    /// A shape from its id, normalized text and kind.
    pub fn new(id: u64, text: impl Into<Arc<str>>, kind: QueryKind) -> Self {
        QueryShape {
            id,
            text: text.into(),
            kind,
        }
    }
    /// The id statistics are keyed by.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The normalized text.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The statement's kind.
    pub fn kind(&self) -> QueryKind {
        self.kind
    }
}

/// What the pool knows about one statement shape, read by
/// [`Pool::queries`]. Counts start when the shape entered the table (see
/// [`total_time_error`](QueryStats::total_time_error)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryStats {
    /// The shape's id.
    pub id: u64,
    /// Its normalized text (at most 2 KiB, cut at a character boundary).
    pub text: Arc<str>,
    /// Its kind.
    pub kind: QueryKind,
    /// Statements run.
    pub count: u64,
    /// Of which failed (or were abandoned mid-way, e.g. by a timeout).
    pub errors: u64,
    /// Rows returned or affected, over the successful ones.
    pub rows: u64,
    /// Statements slower than `slow_query_threshold`.
    pub slow: u64,
    /// Time spent in them, measured.
    pub total_time: Duration,
    /// How much more time, at most, this shape may have had before it was
    /// tracked (Space-Saving's error bound: zero unless the shape entered a
    /// full table).
    pub total_time_error: Duration,
    /// Mean time per statement (exact).
    pub mean: Duration,
    /// Median, 95th and 99th percentiles (upper bounds within 12.5%).
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest (exact).
    pub max: Duration,
}

struct Entry {
    shape: QueryShape,
    count: u64,
    errors: u64,
    rows: u64,
    slow: u64,
    exact_ns: u64,
    error_ns: u64,
    max_ns: u64,
    sketch: Box<[u32; SKETCH]>,
    slow_logged_at: Option<Instant>,
    slow_unlogged: u64,
}

impl Entry {
    fn weight(&self) -> u64 {
        self.exact_ns.saturating_add(self.error_ns)
    }

    fn reset(&mut self, shape: QueryShape, inherited_ns: u64) {
        self.shape = shape;
        self.count = 0;
        self.errors = 0;
        self.rows = 0;
        self.slow = 0;
        self.exact_ns = 0;
        self.error_ns = inherited_ns;
        self.max_ns = 0;
        self.sketch.fill(0);
        self.slow_logged_at = None;
        self.slow_unlogged = 0;
    }

    fn snapshot(&self) -> QueryStats {
        let rank = |q: f64| -> Duration {
            if self.count == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
            let mut seen = 0u64;
            for (i, c) in self.sketch.iter().enumerate() {
                seen += u64::from(*c);
                if seen >= rank {
                    // The bucket's upper bound, but never above the maximum.
                    return Duration::from_micros(upper_bound_of(i))
                        .min(Duration::from_nanos(self.max_ns));
                }
            }
            Duration::from_nanos(self.max_ns)
        };
        QueryStats {
            id: self.shape.id,
            text: self.shape.text.clone(),
            kind: self.shape.kind,
            count: self.count,
            errors: self.errors,
            rows: self.rows,
            slow: self.slow,
            total_time: Duration::from_nanos(self.exact_ns),
            total_time_error: Duration::from_nanos(self.error_ns),
            mean: Duration::from_nanos(self.exact_ns.checked_div(self.count).unwrap_or(0)),
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: Duration::from_nanos(self.max_ns),
        }
    }
}

#[derive(Default)]
struct Shard {
    /// The ids of `entries`, apart, so the lookup scans one cache line or
    /// four instead of the entries themselves.
    ids: Vec<u64>,
    entries: Vec<Entry>,
}

/// A slow statement to log, taken out from under the lock.
pub(crate) struct SlowReport {
    pub text: Arc<str>,
    pub id: u64,
    /// Slow statements of this shape since the last report, this one
    /// included.
    pub occurrences: u64,
}

/// The pool's table of per-shape statistics.
pub(crate) struct QueryTable {
    shards: Box<[Mutex<Shard>]>,
    evictions: AtomicU64,
}

fn bounded_text(shape: &QueryShape) -> QueryShape {
    if shape.text.len() <= MAX_TEXT {
        return shape.clone();
    }
    let mut end = MAX_TEXT;
    while !shape.text.is_char_boundary(end) {
        end -= 1;
    }
    QueryShape::new(shape.id, format!("{}…", &shape.text[..end]), shape.kind)
}

impl QueryTable {
    pub(crate) fn new() -> Self {
        QueryTable {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            evictions: AtomicU64::new(0),
        }
    }

    /// Records one statement: `rows` is `None` when it failed. Returns a
    /// report when it was slower than `slow` and its shape was not
    /// reported within [`SLOW_LOG_INTERVAL`] before `now`.
    pub(crate) fn record(
        &self,
        shape: &QueryShape,
        elapsed: Duration,
        rows: Option<u64>,
        slow: Option<Duration>,
        now: Instant,
    ) -> Option<SlowReport> {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut shard = self.shards[(shape.id % SHARDS as u64) as usize].lock();
        let at = match shard.ids.iter().position(|&id| id == shape.id) {
            Some(at) => at,
            None if shard.entries.len() < PER_SHARD => {
                shard.ids.push(shape.id);
                shard.entries.push(Entry {
                    shape: bounded_text(shape),
                    count: 0,
                    errors: 0,
                    rows: 0,
                    slow: 0,
                    exact_ns: 0,
                    error_ns: 0,
                    max_ns: 0,
                    sketch: Box::new([0; SKETCH]),
                    slow_logged_at: None,
                    slow_unlogged: 0,
                });
                shard.entries.len() - 1
            }
            None => {
                // Space-Saving: the newcomer replaces the lightest entry
                // and inherits its weight as an overestimate.
                let (at, weight) = shard
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i, e.weight()))
                    .min_by_key(|&(_, w)| w)
                    .unwrap_or((0, 0));
                shard.entries[at].reset(bounded_text(shape), weight);
                shard.ids[at] = shape.id;
                self.evictions.fetch_add(1, Relaxed);
                at
            }
        };
        let e = &mut shard.entries[at];
        e.count += 1;
        e.exact_ns = e.exact_ns.saturating_add(ns);
        e.max_ns = e.max_ns.max(ns);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = &mut e.sketch[bucket_of(us)];
        *bucket = bucket.saturating_add(1);
        match rows {
            Some(r) => e.rows = e.rows.saturating_add(r),
            None => e.errors += 1,
        }
        let threshold = slow?;
        if elapsed < threshold {
            return None;
        }
        e.slow += 1;
        e.slow_unlogged += 1;
        if e.slow_logged_at
            .is_some_and(|at| now.saturating_duration_since(at) < SLOW_LOG_INTERVAL)
        {
            return None;
        }
        e.slow_logged_at = Some(now);
        let occurrences = std::mem::take(&mut e.slow_unlogged);
        Some(SlowReport {
            text: e.shape.text.clone(),
            id: e.shape.id,
            occurrences,
        })
    }

    /// Every tracked shape, by total time, largest first.
    pub(crate) fn snapshot(&self) -> Vec<QueryStats> {
        let mut all: Vec<QueryStats> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .entries
                    .iter()
                    .map(Entry::snapshot)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| b.total_time.cmp(&a.total_time).then(a.id.cmp(&b.id)));
        all
    }

    /// How many shapes were evicted to make room for others.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    /// Shapes held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().entries.len()).sum()
    }

    /// An upper bound of the heap memory held, in bytes.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.ids.capacity() * 8
                    + s.entries.capacity() * std::mem::size_of::<Entry>()
                    + s.entries
                        .iter()
                        .map(|e| SKETCH * 4 + e.shape.text.len() + 16)
                        .sum::<usize>()
            })
            .sum()
    }
}

impl<M: Manager> Pool<M> {
    /// Statistics per statement shape, by total time, largest first: what
    /// the pool's queries (through [`execute_query`](Pool::execute_query),
    /// or recorded with [`record_query`](Pool::record_query)) spend their
    /// time on. At most [`QUERY_STATS_CAPACITY`] shapes are kept (see
    /// [`QueryStats::total_time_error`]); empty when the manager does not
    /// fingerprint ([`Manager::query_shape`]) or `query_stats` is off.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool, QueryKind, QueryShape};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<()> { Ok(()) }
    /// #     async fn validate(&self, _: &mut ()) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let pool = Pool::builder(M).build().await?;
    /// let shape = QueryShape::new(7, "select * from users where id = ?", QueryKind::Read);
    /// pool.record_query(&shape, Duration::from_millis(3), Some(1));
    /// pool.record_query(&shape, Duration::from_millis(5), None);
    /// let top = &pool.queries()[0];
    /// assert_eq!((top.count, top.errors, top.rows), (2, 1, 1));
    /// assert_eq!(top.total_time, Duration::from_millis(8));
    /// # Ok(()) }
    /// ```
    pub fn queries(&self) -> Vec<QueryStats> {
        self.shared().queries.snapshot()
    }

    /// How many shapes were pushed out of the statistics table to make room
    /// for others (a sign of many distinct shapes: literals inlined where a
    /// parameter belongs).
    pub fn query_stats_evictions(&self) -> u64 {
        self.shared().queries.evictions()
    }

    /// Records one statement of `shape` that took `elapsed` and returned or
    /// affected `rows` (`None` if it failed): for queries run on a
    /// connection directly rather than through
    /// [`execute_query`](Pool::execute_query), which records its own. A
    /// statement slower than `slow_query_threshold` goes to the slow-query
    /// log. Does nothing when `query_stats` is off.
    pub fn record_query(&self, shape: &QueryShape, elapsed: Duration, rows: Option<u64>) {
        self.record_shape(shape, elapsed, rows, || None);
    }

    /// Records a statement and writes the slow-query log line if one is
    /// due; `params` renders the parameters, asked for only when the line
    /// is written and `log_query_parameters` is on.
    pub(crate) fn record_shape(
        &self,
        shape: &QueryShape,
        elapsed: Duration,
        rows: Option<u64>,
        params: impl FnOnce() -> Option<String>,
    ) {
        let shared = self.shared();
        if !shared.config.query_stats {
            return;
        }
        let threshold = shared.config.slow_query_threshold;
        let Some(report) = shared
            .queries
            .record(shape, elapsed, rows, threshold, Instant::now())
        else {
            return;
        };
        // Only when a line is due: the name may be built from the manager.
        let pool = self.name();
        let params = if shared.config.log_query_parameters {
            params()
        } else {
            None
        };
        match params {
            Some(params) => tracing::warn!(
                target: "tidepool::slow_query",
                pool = %pool,
                fingerprint = format_args!("{:016x}", report.id),
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                occurrences = report.occurrences,
                %params,
                "slow query: {}", report.text
            ),
            None => tracing::warn!(
                target: "tidepool::slow_query",
                pool = %pool,
                fingerprint = format_args!("{:016x}", report.id),
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                occurrences = report.occurrences,
                "slow query: {}", report.text
            ),
        }
    }
}

/// Times one query of the pool's query face from the moment it is sent:
/// [`finish`](QueryTimer::finish) records it with its outcome; dropped
/// unfinished (the caller gave up, a timeout fired) it records the time
/// spent as a failure, so the slowest statements — those cut short — are
/// not the ones missing from the statistics.
pub(crate) struct QueryTimer<'a, M: Manager> {
    pool: &'a Pool<M>,
    meta: Arc<crate::conn::ConnMeta>,
    shape: Option<QueryShape>,
    params: &'a [crate::Value],
    started: Instant,
    done: bool,
}

impl<'a, M: Manager> QueryTimer<'a, M> {
    /// Starts timing a query whose shape the caller looked up already
    /// (`None`: not recorded per shape).
    pub(crate) fn with_shape(
        pool: &'a Pool<M>,
        conn: &crate::Pooled<M>,
        shape: Option<QueryShape>,
        params: &'a [crate::Value],
    ) -> Self {
        QueryTimer {
            pool,
            meta: conn.meta.clone(),
            shape,
            params,
            started: Instant::now(),
            done: false,
        }
    }

    /// Records the query: `rows` returned, or `None` if it failed.
    pub(crate) fn finish(mut self, rows: Option<u64>) {
        self.done = true;
        self.record(rows);
    }

    fn record(&self, rows: Option<u64>) {
        let elapsed = self.started.elapsed();
        self.meta.record_query(elapsed);
        if let Some(shape) = &self.shape {
            let params = self.params;
            self.pool
                .record_shape(shape, elapsed, rows, || Some(format!("{params:?}")));
        }
    }
}

impl<M: Manager> Drop for QueryTimer<'_, M> {
    fn drop(&mut self) {
        if !self.done {
            self.record(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(id: u64) -> QueryShape {
        QueryShape::new(id, format!("select {id}"), QueryKind::Read)
    }

    #[test]
    fn sketch_buckets_are_monotonic_and_bound_their_values() {
        let mut last = 0;
        for us in (0..200_000u64).chain([1 << 31, (1 << 32) - 1]) {
            let b = bucket_of(us);
            assert!(b >= last && b < SKETCH);
            assert!(upper_bound_of(b) >= us, "{us}");
            last = b;
        }
        assert_eq!(bucket_of(u64::MAX), SKETCH - 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_million_distinct_shapes_stay_within_the_memory_bound_and_keep_the_heavy_ones() {
        let table = QueryTable::new();
        let now = Instant::now();
        let heavy: Vec<u64> = (0..5).map(|i| u64::MAX - i).collect();
        for i in 0..1_000_000u64 {
            // A one-off shape of 10 µs, and every 100th statement one of
            // five heavy shapes of 1 ms.
            table.record(
                &shape(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                Duration::from_micros(10),
                Some(1),
                None,
                now,
            );
            if i.is_multiple_of(100) {
                let h = heavy[(i / 100 % 5) as usize];
                table.record(&shape(h), Duration::from_millis(1), Some(1), None, now);
            }
        }
        assert!(
            table.len() <= QUERY_STATS_CAPACITY,
            "{} shapes",
            table.len()
        );
        let bound =
            QUERY_STATS_CAPACITY * (SKETCH * 4 + std::mem::size_of::<Entry>() + 8 + 16 + 32);
        assert!(
            table.heap_bytes() <= bound,
            "{} bytes > {bound}",
            table.heap_bytes()
        );
        assert!(table.evictions() > 990_000);
        let top = table.snapshot();
        let top5: Vec<u64> = top.iter().take(5).map(|s| s.id).collect();
        for h in &heavy {
            assert!(
                top5.contains(h),
                "heavy shape {h:x} not in the top five: {top5:x?}"
            );
        }
        let first = top.iter().find(|s| s.id == heavy[0]).map(|s| s.count);
        assert_eq!(
            first,
            Some(2_000),
            "a heavy shape is never evicted, so its count is exact"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn statistics_count_errors_rows_and_percentiles() {
        let table = QueryTable::new();
        let now = Instant::now();
        for ms in 1..=100u64 {
            table.record(&shape(1), Duration::from_millis(ms), Some(2), None, now);
        }
        table.record(&shape(1), Duration::from_millis(50), None, None, now);
        let s = &table.snapshot()[0];
        assert_eq!((s.count, s.errors, s.rows), (101, 1, 200));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.total_time, Duration::from_millis(5050 + 50));
        assert_eq!(s.mean, Duration::from_nanos(5_100_000_000 / 101));
        let p95 = s.p95.as_secs_f64() * 1e3;
        let p99 = s.p99.as_secs_f64() * 1e3;
        assert!((95.0..=95.0 * 1.13).contains(&p95), "p95 {p95}");
        assert!((99.0..=100.0).contains(&p99), "p99 {p99}");
        assert_eq!(s.total_time_error, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_shape_is_reported_once_per_interval_with_the_count_in_between() {
        let table = QueryTable::new();
        let slow = Some(Duration::from_millis(150));
        let t0 = Instant::now();
        let s = shape(9);
        assert!(table
            .record(&s, Duration::from_millis(149), Some(0), slow, t0)
            .is_none());
        let first = table.record(&s, Duration::from_millis(200), Some(0), slow, t0);
        assert_eq!(first.map(|r| r.occurrences), Some(1));
        for _ in 0..3 {
            assert!(table
                .record(
                    &s,
                    Duration::from_secs(1),
                    Some(0),
                    slow,
                    t0 + Duration::from_secs(30)
                )
                .is_none());
        }
        let again = table.record(
            &s,
            Duration::from_secs(1),
            Some(0),
            slow,
            t0 + SLOW_LOG_INTERVAL,
        );
        assert_eq!(again.map(|r| r.occurrences), Some(4));
        assert_eq!(table.snapshot()[0].slow, 5);
        // Another shape has its own interval.
        assert!(table
            .record(
                &shape(10),
                Duration::from_secs(1),
                Some(0),
                slow,
                t0 + Duration::from_secs(1)
            )
            .is_some());
    }

    #[test]
    fn long_texts_are_kept_truncated_at_a_character_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let s = bounded_text(&QueryShape::new(1, text, QueryKind::Read));
        assert!(s.text().len() <= MAX_TEXT + "…".len());
        assert!(s.text().ends_with('…'));
    }
}
