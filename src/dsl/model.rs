//! Stage 3, decode: the typed scenario. Every user-facing leaf keeps its span so that
//! validation, planning and evaluation can point back into the source.
//!
//! Invariants: values have passed their unit and type checks; names are not yet resolved
//! (that is `validate`'s job), so a `Drive` may still name a workload that does not exist.

use kdl::KdlValue;
use serde::Serialize;

use super::span::Spanned;
use super::units::{Amount, Bytes, Duration, Percent, Range, Rate};
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

#[derive(Debug)]
pub enum WorkloadSpec {
    Inference(Inference),
    Retrieval(Retrieval),
    Kernel(Kernel),
    Synthetic(Synthetic),
    Openai(Openai),
}

// ---- inference -------------------------------------------------------------------------

keyword_enum!(
    /// Architectures whose exact shapes the synthetic (random-weight) models reproduce.
    SyntheticArch, "synthetic architecture" {
        Gpt2Medium = "gpt2-medium", DialogptMedium = "dialogpt-medium", Gpt2 = "gpt2",
        Smollm2_135m = "smollm2-135m", Tinyllama1_1b = "tinyllama-1.1b", Llama3_8b = "llama3-8b",
    }
);

impl SyntheticArch {
    /// The model's own name, as its authors write it.
    pub fn display_name(self) -> &'static str {
        match self {
            SyntheticArch::Gpt2Medium => "GPT-2 medium",
            SyntheticArch::DialogptMedium => "DialoGPT-medium",
            SyntheticArch::Gpt2 => "GPT-2",
            SyntheticArch::Smollm2_135m => "SmolLM2-135M",
            SyntheticArch::Tinyllama1_1b => "TinyLlama-1.1B",
            SyntheticArch::Llama3_8b => "Llama 3 8B",
        }
    }

    /// What a result must say about a model of this shape with random weights.
    pub fn synthetic_note(self) -> String {
        format!("random weights of {}'s shape: speed is real, text is not", self.display_name())
    }
}

keyword_enum!(DType, "dtype" { F32 = "f32", F16 = "f16", Bf16 = "bf16" });

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum ModelSource {
    Gguf { path: String },
    Safetensors { path: String },
    Hf { repo: String, revision: Option<String>, file: Option<String> },
    Synthetic { arch: SyntheticArch },
}

#[derive(Debug)]
pub struct Model {
    pub source: Spanned<ModelSource>,
    /// `fallback-synthetic=`: when the model file is not there, the random-weight model of
    /// this architecture runs instead (said plainly in every report).
    pub fallback: Option<Spanned<SyntheticArch>>,
    pub dtype: Option<Spanned<DType>>,
    pub tokenizer: Option<Spanned<String>>,
}

/// A distribution of token counts.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum TokenDist {
    Fixed { tokens: u64 },
    Uniform { min: u64, max: u64 },
    Normal { mean: u64, stddev: u64 },
}

keyword_enum!(PromptFormat, "prompt file format" { Prompt = "prompt", ShareGpt = "sharegpt" });

#[derive(Debug)]
pub enum Prompt {
    Synthetic(Spanned<TokenDist>),
    File { path: Spanned<String>, format: Option<Spanned<PromptFormat>>, tokens: Option<Spanned<Range<u64>>> },
}

#[derive(Debug)]
pub struct Inference {
    pub model: Option<Model>,
    pub prompt: Option<Prompt>,
    pub output_tokens: Option<Spanned<u64>>,
    pub ignore_eos: bool,
    pub batch: Vec<Spanned<u64>>,
    pub warmup_requests: Option<Spanned<u64>>,
    pub slo: Slo,
}

/// Per-request service levels: goodput counts requests meeting all of them.
#[derive(Debug, Default)]
pub struct Slo {
    pub ttft: Option<Spanned<Duration>>,
    pub itl: Option<Spanned<Duration>>,
    pub tpot: Option<Spanned<Duration>>,
    pub e2e: Option<Spanned<Duration>>,
}

// ---- openai (served endpoints) ---------------------------------------------------------

keyword_enum!(OpenaiApi, "endpoint API" { Chat = "chat", Completions = "completions" });
keyword_enum!(MismatchAction, "mismatch action" { Warn = "warn", Fail = "fail" });

