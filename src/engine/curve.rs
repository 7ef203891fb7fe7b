//! Load over time: an open-loop rate curve (with arrival-time generation by time rescaling)
//! and a closed-loop concurrency curve. Pure functions of time, independent of workloads.

use crate::dsl::model::Arrivals;

use crate::random::Rng;

/// Requests per second as a function of seconds since the drive started: piecewise linear.
#[derive(Clone, Debug, PartialEq)]
pub enum RateCurve {
    Constant(f64),
    /// Linear from `from` to `to` over `over` seconds, then constant at `to`.
    Linear {
        from: f64,
        to: f64,
        over: f64,
    },
    /// Each period of `every` seconds: `base` for `every - hold`, then `peak` for `hold`.
    Spike {
        base: f64,
        peak: f64,
        every: f64,
        hold: f64,
    },
}

/// A linear piece `[t0, t1)` where the rate goes from `r0` to `r1`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Piece {
    t0: f64,
    t1: f64,
    r0: f64,
    r1: f64,
}

impl Piece {
    fn rate_at(&self, t: f64) -> f64 {
        if self.t1.is_infinite() || self.t1 == self.t0 {
            return self.r0;
        }
        self.r0 + (self.r1 - self.r0) * (t - self.t0) / (self.t1 - self.t0)
    }
}

impl RateCurve {
    pub fn rate_at(&self, t: f64) -> f64 {
        self.piece(t).rate_at(t)
    }

    fn piece(&self, t: f64) -> Piece {
        match *self {
            RateCurve::Constant(r) => Piece { t0: 0.0, t1: f64::INFINITY, r0: r, r1: r },
            RateCurve::Linear { from, to, over } if t < over => Piece { t0: 0.0, t1: over, r0: from, r1: to },
            RateCurve::Linear { to, over, .. } => Piece { t0: over, t1: f64::INFINITY, r0: to, r1: to },
            RateCurve::Spike { base, peak, every, hold } => {
                let start = (t / every).floor() * every;
                let burst = start + every - hold;
                if t < burst {
                    Piece { t0: start, t1: burst, r0: base, r1: base }
                } else {
                    Piece { t0: burst, t1: start + every, r0: peak, r1: peak }
                }
            }
        }
    }

    /// The time after `t` at which the integral of the rate has grown by `events`; `None`
    /// when the rate stays zero forever.
    pub fn advance(&self, mut t: f64, mut events: f64) -> Option<f64> {
        for _ in 0..1_000_000 {
            let p = self.piece(t);
            let a = p.rate_at(t);
            let span = p.t1 - t;
            let slope = if p.t1.is_infinite() { 0.0 } else { (p.r1 - p.r0) / (p.t1 - p.t0) };
            let area = if span.is_infinite() {
                if a > 0.0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            } else {
                a * span + slope * span * span / 2.0
            };
            if area >= events && area > 0.0 {
                // Solve a·τ + slope·τ²/2 = events for the smallest τ >= 0.
                let tau = if slope.abs() < 1e-12 {
                    events / a
                } else {
                    (-a + (a * a + 2.0 * slope * events).max(0.0).sqrt()) / slope
                };
                return Some(t + tau.max(0.0));
            }
            if span.is_infinite() {
                return None;
            }
            events -= area;
            t = p.t1;
        }
        None
    }
}

/// Gaps between arrivals in "operational time" (expected events): mean 1 for every process.
pub fn gap(arrivals: Arrivals, rng: &mut Rng) -> f64 {
    match arrivals {
        Arrivals::Constant => 1.0,
        Arrivals::Poisson => rng.exponential(1.0),
        // Gamma with mean 1 and squared coefficient of variation `burstiness`.
        Arrivals::Gamma { burstiness } => rng.gamma(1.0 / burstiness, burstiness),
    }
}

/// Closed-loop workers wanted as a function of seconds since the drive started.
#[derive(Clone, Debug, PartialEq)]
pub enum ConcurrencyCurve {
    Fixed(u64),
    Linear { from: u64, to: u64, over: f64 },
}

impl ConcurrencyCurve {
    pub fn max(&self) -> u64 {
        match *self {
            ConcurrencyCurve::Fixed(c) => c,
            ConcurrencyCurve::Linear { from, to, .. } => from.max(to),
        }
    }

    pub fn target(&self, t: f64) -> u64 {
        match *self {
            ConcurrencyCurve::Fixed(c) => c,
            ConcurrencyCurve::Linear { from, to, over } => {
                let f = (t / over).clamp(0.0, 1.0);
                (from as f64 + (to as f64 - from as f64) * f).round() as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        let c = RateCurve::Constant(100.0);
        assert_eq!(c.advance(0.0, 1.0), Some(0.01));
        assert!((c.advance(0.5, 50.0).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(RateCurve::Constant(0.0).advance(0.0, 1.0), None);
    }

    #[test]
    fn ramp_integral_is_exact() {
        // 0 -> 100/s over 10 s: 500 events by t = 10, and 125 by t = 5.
        let c = RateCurve::Linear { from: 0.0, to: 100.0, over: 10.0 };
        assert!((c.advance(0.0, 500.0).unwrap() - 10.0).abs() < 1e-9);
        assert!((c.advance(0.0, 125.0).unwrap() - 5.0).abs() < 1e-9);
        // After the ramp the rate stays at 100/s.
        assert!((c.advance(10.0, 100.0).unwrap() - 11.0).abs() < 1e-9);
    }

    #[test]
    fn spike_counts_match_plan_arithmetic() {
        // every 5 s: 100/s for 4 s then 400/s for 1 s -> 800 events per period.
        let c = RateCurve::Spike { base: 100.0, peak: 400.0, every: 5.0, hold: 1.0 };
        assert!((c.advance(0.0, 800.0).unwrap() - 5.0).abs() < 1e-9);
        assert!((c.advance(0.0, 400.0).unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(c.rate_at(4.5), 400.0);
        assert_eq!(c.rate_at(5.5), 100.0);
    }

    #[test]
    fn arrival_gaps_have_mean_one_and_their_burstiness() {
        let mut rng = Rng::new(1);
        // (process, coefficient of variation of the gaps): 0 constant, 1 Poisson, sqrt(b) gamma.
        for (a, cv_want) in
            [(Arrivals::Constant, 0.0), (Arrivals::Poisson, 1.0), (Arrivals::Gamma { burstiness: 4.0 }, 2.0)]
        {
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| gap(a, &mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            assert!((mean - 1.0).abs() < 0.03, "{a:?} mean {mean}");
            assert!((sd / mean - cv_want).abs() < 0.05, "{a:?} cv {}", sd / mean);
        }
    }

    #[test]
    fn concurrency_ramp() {
        let c = ConcurrencyCurve::Linear { from: 1, to: 9, over: 8.0 };
        assert_eq!((c.target(0.0), c.target(4.0), c.target(8.0), c.target(20.0)), (1, 5, 9, 9));
        assert_eq!(c.max(), 9);
    }
}
