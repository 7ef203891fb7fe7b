//! The inference workload: a model loaded once and shared by every request, each request
//! with its own KV cache, generating on the blocking pool while the engine times it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::generate::{generate, generate_unless, Generated};
use super::model::{self, LoadSpec, Loaded, ModelFacts, Net, SetupError};
use crate::dsl::model::{DeviceKind, Inference, PromptFormat, TokenDist};
use crate::prompts::{self, Prompts};
use crate::random::Rng;
use crate::workload::facts::{Facts, Table};
use crate::workload::setup::{ready, Prepared, SetupContext};
use crate::workload::{BoxFuture, Call, RequestError, Slo, Workload};
use tokenizers::Tokenizer;

/// One row of the batch-size table: static batches of one size, generated together.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchRow {
    pub batch: usize,
    pub runs: usize,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    /// Median time to the first token of the batch (prefill of all its prompts).
    pub ttft_p50_s: f64,
    /// Median gap between decode steps, seconds.
    pub itl_p50_s: f64,
    /// Output tokens per second of one sequence (median run).
    pub tok_s_per_sequence: f64,
    /// Output tokens per second of the whole batch (median run).
    pub tok_s_total: f64,
    /// Prompt tokens per second during prefill (median run).
    pub prefill_tok_s: f64,
}

/// Peak KV cache bytes across concurrent requests.
#[derive(Default)]
struct KvGauge {
    now: AtomicU64,
    peak: AtomicU64,
}

impl KvGauge {
    fn enter(&self, b: u64) {
        let now = self.now.fetch_add(b, Ordering::Relaxed) + b;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    fn leave(&self, b: u64) {
        self.now.fetch_sub(b, Ordering::Relaxed);
    }
}

pub struct InferenceWorkload {
    net: Arc<Net>,
    eos: Option<u32>,
    prompts: Prompts,
    output_tokens: usize,
    slo: Slo,
    facts: ModelFacts,
    prompt_source: String,
    batch_table: Vec<BatchRow>,
    warmup: usize,
    kv: Arc<KvGauge>,
}

/// Prepares an inference workload (the registry's entry point): opens its device (the CPU
/// when a GPU with `fallback="cpu"` cannot open, with a warning), then loads it.
pub fn prepare(spec: &Inference, cx: &mut SetupContext) -> Result<Prepared, SetupError> {
    let device = device_for(cx);
    let span = spec.model.as_ref().map(|m| m.source.span);
    let (seed, base, partition) = (cx.seed, cx.base, cx.partition);
    let loaded = InferenceWorkload::load(spec, device, seed, base, partition, &mut |m| cx.progress(m));
    ready(loaded, span)
}

/// The device the workload runs on: the one asked for, or the CPU when it is a GPU with
/// `fallback="cpu"` that this build or machine cannot open.
fn device_for(cx: &mut SetupContext) -> DeviceKind {
    let d = cx.device;
    if let (DeviceKind::Cuda { .. }, true) = (d.kind, d.fallback_cpu) {
        if let Err(e) = model::device(d.kind) {
            cx.warn("fallback", format!("workload `{}` runs on the CPU (fallback): {}", cx.workload, e.message));
            return DeviceKind::Cpu;
        }
    }
    d.kind
}

/// The prompts requests draw from (drawn lengths, or a file tokenized and filtered by
/// length), and how to describe them.
fn prompt_set(
    spec: &Inference,
    tokenizer: Option<&Tokenizer>,
    vocab_size: usize,
    base: &std::path::Path,
    partition: Option<crate::partition::Shard>,
) -> Result<(Prompts, String), SetupError> {
    Ok(match &spec.prompt {
        None => (Prompts::synthetic(TokenDist::Fixed { tokens: 128 }, vocab_size), "synthetic: 128 tokens".into()),
        Some(crate::dsl::model::Prompt::Synthetic(d)) => {
            (Prompts::synthetic(d.value, vocab_size), format!("synthetic: {}", prompts::describe(&d.value)))
        }
        Some(crate::dsl::model::Prompt::File { path, format, tokens }) => {
            let p = base.join(&path.value);
            let Some(tok) = tokenizer else {
                return Err(SetupError::input(
                    format!("the prompt file `{}` needs a tokenizer, and this model has none", p.display()),
                    "give `tokenizer=\"tokenizer.json\"` on the `model` node, or use synthetic prompts (`prompt tokens=N`)",
                ));
            };
            let fmt = format.as_ref().map(|f| f.value).unwrap_or(PromptFormat::Prompt);
            let texts = prompts::read_texts(&p, fmt)?;
            let texts = prompts::shard_texts(texts, partition, &p)?;
            let range = tokens.as_ref().map(|r| (r.value.lo, r.value.hi));
            let set = prompts::tokenize(&texts, tok, range, &p)?;
            let n = set.len();
            (Prompts::Set(set), format!("file: {} ({n} of {} prompts kept)", p.display(), texts.len()))
        }
    })
}

impl InferenceWorkload {
    /// Loads the model and prompts, runs the warmup requests and the batch-size sweep.
    /// `progress` receives a line per step.
    pub fn load(
        spec: &Inference,
        device: DeviceKind,
        seed: u64,
        base: &std::path::Path,
        partition: Option<crate::partition::Shard>,
        progress: &mut dyn FnMut(String),
    ) -> Result<Self, SetupError> {
        let m = spec
            .model
            .as_ref()
            .ok_or_else(|| SetupError::input("the workload has no `model`", "add a `model` node"))?;
        progress(format!("loading {}", describe(&m.source.value)));
        let Loaded { net, tokenizer, eos, facts } = model::load(&LoadSpec {
            source: &m.source.value,
            dtype: m.dtype.as_ref().map(|d| d.value),
            tokenizer: m.tokenizer.as_ref().map(|t| t.value.as_str()),
            device,
            seed,
            base,
            fallback: m.fallback.as_ref().map(|f| f.value),
        })?;
        if let Some(missing) = &facts.missing {
            progress(format!(
                "{} is not there: running {} instead (run scripts/fetch-models.sh for the real model)",
                missing.display(),
                facts.synthetic.as_deref().unwrap_or("random weights")
            ));
        }
        progress(format!(
            "loaded in {:.2} s: {} parameters, {:.1} MB of weights on {}",
            facts.load_time_s,
            facts.parameters,
            facts.weights_bytes as f64 / 1e6,
            facts.device
        ));
        let (prompts, prompt_source) = prompt_set(spec, tokenizer.as_ref(), facts.vocab_size, base, partition)?;
        let output_tokens = spec.output_tokens.as_ref().map(|o| o.value).unwrap_or(128) as usize;
        let longest = prompts.max_len() as usize + output_tokens;
        if longest > net.max_positions() {
            return Err(SetupError::input(
                format!(
                    "a request may reach {longest} tokens (prompt up to {} + output {output_tokens}), beyond the model's {} positions",
                    prompts.max_len(),
                    net.max_positions()
                ),
                "shorten `prompt tokens=` or `output tokens=`",
            ));
        }
        let slo = Slo::from_spec(&spec.slo);
        let mut w = InferenceWorkload {
            net: Arc::new(net),
            eos: if spec.ignore_eos { None } else { eos },
            prompts,
            output_tokens,
            slo,
            facts,
            prompt_source,
            batch_table: vec![],
            warmup: spec.warmup_requests.as_ref().map(|w| w.value).unwrap_or(0) as usize,
            kv: Arc::default(),
        };
        let mut rng = Rng::new(seed ^ 0x5eed_ba7c);
        if w.warmup > 0 {
            progress(format!("warming up: {} requests", w.warmup));
            for _ in 0..w.warmup {
                let p = w.prompts.draw(&mut rng);
                generate(&w.net, &[p], w.output_tokens, w.eos).map_err(|e| runtime_error("warmup", e))?;
            }
        }
        for b in &spec.batch {
            let b = b.value as usize;
            progress(format!("batch-size sweep: batch {b}"));
            w.batch_table.push(w.sweep_row(b, &mut rng)?);
        }
        Ok(w)
    }

