#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cluster;
mod error;
mod export;
mod json;
mod pools;
mod routes;
mod view;

pub use cluster::{ClusterState, ClusterView, PoolSource, ReplicaBan, ReplicaState, BAN_REASONS};
pub use error::HttpError;
pub use export::{
    BREAKER_STATES, BUCKET_BOUNDS, CLASSIC_CONTENT_TYPE, CONTENT_TYPE, QUERY_LABEL_MAX,
};
pub use pools::{Pools, DEFAULT_QUERY_LIMIT};
pub use view::PoolView;

/// The router over one pool: `GET /health`, `/health/ready`, `/metrics`,
/// `/pools`, `/pools/{name}` and `/dashboard`. Mount it where you like
/// (`Router::nest("/ops", ...)`; the dashboard uses relative links).
/// For several pools, use [`Pools`].
pub fn router(pool: impl PoolView) -> axum::Router {
    Pools::one(pool).router()
}
