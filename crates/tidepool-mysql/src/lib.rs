#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod connection;
mod error;
mod manager;
mod params;

pub use config::{MysqlConfig, SslMode};
pub use connection::MysqlConnection;
pub use error::{codes, MysqlError};
pub use manager::{MysqlManager, ResetPolicy};
pub use params::rewrite_dollar_placeholders;

/// The `mysql_async` this crate is built on, for native access.
pub use mysql_async;
