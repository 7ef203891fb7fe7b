//! The result document: versioned JSON built from a run's outcome, written atomically
//! (temporary file, fsync, rename), so a crash or interrupt never leaves half a file.
//! Its JSON Schema is docs/result.schema.json.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::dsl::metrics::{workload_metrics, PerRequest};
use crate::dsl::model::{PhaseRole, WorkloadKind};
use crate::dsl::source::SourceMap;
use crate::dsl::validate::ValidScenario;
use crate::engine::events::Warning;
use crate::engine::executor::{RunOutcome, SearchOutcome, WorkloadFacts};
use crate::engine::pressure::PressureReport;
use crate::engine::record::{Metric, Recorded, WindowSummary};
use crate::plan::Plan;
use crate::probe::{ProbeResult, SystemInfo};
use crate::stats::{self, DistSummary};

/// Version of the result document; bumped on incompatible changes.
pub const RESULT_SCHEMA_VERSION: u32 = 2;
/// Largest result or baseline file read back (a long run with many workloads is a few MB).
pub const MAX_RESULT_BYTES: usize = 512 << 20;
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
    /// Per workload, over its measured phases (warmup and cooldown excluded), every
    /// repetition merged.
    pub benchmarks: BTreeMap<String, WorkloadDoc>,
    /// One entry per repetition of the measured phases (one for a run without `repeat`): the
    /// statistics a regression comparison tests, per workload. `baseline add` appends the
    /// runs of other results to a baseline's.
    pub runs: Vec<RunSummary>,
    /// Between-run spread of each statistic, when there is more than one run.
    pub repeat_spread: BTreeMap<String, BTreeMap<String, Spread>>,
    pub stress_test: Option<StressTest>,
    pub probes: BTreeMap<String, ProbeResult>,
    /// The load generator's self-check: host CPU during the run (see `phases[].host`).
    pub host: HostDoc,
    pub warnings: Vec<Warning>,
}

/// Host CPU during the run, sampled every `every_s` seconds (downsampled for long runs).
#[derive(Debug, Serialize)]
pub struct HostDoc {
    pub unavailable: Option<String>,
    pub every_s: f64,
    pub cores: usize,
    /// (seconds since the start, busy, others, steal, own cores); shares are fractions of
    /// all cores' time.
    pub points: Vec<[f64; 5]>,
}

/// Host CPU during one phase: means over the host samples inside it.
#[derive(Debug, Serialize, Clone, PartialEq)]
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

fn phase_host(r: &crate::engine::host::HostReport, start: f64, len: f64) -> Option<PhaseHost> {
    let inside: Vec<_> = r.samples.iter().filter(|s| s.t > start && s.t <= start + len + 1e-9).collect();
    if inside.is_empty() {
        return None;
    }
    let n = inside.len() as f64;
    let mean = |f: fn(&crate::engine::host::HostSample) -> f64| inside.iter().map(|s| f(s)).sum::<f64>() / n;
    Some(PhaseHost {
        samples: inside.len(),
        busy_mean: mean(|s| s.busy),
        others_mean: mean(|s| s.others),
        others_max: inside.iter().map(|s| s.others).fold(0.0, f64::max),
        steal_mean: mean(|s| s.steal),
        own_cores_mean: mean(|s| s.own_cores),
    })
}

fn host_doc(r: &crate::engine::host::HostReport) -> HostDoc {
    let mut points: Vec<[f64; 5]> = r.samples.iter().map(|s| [s.t, s.busy, s.others, s.steal, s.own_cores]).collect();
    while points.len() > 2000 {
        points = points
            .chunks(2)
            .map(|c| {
                let mut avg = [0.0; 5];
                for p in c {
                    for (a, v) in avg.iter_mut().zip(p) {
                        *a += v / c.len() as f64;
                    }
                }
                avg
            })
            .collect();
    }
    HostDoc { unavailable: r.unavailable.clone(), every_s: r.every_s, cores: r.cores, points }
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
    pub error_rate: f64,
    /// Successful requests per second.
    pub throughput: f64,
    /// Output tokens per second (system); null for a workload that produces no tokens.
    pub tok_s: Option<f64>,
    pub output_tokens: Option<u64>,
    pub input_tokens: Option<u64>,
    /// Where token counts come from; null without tokens.
    pub token_source: Option<&'static str>,
    /// Seconds spent processing prompts (summed over requests); inference only.
    pub prefill_s: Option<f64>,
    /// Successful requests that met every SLO of the workload.
    pub good_requests: u64,
    /// The workload's declared per-request counters, each under its own name (a kernel's
    /// `launches`), for every workload of a kind that declares them.
    #[serde(flatten)]
    pub declared: BTreeMap<&'static str, u64>,
    /// Facts about the workload's setup (model, batch-size table); whole-run records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<serde_json::Value>,
    /// The setup in the shape every report renders (rows, tables, measured values, derived
    /// metrics, checks); whole-run records only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<crate::workload::Facts>,
    /// The inherited flat summary (whole-run records only); see docs/metrics.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<FlatSummary>,
    pub metrics: BTreeMap<String, MetricDoc>,
    pub histograms: BTreeMap<String, HistogramDoc>,
    pub series: Vec<WindowSummary>,
}

