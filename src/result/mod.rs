//! The result document: the typed, versioned record of a run, built from its outcome
//! ([`build`]), written atomically (temporary file, fsync, rename) so a crash or interrupt
//! never leaves half a file, and read back as the same types ([`read`]). Every later stage
//! (evaluate, compare, merge, the reports, the dashboard's history) takes a [`ResultDoc`],
//! never the JSON. Its JSON Schema is docs/result.schema.json.
//!
//! Versioning: fields added since schema version 2 carry `#[serde(default)]`, so a document
//! written by an older benchctl reads; a newer major version is refused by [`read`] with
//! both versions named.

mod build;
pub mod comparison;
pub mod read;
pub mod sections;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use build::{build, flat_summary, run_stats, sources_sha256, spread, workload_doc};
pub use comparison::{Comparison, MetricChange, Verdict};
pub use read::{read, read_str, read_unverified, verify, Damage, ReadError};
pub use sections::{
    ConfigDoc, ExpectationSpec, FleetSection, Identity, MergeSection, ShardRow, ShardSection, ShardSystem,
};

use crate::dsl::model::{PhaseRole, WorkloadKind};
use crate::engine::events::Warning;
use crate::engine::executor::{SearchOutcome, SearchStep};
use crate::engine::pressure::PressureReport;
use crate::measure::record::WindowSummary;
use crate::probe::{ProbeResult, SystemInfo};
use crate::stats::DistSummary;

/// Version of the result document; bumped on incompatible changes.
pub const RESULT_SCHEMA_VERSION: u32 = 2;
/// Largest result or baseline file read back (a long run with many workloads is a few MB).
pub const MAX_RESULT_BYTES: usize = 512 << 20;
/// Spike-rate k used in summaries (expectations may ask for another).
pub const SUMMARY_K: f64 = 3.0;
/// How stored histograms are encoded.
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2+base64";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every phase ran to its end.
    Completed,
    /// An `abort-on-fail` expectation failed during the run (see `warnings`).
    Aborted,
    /// The run reached its run-limit: what was measured until then.
    Limited,
    /// SIGINT, SIGTERM or SIGHUP: what was measured until then.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Aborted => "aborted",
            RunStatus::Limited => "limited",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one run (or of a merge of shards), as written and as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultDoc {
    pub schema_version: u32,
    pub benchctl_version: String,
    /// When the run started, RFC 3339 in UTC.
    pub timestamp: String,
    pub status: RunStatus,
    pub duration_s: f64,
    pub scenario: ScenarioInfo,
    /// The resolved plan the run executed (for a shard: the unsplit plan).
    pub config: ConfigDoc,
    pub system_info: SystemInfo,
    pub phases: Vec<PhaseDoc>,
    /// Per workload, over its measured phases (warmup and cooldown excluded), every
    /// repetition merged.
    pub benchmarks: BTreeMap<String, WorkloadDoc>,
    /// One entry per repetition of the measured phases (one for a run without `repeat`): the
    /// statistics a regression comparison tests, per workload. `baseline add` appends the
    /// runs of other results to a baseline's.
    pub runs: Vec<RunSummary>,
    /// Between-run spread of each statistic, when there is more than one run.
    #[serde(default)]
    pub repeat_spread: BTreeMap<String, BTreeMap<String, Spread>>,
    /// The capacity search's answer (the last searching phase's), with every step.
    #[serde(default)]
    pub capacity: Option<SearchOutcome>,
    /// The inherited view of the search: its rate levels and the highest stable rate.
    pub stress_test: Option<StressTest>,
    pub probes: BTreeMap<String, ProbeResult>,
    /// The model servers' own metrics (the `server` subject), per scraping workload: per
    /// phase counter increases, gauge summaries and histogram increases, and the self-check
    /// against the client's counts. Absent when no workload scrapes a server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<crate::probe::server::ServerRecord>,
    /// The load generator's self-check: host CPU during the run (see `phases[].host`).
    #[serde(default)]
    pub host: HostDoc,
    pub warnings: Vec<Warning>,
    /// One shard of a split run (`run --shard`): its identity and part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSection>,
    /// One node of a fleet run (`run --fleet-member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSection>,
    /// A merged split run (`benchctl merge`): the shards it was made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeSection>,
    /// The comparison with a baseline the run made (kept by `report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The live dashboard's record (alerts, clients); its shape is docs/dashboard.md's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<serde_json::Value>,
}

