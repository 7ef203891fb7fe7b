//! `cargo bench --bench endpoint`: what the `openai` client itself costs.
//!
//! A server that answers at once with a fixed stream (TOKENS content chunks, a usage chunk,
//! [DONE]) runs as a child process of this bench on one thread. benchctl drives it in open
//! loop at rising constant rates, one short run per rate, and prints for each: the achieved
//! rate, the send lateness (p50/p99: how late requests left against their schedule), errors,
//! and benchctl's own CPU time per streamed token. The sustained rate is the highest one
//! with p99 send lateness under 1 ms, every request sent and none failed.
//!
//! Environment:
//! - `BENCH_ENDPOINT_RATES` — comma-separated rates per second (default 250 to 16000, doubling);
//! - `BENCH_ENDPOINT_SECS` — seconds per rate (default 5);
//! - `BENCH_ENDPOINT_SERVE=PORT` — only run the instant server on 127.0.0.1:PORT (0: any free
//!   port, printed), so that another client (GuideLLM) can be measured against the same server.
//! - `BENCH_SCRAPE_PAIRS=N` — instead, the cost of scraping the server's metrics: N pairs of
//!   closed-loop runs (concurrency 4, `BENCH_ENDPOINT_SECS` each), one with the server's
//!   Prometheus endpoint scraped every second (a vLLM-shaped exposition of 16 models, about
//!   150 KB) and one with `metrics #false`, in alternating order; prints each pair's
//!   throughput ratio and their median.

#[path = "support/exposition.rs"]
mod exposition;

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use benchctl::engine::events::Reporter;
use benchctl::engine::executor::Engine;
use benchctl::measure::record::Metric;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Content chunks per response.
const TOKENS: usize = 16;
/// Prompt tokens reported in the usage chunk.
const PROMPT_TOKENS: usize = 32;

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &benchctl::engine::events::RunEvent) {}
}

/// The fixed bodies: a completions stream, a chat stream, the model list and the metrics.
struct Bodies {
    completions: Vec<u8>,
    chat: Vec<u8>,
    models: Vec<u8>,
    metrics: Vec<u8>,
}

fn bodies() -> Bodies {
    let usage = format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{PROMPT_TOKENS},\"completion_tokens\":{TOKENS},\"total_tokens\":{}}}}}\n\n",
        PROMPT_TOKENS + TOKENS
    );
    let mut completions = String::new();
    let mut chat = String::from("data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n");
    for i in 0..TOKENS {
        let finish = if i + 1 == TOKENS { "\"length\"" } else { "null" };
        completions +=
            &format!("data: {{\"choices\":[{{\"index\":0,\"text\":\" tok\",\"finish_reason\":{finish}}}]}}\n\n");
        chat += &format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" tok\"}},\"finish_reason\":{finish}}}]}}\n\n"
        );
    }
    for s in [&mut completions, &mut chat] {
        s.push_str(&usage);
        s.push_str("data: [DONE]\n\n");
    }
    let models = r#"{"object":"list","data":[{"id":"instant","object":"model"}]}"#;
    let wrap = |kind: &str, body: &str| {
        format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    Bodies {
        completions: wrap("text/event-stream", &completions),
        chat: wrap("text/event-stream", &chat),
        models: wrap("application/json", models),
        metrics: wrap("text/plain; version=0.0.4", &exposition::vllm(16, 1000)),
    }
}

/// Serves HTTP/1.1 keep-alive connections on one thread until killed.
fn serve(port: u16) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the instant server");
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let bodies = Arc::new(bodies());
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            let _ = s.set_nodelay(true);
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(8192);
                let mut chunk = [0u8; 8192];
                loop {
                    // One request: headers, then content-length bytes of body.
                    let (head_end, body_len) = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, len);
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + body_len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let line =
                        String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == b'\r').unwrap_or(0)]).into_owned();
                    let reply = if line.contains("/metrics") {
                        &bodies.metrics
                    } else if line.contains("/chat/completions") {
                        &bodies.chat
                    } else if line.contains("/completions") {
                        &bodies.completions
                    } else {
                        &bodies.models
                    };
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                    buf.drain(..head_end + body_len);
                }
            });
        }
    });
}

/// This process's CPU time (user + system) in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

struct Row {
    rate: f64,
    achieved: f64,
    late_p50_us: f64,
    late_p99_us: f64,
    requests: u64,
    unsent: u64,
    errors: u64,
    cpu_us_per_token: f64,
    ttft_p50_us: f64,
}

/// Checks, prepares and runs a bench scenario against the instant server on `port`.
fn run(port: u16, text: &str) -> benchctl::engine::executor::RunOutcome {
    let c = benchctl::check::check_source("bench.kdl", None, text, &Default::default());
    let valid = c.scenario.expect("bench scenario is valid");
    let workloads = benchctl::registry::prepare_all(&valid, &c.sources, std::path::Path::new("."), &mut |_, _| {})
        .unwrap_or_else(|_| panic!("the instant server on port {port} answers /models"))
        .ready;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    Engine::run_to_end(&rt, &benchctl::plan::build(&valid, &c.sources), workloads, &mut Quiet)
}

