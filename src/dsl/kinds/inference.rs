//! The `inference` kind's language side: LLMs in-process (GGUF, safetensors, the hub, or
//! synthetic random-weight models of real shapes). Its backend is `src/inference/`.

use kdl::KdlNode;
use serde::Serialize;

use super::{missing, Estimating, KindSpec, SetupEstimate};
use crate::dsl::decode::workload::{prompt, read, slo};
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::model::*;
use crate::dsl::reader::{Ctx, NodeReader};
use crate::dsl::span::Spanned;
use crate::dsl::units::Range;
use crate::keyword_enum;

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

pub const INFERENCE_NODES: &[&str] = &["model", "device", "prompt", "output", "batch", "warmup", "slo"];

pub(in crate::dsl) fn decode(cx: &mut Ctx, nodes: &[KdlNode], device_slot: &mut Option<Spanned<Device>>) -> Inference {
    let mut inf = Inference {
        model: None,
        prompt: None,
        output_tokens: None,
        ignore_eos: true,
        batch: vec![],
        warmup_requests: None,
        slo: Slo::default(),
    };
    for node in nodes {
        match node.name().value() {
            "model" => inf.model = read(cx, node, model),
            "device" => *device_slot = read(cx, node, crate::dsl::decode::device),
            "prompt" => inf.prompt = read(cx, node, prompt),
            "output" => read(cx, node, |cx, r| {
                inf.output_tokens = r.req_prop(cx, "tokens", "output tokens=128");
                if let Some(b) = r.prop::<bool>(cx, "ignore-eos") {
                    inf.ignore_eos = b.value;
                }
            }),
            "batch" => read(cx, node, |cx, r| {
                inf.batch = r.rest_args(cx, 0);
                if inf.batch.is_empty() {
                    let span = r.name_span(cx);
                    cx.error(
                        Code::MissingArgument,
                        span,
                        "`batch` needs at least one batch size",
                        "no sizes",
                        "for example: batch 1 4 8 16",
                    );
                }
                for b in &inf.batch {
                    if b.value == 0 {
                        cx.error(Code::OutOfRange, b.span, "a batch size must be at least 1", "zero", "use 1 or more");
                    }
                }
            }),
            "warmup" => inf.warmup_requests = read(cx, node, |cx, r| r.req_prop(cx, "requests", "warmup requests=4")),
            "slo" => inf.slo = read(cx, node, slo),
            _ => cx.unknown_node(node, "an inference workload", INFERENCE_NODES),
        }
    }
    inf
}

const MODEL_SOURCES: &[&str] = &["gguf", "safetensors", "hf", "synthetic"];

/// `model synthetic="gpt2-medium" dtype="f16"` and its siblings: exactly one source.
fn model(cx: &mut Ctx, r: &mut NodeReader) -> Option<Model> {
    let gguf = r.prop::<String>(cx, "gguf");
    let safetensors = r.prop::<String>(cx, "safetensors");
    let hf = r.prop::<String>(cx, "hf");
    let synthetic = r.prop::<SyntheticArch>(cx, "synthetic");
    let revision = r.prop::<String>(cx, "revision");
    let file = r.prop::<String>(cx, "file");
    let dtype = r.prop(cx, "dtype");
    let tokenizer = r.prop(cx, "tokenizer");
    let fallback = r.prop::<SyntheticArch>(cx, "fallback-synthetic");
    let mut sources: Vec<Spanned<ModelSource>> = vec![];
    if let Some(p) = gguf {
        sources.push(p.map(|path| ModelSource::Gguf { path }));
    }
    if let Some(p) = safetensors {
        sources.push(p.map(|path| ModelSource::Safetensors { path }));
    }
    if let Some(p) = hf {
        let (rev, f) = (revision.map(|x| x.value), file.map(|x| x.value));
        sources.push(p.map(|repo| ModelSource::Hf { repo, revision: rev, file: f }));
    } else if let Some(x) = revision.as_ref().or(file.as_ref()) {
        cx.error(
            Code::ConflictingOptions,
            x.span,
            "`revision` and `file` only apply to `hf` models",
            "needs hf=\"org/name\"",
            "add hf=\"org/name\" or remove this property",
        );
    }
    if let Some(a) = synthetic {
        if let Some(f) = &fallback {
            cx.error(
                Code::ConflictingOptions,
                f.span,
                "a synthetic model needs no fallback",
                "not needed",
                "`fallback-synthetic` goes with gguf= or safetensors=: remove it",
            );
        }
        sources.push(a.map(|arch| ModelSource::Synthetic { arch }));
    }
    if sources.len() > 1 {
        cx.conflict(
            (sources[0].span, "one source"),
            (sources[1].span, "another source"),
            "a model has exactly one source",
            "keep one of gguf=, safetensors=, hf= or synthetic=",
        );
    }
    if sources.is_empty() && MODEL_SOURCES.iter().any(|k| r.has_prop(k)) {
        return None;
    }
    if sources.is_empty() {
        let span = r.name_span(cx);
        cx.error(
            Code::MissingOption,
            span,
            "`model` needs a source",
            "no source",
            format!("add one of {}, e.g. model synthetic=\"gpt2-medium\"", MODEL_SOURCES.join(", ")),
        );
        return None;
    }
    let source = sources.swap_remove(0);
    if let (Some(f), ModelSource::Hf { .. }) = (&fallback, &source.value) {
        cx.error(
            Code::ConflictingOptions,
            f.span,
            "`fallback-synthetic` applies to model files (gguf=, safetensors=), not to hub models",
            "with hf=",
            "name the downloaded file with gguf= or safetensors=, or remove the fallback",
        );
    }
    Some(Model { source, dtype, tokenizer, fallback })
}

