//! The `openai` workload kind: requests to an OpenAI-compatible server (vLLM, TGI, SGLang,
//! llama.cpp's server, a gateway), `/chat/completions` or `/completions`, streamed over SSE
//! or not. Timing follows the engine's definitions from the intended start: an output
//! timestamp per SSE chunk that carries content or reasoning (never a role-only or empty
//! chunk), so TTFT is the first such chunk and ITL the gaps between them; the wait for a
//! connection is a declared measure of its own. Token counts come from the server's usage,
//! else the tokenizer, else one per chunk, and the workload says which.

pub mod client;
pub mod protocol;
mod received;
mod send;
pub mod sse;
pub mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use serde_json::json;
use tokenizers::Tokenizer;

use crate::dsl::metrics::{
    MetricDef, CACHED_PREFIX_TOKENS, CONNECT_WAIT, INPUTS, REASONING_TIME, REASONING_TOKENS, SHORT_OUTPUTS,
    TOKEN_MISMATCH, TTFO,
};
use crate::dsl::model::{
    MismatchAction, Openai, OpenaiApi, Prompt as PromptSpec, PromptPrefix, TokenDist, TokenizerSource,
};
use crate::workload::facts::{Check, Table};
use crate::workload::setup::{ready, Prepared, SetupContext, SetupError};
use crate::workload::{BoxFuture, Call, Facts, RequestError, Slo, Workload, YieldOnce};
use client::{Pool, Target};
use protocol::Params;
use received::{piece_error, Received};

/// The declared measures, in the order `Events::measure` indexes them.
const MEASURES: &[&MetricDef] = &[
    &CONNECT_WAIT,
    &REASONING_TOKENS,
    &TOKEN_MISMATCH,
    &SHORT_OUTPUTS,
    &TTFO,
    &REASONING_TIME,
    &CACHED_PREFIX_TOKENS,
    &INPUTS,
];
const M_CONNECT: usize = 0;
const M_REASONING: usize = 1;
const M_MISMATCH: usize = 2;
const M_SHORT: usize = 3;
const M_TTFO: usize = 4;
const M_REASONING_TIME: usize = 5;
const M_CACHED_PREFIX: usize = 6;
const M_INPUTS: usize = 7;

/// The default per-request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the setup waits for the server to answer its model listing.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a request's output token count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TokenSource {
    Usage,
    Tokenizer,
    Chunks,
    None,
}

impl TokenSource {
    fn name(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Tokenizer => "tokenizer",
            TokenSource::Chunks => "chunks",
            TokenSource::None => "none",
        }
    }
}

/// What the run saw, for the facts and the result's setup record.
#[derive(Default)]
struct Tally {
    sources: BTreeMap<TokenSource, u64>,
    finish: BTreeMap<String, u64>,
    /// Chunks read past without output (role-only, empty, usage-only).
    skipped_chunks: u64,
    /// Requests whose two token counts disagreed by more than the set share.
    mismatched: u64,
    /// Requests with both counts.
    compared: u64,
    /// Requests shorter than asked.
    short: u64,
    succeeded: u64,
    /// Requests sent again on a new connection because the server had closed the
    /// kept-alive one they were written on (never counted as errors).
    retried: u64,
    /// Of the successful requests: prompt tokens, and those an unbounded prefix cache
    /// would already hold (see `cached_prefix_tokens`).
    prompt_tokens: u64,
    cached_prefix_tokens: u64,
    /// Embeddings: the vectors' dimension (the first response's).
    dimension: Option<usize>,
}

pub struct OpenaiWorkload {
    pool: Pool,
    params: Params,
    prompts: text::Prompts,
    tokenizer: Option<Arc<Tokenizer>>,
    tokenizer_label: String,
    headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    timeout: Duration,
    mismatch: Option<(f64, MismatchAction)>,
    slo: Slo,
    url: String,
    served_models: Vec<String>,
    prompt_label: String,
    tally: Mutex<Tally>,
    seen_h2: AtomicU64,
    /// Per shared prefix, whether a request has carried it yet; and its length in tokens
    /// (exact with a tokenizer, else words).
    prefix_sent: Vec<std::sync::atomic::AtomicBool>,
    prefix_tokens: u64,
    /// `api="embeddings"`: inputs per request.
    batch: usize,
}

