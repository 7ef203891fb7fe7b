//! The result document's parts that are not measurements: the plan as the evaluation reads
//! it, and the identity sections of shards, fleet members and merged runs.

use serde::{Deserialize, Serialize};

use crate::dsl::model::{ExpectSeverity, HostQuiet, OnMissing, PhaseRole};
use crate::plan::{BaseBound, Origin, Plan};
use crate::probe::nvml::GpuInfo;
use crate::probe::SystemInfo;
use crate::shard::DrivePart;

/// The resolved plan a run executed, as its result records it. The expectations and the
/// host policy are typed (the evaluation reads them); the rest of the plan is kept as
/// written, for people and scripts.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ConfigDoc {
    #[serde(default)]
    pub workloads: Vec<PlanWorkloadDoc>,
    #[serde(default)]
    pub phases: Vec<PlanPhaseDoc>,
    #[serde(default)]
    pub expectations: Vec<ExpectationSpec>,
    #[serde(default)]
    pub host_quiet: Option<HostQuiet>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl ConfigDoc {
    /// The plan as its result records it.
    pub fn of(plan: &Plan) -> ConfigDoc {
        let value = serde_json::to_value(plan).expect("a plan serialises: its maps have string keys");
        serde_json::from_value(value).expect("a serialised plan reads back as its config")
    }

    /// What a host or load-generator finding does to the verdict.
    pub fn host_quiet(&self) -> HostQuiet {
        self.host_quiet.unwrap_or(HostQuiet::Warn)
    }
}

/// A workload of the plan: its name and kind typed, the rest as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanWorkloadDoc {
    pub name: String,
    pub kind: String,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// A phase of the plan: what the dashboard's timeline draws, typed; the rest as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanPhaseDoc {
    pub name: String,
    pub role: PhaseRole,
    /// The planned start (`10s`).
    pub start: String,
    /// The planned longest length; null when the phase ends only on a condition.
    pub max_duration: Option<String>,
    #[serde(default)]
    pub drives: Vec<PlanDriveDoc>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl PlanPhaseDoc {
    pub fn start_s(&self) -> Option<f64> {
        secs(&self.start)
    }
    pub fn max_duration_s(&self) -> Option<f64> {
        self.max_duration.as_deref().and_then(secs)
    }
}

fn secs(text: &str) -> Option<f64> {
    crate::dsl::units::Duration::parse(text).ok().map(|d| d.as_secs_f64())
}

/// A drive of a planned phase: which workload it drives, the rest as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDriveDoc {
    pub workload: String,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// One expectation of the plan, everything the evaluation needs without the scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationSpec {
    pub name: String,
    pub selector: String,
    /// The bound as written, in its metric's unit (for people; [`ExpectationSpec::base`] is
    /// what is evaluated).
    #[serde(default)]
    pub bound: serde_json::Value,
    pub text: String,
    pub phase: Option<String>,
    pub severity: ExpectSeverity,
    pub weight: f64,
    /// `10s`: the expectation is judged per window of this length.
    pub window: Option<String>,
    pub windows_share: Option<f64>,
    #[serde(default)]
    pub abort_on_fail: bool,
    pub on_missing: OnMissing,
    pub spike_k: Option<f64>,
    /// Confidence of the evidence rule.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// A workload or probe name.
    pub subject: String,
    #[serde(default)]
    pub subject_is_probe: bool,
    pub metric: String,
    pub aggregation: Option<String>,
    /// How the metric (after aggregation) is measured.
    pub unit: UnitDoc,
    /// The bound in base units (seconds, per second, fraction, bytes, count).
    pub base: BaseBound,
    pub origin: Origin,
}

fn default_confidence() -> f64 {
    crate::stats::CONFIDENCE
}

impl ExpectationSpec {
    /// The window length in seconds of a windowed expectation.
    pub fn window_s(&self) -> Option<f64> {
        secs(self.window.as_deref()?)
    }
}

/// The unit of an expectation's metric as the result records it (the catalogue's
/// [`crate::dsl::metrics::Unit`], read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitDoc {
    Duration,
    Rate,
    Ratio,
    Bytes,
    BytesOrShare,
    Count,
    Number(String),
}

/// What identifies the run a shard or fleet member belongs to, and when it ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// `--run-id`, `BENCHCTL_RUN_ID` or the scheduler's job id; null when none was given.
    pub run_id: Option<String>,
    /// Hash of the sources, parameters, seed and repeat: equal for every part of one run.
    pub scenario_hash: String,
    pub started_unix_s: f64,
    pub ended_unix_s: f64,
    pub start_at_unix_s: Option<f64>,
}

/// A shard file's identity and part (`run --shard I/N`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardSection {
    #[serde(flatten)]
    pub identity: Identity,
    pub index: u64,
    pub count: u64,
    /// Where the index came from (`--shard`, or the scheduler's variables).
    pub source: String,
    /// Each drive as declared and as this shard ran it.
    pub drives: Vec<DrivePart>,
}

impl ShardSection {
    /// The shard's planned share of the load: the mean of its drives' shares.
    pub fn planned_share(&self) -> f64 {
        if self.drives.is_empty() {
            1.0 / self.count.max(1) as f64
        } else {
            self.drives.iter().map(|d| d.share).sum::<f64>() / self.drives.len() as f64
        }
    }
}

/// A fleet member's identity (`run --fleet-member`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetSection {
    #[serde(flatten)]
    pub identity: Identity,
    pub node: String,
    /// Where the node name came from (NODE_NAME, SLURMD_NODENAME, the hostname).
    pub node_source: String,
    pub gpus: Vec<GpuInfo>,
}

/// What a merged split run was made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeSection {
    /// `split`.
    pub mode: String,
    pub expected: u64,
    pub merged: usize,
    pub missing: Vec<u64>,
    pub run_id: Option<String>,
    pub scenario_hash: String,
    /// The latest shard's start after the earliest's, seconds.
    pub start_skew_s: f64,
    pub shards: Vec<ShardRow>,
    pub systems: Vec<ShardSystem>,
}

/// One shard of a merged run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRow {
    pub index: u64,
    pub file: String,
    pub host: String,
    pub status: String,
    pub started_unix_s: f64,
    pub ended_unix_s: f64,
    pub start_skew_s: f64,
    pub requests: u64,
    pub achieved_share: f64,
    pub planned_share: f64,
    pub fell_short: bool,
    pub short_reasons: Vec<String>,
    pub host_findings: Vec<String>,
}

/// The machine a shard ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardSystem {
    pub shard: u64,
    pub system_info: SystemInfo,
}
