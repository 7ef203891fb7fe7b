//! A vLLM-shaped Prometheus exposition for the scrape benches: `models` label sets, each
//! with the gauges, `_total` counters (and their `_created` lines) and histograms vLLM
//! writes, as prometheus_client formats them.

/// About `models` x 9.5 KB of text.
pub fn vllm(models: usize, served: u64) -> String {
    let mut m = String::with_capacity(models * 10_000);
    let n = served as f64;
    let les = [
        "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0",
        "7.5", "10.0", "20.0", "40.0", "80.0", "+Inf",
    ];
    let help = |m: &mut String, name: &str, kind: &str| {
        m.push_str(&format!("# HELP {name} Benchmark series.\n# TYPE {name} {kind}\n"));
    };
    for (name, kind) in [
        ("vllm:num_requests_running", "gauge"),
        ("vllm:num_requests_waiting", "gauge"),
        ("vllm:kv_cache_usage_perc", "gauge"),
    ] {
        help(&mut m, name, kind);
        for i in 0..models {
            m.push_str(&format!("{name}{{engine=\"0\",model_name=\"org/model-{i}\"}} {}\n", (i % 7) as f64));
        }
    }
    for name in ["vllm:request_success", "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:num_preemptions"] {
        help(&mut m, name, "counter");
        for i in 0..models {
            for reason in ["stop", "length", "abort"] {
                let labels = format!("engine=\"0\",finished_reason=\"{reason}\",model_name=\"org/model-{i}\"");
                m.push_str(&format!("{name}_total{{{labels}}} {:e}\n", n * (i + 1) as f64));
                m.push_str(&format!("{name}_created{{{labels}}} 1.7651e+09\n"));
            }
        }
    }
    for name in
        ["vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds"]
    {
        help(&mut m, name, "histogram");
        for i in 0..models {
            let labels = format!("engine=\"0\",model_name=\"org/model-{i}\"");
            for (k, le) in les.iter().enumerate() {
                let c = n * (k + 1) as f64 / les.len() as f64;
                m.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {c:e}\n"));
            }
            m.push_str(&format!("{name}_count{{{labels}}} {n:e}\n{name}_sum{{{labels}}} {}\n", n * 0.05));
            m.push_str(&format!("{name}_created{{{labels}}} 1.7651e+09\n"));
        }
    }
    m
}
