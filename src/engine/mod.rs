//! Stage 6, execute: runs a [`crate::plan::Plan`]'s phases on tokio and records what happened.
//!
//! The engine knows workloads only through [`crate::workload::Workload`]; which kinds exist
//! and how they are prepared is [`crate::registry`]'s business (docs/architecture.md).
pub mod capacity;
pub mod curve;
pub mod drive;
pub mod events;
pub mod executor;
pub mod host;
pub mod pressure;