/// Prepares the workload: parses the URL, reads the API key and the tokenizer, and asks
/// the server for its models, so an unreachable server or an unknown model fails here,
/// pointed at the `endpoint` node, rather than as a run of failed requests.
pub fn prepare(spec: &Openai, cx: &mut SetupContext) -> Result<Prepared, SetupError> {
    let at = spec.endpoint.as_ref().map(|e| e.url.span);
    ready(OpenaiWorkload::load(spec, cx), at)
}

fn tokenizer(spec: &Openai, cx: &SetupContext) -> Result<Option<(Tokenizer, String)>, SetupError> {
    let Some(t) = &spec.tokenizer else { return Ok(None) };
    let at = t.span;
    let loaded = match &t.value {
        TokenizerSource::File { path } => {
            let p = cx.resolve(path);
            crate::tokenizer::from_file(&p).map(|t| (t, format!("tokenizer.json ({})", p.display())))
        }
        TokenizerSource::Gguf { path } => {
            let p = cx.resolve(path);
            crate::tokenizer::from_gguf(&p).map(|t| (t, format!("GGUF metadata ({})", p.display())))
        }
        TokenizerSource::Hf { repo } => {
            let cache = hf_hub::Cache::from_env().repo(hf_hub::Repo::new(repo.clone(), hf_hub::RepoType::Model));
            match cache.get("tokenizer.json") {
                Some(p) => crate::tokenizer::from_file(&p).map(|t| (t, format!("tokenizer.json of {repo} (hub cache)"))),
                None => Err(SetupError::input(
                    format!("`{repo}`'s tokenizer.json is not in the local Hugging Face cache"),
                    "benchctl does not download it during a run: fetch it first (huggingface-cli download REPO tokenizer.json), or give tokenizer file=\"PATH\"",
                )),
            }
        }
    };
    loaded.map(Some).map_err(|e| e.at(at))
}

/// The token-count check: a row (`on-mismatch="warn"`), or a graded check (`"fail"`).
fn token_check(f: &mut Facts, t: &Tally, limit: f64, action: MismatchAction) {
    let text = format!(
        "{} of {} requests with both a usage and a tokenizer count differ by more than {:.1}%",
        t.mismatched,
        t.compared,
        limit * 100.0
    );
    match action {
        MismatchAction::Warn => {
            let w = if t.mismatched > 0 { "warning: " } else { "" };
            f.row("token check", format!("{w}{text}"));
        }
        MismatchAction::Fail => f.checks.push(Check {
            name: "token_check".into(),
            text: format!("token counts agree within {:.1}%", limit * 100.0),
            passed: t.mismatched == 0 && t.compared > 0,
            message: if t.compared == 0 { "no request had both a usage and a tokenizer count".into() } else { text },
            measured: Some(t.mismatched as f64),
            measured_text: format!("{} mismatched", t.mismatched),
        }),
    }
}

/// A response with an error status, as a request error of its kind (`http_429`,
/// `http_4xx`, `http_5xx`) with the start of its body.
/// A response body read to its end.
async fn whole(body: hyper::body::Incoming) -> Result<Bytes, RequestError> {
    Ok(body
        .collect()
        .await
        .map_err(|e| RequestError::backend("stream_cut", format!("the response broke off: {e}")))?
        .to_bytes())
}

fn http_error(status: hyper::StatusCode, body: &[u8]) -> RequestError {
    let kind = match status.as_u16() {
        429 => "http_429",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    };
    RequestError::backend(kind, format!("HTTP {status}: {}", protocol::clip(&String::from_utf8_lossy(body))))
}

/// The headers every request carries: the API key from its environment variable (as a
/// bearer token, marked sensitive) and the scenario's own headers.
fn headers(spec: &Openai) -> Result<Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>, SetupError> {
    let mut headers = vec![];
    if let Some(var) = &spec.api_key_env {
        let key = std::env::var(&var.value).map_err(|_| {
            SetupError::input(
                format!("the environment variable `{}` (the API key) is not set", var.value),
                format!(
                    "export {}=... before the run; its value is sent as a bearer token and never written anywhere",
                    var.value
                ),
            )
            .at(var.span)
        })?;
        let mut v = hyper::header::HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            SetupError::input(
                format!("the value of `{}` cannot be sent in an HTTP header", var.value),
                "an API key is printable ASCII with no line breaks",
            )
            .at(var.span)
        })?;
        v.set_sensitive(true);
        headers.push((hyper::header::AUTHORIZATION, v));
    }
    for (name, value) in &spec.headers {
        let n = hyper::header::HeaderName::from_bytes(name.value.as_bytes()).map_err(|_| {
            SetupError::input(format!("`{}` is not an HTTP header name", name.value), "use letters, digits and `-`")
                .at(name.span)
        })?;
        let v = hyper::header::HeaderValue::from_str(&value.value).map_err(|_| {
            SetupError::input("the header value cannot be sent in HTTP", "use printable ASCII with no line breaks")
                .at(value.span)
        })?;
        headers.push((n, v));
    }
    Ok(headers)
}