    /// Three static batches of size `b` (after one untimed), summarised by their medians.
    fn sweep_row(&self, b: usize, rng: &mut Rng) -> Result<BatchRow, SetupError> {
        const RUNS: usize = 3;
        let len = self.prompts.typical_len();
        let mut runs: Vec<Generated> = vec![];
        for i in 0..=RUNS {
            let batch = self.prompts.batch(b, len, rng);
            let g =
                generate(&self.net, &batch, self.output_tokens, None).map_err(|e| runtime_error("batch sweep", e))?;
            if i > 0 {
                runs.push(g);
            }
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let e2e = |g: &Generated| g.times[0].last().map(|t| (*t - g.started).as_secs_f64()).unwrap_or(f64::NAN);
        let n = self.output_tokens as f64;
        let itls: Vec<f64> = runs
            .iter()
            .flat_map(|g| g.times[0].windows(2).map(|p| (p[1] - p[0]).as_secs_f64()).collect::<Vec<_>>())
            .collect();
        Ok(BatchRow {
            batch: b,
            runs: RUNS,
            prompt_tokens: len,
            output_tokens: self.output_tokens,
            ttft_p50_s: med(runs.iter().map(|g| g.prefill.as_secs_f64()).collect()),
            itl_p50_s: if itls.is_empty() { 0.0 } else { med(itls) },
            tok_s_per_sequence: med(runs.iter().map(|g| n / e2e(g)).collect()),
            tok_s_total: med(runs.iter().map(|g| b as f64 * n / e2e(g)).collect()),
            prefill_tok_s: med(runs.iter().map(|g| (b * len) as f64 / g.prefill.as_secs_f64()).collect()),
        })
    }

    pub fn batch_table(&self) -> &[BatchRow] {
        &self.batch_table
    }

    pub fn model_facts(&self) -> &ModelFacts {
        &self.facts
    }
}

/// Sets its flag when dropped.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn runtime_error(what: &str, e: candle_core::Error) -> SetupError {
    SetupError::runtime(format!("the model failed during the {what}: {e}"), None)
}

fn describe(s: &crate::dsl::model::ModelSource) -> String {
    use crate::dsl::model::ModelSource::*;
    match s {
        Gguf { path } => format!("GGUF model {path}"),
        Safetensors { path } => format!("safetensors model {path}"),
        Hf { repo, .. } => format!("Hugging Face model {repo}"),
        Synthetic { arch } => format!("synthetic {arch} (random weights)"),
    }
}

impl Workload for InferenceWorkload {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        let prompt = self.prompts.draw(call.rng);
        Box::pin(async move {
            // Off the open-loop generator's thread before any work.
            crate::workload::YieldOnce::default().await;
            let net = self.net.clone();
            let (n, eos, kv) = (self.output_tokens, self.eos, self.kv.clone());
            let input = prompt.len() as u64;
            // Dropping this request (the engine abandons requests the drain gave up on) stops
            // its generation at the next token instead of letting it run on unseen.
            let cancel = CancelOnDrop::default();
            let flag = cancel.0.clone();
            let job = tokio::task::spawn_blocking(move || {
                let bytes = net.kv_bytes_per_token() * (prompt.len() + n) as u64;
                kv.enter(bytes);
                let r = generate_unless(&net, &[prompt], n, eos, &flag);
                kv.leave(bytes);
                r
            });
            match job.await {
                Ok(Ok(g)) => {
                    call.events.input_tokens = input;
                    call.events.prefill = Some(g.prefill);
                    call.events.outputs.extend_from_slice(&g.times[0]);
                    Ok(())
                }
                Ok(Err(e)) => Err(RequestError::backend("model", e.to_string())),
                Err(e) => Err(RequestError::Panicked(format!("the generation task failed: {e}"))),
            }
        })
    }

