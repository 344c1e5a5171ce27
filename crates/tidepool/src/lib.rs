#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod acquire;
mod background;
mod backoff;
mod blocking;
mod breaker;
mod builder;
mod ceiling;
mod config;
mod conn;
mod create;
mod error;
mod events;
mod guard;
mod health;
mod histogram;
mod maintenance;
mod manager;
mod metrics;
mod pool;
mod pool_query;
mod query;
mod scaling;
mod shared;
mod sync;
mod validation;
mod waiters;

pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState, Thresholds};
pub use builder::Builder;
pub use config::{Config, QueueMode};
pub use error::{BuildError, Error, FailureKind};
pub use events::{Event, Listener};
pub use guard::Pooled;
pub use health::{
    Component, FindingKind, HealthCheck, HealthFigures, HealthReport, HealthSample, HealthStatus,
    Recommendation, Severity,
};
pub use histogram::{Buckets, HistogramSnapshot, Histograms};
pub use manager::Manager;
pub use metrics::{CloseReason, ConnectionSnapshot, Metrics};
pub use pool::{CloseReport, Pool, Status};
pub use query::{
    run_in_transaction, transaction, BoxFuture, Classify, ColumnIndex, QueryKind, Queryable,
    RetryPolicy, Row, Value,
};
pub use scaling::{
    EffectiveConfig, Load, PredictorState, ScalingConfig, ScalingDecision, ScalingReason, Strategy,
};
