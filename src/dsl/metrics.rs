//! The metric catalogue: which metrics each workload kind and probe produces, their units,
//! the aggregations they accept, and their definitions (rendered into the docs).

use super::model::{ProbeKind, WorkloadKind};

/// What a metric's values are measured in; decides how an expectation's bound is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Duration,
    /// Events per second.
    Rate,
    /// A share between 0 and 1, written as a percentage or a fraction.
    Ratio,
    Bytes,
    /// Bytes, or a percentage of the total (memory).
    BytesOrShare,
    Count,
    /// A plain number in the named unit (W, J, GB/s, ...).
    Number(&'static str),
}

impl Unit {
    pub fn example(self) -> &'static str {
        match self {
            Unit::Duration => "\"5ms\"",
            Unit::Rate => "30 or \"30/s\"",
            Unit::Ratio => "\"95%\" or 0.95",
            Unit::Bytes => "\"8GiB\"",
            Unit::BytesOrShare => "\"90%\" or \"20GiB\"",
            Unit::Count => "1000",
            Unit::Number(_) => "300",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Unit::Duration => "a duration",
            Unit::Rate => "a rate",
            Unit::Ratio => "a percentage",
            Unit::Bytes => "a size",
            Unit::BytesOrShare => "a size or a percentage",
            Unit::Count => "a count",
            Unit::Number(_) => "a number",
        }
    }
}

/// Aggregations of a distribution (values recorded in an HdrHistogram).
pub const DIST_AGGS: &[&str] =
    &["p50", "p90", "p95", "p99", "p999", "mean", "min", "max", "stddev", "count", "spike_rate", "robust_spike_rate"];
/// Aggregations of a probe series sampled over time.
pub const SERIES_AGGS: &[&str] = &["mean", "min", "max", "peak", "p50", "p95", "p99", "last"];
/// Aggregations of a counter.
pub const COUNTER_AGGS: &[&str] = &["count", "rate"];
/// Aggregations of recall@k over queries.
pub const RECALL_AGGS: &[&str] = &["mean", "min", "p50", "p95"];

#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: Unit,
    /// Accepted aggregations; empty for a single value per phase.
    pub aggs: &'static [&'static str],
    /// Used when the selector names none (only for metrics with one obvious reading).
    pub default_agg: Option<&'static str>,
    pub definition: &'static str,
    /// Set for a per-request measure a workload declares (`Workload::measures`): how the
    /// engine records it. The engine, the result and the reports handle every declared
    /// measure the same way, so a new one needs no code outside its workload's folder.
    pub per_request: Option<PerRequest>,
    /// What to try when a bound on this metric is missed (the report's recommendations).
    pub advice: Option<&'static str>,
}

/// How a declared per-request measure is recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PerRequest {
    /// One value per request, in a histogram of integers: a value in base units (seconds,
    /// a fraction) times `scale`, rounded. `recorded_unit` names those integers and `unit`
    /// the reported values (the result document says both).
    Distribution { scale: f64, recorded_unit: &'static str, unit: &'static str },
    /// Summed over the successful requests of a phase (a counter, reported under its name).
    Sum,
}

impl MetricDef {
    /// The same metric with `advice` for missed bounds.
    pub const fn advise(self, advice: &'static str) -> MetricDef {
        MetricDef { advice: Some(advice), ..self }
    }
    /// The same metric, recorded per request as `how`.
    pub const fn per_request(self, how: PerRequest) -> MetricDef {
        MetricDef { per_request: Some(how), ..self }
    }
}

pub const fn dist(name: &'static str, unit: Unit, definition: &'static str) -> MetricDef {
    MetricDef { name, unit, aggs: DIST_AGGS, default_agg: None, definition, per_request: None, advice: None }
}
pub const fn scalar(name: &'static str, unit: Unit, definition: &'static str) -> MetricDef {
    MetricDef { name, unit, aggs: &[], default_agg: None, definition, per_request: None, advice: None }
}
pub const fn counter(name: &'static str, definition: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit: Unit::Count,
        aggs: COUNTER_AGGS,
        default_agg: Some("count"),
        definition,
        per_request: None,
        advice: None,
    }
}
const fn series(name: &'static str, unit: Unit, definition: &'static str) -> MetricDef {
    MetricDef { name, unit, aggs: SERIES_AGGS, default_agg: None, definition, per_request: None, advice: None }
}

