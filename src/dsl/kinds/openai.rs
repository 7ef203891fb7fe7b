//! The `openai` kind's language side: a served model behind an OpenAI-compatible API
//! (vLLM, SGLang, llama.cpp's server). Its backend is `src/endpoint/`.

use kdl::KdlNode;
use serde::Serialize;

use super::{missing, Estimating, KindSpec, SetupEstimate};
use crate::dsl::decode::workload::{prompt, read, slo};
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::model::*;
use crate::dsl::reader::{Ctx, NodeReader};
use crate::dsl::span::Spanned;
use crate::dsl::units::{Duration, Percent};
use crate::keyword_enum;

keyword_enum!(OpenaiApi, "endpoint API" { Chat = "chat", Completions = "completions", Embeddings = "embeddings" });
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
    /// Every prompt begins with one of `count` prefixes of `tokens` tokens each (drawn
    /// uniformly), then differs: an unbounded prefix cache hits a known share.
    Pool { count: u64, tokens: u64 },
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

/// The `metrics` node: scraping the server's Prometheus endpoint (on unless turned off).
#[derive(Debug, Default)]
pub struct MetricsNode {
    /// `metrics #false`.
    pub off: bool,
    /// The endpoint; by default the base URL without `/v1`, plus `/metrics`.
    pub url: Option<Spanned<String>>,
    pub every: Option<Spanned<Duration>>,
}

/// The default scrape interval of a server's metrics.
pub const DEFAULT_SCRAPE_EVERY: Duration = Duration(1_000_000_000);

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
    pub metrics: MetricsNode,
    /// `api="embeddings"`: inputs per request (1 when unset).
    pub batch: Option<Spanned<u64>>,
}

pub const OPENAI_NODES: &[&str] = &[
    "endpoint",
    "api-key",
    "header",
    "tokenizer",
    "prompt",
    "prefix",
    "output",
    "sampling",
    "connections",
    "tls",
    "token-check",
    "slo",
    "metrics",
    "batch",
];

