//! Which server wrote an exposition, and its series under benchctl's canonical names.
//!
//! | canonical | kind | vLLM (`vllm:`) | SGLang (`sglang:`) | llama.cpp (`llamacpp:`) | TGI (`tgi_`) |
//! |---|---|---|---|---|---|
//! | requests | counter | request_success | num_requests | - | request_count |
//! | prompt_tokens | counter | prompt_tokens | prompt_tokens | prompt_tokens + prompt_tokens_cached | request_input_length (sum) |
//! | generation_tokens | counter | generation_tokens | generation_tokens | tokens_predicted | request_generated_tokens (sum) |
//! | preemptions | counter | num_preemptions | - | - | - |
//! | prefix_cache_hits | counter | prefix_cache_hits (gpu_prefix_cache_hits) | cached_tokens | prompt_tokens_cached | - |
//! | prefix_cache_queries | counter | prefix_cache_queries (gpu_prefix_cache_queries) | prompt_tokens | prompt_tokens + prompt_tokens_cached | - |
//! | running | gauge | num_requests_running | num_running_reqs | requests_processing | batch_current_size |
//! | waiting | gauge | num_requests_waiting | num_queue_reqs | requests_deferred | queue_size |
//! | kv_cache_usage | gauge | kv_cache_usage_perc (gpu_cache_usage_perc) | token_usage | - | - |
//! | prefix_cache_hit_rate | gauge | - | cache_hit_rate | - | - |
//! | ttft | histogram | time_to_first_token_seconds | time_to_first_token_seconds | - | - |
//! | e2e | histogram | e2e_request_latency_seconds | e2e_request_latency_seconds | - | request_duration |
//! | itl | histogram | inter_token_latency_seconds (time_per_output_token_seconds) | inter_token_latency_seconds (time_per_output_token_seconds) | - | - |
//!
//! Counters lose their `_total` suffix before matching (vLLM writes it on the wire, not in
//! `# TYPE`). Series of one name are added up over their labels (engines, models, finish
//! reasons), except shares (`kv_cache_usage`, `prefix_cache_hit_rate`), which take the
//! largest. Every other counter and gauge is kept under its own name, added up over labels.

use std::collections::BTreeMap;

use super::expo::{Exposition, Kind};

/// A server whose metric names benchctl knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Vllm,
    Sglang,
    Llamacpp,
    Tgi,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Vllm => "vllm",
            Family::Sglang => "sglang",
            Family::Llamacpp => "llamacpp",
            Family::Tgi => "tgi",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Family::Vllm => "vllm:",
            Family::Sglang => "sglang:",
            Family::Llamacpp => "llamacpp:",
            Family::Tgi => "tgi_",
        }
    }

    const ALL: [Family; 4] = [Family::Vllm, Family::Sglang, Family::Llamacpp, Family::Tgi];
}

/// The canonical metric a family's series stands for (`name` without the prefix and
/// without a counter's `_total`), and how series of that name combine over labels.
fn canonical(family: Family, name: &str) -> Option<&'static str> {
    Some(match (family, name) {
        (Family::Vllm, "request_success") => "requests",
        (Family::Vllm | Family::Sglang, "prompt_tokens") => "prompt_tokens",
        (Family::Vllm | Family::Sglang, "generation_tokens") => "generation_tokens",
        (Family::Vllm, "num_preemptions") => "preemptions",
        (Family::Vllm, "prefix_cache_hits" | "gpu_prefix_cache_hits") => "prefix_cache_hits",
        (Family::Vllm, "prefix_cache_queries" | "gpu_prefix_cache_queries") => "prefix_cache_queries",
        (Family::Vllm, "num_requests_running") => "running",
        (Family::Vllm, "num_requests_waiting") => "waiting",
        (Family::Vllm, "kv_cache_usage_perc" | "gpu_cache_usage_perc") => "kv_cache_usage",
        (Family::Vllm | Family::Sglang, "time_to_first_token_seconds") => "ttft",
        (Family::Vllm | Family::Sglang, "e2e_request_latency_seconds") => "e2e",
        (Family::Vllm | Family::Sglang, "inter_token_latency_seconds") => "itl",
        (Family::Sglang, "num_requests") => "requests",
        (Family::Sglang, "cached_tokens") => "prefix_cache_hits",
        (Family::Sglang, "num_running_reqs") => "running",
        (Family::Sglang, "num_queue_reqs") => "waiting",
        (Family::Sglang, "token_usage") => "kv_cache_usage",
        (Family::Sglang, "cache_hit_rate") => "prefix_cache_hit_rate",
        (Family::Llamacpp, "tokens_predicted") => "generation_tokens",
        (Family::Llamacpp, "requests_processing") => "running",
        (Family::Llamacpp, "requests_deferred") => "waiting",
        (Family::Tgi, "request_count") => "requests",
        (Family::Tgi, "batch_current_size") => "running",
        (Family::Tgi, "queue_size") => "waiting",
        (Family::Tgi, "request_duration") => "e2e",
        _ => return None,
    })
}

