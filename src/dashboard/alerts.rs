//! Alerts of the live view, in three categories: performance (an expectation the samples
//! show missed), resource (memory near the limit, sustained CPU saturation, GPU throttling
//! or heat, unusual power draw) and stability (error rate rising, a drain that timed out,
//! an aborted run, a regression against the baseline). Each alert has a key; a key raised
//! again within the cooldown is counted, not shown again.

use std::collections::BTreeMap;

use serde::Serialize;

/// Seconds before an alert with the same key is shown again (`--alert-cooldown`).
pub const DEFAULT_COOLDOWN_S: f64 = 60.0;
/// System memory in use, as a share of RAM, that raises `memory`.
pub const MEMORY_SHARE: f64 = 0.90;
/// All-core CPU use that raises `cpu` when it lasts [`CPU_SUSTAIN_S`].
pub const CPU_SHARE: f64 = 0.95;
pub const CPU_SUSTAIN_S: f64 = 10.0;
/// GPU temperature (°C) that raises `gpu_thermal`.
pub const GPU_HOT_C: f64 = 85.0;
/// A power reading this many times the median of the last readings raises `power`.
pub const POWER_JUMP: f64 = 1.5;
/// A window's error share above this, and twice the recent windows' mean, raises `errors`.
pub const ERROR_SHARE: f64 = 0.05;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// Run seconds.
    pub t: f64,
    /// `performance`, `resource` or `stability`.
    pub category: &'static str,
    pub key: String,
    /// `critical` or `warning`.
    pub severity: &'static str,
    pub message: String,
}

#[derive(Default)]
struct Key {
    last: f64,
    /// Times the condition held again within the cooldown after the last shown alert.
    held_back: u64,
}

/// The alerts raised so far and the state the rules keep.
pub struct Alerts {
    cooldown: f64,
    keys: BTreeMap<String, Key>,
    pub fired: Vec<Alert>,
    cpu_high_since: Option<f64>,
    power: BTreeMap<String, Vec<f64>>,
    errors: BTreeMap<String, Vec<f64>>,
}