/// Metrics every workload reports.
pub const COMMON: &[MetricDef] = &[
    dist("latency", Unit::Duration, "completion time - intended start (open loop: the scheduled send time; closed loop: when the worker issued the request), of successful requests").advise("latency or throughput off target: lower the offered load or add capacity; compare send_lateness to tell generator lag from service time"),
    dist("failed_latency", Unit::Duration, "failure time - intended start, of failed requests (kept out of `latency`)"),
    counter("requests", "requests completed (successfully or not) in the phase; `.rate` divides by the phase's wall time"),
    counter("errors", "requests that failed").advise("errors over target: see errors_by_kind in the result"),
    scalar("error_rate", Unit::Ratio, "errors / requests").advise("errors over target: see errors_by_kind in the result"),
    scalar("throughput", Unit::Rate, "successful requests / phase wall time").advise("latency or throughput off target: lower the offered load or add capacity; compare send_lateness to tell generator lag from service time"),
    dist("send_lateness", Unit::Duration, "actual send time - intended send time (open loop only): how far the load generator fell behind").advise("the load generator fell behind: lower the rate, raise max-in-flight, or use a bigger machine"),
    counter("dropped", "intended starts skipped because max-in-flight was reached").advise("the load generator fell behind: lower the rate, raise max-in-flight, or use a bigger machine"),
    counter("unsent", "open loop: intended starts before the phase's end that the generator never reached (intended = sent + dropped + unsent)"),
    scalar("max_sustainable_load", Unit::Rate, "a rate search's capacity for the workload, requests/s (0 when even the lowest rate missed; no data without a rate search)"),
    scalar("capacity", Unit::Count, "the capacity search's answer for the workload: the highest concurrency, or arrival rate in requests/s, at which every SLO of the search held (0 when even the lowest load missed; no data without a search)"),
];

/// Token-stream metrics (inference, and synthetic workloads with `tokens`).
pub const TOKENS: &[MetricDef] = &[
    dist("ttft", Unit::Duration, "first output token available on the host (after device sync) - intended start").advise("time to first token over target: warm the model up before measuring (a warmup phase), preload weights, use smaller prompt batches or shorter prompts"),
    dist("itl", Unit::Duration, "gap between consecutive output tokens of one request (TTFT excluded)").advise("decoding too slow: lower concurrency or batch size, use a lighter dtype or quantisation, check for CPU or GPU throttling"),
    dist("tpot", Unit::Duration, "(E2E - TTFT) / (output tokens - 1), per request").advise("decoding too slow: lower concurrency or batch size, use a lighter dtype or quantisation, check for CPU or GPU throttling"),
    dist("e2e", Unit::Duration, "last output token - intended start, per request").advise("decoding too slow: lower concurrency or batch size, use a lighter dtype or quantisation, check for CPU or GPU throttling"),
    scalar("tok_s", Unit::Rate, "system output tokens / phase wall time").advise("decoding too slow: lower concurrency or batch size, use a lighter dtype or quantisation, check for CPU or GPU throttling"),
    dist("request_tok_s", Unit::Rate, "output tokens / E2E, per request").advise("decoding too slow: lower concurrency or batch size, use a lighter dtype or quantisation, check for CPU or GPU throttling"),
    counter("output_tokens", "output tokens generated (counted from token ids)"),
];

pub const INFERENCE: &[MetricDef] = &[
    scalar("prefill_tok_s", Unit::Rate, "prompt (input) tokens / total prefill time"),
    counter("input_tokens", "prompt tokens processed"),
    scalar("goodput", Unit::Rate, "successful requests meeting every SLO of the workload (all successful requests when it declares none) / phase wall time"),
    scalar("load_time", Unit::Duration, "time to load the model and move it to the device"),
    scalar("memory.weights", Unit::Bytes, "bytes of model weights on the device"),
    scalar("memory.kv_cache", Unit::Bytes, "peak bytes of KV cache across concurrent requests"),
    scalar(
        "energy_per_token",
        Unit::Number("J"),
        "energy over the phase / output tokens (GPU from NVML, CPU from RAPL)",
    ),
];

