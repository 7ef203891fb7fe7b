//! Building the result document from a run's outcome: whole-run records merged from the
//! measured phases (histograms add losslessly), per-repetition statistics, host CPU.

use std::collections::BTreeMap;

use super::*;
use crate::dsl::metrics::{self, workload_metrics, MetricDef, PerRequest};
use crate::dsl::source::SourceMap;
use crate::dsl::validate::ValidScenario;
use crate::engine::executor::{RunOutcome, WorkloadFacts};
use crate::measure::record::{Counters, Hists, Metric, Recorded};
use crate::plan::Plan;
use crate::stats;

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

/// Whether a kind's requests carry tokens and prompts: the fields its metric catalogue
/// names (a synthetic workload streams tokens when it has any).
fn applies(kind: WorkloadKind, c: &crate::measure::record::Counters) -> (bool, bool) {
    let names = workload_metrics(kind, c.output_tokens > 0);
    let has = |n: &str| names.iter().any(|m| m.name == n);
    (has("output_tokens"), has("prefill_tok_s"))
}

pub fn workload_doc(kind: WorkloadKind, r: &Recorded, series: bool, facts: Option<&WorkloadFacts>) -> WorkloadDoc {
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
            MetricDoc { unit: m.unit.to_string(), summary: stats::summarize(m.hist, SUMMARY_K, m.scale) },
        );
        histograms.insert(
            m.name.to_string(),
            HistogramDoc {
                recorded_unit: m.recorded_unit.to_string(),
                encoding: HISTOGRAM_ENCODING.to_string(),
                data: stats::encode(m.hist),
            },
        );
    }
    let (tokens, prompts) = applies(kind, c);
    let declared = workload_metrics(kind, tokens)
        .into_iter()
        .filter(|m| m.per_request == Some(PerRequest::Sum))
        .map(|m| (m.name.to_string(), c.declared.get(m.name).copied().unwrap_or(0)))
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
        abandoned: c.abandoned,
        error_rate: if c.requests > 0 { c.errors as f64 / c.requests as f64 } else { 0.0 },
        throughput: per_sec(c.requests - c.errors),
        tok_s: tokens.then(|| per_sec(c.output_tokens)),
        output_tokens: tokens.then_some(c.output_tokens),
        input_tokens: (tokens || prompts).then_some(c.input_tokens),
        token_source: tokens.then(|| {
            facts.map_or("synthetic token stream (counted per emitted token)", |f| f.token_source).to_string()
        }),
        prefill_s: prompts.then(|| c.prefill_ns as f64 / 1e9),
        good_requests: c.good,
        declared,
        setup: if series { None } else { facts.and_then(|f| f.setup.clone()) },
        facts: if series { None } else { facts.map(|f| f.facts.clone()) },
        summary: None,
        meets_targets: None,
        target_scores: None,
        metrics,
        histograms,
        series: if series { r.series.clone() } else { vec![] },
    }
}