/// The field names a script written for the original suite reads, in its units
/// (milliseconds, percent, megabytes); null where the workload has no such figure.
#[derive(Debug, Serialize, Clone, Default)]
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
#[derive(Debug, Serialize, Clone)]
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
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Spread {
    pub runs: usize,
    pub mean: f64,
    pub stddev: f64,
    /// stddev / mean.
    pub cv: f64,
    pub min: f64,
    pub max: f64,
}

/// The statistics a comparison gates on, of one record.
pub fn run_stats(kind: WorkloadKind, r: &Recorded) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for m in [Metric::Latency, Metric::Ttft, Metric::Itl, Metric::Tpot] {
        let h = r.hists.get(m);
        if h.is_empty() {
            continue;
        }
        for (agg, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
            out.insert(format!("{}.{agg}", m.name()), h.value_at_quantile(q) as f64 / m.scale());
        }
        out.insert(format!("{}.mean", m.name()), h.mean() / m.scale());
    }
    let secs = r.elapsed.as_secs_f64();
    if secs > 0.0 {
        out.insert("throughput".into(), (r.counters.requests - r.counters.errors) as f64 / secs);
        if applies(kind, &r.counters).0 {
            out.insert("tok_s".into(), r.counters.output_tokens as f64 / secs);
        }
    }
    out
}

fn runs(outcome: &RunOutcome, timestamp: &str) -> Vec<RunSummary> {
    let reps = outcome.phases.iter().filter(|p| p.role == PhaseRole::Measure).map(|p| p.repetition).max().unwrap_or(1);
    (1..=reps)
        .map(|rep| {
            let mut merged: BTreeMap<String, (WorkloadKind, Recorded)> = BTreeMap::new();
            for p in outcome.phases.iter().filter(|p| p.role == PhaseRole::Measure && p.repetition == rep) {
                for w in &p.workloads {
                    let (_, acc) = merged.entry(w.name.clone()).or_insert_with(|| (w.kind, Recorded::default()));
                    acc.add_totals(&w.recorded);
                }
            }
            RunSummary {
                repetition: rep,
                timestamp: timestamp.to_string(),
                workloads: merged.into_iter().map(|(n, (k, r))| (n, run_stats(k, &r))).collect(),
            }
        })
        .collect()
}

/// Mean, standard deviation and range of each statistic over the runs (more than one).
pub fn spread(runs: &[RunSummary]) -> BTreeMap<String, BTreeMap<String, Spread>> {
    let mut out: BTreeMap<String, BTreeMap<String, Spread>> = BTreeMap::new();
    if runs.len() < 2 {
        return out;
    }
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in runs {
        for (w, stats) in &r.workloads {
            for (k, v) in stats {
                values.entry((w.clone(), k.clone())).or_default().push(*v);
            }
        }
    }
    for ((w, k), v) in values.into_iter().filter(|(_, v)| v.len() >= 2) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let s = Spread {
            runs: v.len(),
            mean,
            stddev: sd,
            cv: if mean != 0.0 { sd / mean.abs() } else { 0.0 },
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        out.entry(w).or_default().insert(k, s);
    }
    out
}

#[derive(Debug, Serialize)]
pub struct StressTest {
    pub workload: String,
    /// Highest stable rate found by the breaking-point search, requests/s.
    pub max_sustainable_load: Option<f64>,
    pub stable_levels: Vec<f64>,
    pub levels: Vec<crate::engine::executor::SearchLevel>,
}

