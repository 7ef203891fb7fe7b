//! The result document: versioned JSON built from a run's outcome, written atomically
//! (temporary file, fsync, rename), so a crash or interrupt never leaves half a file.
//! Its JSON Schema is docs/result.schema.json.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::dsl::model::PhaseRole;
use crate::dsl::source::SourceMap;
use crate::dsl::validate::ValidScenario;
use crate::engine::pressure::PressureReport;
use crate::engine::probe::{ProbeResult, SystemInfo};
use crate::engine::record::{Metric, Recorded, WindowSummary};
use crate::engine::run::{RunOutcome, SearchOutcome, WorkloadFacts};
use crate::plan::Plan;
use crate::stats::{self, DistSummary};

/// Version of the result document; bumped on incompatible changes.
pub const RESULT_SCHEMA_VERSION: u32 = 1;
/// Spike-rate k used in summaries (expectations may ask for another).
pub const SUMMARY_K: f64 = 3.0;

#[derive(Debug, Serialize)]
pub struct ResultDoc {
    pub schema_version: u32,
    pub benchctl_version: &'static str,
    /// When the run started, RFC 3339 in UTC.
    pub timestamp: String,
    /// `completed`; `interrupted` (a partial result: what was measured until SIGINT/SIGTERM);
    /// `aborted` (an `abort-on-fail` expectation failed during the run; see `warnings`).
    pub status: &'static str,
    pub duration_s: f64,
    pub scenario: ScenarioInfo,
    /// The resolved plan the run executed.
    pub config: serde_json::Value,
    pub system_info: SystemInfo,
    pub phases: Vec<PhaseDoc>,
    /// Per workload, over its measured phases (warmup and cooldown excluded).
    pub benchmarks: BTreeMap<String, WorkloadDoc>,
    pub stress_test: Option<StressTest>,
    pub probes: BTreeMap<String, ProbeResult>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
pub struct PhaseDoc {
    pub name: String,
    pub role: PhaseRole,
    /// Seconds from the start of the run.
    pub started_s: f64,
    pub duration_s: f64,
    /// `duration`, `condition: ...`, `requests`, `load shape ended`, `search finished`, `interrupted`.
    pub stopped_by: String,
    pub workloads: BTreeMap<String, WorkloadDoc>,
    pub search: Option<SearchOutcome>,
    pub pressure: Option<PressureReport>,
}

#[derive(Debug, Serialize)]
pub struct MetricDoc {
    /// Unit of every value in the summary.
    pub unit: &'static str,
    #[serde(flatten)]
    pub summary: DistSummary,
}

#[derive(Debug, Serialize)]
pub struct HistogramDoc {
    /// Unit of the recorded integers: `ns`, or `milli-tok/s`.
    pub recorded_unit: &'static str,
    pub encoding: &'static str,
    pub data: String,
}

#[derive(Debug, Serialize)]
pub struct WorkloadDoc {
    pub kind: String,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub dropped: u64,
    pub error_rate: f64,
    /// Successful requests per second.
    pub throughput: f64,
    /// Output tokens per second (system).
    pub tok_s: f64,
    pub output_tokens: u64,
    pub input_tokens: u64,
    /// Where token counts come from.
    pub token_source: &'static str,
    /// Seconds spent processing prompts (summed over requests; 0 when not reported).
    pub prefill_s: f64,
    /// Successful requests that met every SLO of the workload.
    pub good_requests: u64,
    /// Kernel launches timed (kernel workloads).
    pub launches: u64,
    /// Facts about the workload's setup (model, batch-size table); whole-run records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<serde_json::Value>,
    pub metrics: BTreeMap<String, MetricDoc>,
    pub histograms: BTreeMap<String, HistogramDoc>,
    pub series: Vec<WindowSummary>,
}

#[derive(Debug, Serialize)]
pub struct StressTest {
    pub workload: String,
    /// Highest stable rate found by the breaking-point search, requests/s.
    pub max_sustainable_load: Option<f64>,
    pub stable_levels: Vec<f64>,
    pub levels: Vec<crate::engine::run::SearchLevel>,
}

fn workload_doc(kind: &str, r: &Recorded, series: bool, facts: Option<&WorkloadFacts>) -> WorkloadDoc {
    let secs = r.elapsed.as_secs_f64();
    let c = &r.counters;
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut metrics = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for m in Metric::ALL {
        let h = r.hists.get(m);
        if h.is_empty() {
            continue;
        }
        metrics.insert(
            m.name().to_string(),
            MetricDoc { unit: m.unit(), summary: stats::summarize(h, SUMMARY_K, m.scale()) },
        );
        let recorded_unit = match m {
            Metric::RequestTokS => "milli-tok/s",
            Metric::Recall => "1e-3",
            _ => "ns",
        };
        histograms.insert(
            m.name().to_string(),
            HistogramDoc { recorded_unit, encoding: "hdrhistogram-v2+base64", data: stats::encode(h) },
        );
    }
    WorkloadDoc {
        kind: kind.to_string(),
        duration_s: secs,
        requests: c.requests,
        errors: c.errors,
        errors_by_kind: c.errors_by_kind.clone(),
        dropped: c.dropped,
        error_rate: if c.requests > 0 { c.errors as f64 / c.requests as f64 } else { 0.0 },
        throughput: per_sec(c.requests - c.errors),
        tok_s: per_sec(c.output_tokens),
        output_tokens: c.output_tokens,
        input_tokens: c.input_tokens,
        token_source: facts.map_or("synthetic token stream (counted per emitted token)", |f| f.token_source),
        prefill_s: c.prefill_ns as f64 / 1e9,
        good_requests: c.good,
        launches: c.launches,
        setup: if series { None } else { facts.and_then(|f| f.setup.clone()) },
        metrics,
        histograms,
        series: if series { r.series.clone() } else { vec![] },
    }
}

fn sha256_hex(sources: &SourceMap) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for (_, f) in sources.files() {
        h.update(f.text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn build(
    outcome: &RunOutcome,
    valid: &ValidScenario,
    plan: &Plan,
    sources: &SourceMap,
    system_info: SystemInfo,
) -> ResultDoc {
    let sc = &valid.scenario;
    let phases: Vec<PhaseDoc> = outcome
        .phases
        .iter()
        .map(|p| PhaseDoc {
            name: p.name.clone(),
            role: p.role,
            started_s: p.started_s,
            duration_s: p.duration_s,
            stopped_by: p.stopped_by.clone(),
            workloads: p
                .workloads
                .iter()
                .map(|w| {
                    (
                        w.name.clone(),
                        workload_doc(w.kind.as_str(), &w.recorded, true, outcome.workload_facts.get(&w.name)),
                    )
                })
                .collect(),
            search: p.search.clone(),
            pressure: p.pressure.clone(),
        })
        .collect();
    ResultDoc {
        schema_version: RESULT_SCHEMA_VERSION,
        benchctl_version: env!("CARGO_PKG_VERSION"),
        timestamp: rfc3339(outcome.started),
        status: if outcome.interrupted {
            "interrupted"
        } else if outcome.aborted_by.is_some() {
            "aborted"
        } else {
            "completed"
        },
        duration_s: outcome.duration.as_secs_f64(),
        scenario: ScenarioInfo {
            name: sc.name.value.clone(),
            description: sc.description.as_ref().map(|d| d.value.clone()),
            file: sources.files().next().map(|(_, f)| f.name.clone()).unwrap_or_default(),
            sha256: sha256_hex(sources),
            seed: plan.seed,
            params: plan.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect(),
            tags: plan.tags.clone(),
        },
        config: serde_json::to_value(plan).unwrap_or(serde_json::Value::Null),
        system_info,
        phases,
        benchmarks: benchmarks(outcome),
        stress_test: stress_test(outcome),
        probes: outcome.probes.iter().map(|p| (p.kind.to_string(), p.clone())).collect(),
        warnings: outcome
            .warnings
            .iter()
            .cloned()
            .chain(
                outcome.aborted_by.iter().map(|a| format!("the run was aborted early: `{a}` failed (abort-on-fail)")),
            )
            .collect(),
    }
}

/// Per workload, the measured phases merged (histograms add losslessly).
fn benchmarks(outcome: &RunOutcome) -> BTreeMap<String, WorkloadDoc> {
    let mut merged: BTreeMap<String, (String, Recorded)> = BTreeMap::new();
    for p in outcome.phases.iter().filter(|p| p.role == PhaseRole::Measure) {
        for w in &p.workloads {
            let (_, acc) =
                merged.entry(w.name.clone()).or_insert_with(|| (w.kind.as_str().to_string(), Recorded::default()));
            acc.add_totals(&w.recorded);
        }
    }
    for (name, f) in &outcome.workload_facts {
        if let Some(kind) = f.skipped_kind {
            merged.entry(name.clone()).or_insert_with(|| (kind.as_str().to_string(), Recorded::default()));
        }
    }
    merged
        .into_iter()
        .map(|(name, (kind, r))| {
            let facts = outcome.workload_facts.get(&name);
            (name, workload_doc(&kind, &r, false, facts))
        })
        .collect()
}

fn stress_test(outcome: &RunOutcome) -> Option<StressTest> {
    let s = outcome.phases.iter().rev().find_map(|p| p.search.as_ref())?;
    Some(StressTest {
        workload: s.workload.clone(),
        max_sustainable_load: s.max_sustainable_rate,
        stable_levels: s.levels.iter().filter(|l| l.stable).map(|l| l.rate).collect(),
        levels: s.levels.clone(),
    })
}

/// A workload's histogram of `metric` from a result document (a `WorkloadDoc` as JSON), if
/// it has samples.
pub fn histogram(workload: &serde_json::Value, metric: &str) -> Option<hdrhistogram::Histogram<u64>> {
    let data = workload.pointer(&format!("/histograms/{metric}/data"))?.as_str()?;
    stats::decode(data).ok().filter(|h| !h.is_empty())
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

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to
/// disk, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "result".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/result.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1, "no temporary files left");
    }
}