/// Time from a request's start to a connection ready to send it on: the wait for a free
/// pooled connection, plus TCP connect and TLS when a new one is opened.
pub const CONNECT_WAIT: MetricDef = measured_duration(
    "connect_wait",
    "request start -> a connection ready to send on (waiting for a free one of `connections`, then TCP connect and TLS when a new one is opened); part of latency, TTFT and E2E",
)
.advise("requests waited for a connection: raise `connections`, or check the server's accept backlog and the network");
/// A duration a workload measures per request, recorded in nanoseconds, reported in seconds.
const fn measured_duration(name: &'static str, definition: &'static str) -> MetricDef {
    dist(name, Unit::Duration, definition).per_request(PerRequest::Distribution {
        scale: 1e9,
        recorded_unit: "ns",
        unit: "s",
    })
}
/// Time to the first answer token (AIPerf's TTFO): the first streamed chunk with content,
/// reasoning skipped; `ttft` counts the first output of any kind.
pub const TTFO: MetricDef = measured_duration(
    "ttfo",
    "first streamed chunk carrying answer content (delta.content or text; reasoning-only chunks do not count) - intended start, of requests that streamed content; equals ttft when the model does not reason",
)
.advise("the answer starts late: shorten the reasoning (a reasoning budget or effort setting), or lower the load");
/// How long a request reasoned before its answer began.
pub const REASONING_TIME: MetricDef = measured_duration(
    "reasoning_time",
    "first answer chunk - first reasoning chunk, of streamed requests that reasoned before answering (ttfo - ttft for them)",
)
.advise("the model reasons long before answering: set a reasoning budget or effort, or use a model that reasons less");
/// Inputs embedded: an embeddings request's batch.
pub const INPUTS: MetricDef = counter(
    "inputs",
    "inputs embedded by the successful requests of an api=\"embeddings\" workload (each request carries `batch` of them); its rate is inputs per second, and input_tokens' rate tokens per second",
)
.per_request(PerRequest::Sum);
/// Prompt tokens a prefix cache of unbounded size would already hold.
pub const CACHED_PREFIX_TOKENS: MetricDef = counter(
    "cached_prefix_tokens",
    "prompt tokens an unbounded prefix cache would already hold when the request is sent: the shared prefix (`prefix \"shared\"` or `\"pool\"`) of a successful request whose prefix an earlier request carried; over input_tokens it is the implied prefix hit rate",
)
.per_request(PerRequest::Sum);
/// Reasoning tokens (`delta.reasoning_content` / `reasoning`), counted apart from content.
pub const REASONING_TOKENS: MetricDef =
    counter("reasoning_tokens", "reasoning tokens received (usage's completion_tokens_details.reasoning_tokens, else reasoning chunks counted by the tokenizer or one per chunk); included in output_tokens")
        .per_request(PerRequest::Sum);
/// Disagreement between two token counts of one response.
pub const TOKEN_MISMATCH: MetricDef = MetricDef {
    name: "token_mismatch",
    unit: Unit::Ratio,
    aggs: RECALL_AGGS,
    default_agg: Some("mean"),
    definition: "abs(server usage - tokenizer count) / server usage, of the output tokens of one request (only when both counts exist)",
    per_request: Some(PerRequest::Distribution { scale: 1e4, recorded_unit: "1e-4", unit: "fraction" }),
    advice: Some("token counts disagree: give the tokenizer the server uses (`tokenizer gguf=` or `file=`), or trust the server's usage"),
};
/// Responses shorter than asked for.
pub const SHORT_OUTPUTS: MetricDef = counter(
    "short_outputs",
    "successful requests that returned fewer output tokens than `output tokens` asked for (the server stopped early)",
)
.per_request(PerRequest::Sum)
.advise("the server stopped before the requested length: set `output min-tokens=` (or `ignore-eos=#true` where the server honours it) to fix the output length");

