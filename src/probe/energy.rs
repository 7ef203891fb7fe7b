//! Energy: counters that wrap (RAPL), counters that do not (NVML's total energy), and power
//! samples integrated over time when no counter exists.

use std::path::{Path, PathBuf};

/// The increase of a counter that wraps at `max` (RAPL's `max_energy_range_uj`).
pub fn wrapping_delta(prev: u64, now: u64, max: u64) -> u64 {
    if now >= prev {
        now - prev
    } else {
        // Wrapped once: from prev up to max, then from 0 to now.
        max.saturating_sub(prev) + now
    }
}

/// Energy in joules from power samples `(seconds, watts)` by the trapezoid rule.
pub fn integrate(samples: &[(f64, f64)]) -> f64 {
    samples.windows(2).map(|w| (w[1].0 - w[0].0).max(0.0) * (w[0].1 + w[1].1) / 2.0).sum()
}

/// A RAPL package domain: `/sys/class/powercap/intel-rapl:N`.
#[derive(Debug, Clone)]
pub struct RaplDomain {
    pub energy: PathBuf,
    pub max_uj: u64,
}

/// The top-level RAPL package domains under `root` that can be read (reading usually needs
/// root on recent kernels); empty when there are none.
pub fn rapl_domains(root: &Path) -> Vec<RaplDomain> {
    let Ok(dir) = std::fs::read_dir(root) else { return vec![] };
    let mut out: Vec<RaplDomain> = dir
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            // Packages are intel-rapl:N; their sub-domains (intel-rapl:N:M) are inside them.
            n.starts_with("intel-rapl:") && n.matches(':').count() == 1
        })
        .filter_map(|e| {
            let energy = e.path().join("energy_uj");
            std::fs::read_to_string(&energy).ok()?.trim().parse::<u64>().ok()?;
            let max_uj = std::fs::read_to_string(e.path().join("max_energy_range_uj")).ok()?.trim().parse().ok()?;
            Some(RaplDomain { energy, max_uj })
        })
        .collect();
    out.sort_by(|a, b| a.energy.cmp(&b.energy));
    out
}

/// Cumulative CPU package energy from RAPL, in joules since `start`.
pub struct Rapl {
    domains: Vec<RaplDomain>,
    last: Vec<u64>,
    total_uj: u64,
}

impl Rapl {
    pub fn open() -> Result<Rapl, super::Unavailable> {
        let domains = rapl_domains(Path::new("/sys/class/powercap"));
        if domains.is_empty() {
            return Err(super::Unavailable::NoRapl(
                "no readable RAPL counter (/sys/class/powercap/intel-rapl:*/energy_uj)",
            ));
        }
        let last = domains.iter().map(read_uj).collect();
        Ok(Rapl { domains, last, total_uj: 0 })
    }

    /// Joules since `open`.
    pub fn sample(&mut self) -> f64 {
        for (i, d) in self.domains.iter().enumerate() {
            let now = read_uj(d);
            self.total_uj += wrapping_delta(self.last[i], now, d.max_uj);
            self.last[i] = now;
        }
        self.total_uj as f64 / 1e6
    }
}

fn read_uj(d: &RaplDomain) -> u64 {
    std::fs::read_to_string(&d.energy).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_integration() {
        assert_eq!(wrapping_delta(100, 250, 1000), 150);
        assert_eq!(wrapping_delta(900, 50, 1000), 150);
        assert_eq!(wrapping_delta(5, 5, 1000), 0);
        // 100 W for 2 s, then a ramp to 200 W over 1 s: 200 + 150 J.
        assert!((integrate(&[(0.0, 100.0), (2.0, 100.0), (3.0, 200.0)]) - 350.0).abs() < 1e-12);
        assert_eq!(integrate(&[(0.0, 100.0)]), 0.0);
    }

    #[test]
    fn rapl_domains_from_a_sysfs_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |name: &str, uj: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("energy_uj"), uj).unwrap();
            std::fs::write(d.join("max_energy_range_uj"), "262143328850\n").unwrap();
        };
        mk("intel-rapl:0", "1000\n");
        mk("intel-rapl:1", "2000\n");
        mk("intel-rapl:0:0", "5\n"); // a sub-domain, counted inside its package
        mk("intel-rapl:2", "not a number\n");
        let d = rapl_domains(dir.path());
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].max_uj, 262_143_328_850);
        assert!(rapl_domains(&dir.path().join("missing")).is_empty());
    }
}
