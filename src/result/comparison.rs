//! A comparison with a baseline, as the result records it (computed by
//! [`crate::compare::compare`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Improved,
    Regressed,
    /// Significant, but within the tolerance.
    Unchanged,
    /// Not significant: the interval includes no change.
    WithinNoise,
    /// One run on each side: significant and beyond the tolerance, but within the noise floor
    /// that run-to-run drift needs, so the within-run evidence cannot decide it: repetitions
    /// (`--repeat`) can.
    BelowNoiseFloor,
    /// One side has no data.
    Missing,
    /// The runs' host findings differ (see `Comparison::not_comparable`).
    NotComparable,
}

impl Verdict {
    /// The verdict as people read it (terminal, HTML, Markdown).
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "REGRESSED",
            Verdict::Unchanged => "unchanged",
            Verdict::WithinNoise => "within noise",
            Verdict::BelowNoiseFloor => "below the single-run noise floor (--repeat decides)",
            Verdict::Missing => "missing",
            Verdict::NotComparable => "not comparable",
        }
    }

    /// The verdict as the result writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::WithinNoise => "within_noise",
            Verdict::BelowNoiseFloor => "below_noise_floor",
            Verdict::Missing => "missing",
            Verdict::NotComparable => "not_comparable",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricChange {
    pub workload: String,
    /// `latency.p95`, `throughput`, ...
    pub metric: String,
    /// `s` (seconds) or `/s`.
    pub unit: String,
    pub base: f64,
    pub new: f64,
    /// (new - base) / base.
    pub change: f64,
    /// 95 % interval of the relative change.
    pub ci_low: f64,
    pub ci_high: f64,
    pub tolerance: f64,
    /// The smallest change a single-run comparison may call a regression (0 between runs).
    pub noise_floor: f64,
    /// Whether a higher value is better (throughput) or worse (latency).
    pub higher_is_better: bool,
    /// `between runs (Welch, N vs M runs)` or `within run (bootstrap + noise floor)`.
    pub method: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub method: String,
    pub baseline_runs: usize,
    pub runs: usize,
    pub changes: Vec<MetricChange>,
    pub regressed: bool,
    /// Why the runs cannot be compared (their host findings differ); `None` when they can.
    pub not_comparable: Option<String>,
}
