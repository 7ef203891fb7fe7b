//! `cargo bench --bench engine`: the harness's own limits, each beside a reference measured
//! in the same process.
//!
//! 1. closed-loop throughput with a no-op synthetic workload (target >= 1,000,000 req/s),
//!    against a bare loop awaiting the same workload with no harness around it;
//! 2. open-loop send lateness at 10,000 req/s (target p99 <= 100 us), against the lateness
//!    of bare precise waits at the same rate;
//! 3. resident memory growth over a long closed-loop run (target <= 5 MB over 10 minutes;
//!    BENCH_SOAK_SECS sets the length, default 600; 0 skips it).

use std::time::{Duration, Instant};

use benchctl::clock;
use benchctl::engine::events::Reporter;
use benchctl::engine::executor::{Engine, RunOutcome};
use benchctl::measure::record::Metric;
use benchctl::random::Rng;
use benchctl::workload::{Call, Events, Workload};

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &benchctl::engine::events::RunEvent) {}
}

const NOOP: &str = "workload \"noop\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"0s\"\n    }";

fn run(phases: &str) -> RunOutcome {
    let text = format!("scenario \"bench\" {{\n    {NOOP}\n{phases}\n}}\n");
    let c = benchctl::check::check_source("bench.kdl", None, &text, &Default::default());
    let valid = c.scenario.expect("bench scenario is valid");
    let workloads =
        benchctl::registry::prepare_all(&valid, &c.sources, std::path::Path::new("."), &mut |_, _| {}).unwrap().ready;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut q = Quiet;
    Engine::run_to_end(&rt, &benchctl::plan::build(&valid, &c.sources), workloads, &mut q)
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn bare_throughput(workload: &dyn Workload, secs: f64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (mut rng, mut events) = (Rng::new(1), Events::default());
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut n = 0u64;
        while Instant::now() < end {
            for _ in 0..1000 {
                let _ = workload.call(Call { rng: &mut rng, events: &mut events }).await;
            }
            n += 1000;
        }
        n as f64 / secs
    })
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {cores} cores");
    // 1. Closed loop.
    let o = run("    phase \"c2\" duration=\"3s\" { drive \"noop\" concurrency=2; }\n    phase \"c8\" duration=\"3s\" { drive \"noop\" concurrency=8; }");
    let spec = benchctl::check::check_source(
        "b.kdl",
        None,
        &format!(
            "scenario \"b\" {{\n    {NOOP}\n    phase \"p\" duration=\"1s\" {{ drive \"noop\" concurrency=1; }}\n}}\n"
        ),
        &Default::default(),
    );
    let wl = benchctl::registry::prepare_all(
        spec.scenario.as_ref().unwrap(),
        &spec.sources,
        std::path::Path::new("."),
        &mut |_, _| {},
    )
    .ok()
    .unwrap()
    .ready;
    let bare = bare_throughput(wl["noop"].as_ref(), 2.0);
    for p in &o.phases {
        let r = &p.workloads[0].recorded;
        let rate = r.counters.requests as f64 / r.elapsed.as_secs_f64();
        println!(
            "closed loop {:>3}: {:>12.0} req/s  ({:.2}x the bare loop on one thread: {bare:.0} req/s)",
            p.name,
            rate,
            rate / bare
        );
    }
    // 2. Open loop at 10,000/s.
    let o = run("    phase \"open\" duration=\"10s\" { drive \"noop\" rate=\"10000/s\" arrivals=\"constant\"; }");
    let late = o.phases[0].workloads[0].recorded.hists.get(Metric::SendLateness).clone();
    let mut reference = benchctl::stats::histogram();
    let start = Instant::now();
    for i in 1..=20_000u64 {
        let at = start + Duration::from_micros(100 * i);
        clock::wait_until(at);
        let _ = reference.record(Instant::now().duration_since(at).as_nanos() as u64);
    }
    let us = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "open loop 10,000/s: send lateness p50 {:.1} us, p99 {:.1} us, max {:.1} us over {} requests",
        us(&late, 0.5),
        us(&late, 0.99),
        late.max() as f64 / 1e3,
        late.len()
    );
    println!(
        "  reference, bare precise waits at 10,000/s: p50 {:.1} us, p99 {:.1} us (ratio of p99s {:.2})",
        us(&reference, 0.5),
        us(&reference, 0.99),
        us(&late, 0.99) / us(&reference, 0.99).max(0.001)
    );
    // 3. Memory over a long run.
    let soak: u64 = std::env::var("BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    if soak > 0 {
        let before = rss_kb();
        let sampler = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(soak.min(30) / 3));
            let early = rss_kb();
            std::thread::sleep(Duration::from_secs(soak.saturating_sub(soak.min(30) / 3 + 2)));
            (early, rss_kb())
        });
        let o = run(&format!("    phase \"soak\" duration=\"{soak}s\" {{ drive \"noop\" concurrency=4; drive \"noop\" rate=\"2000/s\"; }}"));
        let (early, late) = sampler.join().unwrap();
        let r = &o.phases[0].workloads[0].recorded;
        println!(
            "soak {soak}s, {} requests, {} windows: RSS {} MB before, {} MB after warm-up, {} MB near the end: growth {:.2} MB",
            r.counters.requests,
            r.series.len(),
            before / 1024,
            early / 1024,
            late / 1024,
            (late as f64 - early as f64) / 1024.0
        );
    }
}
