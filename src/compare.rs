//! Regression detection against a baseline result: per workload and metric, the relative
//! change with a bootstrap confidence interval computed from the stored histograms, and a
//! verdict that needs two gates, as criterion does: the change must be statistically
//! significant (its 95 % interval excludes zero) and larger than the tolerance.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::engine::random::Rng;
use crate::stats;

/// Resamples per bootstrap.
pub const RESAMPLES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    /// Significant, but within the tolerance.
    Unchanged,
    /// Not significant: the interval includes no change.
    WithinNoise,
    /// One side has no data.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    pub workload: String,
    /// `latency.p95`, `throughput`, ...
    pub metric: String,
    pub unit: &'static str,
    pub base: f64,
    pub new: f64,
    /// (new - base) / base.
    pub change: f64,
    /// 95 % interval of the relative change.
    pub ci_low: f64,
    pub ci_high: f64,
    pub tolerance: f64,
    /// Whether a higher value is better (throughput) or worse (latency).
    pub higher_is_better: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub method: &'static str,
    pub changes: Vec<MetricChange>,
    pub regressed: bool,
}

/// Draws counts of the same total from the buckets' distribution (a multinomial, by
/// conditional binomials).
fn resample(buckets: &[(u64, u64)], rng: &mut Rng) -> Vec<(u64, u64)> {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    let mut left = total;
    let mut mass = total as f64;
    let mut out = Vec::with_capacity(buckets.len());
    for &(v, c) in buckets {
        if left == 0 {
            break;
        }
        let p = (c as f64 / mass).min(1.0);
        let k = binomial(left, p, rng);
        out.push((v, k));
        left -= k;
        mass -= c as f64;
    }
    out
}

/// Binomial(n, p): exact by inversion for small n·p, normal approximation otherwise.
fn binomial(n: u64, p: f64, rng: &mut Rng) -> u64 {
    if p >= 1.0 {
        return n;
    }
    let mean = n as f64 * p;
    if mean < 30.0 || n as f64 * (1.0 - p) < 30.0 {
        // Count successes with geometric skips: O(successes).
        if p <= 0.0 {
            return 0;
        }
        let (mut k, mut i) = (0u64, 0u64);
        let lq = (1.0 - p).ln();
        loop {
            i += (rng.open_unit().ln() / lq).floor() as u64 + 1;
            if i > n {
                return k;
            }
            k += 1;
        }
    }
    let x = mean + (mean * (1.0 - p)).sqrt() * rng.normal();
    x.round().clamp(0.0, n as f64) as u64
}

/// The `q` quantile of (value, count) pairs sorted by value.
fn quantile(counts: &[(u64, u64)], q: f64) -> f64 {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (v, c) in counts {
        seen += c;
        if seen >= rank {
            return *v as f64;
        }
    }
    counts.last().map_or(0.0, |c| c.0 as f64)
}

fn mean(counts: &[(u64, u64)]) -> f64 {
    let total: u64 = counts.iter().map(|c| c.1).sum();
    counts.iter().map(|(v, c)| *v as f64 * *c as f64).sum::<f64>() / total.max(1) as f64
}

/// A statistic of (value, count) buckets: a quantile or the mean.
pub type Statistic<'a> = &'a dyn Fn(&[(u64, u64)]) -> f64;

/// The 95 % interval of the relative change of a statistic, by bootstrap over both histograms.
pub fn bootstrap(
    base: &Histogram<u64>,
    new: &Histogram<u64>,
    stat: Statistic<'_>,
    seed: u64,
    resamples: usize,
) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let buckets = |h: &Histogram<u64>| stats::buckets(h).collect::<Vec<_>>();
    let (bb, nb) = (buckets(base), buckets(new));
    let mut changes: Vec<f64> = (0..resamples.max(40))
        .map(|_| {
            let (b, n) = (stat(&resample(&bb, &mut rng)), stat(&resample(&nb, &mut rng)));
            if b > 0.0 {
                n / b - 1.0
            } else {
                0.0
            }
        })
        .collect();
    changes.sort_by(f64::total_cmp);
    let k = changes.len();
    (changes[(k as f64 * 0.025) as usize], changes[((k as f64 * 0.975) as usize).min(k - 1)])
}