impl Alerts {
    pub fn new(cooldown_s: f64) -> Alerts {
        Alerts {
            cooldown: cooldown_s.max(0.0),
            keys: BTreeMap::new(),
            fired: vec![],
            cpu_high_since: None,
            power: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    /// Raises an alert unless its key was shown less than the cooldown ago.
    pub fn raise(
        &mut self,
        t: f64,
        category: &'static str,
        key: &str,
        severity: &'static str,
        message: String,
    ) -> Option<Alert> {
        if let Some(k) = self.keys.get_mut(key) {
            if t - k.last < self.cooldown {
                k.held_back += 1;
                return None;
            }
        }
        let held_back = self.keys.get(key).map_or(0, |k| k.held_back);
        self.keys.insert(key.to_string(), Key { last: t, held_back });
        let a = Alert { t, category, key: key.to_string(), severity, message };
        self.fired.push(a.clone());
        Some(a)
    }

    /// Times each key's condition held again within its cooldown.
    pub fn held_back(&self) -> BTreeMap<String, u64> {
        self.keys.iter().filter(|(_, k)| k.held_back > 0).map(|(n, k)| (n.clone(), k.held_back)).collect()
    }

    /// The resource rules on one probe reading.
    pub fn reading(&mut self, t: f64, probe: &str, series: &str, value: f64) -> Option<Alert> {
        match (probe, series) {
            ("system", "memory_share") if value >= MEMORY_SHARE => self.raise(
                t,
                "resource",
                "memory",
                "critical",
                format!("system memory at {:.0}% of RAM (alert at {:.0}%)", value * 100.0, MEMORY_SHARE * 100.0),
            ),
            ("system", "cpu") => {
                if value < CPU_SHARE {
                    self.cpu_high_since = None;
                    return None;
                }
                let since = *self.cpu_high_since.get_or_insert(t);
                (t - since >= CPU_SUSTAIN_S).then_some(()).and_then(|_| {
                    self.raise(
                        t,
                        "resource",
                        "cpu",
                        "warning",
                        format!(
                            "all cores above {:.0}% busy for {:.0}s: the load generator may be short of CPU",
                            CPU_SHARE * 100.0,
                            t - since
                        ),
                    )
                })
            }
            ("gpu", s) if s.ends_with("throttled") && value > 0.0 => self.raise(
                t,
                "resource",
                &format!("gpu_throttle:{s}"),
                "warning",
                format!("GPU clocks throttled ({s} = {:.0}%)", value * 100.0),
            ),
            ("gpu", s) if s.ends_with("temperature") && value >= GPU_HOT_C => self.raise(
                t,
                "resource",
                &format!("gpu_thermal:{s}"),
                "critical",
                format!("GPU at {value:.0} °C (alert at {GPU_HOT_C:.0} °C)"),
            ),
            ("gpu" | "energy", s) if s.ends_with("power") => {
                let key = format!("{probe}.{s}");
                let seen = self.power.entry(key.clone()).or_default();
                let mut sorted: Vec<f64> = seen.iter().rev().take(30).copied().collect();
                seen.push(value);
                if seen.len() > 30 {
                    seen.drain(..seen.len() - 30);
                }
                if sorted.len() < 10 {
                    return None;
                }
                sorted.sort_by(f64::total_cmp);
                let median = sorted[sorted.len() / 2];
                (median > 1.0 && value > POWER_JUMP * median).then_some(()).and_then(|_| {
                    self.raise(
                        t,
                        "resource",
                        &format!("power:{key}"),
                        "warning",
                        format!("unusual power draw: {value:.0} W against a recent median of {median:.0} W"),
                    )
                })
            }
            _ => None,
        }
    }

    /// The error-rate rule on one closed window of a workload.
    pub fn window(&mut self, t: f64, workload: &str, requests: u64, errors: u64) -> Option<Alert> {
        if requests == 0 {
            return None;
        }
        let share = errors as f64 / requests as f64;
        let seen = self.errors.entry(workload.to_string()).or_default();
        let recent: Vec<f64> = seen.iter().rev().take(5).copied().collect();
        seen.push(share);
        if seen.len() > 5 {
            seen.remove(0);
        }
        let before = if recent.is_empty() { 0.0 } else { recent.iter().sum::<f64>() / recent.len() as f64 };
        (share > ERROR_SHARE && share > 2.0 * before).then_some(()).and_then(|_| {
            self.raise(
                t,
                "stability",
                &format!("errors:{workload}"),
                "critical",
                format!(
                    "`{workload}`: error rate rising to {:.1}% of the last window's requests (recent windows {:.1}%)",
                    share * 100.0,
                    before * 100.0
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_shown_once_per_cooldown() {
        let mut a = Alerts::new(30.0);
        assert!(a.raise(1.0, "performance", "k", "critical", "x".into()).is_some());
        for t in 2..31 {
            assert!(a.raise(t as f64, "performance", "k", "critical", "x".into()).is_none(), "t={t}");
        }
        assert!(a.raise(2.0, "performance", "other", "critical", "y".into()).is_some(), "keys are apart");
        assert!(a.raise(31.0, "performance", "k", "critical", "x".into()).is_some(), "after the cooldown");
        assert_eq!(a.fired.len(), 3);
        assert_eq!(a.held_back()["k"], 29);
    }

    #[test]
    fn resource_and_stability_rules() {
        let mut a = Alerts::new(60.0);
        assert!(a.reading(0.0, "system", "memory_share", 0.5).is_none());
        assert!(a.reading(1.0, "system", "memory_share", 0.93).unwrap().message.contains("93%"));
        // CPU: only after 10 s above the bound, and a dip resets the clock.
        for t in 0..9 {
            assert!(a.reading(t as f64, "system", "cpu", 0.99).is_none());
        }
        assert!(a.reading(9.0, "system", "cpu", 0.5).is_none());
        for t in 10..20 {
            assert!(a.reading(t as f64, "system", "cpu", 0.99).is_none());
        }
        assert!(a.reading(20.0, "system", "cpu", 0.99).is_some());
        // Power: a jump over 1.5x the recent median.
        for t in 0..12 {
            assert!(a.reading(t as f64, "gpu", "power", 200.0).is_none());
        }
        assert!(a.reading(12.0, "gpu", "power", 250.0).is_none());
        assert!(a.reading(13.0, "gpu", "power", 420.0).unwrap().message.contains("420 W"));
        // Errors: a rise, not a steady low rate.
        for t in 0..5 {
            assert!(a.window(t as f64, "w", 100, 1).is_none());
        }
        assert!(a.window(5.0, "w", 100, 20).unwrap().category == "stability");
    }
}