/// Where prompts come from (drawn lengths, or a file's texts filtered by length) and how to
/// describe them.
fn prompt_source(
    spec: &Openai,
    tokenizer: Option<&tokenizers::Tokenizer>,
    cx: &mut SetupContext,
) -> Result<(text::Source, String), SetupError> {
    Ok(match &spec.prompt {
        None => (text::Source::Synthetic(TokenDist::Fixed { tokens: 128 }), "synthetic, 128 tokens".to_string()),
        Some(PromptSpec::Synthetic(d)) => {
            (text::Source::Synthetic(d.value), format!("synthetic, {}", crate::prompts::describe(&d.value)))
        }
        Some(PromptSpec::File { path, format, tokens }) => {
            let p = cx.resolve(&path.value);
            let fmt = format.as_ref().map_or(crate::dsl::model::PromptFormat::Prompt, |f| f.value);
            let texts = crate::prompts::read_texts(&p, fmt).map_err(|e| e.at(path.span))?;
            let mut texts = crate::prompts::shard_texts(texts, cx.partition, &p).map_err(|e| e.at(path.span))?;
            if let Some(r) = tokens {
                let Some(tok) = tokenizer else {
                    return Err(SetupError::input(
                        "a length filter on a prompt file needs a tokenizer",
                        "add tokenizer gguf=\"MODEL.gguf\" (or file=, hf=), or drop `tokens=` from the prompt node",
                    )
                    .at(r.span));
                };
                texts.retain(|t| {
                    tok.encode(t.as_str(), false)
                        .is_ok_and(|e| (r.value.lo..=r.value.hi).contains(&(e.get_ids().len() as u64)))
                });
            }
            if texts.is_empty() {
                return Err(SetupError::input(
                    format!("no prompt of `{}` is left to send", p.display()),
                    "check the file, or widen `tokens=\"MIN..MAX\"`",
                )
                .at(path.span));
            }
            let label = format!("{} prompts of {}", texts.len(), p.display());
            (text::Source::Texts(Arc::new(texts)), label)
        }
    })
}