/// Whether a kind's requests carry tokens and prompts: the fields its metric catalogue
/// names (a synthetic workload streams tokens when it has any).
fn applies(kind: WorkloadKind, c: &crate::engine::record::Counters) -> (bool, bool) {
    let names = workload_metrics(kind, c.output_tokens > 0);
    let has = |n: &str| names.iter().any(|m| m.name == n);
    (has("output_tokens"), has("prefill_tok_s"))
}

pub(crate) fn workload_doc(
    kind: WorkloadKind,
    r: &Recorded,
    series: bool,
    facts: Option<&WorkloadFacts>,
) -> WorkloadDoc {
    let secs = r.elapsed.as_secs_f64();
    let c = &r.counters;
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut metrics = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for m in r.hists.all() {
        if m.hist.is_empty() {
            continue;
        }
        metrics.insert(
            m.name.to_string(),
            MetricDoc { unit: m.unit, summary: stats::summarize(m.hist, SUMMARY_K, m.scale) },
        );
        histograms.insert(
            m.name.to_string(),
            HistogramDoc {
                recorded_unit: m.recorded_unit,
                encoding: "hdrhistogram-v2+base64",
                data: stats::encode(m.hist),
            },
        );
    }
    let (tokens, prompts) = applies(kind, c);
    let declared = workload_metrics(kind, tokens)
        .into_iter()
        .filter(|m| m.per_request == Some(PerRequest::Sum))
        .map(|m| (m.name, c.declared.get(m.name).copied().unwrap_or(0)))
        .collect();
    let open_loop = c.sent > 0 || c.dropped > 0 || c.unsent > 0;
    WorkloadDoc {
        kind: kind.as_str().to_string(),
        duration_s: secs,
        requests: c.requests,
        errors: c.errors,
        errors_by_kind: c.errors_by_kind.clone(),
        dropped: c.dropped,
        unsent: c.unsent,
        intended: open_loop.then_some(c.sent + c.dropped + c.unsent),
        sent: open_loop.then_some(c.sent),
        late_sent: open_loop.then_some(c.late_sent),
        error_rate: if c.requests > 0 { c.errors as f64 / c.requests as f64 } else { 0.0 },
        throughput: per_sec(c.requests - c.errors),
        tok_s: tokens.then(|| per_sec(c.output_tokens)),
        output_tokens: tokens.then_some(c.output_tokens),
        input_tokens: (tokens || prompts).then_some(c.input_tokens),
        token_source: tokens
            .then(|| facts.map_or("synthetic token stream (counted per emitted token)", |f| f.token_source)),
        prefill_s: prompts.then(|| c.prefill_ns as f64 / 1e9),
        good_requests: c.good,
        declared,
        setup: if series { None } else { facts.and_then(|f| f.setup.clone()) },
        facts: if series { None } else { facts.map(|f| f.facts.clone()) },
        summary: None,
        metrics,
        histograms,
        series: if series { r.series.clone() } else { vec![] },
    }
}

/// The inherited flat summary of a whole-run workload record.
pub(crate) fn flat_summary(w: &WorkloadDoc, memory_peak_mb: Option<f64>) -> FlatSummary {
    let ms = |q: fn(&DistSummary) -> f64| w.metrics.get("latency").map(|m| q(&m.summary) * 1e3);
    let spikes = w.metrics.get("itl").or_else(|| w.metrics.get("latency"));
    FlatSummary {
        tokens_per_second: w.tok_s,
        p50_ms: ms(|s| s.p50),
        p95_ms: ms(|s| s.p95),
        p99_ms: ms(|s| s.p99),
        p999_ms: ms(|s| s.p999),
        spike_rate_percent: spikes.map(|m| m.summary.spike_rate.share * 100.0),
        memory_peak_mb,
        energy_consumption_joules: None,
        throughput_rps: w.throughput,
        meets_targets: None,
    }
}