/// A served model's token stream, timed from the intended start at each SSE chunk.
pub const ENDPOINT_TOKENS: &[MetricDef] = &[
    dist("ttft", Unit::Duration, "first streamed chunk carrying content (text, delta.content, or reasoning) - intended start; role-only and empty chunks do not count").advise("time to first token over target: lower the load, check the server's queue and prefix cache, use shorter prompts"),
    dist("itl", Unit::Duration, "gap between consecutive content chunks of one stream").advise("decoding too slow: lower concurrency, check the server's batch size and GPU clocks"),
    dist("tpot", Unit::Duration, "(E2E - TTFT) / (output tokens - 1), per request, with output tokens from the recorded token source").advise("decoding too slow: lower concurrency, check the server's batch size and GPU clocks"),
    dist("e2e", Unit::Duration, "last content chunk - intended start, per request (`latency` runs to the end of the stream)").advise("decoding too slow: lower concurrency, check the server's batch size and GPU clocks"),
    scalar("tok_s", Unit::Rate, "system output tokens / phase wall time").advise("decoding too slow: lower concurrency, check the server's batch size and GPU clocks"),
    dist("request_tok_s", Unit::Rate, "output tokens / E2E, per request (non-streamed: / latency)"),
    counter("output_tokens", "output tokens received: the server's usage, else the tokenizer's count of the streamed text, else one per content chunk (the result's token_source says which)"),
    counter("input_tokens", "prompt tokens: the server's usage, else the tokenizer's count of the prompt sent"),
    scalar("goodput", Unit::Rate, "successful requests meeting every SLO of the workload (all successful requests when it declares none) / phase wall time"),
    CONNECT_WAIT,
    REASONING_TOKENS,
    TOKEN_MISMATCH,
    SHORT_OUTPUTS,
    TTFO,
    REASONING_TIME,
    CACHED_PREFIX_TOKENS,
    INPUTS,
];

/// recall@k of one query, recorded in units of 1e-3: values below 2048 are stored exactly
/// at 3 significant digits, so the recall of any k up to 1000 is kept exactly.
pub const RECALL: MetricDef = MetricDef {
    name: "recall",
    unit: Unit::Ratio,
    aggs: RECALL_AGGS,
    default_agg: Some("mean"),
    definition: "recall@k = |returned top-k ∩ exact top-k| / k, per query; exact top-k from brute-force search",
    per_request: Some(PerRequest::Distribution { scale: 1e3, recorded_unit: "1e-3", unit: "fraction" }),
    advice: Some("recall too low: raise ef (or M and ef-construction)"),
};

pub const RETRIEVAL: &[MetricDef] = &[
    RECALL,
    scalar("qps", Unit::Rate, "queries answered / phase wall time")
        .advise("retrieval too slow: lower ef, quantise the vectors, give the index more RAM"),
    scalar(
        "build_time",
        Unit::Duration,
        "time to build the index (on a cache hit: the build that made the cached entry)",
    ),
    scalar(
        "memory.index",
        Unit::Bytes,
        "memory the index holds (the backend's count; for hnsw_rs the resident memory its build added)",
    ),
    scalar("index_size", Unit::Bytes, "bytes of the index on disk (in the cache; missing when caching is off)"),
    scalar("energy_per_query", Unit::Number("J"), "energy over the phase / queries"),
];

/// Device time of one kernel launch (CUDA events), in nanoseconds.
pub const KERNEL_TIME: MetricDef = dist(
    "kernel_time",
    Unit::Duration,
    "device time of one launch, from CUDA events (averaged over launches-per-timing)",
)
.per_request(PerRequest::Distribution { scale: 1e9, recorded_unit: "ns", unit: "s" })
.advise("kernel slower than the target: check the launch configuration, memory access pattern and clocks");
/// Kernel launches behind each timing.
pub const LAUNCHES: MetricDef = counter("launches", "kernel launches timed").per_request(PerRequest::Sum);

pub const KERNEL: &[MetricDef] = &[
    KERNEL_TIME,
    scalar("gb_s", Unit::Number("GB/s"), "declared bytes per launch / mean kernel time"),
    scalar("tflops", Unit::Number("TFLOP/s"), "declared flops per launch / mean kernel time"),
    scalar("bandwidth_share", Unit::Ratio, "gb_s / peak bandwidth measured on this device"),
    scalar("compute_share", Unit::Ratio, "tflops / peak matmul throughput measured on this device"),
    LAUNCHES,
];

