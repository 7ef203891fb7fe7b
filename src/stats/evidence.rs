//! The evidence rule: whether the samples show that a bound holds, show that it is missed,
//! or show neither. Pure statistics (binomial, Poisson and Student tails through the
//! regularised incomplete beta and gamma functions); no I/O, no result document.
//!
//! For a quantile bound `pNN < b` the count of samples beyond the bound (at or above `b`)
//! is Binomial(n, θ) with θ = P(X >= b); the true pNN is below `b` exactly when θ < 1 - p.
//! The bound passes when so few samples are beyond it that θ >= 1 - p would have produced
//! that few with probability at most 1 - c, fails when so many are that θ <= 1 - p would
//! have produced that many with probability at most 1 - c, and is undecided otherwise.
//! The same counts give the order-statistic interval of the true pNN.

use serde::Serialize;

use crate::dsl::model::Comparison;

/// What the samples say about a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Holds,
    Missed,
    Undecided,
}

/// The evidence behind an outcome, as the result records it (values in base units).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// `binomial order statistic`, `binomial share`, `student t mean`, `poisson count`.
    pub method: &'static str,
    pub confidence: f64,
    /// Samples (or requests, or events) the decision rests on.
    pub n: u64,
    /// Samples on the wrong side of the bound (quantiles), or the events counted (shares and
    /// rates).
    pub beyond: Option<u64>,
    /// Confidence interval of the true value at `confidence` (one-sided limits); `None` for
    /// a side the samples cannot bound.
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Quantiles: the fewest samples with none beyond the bound that would pass it.
    pub needed_for_pass: Option<u64>,
    pub decision: Decision,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
            if aa != 0.0 && (d * c - 1.0).abs() < 1e-15 && m > 1.0 {
                return h;
            }
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// P(X >= k) for X ~ Binomial(n, p).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        1.0
    } else if k > n || p <= 0.0 {
        0.0
    } else if p >= 1.0 {
        1.0
    } else {
        beta_inc(k as f64, (n - k + 1) as f64, p)
    }
}

/// P(X <= k) for X ~ Binomial(n, p).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        1.0
    } else {
        1.0 - binomial_sf(k + 1, n, p)
    }
}