pub(in crate::dsl) fn decode(cx: &mut Ctx, nodes: &[KdlNode]) -> Openai {
    let mut o = Openai {
        endpoint: None,
        api_key_env: None,
        headers: vec![],
        tokenizer: None,
        prompt: None,
        prefix: Spanned::new(PromptPrefix::Unique, super::super::span::Span::default()),
        output_tokens: None,
        min_tokens: None,
        ignore_eos: None,
        temperature: None,
        sampling_seed: None,
        extra_body: None,
        connections: None,
        tls_ca: None,
        mismatch: None,
        on_mismatch: MismatchAction::Warn,
        slo: Slo::default(),
        metrics: MetricsNode::default(),
        batch: None,
    };
    for node in nodes {
        match node.name().value() {
            "endpoint" => o.endpoint = read(cx, node, endpoint),
            "api-key" => {
                o.api_key_env = read(cx, node, |cx, r| r.req_prop(cx, "env", "api-key env=\"OPENAI_API_KEY\""))
            }
            "header" => {
                if let Some(h) = read(cx, node, |cx, r| {
                    let name = r.req_arg::<String>(cx, 0, "a header name", "header \"X-Team\" \"ml-infra\"");
                    let value = r.req_arg::<String>(cx, 1, "a header value", "header \"X-Team\" \"ml-infra\"");
                    Some((name?, value?))
                }) {
                    o.headers.push(h);
                }
            }
            "tokenizer" => o.tokenizer = read(cx, node, tokenizer_source),
            "prompt" => o.prompt = read(cx, node, prompt),
            "prefix" => {
                if let Some(p) = read(cx, node, prefix) {
                    o.prefix = p;
                }
            }
            "output" => read(cx, node, |cx, r| {
                o.output_tokens = r.req_prop(cx, "tokens", "output tokens=128");
                o.min_tokens = r.prop(cx, "min-tokens");
                o.ignore_eos = r.prop(cx, "ignore-eos");
                if let (Some(min), Some(max)) = (&o.min_tokens, &o.output_tokens) {
                    if min.value > max.value {
                        cx.error(
                            Code::InvalidRange,
                            min.span,
                            "`min-tokens` is above `tokens`",
                            "above the maximum",
                            "make min-tokens at most tokens",
                        );
                    }
                }
            }),
            "sampling" => read(cx, node, |cx, r| {
                o.temperature = r.prop(cx, "temperature");
                o.sampling_seed = r.prop(cx, "seed");
                o.extra_body = r.prop::<String>(cx, "extra").and_then(|x| json_object(cx, x));
                if let Some(t) = o.temperature.as_ref().filter(|t| !(t.value >= 0.0 && t.value.is_finite())) {
                    cx.error(
                        Code::OutOfRange,
                        t.span,
                        "a temperature cannot be negative",
                        "negative",
                        "use 0 for greedy decoding",
                    );
                }
            }),
            "connections" => {
                o.connections = read(cx, node, |cx, r| {
                    let n = r.req_arg::<u64>(cx, 0, "a connection count", "connections 64")?;
                    if n.value == 0 {
                        cx.error(
                            Code::OutOfRange,
                            n.span,
                            "at least one connection is needed",
                            "zero",
                            "use 1 or more",
                        );
                        return None;
                    }
                    Some(n)
                })
            }
            "tls" => o.tls_ca = read(cx, node, |cx, r| r.req_prop(cx, "ca", "tls ca=\"certs/internal-ca.pem\"")),
            "token-check" => read(cx, node, |cx, r| {
                o.mismatch = r.req_prop::<Percent>(cx, "mismatch", "token-check mismatch=\"5%\" action=\"warn\"");
                if let Some(a) = r.prop::<MismatchAction>(cx, "action") {
                    o.on_mismatch = a.value;
                }
            }),
            "slo" => o.slo = read(cx, node, slo),
            "metrics" => {
                if let Some(m) = read(cx, node, metrics_node) {
                    o.metrics = m;
                }
            }
            "batch" => {
                o.batch = read(cx, node, |cx, r| {
                    let n = r.req_arg::<u64>(cx, 0, "inputs per request", "batch 16")?;
                    if n.value == 0 || n.value > 2048 {
                        cx.error(
                            Code::OutOfRange,
                            n.span,
                            "an embeddings batch holds 1 to 2,048 inputs",
                            "out of range",
                            "use a batch from 1 to 2048",
                        );
                        return None;
                    }
                    Some(n)
                })
            }
            _ => cx.unknown_node(node, "an openai workload", OPENAI_NODES),
        }
    }
    o
}

/// `metrics #false`, or `metrics url="http://host:8000/metrics" every="2s"` (both optional).
fn metrics_node(cx: &mut Ctx, r: &mut NodeReader) -> Option<MetricsNode> {
    let on = r.arg::<bool>(cx, 0);
    let url = r.prop::<String>(cx, "url");
    let every = r.prop::<Duration>(cx, "every");
    if let Some(u) = &url {
        let lower = u.value.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            cx.error(
                Code::UnknownValue,
                u.span,
                "the metrics URL must start with http:// or https://",
                "not an HTTP URL",
                "write the server's metrics address, e.g. url=\"http://127.0.0.1:8000/metrics\"",
            );
            return None;
        }
    }
    if let Some(e) = every.as_ref().filter(|e| e.value.0 < 100_000_000) {
        cx.error(
            Code::OutOfRange,
            e.span,
            "scraping more often than every 100ms would load the server",
            "too often",
            "use every=\"1s\" (the default) or longer",
        );
        return None;
    }
    Some(MetricsNode { off: on.is_some_and(|o| !o.value), url, every })
}

/// `extra=#"{"top_k": 1}"#`: request-body fields, which must form a JSON object.
fn json_object(cx: &mut Ctx, x: Spanned<String>) -> Option<Spanned<serde_json::Map<String, serde_json::Value>>> {
    let (message, label) = match serde_json::from_str::<serde_json::Value>(&x.value) {
        Ok(serde_json::Value::Object(m)) => return Some(Spanned::new(m, x.span)),
        Ok(_) => ("`extra` must be a JSON object".to_string(), "not an object"),
        Err(e) => (format!("`extra` is not valid JSON: {e}"), "not JSON"),
    };
    let help = "give the extra request-body fields as a JSON object, e.g. extra=#\"{\"top_k\": 1}\"#";
    cx.error(Code::WrongType, x.span, message, label, help);
    None
}

