//! The parts of the plan that the engine runs from, typed: stop conditions, pressure and
//! search settings. The plan's JSON shows them as text (`until`, `pressure`, `summary`);
//! these fields are skipped there and carry the same facts as numbers.

use crate::dsl::model::{Arrivals, Comparison, Phase, Pressure, Search, SearchOver, StepPolicy};
use crate::dsl::units::{Amount, Duration};
use crate::dsl::validate::{Subject, ValidCondition, ValidScenario};

/// A resolved `until` condition (of a phase or a search): a workload's metric against a
/// number in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct StopCondition {
    /// The workload whose totals so far are read. `None` for a probe's metric: those are
    /// not read while a phase runs, so such a condition never holds.
    pub workload: Option<String>,
    /// A metric of the model server's own (`server.ttft.p95`): a capacity step reads it
    /// from scrapes at its start and as it runs.
    pub server: bool,
    pub metric: &'static str,
    pub aggregation: Option<String>,
    pub op: Comparison,
    /// The bound in base units (seconds, per second, fraction, bytes, count).
    pub value: f64,
    /// `selector op value` in canonical form: the reason a phase gives when it holds.
    pub text: String,
}

impl StopCondition {
    fn of(c: &ValidCondition, v: &ValidScenario) -> StopCondition {
        StopCondition {
            workload: match c.metric.subject {
                Subject::Workload(i) => Some(v.scenario.workloads[i].name.value.clone()),
                Subject::Probe(_) => None,
            },
            server: c.metric.subject == Subject::Probe(crate::dsl::model::ProbeKind::Server),
            metric: c.metric.def.name,
            aggregation: c.metric.aggregation.clone(),
            op: c.op,
            value: c.value.base(),
            text: format!("{} {} {}", c.metric.selector, c.op, c.value),
        }
    }

    /// Whether a measured value (base units) meets the condition.
    pub fn holds(&self, x: f64) -> bool {
        self.op.holds(x, self.value)
    }
}

/// The resolved conditions of a list (a phase's `until`, or its search's).
pub fn conditions(list: &[ValidCondition], v: &ValidScenario) -> Vec<StopCondition> {
    list.iter().map(|c| StopCondition::of(c, v)).collect()
}

/// Default safety cap of a pressure: the ballast never brings the host's memory in use
/// beyond this share.
pub const DEFAULT_PRESSURE_CAP: f64 = 0.85;

/// A phase's resource pressure, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PressureSpec {
    pub memory: Option<Amount>,
    pub cpu_threads: u32,
    /// Share of the host's memory the ballast may bring the total to.
    pub cap: f64,
    /// GPU memory pressure as written: needs a GPU build.
    pub gpu_memory: Option<String>,
}

impl PressureSpec {
    pub fn of(p: &Pressure) -> PressureSpec {
        PressureSpec {
            memory: p.memory.as_ref().map(|m| m.value),
            cpu_threads: p.cpu_threads.as_ref().map_or(0, |c| c.value),
            cap: p.cap.as_ref().map_or(DEFAULT_PRESSURE_CAP, |c| c.value.0),
            gpu_memory: p.gpu_memory.as_ref().map(|g| g.value.to_string()),
        }
    }
}

/// Default longest measured part of one search step, the default settling time before it,
/// and the default step limit.
pub const SEARCH_STEP: Duration = Duration(15_000_000_000);
pub const SEARCH_SETTLE: Duration = Duration(1_000_000_000);
pub const SEARCH_MAX_STEPS: u32 = 20;
/// Default growth factor while bracketing.
pub const SEARCH_FACTOR: f64 = 2.0;
/// Default relative width at which a rate search stops narrowing.
pub const SEARCH_PRECISION: f64 = 0.05;

/// A capacity search, resolved: what it varies, the range, the step timing and the SLOs a
/// load must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    pub over: SearchOver,
    /// The range: concurrency (whole numbers) or requests per second.
    pub lo: f64,
    pub hi: f64,
    /// The longest a step is measured before it is called undecided.
    pub step: Duration,
    /// Each step's head that is run but not judged (queues fill, caches warm).
    pub settle: Duration,
    /// A rate search stops narrowing when its bracket's high/low is within 1 + this.
    pub precision: f64,
    pub max_steps: u32,
    pub factor: f64,
    pub geometric: bool,
    pub max_time: Option<Duration>,
    pub arrivals: Arrivals,
    /// The bounds that must all hold (`op` is the side that passes).
    pub slos: Vec<StopCondition>,
    /// The confidence a step's verdict is settled at (the scenario's).
    pub confidence: f64,
}

impl SearchSpec {
    pub fn of(s: &Search, slos: Vec<StopCondition>, confidence: f64) -> SearchSpec {
        let (lo, hi) = match (s.over.value, &s.rate, &s.concurrency) {
            (SearchOver::Concurrency, _, Some(c)) => (c.value.lo as f64, c.value.hi as f64),
            (_, Some(r), _) => (r.value.lo.0, r.value.hi.0),
            _ => (1.0, 1.0), // not reached: decoding requires the range `over` names
        };
        SearchSpec {
            over: s.over.value,
            lo: lo.min(hi),
            hi: hi.max(lo),
            step: s.step_duration.as_ref().map_or(SEARCH_STEP, |d| d.value),
            settle: s.settle.as_ref().map_or(SEARCH_SETTLE, |d| d.value),
            precision: s.precision.as_ref().map_or(SEARCH_PRECISION, |p| p.value.0),
            max_steps: s.max_steps.as_ref().map_or(SEARCH_MAX_STEPS, |m| m.value),
            factor: s.factor.as_ref().map_or(SEARCH_FACTOR, |f| f.value),
            geometric: s.step.as_ref().is_none_or(|p| p.value == StepPolicy::Geometric),
            max_time: s.max_time.as_ref().map(|t| t.value),
            arrivals: s.arrivals,
            slos,
            confidence,
        }
    }

    /// The longest one step can take.
    pub fn step_max(&self) -> Duration {
        Duration(self.step.0 + self.settle.0)
    }
}

/// The phase's declared length, which the engine runs to (it may stop earlier).
pub fn declared_length(p: &Phase) -> Option<Duration> {
    p.duration.as_ref().map(|d| d.value)
}

/// The look times of one step, seconds after its settling time: from 1 s (four batches,
/// the fewest a design effect is read from), growing by half each time, on the batch grid,
/// the last at the step's length. The verdict is tested at each, so each test runs at
/// 1 - (1 - confidence) / looks to keep the step's error within the confidence
/// (Bonferroni).
pub fn looks(step_s: f64) -> Vec<f64> {
    let grid = |t: f64| (t / BATCH_S).round().max(1.0) * BATCH_S;
    let end = grid(step_s);
    let mut out: Vec<f64> = vec![];
    let mut t = 1.0f64;
    while grid(t) < end {
        if out.last() != Some(&grid(t)) {
            out.push(grid(t));
        }
        t *= 1.5;
    }
    out.push(end);
    out
}

/// Length of a batch of a capacity step's samples, for the design effect.
pub const BATCH_S: f64 = 0.25;
