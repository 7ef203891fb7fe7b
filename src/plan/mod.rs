//! Stage 5, plan: the resolved timeline of a validated scenario. No KDL types remain; each
//! element keeps an [`Origin`] (file, line, column) so later messages can point at the source.

pub mod estimate;
mod render;
pub mod run;
pub mod setup;

pub use render::{about, render_text};
pub use run::{PressureSpec, SearchSpec, StopCondition};

use serde::Serialize;

use crate::dsl::model::*;
use crate::dsl::source::SourceMap;
use crate::dsl::span::Span;
use crate::dsl::units::Duration;
use crate::dsl::validate::{Bound, ValidScenario};

/// Version of the plan's JSON form; bumped on incompatible changes.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// Where an element was written: for messages after the KDL is gone.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Origin {
    fn of(sources: &SourceMap, span: Span) -> Origin {
        let (line, column) = sources.line_col(span.file, span.start);
        Origin { file: sources.get(span.file).name.clone(), line, column }
    }
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub scenario: String,
    pub description: Option<String>,
    pub seed: u64,
    pub device: String,
    pub tags: Vec<String>,
    pub params: Vec<PlannedParam>,
    pub workloads: Vec<PlannedWorkload>,
    pub phases: Vec<PlannedPhase>,
    pub probes: Vec<PlannedProbe>,
    /// Model servers whose Prometheus metrics are scraped during the run (the `server`
    /// subject), one per workload that scrapes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrapes: Vec<PlannedScrape>,
    pub expectations: Vec<PlannedExpectation>,
    /// Shortest possible run (sum of known phase lengths).
    pub min_duration: Duration,
    /// Longest possible run; `None` when a phase ends only on a condition.
    pub max_duration: Option<Duration>,
    pub run_limit: Option<Duration>,
    /// Setup before the first phase (model loads, index builds, ground truth, sweeps),
    /// estimated per step.
    pub setup: Vec<setup::SetupStep>,
    /// The total of the setup steps that could be estimated.
    pub setup_s: f64,
    /// Whether every setup step could be estimated (else `setup_s` is a lower bound).
    pub setup_complete: bool,
    /// Times the measured phases run (a scenario's `repeat`, or `run --repeat`).
    pub repeat: u64,
    /// `warn` or `invalid`: what a host or load-generator finding does to the verdict.
    pub host_quiet: crate::dsl::model::HostQuiet,
    pub baseline: Option<PlannedBaseline>,
    pub outputs: PlannedOutputs,
    /// The sample needs of the percentile bounds, estimated again after a warmup. Made
    /// from the whole scenario: a shard's part does not change them (the evaluation counts
    /// every shard's samples).
    #[serde(skip)]
    pub sample_needs: Vec<estimate::SampleNeed>,
}

#[derive(Debug, Serialize)]
pub struct PlannedParam {
    pub name: String,
    pub value: String,
    pub origin: Origin,
}

#[derive(Debug, Serialize)]
pub struct PlannedWorkload {
    pub name: String,
    pub kind: WorkloadKind,
    pub device: String,
    /// One-line description of what the workload does.
    pub summary: String,
    pub origin: Origin,
}

#[derive(Debug, Serialize)]
pub struct PlannedDrive {
    pub workload: String,
    pub shape: LoadShape,
    pub summary: String,
    /// Expected number of requests, when it can be known before running.
    pub expected_requests: Option<u64>,
    /// How the estimate was made, or why there is none.
    pub estimate: String,
    pub max_in_flight: Option<u64>,
    pub requests: Option<u64>,
    /// Seed of this drive's arrival process (derived from the scenario seed).
    pub seed: u64,
    pub origin: Origin,
}

#[derive(Debug, Serialize)]
pub struct PlannedSearch {
    pub workload: String,
    pub summary: String,
    /// The bounds every load must meet, as written (`until` conditions turned around).
    pub slos: Vec<String>,
    pub origin: Origin,
    /// The search, resolved (`summary` and `slos` above describe it).
    #[serde(skip)]
    pub spec: SearchSpec,
}

#[derive(Debug, Serialize)]
pub struct PlannedPhase {
    pub name: String,
    pub role: PhaseRole,
    pub start: Duration,
    /// The latest start, when an earlier phase has a variable length; `None` if unbounded.
    pub latest_start: Option<Duration>,
    pub min_duration: Duration,
    pub max_duration: Option<Duration>,
    pub until: Vec<String>,
    pub drives: Vec<PlannedDrive>,
    pub pressure: Option<String>,
    pub search: Option<PlannedSearch>,
    pub origin: Origin,
    /// The declared `duration`, which the engine runs the phase to (an `until`, a request
    /// cap or the drives' own end may stop it earlier).
    #[serde(skip)]
    pub length: Option<Duration>,
    /// The `until` conditions, resolved (`until` above shows them as written).
    #[serde(skip)]
    pub stop_when: Vec<StopCondition>,
    /// The pressure, resolved (`pressure` above describes it).
    #[serde(skip)]
    pub pressure_spec: Option<PressureSpec>,
}