/// `endpoint "http://127.0.0.1:8000/v1" model="NAME" api="chat" stream=#true timeout="60s"`
fn endpoint(cx: &mut Ctx, r: &mut NodeReader) -> Option<Endpoint> {
    let url = r.req_arg::<String>(cx, 0, "a base URL", "endpoint \"http://127.0.0.1:8000/v1\" model=\"NAME\"");
    let model = r.req_prop::<String>(cx, "model", "model=\"NAME\"");
    let api = r.prop::<OpenaiApi>(cx, "api").map_or(OpenaiApi::Chat, |a| a.value);
    let stream = r.prop::<bool>(cx, "stream").is_none_or(|s| s.value);
    let timeout = r.prop(cx, "timeout");
    let url = url?;
    let lower = url.value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        cx.error(
            Code::UnknownValue,
            url.span,
            format!("`{}` is not an http:// or https:// URL", url.value),
            "not a URL",
            "give the server's base URL, for example http://127.0.0.1:8000/v1",
        );
        return None;
    }
    Some(Endpoint { url, model: model?, api, stream, timeout })
}

/// `tokenizer file="tokenizer.json"` | `tokenizer gguf="model.gguf"` | `tokenizer hf="org/name"`
fn tokenizer_source(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<TokenizerSource>> {
    let mut found: Vec<Spanned<TokenizerSource>> = vec![];
    if let Some(p) = r.prop::<String>(cx, "file") {
        found.push(p.map(|path| TokenizerSource::File { path }));
    }
    if let Some(p) = r.prop::<String>(cx, "gguf") {
        found.push(p.map(|path| TokenizerSource::Gguf { path }));
    }
    if let Some(p) = r.prop::<String>(cx, "hf") {
        found.push(p.map(|repo| TokenizerSource::Hf { repo }));
    }
    if found.len() > 1 {
        cx.conflict(
            (found[0].span, "one source"),
            (found[1].span, "another source"),
            "a tokenizer has exactly one source",
            "keep one of file=, gguf= or hf=",
        );
    }
    if found.is_empty() && !["file", "gguf", "hf"].iter().any(|k| r.has_prop(k)) {
        let span = r.name_span(cx);
        cx.error(
            Code::MissingOption,
            span,
            "`tokenizer` needs a source",
            "no source",
            "add one of file=\"tokenizer.json\", gguf=\"model.gguf\" or hf=\"org/name\"",
        );
    }
    (!found.is_empty()).then(|| found.swap_remove(0))
}

/// `prefix "unique"` | `prefix "shared" tokens=64` | `prefix "pool" count=8 tokens=256` |
/// `prefix "as-drawn"`
fn prefix(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<PromptPrefix>> {
    let mode = r.req_arg::<String>(cx, 0, "a prefix mode", "prefix \"unique\"")?;
    let p = match mode.value.as_str() {
        "unique" => PromptPrefix::Unique,
        "as-drawn" => PromptPrefix::AsDrawn,
        "shared" => {
            let t = r.req_prop::<u64>(cx, "tokens", "prefix \"shared\" tokens=64")?;
            if t.value == 0 {
                cx.error(Code::OutOfRange, t.span, "a shared prefix needs at least one token", "zero", "use 1 or more");
                return None;
            }
            PromptPrefix::Shared { tokens: t.value }
        }
        "pool" => {
            let c = r.req_prop::<u64>(cx, "count", "prefix \"pool\" count=8 tokens=256")?;
            let t = r.req_prop::<u64>(cx, "tokens", "prefix \"pool\" count=8 tokens=256")?;
            if c.value == 0 || c.value > 100_000 {
                cx.error(
                    Code::OutOfRange,
                    c.span,
                    "a prefix pool holds 1 to 100,000 prefixes",
                    "out of range",
                    "use a count from 1 to 100000",
                );
                return None;
            }
            if t.value == 0 {
                cx.error(Code::OutOfRange, t.span, "a pool prefix needs at least one token", "zero", "use 1 or more");
                return None;
            }
            PromptPrefix::Pool { count: c.value, tokens: t.value }
        }
        other => {
            let help =
                super::super::suggest::help_for(other, &["unique", "shared", "pool", "as-drawn"], "prefix modes");
            cx.error(Code::UnknownValue, mode.span, format!("`{other}` is not a prefix mode"), "unknown mode", help);
            return None;
        }
    };
    Some(Spanned::new(p, mode.span))
}

impl KindSpec for Openai {
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>) {
        if self.endpoint.is_none() {
            missing(diags, w, "an endpoint", "endpoint \"http://127.0.0.1:8000/v1\" model=\"NAME\"")
        }
        let embeddings = self.endpoint.as_ref().is_some_and(|e| e.api == OpenaiApi::Embeddings);
        if let (Some(b), false) = (&self.batch, embeddings) {
            diags.push(
                Diagnostic::error(Code::ConflictingOptions, "`batch` applies to api=\"embeddings\" only")
                    .with_label(b.span, "inputs per request")
                    .with_help("add api=\"embeddings\" to the endpoint, or remove the batch node"),
            );
        }
        if let (Some(t), true) = (&self.output_tokens, embeddings) {
            diags.push(
                Diagnostic::error(Code::ConflictingOptions, "an embeddings request has no output tokens")
                    .with_label(t.span, "output tokens")
                    .with_help("remove the output node: an embeddings endpoint returns vectors"),
            );
        }
        if let (Some(ca), Some(e)) = (&self.tls_ca, &self.endpoint) {
            if e.url.value.to_ascii_lowercase().starts_with("http://") {
                diags.push(
                    Diagnostic::warning(Code::ConflictingOptions, "`tls ca=` has no effect on an http:// endpoint")
                        .with_label(ca.span, "not used")
                        .with_label(e.url.span, "plain HTTP")
                        .with_help("use the server's https:// URL, or remove the tls node"),
                );
            }
        }
    }

    fn summary(&self) -> String {
        let Some(e) = &self.endpoint else { return "OpenAI-compatible endpoint (none given)".into() };
        let api = match e.api {
            OpenaiApi::Chat => "chat/completions",
            OpenaiApi::Completions => "completions",
            OpenaiApi::Embeddings => "embeddings",
        };
        let mut out = format!(
            "model `{}` at {}/{api}, {}",
            e.model.value,
            e.url.value.trim_end_matches('/'),
            match (e.api, e.stream) {
                (OpenaiApi::Embeddings, _) =>
                    format!("{} inputs a request", self.batch.as_ref().map_or(1, |b| b.value)),
                (_, true) => "streamed".into(),
                (_, false) => "not streamed".into(),
            }
        );
        if let Some(t) = &self.output_tokens {
            out += &format!(", up to {} output tokens", t.value);
        }
        out
    }

    /// A server's speed is not known before the run.
    fn service_time(&self, _: &Estimating) -> Option<(f64, String)> {
        None
    }

    /// A served model may stop early: its minimum is what a streamed request surely adds.
    fn tokens_per_request(&self) -> Option<f64> {
        match &self.endpoint {
            Some(e) if e.stream => self.min_tokens.as_ref().map(|t| t.value as f64),
            _ => None,
        }
    }

    /// The server is already up: nothing to set up but a request for its models.
    fn setup_steps(&self, _: &Estimating) -> Vec<SetupEstimate> {
        vec![]
    }

    /// The client mostly waits on the server.
    fn cpu_demand(&self, _: usize, _: usize, _: bool) -> Option<usize> {
        None
    }

    /// The server's Prometheus endpoint: by default the base URL without `/v1`, plus
    /// `/metrics` (where vLLM, SGLang, llama.cpp's server and TGI serve it).
    fn server_metrics(&self) -> Option<super::ServerMetrics> {
        let e = self.endpoint.as_ref().filter(|_| !self.metrics.off)?;
        let url = match &self.metrics.url {
            Some(u) => u.value.clone(),
            None => {
                let base = e.url.value.trim_end_matches('/');
                format!("{}/metrics", base.strip_suffix("/v1").unwrap_or(base))
            }
        };
        Some(super::ServerMetrics {
            url,
            every: self.metrics.every.as_ref().map_or(DEFAULT_SCRAPE_EVERY, |e| e.value),
            api_key_env: self.api_key_env.as_ref().map(|k| k.value.clone()),
        })
    }
}