fn verdict(change: f64, lo: f64, hi: f64, tolerance: f64, higher_is_better: bool) -> Verdict {
    let significant = lo > 0.0 || hi < 0.0;
    if !significant {
        return Verdict::WithinNoise;
    }
    if change.abs() <= tolerance {
        return Verdict::Unchanged;
    }
    if (change > 0.0) == higher_is_better {
        Verdict::Improved
    } else {
        Verdict::Regressed
    }
}

/// Tolerance for `workload.metric`: a per-metric override, else the default.
fn tolerance_for(overrides: &BTreeMap<String, f64>, default: f64, workload: &str, metric: &str) -> f64 {
    overrides.get(&format!("{workload}.{metric}")).copied().unwrap_or(default)
}

/// Compares every workload that both results measured.
pub fn compare(
    base: &Value,
    new: &Value,
    baseline_name: &str,
    default_tolerance: f64,
    overrides: &BTreeMap<String, f64>,
) -> Comparison {
    let mut changes = vec![];
    let empty = serde_json::Map::new();
    let workloads = new["benchmarks"].as_object().unwrap_or(&empty);
    for (name, nw) in workloads {
        let Some(bw) = base.pointer(&format!("/benchmarks/{name}")) else {
            continue;
        };
        for metric in ["latency", "ttft", "itl", "tpot"] {
            let (Some(bh), Some(nh)) = (crate::result::histogram(bw, metric), crate::result::histogram(nw, metric))
            else {
                continue;
            };
            for (agg, q) in [("p50", Some(0.5)), ("p95", Some(0.95)), ("p99", Some(0.99)), ("mean", None)] {
                let stat = move |c: &[(u64, u64)]| q.map_or_else(|| mean(c), |q| quantile(c, q));
                let point = |h: &Histogram<u64>| q.map_or_else(|| h.mean(), |q| h.value_at_quantile(q) as f64);
                let (b, n) = (point(&bh), point(&nh));
                let (lo, hi) = bootstrap(&bh, &nh, &stat, 0xC0FFEE ^ changes.len() as u64, RESAMPLES);
                let key = format!("{metric}.{agg}");
                let tolerance = tolerance_for(overrides, default_tolerance, name, &key);
                let change = if b > 0.0 { n / b - 1.0 } else { 0.0 };
                changes.push(MetricChange {
                    workload: name.clone(),
                    unit: "ms",
                    base: b / 1e6,
                    new: n / 1e6,
                    change,
                    ci_low: lo,
                    ci_high: hi,
                    tolerance,
                    higher_is_better: false,
                    verdict: verdict(change, lo, hi, tolerance, false),
                    metric: key,
                });
            }
        }
        for (metric, count_key, higher) in [("throughput", "requests", true), ("tok_s", "output_tokens", true)] {
            let (b, n) = (bw[metric].as_f64().unwrap_or(0.0), nw[metric].as_f64().unwrap_or(0.0));
            let (cb, cn) = (bw[count_key].as_f64().unwrap_or(0.0), nw[count_key].as_f64().unwrap_or(0.0));
            if b <= 0.0 || n <= 0.0 || cb < 1.0 || cn < 1.0 {
                continue;
            }
            // Counts are Poisson: log of the rate ratio has variance 1/cb + 1/cn.
            let change = n / b - 1.0;
            let half = 1.96 * (1.0 / cb + 1.0 / cn).sqrt();
            let (lo, hi) = ((n / b).ln() - half, (n / b).ln() + half);
            let (lo, hi) = (lo.exp() - 1.0, hi.exp() - 1.0);
            let tolerance = tolerance_for(overrides, default_tolerance, name, metric);
            changes.push(MetricChange {
                workload: name.clone(),
                metric: metric.into(),
                unit: "/s",
                base: b,
                new: n,
                change,
                ci_low: lo,
                ci_high: hi,
                tolerance,
                higher_is_better: higher,
                verdict: verdict(change, lo, hi, tolerance, higher),
            });
        }
    }
    let regressed = changes.iter().any(|c| c.verdict == Verdict::Regressed);
    Comparison { baseline: baseline_name.to_string(), method: "bootstrap (1,000 resamples of the stored histograms) 95% interval; regressed = significant and beyond the tolerance", changes, regressed }
}

