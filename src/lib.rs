//! benchctl: declare performance scenarios for AI systems in KDL, check them, plan them.
//!
//! The crate is organised as a pipeline, one type per stage (see docs/architecture.md):
//! source text -> `kdl::KdlDocument` -> spanned [`dsl::model::Scenario`] ->
//! [`dsl::ValidScenario`] -> [`plan::Plan`]. The DSL modules depend on nothing heavy.

pub mod check;
pub mod clock;
pub mod compare;
pub mod dashboard;
pub mod dsl;
pub mod endpoint;
pub mod engine;
pub mod evaluate;
pub mod exit;
pub mod files;
pub mod fuzzing;
pub mod inference;
pub mod kernel;
pub mod measure;
pub mod merge;
pub mod model_config;
pub mod partition;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod prompts;
pub mod random;
pub mod registry;
pub mod report;
pub mod result;
pub mod retrieval;
pub mod shard;
pub mod stats;
pub mod tokenizer;
pub mod workload;