pub const SYSTEM: &[MetricDef] = &[
    series("cpu", Unit::Ratio, "CPU busy share over all cores, per sample")
        .advise("CPU or GPU busier than the target allows: lower the load or add capacity"),
    series("memory", Unit::BytesOrShare, "used physical memory, per sample (bytes, or share of total RAM)")
        .advise("memory over target: smaller batches or model, fewer concurrent requests, or less ballast"),
    series("swap", Unit::Bytes, "used swap, per sample"),
];
pub const PROCESS: &[MetricDef] = &[
    series("rss", Unit::BytesOrShare, "resident set size of the benchctl process")
        .advise("memory over target: smaller batches or model, fewer concurrent requests, or less ballast"),
    series("cpu", Unit::Ratio, "CPU share used by the benchctl process (1 = one full core)")
        .advise("CPU or GPU busier than the target allows: lower the load or add capacity"),
];
pub const GPU: &[MetricDef] = &[
    series("utilization", Unit::Ratio, "share of time a kernel ran, per sample (NVML)")
        .advise("CPU or GPU busier than the target allows: lower the load or add capacity"),
    series("memory", Unit::BytesOrShare, "device memory used, per sample")
        .advise("memory over target: smaller batches or model, fewer concurrent requests, or less ballast"),
    series("temperature", Unit::Number("°C"), "GPU temperature"),
    series("power", Unit::Number("W"), "board power draw"),
    series("sm_clock", Unit::Number("MHz"), "SM clock"),
    series("throttled", Unit::Ratio, "share of samples with any throttle reason active"),
];
pub const ENERGY: &[MetricDef] = &[
    scalar(
        "total",
        Unit::Number("J"),
        "energy over the phase: NVML's total-energy counter, else integrated power; RAPL on the CPU",
    ),
    series("power", Unit::Number("W"), "average power per sample interval"),
];

/// Aggregations of a server histogram (bucket increases over a phase, interpolated).
pub const SERVER_HIST_AGGS: &[&str] = &["p50", "p90", "p95", "p99", "mean", "count"];

const fn server_hist(name: &'static str, definition: &'static str) -> MetricDef {
    MetricDef {
        name,
        unit: Unit::Duration,
        aggs: SERVER_HIST_AGGS,
        default_agg: None,
        definition,
        per_request: None,
        advice: None,
    }
}

/// The model server's own metrics, scraped from its Prometheus endpoint (see docs/metrics.md
/// for each family's names). Counters are increases over a phase; gauges are sampled; the
/// histograms are the server's buckets, so their percentiles are interpolated.
pub const SERVER: &[MetricDef] = &[
    counter("requests", "requests the server finished during the phase (its counter's increase)"),
    counter(
        "prompt_tokens",
        "prompt tokens the server took in during the phase (llama.cpp: computed + reused from cache)",
    ),
    counter("generation_tokens", "tokens the server generated during the phase"),
    counter("preemptions", "requests the server preempted during the phase")
        .advise("the server preempted requests: the KV cache is full; lower concurrency or raise the cache"),
    scalar(
        "prefix_cache_hit_rate",
        Unit::Ratio,
        "prefix-cache hits / lookups over the phase (tokens), else the server's own hit-rate gauge",
    ),
    series("running", Unit::Count, "requests the server was running, per scrape")
        .advise("the server queues requests: lower the load or add replicas"),
    series("waiting", Unit::Count, "requests waiting in the server's queue, per scrape")
        .advise("the server queues requests: lower the load or add replicas"),
    series("kv_cache_usage", Unit::Ratio, "share of the KV cache in use, per scrape")
        .advise("the KV cache is nearly full: lower concurrency or context length, or give the cache more memory"),
    server_hist("ttft", "the server's time to first token (its histogram; interpolated)"),
    server_hist("e2e", "the server's request latency, arrival to last token (its histogram; interpolated)"),
    server_hist("itl", "the server's inter-token latency (its histogram; interpolated)"),
];

/// The catalogue entry of a workload kind's metric, if it has one by that name.
pub fn workload_metric(kind: WorkloadKind, name: &str) -> Option<&'static MetricDef> {
    workload_metrics(kind, true).into_iter().find(|m| m.name == name)
}

/// Whether `name` is a per-request measure declared by workload kind `kind` (a kind as the
/// result writes it), which reports list apart from the engine's own metrics.
pub fn is_declared(kind: &str, name: &str) -> bool {
    WorkloadKind::from_name(kind).and_then(|k| workload_metric(k, name)).is_some_and(|d| d.per_request.is_some())
}

