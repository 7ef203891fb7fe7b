//! Regression detection against a baseline result. Two methods, chosen per metric by how
//! many runs each side holds (`runs` in the result document):
//!
//! - between runs (either side has two or more runs): Welch's t-test on the logarithm of the
//!   per-run statistic, so the interval describes run-to-run variation on this machine. With
//!   one run on one side, that side borrows the other side's variance (a two-sample t-test
//!   with the other side's degrees of freedom);
//! - within one run (both sides have one run): a bootstrap of the stored histograms, plus a
//!   noise floor, because the within-run interval does not describe run-to-run variation: a
//!   change is only a regression when it is beyond max(tolerance, noise floor).
//!
//! Either way a regression needs two gates, as criterion's does: significance (the 95 %
//! interval excludes no change) and a change beyond the tolerance. Runs whose host findings
//! differ are not compared at all: the verdict is "not comparable", with the reason.

use std::collections::BTreeMap;
use std::rc::Rc;

use hdrhistogram::Histogram;

use crate::result::{ResultDoc, WorkloadDoc};

use crate::random::Rng;
use crate::stats;

/// Resamples per bootstrap.
pub const RESAMPLES: usize = 1000;

pub use crate::result::comparison::{Comparison, MetricChange, Verdict};

/// Noise floor of a single-run comparison, by statistic: the within-run interval misses
/// run-to-run variation, which on a shared machine grows toward the tail. Chosen from
/// A/A runs on the 2-core development machine (see docs/evaluation.md).
pub fn noise_floor(metric: &str) -> f64 {
    match metric.rsplit('.').next() {
        Some("p99") => 0.30,
        Some("p95") => 0.20,
        _ => 0.10,
    }
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

/// The verdict of one change: significance, then the practical size against the tolerance,
/// then (one run each) against the noise floor. A change beyond the tolerance but within the
/// floor is not "unchanged": it is below what one run on each side can decide.
fn verdict(change: f64, lo: f64, hi: f64, tolerance: f64, floor: f64, higher_is_better: bool) -> Verdict {
    let significant = lo > 0.0 || hi < 0.0;
    if !significant {
        return Verdict::WithinNoise;
    }
    if change.abs() <= tolerance {
        return Verdict::Unchanged;
    }
    if change.abs() <= floor {
        return Verdict::BelowNoiseFloor;
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

/// The per-run values of `workload`'s `stat` in a result's `runs`.
fn run_values(doc: &ResultDoc, workload: &str, stat: &str) -> Vec<f64> {
    doc.runs
        .iter()
        .filter_map(|r| r.workloads.get(workload)?.get(stat).copied())
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect()
}

/// Mean and sample variance (NaN for one value).
pub(crate) fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = if x.len() > 1 { x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0) } else { f64::NAN };
    (m, v)
}

/// The 95 % interval of the relative change new/base - 1 from per-run values: Welch's t on
/// the logarithms (one side with a single run borrows the other's variance).
pub fn between_runs(base: &[f64], new: &[f64]) -> Option<(f64, f64, f64)> {
    if base.is_empty() || new.is_empty() || base.len() + new.len() < 3 {
        return None;
    }
    let (lb, ln): (Vec<f64>, Vec<f64>) = (base.iter().map(|x| x.ln()).collect(), new.iter().map(|x| x.ln()).collect());
    let ((mb, mut vb), (mn, mut vn)) = (mean_var(&lb), mean_var(&ln));
    let (nb, nn) = (lb.len() as f64, ln.len() as f64);
    let df = if vb.is_nan() {
        vb = vn;
        nn - 1.0
    } else if vn.is_nan() {
        vn = vb;
        nb - 1.0
    } else {
        let (a, b) = (vb / nb, vn / nn);
        if a + b > 0.0 {
            (a + b).powi(2) / (a * a / (nb - 1.0) + b * b / (nn - 1.0))
        } else {
            nb + nn - 2.0
        }
    };
    let se = (vb / nb + vn / nn).sqrt();
    let t = crate::stats::evidence::student_t_quantile(0.975, df.max(1.0));
    let d = mn - mb;
    Some((d.exp() - 1.0, (d - t * se).exp() - 1.0, (d + t * se).exp() - 1.0))
}

/// How a figure's within-run interval is made, when it is asked for (a bootstrap is the
/// costly part of a comparison, and one run each is the only case that needs it).
enum Within {
    /// The stored histograms of both sides, resampled for a quantile (or the mean, `None`).
    Bootstrap { base: Rc<Histogram<u64>>, new: Rc<Histogram<u64>>, q: Option<f64>, seed: u64 },
    /// Already known (rates: a Poisson interval).
    Known(f64, f64),
}

/// One figure of a workload on both sides: name, unit, values, how to make a within-run
/// interval of the relative change, and whether higher is better.
struct Figure {
    metric: String,
    unit: &'static str,
    base: f64,
    new: f64,
    within: Within,
    higher_is_better: bool,
}

impl Figure {
    fn within_interval(&self) -> (f64, f64) {
        match &self.within {
            Within::Known(lo, hi) => (*lo, *hi),
            Within::Bootstrap { base, new, q, seed } => {
                let q = *q;
                let stat = move |c: &[(u64, u64)]| q.map_or_else(|| mean(c), |q| quantile(c, q));
                bootstrap(base, new, &stat, *seed, RESAMPLES)
            }
        }
    }
}

/// The latency figures (p50, p95, p99, mean of each time metric), in seconds.
fn time_figures(bw: &WorkloadDoc, nw: &WorkloadDoc) -> Vec<Figure> {
    let mut out = vec![];
    for metric in ["latency", "ttft", "itl", "tpot"] {
        let (Some(bh), Some(nh)) = (bw.histogram(metric), nw.histogram(metric)) else {
            continue;
        };
        let (bh, nh) = (Rc::new(bh), Rc::new(nh));
        let aggs = [("p50", Some(0.5)), ("p95", Some(0.95)), ("p99", Some(0.99)), ("mean", None)];
        for (i, (agg, q)) in aggs.into_iter().enumerate() {
            let point = |h: &Histogram<u64>| q.map_or_else(|| h.mean(), |q| h.value_at_quantile(q) as f64);
            let seed = 0xC0FFEE ^ (i as u64) ^ metric.len() as u64;
            out.push(Figure {
                metric: format!("{metric}.{agg}"),
                unit: "s",
                base: point(&bh) / 1e9,
                new: point(&nh) / 1e9,
                within: Within::Bootstrap { base: bh.clone(), new: nh.clone(), q, seed },
                higher_is_better: false,
            });
        }
    }
    out
}

/// Throughput and tok/s, with the Poisson interval of the rate ratio.
fn rate_figures(bw: &WorkloadDoc, nw: &WorkloadDoc) -> Vec<Figure> {
    let throughput = |w: &WorkloadDoc| (w.throughput, w.requests as f64);
    let tok_s = |w: &WorkloadDoc| (w.tok_s.unwrap_or(0.0), w.output_tokens.unwrap_or(0) as f64);
    type Rate = fn(&WorkloadDoc) -> (f64, f64);
    let mut out = vec![];
    for (metric, figure) in [("throughput", throughput as Rate), ("tok_s", tok_s as Rate)] {
        let ((b, cb), (n, cn)) = (figure(bw), figure(nw));
        if b <= 0.0 || n <= 0.0 || cb < 1.0 || cn < 1.0 {
            continue;
        }
        // Counts are Poisson: log of the rate ratio has variance 1/cb + 1/cn.
        let half = 1.96 * (1.0 / cb + 1.0 / cn).sqrt();
        let (lo, hi) = ((n / b).ln() - half, (n / b).ln() + half);
        out.push(Figure {
            metric: metric.into(),
            unit: "/s",
            base: b,
            new: n,
            within: Within::Known(lo.exp() - 1.0, hi.exp() - 1.0),
            higher_is_better: true,
        });
    }
    out
}

/// Judges one figure of `workload`: between runs when either side has repetitions, else
/// within the run with the noise floor. A latency figure without per-run values on a
/// repeated side is not judged (its bootstrap would not describe run-to-run drift); a rate
/// keeps its Poisson interval.
fn judge(f: Figure, base: &ResultDoc, new: &ResultDoc, workload: &str, tolerance: f64) -> Option<MetricChange> {
    let runs_of = |d: &ResultDoc| d.runs.len().max(1);
    let (base_runs, new_runs) = (runs_of(base), runs_of(new));
    let repeated = base_runs > 1 || new_runs > 1;
    let between = repeated
        .then(|| between_runs(&run_values(base, workload, &f.metric), &run_values(new, workload, &f.metric)))
        .flatten();
    let point = if f.base > 0.0 { f.new / f.base - 1.0 } else { 0.0 };
    let (change, lo, hi, floor, method) = match between {
        Some((c, lo, hi)) => (c, lo, hi, 0.0, format!("between runs (Welch, {base_runs} vs {new_runs} runs)")),
        None if repeated && matches!(f.within, Within::Bootstrap { .. }) => return None,
        None => {
            let (lo, hi) = f.within_interval();
            (point, lo, hi, noise_floor(&f.metric), "within run (bootstrap + noise floor)".to_string())
        }
    };
    Some(MetricChange {
        workload: workload.to_string(),
        unit: f.unit.to_string(),
        base: f.base,
        new: f.new,
        change,
        ci_low: lo,
        ci_high: hi,
        tolerance,
        noise_floor: floor,
        higher_is_better: f.higher_is_better,
        verdict: verdict(change, lo, hi, tolerance, floor, f.higher_is_better),
        method,
        metric: f.metric,
    })
}

/// One metric of one workload (`latency.p95`, `throughput`, ...), judged as `compare` judges
/// it; `None` when either side lacks it. Only this figure's interval is computed.
pub fn change(base: &ResultDoc, new: &ResultDoc, workload: &str, metric: &str, tolerance: f64) -> Option<MetricChange> {
    let (bw, nw) = (base.benchmarks.get(workload)?, new.benchmarks.get(workload)?);
    let figures = if metric.contains('.') { time_figures(bw, nw) } else { rate_figures(bw, nw) };
    let f = figures.into_iter().find(|f| f.metric == metric)?;
    judge(f, base, new, workload, tolerance)
}

/// Why two results cannot be compared, if they cannot: another scenario's baseline, no
/// metric measured on both sides (a gate never passes by comparing nothing), or host
/// findings that differ (a change may be the host's).
fn not_comparable(base: &ResultDoc, new: &ResultDoc, changes: &[MetricChange]) -> Option<String> {
    let other_scenario = (base.scenario.name != new.scenario.name).then(|| {
        format!("the baseline is a result of scenario `{}` and this one of `{}`", base.scenario.name, new.scenario.name)
    });
    let nothing = changes.is_empty().then(|| "nothing to compare: no workload metric was measured in both".to_string());
    let (sb, sn) = (crate::evaluate::host::signature(base), crate::evaluate::host::signature(new));
    let host = (sb != sn).then(|| {
        let say = |s: &[(String, &str)]| {
            if s.is_empty() {
                "none".to_string()
            } else {
                s.iter().map(|(p, c)| format!("{c} in `{p}`")).collect::<Vec<_>>().join(", ")
            }
        };
        format!("the runs' host findings differ (baseline: {}; this run: {})", say(&sb), say(&sn))
    });
    other_scenario.or(nothing).or(host)
}

/// Compares every workload that both results measured.
pub fn compare(
    base: &ResultDoc,
    new: &ResultDoc,
    baseline_name: &str,
    default_tolerance: f64,
    overrides: &BTreeMap<String, f64>,
) -> Comparison {
    let mut changes = vec![];
    let runs_of = |d: &ResultDoc| d.runs.len().max(1);
    let (base_runs, new_runs) = (runs_of(base), runs_of(new));
    for (name, nw) in &new.benchmarks {
        let Some(bw) = base.benchmarks.get(name) else {
            continue;
        };
        for f in time_figures(bw, nw).into_iter().chain(rate_figures(bw, nw)) {
            let tolerance = tolerance_for(overrides, default_tolerance, name, &f.metric);
            changes.extend(judge(f, base, new, name, tolerance));
        }
    }
    let not_comparable = not_comparable(base, new, &changes);
    if not_comparable.is_some() {
        for c in changes.iter_mut().filter(|c| c.verdict == Verdict::Regressed || c.verdict == Verdict::Improved) {
            c.verdict = Verdict::NotComparable;
        }
    }
    Comparison {
        baseline: baseline_name.to_string(),
        method: "between runs: Welch's t on log per-run statistics, 95% interval; one run each: bootstrap (1,000 resamples of the stored histograms) 95% interval and a noise floor; regressed = significant and beyond max(tolerance, noise floor)".to_string(),
        baseline_runs: base_runs,
        runs: new_runs,
        regressed: changes.iter().any(|c| c.verdict == Verdict::Regressed),
        changes,
        not_comparable,
    }
}

/// A compared value for people: times in milliseconds, rates per second.
fn value(x: f64, unit: &str) -> String {
    if unit == "s" {
        format!("{:.3}ms", x * 1e3)
    } else {
        format!("{x:.3}{unit}")
    }
}

/// The comparison as an aligned table.
pub fn table(c: &Comparison) -> String {
    let mut rows =
        vec![["workload", "metric", "baseline", "new", "change", "95% interval", "verdict"].map(String::from).to_vec()];
    for m in &c.changes {
        let pct = |x: f64| format!("{:+.1}%", x * 100.0);
        let verdict = m.verdict.words();
        rows.push(vec![
            m.workload.clone(),
            m.metric.clone(),
            value(m.base, &m.unit),
            value(m.new, &m.unit),
            pct(m.change),
            format!("{} .. {}", pct(m.ci_low), pct(m.ci_high)),
            verdict.to_string(),
        ]);
    }
    let w: Vec<usize> = (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out =
        format!("compared with {} ({} baseline run(s), {} run(s) here)\n", c.baseline, c.baseline_runs, c.runs);
    if let Some(why) = &c.not_comparable {
        out += &format!("  not comparable: {why}\n");
    }
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
        assert_eq!(verdict(0.2, lo, hi, 0.05, 0.0, false), Verdict::Regressed);
        assert_eq!(verdict(0.2, lo, hi, 0.25, 0.0, false), Verdict::Unchanged);
        assert_eq!(verdict(-0.2, -0.3, -0.1, 0.05, 0.0, false), Verdict::Improved);
        // The held-out case: p99 +23.9 % with interval [+6.8 %, +37.0 %], one run each (floor
        // 30 %): not "unchanged", but below what one run can decide.
        assert_eq!(verdict(0.239, 0.068, 0.370, 0.05, 0.30, false), Verdict::BelowNoiseFloor);
        assert_eq!(verdict(0.239, 0.068, 0.370, 0.30, 0.30, false), Verdict::Unchanged);
        assert_eq!(verdict(0.35, 0.2, 0.5, 0.05, 0.30, false), Verdict::Regressed);
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
            if verdict((lo + hi) / 2.0, lo, hi, 0.0, 0.0, false) == Verdict::Regressed {
                flagged += 1;
            }
        }
        // Expected about 1 (2.5 % of 40); 4 or more has probability under 2 %.
        assert!(flagged <= 4, "{flagged} of {trials} identical pairs flagged as regressions");
    }
}
