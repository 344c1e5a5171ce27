#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// Without a backend feature only the classification functions remain.
#![cfg_attr(
    not(any(feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

mod classify;
mod error;
mod manager;

pub use classify::{classify, is_connection_lost, is_retryable_transaction};
pub use error::Error;
#[cfg(feature = "mysql")]
pub use manager::{MySqlManager, MySqlPool};
#[cfg(feature = "postgres")]
pub use manager::{PgManager, PgPool};

/// sqlx, as this crate was built against.
pub use sqlx;