impl ResultDoc {
    /// A document of totals alone, for evaluating expectations while a run goes on (the
    /// live dashboard): no system facts, probes or host samples.
    pub fn of_totals(config: ConfigDoc, phases: Vec<PhaseDoc>, benchmarks: BTreeMap<String, WorkloadDoc>) -> ResultDoc {
        ResultDoc {
            schema_version: RESULT_SCHEMA_VERSION,
            benchctl_version: env!("CARGO_PKG_VERSION").to_string(),
            timestamp: String::new(),
            status: RunStatus::Completed,
            duration_s: 0.0,
            scenario: ScenarioInfo::default(),
            config,
            system_info: SystemInfo::default(),
            phases,
            benchmarks,
            runs: vec![],
            repeat_spread: BTreeMap::new(),
            capacity: None,
            stress_test: None,
            probes: BTreeMap::new(),
            servers: vec![],
            host: HostDoc::default(),
            warnings: vec![],
            shard: None,
            fleet: None,
            merge: None,
            comparison: None,
            dashboard: None,
        }
    }

    /// Every run of the named phase (one per repetition).
    pub fn phase_runs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a PhaseDoc> + 'a {
        self.phases.iter().filter(move |p| p.name == name)
    }

    /// The measured phases, every repetition.
    pub fn measured_phases(&self) -> impl Iterator<Item = &PhaseDoc> {
        self.phases.iter().filter(|p| p.role == PhaseRole::Measure)
    }

    /// The named phase's runs, or every measured phase; `None` when the named one never ran.
    pub fn phases_of<'a>(&'a self, phase: Option<&'a str>) -> Option<Vec<&'a PhaseDoc>> {
        let out: Vec<&PhaseDoc> = match phase {
            Some(p) => self.phase_runs(p).collect(),
            None => self.measured_phases().collect(),
        };
        (phase.is_none() || !out.is_empty()).then_some(out)
    }

    /// A probe's series, if the probe ran and recorded it.
    pub fn probe_series(&self, probe: &str, series: &str) -> Option<&crate::probe::SeriesOut> {
        self.probes.get(probe)?.series.get(series)
    }
}

/// Host CPU during the run, sampled every `every_s` seconds (downsampled for long runs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostDoc {
    pub unavailable: Option<String>,
    pub every_s: f64,
    pub cores: usize,
    /// (seconds since the start, busy, others, steal, own cores); shares are fractions of
    /// all cores' time.
    pub points: Vec<[f64; 5]>,
}

/// Host CPU during one phase: means over the host samples inside it.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct PhaseHost {
    pub samples: usize,
    /// Share of all cores' time that was busy.
    pub busy_mean: f64,
    /// Share of all cores' time other processes used.
    pub others_mean: f64,
    pub others_max: f64,
    /// Share of all cores' time stolen by the hypervisor.
    pub steal_mean: f64,
    /// benchctl's own CPU, in cores.
    pub own_cores_mean: f64,
}