/// The comparison as an aligned table.
pub fn table(c: &Comparison) -> String {
    let mut rows =
        vec![["workload", "metric", "baseline", "new", "change", "95% interval", "verdict"].map(String::from).to_vec()];
    for m in &c.changes {
        let pct = |x: f64| format!("{:+.1}%", x * 100.0);
        let verdict = match m.verdict {
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Unchanged => "unchanged",
            Verdict::WithinNoise => "within noise",
            Verdict::Missing => "missing",
        };
        rows.push(vec![
            m.workload.clone(),
            m.metric.clone(),
            format!("{:.3}{}", m.base, m.unit),
            format!("{:.3}{}", m.new, m.unit),
            pct(m.change),
            format!("{} .. {}", pct(m.ci_low), pct(m.ci_high)),
            verdict.to_string(),
        ]);
    }
    let w: Vec<usize> = (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!("compared with {}\n", c.baseline);
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&w).map(|(c, w)| format!("{c:<w$}")).collect();
        out += &format!("  {}\n", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lognormal(seed: u64, n: usize, median_ns: f64) -> Histogram<u64> {
        let mut rng = Rng::new(seed);
        let mut h = stats::histogram();
        for _ in 0..n {
            h.record((median_ns * (0.3 * rng.normal()).exp()) as u64).unwrap();
        }
        h
    }

    #[test]
    fn binomial_mean() {
        let mut rng = Rng::new(5);
        for (n, p) in [(100u64, 0.05), (100_000, 0.3), (1000, 0.999)] {
            let m = (0..2000).map(|_| binomial(n, p, &mut rng) as f64).sum::<f64>() / 2000.0;
            assert!((m - n as f64 * p).abs() < 0.02 * (n as f64 * p) + 0.5, "n {n} p {p}: {m}");
        }
    }

    #[test]
    fn same_distribution_is_not_a_regression_and_a_shift_is() {
        let base = lognormal(1, 5000, 10e6);
        let same = lognormal(2, 5000, 10e6);
        let slower = lognormal(3, 5000, 12e6);
        let p95 = |c: &[(u64, u64)]| quantile(c, 0.95);
        let (lo, hi) = bootstrap(&base, &same, &p95, 9, 400);
        assert!(lo < 0.0 && hi > 0.0, "no change must be within noise: {lo} {hi}");
        let (lo, hi) = bootstrap(&base, &slower, &p95, 9, 400);
        assert!(lo > 0.1 && hi < 0.3, "a 20% shift is detected: {lo} {hi}");
        assert_eq!(verdict(0.2, lo, hi, 0.05, false), Verdict::Regressed);
        assert_eq!(verdict(0.2, lo, hi, 0.25, false), Verdict::Unchanged);
        assert_eq!(verdict(-0.2, -0.3, -0.1, 0.05, false), Verdict::Improved);
    }

    /// Over repeated comparisons of samples from one distribution, the share flagged as
    /// regressed (significant and beyond a 0 % tolerance, one direction) stays near the
    /// interval's 2.5 % tail.
    #[test]
    fn false_positive_rate() {
        let trials = 40;
        let mut flagged = 0;
        for t in 0..trials {
            let (a, b) = (lognormal(100 + t, 2000, 10e6), lognormal(1000 + t, 2000, 10e6));
            let (lo, hi) = bootstrap(&a, &b, &|c: &[(u64, u64)]| quantile(c, 0.5), t, 200);
            if verdict((lo + hi) / 2.0, lo, hi, 0.0, false) == Verdict::Regressed {
                flagged += 1;
            }
        }
        // Expected about 1 (2.5 % of 40); 4 or more has probability under 2 %.
        assert!(flagged <= 4, "{flagged} of {trials} identical pairs flagged as regressions");
    }
}