fn measure(port: u16, rate: f64, secs: f64) -> Row {
    let text = format!(
        r#"scenario "client-overhead" {{
    workload "llm" kind="openai" {{
        endpoint "http://127.0.0.1:{port}/v1" model="instant" api="completions" timeout="10s"
        prompt tokens={PROMPT_TOKENS}
        output tokens={TOKENS}
    }}
    phase "open" duration="{secs}s" {{
        drive "llm" rate="{rate}/s" arrivals="constant"
    }}
}}
"#
    );
    let cpu0 = cpu_secs();
    let o = run(port, &text);
    let cpu = cpu_secs() - cpu0;
    let r = &o.phases[0].workloads[0].recorded;
    let late = r.hists.get(Metric::SendLateness);
    let ttft = r.hists.get(Metric::Ttft);
    let tokens = r.counters.output_tokens.max(1);
    Row {
        rate,
        achieved: r.counters.requests as f64 / r.elapsed.as_secs_f64(),
        late_p50_us: late.value_at_quantile(0.5) as f64 / 1e3,
        late_p99_us: late.value_at_quantile(0.99) as f64 / 1e3,
        requests: r.counters.requests,
        unsent: r.counters.unsent + r.counters.dropped,
        errors: r.counters.errors,
        cpu_us_per_token: cpu * 1e6 / tokens as f64,
        ttft_p50_us: ttft.value_at_quantile(0.5) as f64 / 1e3,
    }
}

/// Closed-loop requests per second over `secs`, with the server's metrics scraped every
/// second or not at all.
fn closed_loop(port: u16, secs: f64, scrape: bool) -> (f64, u64) {
    let metrics = if scrape { "metrics every=\"1s\"" } else { "metrics #false" };
    let text = format!(
        r#"scenario "scrape-overhead" {{
    workload "llm" kind="openai" {{
        endpoint "http://127.0.0.1:{port}/v1" model="instant" api="completions" timeout="10s"
        prompt tokens={PROMPT_TOKENS}
        output tokens={TOKENS}
        {metrics}
    }}
    phase "closed" duration="{secs}s" {{
        drive "llm" concurrency=4
    }}
}}
"#
    );
    let o = run(port, &text);
    let r = &o.phases[0].workloads[0].recorded;
    assert_eq!(r.counters.errors, 0, "{:?}", r.counters.errors_by_kind);
    let scrapes = o.servers.first().map_or(0, |s| s.scrapes);
    (r.counters.requests as f64 / r.elapsed.as_secs_f64(), scrapes)
}

fn scrape_pairs(port: u16, pairs: usize, secs: f64) {
    println!("{:>5} {:>12} {:>12} {:>8} {:>8}", "pair", "off req/s", "on req/s", "on/off", "scrapes");
    let mut ratios = vec![];
    for i in 0..pairs {
        let ((off, _), (on, scrapes)) = if i % 2 == 0 {
            let off = closed_loop(port, secs, false);
            (off, closed_loop(port, secs, true))
        } else {
            let on = closed_loop(port, secs, true);
            (closed_loop(port, secs, false), on)
        };
        ratios.push(on / off);
        println!("{:>5} {:>12.0} {:>12.0} {:>8.4} {:>8}", i + 1, off, on, on / off, scrapes);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median on/off throughput ratio over {pairs} pairs: {:.4}", ratios[ratios.len() / 2]);
}

fn start_server() -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_ENDPOINT_SERVE", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the instant server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().expect("the server prints its port");
    (child, port)
}

fn main() {
    if let Ok(p) = std::env::var("BENCH_ENDPOINT_SERVE") {
        serve(p.parse().expect("BENCH_ENDPOINT_SERVE is a port number"));
        return;
    }
    // `cargo bench` passes --bench; a filter argument that is not ours means another bench.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"endpoint".contains(a.as_str())) {
        return;
    }
    let rates: Vec<f64> = std::env::var("BENCH_ENDPOINT_RATES")
        .map(|s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|_| vec![250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0]);
    let secs: f64 = std::env::var("BENCH_ENDPOINT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut server, port) = start_server();
    if let Some(pairs) = std::env::var("BENCH_SCRAPE_PAIRS").ok().and_then(|p| p.parse().ok()) {
        scrape_pairs(port, pairs, secs);
        let _ = server.kill();
        return;
    }
    println!(
        "machine: {cores} cores; instant server on 127.0.0.1:{port} (one thread, {TOKENS} chunks + usage per response)"
    );
    println!(
        "{:>8} {:>10} {:>9} {:>10} {:>10} {:>7} {:>7} {:>10} {:>12}",
        "rate/s", "achieved/s", "requests", "late p50", "late p99", "unsent", "errors", "ttft p50", "cpu/token"
    );
    let mut sustained = None;
    for &rate in &rates {
        let r = measure(port, rate, secs);
        println!(
            "{:>8.0} {:>10.0} {:>9} {:>8.1}us {:>8.1}us {:>7} {:>7} {:>8.0}us {:>10.2}us",
            r.rate,
            r.achieved,
            r.requests,
            r.late_p50_us,
            r.late_p99_us,
            r.unsent,
            r.errors,
            r.ttft_p50_us,
            r.cpu_us_per_token
        );
        if r.late_p99_us < 1000.0 && r.unsent == 0 && r.errors == 0 {
            sustained = Some(r.rate);
        } else {
            break;
        }
    }
    let _ = server.kill();
    match sustained {
        Some(r) => println!(
            "sustained: {r:.0} requests/s ({:.0} streamed tokens/s) with p99 send lateness under 1 ms",
            r * TOKENS as f64
        ),
        None => println!("sustained: none of the rates met p99 send lateness under 1 ms"),
    }
}
