//! What the router reads from a pool, with the pool's manager type erased:
//! [`PoolView`] is implemented for every `tidepool::Pool<M>`, so one router
//! can serve pools of different drivers. Everything here only reads; none
//! of it touches the checkout path beyond what `Pool::metrics` already
//! costs, except [`PoolView::check_health`], which pings idle connections
//! (each taken out of the idle set while it is pinged, like the
//! maintenance tick's own health check).

use tidepool::{
    BoxFuture, BreakerState, Config, EffectiveConfig, HealthCheck, HealthReport, HealthSample,
    Histograms, Load, Manager, Metrics, Pool, QueryStats, Status,
};

/// A pool as the router sees it. Implemented for every [`tidepool::Pool`];
/// implement it yourself only to serve something pool-like (a test double,
/// a pool behind another handle).
pub trait PoolView: Send + Sync + 'static {
    /// The name used as the `pool_name` label and in `/pools/{name}`.
    fn name(&self) -> String;
    /// Size and occupancy now.
    fn status(&self) -> Status;
    /// Counters, percentiles, the breaker and each connection.
    fn metrics(&self) -> Metrics;
    /// The raw latency buckets (for Prometheus histograms).
    fn histograms(&self) -> Histograms;
    /// A reading to judge the window after it by.
    fn health_sample(&self) -> HealthSample;
    /// Health since the pool was built.
    fn health(&self) -> HealthReport;
    /// The circuit breaker's state (cheap: one atomic load).
    fn breaker_state(&self) -> BreakerState;
    /// Whether the pool was closed.
    fn is_closed(&self) -> bool;
    /// The pool's configuration.
    fn config(&self) -> &Config;
    /// The load over the last scaling window (load factor, busy, queued,
    /// arrival rate).
    fn load(&self) -> Load;
    /// What the pool runs with now (warm target, limit, adapted timeouts),
    /// beside what was configured.
    fn effective_config(&self) -> EffectiveConfig;
    /// Pings every idle connection now and returns what it found, with
    /// the health report after it.
    fn check_health(&self) -> BoxFuture<'_, HealthCheck>;
    /// Statistics per statement shape, by total time, largest first
    /// ([`Pool::queries`]). Defaults to none, so a view written before
    /// query statistics existed still compiles.
    fn queries(&self) -> Vec<QueryStats> {
        Vec::new()
    }
    /// Shapes pushed out of the statistics table to make room for others
    /// ([`Pool::query_stats_evictions`]). Defaults to 0.
    fn query_stats_evictions(&self) -> u64 {
        0
    }
}

impl<M: Manager> PoolView for Pool<M> {
    fn name(&self) -> String {
        Pool::name(self)
    }
    fn status(&self) -> Status {
        Pool::status(self)
    }
    fn metrics(&self) -> Metrics {
        Pool::metrics(self)
    }
    fn histograms(&self) -> Histograms {
        Pool::histograms(self)
    }
    fn health_sample(&self) -> HealthSample {
        Pool::health_sample(self)
    }
    fn health(&self) -> HealthReport {
        Pool::health(self)
    }
    fn breaker_state(&self) -> BreakerState {
        Pool::breaker_state(self)
    }
    fn is_closed(&self) -> bool {
        Pool::is_closed(self)
    }
    fn config(&self) -> &Config {
        Pool::config(self)
    }
    fn load(&self) -> Load {
        Pool::load(self)
    }
    fn effective_config(&self) -> EffectiveConfig {
        Pool::effective_config(self)
    }
    fn check_health(&self) -> BoxFuture<'_, HealthCheck> {
        Box::pin(Pool::check_health(self))
    }
    fn queries(&self) -> Vec<QueryStats> {
        Pool::queries(self)
    }
    fn query_stats_evictions(&self) -> u64 {
        Pool::query_stats_evictions(self)
    }
}
