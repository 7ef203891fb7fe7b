//! The `openai` workload against servers on loopback: a scripted one in this file, whose
//! chunk timing is known exactly (role-only first chunk, content at set gaps, usage at the
//! end, cuts, 429s and 500s, malformed lines; no /metrics), and llama.cpp's own server
//! (`llama-server`, continuous batching, 4 slots, Prometheus metrics) when CI has started it
//! (BENCHCTL_LLAMA_URL; scripts/llama-server.sh).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the scripted server answers to completions.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A role-only chunk at once, CONTENT chunks from FIRST on at GAP apart, then a usage
    /// chunk with USAGE_TOKENS and [DONE].
    Timed,
    /// Requests in turn: 429, 500, a malformed line, a stream cut after one chunk, an error
    /// object, a good stream.
    /// (In every mode, `"stream": false` gets a JSON response after FIRST, and
    /// `max_tokens` 1 a stream without the usage chunk.)
    Faults,
    /// As `Timed`, but every second request on a connection finds it closed: the server
    /// resets the connection once the request is written, without reading it (a kept-alive
    /// connection closed by the server as the client reused it).
    DropsKeptAlive,
    /// As `Timed`, with a Prometheus endpoint in vLLM's names (as prometheus_client writes
    /// them: HELP and TYPE lines, `_total` counters with `_created`, labelled series, and
    /// histograms) counting the completions it served.
    Vllm,
    /// As `Timed`, with REASONING reasoning chunks from FIRST on before the content, GAP
    /// apart (vLLM's current `delta.reasoning` on even requests, `reasoning_content` on odd).
    Reasoning,
}

/// vLLM's exposition for `served` completions, each with PROMPT_TOKENS in, USAGE_TOKENS
/// out, a first token after FIRST (30 ms) and its last after FIRST + 7 GAP (100 ms).
fn vllm_metrics(served: u64) -> String {
    let n = served as f64;
    let model = r#"model_name="scripted",engine="0""#;
    let mut m = String::new();
    let mut put = |name: &str, kind: &str, lines: &[String]| {
        m += &format!("# HELP {name} Scripted.\n# TYPE {name} {kind}\n");
        for l in lines {
            m += l;
            m += "\n";
        }
    };
    put("vllm:num_requests_running", "gauge", &[format!("vllm:num_requests_running{{{model}}} 0.0")]);
    put("vllm:num_requests_waiting", "gauge", &[format!("vllm:num_requests_waiting{{{model}}} 0.0")]);
    put("vllm:kv_cache_usage_perc", "gauge", &[format!("vllm:kv_cache_usage_perc{{{model}}} 0.42")]);
    put(
        "vllm:request_success",
        "counter",
        &[
            format!("vllm:request_success_total{{finished_reason=\"length\",{model}}} {n:e}"),
            format!("vllm:request_success_created{{finished_reason=\"length\",{model}}} 1.7e9"),
            format!("vllm:request_success_total{{finished_reason=\"stop\",{model}}} 0.0"),
        ],
    );
    put(
        "vllm:prompt_tokens",
        "counter",
        &[format!("vllm:prompt_tokens_total{{{model}}} {:e}", n * PROMPT_TOKENS as f64)],
    );
    put(
        "vllm:generation_tokens",
        "counter",
        &[format!("vllm:generation_tokens_total{{{model}}} {:e}", n * USAGE_TOKENS as f64)],
    );
    put("vllm:num_preemptions", "counter", &[format!("vllm:num_preemptions_total{{{model}}} 0.0")]);
    let hist = |name: &str, at: f64| {
        let mut lines = vec![format!("{name}_sum{{{model}}} {}", n * at), format!("{name}_count{{{model}}} {n:e}")];
        for le in ["0.001", "0.025", "0.05", "0.1", "0.25", "1.0"] {
            let c = if at <= le.parse::<f64>().unwrap() { n } else { 0.0 };
            lines.push(format!("{name}_bucket{{le=\"{le}\",{model}}} {c:e}"));
        }
        lines.push(format!("{name}_bucket{{le=\"+Inf\",{model}}} {n:e}"));
        lines
    };
    put("vllm:time_to_first_token_seconds", "histogram", &hist("vllm:time_to_first_token_seconds", 0.03));
    put("vllm:e2e_request_latency_seconds", "histogram", &hist("vllm:e2e_request_latency_seconds", 0.1));
    put("process_resident_memory_bytes", "gauge", &["process_resident_memory_bytes 1.2e9".to_string()]);
    m
}

const FIRST: Duration = Duration::from_millis(30);
const GAP: Duration = Duration::from_millis(10);
const CONTENT: u32 = 8;
const REASONING: u32 = 3;
const USAGE_TOKENS: u64 = 10;
const PROMPT_TOKENS: u64 = 7;

struct Server {
    port: u16,
    requests: Arc<AtomicU64>,
    /// The Authorization header of the last completion request.
    auth: Arc<std::sync::Mutex<Option<String>>>,
}

/// Listens on a free loopback port, on a thread and runtime of its own, handing each
/// connection to `on_connection` as a task; returns the port.
fn listen<F, Fut>(on_connection: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(on_connection(s));
            }
        });
    });
    port
}

