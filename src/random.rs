//! Seeded random numbers for load shapes and the synthetic workload: xoshiro256++ seeded
//! through splitmix64, and the distributions the scenario language names. Written here so
//! that a seed means the same sequence in every version of benchctl.

/// xoshiro256++: fast, 256-bit state, good statistical quality for simulation.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        Rng { s: [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)] }
    }

    /// An independent stream for sub-task `i` (e.g. one per worker).
    pub fn fork(&self, i: u64) -> Rng {
        Rng::new(self.s[0] ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ self.s[2])
    }

    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[0].wrapping_add(self.s[3]).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe for logarithms.
    pub fn open_unit(&mut self) -> f64 {
        1.0 - self.unit()
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal by the Box-Muller transform.
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open_unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.open_unit().ln()
    }

    /// Gamma(shape, scale) by Marsaglia and Tsang; shape < 1 by the boost u^(1/shape).
    pub fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        if shape < 1.0 {
            let u = self.open_unit();
            return self.gamma(shape + 1.0, scale) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open_unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * scale;
            }
        }
    }

    /// Pareto with minimum `scale` and tail index `shape`.
    pub fn pareto(&mut self, scale: f64, shape: f64) -> f64 {
        scale / self.open_unit().powf(1.0 / shape)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn deterministic_and_forked() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::new(42).fork(1).next_u64(), Rng::new(42).fork(2).next_u64());
    }

    #[test]
    fn distributions_have_their_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (m, v) = moments(&(0..n).map(|_| r.normal()).collect::<Vec<_>>());
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "normal {m} {v}");
        let (m, v) = moments(&(0..n).map(|_| r.exponential(2.0)).collect::<Vec<_>>());
        assert!((m - 2.0).abs() < 0.03 && (v - 4.0).abs() < 0.15, "exponential {m} {v}");
        // Gamma(k, theta): mean k*theta, variance k*theta^2.
        for (k, theta) in [(0.5, 2.0), (4.0, 0.25)] {
            let (m, v) = moments(&(0..n).map(|_| r.gamma(k, theta)).collect::<Vec<_>>());
            assert!((m - k * theta).abs() < 0.02 * (k * theta).max(1.0), "gamma mean {m}");
            assert!((v - k * theta * theta).abs() < 0.05 * (k * theta * theta).max(1.0), "gamma var {v}");
        }
        // Pareto(xm=1, alpha=3): mean 1.5.
        let (m, _) = moments(&(0..n).map(|_| r.pareto(1.0, 3.0)).collect::<Vec<_>>());
        assert!((m - 1.5).abs() < 0.02, "pareto {m}");
    }
}
