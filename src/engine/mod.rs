//! Stage 6, execute: runs a [`crate::plan::Plan`]'s phases on tokio and records what happened.
pub mod clock;
pub mod curve;
pub mod drive;
pub mod events;
pub mod host;
pub mod measure;
pub mod pressure;
pub mod probe;
pub mod random;
pub mod record;
pub mod run;
pub mod synthetic;
pub mod workload;
