//! Reading a metric selector's value from what was recorded, in base units (seconds, per
//! second, fraction, count): used by stop conditions and the breaking-point search.

use super::record::{Counters, Hists};
use crate::dsl::metrics::percentile;
use crate::stats;

/// The value of `metric.agg` over `hists`/`counters` recorded in `secs` seconds; `None` when
/// there is no data for it (or benchctl records no such metric for this workload yet).
pub fn value(metric: &str, agg: Option<&str>, hists: &Hists, c: &Counters, secs: f64, k: f64) -> Option<f64> {
    let per_sec = |n: u64| (secs > 0.0).then(|| n as f64 / secs);
    if let Some((h, s)) = hists.named(metric) {
        if h.is_empty() {
            return None;
        }
        let agg = agg.unwrap_or("mean");
        return Some(match agg {
            "mean" => h.mean() / s,
            "min" => h.min() as f64 / s,
            "max" => h.max() as f64 / s,
            "stddev" => h.stdev() / s,
            "count" => h.len() as f64,
            "spike_rate" => stats::spike_rate(h, k).share,
            "robust_spike_rate" => stats::robust_spike_rate(h, k).share,
            p => h.value_at_quantile(percentile(p)?) as f64 / s,
        });
    }
    let counter = |n: u64| match agg {
        Some("rate") => per_sec(n),
        _ => Some(n as f64),
    };
    match metric {
        "requests" => counter(c.requests),
        "errors" => counter(c.errors),
        "dropped" => counter(c.dropped),
        "unsent" => counter(c.unsent),
        "output_tokens" => counter(c.output_tokens),
        "input_tokens" => counter(c.input_tokens),
        "error_rate" => (c.requests > 0).then(|| c.errors as f64 / c.requests as f64),
        "throughput" => per_sec(c.requests - c.errors),
        "tok_s" => per_sec(c.output_tokens),
        "prefill_tok_s" => (c.prefill_ns > 0).then(|| c.input_tokens as f64 / (c.prefill_ns as f64 / 1e9)),
        "goodput" => per_sec(c.good),
        "qps" => per_sec(c.requests - c.errors),
        declared => c.declared.get(declared).and_then(|&n| counter(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::{Recorder, Sample};
    use std::time::{Duration, Instant};

    #[test]
    fn values_in_base_units() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, Duration::from_secs(1), 1);
        for i in 0..100u64 {
            let finished = t0 + Duration::from_millis(i + 1);
            let error = (i % 10 == 0).then_some("x");
            r.record(
                0,
                &Sample {
                    intended: t0,
                    started: t0,
                    finished,
                    outputs: &[],
                    output_tokens: None,
                    input_tokens: 0,
                    prefill: None,
                    measured: &[],
                    error,
                    open_loop: false,
                },
            );
        }
        let rec = r.finish(t0 + Duration::from_secs(2));
        let v = |m: &str, a: Option<&str>| value(m, a, &rec.hists, &rec.counters, 2.0, 3.0);
        assert_eq!(v("requests", None), Some(100.0));
        assert_eq!(v("requests", Some("rate")), Some(50.0));
        assert_eq!(v("error_rate", None), Some(0.1));
        assert_eq!(v("throughput", None), Some(45.0));
        let p95 = v("latency", Some("p95")).unwrap();
        assert!((p95 - 0.095).abs() < 0.002, "{p95}");
        assert_eq!(v("ttft", Some("p95")), None);
        assert_eq!(v("goodput", None), Some(45.0));
    }
}
