//! `cargo bench --bench inference`: LLM inference on the CPU with the real SmolLM2-135M
//! Q4_1 GGUF (scripts/fetch-models.sh), each figure beside a reference measured in the same
//! process on the same file and threads:
//!
//! 1. TTFT for 8-, 32- and 128-token prompts and decode tok/s (64 tokens, greedy): candle's
//!    own quantized llama in a bare generation loop, against benchctl's llama with the dense
//!    prefill path and with quantised weights only;
//! 2. the inference workload driven by the engine (closed loop, one request at a time, 32-token
//!    prompts, 64 output tokens): decode tok/s from the result's TPOT, against the bare loop.
//!
//! Medians of BENCH_RUNS runs (default 5). llama.cpp on this machine: TTFT 34 / 109 / 411 ms,
//! 96 tok/s (../shared/anchors.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use benchctl::engine::events::Reporter;
use benchctl::engine::executor::Engine;
use benchctl::inference::generate::generate;
use benchctl::inference::llama::Llama;
use benchctl::inference::model::Net;
use benchctl::measure::record::Metric;
use candle_core::quantized::gguf_file;
use candle_core::{Device, IndexOp, Tensor, D};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn model_path() -> PathBuf {
    let dir = std::env::var_os("BENCHCTL_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/benchctl/models"));
    dir.join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// candle's quantized llama, as a user of candle would write the loop.
fn bare(path: &Path, prompt: &[u32], new: usize) -> (f64, f64) {
    use candle_transformers::models::quantized_llama::ModelWeights;
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut m = ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let t0 = Instant::now();
    let x = Tensor::new(prompt, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let logits = m.forward(&x, 0).unwrap();
    let mut next = logits.i(0).unwrap().argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
    let ttft = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for i in 0..new - 1 {
        let x = Tensor::new(&[next], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits = m.forward(&x, prompt.len() + i).unwrap();
        next = logits.i(0).unwrap().argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
    }
    (ttft, (new - 1) as f64 / t1.elapsed().as_secs_f64())
}

fn ours(net: &Net, prompt: &[u32], new: usize) -> (f64, f64) {
    let g = generate(net, &[prompt.to_vec()], new, None).unwrap();
    let t = &g.times[0];
    (g.prefill.as_secs_f64(), (t.len() - 1) as f64 / (t[t.len() - 1] - t[0]).as_secs_f64())
}

fn load_ours(path: &Path, dense: bool) -> Net {
    let mut f = std::fs::File::open(path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    Net::Llama(Llama::from_gguf(&ct, &mut f, &Device::Cpu, dense).unwrap())
}

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &benchctl::engine::events::RunEvent) {}
}

fn main() {
    let path = model_path();
    if !path.exists() {
        eprintln!("{} is missing: run scripts/fetch-models.sh", path.display());
        std::process::exit(2);
    }
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores; model {}; medians of {runs} runs", path.display());
    let dense = load_ours(&path, true);
    let quant = load_ours(&path, false);
    let new = 64;
    println!(
        "{:>7} | {:>28} | {:>28} | {:>28}",
        "prompt", "bare candle TTFT, tok/s", "benchctl dense prefill", "benchctl quantised only"
    );
    for len in [8usize, 32, 128] {
        let prompt: Vec<u32> = (0..len as u32).map(|i| 1000 + i * 7).collect();
        let (mut b, mut d, mut q) = (vec![], vec![], vec![]);
        // Interleaved, so drift on a noisy machine hits all three alike.
        for _ in 0..runs {
            b.push(bare(&path, &prompt, new));
            d.push(ours(&dense, &prompt, new));
            q.push(ours(&quant, &prompt, new));
        }
        let cell = |v: &[(f64, f64)]| {
            let (t, r) = (median(v.iter().map(|x| x.0).collect()), median(v.iter().map(|x| x.1).collect()));
            (t, r, format!("{:>9.1} ms {:>7.1} tok/s", t * 1e3, r))
        };
        let (bt, br, bs) = cell(&b);
        let (dt, dr, ds) = cell(&d);
        let (_, _, qs) = cell(&q);
        println!("{len:>7} | {bs:>28} | {ds:>28} | {qs:>28}");
        println!("{:>7}   TTFT bare/dense {:.2}x; dense decode / bare decode {:.3}", "", bt / dt, dr / br);
    }
    // 2. Through the engine.
    let text = format!(
        "scenario \"bench\" {{\n    workload \"chat\" kind=\"inference\" {{\n        model gguf=\"{}\"\n        prompt tokens=32\n        output tokens={new}\n        warmup requests=1\n    }}\n    phase \"p\" {{ drive \"chat\" concurrency=1 requests={runs}; }}\n}}\n",
        path.display()
    );
    let c = benchctl::check::check_source("bench.kdl", None, &text, &Default::default());
    let valid = c.scenario.expect("bench scenario is valid");
    let prompt: Vec<u32> = (0..32u32).map(|i| 1000 + i * 7).collect();
    let bare_rates: Vec<f64> = (0..runs).map(|_| bare(&path, &prompt, new).1).collect();
    let wl = benchctl::registry::prepare_all(&valid, &c.sources, Path::new("."), &mut |_, _| {})
        .expect("workload loads")
        .ready;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut q = Quiet;
    let o = Engine::run_to_end(&rt, &benchctl::plan::build(&valid, &c.sources), wl, &mut q);
    let rec = &o.phases[0].workloads[0].recorded;
    let tpot = rec.hists.get(Metric::Tpot);
    let engine_rate = 1e9 / tpot.value_at_quantile(0.5) as f64;
    let ttft = rec.hists.get(Metric::Ttft).value_at_quantile(0.5) as f64 / 1e6;
    let bare_rate = median(bare_rates);
    println!(
        "engine, 32-token prompt: TTFT p50 {ttft:.1} ms, decode {engine_rate:.1} tok/s (1/TPOT p50); bare candle {bare_rate:.1} tok/s; ratio {:.3}",
        engine_rate / bare_rate
    );
}