/// Where the endpoint workload's tokenizer comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum TokenizerSource {
    /// A Hugging Face tokenizer.json.
    File { path: String },
    /// The metadata of a GGUF file (the vocabulary llama.cpp serves it with).
    Gguf { path: String },
    /// A repository's tokenizer.json in the local Hugging Face cache (never downloaded).
    Hf { repo: String },
}

/// How prompts begin, for or against a server's prefix cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PromptPrefix {
    /// Each prompt begins with words of its own, so no two requests share a prefix.
    Unique,
    /// Every prompt begins with the same `tokens` tokens, then differs.
    Shared { tokens: u64 },
    /// Prompts are sent as drawn (a file's prompts repeat).
    AsDrawn,
}

#[derive(Debug)]
pub struct Endpoint {
    /// The base URL, up to and including `/v1`.
    pub url: Spanned<String>,
    pub model: Spanned<String>,
    pub api: OpenaiApi,
    pub stream: bool,
    pub timeout: Option<Spanned<Duration>>,
}

#[derive(Debug)]
pub struct Openai {
    pub endpoint: Option<Endpoint>,
    /// The environment variable holding the API key (its value is never written anywhere).
    pub api_key_env: Option<Spanned<String>>,
    pub headers: Vec<(Spanned<String>, Spanned<String>)>,
    pub tokenizer: Option<Spanned<TokenizerSource>>,
    pub prompt: Option<Prompt>,
    pub prefix: Spanned<PromptPrefix>,
    pub output_tokens: Option<Spanned<u64>>,
    pub min_tokens: Option<Spanned<u64>>,
    pub ignore_eos: Option<Spanned<bool>>,
    pub temperature: Option<Spanned<f64>>,
    pub sampling_seed: Option<Spanned<u64>>,
    /// Extra fields merged into every request body (a JSON object).
    pub extra_body: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    /// At most this many connections (requests beyond wait for one); unlimited when unset.
    pub connections: Option<Spanned<u64>>,
    /// A PEM file of certificate authorities trusted besides the Mozilla roots (`tls ca=`).
    pub tls_ca: Option<Spanned<String>>,
    /// Token-count agreement between two sources: the share above which a request counts as
    /// a mismatch, and what a mismatch does.
    pub mismatch: Option<Spanned<Percent>>,
    pub on_mismatch: MismatchAction,
    pub slo: Slo,
}

// ---- retrieval -------------------------------------------------------------------------

keyword_enum!(IndexKind, "index kind" { Hnsw = "hnsw", Flat = "flat" });
keyword_enum!(IndexBackend, "index backend" { HnswRs = "hnsw_rs", Usearch = "usearch" });
keyword_enum!(Quantization, "scalar type" { F32 = "f32", F16 = "f16", Bf16 = "bf16", I8 = "i8" });
keyword_enum!(DistanceMetric, "distance metric" { L2 = "l2", Cosine = "cosine", Dot = "dot" });
keyword_enum!(QuerySource, "query source" { HeldOut = "held-out", File = "file", Sample = "sample" });

#[derive(Debug)]
pub struct Index {
    pub kind: Spanned<IndexKind>,
    pub backend: Option<Spanned<IndexBackend>>,
    pub entries: Spanned<u64>,
    pub dim: Spanned<u32>,
    pub metric: Option<Spanned<DistanceMetric>>,
    pub m: Option<Spanned<u32>>,
    pub ef_construction: Option<Spanned<u32>>,
    pub max_layers: Option<Spanned<u32>>,
    pub extend_candidates: Option<Spanned<bool>>,
    pub keep_pruned: Option<Spanned<bool>>,
    pub level_scale: Option<Spanned<f64>>,
    /// The scalar type usearch stores vectors as (usearch only).
    pub quantization: Option<Spanned<Quantization>>,
}

#[derive(Debug)]
pub enum DataSource {
    Synthetic { clusters: Option<Spanned<u32>>, spread: Option<Spanned<f64>> },
    File { path: Spanned<String> },
    Text { corpus: Spanned<String>, model: Option<Spanned<String>> },
}

