//! Stage 3, decode: the typed scenario. Every user-facing leaf keeps its span so that
//! validation, planning and evaluation can point back into the source.
//!
//! Invariants: values have passed their unit and type checks; names are not yet resolved
//! (that is `validate`'s job), so a `Drive` may still name a workload that does not exist.

use kdl::KdlValue;
use serde::Serialize;

use super::span::Spanned;
use super::units::{Amount, Duration, Percent, Range, Rate};
use crate::keyword_enum;

/// A scenario after decoding, with imports spliced in and parameters substituted.
#[derive(Debug, Default)]
pub struct Scenario {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    pub seed: Option<Spanned<u64>>,
    pub device: Option<Spanned<Device>>,
    pub tags: Vec<Spanned<String>>,
    pub run_limit: Option<Spanned<Duration>>,
    /// Confidence of the evidence rule for every expectation (99 % when not given).
    pub confidence: Option<Spanned<Percent>>,
    /// Times the measured phases run (`run --repeat` overrides it).
    pub repeat: Option<Spanned<u64>>,
    /// What a busy host or a lagging load generator does to the verdict.
    pub host_quiet: Option<Spanned<HostQuiet>>,
    pub params: Vec<ParamDecl>,
    pub workloads: Vec<Workload>,
    pub phases: Vec<Phase>,
    pub probes: Vec<Probe>,
    pub expectations: Vec<Expectation>,
    pub baseline: Option<Baseline>,
    pub report: Option<ReportOutputs>,
}

keyword_enum!(
    /// The declared type of a parameter; `--set` values are checked against it.
    ParamType, "parameter type" {
        String = "string", Int = "int", Float = "float", Bool = "bool", Duration = "duration",
        Rate = "rate", Size = "size", Percent = "percent", Range = "range",
    }
);

/// `param "name" type="duration" default="60s" description="..."`
#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: Spanned<String>,
    pub ty: Spanned<ParamType>,
    pub default: Option<Spanned<KdlValue>>,
    pub description: Option<Spanned<String>>,
}

/// Where work runs. `fallback` lets a GPU scenario continue on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Device {
    pub kind: DeviceKind,
    pub fallback_cpu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda { index: u32 },
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DeviceKind::Cpu => f.write_str("cpu")?,
            DeviceKind::Cuda { index } => write!(f, "cuda:{index}")?,
        }
        if self.fallback_cpu {
            f.write_str(" (fallback cpu)")?;
        }
        Ok(())
    }
}

keyword_enum!(WorkloadKind, "workload kind" {
    Inference = "inference", Retrieval = "retrieval", Kernel = "kernel", Synthetic = "synthetic",
    Openai = "openai",
});

#[derive(Debug)]
pub struct Workload {
    /// Decoding this workload reported errors: later stages skip follow-on checks.
    pub poisoned: bool,
    pub name: Spanned<String>,
    pub kind: Spanned<WorkloadKind>,
    pub device: Option<Spanned<Device>>,
    pub spec: WorkloadSpec,
}

// A scenario holds a handful of workloads, decoded once: the size of the largest kind's
// spec costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WorkloadSpec {
    Inference(Inference),
    Retrieval(Retrieval),
    Kernel(Kernel),
    Synthetic(Synthetic),
    Openai(Openai),
}

pub use super::kinds::inference::*;
pub use super::kinds::kernel::*;
pub use super::kinds::openai::*;
pub use super::kinds::retrieval::*;
pub use super::kinds::synthetic::*;

/// Per-request service levels: goodput counts requests meeting all of them.
#[derive(Debug, Default)]
pub struct Slo {
    pub ttft: Option<Spanned<Duration>>,
    pub itl: Option<Spanned<Duration>>,
    pub tpot: Option<Spanned<Duration>>,
    pub e2e: Option<Spanned<Duration>>,
}

// ---- phases and load shapes --------------------------------------------------------------

keyword_enum!(PhaseRole, "phase role" { Measure = "measure", Warmup = "warmup", Cooldown = "cooldown" });
keyword_enum!(ArrivalKind, "arrival process" { Constant = "constant", Poisson = "poisson", Gamma = "gamma" });

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(tag = "process", rename_all = "lowercase")]
pub enum Arrivals {
    Constant,
    Poisson,
    /// Gamma-distributed gaps; burstiness is the squared coefficient of variation (1 = Poisson).
    Gamma {
        burstiness: f64,
    },
}

/// What a stage (or a steady drive) targets: an open-loop rate or a closed-loop concurrency.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Rate(Rate),
    Concurrency(u64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub duration: Duration,
    pub target: Target,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "shape", rename_all = "kebab-case")]
pub enum LoadShape {
    Closed { concurrency: u64 },
    Open { rate: Rate, arrivals: Arrivals },
    RampRate { from: Rate, to: Rate, arrivals: Arrivals },
    RampConcurrency { from: u64, to: u64 },
    Spike { base: Rate, peak: Rate, every: Duration, hold: Duration, arrivals: Arrivals },
    Stages { stages: Vec<Stage>, arrivals: Arrivals },
}

#[derive(Debug)]
pub struct Drive {
    pub workload: Spanned<String>,
    pub shape: Spanned<LoadShape>,
    pub max_in_flight: Option<Spanned<u64>>,
    pub requests: Option<Spanned<u64>>,
}

#[derive(Debug)]
pub struct Pressure {
    pub span: super::span::Span,
    pub memory: Option<Spanned<Amount>>,
    pub cpu_threads: Option<Spanned<u32>>,
    pub gpu_memory: Option<Spanned<Amount>>,
    pub cap: Option<Spanned<Percent>>,
}