/// SHA-256 (hex) of every source file's text, root first.
pub fn sources_sha256(sources: &SourceMap) -> String {
    sha256_hex(sources)
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
            repetition: p.repetition,
            started_s: p.started_s,
            duration_s: p.duration_s,
            stopped_by: p.stopped_by.clone(),
            workloads: p
                .workloads
                .iter()
                .map(|w| (w.name.clone(), workload_doc(w.kind, &w.recorded, true, outcome.workload_facts.get(&w.name))))
                .collect(),
            search: p.search.clone(),
            pressure: p.pressure.clone(),
            host: phase_host(&outcome.host, p.started_s, p.duration_s),
        })
        .collect();
    let mut benchmarks = benchmarks(outcome);
    let memory_peak_mb = outcome
        .probes
        .iter()
        .find(|p| p.kind == crate::dsl::model::ProbeKind::Process)
        .and_then(|p| p.series.get("rss"))
        .filter(|s| s.summary.samples > 0)
        .map(|s| s.summary.peak / 1e6);
    for w in benchmarks.values_mut() {
        w.summary = Some(flat_summary(w, memory_peak_mb));
    }
    let timestamp = rfc3339(outcome.started);
    let runs = runs(outcome, &timestamp);
    ResultDoc {
        repeat_spread: spread(&runs),
        runs,
        schema_version: RESULT_SCHEMA_VERSION,
        benchctl_version: env!("CARGO_PKG_VERSION"),
        timestamp,
        status: if outcome.interrupted {
            "interrupted"
        } else if outcome.limited {
            "limited"
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
        benchmarks,
        stress_test: stress_test(outcome),
        probes: outcome.probes.iter().map(|p| (p.kind.to_string(), p.clone())).collect(),
        host: host_doc(&outcome.host),
        warnings: outcome
            .warnings
            .iter()
            .cloned()
            .chain(
                outcome.aborted_by.iter().map(|a| {
                    Warning::new("aborted", format!("the run was aborted early: `{a}` failed (abort-on-fail)"))
                }),
            )
            .collect(),
    }
}

/// Per workload, the measured phases merged (histograms add losslessly).
fn benchmarks(outcome: &RunOutcome) -> BTreeMap<String, WorkloadDoc> {
    let mut merged: BTreeMap<String, (WorkloadKind, Recorded)> = BTreeMap::new();
    for p in outcome.phases.iter().filter(|p| p.role == PhaseRole::Measure) {
        for w in &p.workloads {
            let (_, acc) = merged.entry(w.name.clone()).or_insert_with(|| (w.kind, Recorded::default()));
            acc.add_totals(&w.recorded);
        }
    }
    for (name, f) in &outcome.workload_facts {
        if let Some(kind) = f.skipped_kind {
            merged.entry(name.clone()).or_insert_with(|| (kind, Recorded::default()));
        }
    }
    merged
        .into_iter()
        .map(|(name, (kind, r))| {
            let facts = outcome.workload_facts.get(&name);
            (name, workload_doc(kind, &r, false, facts))
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

/// Checks a result document read back from disk: a known status, and every stored histogram
/// decodes (a corrupted one would otherwise read as "no data" and let a gate pass on
/// nothing). The error names the first damaged place.
pub fn verify(doc: &serde_json::Value) -> Result<(), Damage> {
    let status = doc["status"].as_str().unwrap_or("");
    if !matches!(status, "completed" | "interrupted" | "limited" | "aborted") {
        return Err(Damage::Status(doc["status"].to_string()));
    }
    let records =
        doc["benchmarks"].as_object().into_iter().flatten().map(|(w, r)| (format!("benchmarks.{w}"), r)).chain(
            doc["phases"].as_array().into_iter().flatten().enumerate().flat_map(|(i, p)| {
                p["workloads"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(w, r)| (format!("phases[{i}].workloads.{w}"), r))
            }),
        );
    for (at, r) in records {
        for (metric, h) in r["histograms"].as_object().into_iter().flatten() {
            let place = || format!("{at}.histograms.{metric}");
            let data = h["data"].as_str().ok_or_else(|| Damage::Histogram { place: place(), problem: None })?;
            stats::decode(data).map_err(|e| Damage::Histogram { place: place(), problem: Some(e.to_string()) })?;
        }
    }
    Ok(())
}

/// What is wrong with a result document read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    /// `status` is not one a run writes (the JSON text of what is there).
    Status(String),
    /// A stored histogram has no data, or its data does not decode (`problem`).
    Histogram { place: String, problem: Option<String> },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Status(s) => write!(f, "`status` is {s}, not completed, interrupted, limited or aborted"),
            Damage::Histogram { place, problem: None } => write!(f, "{place} has no data"),
            Damage::Histogram { place, problem: Some(p) } => write!(f, "{place}: {p}"),
        }
    }
}

impl std::error::Error for Damage {}

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