#[derive(Debug)]
pub struct Query {
    pub top_k: Option<Spanned<u32>>,
    pub ef: Vec<Spanned<u32>>,
    pub count: Option<Spanned<u64>>,
    pub source: Option<Spanned<QuerySource>>,
    pub file: Option<Spanned<String>>,
    pub noise: Option<Spanned<f64>>,
}

#[derive(Debug)]
pub struct Retrieval {
    pub index: Option<Index>,
    pub data: Option<Spanned<DataSource>>,
    pub query: Option<Query>,
    pub ground_truth: bool,
    pub cache_dir: Option<Spanned<String>>,
    pub cache: bool,
}

// ---- kernel ----------------------------------------------------------------------------

keyword_enum!(ElemType, "element type" {
    F32 = "f32", F64 = "f64", F16 = "f16", I32 = "i32", U32 = "u32", I64 = "i64", U64 = "u64", U8 = "u8",
});
keyword_enum!(BufferInit, "buffer initialisation" { Zeros = "zeros", Constant = "constant", Random = "random", Iota = "iota" });

#[derive(Debug)]
pub enum KernelSource {
    Inline(Spanned<String>),
    File(Spanned<String>),
}

#[derive(Debug)]
pub struct Buffer {
    pub name: Spanned<String>,
    pub ty: Spanned<ElemType>,
    pub len: Spanned<u64>,
    pub init: Spanned<BufferInit>,
    pub value: Option<Spanned<f64>>,
    pub seed: Option<Spanned<u64>>,
}

#[derive(Debug)]
pub enum KernelArg {
    Buffer(Spanned<String>),
    Scalar { ty: Spanned<ElemType>, value: Spanned<f64> },
}

#[derive(Debug)]
pub struct KernelCheck {
    pub buffer: Spanned<String>,
    pub expect: Option<Spanned<f64>>,
    pub reference: Option<Spanned<String>>,
    pub tolerance: Option<Spanned<f64>>,
}

#[derive(Debug)]
pub struct Kernel {
    pub source: Option<KernelSource>,
    pub entry: Option<Spanned<String>>,
    pub arch: Option<Spanned<String>>,
    pub fast_math: bool,
    pub defines: Vec<(Spanned<String>, Option<Spanned<String>>)>,
    pub grid: Vec<Spanned<u32>>,
    pub block: Vec<Spanned<u32>>,
    pub shared_memory: Option<Spanned<Bytes>>,
    pub buffers: Vec<Buffer>,
    pub args: Vec<KernelArg>,
    pub bytes_per_launch: Option<Spanned<Bytes>>,
    pub flops_per_launch: Option<Spanned<f64>>,
    pub iterations: Option<Spanned<u64>>,
    pub launches_per_timing: Option<Spanned<u64>>,
    pub check: Option<KernelCheck>,
}

// ---- synthetic -------------------------------------------------------------------------

/// Latency distributions of the synthetic workload, all in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum LatencyDist {
    Fixed { value: Duration },
    Uniform { min: Duration, max: Duration },
    Normal { mean: Duration, stddev: Duration },
    Lognormal { median: Duration, sigma: f64 },
    Pareto { scale: Duration, shape: f64 },
}

#[derive(Debug)]
pub struct Synthetic {
    pub latency: Option<Spanned<LatencyDist>>,
    pub cpu_work: Option<Spanned<Duration>>,
    pub error_probability: Option<Spanned<Percent>>,
    pub tokens: Option<(Spanned<u64>, Spanned<Duration>)>,
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

/// `search "chat" rate="1/s..500/s" until="ttft.p95 > 50ms"`: raise the load until the
/// condition holds, then bisect.
#[derive(Debug)]
pub struct Search {
    pub workload: Spanned<String>,
    pub rate: Spanned<Range<Rate>>,
    pub until: Vec<Condition>,
    pub step: Option<Spanned<StepPolicy>>,
    pub factor: Option<Spanned<f64>>,
    pub step_duration: Option<Spanned<Duration>>,
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

keyword_enum!(ProbeKind, "probe kind" { System = "system", Process = "process", Gpu = "gpu", Energy = "energy" });

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
