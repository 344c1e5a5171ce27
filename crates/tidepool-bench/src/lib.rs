#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod harness;
pub mod noop;
pub mod pg;
pub mod report;
pub mod shapes;