/// The inherited flat summary of a whole-run workload record.
pub fn flat_summary(w: &WorkloadDoc, memory_peak_mb: Option<f64>) -> FlatSummary {
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
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for (_, f) in sources.files() {
        h.update(f.text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The result document of a run.
pub fn build(
    outcome: &RunOutcome,
    valid: &ValidScenario,
    plan: &Plan,
    sources: &SourceMap,
    system_info: SystemInfo,
) -> ResultDoc {
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
    let aborted = outcome
        .aborted_by
        .iter()
        .map(|a| Warning::new("aborted", format!("the run was aborted early: `{a}` failed (abort-on-fail)")));
    ResultDoc {
        repeat_spread: spread(&runs),
        runs,
        schema_version: RESULT_SCHEMA_VERSION,
        benchctl_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp,
        status: status(outcome),
        duration_s: outcome.duration.as_secs_f64(),
        scenario: scenario_info(valid, plan, sources),
        config: ConfigDoc::of(plan),
        system_info,
        phases: outcome.phases.iter().map(|p| phase_doc(outcome, p)).collect(),
        benchmarks,
        capacity: outcome.phases.iter().rev().find_map(|p| p.search.clone()),
        stress_test: stress_test(outcome),
        probes: outcome.probes.iter().map(|p| (p.kind.to_string(), p.clone())).collect(),
        servers: outcome.servers.clone(),
        host: host_doc(&outcome.host),
        shard: None,
        fleet: None,
        merge: None,
        comparison: None,
        dashboard: None,
        warnings: outcome.warnings.iter().cloned().chain(aborted).collect(),
    }
}

/// How the run ended: an interruption first, then the run-limit, then an abort.
fn status(outcome: &RunOutcome) -> RunStatus {
    if outcome.interrupted {
        RunStatus::Interrupted
    } else if outcome.limited {
        RunStatus::Limited
    } else if outcome.aborted_by.is_some() {
        RunStatus::Aborted
    } else {
        RunStatus::Completed
    }
}

/// What was run: the scenario, its sources' hash, seed, parameters and tags.
fn scenario_info(valid: &ValidScenario, plan: &Plan, sources: &SourceMap) -> ScenarioInfo {
    let sc = &valid.scenario;
    ScenarioInfo {
        name: sc.name.value.clone(),
        description: sc.description.as_ref().map(|d| d.value.clone()),
        file: sources.files().next().map(|(_, f)| f.name.clone()).unwrap_or_default(),
        sha256: sources_sha256(sources),
        seed: plan.seed,
        params: plan.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect(),
        tags: plan.tags.clone(),
    }
}

/// One phase as it ran, with its workloads' records and 1-second windows.
fn phase_doc(outcome: &RunOutcome, p: &crate::engine::executor::PhaseOutcome) -> PhaseDoc {
    let facts = |w: &str| outcome.workload_facts.get(w);
    PhaseDoc {
        name: p.name.clone(),
        role: p.role,
        repetition: p.repetition,
        started_s: p.started_s,
        duration_s: p.duration_s,
        stopped_by: p.stopped_by.clone(),
        workloads: p
            .workloads
            .iter()
            .map(|w| (w.name.clone(), workload_doc(w.kind, &w.recorded, true, facts(&w.name))))
            .collect(),
        search: p.search.clone(),
        pressure: p.pressure.clone(),
        host: phase_host(&outcome.host, p.started_s, p.duration_s),
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
        stable_levels: s.steps.iter().filter(|l| l.stable).map(|l| l.load).collect(),
        stable_concurrency_levels: None,
        levels: s.steps.clone(),
    })
}

impl WorkloadDoc {
    /// Histograms, counters and seconds of the record, as the engine recorded them; the
    /// kind's declared measures are read by their catalogue entries.
    pub fn record(&self) -> (Hists, Counters, f64) {
        let w = self;
        let mut h = Hists::default();
        for m in Metric::ALL {
            if let Some(hist) = w.histogram(m.name()) {
                h.set(m, hist);
            }
        }
        for def in w.declared_defs() {
            if !matches!(def.per_request, Some(PerRequest::Sum)) {
                if let Some(hist) = w.histogram(def.name) {
                    h.set_declared(def, hist);
                }
            }
        }
        (h, w.counters(), w.duration_s)
    }

    /// The per-request measures the record's kind declares.
    pub fn declared_defs(&self) -> Vec<&'static MetricDef> {
        self.kind()
            .map(|k| metrics::workload_metrics(k, true).into_iter().filter(|m| m.per_request.is_some()).collect())
            .unwrap_or_default()
    }

    /// The record's counters (the declared sums among them).
    pub fn counters(&self) -> Counters {
        let w = self;
        let mut sums = std::collections::BTreeMap::new();
        for def in w.declared_defs() {
            if matches!(def.per_request, Some(PerRequest::Sum)) {
                if let Some(n) = w.declared.get(def.name) {
                    sums.insert(def.name, *n);
                }
            }
        }
        Counters {
            requests: w.requests,
            errors: w.errors,
            errors_by_kind: w.errors_by_kind.clone(),
            dropped: w.dropped,
            unsent: w.unsent,
            sent: w.sent.unwrap_or(0),
            late_sent: w.late_sent.unwrap_or(0),
            abandoned: w.abandoned,
            output_tokens: w.output_tokens.unwrap_or(0),
            input_tokens: w.input_tokens.unwrap_or(0),
            prefill_ns: (w.prefill_s.unwrap_or(0.0) * 1e9) as u64,
            good: w.good_requests,
            declared: sums,
        }
    }
}