keyword_enum!(StepPolicy, "step policy" { Geometric = "geometric", Linear = "linear" });
keyword_enum!(SearchOver, "search dimension" { Concurrency = "concurrency", Rate = "rate" });

/// `search "chat" over="concurrency" concurrency="1..64" slo="ttft.p95 < 200ms"`: the
/// highest load at which every SLO holds, found by bracketing then bisecting, each step
/// run until the evidence settles its verdict.
#[derive(Debug)]
pub struct Search {
    pub workload: Spanned<String>,
    /// What is searched: written, or implied by the one range given.
    pub over: Spanned<SearchOver>,
    pub rate: Option<Spanned<Range<Rate>>>,
    pub concurrency: Option<Spanned<Range<u64>>>,
    /// The bounds that must all hold at a load (`slo=`, and `until=` turned around).
    pub slos: Vec<Condition>,
    pub step: Option<Spanned<StepPolicy>>,
    pub factor: Option<Spanned<f64>>,
    pub step_duration: Option<Spanned<Duration>>,
    pub settle: Option<Spanned<Duration>>,
    pub precision: Option<Spanned<Percent>>,
    pub max_steps: Option<Spanned<u32>>,
    pub max_time: Option<Spanned<Duration>>,
    pub arrivals: Arrivals,
}

#[derive(Debug)]
pub struct Phase {
    /// Decoding this phase reported errors: later stages skip follow-on checks.
    pub poisoned: bool,
    pub name: Spanned<String>,
    pub role: PhaseRole,
    pub duration: Option<Spanned<Duration>>,
    pub until: Vec<Condition>,
    pub drives: Vec<Drive>,
    pub pressure: Option<Pressure>,
    pub search: Option<Search>,
}

// ---- probes, expectations, baseline, report ----------------------------------------------------

keyword_enum!(ProbeKind, "probe kind" { System = "system", Process = "process", Gpu = "gpu", Energy = "energy", Server = "server" });

#[derive(Debug)]
pub struct Probe {
    pub kind: Spanned<ProbeKind>,
    pub every: Option<Spanned<Duration>>,
}

keyword_enum!(Comparison, "comparison" { Lt = "<", Le = "<=", Gt = ">", Ge = ">=", Eq = "==" });

impl Comparison {
    /// Whether `x op bound` holds (`==` within a relative 1e-9).
    pub fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Comparison::Lt => x < bound,
            Comparison::Le => x <= bound,
            Comparison::Gt => x > bound,
            Comparison::Ge => x >= bound,
            Comparison::Eq => (x - bound).abs() <= 1e-9 * bound.abs().max(1.0),
        }
    }

    /// The comparison that holds exactly where this one does not (`>` becomes `<=`); `None`
    /// for `==`.
    pub fn negated(self) -> Option<Comparison> {
        Some(match self {
            Comparison::Lt => Comparison::Ge,
            Comparison::Le => Comparison::Gt,
            Comparison::Gt => Comparison::Le,
            Comparison::Ge => Comparison::Lt,
            Comparison::Eq => return None,
        })
    }
}
keyword_enum!(ExpectSeverity, "severity" { Fail = "fail", Warn = "warn" });
keyword_enum!(OnMissing, "on-missing policy" { Fail = "fail", Warn = "warn", Pass = "pass" });
keyword_enum!(
    /// `warn`: a host finding is shown beside the verdict; `invalid`: it makes the run invalid.
    HostQuiet, "host-quiet policy" { Warn = "warn", Invalid = "invalid" }
);

/// `workload.metric[.aggregation]` as written; resolved against the metric catalogue later.
#[derive(Debug, Clone)]
pub struct MetricRef {
    pub text: Spanned<String>,
    pub subject: Spanned<String>,
    pub metric: Spanned<String>,
    pub aggregation: Option<Spanned<String>>,
}

/// A comparison of one metric against a bound, written as `metric op value` (in `until=`) or
/// as separate entries (in `expect`). The bound stays a raw value until the metric's unit is known.
#[derive(Debug, Clone)]
pub struct Condition {
    pub metric: MetricRef,
    pub op: Spanned<Comparison>,
    pub value: Spanned<KdlValue>,
}

#[derive(Debug, Clone)]
pub enum Check {
    Compare { op: Spanned<Comparison>, value: Spanned<KdlValue> },
    Within { range: Spanned<String> },
}

#[derive(Debug)]
pub struct Expectation {
    pub span: super::span::Span,
    pub metric: MetricRef,
    pub check: Check,
    pub phase: Option<Spanned<String>>,
    pub severity: ExpectSeverity,
    pub window: Option<Spanned<Duration>>,
    pub windows_share: Option<Spanned<Percent>>,
    pub abort_on_fail: bool,
    pub on_missing: OnMissing,
    pub weight: Option<Spanned<f64>>,
    pub k: Option<Spanned<f64>>,
    pub name: Option<Spanned<String>>,
    /// Confidence of the evidence rule for this expectation (else the scenario's).
    pub confidence: Option<Spanned<Percent>>,
}

#[derive(Debug)]
pub struct Baseline {
    pub path: Spanned<String>,
    pub tolerance: Option<Spanned<Percent>>,
    pub overrides: Vec<(MetricRef, Spanned<Percent>)>,
}

#[derive(Debug, Default)]
pub struct ReportOutputs {
    pub json: Option<Spanned<String>>,
    pub html: Option<Spanned<String>>,
    pub junit: Option<Spanned<String>>,
    pub markdown: Option<Spanned<String>>,
}
