#![doc = include_str!("../README.md")]
//! The fault suite lives in `tests/`: each file is one family of faults,
//! run against the real PostgreSQL or MariaDB: through the testkit's fault
//! proxy, by faults on the server's side, or by restarting the server
//! (`*_restart.rs`, each its own binary).
//! This crate has no library code of its own.