impl OpenaiWorkload {
    pub fn load(spec: &Openai, cx: &mut SetupContext) -> Result<OpenaiWorkload, SetupError> {
        let e = spec.endpoint.as_ref().ok_or_else(|| {
            SetupError::input(
                "the workload has no `endpoint`",
                "add endpoint \"http://127.0.0.1:8000/v1\" model=\"NAME\"",
            )
        })?;
        let target = Target::parse(&e.url.value).map_err(|m| {
            SetupError::input(m.to_string(), "give the server's base URL, for example http://127.0.0.1:8000/v1")
                .at(e.url.span)
        })?;
        let headers = headers(spec)?;
        let tok = tokenizer(spec, cx)?;
        let (tokenizer, tokenizer_label) = match tok {
            Some((t, label)) => (Some(Arc::new(t)), label),
            None => (None, "none".to_string()),
        };
        let (source, prompt_label) = prompt_source(spec, tokenizer.as_deref(), cx)?;
        let prompt_label = match spec.prefix.value {
            PromptPrefix::Unique => format!("{prompt_label}; each begins differently (prefix caches miss)"),
            PromptPrefix::Shared { tokens } => format!("{prompt_label}, after a shared prefix of {tokens} tokens"),
            PromptPrefix::Pool { count, tokens } => {
                format!("{prompt_label}, after one of {count} shared prefixes of {tokens} tokens (drawn uniformly)")
            }
            PromptPrefix::AsDrawn => format!("{prompt_label}; sent as drawn"),
        };
        let prompts = text::Prompts::new(source, spec.prefix.value, tokenizer.clone(), cx.seed);
        let params = Params {
            api: e.api,
            model: e.model.value.clone(),
            // An embeddings response is one JSON body.
            stream: e.stream && e.api != OpenaiApi::Embeddings,
            max_tokens: spec.output_tokens.as_ref().map(|t| t.value),
            min_tokens: spec.min_tokens.as_ref().map(|t| t.value),
            ignore_eos: spec.ignore_eos.as_ref().map(|t| t.value),
            temperature: spec.temperature.as_ref().map(|t| t.value),
            seed: spec.sampling_seed.as_ref().map(|t| t.value),
            extra: spec.extra_body.as_ref().map(|x| x.value.clone()).unwrap_or_default(),
        };
        let timeout = e.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value.as_std());
        let limit = spec.connections.as_ref().map(|c| c.value as usize);
        let url = target.url("");
        cx.progress(format!("asking {url}/models for its models"));
        let roots = client::roots(spec.tls_ca.as_ref().map(|ca| cx.resolve(&ca.value)).as_deref()).map_err(|m| {
            let help = "name a PEM file of the certificate authorities that signed the server's certificate";
            SetupError::input(m.to_string(), help).at(spec.tls_ca.as_ref().map_or(e.url.span, |ca| ca.span))
        })?;
        let tls = target.https.then(|| client::tls_connector(roots));
        let served_models = check_server(&target, tls.clone(), &headers, &e.model.value, e.model.span, e.url.span, cx)?;
        Ok(OpenaiWorkload {
            pool: Pool::new(target, tls, limit, timeout.min(Duration::from_secs(30))),
            params,
            tokenizer,
            tokenizer_label,
            headers,
            timeout,
            mismatch: spec.mismatch.as_ref().map(|m| (m.value.0, spec.on_mismatch)),
            slo: Slo::from_spec(&spec.slo),
            url,
            served_models,
            prompt_label,
            tally: Mutex::new(Tally::default()),
            seen_h2: AtomicU64::new(0),
            prefix_sent: (0..prompts.prefixes()).map(|_| Default::default()).collect(),
            prefix_tokens: match spec.prefix.value {
                PromptPrefix::Shared { tokens } | PromptPrefix::Pool { tokens, .. } => tokens,
                _ => 0,
            },
            prompts,
            batch: spec.batch.as_ref().map_or(1, |b| b.value as usize),
        })
    }

    /// The hit rate an unbounded prefix cache would reach, when prompts share prefixes.
    fn prefix_row(&self, f: &mut Facts, t: &Tally) {
        if self.prefix_sent.is_empty() {
            return;
        }
        let used = self.prefix_sent.iter().filter(|s| s.load(Ordering::Relaxed)).count();
        let rate = if t.prompt_tokens > 0 { t.cached_prefix_tokens as f64 / t.prompt_tokens as f64 } else { 0.0 };
        f.row(
            "prefix cache (implied)",
            format!(
                "an unbounded prefix cache would hold {:.1} % of the prompt tokens of the successful requests ({} of {}; {used} of {} prefixes sent): compare the server's `prefix_cache_hit_rate`",
                rate * 100.0,
                t.cached_prefix_tokens,
                t.prompt_tokens,
                self.prefix_sent.len()
            ),
        );
    }

    /// One request, from the first byte sent to the end of the response.
    async fn request(&self, call: Call<'_>) -> Result<(), RequestError> {
        if self.params.api == OpenaiApi::Embeddings {
            return self.embed(call).await;
        }
        let prompt = self.prompts.draw(call.rng);
        // Whether an earlier request carried this prompt's prefix: then an unbounded prefix
        // cache holds it (counted when the request succeeds).
        let cached = prompt.prefix.is_some_and(|i| self.prefix_sent[i].swap(true, Ordering::Relaxed));
        let events = call.events;
        let (lease, mut body) = self.send(Bytes::from(self.params.body(&prompt.text)), events).await?;
        let mut got = Received::default();
        let ended = if self.params.stream {
            self.read_stream(&mut body, &mut got, events).await?
        } else {
            let piece = protocol::response(self.params.api, &whole(body).await?).map_err(piece_error)?;
            got.take(piece, None, events);
            true
        };
        if ended {
            lease.release();
        }
        self.account(&prompt, cached, got, events)
    }

    /// Reads a streamed (SSE) body to its end; returns whether the connection can be kept
    /// (the body ended). A stream that breaks off or ends without a finish is an error.
    async fn read_stream(
        &self,
        body: &mut hyper::body::Incoming,
        got: &mut Received,
        events: &mut crate::workload::Events,
    ) -> Result<bool, RequestError> {
        let mut parser = sse::Parser::default();
        let mut pending = vec![];
        let mut done = false;
        while !done {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(e)) if got.finish.is_none() => {
                    return Err(RequestError::backend("stream_cut", format!("the stream broke off: {e}")))
                }
                Some(Err(_)) => break,
            };
            let Ok(data) = frame.into_data() else { continue };
            let at = Instant::now();
            parser.feed(&data, &mut pending);
            done = got.take_events(self.params.api, pending.drain(..), at, events)?;
            if let Some(m) = parser.malformed() {
                return Err(RequestError::backend("malformed_sse", m.to_string()));
            }
        }
        if !done {
            let mut rest = vec![];
            parser.finish(&mut rest);
            done = got.take_events(self.params.api, rest.into_iter(), Instant::now(), events)?;
        }
        if !done && got.finish.is_none() {
            return Err(RequestError::backend(
                "stream_cut",
                format!("the stream ended after {} chunks without a finish reason or [DONE]", got.chunks),
            ));
        }
        // The connection is kept only once the body has ended: a server closes the
        // chunked body right after [DONE], so this waits briefly, if at all.
        Ok(body.is_end_stream()
            || tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(f) = body.frame().await {
                    if f.is_err() {
                        return false;
                    }
                }
                true
            })
            .await
            .unwrap_or(false))
    }

    /// Token counts, the length check and the tallies of one successful response.
    /// `cached`: whether an earlier request carried the prompt's shared prefix.
    fn account(
        &self,
        prompt: &text::Prompt,
        cached: bool,
        got: Received,
        events: &mut crate::workload::Events,
    ) -> Result<(), RequestError> {
        let usage = got.usage.unwrap_or_default();
        let counted = self.tokenizer.as_ref().and_then(|t| {
            let c = t.encode(got.content.as_str(), false).ok()?.get_ids().len() as u64;
            let r = t.encode(got.reasoning.as_str(), false).ok()?.get_ids().len() as u64;
            Some((c + r, r))
        });
        let (source, output, reasoning) = match (usage.completion, counted) {
            (Some(n), _) => {
                (TokenSource::Usage, n, usage.reasoning.or(counted.map(|c| c.1)).unwrap_or(got.reasoning_chunks))
            }
            (None, Some((n, r))) => (TokenSource::Tokenizer, n, r),
            (None, None) if self.params.stream => (TokenSource::Chunks, got.chunks, got.reasoning_chunks),
            (None, None) => (TokenSource::None, 0, 0),
        };
        events.output_tokens = Some(output);
        events.input_tokens = usage.prompt.or(prompt.tokens).unwrap_or(0);
        if reasoning > 0 {
            events.measure(M_REASONING, reasoning as f64);
        }
        if let Some(answer) = got.first_answer {
            events.measure_since_start(M_TTFO, answer);
            if let Some(thought) = got.first_reasoning.filter(|&t| t < answer) {
                events.measure(M_REASONING_TIME, (answer - thought).as_secs_f64());
            }
        }
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        tally.succeeded += 1;
        *tally.sources.entry(source).or_default() += 1;
        *tally.finish.entry(got.finish.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        tally.skipped_chunks += got.skipped;
        if let Some(max) = self.params.max_tokens {
            if output < max {
                tally.short += 1;
                events.measure(M_SHORT, 1.0);
            }
        }
        if let (Some(u), Some((t, _))) = (usage.completion, counted) {
            tally.compared += 1;
            let share = if u == 0 {
                if t == 0 {
                    0.0
                } else {
                    1.0
                }
            } else {
                u.abs_diff(t) as f64 / u as f64
            };
            events.measure(M_MISMATCH, share);
            if let Some((limit, action)) = self.mismatch {
                if share > limit {
                    tally.mismatched += 1;
                    if action == MismatchAction::Fail {
                        return Err(RequestError::backend(
                            "token_mismatch",
                            format!("the server counted {u} output tokens, the tokenizer {t}"),
                        ));
                    }
                }
            }
        }
        tally.prompt_tokens += events.input_tokens;
        if cached {
            tally.cached_prefix_tokens += self.prefix_tokens;
            events.measure(M_CACHED_PREFIX, self.prefix_tokens as f64);
        }
        Ok(())
    }
}