/// The regularised lower incomplete gamma function P(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series.
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..100_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum * ln_front.exp()).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz).
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..100_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < TINY { TINY } else { d };
            c = b + an / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (1.0 - ln_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// P(X >= k) for X ~ Poisson(mean).
pub fn poisson_sf(k: u64, mean: f64) -> f64 {
    if k == 0 {
        1.0
    } else {
        gamma_p(k as f64, mean)
    }
}

/// P(X <= k) for X ~ Poisson(mean).
pub fn poisson_cdf(k: u64, mean: f64) -> f64 {
    1.0 - gamma_p(k as f64 + 1.0, mean)
}

/// The CDF of Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `q` quantile of Student's t (bisection on the CDF; `q` in (0, 1)).
pub fn student_t_quantile(q: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e4, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Whether a comparison bounds the value from above (`<`, `<=`).
fn upper(op: Comparison) -> bool {
    matches!(op, Comparison::Lt | Comparison::Le)
}

/// Samples of a quantile bound, as the evaluation hands them over.
pub struct QuantileSamples {
    pub n: u64,
    /// Samples on the wrong side of the bound (`<`: at or above it; `<=`: above; `>`: at or
    /// below; `>=`: below).
    pub beyond: u64,
}

/// The smallest 1-based rank r with P(Binomial(n, p) <= r - 1) >= c: the order statistic
/// X_(r) is an upper confidence limit of the p-quantile (`None` when even X_(n) is not).
pub fn upper_rank(n: u64, p: f64, c: f64) -> Option<u64> {
    if binomial_cdf(n.saturating_sub(1), n, p) < c {
        return None;
    }
    let (mut lo, mut hi) = (1u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if binomial_cdf(mid - 1, n, p) >= c {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The largest rank r with P(Binomial(n, p) >= r) >= c: X_(r) is a lower confidence limit
/// of the p-quantile (`None` when even X_(1) is not).
pub fn lower_rank(n: u64, p: f64, c: f64) -> Option<u64> {
    if n == 0 || binomial_sf(1, n, p) < c {
        return None;
    }
    let (mut lo, mut hi) = (1u64, n);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if binomial_sf(mid, n, p) >= c {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The decision for `pNN op bound` from the count of samples beyond the bound.
pub fn quantile_decision(s: &QuantileSamples, p: f64, op: Comparison, c: f64) -> Decision {
    // Under the boundary case (true quantile exactly at the bound) a sample is beyond it with
    // probability 1 - p for an upper bound and p for a lower one.
    let theta = if upper(op) { 1.0 - p } else { p };
    let alpha = 1.0 - c;
    if binomial_cdf(s.beyond, s.n, theta) <= alpha {
        Decision::Holds
    } else if s.beyond > 0 && binomial_sf(s.beyond, s.n, theta) <= alpha {
        Decision::Missed
    } else {
        Decision::Undecided
    }
}

/// The fewest samples, none beyond an upper bound on the p-quantile (or none on the wrong
/// side of a lower one), that pass it: the smallest n with θ^0 tail <= 1 - c.
pub fn needed_for_pass(p: f64, op: Comparison, c: f64) -> u64 {
    let keep = if upper(op) { p } else { 1.0 - p };
    ((1.0 - c).ln() / keep.ln()).ceil().max(1.0) as u64
}

/// The decision from a count's two tails under the boundary case: `few` (so few events
/// would be improbable if the value sat at the bound) and `many` (so many would be).
fn from_tails(op: Comparison, few: bool, many: bool) -> Decision {
    match (upper(op), few, many) {
        (true, true, _) | (false, _, true) => Decision::Holds,
        (true, _, true) | (false, true, _) => Decision::Missed,
        _ => Decision::Undecided,
    }
}

/// A bound with no sampling distribution to test against (a share of 0 or 100 %, a rate of
/// 0): the count decides it exactly.
fn exactly(x: f64, bound: f64, op: Comparison) -> Decision {
    if op.holds(x, bound) {
        Decision::Holds
    } else {
        Decision::Missed
    }
}

/// The decision for a share bound (`error_rate < 1%`): `k` events in `n` trials (n > 0).
pub fn share_decision(k: u64, n: u64, bound: f64, op: Comparison, c: f64) -> Decision {
    if !(bound > 0.0 && bound < 1.0) {
        return exactly(k as f64 / n.max(1) as f64, bound, op);
    }
    let alpha = 1.0 - c;
    // Too few events for the share to reach the bound / too many for it to stay below.
    from_tails(op, binomial_cdf(k, n, bound) <= alpha, k > 0 && binomial_sf(k, n, bound) <= alpha)
}

/// The decision for a rate bound (`throughput >= 450/s`): `k` events in `secs` seconds
/// (secs > 0), counted as a Poisson process.
pub fn rate_decision(k: u64, secs: f64, bound: f64, op: Comparison, c: f64) -> Decision {
    if bound <= 0.0 {
        return exactly(k as f64 / secs, bound, op);
    }
    let (alpha, mean) = (1.0 - c, bound * secs);
    from_tails(op, poisson_cdf(k, mean) <= alpha, k > 0 && poisson_sf(k, mean) <= alpha)
}

/// One-sided confidence limits of a mean (Student's t), and the decision for `mean op bound`.
pub fn mean_decision(mean: f64, sd: f64, n: u64, bound: f64, op: Comparison, c: f64) -> (Decision, f64, f64) {
    if n < 2 {
        return (Decision::Undecided, f64::NEG_INFINITY, f64::INFINITY);
    }
    let half = student_t_quantile(c, (n - 1) as f64) * sd / (n as f64).sqrt();
    let (lo, hi) = (mean - half, mean + half);
    let decision = if upper(op) {
        if hi < bound || (op == Comparison::Le && hi <= bound) {
            Decision::Holds
        } else if lo > bound || (op == Comparison::Lt && lo >= bound) {
            Decision::Missed
        } else {
            Decision::Undecided
        }
    } else if lo > bound || (op == Comparison::Ge && lo >= bound) {
        Decision::Holds
    } else if hi < bound || (op == Comparison::Gt && hi <= bound) {
        Decision::Missed
    } else {
        Decision::Undecided
    };
    (decision, lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_functions_match_known_values() {
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
        // I_0.5(2, 3) = 11/16.
        assert!((beta_inc(2.0, 3.0, 0.5) - 11.0 / 16.0).abs() < 1e-12);
        // P(Poisson(2) <= 1) = 3 e^-2.
        assert!((poisson_cdf(1, 2.0) - 3.0 * (-2f64).exp()).abs() < 1e-12);
        // t quantiles from tables.
        assert!((student_t_quantile(0.975, 4.0) - 2.776_445).abs() < 1e-4);
        assert!((student_t_quantile(0.99, 30.0) - 2.457_262).abs() < 1e-4);
    }

    #[test]
    fn ranks_bound_the_quantile() {
        // p50 of 10 samples at 99 %: P(Bin(10, .5) <= 8) = 0.989 < 0.99, P(<= 9) = 0.999.
        assert_eq!(upper_rank(10, 0.5, 0.99), Some(10));
        assert_eq!(upper_rank(5, 0.5, 0.99), None);
        assert_eq!(lower_rank(10, 0.5, 0.99), Some(1));
        assert_eq!(needed_for_pass(0.99, Comparison::Lt, 0.99), 459);
        assert_eq!(needed_for_pass(0.95, Comparison::Lt, 0.99), 90);
    }
}