    fn streams_tokens(&self) -> bool {
        true
    }

    fn slo(&self) -> Option<Slo> {
        (!self.slo.is_empty()).then_some(self.slo)
    }

    fn token_source(&self) -> &'static str {
        "model: generated token ids (greedy), each timed after its copy to the host; prompt lengths from the prompt token ids"
    }

    fn facts(&self) -> Facts {
        let m = &self.facts;
        let kv_peak = self.kv.peak.load(Ordering::Relaxed);
        let mut f = Facts { synthetic: m.synthetic.clone(), ..Facts::default() };
        f.row("model", m.source.clone())
            .row("family", format!("{} ({} layers, vocabulary {})", m.family, m.layers, m.vocab_size))
            .row("parameters", format!("{:.1} M", m.parameters as f64 / 1e6))
            .row("weights", format!("{} on {}, {:.1} MB", m.dtype, m.device, m.weights_bytes as f64 / 1e6))
            .row("load time", format!("{:.2} s", m.load_time_s))
            .row(
                "KV cache",
                format!("{:.1} KB per token, peak {:.1} MB", m.kv_bytes_per_token as f64 / 1e3, kv_peak as f64 / 1e6),
            )
            .row("tokenizer", m.tokenizer.clone())
            .row("prompts", self.prompt_source.clone())
            .row(
                "output",
                format!(
                    "{} tokens{}",
                    self.output_tokens,
                    if self.eos.is_some() { ", up to end of sequence" } else { "" }
                ),
            );
        f.value("load_time", m.load_time_s)
            .value("memory.weights", m.weights_bytes as f64)
            .value("memory.kv_cache", kv_peak as f64);
        if let Some(first) = self.batch_table.first() {
            f.tables.push(Table {
                title: "batch-size sweep".into(),
                note: format!(
                    "{} prompt tokens, {} output tokens, medians of {} runs",
                    first.prompt_tokens, first.output_tokens, first.runs
                ),
                columns: ["batch", "ttft p50", "itl p50", "tok/s per sequence", "tok/s total", "prefill tok/s"]
                    .map(String::from)
                    .to_vec(),
                rows: self
                    .batch_table
                    .iter()
                    .map(|r| {
                        vec![
                            r.batch.to_string(),
                            format!("{:.2} ms", r.ttft_p50_s * 1e3),
                            format!("{:.2} ms", r.itl_p50_s * 1e3),
                            format!("{:.1}", r.tok_s_per_sequence),
                            format!("{:.1}", r.tok_s_total),
                            format!("{:.0}", r.prefill_tok_s),
                        ]
                    })
                    .collect(),
            });
        }
        f
    }

    fn detail(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "model": self.facts,
            "prompts": self.prompt_source,
            "output_tokens": self.output_tokens,
            "stop_at_eos": self.eos.is_some(),
            "warmup_requests": self.warmup,
            "kv_cache_peak_bytes": self.kv.peak.load(Ordering::Relaxed),
            "batch_sweep": self.batch_table,
        }))
    }
}
