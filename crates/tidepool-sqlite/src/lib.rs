#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod connection;
mod error;
mod manager;
mod memdb;
mod open;
mod queryable;

pub use config::{BeginMode, JournalMode, OpenMode, SqliteConfig, Synchronous, Target};
pub use connection::SqliteConnection;
pub use error::SqliteError;
pub use manager::SqliteManager;
pub use queryable::{format_timestamp, parse_timestamp};

/// The `rusqlite` this crate is built on, for native access through
/// [`SqliteConnection::call`].
pub use rusqlite;
