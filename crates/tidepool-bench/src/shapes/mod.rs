//! Load shapes against real PostgreSQL, for adaptive capacity (issue 11):
//! a ramp, a square wave of bursts and an overload, each run through
//! several pool configurations with connection opening slowed to what it
//! costs across a network ([`slow`]).
//!
//! One room per concern: [`slow`] wraps the managers, [`pools`] names and
//! builds the configurations, [`drive`] runs one configuration through one
//! shape, [`tables`] turns repeats into medians, spreads and ratios.

pub mod drive;
pub mod pools;
pub mod slow;
pub mod tables;

pub use drive::{run, Schedule, ShapeRun, Tick, Work};
pub use pools::{Variant, VariantKind};

/// The overload query (issue 11): a 2,001-row range scan and aggregate,
/// CPU-bound on the server.
pub const RANGE_AGGREGATE: &str =
    "SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN $1 AND $1 + 2000";
