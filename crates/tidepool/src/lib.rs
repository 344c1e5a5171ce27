#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod acquire;
mod affinity;
mod background;
mod backoff;
mod blocking;
mod breaker;
mod builder;
mod ceiling;
mod config;
mod conn;
mod create;
mod decimal;
mod error;
mod events;
mod from_value;
mod groups;
mod guard;
mod health;
mod histogram;
mod maintenance;
mod manager;
mod metrics;
mod pool;
mod pool_query;
mod query;
mod registry;
mod row;
mod scaling;
mod shared;
mod stats;
mod sync;
mod validation;
mod value;
mod waiters;

pub use affinity::statement_key;
pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState, Thresholds};
pub use builder::Builder;
pub use config::{Config, QueueMode};
pub use decimal::{Decimal, DecimalError};
pub use error::{BuildError, Error, FailureKind};
pub use events::{Event, Listener};
pub use from_value::{FromValue, ValueError};
pub use groups::{
    operation, tx_operation, GroupError, GroupFailure, GroupStats, OnError, Operation,
    OperationGroup, Outcome, TxOperation,
};
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
    run_in_transaction, transaction, BoxFuture, Classify, QueryKind, Queryable, RetryPolicy,
};
pub use registry::{
    Budget, ConfigPatch, PoolKey, Registry, RegistryBuilder, RegistryConfig, RegistryError,
};
pub use row::{ColumnIndex, FromRow, Row, RowError};
pub use scaling::{
    EffectiveConfig, Load, PredictorState, ScalingConfig, ScalingDecision, ScalingReason, Strategy,
};
pub use stats::{QueryShape, QueryStats, QUERY_STATS_CAPACITY};
pub use value::Value;