/// Metrics of a workload kind, `tokens` telling whether a synthetic workload streams tokens.
pub fn workload_metrics(kind: WorkloadKind, tokens: bool) -> Vec<&'static MetricDef> {
    let extra: &[&[MetricDef]] = match kind {
        WorkloadKind::Inference => &[TOKENS, INFERENCE],
        WorkloadKind::Retrieval => &[RETRIEVAL],
        WorkloadKind::Kernel => &[KERNEL],
        WorkloadKind::Openai => &[ENDPOINT_TOKENS],
        WorkloadKind::Synthetic if tokens => &[TOKENS],
        WorkloadKind::Synthetic => &[],
    };
    COMMON.iter().chain(extra.iter().flat_map(|s| s.iter())).collect()
}

pub fn probe_metrics(kind: ProbeKind) -> &'static [MetricDef] {
    match kind {
        ProbeKind::System => SYSTEM,
        ProbeKind::Process => PROCESS,
        ProbeKind::Gpu => GPU,
        ProbeKind::Energy => ENERGY,
        ProbeKind::Server => SERVER,
    }
}

/// The unit of `metric.agg`: counts and rates of anything are counts and rates, spike rates
/// are shares.
pub fn aggregated_unit(def: &MetricDef, agg: Option<&str>) -> Unit {
    match agg {
        Some("count") => Unit::Count,
        Some("rate") => Unit::Rate,
        Some("spike_rate" | "robust_spike_rate") => Unit::Ratio,
        _ => def.unit,
    }
}

/// The metric tables of docs/metrics.md, generated from this catalogue (a test checks that
/// the docs contain exactly this text).
pub fn markdown_tables() -> String {
    let sections: [(&str, &[MetricDef]); 11] = [
        ("Every workload", COMMON),
        ("Token streams (inference; synthetic with `tokens`)", TOKENS),
        ("Inference", INFERENCE),
        ("Retrieval", RETRIEVAL),
        ("Kernel", KERNEL),
        ("OpenAI-compatible endpoint (besides every workload's)", ENDPOINT_TOKENS),
        ("Probe `system`", SYSTEM),
        ("Probe `process`", PROCESS),
        ("Probe `gpu`", GPU),
        ("Probe `energy`", ENERGY),
        ("The model server (`server`, scraped by `openai` workloads)", SERVER),
    ];
    let mut out = String::new();
    for (title, set) in sections {
        out += &format!("\n### {title}\n\n| metric | unit | aggregations | definition |\n|---|---|---|---|\n");
        for m in set {
            let unit = match m.unit {
                Unit::Number(u) => u.to_string(),
                u => u.name().trim_start_matches("a ").to_string(),
            };
            let aggs = if m.aggs.is_empty() {
                "(one value)".to_string()
            } else {
                let names: Vec<String> = m
                    .aggs
                    .iter()
                    .map(|a| if Some(*a) == m.default_agg { format!("**{a}**") } else { a.to_string() })
                    .collect();
                names.join(", ")
            };
            out += &format!("| `{}` | {unit} | {aggs} | {} |\n", m.name, m.definition);
        }
    }
    out
}

/// Percentile of a `pNN` aggregation as a fraction (p999 -> 0.999), if it is one.
pub fn percentile(agg: &str) -> Option<f64> {
    let digits = agg.strip_prefix('p')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: f64 = digits.parse().ok()?;
    let p = n / 10f64.powi(digits.len() as i32);
    // p50 -> 0.50, p999 -> 0.999, p9999 -> 0.9999
    (p > 0.0 && p < 1.0).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile("p50"), Some(0.5));
        assert_eq!(percentile("p99"), Some(0.99));
        assert_eq!(percentile("p999"), Some(0.999));
        assert_eq!(percentile("mean"), None);
    }

    #[test]
    fn every_metric_is_unique_per_kind() {
        for kind in WorkloadKind::NAMES.iter().filter_map(|n| WorkloadKind::from_name(n)) {
            let m = workload_metrics(kind, true);
            let mut names: Vec<_> = m.iter().map(|d| d.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), m.len(), "{kind:?}");
        }
    }
}
