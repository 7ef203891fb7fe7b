//! `cargo bench --bench retrieval`: the retrieval workload on synthetic clustered vectors
//! (1,000 Gaussian centres, spread 0.5, as in ../shared/anchors.md), one backend per process
//! so that peak memory is that backend's:
//!
//! 1. cold start: data, HNSW build on all cores, ground truth, all written to a cache;
//! 2. warm start: the same scenario again, index and ground truth from the cache (time to the
//!    first query);
//! 3. the ef sweep (single-threaded, one query at a time: a bare search loop timed around each
//!    call) for recall@10 against p50/p95 latency;
//! 4. the engine driving the same index (closed loop, one request at a time, at the first ef)
//!    against the sweep's bare loop at that ef: what the harness adds.
//!
//! Environment: BENCH_BACKEND (usearch | hnsw_rs, default usearch), BENCH_N (200000),
//! BENCH_DIM (128), BENCH_EF (64: the engine's ef), BENCH_REQUESTS (5000),
//! BENCH_CACHE (target/bench-cache), BENCH_M (16), and hnsw_rs's build options BENCH_EXTEND (0/1),
//! BENCH_KEEP (0/1), BENCH_LEVEL (level scale factor, 1.0); usearch's BENCH_QUANT (f32, f16,
//! bf16, i8: the scalar type it stores vectors as).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use benchctl::engine::drive::Stop;
use benchctl::engine::events::Reporter;
use benchctl::engine::executor::{Engine, Options};
use benchctl::measure::record::Metric;
use benchctl::retrieval::workload::{RetrievalOptions, RetrievalWorkload};
use benchctl::workload::Workload;

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &benchctl::engine::events::RunEvent) {}
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let backend: String = env("BENCH_BACKEND", "usearch".to_string());
    let (n, dim, ef, requests): (usize, usize, usize, usize) =
        (env("BENCH_N", 200_000), env("BENCH_DIM", 128), env("BENCH_EF", 64), env("BENCH_REQUESTS", 5000));
    let cache: String = env("BENCH_CACHE", "target/bench-cache".to_string());
    let extend = env("BENCH_EXTEND", 0) == 1;
    let keep = env("BENCH_KEEP", 0) == 1;
    let level: f64 = env("BENCH_LEVEL", 1.0);
    let quant: String = env("BENCH_QUANT", "f32".to_string());
    let m: usize = env("BENCH_M", 16);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "machine: {cores} cores; {backend}, {n} x {dim}, M {m}, ef_construction 200, {quant}, 1000 held-out queries"
    );
    let scenario = |efs: &str| {
        format!(
            "scenario \"bench\" {{\n    seed 7\n    workload \"r\" kind=\"retrieval\" {{\n        index \"hnsw\" backend=\"{backend}\" entries={n} dim={dim} m={m} ef-construction=200 {}\n        data synthetic clusters=1000 spread=0.5\n        query top-k=10 count=1000 source=\"held-out\"\n        ef-sweep {efs}\n        cache dir=\"{cache}\"\n    }}\n    phase \"p\" {{ drive \"r\" concurrency=1 requests={requests}; }}\n}}\n",
            if backend == "usearch" {
                format!("quantization=\"{quant}\"")
            } else {
                format!("extend-candidates={extend} keep-pruned={keep} level-scale={level:?}").replace("true", "#true").replace("false", "#false")
            },
        )
    };
    let prepare = |efs: &str| {
        let text = scenario(efs);
        let c = benchctl::check::check_source("bench.kdl", None, &text, &Default::default());
        let valid = c.scenario.unwrap_or_else(|| panic!("bench scenario is invalid: {:?}", c.diagnostics));
        let t = Instant::now();
        let p = benchctl::registry::prepare_all(&valid, &c.sources, Path::new("."), &mut |_, m| eprintln!("  {m}"))
            .expect("prepares");
        let plan = benchctl::plan::build(&valid, &c.sources);
        ((valid, plan), p, t.elapsed().as_secs_f64())
    };
    // 1. Cold (or warm, if an earlier run left the cache).
    let (_, p, first) = prepare(&format!("{ef}"));
    let facts = p.ready["r"].detail().unwrap();
    let idx = &facts["index"];
    println!(
        "first start: {first:.1} s to the first query (index {}: build {:.1} s, ground truth {}); index memory {:.0} MB, on disk {:.0} MB",
        if idx["from_cache"] == true { "from the cache" } else { "built" },
        idx["build_time_s"].as_f64().unwrap_or(f64::NAN),
        idx["ground_truth_s"].as_f64().map_or("-".into(), |s| format!("{s:.1} s")),
        idx["memory_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        idx["file_bytes"].as_f64().unwrap_or(0.0) / 1e6,
    );
    for w in &p.warnings {
        println!("warning: {w}");
    }
    drop(p);
    // 2. Warm.
    let (_, p, second) = prepare(&format!("{ef}"));
    let facts = p.ready["r"].detail().unwrap();
    println!(
        "second start: {second:.1} s to the first query (index from the cache: {}, read in {:.2} s; ground truth from the cache: {})",
        facts["index"]["from_cache"],
        facts["index"]["load_time_s"].as_f64().unwrap_or(f64::NAN),
        facts["index"]["ground_truth_from_cache"]
    );
    drop(p);
    // 3. Sweep, then 4. the engine at the first ef.
    let ((valid, plan), p, _) = prepare(&format!("{ef} 16 32 64 128 256"));
    let facts = p.ready["r"].detail().unwrap();
    let mut rows = facts["ef_sweep"].as_array().unwrap().clone();
    rows.sort_by_key(|r| r["ef"].as_u64());
    rows.dedup_by_key(|r| r["ef"].as_u64());
    println!("{:>5} | {:>9} | {:>9} | {:>9} | {:>9}", "ef", "recall@10", "p50 ms", "p95 ms", "q/s");
    for r in &rows {
        println!(
            "{:>5} | {:>9.3} | {:>9.3} | {:>9.3} | {:>9.0}",
            r["ef"],
            r["recall"].as_f64().unwrap(),
            r["p50_s"].as_f64().unwrap() * 1e3,
            r["p95_s"].as_f64().unwrap() * 1e3,
            r["qps"].as_f64().unwrap()
        );
    }
    drop(p);
    // 4. The engine against a bare loop on the same index, interleaved (3 rounds; medians).
    let spec = match &valid.scenario.workloads[0].spec {
        benchctl::dsl::model::WorkloadSpec::Retrieval(r) => r,
        _ => unreachable!(),
    };
    let setup = RetrievalOptions { seed: 7, base: Path::new("."), cache: Some(cache.clone().into()), partition: None };
    let w = Arc::new(RetrievalWorkload::load(spec, &setup, &mut vec![], &mut |_| {}).expect("prepares"));
    let workers: usize = env("BENCH_WORKERS", cores);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    let (mut e50, mut e95, mut b50, mut b95, mut recall) = (vec![], vec![], vec![], vec![], 0.0);
    for _ in 0..3 {
        let bare = w.sweep_row(ef).unwrap();
        b50.push(bare.p50_s * 1e3);
        b95.push(bare.p95_s * 1e3);
        let mut map: std::collections::BTreeMap<String, Arc<dyn Workload>> = Default::default();
        map.insert("r".into(), w.clone());
        let mut q = Quiet;
        let o = rt.block_on(Engine::new(&plan, map, Options::default(), Arc::new(Stop::default()), &mut q).execute());
        let rec = &o.phases[0].workloads[0].recorded;
        let lat = rec.hists.get(Metric::Latency);
        e50.push(lat.value_at_quantile(0.5) as f64 / 1e6);
        e95.push(lat.value_at_quantile(0.95) as f64 / 1e6);
        recall = rec.hists.named("recall").map_or(f64::NAN, |(h, scale)| h.mean() / scale);
    }
    let (e50, e95, b50, b95) = (median(e50), median(e95), median(b50), median(b95));
    println!(
        "engine at ef {ef}, {requests} requests x 3 rounds: p50 {e50:.3} ms, p95 {e95:.3} ms, recall {recall:.3}; bare loop (1000 queries x 3) p50 {b50:.3} ms, p95 {b95:.3} ms; engine/bare p50 {:.3}, p95 {:.3}",
        e50 / b50,
        e95 / b95
    );
    println!("peak RSS of this process: {:.0} MB", peak_rss_mb());
}
