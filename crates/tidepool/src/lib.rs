#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod error;
mod manager;
mod query;

pub use error::{BuildError, Error, FailureKind};
pub use manager::Manager;
pub use query::{
    transaction, BoxFuture, Classify, ColumnIndex, QueryKind, Queryable, RetryPolicy, Row, Value,
};