impl PhaseHost {
    /// How disturbed the generator was: other processes' share plus steal.
    pub fn disturbance(&self) -> f64 {
        self.others_mean + self.steal_mean
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: Option<String>,
    pub file: String,
    /// SHA-256 of every source file (root first, then imports), hex.
    pub sha256: String,
    pub seed: u64,
    pub params: BTreeMap<String, String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseDoc {
    pub name: String,
    pub role: PhaseRole,
    /// The repetition of the measured block the phase ran in (1-based; see `runs`).
    pub repetition: u64,
    /// Seconds from the start of the run.
    pub started_s: f64,
    pub duration_s: f64,
    /// `duration`, `condition: ...`, `requests`, `load shape ended`, `search finished`, `interrupted`.
    pub stopped_by: String,
    pub workloads: BTreeMap<String, WorkloadDoc>,
    pub search: Option<SearchOutcome>,
    pub pressure: Option<PressureReport>,
    /// Host CPU during the phase; null without host samples.
    pub host: Option<PhaseHost>,
}

impl PhaseDoc {
    /// A phase of totals alone (its timing unknown), for evaluating while a run goes on.
    pub fn of_totals(name: &str, role: PhaseRole, workloads: BTreeMap<String, WorkloadDoc>) -> PhaseDoc {
        PhaseDoc {
            name: name.to_string(),
            role,
            repetition: 1,
            started_s: 0.0,
            duration_s: 0.0,
            stopped_by: String::new(),
            workloads,
            search: None,
            pressure: None,
            host: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricDoc {
    /// Unit of every value in the summary.
    pub unit: String,
    #[serde(flatten)]
    pub summary: DistSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramDoc {
    /// Unit of the recorded integers: `ns`, or `milli-tok/s`.
    pub recorded_unit: String,
    pub encoding: String,
    pub data: String,
}

/// A workload's record: of one phase (with its 1-second windows), or of the whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadDoc {
    pub kind: String,
    pub duration_s: f64,
    /// Requests finished, successfully or not.
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub dropped: u64,
    /// Open loop: intended arrivals the generator never reached before the phase ended.
    pub unsent: u64,
    /// Open loop only (null for closed loops): intended arrivals = sent + dropped + unsent.
    pub intended: Option<u64>,
    /// Open loop only: requests the generator sent.
    pub sent: Option<u64>,
    /// Open loop only: of those, sent more than 1 ms after their intended time.
    pub late_sent: Option<u64>,
    /// Requests still in flight when the phase's drain gave up on them (sent, never
    /// recorded; a server may have worked on them).
    #[serde(default)]
    pub abandoned: u64,
    pub error_rate: f64,
    /// Successful requests per second.
    pub throughput: f64,
    /// Output tokens per second (system); null for a workload that produces no tokens.
    pub tok_s: Option<f64>,
    pub output_tokens: Option<u64>,
    pub input_tokens: Option<u64>,
    /// Where token counts come from; null without tokens.
    pub token_source: Option<String>,
    /// Seconds spent processing prompts (summed over requests); inference only.
    pub prefill_s: Option<f64>,
    /// Successful requests that met every SLO of the workload.
    pub good_requests: u64,
    /// The workload's declared per-request counters, each under its own name (a kernel's
    /// `launches`), for every workload of a kind that declares them. Read back, the numeric
    /// fields this version does not name land here too.
    #[serde(flatten, deserialize_with = "read::counts")]
    pub declared: BTreeMap<String, u64>,
    /// Facts about the workload's setup (model, batch-size table); whole-run records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<serde_json::Value>,
    /// The setup in the shape every report renders (rows, tables, measured values, derived
    /// metrics, checks); whole-run records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<crate::workload::Facts>,
    /// The inherited flat summary (whole-run records only); see docs/metrics.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<FlatSummary>,
    /// Whether every expectation on the workload passed (set when the result is evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meets_targets: Option<bool>,
    /// Each expectation on the workload, by name (set when the result is evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_scores: Option<BTreeMap<String, TargetScore>>,
    pub metrics: BTreeMap<String, MetricDoc>,
    pub histograms: BTreeMap<String, HistogramDoc>,
    #[serde(default)]
    pub series: Vec<WindowSummary>,
}

impl WorkloadDoc {
    /// The kind the record names, if this version knows it.
    pub fn kind(&self) -> Option<WorkloadKind> {
        WorkloadKind::from_name(&self.kind)
    }

    /// The summary of `metric`, if it has samples.
    pub fn metric(&self, metric: &str) -> Option<&DistSummary> {
        self.metrics.get(metric).map(|m| &m.summary)
    }

    /// The stored histogram of `metric`, decoded, if it has samples.
    pub fn histogram(&self, metric: &str) -> Option<hdrhistogram::Histogram<u64>> {
        let h = self.histograms.get(metric)?;
        crate::stats::decode(&h.data).ok().filter(|h| !h.is_empty())
    }

    /// The setup facts (empty when the record has none).
    pub fn facts(&self) -> crate::workload::Facts {
        self.facts.clone().unwrap_or_default()
    }
}

/// One expectation's outcome in a workload's `target_scores`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetScore {
    pub selector: String,
    pub measured: Option<f64>,
    pub measured_text: String,
    pub status: String,
    pub met: bool,
    pub score: f64,
}

/// The field names a script written for the original suite reads, in its units
/// (milliseconds, percent, megabytes); null where the workload has no such figure.
#[derive(Debug, Serialize, Deserialize, Clone, Default)]
pub struct FlatSummary {
    pub tokens_per_second: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// Share of inter-token gaps (latencies without tokens) above mean + 3 sigma, percent.
    pub spike_rate_percent: Option<f64>,
    /// Peak resident memory of benchctl's process during the run (process probe), MB.
    pub memory_peak_mb: Option<f64>,
    /// Energy counted during the workload's measured phases; null without an energy source
    /// (set by the evaluation, from the energy probe's series).
    pub energy_consumption_joules: Option<f64>,
    pub throughput_rps: f64,
    /// Whether every expectation on the workload passed (set by the evaluation).
    pub meets_targets: Option<bool>,
}

/// The gated statistics of one run (repetition), in base units (seconds, per second).
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct RunSummary {
    pub repetition: u64,
    /// When the result holding the run started (RFC 3339), so accumulated baselines say
    /// where each run came from.
    pub timestamp: String,
    /// `latency.p50`, `latency.p95`, `latency.p99`, `latency.mean` (and the same for ttft, itl,
    /// tpot), `throughput`, `tok_s`, per workload.
    pub workloads: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Spread of one statistic over the runs.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Spread {
    pub runs: usize,
    pub mean: f64,
    pub stddev: f64,
    /// stddev / mean.
    pub cv: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StressTest {
    pub workload: String,
    /// A rate search's capacity, requests/s (null for a concurrency search).
    pub max_sustainable_load: Option<f64>,
    pub stable_levels: Vec<f64>,
    /// The inherited name of `stable_levels` (set when the result is evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_concurrency_levels: Option<Vec<f64>>,
    pub levels: Vec<SearchStep>,
}

/// `2026-11-28T04:15:00Z` (UTC, second precision).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01T00:00:00Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(t(1_795_839_300), "2026-11-28T04:15:00Z");
    }
}
