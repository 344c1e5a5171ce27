//! The fault suite lives in `tests/`: each file is one family of faults,
//! run against the real PostgreSQL through the testkit's fault proxy.
//! This crate has no library code of its own.
