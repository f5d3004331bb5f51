#![doc = include_str!("../README.md")]
//!
//! # Modules at a glance
//! - [`pools`]: the in-memory contenders behind one [`pools::AsyncPool`] trait.
//! - [`matrix`], [`uncontended`], [`fairness`], [`postgres`], [`scale`]: the
//!   five suites.
//! - [`stats`], [`chart`], [`report`], [`machine`]: figures, SVG charts,
//!   BENCHMARKS.md, and what the numbers were taken on.
//! - [`gateway`]: the HTTP gateway's end-to-end figure, from `tidepool load`.
//! - [`memory`]: heap bytes, counted by the runner's allocator.

pub mod chart;
pub mod fairness;
pub mod gateway;
pub mod machine;
pub mod matrix;
pub mod memory;
pub mod pools;
pub mod postgres;
pub mod report;
pub mod scale;
pub mod stats;
pub mod targets;
pub mod uncontended;