/// Assumed memory bandwidth for decoding a model's weights once per token, bytes/s: a
/// deliberately rough figure, used only to warn before a run that a closed loop cannot
/// collect enough samples.
const CPU_BANDWIDTH: f64 = 10e9;
const GPU_BANDWIDTH: f64 = 500e9;
/// Seconds per parameter to make random weights.
const RANDOM_WEIGHT_S: f64 = 4e-9;
/// Seconds to open a model file whose size is not known before the run.
const FILE_LOAD_S: f64 = 2.0;

impl KindSpec for Inference {
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>) {
        if self.model.is_none() {
            missing(diags, w, "a model", "model synthetic=\"gpt2-medium\"")
        }
    }

    fn summary(&self) -> String {
        let i = self;
        let model = match i.model.as_ref().map(|m| &m.source.value) {
            Some(ModelSource::Gguf { path }) => format!("gguf {path}"),
            Some(ModelSource::Safetensors { path }) => format!("safetensors {path}"),
            Some(ModelSource::Hf { repo, .. }) => format!("hf {repo}"),
            Some(ModelSource::Synthetic { arch }) => format!("synthetic {arch}"),
            None => "no model".into(),
        };
        let dtype =
            i.model.as_ref().and_then(|m| m.dtype.as_ref()).map(|d| format!(" ({})", d.value)).unwrap_or_default();
        let prompt = match &i.prompt {
            Some(Prompt::Synthetic(t)) => match t.value {
                TokenDist::Fixed { tokens } => format!("prompt {tokens} tokens"),
                TokenDist::Uniform { min, max } => format!("prompt {min}..{max} tokens"),
                TokenDist::Normal { mean, stddev } => format!("prompt {mean} ± {stddev} tokens"),
            },
            Some(Prompt::File { path, .. }) => format!("prompts from {}", path.value),
            None => "prompt 128 tokens (default)".into(),
        };
        let out = i.output_tokens.as_ref().map(|o| o.value).unwrap_or(128);
        let eos = if i.ignore_eos { "ignore EOS" } else { "up to EOS" };
        let mut s = format!("{model}{dtype}; {prompt}; output {out} tokens, {eos}");
        if !i.batch.is_empty() {
            s += &format!("; batch {}", i.batch.iter().map(|b| b.value.to_string()).collect::<Vec<_>>().join(" "));
        }
        s
    }

    /// A synthetic model's decode reads its weights once per token.
    fn service_time(&self, est: &Estimating) -> Option<(f64, String)> {
        let m = self.model.as_ref()?;
        let ModelSource::Synthetic { arch } = m.source.value else { return None };
        let bytes_per = match m.dtype.as_ref().map(|d| d.value) {
            Some(DType::F32) | None => 4.0,
            _ => 2.0,
        };
        let params = (est.parameters)(arch) as f64;
        let bw = if est.gpu { GPU_BANDWIDTH } else { CPU_BANDWIDTH };
        let tokens = self.output_tokens.as_ref().map_or(16, |t| t.value).max(1) as f64;
        Some((
            tokens * params * bytes_per / bw,
            format!(
                "{} output tokens of a {:.0}M-parameter model at an assumed {:.0} GB/s",
                tokens,
                params / 1e6,
                bw / 1e9
            ),
        ))
    }

    fn tokens_per_request(&self) -> Option<f64> {
        Some(self.output_tokens.as_ref().map_or(16, |t| t.value) as f64)
    }

    /// The model load, warmup requests and the batch-size sweep.
    fn setup_steps(&self, est: &Estimating) -> Vec<SetupEstimate> {
        let Some(m) = &self.model else { return vec![] };
        let step = |what, seconds, note| SetupEstimate { what, seconds, note };
        let mut out = vec![match &m.source.value {
            ModelSource::Synthetic { arch } => {
                let params = (est.parameters)(*arch) as f64;
                step(
                    "model load",
                    Some(params * RANDOM_WEIGHT_S),
                    format!("random weights for {:.0}M parameters", params / 1e6),
                )
            }
            ModelSource::Hf { .. } => step(
                "model load",
                None,
                "from the Hugging Face cache, or downloaded first (not known before the run)".into(),
            ),
            ModelSource::Gguf { .. } | ModelSource::Safetensors { .. } => {
                step("model load", Some(FILE_LOAD_S), "reading the model file (its size varies)".into())
            }
        }];
        let service = self.service_time(est).map(|(t, _)| t);
        let warmup = self.warmup_requests.as_ref().map_or(0, |n| n.value);
        if warmup > 0 {
            out.push(step(
                "warmup requests",
                service.map(|t| t * warmup as f64),
                format!("{warmup} request(s) before the phases"),
            ));
        }
        if !self.batch.is_empty() {
            let total: u64 = self.batch.iter().map(|b| b.value).sum();
            let sizes = self.batch.iter().map(|b| b.value.to_string()).collect::<Vec<_>>().join(", ");
            out.push(step("batch-size sweep", service.map(|t| t * 3.0 * total as f64), format!("batch sizes {sizes}")));
        }
        out
    }

    /// On the CPU each request's matrix products spread over the cores: counted as two
    /// per concurrent request (small models' products gain little beyond that).
    fn cpu_demand(&self, workers: usize, cores: usize, on_cpu: bool) -> Option<usize> {
        on_cpu.then(|| (2 * workers).clamp(1, cores))
    }

    /// No model server to scrape.
    fn server_metrics(&self) -> Option<super::ServerMetrics> {
        None
    }
}
