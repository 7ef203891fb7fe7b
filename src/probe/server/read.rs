//! The value of a `server.*` metric over stretches of the server's increases: the phases an
//! expectation covers (the evaluation), or the part of a load step judged so far (the
//! capacity search). One reading, so a bound means the same in both.

use super::{HistogramDelta, ServerPhase};
use crate::dsl::model::Comparison;

/// The gauges: sampled per scrape, read from their points, not from increases.
pub const GAUGES: &[&str] = &["running", "waiting", "kv_cache_usage"];

/// A counter's increase added up over the parts.
pub fn counter(parts: &[&ServerPhase], name: &str) -> Option<f64> {
    let found: Vec<f64> = parts.iter().filter_map(|p| p.counters.get(name).copied()).collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

/// A histogram's increases added up over the parts.
pub fn histogram(parts: &[&ServerPhase], name: &str) -> Option<HistogramDelta> {
    let mut out: Option<HistogramDelta> = None;
    for h in parts.iter().filter_map(|p| p.histograms.get(name)) {
        out.get_or_insert_with(HistogramDelta::default).add(h);
    }
    out.filter(|h| h.count > 0.0)
}

/// Prefix-cache hits / lookups over the parts, else the mean of the server's own gauge.
pub fn prefix_cache_hit_rate(parts: &[&ServerPhase]) -> Option<f64> {
    match (counter(parts, "prefix_cache_hits"), counter(parts, "prefix_cache_queries")) {
        (Some(h), Some(q)) if q > 0.0 => Some(h / q),
        _ => {
            let means: Vec<(f64, u64)> = (parts.iter())
                .filter_map(|p| p.gauges.get("prefix_cache_hit_rate"))
                .map(|s| (s.mean, s.samples))
                .filter(|(_, n)| *n > 0)
                .collect();
            let n: u64 = means.iter().map(|m| m.1).sum();
            (n > 0).then(|| means.iter().map(|(m, k)| m * *k as f64).sum::<f64>() / n as f64)
        }
    }
}

/// A counter (a count, or a rate over `secs`), the hit rate, or a histogram statistic
/// (interpolated percentile, mean, count). `None` for a gauge (see [`points_stat`]) or
/// where the server exposes nothing of it.
pub fn value(parts: &[&ServerPhase], metric: &str, agg: Option<&str>, secs: f64) -> Option<f64> {
    match metric {
        "requests" | "prompt_tokens" | "generation_tokens" | "preemptions" => {
            let n = counter(parts, metric)?;
            match agg {
                Some("rate") => (secs > 0.0).then(|| n / secs),
                _ => Some(n),
            }
        }
        "prefix_cache_hit_rate" => prefix_cache_hit_rate(parts),
        "ttft" | "e2e" | "itl" => {
            let h = histogram(parts, metric)?;
            match agg? {
                "mean" => h.mean(),
                "count" => Some(h.count),
                p => h.quantile(crate::dsl::metrics::percentile(p)?),
            }
        }
        _ => None,
    }
}

/// A statistic of sampled values (`min`, `max`/`peak`, `last`, `mean`, a percentile by rank).
pub fn points_stat(mut vals: Vec<f64>, agg: &str) -> Option<f64> {
    let last = *vals.last()?;
    vals.sort_by(f64::total_cmp);
    let q = |p: f64| vals[((p * vals.len() as f64).ceil() as usize).clamp(1, vals.len()) - 1];
    Some(match agg {
        "min" => vals[0],
        "max" | "peak" => vals[vals.len() - 1],
        "last" => last,
        "mean" => vals.iter().sum::<f64>() / vals.len() as f64,
        p => q(crate::dsl::metrics::percentile(p)?),
    })
}

/// The observations of a server histogram beyond an upper bound on a quantile
/// (`p95 < bound`), bracketed by the buckets: `(fewest, most)`, the counts above the
/// smallest bucket edge at or over the bound and above the largest edge at or under it.
/// Equal where the bound is an edge. `None` for other comparisons.
pub fn beyond_bounds(h: &HistogramDelta, op: Comparison, bound: f64) -> Option<(f64, f64)> {
    if !matches!(op, Comparison::Lt | Comparison::Le) {
        return None;
    }
    let cum_at = |pick: &dyn Fn(f64) -> bool, last: bool| {
        let mut edges = h.bounds.iter().filter(|b| pick(b.0));
        let edge = if last { edges.last() } else { edges.next() };
        edge.map(|b| b.1)
    };
    // Observations at or below the largest edge <= bound are surely within it; those above
    // the smallest edge >= bound surely beyond it (a `<` bound at an edge reads the edge's
    // observations as within: the buckets cannot tell).
    let within_surely = cum_at(&|le| le <= bound, true).unwrap_or(0.0);
    let within_at_most = cum_at(&|le| le >= bound, false).unwrap_or(h.count);
    Some(((h.count - within_at_most).max(0.0), (h.count - within_surely).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_a_bound_is_bracketed_by_the_buckets() {
        let h = HistogramDelta { bounds: vec![(0.01, 10.0), (0.05, 80.0), (0.1, 95.0)], sum: 4.0, count: 100.0 };
        // At an edge: exact.
        assert_eq!(beyond_bounds(&h, Comparison::Lt, 0.05), Some((20.0, 20.0)));
        // Between edges: at least those above 0.1, at most those above 0.05.
        assert_eq!(beyond_bounds(&h, Comparison::Lt, 0.07), Some((5.0, 20.0)));
        // Past the last finite edge: at least none, at most those above it.
        assert_eq!(beyond_bounds(&h, Comparison::Le, 0.2), Some((0.0, 5.0)));
        // Below the first edge: at least those above it, at most all.
        assert_eq!(beyond_bounds(&h, Comparison::Lt, 0.005), Some((90.0, 100.0)));
        assert_eq!(beyond_bounds(&h, Comparison::Gt, 0.05), None);
    }

    #[test]
    fn counters_read_as_counts_or_rates() {
        let mut p = ServerPhase::default();
        p.counters.insert("requests".into(), 30.0);
        let parts = [&p, &p];
        assert_eq!(value(&parts, "requests", None, 2.0), Some(60.0));
        assert_eq!(value(&parts, "requests", Some("rate"), 2.0), Some(30.0));
        assert_eq!(value(&parts, "ttft", Some("p95"), 2.0), None);
        assert_eq!(points_stat(vec![3.0, 1.0, 2.0], "max"), Some(3.0));
        assert_eq!(points_stat(vec![3.0, 1.0, 2.0], "last"), Some(2.0));
        assert_eq!(points_stat(vec![], "mean"), None);
    }
}
