//! `cargo bench --bench scrape`: reading a server's Prometheus exposition. A vLLM-shaped
//! exposition of about 2 MB (many labelled series: gauges, `_total` counters with their
//! `_created` lines, 20-bucket histograms) is parsed and mapped to canonical names
//! (`expo::parse` + `family::snapshot`) `BENCH_SCRAPE_ITERS` times (default 40); prints the
//! median and the slowest. The cost of scraping during a run: `BENCH_SCRAPE_PAIRS=N cargo
//! bench --bench endpoint`.

#[path = "support/exposition.rs"]
mod exposition;

use std::time::Instant;

use benchctl::probe::server::{expo, family};

fn main() {
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"scrape".contains(a.as_str())) {
        return;
    }
    let iters: usize = std::env::var("BENCH_SCRAPE_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let text = exposition::vllm(215, 123_456);
    let lines = text.lines().count();
    let mut times = vec![];
    let mut kept = 0;
    for _ in 0..iters {
        let t = Instant::now();
        let e = expo::parse(&text);
        let s = family::snapshot(&e, family::detect(&e));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(e.skipped, 0, "{:?}", e.first_skipped);
        kept = s.counters.len() + s.gauges.len() + s.histograms.len();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{:.2} MB, {lines} lines, {kept} canonical series: parse + map median {:.2} ms, slowest {:.2} ms over {iters} runs (target: under 20 ms)",
        text.len() as f64 / 1e6,
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
