#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// Without a backend feature only the classification functions remain.
#![cfg_attr(
    not(any(feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports)
)]

mod classify;
mod clean;
mod error;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
mod tracked;

pub use classify::{classify, is_retryable_transaction};
pub use error::Error;
#[cfg(feature = "mysql")]
pub use mysql::{MysqlConnection, MysqlManager, MysqlPool};
#[cfg(feature = "postgres")]
pub use pg::{PgConnection, PgManager, PgPool};
pub use tracked::TrackedConnection;

/// diesel-async, as this crate was built against.
pub use diesel_async;