/// Older names that count only when the newer one is absent from the scrape.
fn fallback(family: Family, name: &str) -> Option<&'static str> {
    match (family, name) {
        (Family::Vllm | Family::Sglang, "time_per_output_token_seconds") => Some("itl"),
        _ => None,
    }
}

/// Shares combine over labels by their largest value, not their sum.
fn is_share(canonical: &str) -> bool {
    matches!(canonical, "kv_cache_usage" | "prefix_cache_hit_rate")
}

/// A histogram's cumulative buckets (upper bound, count at or below it), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub bounds: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Buckets {
    fn add_bucket(&mut self, le: f64, v: f64) {
        match self.bounds.iter_mut().find(|(b, _)| *b == le) {
            Some(slot) => slot.1 += v,
            None => self.bounds.push((le, v)),
        }
    }
}

/// One scrape in canonical names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub counters: BTreeMap<String, f64>,
    pub gauges: BTreeMap<String, f64>,
    pub histograms: BTreeMap<String, Buckets>,
}

/// The family whose prefix most samples carry, if any known one does.
pub fn detect(e: &Exposition) -> Option<Family> {
    Family::ALL
        .into_iter()
        .map(|f| (f, e.samples.iter().filter(|s| s.name.starts_with(f.prefix())).count()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(f, _)| f)
}

/// Adds `v` to `name`'s value (allocating the name only the first time).
fn add(map: &mut BTreeMap<String, f64>, name: &str, v: f64) {
    match map.get_mut(name) {
        Some(slot) => *slot += v,
        None => {
            map.insert(name.into(), v);
        }
    }
}

/// At most this many series kept under their own names (a 2 MB exposition has hundreds).
const MAX_OTHER: usize = 400;

/// One sample of a histogram family: a bucket, the sum or the count of a canonical
/// histogram (an older name into `fallbacks`), or TGI's token counts from its length sums.
fn histogram_sample(out: &mut Snapshot, fallbacks: &mut Snapshot, f: Family, short: &str, s: &super::expo::Sample<'_>) {
    let (target, name) = match (canonical(f, short), fallback(f, short)) {
        (Some(c), _) => (out, c),
        (None, Some(c)) => (fallbacks, c),
        (None, None) => {
            let tokens = match (f, short) {
                (Family::Tgi, "request_input_length") => "prompt_tokens",
                (Family::Tgi, "request_generated_tokens") => "generation_tokens",
                _ => return,
            };
            if s.name.ends_with("_sum") {
                add(&mut out.counters, tokens, s.value);
            }
            return;
        }
    };
    if !target.histograms.contains_key(name) {
        target.histograms.insert(name.into(), Buckets::default());
    }
    let h = target.histograms.get_mut(name).expect("inserted above");
    if s.name.ends_with("_bucket") {
        if let Some(le) = s.label("le").and_then(super::expo::number) {
            h.add_bucket(le, s.value);
        }
    } else if s.name.ends_with("_sum") {
        h.sum += s.value;
    } else if s.name.ends_with("_count") {
        h.count += s.value;
    }
}

/// Reads a scrape into canonical names, with the family's own arithmetic (llama.cpp counts
/// cached prompt tokens apart; TGI counts tokens in histograms).
pub fn snapshot(e: &Exposition, family: Option<Family>) -> Snapshot {
    let mut out = Snapshot::default();
    let mut fallbacks = Snapshot::default();
    for s in &e.samples {
        if s.name.ends_with("_created") || !s.value.is_finite() && !s.name.ends_with("_bucket") {
            continue;
        }
        let declared = e.kind_of(&s.name);
        let (kind, base) = match declared {
            Some((k, base)) => (k, base),
            None if s.name.ends_with("_total") => (Kind::Counter, s.name.trim_end_matches("_total")),
            None => (Kind::Untyped, s.name.as_ref()),
        };
        let base = base.strip_suffix("_total").unwrap_or(base);
        let short = family.and_then(|f| base.strip_prefix(f.prefix()));
        if matches!(kind, Kind::Histogram) {
            if let Some((f, short)) = family.zip(short) {
                histogram_sample(&mut out, &mut fallbacks, f, short, s);
            }
            continue;
        }
        if !matches!(kind, Kind::Counter | Kind::Gauge | Kind::Untyped) {
            continue;
        }
        // llama.cpp counts the prompt tokens it computed and those it reused apart: a client
        // sent both, and both were looked up in the prefix cache.
        if let (Some(Family::Llamacpp), Some(short @ ("prompt_tokens" | "prompt_tokens_cached"))) = (family, short) {
            add(&mut out.counters, "prompt_tokens", s.value);
            add(&mut out.counters, "prefix_cache_queries", s.value);
            if short == "prompt_tokens_cached" {
                add(&mut out.counters, "prefix_cache_hits", s.value);
            }
            continue;
        }
        let known = family.zip(short).and_then(|(f, short)| canonical(f, short));
        let counter = matches!(kind, Kind::Counter) || (kind == Kind::Untyped && s.name.ends_with("_total"));
        let name: &str = match known {
            Some(c) => c,
            None if out.counters.len() + out.gauges.len() >= MAX_OTHER
                && !out.counters.contains_key(base)
                && !out.gauges.contains_key(base) =>
            {
                continue
            }
            None => base,
        };
        let map = if counter { &mut out.counters } else { &mut out.gauges };
        if is_share(name) {
            match map.get_mut(name) {
                Some(slot) => *slot = slot.max(s.value),
                None => {
                    map.insert(name.into(), s.value);
                }
            }
        } else {
            add(map, name, s.value);
        }
        // SGLang looks every prompt token up in its radix cache.
        if family == Some(Family::Sglang) && short == Some("prompt_tokens") {
            add(&mut out.counters, "prefix_cache_queries", s.value);
        }
    }
    for (name, h) in fallbacks.histograms {
        out.histograms.entry(name).or_insert(h);
    }
    for h in out.histograms.values_mut() {
        h.bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::expo::parse;
    use super::*;

    #[test]
    fn vllm_series_take_canonical_names() {
        let text = "# TYPE vllm:num_requests_running gauge\n\
            vllm:num_requests_running{engine=\"0\"} 2\nvllm:num_requests_running{engine=\"1\"} 3\n\
            # TYPE vllm:kv_cache_usage_perc gauge\n\
            vllm:kv_cache_usage_perc{engine=\"0\"} 0.25\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n\
            # TYPE vllm:request_success counter\n\
            vllm:request_success_total{finished_reason=\"stop\"} 10\nvllm:request_success_total{finished_reason=\"length\"} 5\n\
            vllm:request_success_created{finished_reason=\"stop\"} 1.7e9\n\
            # TYPE vllm:prompt_tokens counter\nvllm:prompt_tokens_total 1200\n\
            # TYPE vllm:time_to_first_token_seconds histogram\n\
            vllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 4\n\
            vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 15\n\
            vllm:time_to_first_token_seconds_bucket{le=\"0.01\"} 1\n\
            vllm:time_to_first_token_seconds_sum 2.5\nvllm:time_to_first_token_seconds_count 15\n\
            # TYPE vllm:time_per_output_token_seconds histogram\n\
            vllm:time_per_output_token_seconds_bucket{le=\"+Inf\"} 99\n\
            # TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 3.5\n";
        let e = parse(text);
        let f = detect(&e);
        assert_eq!(f, Some(Family::Vllm));
        let s = snapshot(&e, f);
        assert_eq!(s.gauges["running"], 5.0);
        assert_eq!(s.gauges["kv_cache_usage"], 0.5);
        assert_eq!(s.counters["requests"], 15.0);
        assert_eq!(s.counters["prompt_tokens"], 1200.0);
        assert_eq!(s.counters["process_cpu_seconds"], 3.5);
        let h = &s.histograms["ttft"];
        assert_eq!(h.bounds, vec![(0.01, 1.0), (0.1, 4.0), (f64::INFINITY, 15.0)]);
        assert_eq!((h.sum, h.count), (2.5, 15.0));
        // The older ITL name stands in while the newer one is absent.
        assert_eq!(s.histograms["itl"].bounds, vec![(f64::INFINITY, 99.0)]);
    }

    #[test]
    fn llama_cpp_adds_cached_prompt_tokens() {
        let text = "# TYPE llamacpp:prompt_tokens_total counter\nllamacpp:prompt_tokens_total 100\n\
            # TYPE llamacpp:prompt_tokens_cached_total counter\nllamacpp:prompt_tokens_cached_total 30\n\
            # TYPE llamacpp:tokens_predicted_total counter\nllamacpp:tokens_predicted_total 64\n\
            # TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\n";
        let e = parse(text);
        let s = snapshot(&e, detect(&e));
        assert_eq!(s.counters["prompt_tokens"], 130.0);
        assert_eq!(s.counters["prefix_cache_hits"], 30.0);
        assert_eq!(s.counters["prefix_cache_queries"], 130.0);
        assert_eq!(s.counters["generation_tokens"], 64.0);
        assert_eq!(s.gauges["running"], 2.0);
        assert!(!s.counters.contains_key("requests"));
    }

    #[test]
    fn sglang_and_tgi_take_canonical_names() {
        let text = "# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{tp_rank=\"0\"} 3\n\
            # TYPE sglang:token_usage gauge\nsglang:token_usage 0.28\n\
            # TYPE sglang:cache_hit_rate gauge\nsglang:cache_hit_rate 0.5\n\
            # TYPE sglang:prompt_tokens_total counter\nsglang:prompt_tokens_total 8.128902e+06\n\
            # TYPE sglang:cached_tokens_total counter\nsglang:cached_tokens_total{cache_source=\"device\"} 1000\n\
            # TYPE sglang:num_requests_total counter\nsglang:num_requests_total 12\n";
        let e = parse(text);
        assert_eq!(detect(&e), Some(Family::Sglang));
        let s = snapshot(&e, detect(&e));
        assert_eq!(
            (s.gauges["running"], s.gauges["kv_cache_usage"], s.gauges["prefix_cache_hit_rate"]),
            (3.0, 0.28, 0.5)
        );
        assert_eq!((s.counters["requests"], s.counters["prefix_cache_hits"]), (12.0, 1000.0));
        assert_eq!(s.counters["prompt_tokens"], 8_128_902.0);
        assert_eq!(s.counters["prefix_cache_queries"], 8_128_902.0);
        let text = "# TYPE tgi_request_count counter\ntgi_request_count 7\n\
            # TYPE tgi_queue_size gauge\ntgi_queue_size 2\n\
            # TYPE tgi_request_input_length histogram\ntgi_request_input_length_bucket{le=\"+Inf\"} 7\n\
            tgi_request_input_length_sum 700\ntgi_request_input_length_count 7\n\
            # TYPE tgi_request_generated_tokens histogram\ntgi_request_generated_tokens_sum 210\n\
            # TYPE tgi_request_duration histogram\ntgi_request_duration_bucket{le=\"1\"} 7\n\
            tgi_request_duration_bucket{le=\"+Inf\"} 7\ntgi_request_duration_sum 3.5\ntgi_request_duration_count 7\n";
        let e = parse(text);
        assert_eq!(detect(&e), Some(Family::Tgi));
        let s = snapshot(&e, detect(&e));
        assert_eq!((s.counters["requests"], s.gauges["waiting"]), (7.0, 2.0));
        assert_eq!((s.counters["prompt_tokens"], s.counters["generation_tokens"]), (700.0, 210.0));
        assert_eq!(s.histograms["e2e"].count, 7.0);
    }

    #[test]
    fn an_unknown_server_keeps_its_own_names() {
        let e = parse("# TYPE my_queue gauge\nmy_queue{a=\"1\"} 2\nmy_queue{a=\"2\"} 3\nhits_total 4\n");
        assert_eq!(detect(&e), None);
        let s = snapshot(&e, None);
        assert_eq!(s.gauges["my_queue"], 5.0);
        assert_eq!(s.counters["hits"], 4.0);
    }
}