/// Asks the server for its models (`GET /models`) on a connection of its own, in a
/// runtime of its own: an unreachable server is a setup failure; a model the listing lacks
/// is an input error with the names it has; a server without the listing is a warning.
fn check_server(
    target: &Target,
    tls: Option<tokio_rustls::TlsConnector>,
    headers: &[(hyper::header::HeaderName, hyper::header::HeaderValue)],
    model: &str,
    model_span: crate::dsl::span::Span,
    url_span: crate::dsl::span::Span,
    cx: &mut SetupContext,
) -> Result<Vec<String>, SetupError> {
    let target = target.clone();
    let headers = headers.to_vec();
    let url = target.url("/models");
    // A failure is its message, and whether it was the TLS handshake (for the help).
    let plain = |e: &dyn std::fmt::Display| (e.to_string(), false);
    let answer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| plain(&e))?;
        rt.block_on(async move {
            let pool = Pool::new(target, tls, Some(1), SETUP_TIMEOUT);
            let fetch = async {
                let mut lease =
                    pool.acquire().await.map_err(|e| (e.to_string(), matches!(e, client::ConnectError::Tls(_))))?;
                let mut req = pool.request("/models", lease.is_h2()).method("GET");
                for (n, v) in &headers {
                    req = req.header(n, v);
                }
                let req = req.body(Full::new(Bytes::new())).map_err(|e| plain(&e))?;
                let resp = lease.send(req).await.map_err(|e| plain(&e))?;
                let status = resp.status();
                let body = resp.into_body().collect().await.map_err(|e| plain(&e))?.to_bytes();
                Ok((status.as_u16(), body))
            };
            tokio::time::timeout(SETUP_TIMEOUT, fetch).await.unwrap_or_else(|_| Err(plain(&"no answer within 10 s")))
        })
    })
    .join()
    .unwrap_or_else(|_| Err(plain(&"the check panicked")));
    let (status, body) = answer.map_err(|(m, tls_failed)| {
        let help = if tls_failed {
            "if the server's certificate is signed by a private certificate authority, trust it with tls ca=\"ca.pem\""
        } else {
            "start the server, or point the workload at it (scenarios/openai.kdl: --set base_url=http://HOST:PORT/v1)"
        };
        SetupError::runtime(format!("cannot reach the server at {url}: {m}"), Some(help.into())).at(url_span)
    })?;
    match status {
        200 => {}
        401 | 403 => {
            return Err(SetupError::input(
                format!(
                    "the server refused the request for its models (HTTP {status}): the API key is missing or wrong"
                ),
                "name the variable holding the key with api-key env=\"VAR\"",
            )
            .at(url_span))
        }
        _ => {
            cx.warn("setup", format!("{url} answered HTTP {status}, so the model name `{model}` was not checked"));
            return Ok(vec![]);
        }
    }
    let listed: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("data").and_then(|d| d.as_array()).cloned())
        .map(|d| d.iter().filter_map(|m| m.get("id").and_then(|i| i.as_str()).map(str::to_string)).collect())
        .unwrap_or_default();
    if !listed.is_empty() && !listed.iter().any(|m| m == model) {
        return Err(SetupError::input(
            format!("the server does not serve a model named `{model}`; it serves: {}", listed.join(", ")),
            format!("use one of its names, e.g. model=\"{}\" (or --set model={})", listed[0], listed[0]),
        )
        .at(model_span));
    }
    Ok(listed)
}

