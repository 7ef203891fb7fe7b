//! What the evidence rule reads from a record: the [`Basis`] of a metric's value (the
//! histogram behind a quantile or a mean, the counts behind a share or a rate) and the rule
//! applied to one bound. The evaluation judges a finished result with it; the engine's
//! capacity search judges each load step while it runs, so both use the same rule.

use super::record::{Counters, Hists};
use crate::dsl::metrics::percentile;
use crate::dsl::model::Comparison;
use crate::stats::evidence::{self, Evidence};

/// The data behind a measured value that the evidence rule can use.
#[derive(Debug, Clone)]
pub enum Basis {
    /// A quantile of a histogram whose recorded integers are base units times `scale`.
    Quantile { hist: hdrhistogram::Histogram<u64>, q: f64, scale: f64 },
    /// The mean of a histogram.
    Mean { hist: hdrhistogram::Histogram<u64>, scale: f64 },
    /// `events` of `trials` (an error share).
    Share { events: u64, trials: u64 },
    /// `events` over `secs` seconds (a rate).
    Count { events: u64, secs: f64 },
}

/// What a confidence statement about `metric.agg` over a record can rest on; `None` for a
/// statistic the rule does not read (a max, a count, a derived value).
pub fn basis(metric: &str, agg: Option<&str>, h: &Hists, c: &Counters, secs: f64) -> Option<Basis> {
    if let Some((hist, scale)) = h.named(metric) {
        let a = agg?;
        return match percentile(a) {
            Some(q) => Some(Basis::Quantile { hist: hist.clone(), q, scale }),
            None if a == "mean" => Some(Basis::Mean { hist: hist.clone(), scale }),
            None => None,
        };
    }
    match metric {
        "error_rate" => Some(Basis::Share { events: c.errors, trials: c.requests }),
        "throughput" => Some(Basis::Count { events: c.requests - c.errors, secs }),
        "goodput" => Some(Basis::Count { events: c.good, secs }),
        "requests" | "errors" | "dropped" | "unsent" if agg == Some("rate") => {
            let events = match metric {
                "requests" => c.requests,
                "errors" => c.errors,
                "unsent" => c.unsent,
                _ => c.dropped,
            };
            Some(Basis::Count { events, secs })
        }
        _ => None,
    }
}

/// Samples on the wrong side of `op b` (b in recorded units; bucket values at 3
/// significant digits).
fn beyond(hist: &hdrhistogram::Histogram<u64>, op: Comparison, b: f64) -> u64 {
    let n = hist.len();
    match op {
        Comparison::Lt => n - crate::stats::count_below(hist, b),
        Comparison::Le => crate::stats::count_above(hist, b),
        Comparison::Gt => n - crate::stats::count_above(hist, b),
        _ => crate::stats::count_below(hist, b),
    }
}

/// The binomial counts a decision rests on, as (trials, events): a quantile bound's samples
/// and those beyond it, or an error share's requests and errors. `None` for the other rules.
pub fn counts(basis: &Basis, op: Comparison, bound: f64) -> Option<(u64, u64)> {
    match basis {
        Basis::Quantile { hist, scale, .. } => Some((hist.len(), beyond(hist, op, bound * scale))),
        Basis::Share { events, trials } => Some((*trials, *events)),
        _ => None,
    }
}

/// How much more the counts vary between batches (consecutive stretches of time) than
/// independent trials would: the between-batch variance of the events over the binomial's.
/// Requests that queue together are slow together, so their exceedances come in clumps; the
/// rule then reads n / deff trials. At least 1; 1 when there is nothing to compare.
pub fn design_effect(batches: &[(u64, u64)]) -> f64 {
    let used: Vec<(f64, f64)> = batches.iter().filter(|b| b.0 > 0).map(|&(n, k)| (n as f64, k as f64)).collect();
    let (n, k) = used.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let b = used.len() as f64;
    if used.len() < 2 || k <= 0.0 || k >= n {
        return 1.0;
    }
    let p = k / n;
    let between = used.iter().map(|(ni, ki)| (ki - p * ni).powi(2)).sum::<f64>() / (b - 1.0);
    (between / (p * (1.0 - p) * n / b)).max(1.0)
}