#[derive(Debug, Serialize)]
pub struct PlannedProbe {
    pub kind: ProbeKind,
    pub every: Duration,
    /// Added because an expectation names it.
    pub implied: bool,
}

/// A model server's metrics endpoint, scraped every `every` and at each phase's start and end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedScrape {
    pub workload: String,
    pub url: String,
    pub every: Duration,
    /// The environment variable whose value is sent as a bearer token (never its value).
    pub api_key_env: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PlannedExpectation {
    pub name: String,
    pub selector: String,
    pub bound: Bound,
    pub text: String,
    pub phase: Option<String>,
    pub severity: ExpectSeverity,
    pub weight: f64,
    pub window: Option<Duration>,
    pub windows_share: Option<f64>,
    pub abort_on_fail: bool,
    pub on_missing: OnMissing,
    pub spike_k: Option<f64>,
    /// Confidence of the evidence rule (the expectation's, else the scenario's, else 99 %).
    pub confidence: f64,
    /// The selector's parts, resolved: a workload or probe name, the metric, the aggregation.
    pub subject: String,
    pub subject_is_probe: bool,
    pub metric: String,
    pub aggregation: Option<String>,
    /// How the metric (after aggregation) is measured.
    pub unit: crate::dsl::metrics::Unit,
    /// The bound in base units (seconds, per second, fraction, bytes, count).
    pub base: BaseBound,
    pub origin: Origin,
}

/// A bound as plain numbers in base units, for evaluation without the scenario.
#[derive(Debug, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct BaseBound {
    /// The comparison; `None` for a `within` range.
    pub op: Option<Comparison>,
    pub value: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// The bound is a share of a total (memory as a percentage), not an absolute amount.
    pub share: bool,
}