/// `name n, name n` of a tally.
fn counts<'a>(m: impl Iterator<Item = (&'a str, u64)>) -> String {
    m.map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

impl Workload for OpenaiWorkload {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        Box::pin(async move {
            // Off the load generator's thread before any work.
            YieldOnce::default().await;
            match tokio::time::timeout(self.timeout, self.request(call)).await {
                Ok(r) => r,
                Err(_) => {
                    Err(RequestError::backend("timeout", format!("no complete answer within {:?}", self.timeout)))
                }
            }
        })
    }

    fn streams_tokens(&self) -> bool {
        self.params.stream
    }

    fn slo(&self) -> Option<Slo> {
        (!self.slo.is_empty()).then_some(self.slo)
    }

    fn token_source(&self) -> &'static str {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let top = t.sources.iter().max_by_key(|(_, n)| **n).map(|(s, _)| *s);
        let mixed = t.sources.len() > 1;
        match (top, mixed) {
            (_, true) => "mixed: see the workload's token counts (usage, tokenizer or chunks per request)",
            (Some(TokenSource::Usage), _) => "the server's usage (stream_options.include_usage)",
            (Some(TokenSource::Tokenizer), _) => "the tokenizer, over the text received (the server sent no usage)",
            (Some(TokenSource::Chunks), _) => "one token per content chunk (no usage from the server, no tokenizer)",
            (Some(TokenSource::None), _) => "none: not streamed, no usage and no tokenizer",
            (None, _) => "no successful request",
        }
    }

    fn measures(&self) -> &'static [&'static MetricDef] {
        MEASURES
    }

    fn facts(&self) -> Facts {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let api = self.params.path().trim_start_matches('/');
        let opened = self.pool.opened.load(Ordering::Relaxed);
        let h2 = self.pool.opened_h2.load(Ordering::Relaxed);
        let mut f = Facts::default();
        f.row(
            "endpoint",
            format!("{}/{api}, {}", self.url, if self.params.stream { "streamed (SSE)" } else { "not streamed" }),
        )
        .row("model", self.params.model.clone())
        .row("prompts", self.prompt_label.clone())
        .row("tokenizer", self.tokenizer_label.clone())
        .row(
            "token counts",
            if t.sources.is_empty() {
                "no successful request".into()
            } else {
                format!("per request from: {}", counts(t.sources.iter().map(|(k, v)| (k.name(), *v))))
            },
        )
        .row(
            "finish reasons",
            if t.finish.is_empty() { "none".into() } else { counts(t.finish.iter().map(|(k, v)| (k.as_str(), *v))) },
        )
        .row("chunks without output", format!("{} (role-only, empty or usage-only: not timed)", t.skipped_chunks))
        .row(
            "connections",
            format!(
                "{opened} opened{}",
                if h2 > 0 { format!(" ({h2} HTTP/2)") } else { " (HTTP/1.1, kept alive)".into() }
            ),
        )
        .row(
            "retried",
            format!(
                "{} (sent again on a new connection: the server had closed the kept-alive one; not errors)",
                t.retried
            ),
        );
        self.prefix_row(&mut f, &t);
        if self.params.api == OpenaiApi::Embeddings {
            f.row(
                "embeddings",
                format!(
                    "{} inputs a request; vectors of {}",
                    self.batch,
                    t.dimension.map_or("no response yet".into(), |d| format!("{d} dimensions"))
                ),
            );
        }
        if let Some(max) = self.params.max_tokens {
            if t.short > 0 {
                f.row(
                    "short outputs",
                    format!(
                        "warning: {} of {} successful requests returned fewer than the {max} output tokens asked for",
                        t.short, t.succeeded
                    ),
                );
            }
        }
        if let Some((limit, action)) = self.mismatch {
            token_check(&mut f, &t, limit, action);
        }
        if !self.served_models.is_empty() {
            f.tables.push(Table {
                title: "served models".into(),
                note: "from GET /models at setup".into(),
                columns: vec!["model".into()],
                rows: self.served_models.iter().map(|m| vec![m.clone()]).collect(),
            });
        }
        f
    }

    fn detail(&self) -> Option<serde_json::Value> {
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let sources: BTreeMap<&str, u64> = t.sources.iter().map(|(k, v)| (k.name(), *v)).collect();
        Some(json!({
            "url": self.url,
            "api": self.params.api.as_str(),
            "model": self.params.model,
            "stream": self.params.stream,
            "tokenizer": self.tokenizer_label,
            // Header names only: a value may be a secret.
            "headers": self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            "token_sources": sources,
            "finish_reasons": t.finish,
            "chunks_without_output": t.skipped_chunks,
            "short_outputs": t.short,
            "token_mismatches": t.mismatched,
            "connections_opened": self.pool.opened.load(Ordering::Relaxed),
            "retried": t.retried,
            "http2_requests": self.seen_h2.load(Ordering::Relaxed),
            "served_models": self.served_models,
        }))
    }
}