fn serve(mode: Mode) -> Server {
    let requests = Arc::new(AtomicU64::new(0));
    let auth = Arc::new(std::sync::Mutex::new(None));
    let (r, a) = (requests.clone(), auth.clone());
    let port = listen(move |s| {
        let (r, a) = (r.clone(), a.clone());
        async move {
            let _ = connection(s, mode, r, a).await;
        }
    });
    Server { port, requests, auth }
}

async fn connection(
    s: TcpStream,
    mode: Mode,
    requests: Arc<AtomicU64>,
    auth: Arc<std::sync::Mutex<Option<String>>>,
) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut s = BufReader::new(s);
    let mut on_this_connection = 0u32;
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut length = 0usize;
        let mut authorization = None;
        loop {
            let mut h = String::new();
            s.read_line(&mut h).await?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        s.read_exact(&mut body).await?;
        let started = Instant::now();
        let w = s.get_mut();
        if path.ends_with("/embeddings") {
            // One 4-dimensional vector per input after FIRST; the usage counts a token a word.
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let inputs = request["input"].as_array().cloned().unwrap_or_default();
            let words: usize = inputs.iter().map(|i| i.as_str().unwrap_or("").split_whitespace().count()).sum();
            let data: Vec<Value> = (0..inputs.len())
                .map(|i| serde_json::json!({ "object": "embedding", "index": i, "embedding": [0.1, -0.2, 0.3, i as f64] }))
                .collect();
            requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(FIRST).await;
            let text = serde_json::json!({ "object": "list", "data": data, "usage": { "prompt_tokens": words, "total_tokens": words } });
            json(w, 200, &text.to_string()).await?;
            continue;
        }
        if path.ends_with("/models") {
            json(w, 200, r#"{"object":"list","data":[{"id":"scripted","object":"model"}]}"#).await?;
            continue;
        }
        // No Prometheus endpoint here, as on a server started without one; or vLLM's.
        if path.ends_with("/metrics") {
            if mode == Mode::Vllm {
                let text = vllm_metrics(requests.load(Ordering::SeqCst));
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\n\r\n",
                    text.len()
                );
                w.write_all(head.as_bytes()).await?;
                w.write_all(text.as_bytes()).await?;
            } else {
                json(w, 404, r#"{"error":"not found"}"#).await?;
            }
            continue;
        }
        on_this_connection += 1;
        if mode == Mode::DropsKeptAlive && on_this_connection == 2 {
            // Unread data at close makes the kernel send a reset, as a server that closed
            // the connection before the request arrived.
            s.into_inner().set_zero_linger()?;
            return Ok(());
        }
        *auth.lock().unwrap() = authorization;
        let n = requests.fetch_add(1, Ordering::SeqCst);
        let fault = if mode == Mode::Faults { n % 6 } else { 5 };
        match fault {
            0 => json(w, 429, r#"{"error":{"message":"slow down"}}"#).await?,
            1 => json(w, 500, r#"{"error":{"message":"boom"}}"#).await?,
            2 => {
                start_stream(w).await?;
                event(w, &role()).await?;
                event(w, "{oops").await?;
                end_stream(w).await?;
            }
            3 => {
                start_stream(w).await?;
                event(w, &role()).await?;
                event(w, &content("a")).await?;
                // Cut: close without the end of the chunked body.
                w.shutdown().await?;
                return Ok(());
            }
            4 => {
                start_stream(w).await?;
                event(w, r#"{"error":{"message":"the model crashed"}}"#).await?;
                end_stream(w).await?;
            }
            _ => {}
        }
        if fault < 5 {
            continue;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        if request["stream"] == false {
            tokio::time::sleep(FIRST).await;
            let text = format!(
                r#"{{"choices":[{{"message":{{"role":"assistant","content":"one two three"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{USAGE_TOKENS}}}}}"#
            );
            json(w, 200, &text).await?;
            continue;
        }
        start_stream(w).await?;
        event(w, &role()).await?;
        let thoughts = if mode == Mode::Reasoning { REASONING } else { 0 };
        let field = if n % 2 == 0 { "reasoning" } else { "reasoning_content" };
        for k in 0..thoughts {
            tokio::time::sleep_until((started + FIRST + GAP * k).into()).await;
            event(w, &format!(r#"{{"choices":[{{"index":0,"delta":{{"{field}":" hm{k}"}},"finish_reason":null}}]}}"#))
                .await?;
        }
        for k in 0..CONTENT {
            tokio::time::sleep_until((started + FIRST + GAP * (thoughts + k)).into()).await;
            event(w, &content(&format!(" w{k}"))).await?;
        }
        event(w, r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#).await?;
        // `max_tokens` 1 asks this server for a stream without usage.
        if request["max_tokens"] != 1 {
            event(
                w,
                &format!(
                    r#"{{"choices":[],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{USAGE_TOKENS}}}}}"#
                ),
            )
            .await?;
        }
        event(w, "[DONE]").await?;
        end_stream(w).await?;
    }
}

fn role() -> String {
    r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#.into()
}

fn content(t: &str) -> String {
    format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{t}"}},"finish_reason":null}}]}}"#)
}

async fn json(w: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head =
        format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
    w.write_all(head.as_bytes()).await?;
    w.write_all(body.as_bytes()).await
}

async fn start_stream(w: &mut TcpStream) -> std::io::Result<()> {
    w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n").await
}

async fn event(w: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let e = format!("data: {data}\r\n\r\n");
    w.write_all(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes()).await?;
    w.flush().await
}

async fn end_stream(w: &mut TcpStream) -> std::io::Result<()> {
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}

fn benchctl(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_benchctl"));
    c.args(args).env("NO_COLOR", "1");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("benchctl runs")
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs `scenario` (written into `dir`) and returns its exit code, output and result.
fn run(dir: &Path, scenario: &str, envs: &[(&str, &str)]) -> (Option<i32>, String, Value) {
    let path = dir.join("s.kdl");
    std::fs::File::create(&path).unwrap().write_all(scenario.as_bytes()).unwrap();
    let out = dir.join("out");
    let o = benchctl(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap()], envs);
    let doc = std::fs::read_to_string(out.join("result.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    (o.status.code(), text(&o), doc)
}

fn scenario(port: u16, workload_body: &str, drive: &str) -> String {
    format!(
        r#"scenario "served" {{
    workload "llm" kind="openai" {{
        endpoint "http://127.0.0.1:{port}/v1" model="scripted"
{workload_body}
    }}
    phase "measure" {{
        drive "llm" {drive}
    }}
}}
"#
    )
}

fn ms(doc: &Value, metric: &str, agg: &str) -> f64 {
    doc["benchmarks"]["llm"]["metrics"][metric][agg].as_f64().unwrap_or_else(|| panic!("no {metric}.{agg}")) * 1e3
}

#[test]
fn ttft_itl_e2e_and_counts_follow_the_servers_schedule() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) = run(
        dir.path(),
        &scenario(server.port, "        output tokens=16\n        prompt tokens=12", "concurrency=1 requests=15"),
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["requests"], 15, "{w:#}");
    assert_eq!(w["errors"], 0);
    // The role-only chunk at 0 ms is not the first token: TTFT is the first content chunk.
    let (ttft, itl, e2e) = (ms(&doc, "ttft", "p50"), ms(&doc, "itl", "p50"), ms(&doc, "e2e", "p50"));
    let first = FIRST.as_secs_f64() * 1e3;
    let gap = GAP.as_secs_f64() * 1e3;
    let last = first + gap * (CONTENT - 1) as f64;
    assert!(ttft >= first && ttft < first + 8.0, "ttft p50 {ttft:.2} ms, scheduled {first} ms");
    assert!(itl >= gap - 2.0 && itl < gap + 3.0, "itl p50 {itl:.2} ms, scheduled {gap} ms");
    assert!(e2e >= last && e2e < last + 8.0, "e2e p50 {e2e:.2} ms, scheduled {last} ms");
    assert_eq!(doc["benchmarks"]["llm"]["metrics"]["itl"]["count"], 15 * (CONTENT - 1) as u64);
    // TPOT from the server's token count: (E2E - TTFT) / (usage - 1).
    let tpot = ms(&doc, "tpot", "p50");
    let expect = (last - first) / (USAGE_TOKENS - 1) as f64;
    assert!((tpot - expect).abs() < 1.0, "tpot p50 {tpot:.2} ms, scheduled {expect:.2} ms");
    assert_eq!(w["output_tokens"], 15 * USAGE_TOKENS, "usage counts, not chunks");
    assert_eq!(w["input_tokens"], 15 * PROMPT_TOKENS);
    assert!(w["token_source"].as_str().unwrap().contains("usage"), "{}", w["token_source"]);
    let setup = &w["setup"];
    assert_eq!(setup["token_sources"]["usage"], 15);
    assert_eq!(setup["chunks_without_output"], 15 * 3, "role-only, finish-only and usage-only chunks");
    assert_eq!(setup["finish_reasons"]["length"], 15);
    assert_eq!(setup["connections_opened"], 1, "keep-alive: one connection for all requests");
    // 10 tokens where 16 were asked for: reported as short.
    assert_eq!(w["short_outputs"], 15);
    // The connection wait is recorded per request and is small once the connection is open.
    assert_eq!(w["metrics"]["connect_wait"]["count"], 15);
    assert!(ms(&doc, "connect_wait", "p50") < 5.0);
    // No reasoning: the first answer token is the first token.
    assert_eq!(w["metrics"]["ttfo"]["count"], 15);
    assert!((ms(&doc, "ttfo", "p50") - ttft).abs() < 0.5, "ttfo {} against ttft {ttft}", ms(&doc, "ttfo", "p50"));
    assert!(w["metrics"]["reasoning_time"].is_null(), "{}", w["metrics"]["reasoning_time"]);
}

/// A reasoning model's stream: TTFT is its first output (reasoning), TTFO its first answer
/// token, and the reasoning time lies between; both of vLLM's field names are read.
#[test]
fn a_reasoning_stream_is_timed_to_its_first_answer_token() {
    let server = serve(Mode::Reasoning);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) = run(dir.path(), &scenario(server.port, "", "concurrency=1 requests=10"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    let first = FIRST.as_secs_f64() * 1e3;
    let answer = first + (GAP * REASONING).as_secs_f64() * 1e3;
    let (ttft, ttfo, thought) = (ms(&doc, "ttft", "p50"), ms(&doc, "ttfo", "p50"), ms(&doc, "reasoning_time", "p50"));
    assert!(ttft >= first && ttft < first + 8.0, "ttft p50 {ttft:.2} ms, first reasoning at {first} ms");
    assert!(ttfo >= answer && ttfo < answer + 8.0, "ttfo p50 {ttfo:.2} ms, first answer at {answer} ms");
    let gap = answer - first;
    assert!((thought - gap).abs() < 3.0, "reasoning_time p50 {thought:.2} ms, scheduled {gap} ms");
    assert_eq!(w["metrics"]["ttfo"]["count"], 10);
    assert_eq!(w["metrics"]["reasoning_time"]["count"], 10);
    // The usage has no reasoning details: reasoning-only chunks are counted, three a request.
    assert_eq!(w["reasoning_tokens"], 10 * REASONING as u64, "{w:#}");
}

/// A pool of 3 shared prefixes of 20 words: every request after the first of its prefix
/// would find the prefix in an unbounded cache, so the implied cached tokens are 20 x (12
/// requests - prefixes sent), shown beside the server's own hit rate.
#[test]
fn a_prefix_pool_reports_the_cache_hits_it_implies() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) = run(
        dir.path(),
        &scenario(server.port, "        prefix \"pool\" count=3 tokens=20", "concurrency=1 requests=12"),
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    let rows = w["facts"]["rows"].as_array().unwrap();
    let row = rows.iter().find(|r| r["label"] == "prefix cache (implied)").unwrap_or_else(|| panic!("{rows:#?}"));
    let text = row["text"].as_str().unwrap();
    let sent: u64 = text.split(" of 3 prefixes sent").next().unwrap().rsplit("; ").next().unwrap().parse().unwrap();
    assert!((1..=3).contains(&sent), "{text}");
    assert_eq!(w["cached_prefix_tokens"], 20 * (12 - sent), "{text}");
    // The server's usage counts PROMPT_TOKENS a request: the rate is over those.
    let rate = 20.0 * (12 - sent) as f64 / (12 * PROMPT_TOKENS) as f64 * 100.0;
    assert!(text.starts_with(&format!("an unbounded prefix cache would hold {rate:.1} %")), "{text}");
}

/// An embeddings workload sends `batch` inputs a request and counts the vectors back:
/// inputs and input tokens per request, the latency of the batch, the vectors' dimension.
#[test]
fn an_embeddings_batch_is_timed_and_counted() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(server.port, "        batch 8\n        prompt tokens=12", "concurrency=2 requests=10")
        .replace("model=\"scripted\"", "model=\"scripted\" api=\"embeddings\"");
    let (code, out, doc) = run(dir.path(), &text, &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!((w["requests"].as_u64(), w["errors"].as_u64()), (Some(10), Some(0)), "{w:#}");
    assert_eq!(w["inputs"], 80, "8 inputs a request");
    assert_eq!(w["input_tokens"], 80 * 12, "the server's usage: 12 words an input");
    assert!(ms(&doc, "latency", "p50") >= FIRST.as_secs_f64() * 1e3);
    assert!(w["metrics"]["ttft"].is_null(), "no tokens stream back");
    let rows = w["facts"]["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["label"] == "embeddings" && r["text"] == "8 inputs a request; vectors of 4 dimensions"),
        "{rows:#?}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 10);
}

/// A server without a Prometheus endpoint (404) is recorded as such, and the run goes on.
#[test]
fn a_server_without_metrics_is_recorded_and_the_run_passes() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) = run(dir.path(), &scenario(server.port, "", "concurrency=1 requests=3"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let s = &doc["servers"][0];
    assert_eq!(s["url"], format!("http://127.0.0.1:{}/metrics", server.port));
    assert!(s["unavailable"].as_str().unwrap().contains("404"), "{s:#}");
    assert_eq!(s["scrapes"], 0);
    assert!(out.contains("no metrics (HTTP 404"), "{out}");
    assert_eq!(doc["overall_assessment"]["verdict"], "passed");
    // `metrics #false`: nothing is scraped.
    let (code, out, doc) =
        run(dir.path(), &scenario(server.port, "        metrics #false", "concurrency=1 requests=1"), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(doc.get("servers").is_none(), "{:#}", doc["servers"]);
}

/// A server with vLLM's metric names: its increases match what the run sent, its histograms
/// read as interpolated percentiles, and bounds on them pass or fail like any other.
#[test]
fn a_vllm_named_server_is_read_checked_and_bounded() {
    let server = serve(Mode::Vllm);
    let dir = tempfile::tempdir().unwrap();
    let expects = "    expect \"server.ttft.p95 < 100ms\"\n    expect \"server.requests.count >= 8\"\n    expect \"server.kv_cache_usage.max < 40%\"";
    let s = scenario(server.port, "        metrics every=\"200ms\"", "concurrency=2 requests=8")
        .replace("    }\n}\n", &format!("    }}\n{expects}\n}}\n"));
    let (code, out, doc) = run(dir.path(), &s, &[]);
    assert_eq!(code, Some(1), "the KV-cache bound fails: {out}");
    let statuses: Vec<&str> =
        doc["evaluation"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["pass", "pass", "fail"], "{:#}", doc["evaluation"]);
    let ttft = doc["evaluation"][0]["measured_text"].as_str().unwrap();
    assert!(ttft.contains("interpolated"), "a server percentile says how it was read: {ttft}");
    let sv = &doc["servers"][0];
    assert_eq!(sv["family"], "vllm", "{sv:#}");
    let phase = &sv["phases"][0];
    assert_eq!(phase["complete"], true);
    assert_eq!(phase["counters"]["requests"], 8.0, "{phase:#}");
    assert_eq!(phase["counters"]["prompt_tokens"], (8 * PROMPT_TOKENS) as f64);
    assert_eq!(phase["counters"]["generation_tokens"], (8 * USAGE_TOKENS) as f64);
    assert_eq!(phase["counters"]["process_resident_memory_bytes"], Value::Null, "a gauge is not a counter");
    assert_eq!(phase["gauges"]["process_resident_memory_bytes"]["max"], 1.2e9, "unknown series keep their names");
    assert_eq!(phase["histograms"]["ttft"]["count"], 8.0);
    let check = &doc["server_checks"][0];
    assert_eq!(check["client_requests"], 8);
    assert_eq!(check["server_requests"], 8.0);
    // The server's TTFT (all 8 in the (25 ms, 50 ms] bucket: its median interpolates to
    // 37.5 ms) beside the client's (30 ms scripted, plus the loopback).
    assert!((check["server_ttft_p50_s"].as_f64().unwrap() - 0.0375).abs() < 1e-12, "{check:#}");
    assert!(check["client_overhead_s"].is_number(), "{check:#}");
    let findings = doc["host_findings"].as_array().unwrap();
    assert!(
        !findings.iter().any(|f| f["code"] == "foreign_traffic" || f["code"] == "token_disagreement"),
        "{findings:#?}"
    );
    assert!(out.contains("8/8") && out.contains("vllm"), "the summary sets client and server side by side: {out}");
    // The HTML and the Markdown show the same table.
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("Server (its own metrics)") && html.contains(">8/8</td>"), "the HTML's server table");
    assert!(html.contains(r#""probe":"server","series":"kv_cache_usage""#), "the charts get the server's gauges");
    let md = dir.path().join("summary.md");
    let result = dir.path().join("out/result.json");
    let o = benchctl(&["report", result.to_str().unwrap(), "--markdown", md.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("### Server (its own metrics)") && md.contains("| 8/8 |"), "{md}");
}

/// A request written on a kept-alive connection that the server resets goes once more on a
/// new connection: counted as retried, never as an error.
#[test]
fn a_request_on_a_connection_the_server_dropped_is_retried_not_failed() {
    let server = serve(Mode::DropsKeptAlive);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) =
        run(dir.path(), &scenario(server.port, "        metrics #false", "concurrency=1 requests=6"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["errors"], 0, "{:#}", w["errors_by_kind"]);
    assert_eq!(w["requests"], 6);
    // Requests 2 to 6 each found their connection reset.
    assert_eq!(w["setup"]["retried"], 5, "{:#}", w["setup"]);
    assert_eq!(server.requests.load(Ordering::SeqCst), 6, "the reset requests never reached the handler");
}

#[test]
fn errors_are_counted_by_kind_and_the_run_goes_on() {
    let server = serve(Mode::Faults);
    let dir = tempfile::tempdir().unwrap();
    let (code, out, doc) =
        run(dir.path(), &scenario(server.port, "        output tokens=16", "concurrency=1 requests=12"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["requests"], 12);
    let kinds = &w["errors_by_kind"];
    for k in ["http_429", "http_5xx", "malformed_sse", "stream_cut", "server_error"] {
        assert_eq!(kinds[k], 2, "{k} in {kinds:#}");
    }
    assert_eq!(w["errors"], 10);
    assert_eq!(server.requests.load(Ordering::SeqCst), 12);
}

#[test]
fn without_usage_the_chunks_are_counted_and_a_wait_for_the_one_connection_is_measured() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    // max_tokens 1 makes the scripted server leave out the usage chunk.
    let body = "        output tokens=1\n        connections 1";
    let (code, out, doc) = run(dir.path(), &scenario(server.port, body, "concurrency=3 requests=9"), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["output_tokens"], 9 * CONTENT as u64, "one token per content chunk");
    assert!(w["token_source"].as_str().unwrap().contains("chunk"), "{}", w["token_source"]);
    assert_eq!(w["setup"]["connections_opened"], 1);
    // Three workers share one connection: the later ones wait about one or two streams.
    let stream = (FIRST + GAP * (CONTENT - 1)).as_secs_f64() * 1e3;
    let wait = ms(&doc, "connect_wait", "p90");
    assert!(wait > stream * 0.8, "connect_wait p90 {wait:.1} ms, one stream {stream:.1} ms");
    assert!(ms(&doc, "latency", "p50") > stream + wait * 0.5, "the wait is part of latency");
}

#[test]
fn a_response_that_is_not_streamed_counts_usage_tokens() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let body = "        endpoint \"http://127.0.0.1:PORT/v1\" model=\"scripted\" stream=#false";
    let s = scenario(server.port, "", "concurrency=1 requests=4")
        .replace(&format!("        endpoint \"http://127.0.0.1:{}/v1\" model=\"scripted\"\n", server.port), "")
        .replace(
            "kind=\"openai\" {\n",
            &format!("kind=\"openai\" {{\n{}\n", body.replace("PORT", &server.port.to_string())),
        );
    let (code, out, doc) = run(dir.path(), &s, &[]);
    assert_eq!(code, Some(0), "{out}\n{s}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["output_tokens"], 4 * USAGE_TOKENS);
    assert!(w["metrics"]["ttft"].is_null() || w["metrics"]["ttft"]["count"] == 0, "no TTFT without a stream");
    assert!(ms(&doc, "latency", "p50") >= FIRST.as_secs_f64() * 1e3);
}

#[test]
fn the_api_key_is_sent_and_never_written() {
    let server = serve(Mode::Timed);
    let dir = tempfile::tempdir().unwrap();
    let body =
        "        api-key env=\"BENCHCTL_TEST_KEY\"\n        header \"X-Team\" \"infra\"\n        output tokens=16";
    let mut s = scenario(server.port, body, "concurrency=1 requests=2");
    s = s.replace(
        "}\n}\n",
        "}\n    report {\n        html \"r.html\"\n        markdown \"r.md\"\n        junit \"r.xml\"\n    }\n}\n",
    );
    let (code, out, _) = run(dir.path(), &s, &[("BENCHCTL_TEST_KEY", "sk-very-secret-1234")]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(server.auth.lock().unwrap().as_deref(), Some("Bearer sk-very-secret-1234"));
    assert!(!out.contains("very-secret"));
    for e in std::fs::read_dir(dir.path().join("out")).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::read(&p).unwrap();
        assert!(!String::from_utf8_lossy(&t).contains("very-secret"), "the key is in {}", p.display());
    }
    // Without the variable: an input error at the api-key node, nothing sent.
    let (code, out, _) = run(dir.path(), &scenario(server.port, body, "concurrency=1 requests=2"), &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("BENCHCTL_TEST_KEY") && out.contains("is not set"), "{out}");
}

#[test]
fn an_unreachable_server_or_an_unknown_model_fails_at_setup_with_the_node_shown() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &scenario(port, "", "concurrency=1 requests=2"), &[]);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("cannot reach the server") && out.contains(&format!("127.0.0.1:{port}")), "{out}");
    assert!(out.contains("endpoint \"http://127.0.0.1"), "the diagnostic shows the endpoint node:\n{out}");
    let server = serve(Mode::Timed);
    let s = scenario(server.port, "", "concurrency=1 requests=2").replace("model=\"scripted\"", "model=\"gpt-5\"");
    let (code, out, _) = run(dir.path(), &s, &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("does not serve a model named `gpt-5`") && out.contains("scripted"), "{out}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 0, "no request was sent");
}

/// llama.cpp's server with the SmolLM2 GGUF (4 slots, `--metrics`), started by .ci/run
/// (scripts/llama-server.sh) and named by BENCHCTL_LLAMA_URL; skipped without it unless
/// BENCHCTL_REQUIRE_LLAMA is set. The tests that use it hold [`real_server`] in turn: a
/// second test's requests would be another tenant's traffic to the first.
fn llama_url() -> Option<String> {
    match std::env::var("BENCHCTL_LLAMA_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("BENCHCTL_REQUIRE_LLAMA").is_none(),
                "BENCHCTL_LLAMA_URL is not set: start the server with scripts/llama-server.sh start PORT"
            );
            eprintln!("skipped: no llama-server (BENCHCTL_LLAMA_URL; see scripts/llama-server.sh)");
            None
        }
    }
}

/// One test at a time on the real server.
fn real_server() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a test on the real server needs: its URL, the model file (its tokenizer), a
/// folder, and its turn on the server (held until the test ends).
struct Real {
    url: String,
    gguf: std::path::PathBuf,
    dir: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// `None` (the test is skipped) without the server or the model.
fn real() -> Option<Real> {
    let url = llama_url()?;
    let gguf = common::fetched_model("SmolLM2-135M-Instruct.Q4_1.gguf")?;
    Some(Real { url, gguf, dir: tempfile::tempdir().unwrap(), _turn: real_server() })
}

/// A scenario against the real server: `phases` and `expects` are pasted in.
fn llama_scenario(url: &str, gguf: &Path, workload_extra: &str, phases: &str) -> String {
    format!(
        r#"scenario "llama" {{
    workload "llm" kind="openai" {{
        endpoint "{url}" model="smollm2" api="chat" timeout="60s"
        tokenizer gguf="{gguf}"
        prompt tokens=16
        output tokens=8 min-tokens=8
        sampling temperature=0.0
{workload_extra}
    }}
{phases}
}}
"#,
        gguf = gguf.display()
    )
}

#[test]
fn a_real_llama_cpp_server_is_timed_per_token_and_its_own_counts_agree() {
    let Some(Real { url, gguf, dir, _turn }) = real() else { return };
    let (requests, tokens) = (6u64, 8u64);
    // The server's usage gives the counts and the GGUF's tokenizer checks them; its chat
    // stream opens with a role-only chunk and then sends one chunk per token. min-tokens
    // keeps it from stopping early, max_tokens from going on.
    let phases = format!(
        "    phase \"measure\" {{\n        drive \"llm\" concurrency=2 requests={requests}\n    }}\n    expect \"server.generation_tokens.count >= 1\"\n    expect \"server.running.max <= 4\""
    );
    let (code, out, doc) = run(dir.path(), &llama_scenario(&url, &gguf, "", &phases), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["requests"], requests, "{w:#}");
    assert_eq!(w["errors"], 0, "{w:#}");
    let setup = &w["setup"];
    assert_eq!(setup["token_sources"]["usage"], requests, "usage from llama-server: {setup:#}");
    assert_eq!(setup["token_mismatches"], 0, "the tokenizer agrees with the usage: {setup:#}");
    let skipped = setup["chunks_without_output"].as_u64().unwrap();
    assert!(skipped >= requests, "chunks without output: {skipped}");
    // One timed chunk per token: tokens - 1 gaps per request.
    assert_eq!(w["metrics"]["itl"]["count"], requests * (tokens - 1), "{:#}", w["metrics"]["itl"]);
    assert_eq!(w["metrics"]["ttft"]["count"], requests);
    assert_eq!(w["output_tokens"], requests * tokens);
    let (ttft, e2e) = (ms(&doc, "ttft", "p50"), ms(&doc, "e2e", "p50"));
    assert!(ttft > 0.0 && ttft < e2e, "ttft {ttft:.1} ms, e2e {e2e:.1} ms");
    // The server's own metrics, scraped by default at the base URL without /v1.
    let server = &doc["servers"][0];
    assert_eq!(server["family"], "llamacpp", "{server:#}");
    assert_eq!(server["unavailable"], Value::Null, "{server:#}");
    assert_eq!(server["url"], format!("{}/metrics", url.trim_end_matches("/v1")));
    let phase = &server["phases"][0];
    assert_eq!(phase["complete"], true, "{phase:#}");
    // The server's increases over the phase are exactly what this run sent.
    assert_eq!(phase["counters"]["generation_tokens"], (requests * tokens) as f64, "{phase:#}");
    assert_eq!(phase["counters"]["prompt_tokens"].as_f64(), w["input_tokens"].as_f64(), "{phase:#}");
    assert!(phase["gauges"]["running"]["max"].as_f64().unwrap() <= 4.0, "{phase:#}");
    let check = &doc["server_checks"][0];
    assert_eq!(check["client_output_tokens"], requests * tokens, "{check:#}");
    let findings = doc["host_findings"].as_array().unwrap();
    assert!(
        !findings.iter().any(|f| f["code"] == "foreign_traffic" || f["code"] == "token_disagreement"),
        "{findings:#?}"
    );
    assert_eq!(doc["overall_assessment"]["verdict"], "passed", "{out}");
    assert!(out.contains("server of llm") && out.contains("llamacpp"), "{out}");
}

/// A bound on the server's metrics fails the run like any other: the server generated 8
/// tokens per request, so fewer than 8 in all cannot hold.
#[test]
fn a_bound_on_the_servers_metrics_fails_the_run() {
    let Some(Real { url, gguf, dir, _turn }) = real() else { return };
    let phases = "    phase \"measure\" {\n        drive \"llm\" concurrency=1 requests=2\n    }\n    expect \"server.generation_tokens.count < 8\"";
    let (code, out, doc) = run(dir.path(), &llama_scenario(&url, &gguf, "", phases), &[]);
    assert_eq!(code, Some(1), "{out}");
    let outcome = &doc["evaluation"][0];
    assert_eq!(outcome["status"], "fail", "{outcome:#}");
    assert!(out.contains("server.generation_tokens.count < 8"), "{out}");
}

/// Another client sending to the server while a phase runs is found: the server generated
/// far more than this run received.
#[test]
fn another_clients_traffic_during_a_phase_is_found() {
    let Some(Real { url, gguf, dir, _turn }) = real() else { return };
    // A slow trickle from this run; 4 requests at once from another client after 1.5 s
    // (one per slot, so that a busy machine still finishes them inside the phase).
    let phases = "    phase \"measure\" duration=\"10s\" {\n        drive \"llm\" rate=\"0.5/s\"\n    }";
    let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let authority = authority.clone();
                std::thread::spawn(move || {
                    let body = r#"{"model":"smollm2","messages":[{"role":"user","content":"Count to fifty."}],"max_tokens":48,"min_tokens":48,"ignore_eos":true,"temperature":0}"#;
                    let mut c = std::net::TcpStream::connect(&authority).unwrap();
                    let req = format!(
                        "POST /v1/chat/completions HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    c.write_all(req.as_bytes()).unwrap();
                    let mut answer = String::new();
                    std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
                    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
    });
    let (code, out, doc) = run(dir.path(), &llama_scenario(&url, &gguf, "", phases), &[]);
    other.join().unwrap();
    assert_eq!(code, Some(0), "{out}");
    let findings = doc["host_findings"].as_array().unwrap();
    let foreign: Vec<&Value> = findings.iter().filter(|f| f["code"] == "foreign_traffic").collect();
    assert_eq!(foreign.len(), 1, "{findings:#?}\n{:#}", doc["server_checks"]);
    assert_eq!(foreign[0]["phase"], "measure");
    assert!(out.contains("foreign_traffic"), "{out}");
}

/// More requests on one connection than llama-server's keep-alive allows (100), one token
/// each: when the server closes the connection the next request goes on a new one, and no
/// request fails.
#[test]
fn more_requests_than_the_servers_keep_alive_allows_all_succeed() {
    let Some(Real { url, gguf, dir, _turn }) = real() else { return };
    let s = llama_scenario(
        &url,
        &gguf,
        "        connections 1",
        "    phase \"measure\" {\n        drive \"llm\" concurrency=1 requests=110\n    }",
    )
    .replace("output tokens=8 min-tokens=8", "output tokens=1")
    .replace("prompt tokens=16", "prompt tokens=4");
    let (code, out, doc) = run(dir.path(), &s, &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["requests"], 110, "{w:#}");
    assert_eq!(w["errors"], 0, "{:#}", w["errors_by_kind"]);
    assert!(w["setup"]["connections_opened"].as_u64().unwrap() >= 2, "{:#}", w["setup"]);
}

/// Certificates made with openssl for one test: a private CA and a server certificate for
/// 127.0.0.1 signed by it. `None` (skipped) where openssl is not installed.
fn private_ca(dir: &Path) -> Option<()> {
    let sh = |script: &str| Command::new("sh").arg("-c").arg(script).current_dir(dir).output();
    if sh("command -v openssl").map_or(true, |o| !o.status.success()) {
        eprintln!("skipped: openssl is not installed");
        return None;
    }
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let script = format!(
        "set -e
         openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=benchctl-test-ca
         openssl req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1
         printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem"
    );
    let o = sh(&script).unwrap();
    assert!(o.status.success(), "openssl: {}", text(&o));
    Some(())
}

/// A TLS server that offers HTTP/2 (and HTTP/1.1) through ALPN, answering /v1/models and
/// streamed chat completions (a role chunk, three content chunks, usage). Returns its port
/// and the HTTP versions of the requests it served.
fn serve_tls(dir: &Path) -> (u16, Arc<std::sync::Mutex<Vec<hyper::Version>>>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};

    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let versions = Arc::new(std::sync::Mutex::new(vec![]));
    let seen = versions.clone();
    let port = listen(move |s| {
        let (acceptor, seen) = (acceptor.clone(), seen.clone());
        async move {
            // A client that does not trust the certificate ends the handshake.
            let Ok(tls) = acceptor.accept(s).await else { return };
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move {
                    let body = if req.uri().path().ends_with("/models") {
                        r#"{"object":"list","data":[{"id":"scripted"}]}"#.to_string()
                    } else {
                        seen.lock().unwrap().push(req.version());
                        let usage = r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3}}"#;
                        let events = [role(), content("a"), content(" b"), content(" c"), usage.into()];
                        events.iter().map(|e| format!("data: {e}\n\n")).collect::<String>() + "data: [DONE]\n\n"
                    };
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            }
        }
    });
    (port, versions)
}

#[test]
fn https_with_a_private_ca_speaks_http2_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    if private_ca(dir.path()).is_none() {
        return;
    }
    let (port, versions) = serve_tls(dir.path());
    let body = |tls: &str| {
        format!(
            r#"scenario "tls" {{
    workload "llm" kind="openai" {{
        endpoint "https://127.0.0.1:{port}/v1" model="scripted"
        {tls}
        output tokens=3
    }}
    phase "measure" {{
        drive "llm" concurrency=2 requests=6
    }}
}}
"#
        )
    };
    let ca = dir.path().join("ca.pem");
    let (code, out, doc) = run(dir.path(), &body(&format!("tls ca=\"{}\"", ca.display())), &[]);
    assert_eq!(code, Some(0), "{out}");
    let w = &doc["benchmarks"]["llm"];
    assert_eq!(w["requests"], 6, "{w:#}");
    assert_eq!(w["errors"], 0, "{w:#}");
    assert_eq!(w["output_tokens"], 18);
    assert_eq!(w["setup"]["http2_requests"], 6, "{:#}", w["setup"]);
    assert_eq!(w["setup"]["connections_opened"], 1, "two streams share one HTTP/2 connection");
    assert_eq!(w["metrics"]["itl"]["count"], 12);
    assert_eq!(*versions.lock().unwrap(), vec![hyper::Version::HTTP_2; 6]);
    // Without the CA the certificate is not trusted: the setup stops, pointing at the fix.
    let (code, out, _) = run(dir.path(), &body(""), &[]);
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("TLS handshake") && out.contains("tls ca="), "{out}");
    // A file with no certificate in it is an input error at the tls node.
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let (code, out, _) = run(dir.path(), &body("tls ca=\"empty.pem\""), &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("holds no PEM certificate") && out.contains("tls ca="), "{out}");
}

/// `init --template endpoint` checks clean and, pointed at llama-cpp-python's server, runs
/// passing its own expectations (its seeded Poisson arrivals give 10 requests in 20 s at
/// 0.5/s, more than the 7 a median bound needs).
#[test]
fn the_endpoint_starter_checks_clean_and_passes_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("served.kdl");
    let path = file.to_str().unwrap();
    let o = benchctl(&["init", "--template", "endpoint", path], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(benchctl(&["check", "--deny-warnings", path], &[]).status.code(), Some(0));
    assert_eq!(benchctl(&["fmt", "--check", path], &[]).status.code(), Some(0), "the template is formatted");
    let Some(url) = llama_url() else { return };
    let _one = real_server();
    let out = dir.path().join("out");
    let args =
        ["run", path, "--set", &format!("base_url={url}"), "--set", "duration=20s", "--out", out.to_str().unwrap()];
    let o = benchctl(&args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["overall_assessment"]["verdict"], "passed", "{}", text(&o));
    assert!(doc["benchmarks"]["chat"]["requests"].as_u64().unwrap() >= 4, "{:#}", doc["benchmarks"]["chat"]);
}