impl BaseBound {
    /// Whether a base-unit value satisfies the bound (`op value` or `lo..hi`).
    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            Some(op) => op.holds(x, self.value.unwrap_or(f64::NAN)),
            None => {
                let (lo, hi) = (self.lo.unwrap_or(f64::NAN), self.hi.unwrap_or(f64::NAN));
                x >= lo - 1e-12 && x <= hi + 1e-12
            }
        }
    }

    fn of(b: &Bound) -> BaseBound {
        use crate::dsl::validate::Quantity;
        match b {
            Bound::Compare { op, value } => BaseBound {
                op: Some(*op),
                value: Some(value.base()),
                lo: None,
                hi: None,
                share: matches!(value, Quantity::Share(_)),
            },
            Bound::Within { lo, hi } => BaseBound {
                op: None,
                value: None,
                lo: Some(lo.base()),
                hi: Some(hi.base()),
                share: matches!(lo, Quantity::Share(_)),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlannedBaseline {
    pub path: String,
    pub tolerance: f64,
    pub overrides: Vec<(String, f64)>,
}

#[derive(Debug, Serialize, Default)]
pub struct PlannedOutputs {
    pub json: Option<String>,
    pub html: Option<String>,
    pub junit: Option<String>,
    pub markdown: Option<String>,
}

/// Default baseline tolerance when the scenario gives none.
pub const DEFAULT_TOLERANCE: f64 = 0.05;

impl Plan {
    /// Runs the measured phases `repeat` times (`run --repeat`): the count and the planned
    /// lengths change with it.
    pub fn set_repeat(&mut self, repeat: u64) {
        self.repeat = repeat.max(1);
        let (min, max) = totals(&self.phases, self.repeat);
        self.min_duration = min;
        self.max_duration = max;
    }

    /// The order the phases run in, as (phase index, repetition); see [`schedule`].
    pub fn order(&self) -> Vec<(usize, u64)> {
        schedule(&self.phases.iter().map(|p| p.role).collect::<Vec<_>>(), self.repeat)
    }
}

/// The shortest and longest run when the block of measured phases runs `repeat` times.
fn totals(phases: &[PlannedPhase], repeat: u64) -> (Duration, Option<Duration>) {
    let order = schedule(&phases.iter().map(|p| p.role).collect::<Vec<_>>(), repeat);
    let min = Duration(order.iter().map(|&(i, _)| phases[i].min_duration.0).sum());
    let max = order.iter().try_fold(0u64, |acc, &(i, _)| phases[i].max_duration.map(|d| acc + d.0)).map(Duration);
    (min, max)
}

/// Builds the plan. `sources` maps spans to origins.
pub fn build(v: &ValidScenario, sources: &SourceMap) -> Plan {
    let sc = &v.scenario;
    let seed = sc.seed.as_ref().map(|s| s.value).unwrap_or(0);
    let device = sc.device.as_ref().map(|d| d.value.to_string()).unwrap_or_else(|| "cpu".into());
    let workloads = sc
        .workloads
        .iter()
        .map(|w| PlannedWorkload {
            name: w.name.value.clone(),
            kind: w.kind.value,
            device: w.device.as_ref().map(|d| d.value.to_string()).unwrap_or_else(|| device.clone()),
            summary: estimate::workload_summary(w),
            origin: Origin::of(sources, w.name.span),
        })
        .collect();
    let phases = estimate::phases(v, seed, sources);
    let repeat = sc.repeat.as_ref().map_or(1, |r| r.value);
    let (min_duration, max_duration) = totals(&phases, repeat);
    let setup = setup::steps(sc, std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (setup_s, setup_complete) = setup::total(&setup);
    Plan {
        setup,
        setup_s,
        setup_complete,
        schema_version: PLAN_SCHEMA_VERSION,
        scenario: sc.name.value.clone(),
        description: sc.description.as_ref().map(|d| d.value.clone()),
        seed,
        device,
        tags: sc.tags.iter().map(|t| t.value.clone()).collect(),
        params: v
            .params
            .iter()
            .map(|p| PlannedParam {
                name: p.name.clone(),
                value: match &p.value {
                    kdl::KdlValue::String(s) => s.clone(),
                    other => other.to_string(),
                },
                origin: Origin::of(sources, p.span),
            })
            .collect(),
        workloads,
        phases,
        probes: v
            .probes
            .iter()
            .map(|(kind, every, implied)| PlannedProbe { kind: *kind, every: *every, implied: *implied })
            .collect(),
        scrapes: scrapes(sc),
        expectations: expectations(v, sources),
        min_duration,
        max_duration,
        run_limit: sc.run_limit.as_ref().map(|l| l.value),
        repeat,
        host_quiet: sc.host_quiet.as_ref().map_or(crate::dsl::model::HostQuiet::Warn, |h| h.value),
        baseline: sc.baseline.as_ref().map(|b| PlannedBaseline {
            path: b.path.value.clone(),
            tolerance: b.tolerance.as_ref().map(|t| t.value.0).unwrap_or(DEFAULT_TOLERANCE),
            overrides: b.overrides.iter().map(|(m, t)| (m.text.value.clone(), t.value.0)).collect(),
        }),
        outputs: sc
            .report
            .as_ref()
            .map(|r| PlannedOutputs {
                json: r.json.as_ref().map(|s| s.value.clone()),
                html: r.html.as_ref().map(|s| s.value.clone()),
                junit: r.junit.as_ref().map(|s| s.value.clone()),
                markdown: r.markdown.as_ref().map(|s| s.value.clone()),
            })
            .unwrap_or_default(),
        sample_needs: estimate::sample_needs(v),
    }
}

/// The model servers the workloads scrape (their kinds say where).
fn scrapes(sc: &Scenario) -> Vec<PlannedScrape> {
    (sc.workloads.iter())
        .filter_map(|w| {
            let m = w.spec.kind().server_metrics()?;
            Some(PlannedScrape {
                workload: w.name.value.clone(),
                url: m.url,
                every: m.every,
                api_key_env: m.api_key_env,
            })
        })
        .collect()
}

fn expectations(v: &ValidScenario, sources: &SourceMap) -> Vec<PlannedExpectation> {
    v.expectations
        .iter()
        .map(|e| {
            let x = &v.scenario.expectations[e.index];
            let text = format!("{} {}", e.metric.selector, e.bound);
            PlannedExpectation {
                name: x.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| text.clone()),
                selector: e.metric.selector.clone(),
                bound: e.bound.clone(),
                text,
                phase: e.phase.map(|i| v.scenario.phases[i].name.value.clone()),
                severity: x.severity,
                weight: x.weight.as_ref().map(|w| w.value).unwrap_or(1.0),
                window: x.window.as_ref().map(|w| w.value),
                windows_share: x.windows_share.as_ref().map(|w| w.value.0),
                abort_on_fail: x.abort_on_fail,
                on_missing: x.on_missing,
                spike_k: (e.metric.aggregation.as_deref().is_some_and(|a| a.ends_with("spike_rate")))
                    .then(|| x.k.as_ref().map(|k| k.value).unwrap_or(3.0)),
                confidence: x
                    .confidence
                    .as_ref()
                    .or(v.scenario.confidence.as_ref())
                    .map_or(crate::stats::CONFIDENCE, |c| c.value.0),
                subject: x.metric.subject.value.clone(),
                subject_is_probe: matches!(e.metric.subject, crate::dsl::validate::Subject::Probe(_)),
                metric: e.metric.def.name.to_string(),
                aggregation: e.metric.aggregation.clone(),
                unit: e.metric.unit,
                base: BaseBound::of(&e.bound),
                origin: Origin::of(sources, x.metric.text.span),
            }
        })
        .collect()
}

/// The order phases run in, as (phase index, repetition): the phases before the first
/// measured phase once, the block from the first to the last measured phase `repeat` times,
/// the phases after it once.
pub fn schedule(roles: &[PhaseRole], repeat: u64) -> Vec<(usize, u64)> {
    let measured: Vec<usize> = (0..roles.len()).filter(|&i| roles[i] == PhaseRole::Measure).collect();
    let (Some(&first), Some(&last)) = (measured.first(), measured.last()) else {
        return (0..roles.len()).map(|i| (i, 1)).collect();
    };
    let mut out: Vec<(usize, u64)> = (0..first).map(|i| (i, 1)).collect();
    for r in 1..=repeat.max(1) {
        out.extend((first..=last).map(|i| (i, r)));
    }
    out.extend((last + 1..roles.len()).map(|i| (i, 1)));
    out
}