/// The rule applied to `value op bound` (base units) at confidence `c`; `None` where the
/// data cannot carry a statement (no trials, no time).
pub fn judge(basis: &Basis, op: Comparison, bound: f64, c: f64) -> Option<Evidence> {
    judge_clustered(basis, op, bound, c, 1.0)
}

/// [`judge`] with binomial counts read as `deff` times less informative (see
/// [`design_effect`]); the evidence reports the counts as measured.
pub fn judge_clustered(basis: &Basis, op: Comparison, bound: f64, c: f64, deff: f64) -> Option<Evidence> {
    use evidence::*;
    let thin = |x: u64| (x as f64 / deff.max(1.0)).round() as u64;
    Some(match basis {
        Basis::Quantile { hist, q, scale } => {
            let n = hist.len();
            let beyond = beyond(hist, op, bound * scale);
            let decision = quantile_decision(&QuantileSamples { n: thin(n), beyond: thin(beyond) }, *q, op, c);
            let at = |r: Option<u64>| r.and_then(|r| crate::stats::order_statistic(hist, r)).map(|v| v / scale);
            Evidence {
                method: "binomial order statistic",
                confidence: c,
                n,
                beyond: Some(beyond),
                low: at(lower_rank(n, *q, c)),
                high: at(upper_rank(n, *q, c)),
                needed_for_pass: Some(needed_for_pass(*q, op, c)),
                decision,
            }
        }
        Basis::Mean { hist, scale } => {
            let (mean, sd, n) = (hist.mean() / scale, hist.stdev() / scale, hist.len());
            let (decision, lo, hi) = mean_decision(mean, sd, n, bound, op, c);
            Evidence {
                method: "student t mean",
                confidence: c,
                n,
                beyond: None,
                low: lo.is_finite().then_some(lo),
                high: hi.is_finite().then_some(hi),
                needed_for_pass: None,
                decision,
            }
        }
        Basis::Share { events, trials } => {
            if *trials == 0 {
                return None;
            }
            Evidence {
                method: "binomial share",
                confidence: c,
                n: *trials,
                beyond: Some(*events),
                low: None,
                high: None,
                needed_for_pass: None,
                decision: share_decision(thin(*events), thin(*trials).max(1), bound, op, c),
            }
        }
        Basis::Count { events, secs } => {
            if *secs <= 0.0 {
                return None;
            }
            Evidence {
                method: "poisson count",
                confidence: c,
                n: *events,
                beyond: Some(*events),
                low: None,
                high: None,
                needed_for_pass: None,
                decision: rate_decision(*events, *secs, bound, op, c),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_batches_have_no_design_effect_and_clumped_ones_do() {
        // Ten batches of 100 with the events spread as a binomial would spread them.
        let even: Vec<(u64, u64)> = [4, 6, 5, 5, 3, 7, 5, 6, 4, 5].iter().map(|&k| (100, k)).collect();
        assert!(design_effect(&even) < 1.5, "{}", design_effect(&even));
        // The same 50 events in two clumps.
        let clumped: Vec<(u64, u64)> = [0, 0, 25, 0, 0, 0, 25, 0, 0, 0].iter().map(|&k| (100, k)).collect();
        let d = design_effect(&clumped);
        assert!(d > 10.0, "{d}");
        assert_eq!(design_effect(&[(100, 0), (100, 0)]), 1.0, "no events: nothing to compare");
        assert_eq!(design_effect(&[(100, 5)]), 1.0, "one batch");
    }

    #[test]
    fn clumped_counts_need_more_evidence() {
        let share = Basis::Share { events: 30, trials: 1000 };
        // 3 % errors over 1,000 requests misses a 1 % bound as independent trials ...
        let free = judge(&share, Comparison::Lt, 0.01, 0.99).unwrap();
        assert_eq!(free.decision, evidence::Decision::Missed);
        // ... but not when they came in clumps worth 100 requests.
        let clumped = judge_clustered(&share, Comparison::Lt, 0.01, 0.99, 100.0).unwrap();
        assert_eq!(clumped.decision, evidence::Decision::Undecided);
        assert_eq!((clumped.n, clumped.beyond), (1000, Some(30)), "the counts are reported as measured");
    }
}
