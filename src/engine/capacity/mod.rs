//! Capacity search under SLOs: the highest concurrency or arrival rate at which every SLO
//! holds. A load step runs until the evidence rule settles its verdict (every SLO clearly
//! met, or one clearly missed) or its longest duration passes (undecided). The search grows
//! the load until a step misses, then narrows the bracket at the load where a monotone fit
//! of every step so far crosses the bound. [`Searcher`] is the pure part (which load next,
//! and the answer); `Engine::search` runs the steps.

mod searcher;
mod server;
mod step;

pub use searcher::{crossing, isotonic, looks, Answer, Pool, Searcher, Stage, Tried};

use serde::{Deserialize, Serialize};

/// A step's verdict on the SLOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every SLO held, at the search's confidence.
    Holds,
    /// At least one SLO was missed, at the search's confidence.
    Missed,
    /// The step's longest duration passed before the evidence settled either way.
    #[default]
    Undecided,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Missed => "missed",
            Verdict::Undecided => "undecided",
        }
    }
}

/// One SLO as a step measured it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloReading {
    pub slo: String,
    /// The bound in base units, and whether the metric is a time (seconds).
    pub bound: f64,
    pub seconds: bool,
    pub verdict: Verdict,
    /// The statistic over the step's judged samples, in base units.
    pub measured: Option<f64>,
    /// The statistic's confidence interval at the look that settled it (where the rule
    /// gives one).
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Above 1 is a miss: for a quantile bound, the share of samples beyond the bound over
    /// the share it allows; otherwise measured / bound for an upper bound, bound /
    /// measured for a lower one. The monotone fit works on it.
    pub margin: Option<f64>,
}

/// One load step of a capacity search. Every field has a default, so a breaking-point level
/// written by an earlier version (`rate`, `stable`, `requests`, ...) still reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SearchStep {
    /// The load tried: concurrency, or requests per second.
    pub load: f64,
    pub verdict: Verdict,
    /// The verdict is `holds` (the inherited field of a breaking-point level).
    pub stable: bool,
    /// A rate search's offered rate (requests/s); null for a concurrency step.
    pub rate: Option<f64>,
    /// Successful requests per second over the judged part.
    pub throughput: f64,
    /// Output tokens per second over the judged part, for workloads that stream tokens.
    pub tok_s: Option<f64>,
    /// Output tokens per second seen by one request while it decodes (1 / mean ITL).
    pub tok_s_per_user: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    /// Requests judged (completed after the settling time).
    pub samples: u64,
    /// Wall time of the step, settling included.
    pub duration_s: f64,
    /// Seconds after the settling time at which the verdict settled; null when undecided.
    pub settled_after_s: Option<f64>,
    /// The SLOs the step missed.
    pub failed: Vec<String>,
    pub slos: Vec<SloReading>,
}

impl SearchStep {
    /// The largest margin over the SLOs (the one closest to missing, or furthest past it).
    pub fn margin(&self) -> Option<f64> {
        self.slos.iter().filter_map(|s| s.margin).reduce(f64::max)
    }

    /// When the verdict settled (`2.3s`), or `undecided`: a report's cell.
    pub fn settled_text(&self) -> String {
        self.settled_after_s.map_or("undecided".into(), |t| format!("{t:.1}s"))
    }

    /// The SLO closest to missing, with its margin (`ttft.p95 < 50ms (86% of bound)`), or `-`.
    pub fn closest_text(&self) -> String {
        self.binding().map_or("-".into(), |b| format!("{} ({:.0}% of bound)", b.slo, b.margin.unwrap_or(0.0) * 100.0))
    }

    /// The SLO with the largest margin.
    pub fn binding(&self) -> Option<&SloReading> {
        self.slos.iter().filter(|s| s.margin.is_some()).max_by(|a, b| a.margin.partial_cmp(&b.margin).unwrap())
    }
}

/// The answer of a capacity search, as the result records it. Every field has a default, so
/// the search section an earlier version wrote (`workload`, `max_sustainable_rate`,
/// `levels`) still reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchOutcome {
    pub workload: String,
    /// `concurrency` or `rate`.
    pub over: String,
    /// The range searched.
    pub range: [f64; 2],
    /// The SLOs every load had to meet.
    pub slos: Vec<String>,
    pub confidence: f64,
    /// The highest load that meets every SLO: a whole number for concurrency; for a rate,
    /// where the monotone fit crosses the bound inside the interval. Null when even the
    /// lowest load missed.
    pub capacity: Option<f64>,
    /// The interval the capacity lies in, from settled steps: `low` held and the load above
    /// `high` (concurrency: `high + 1`) missed. Null on a side no settled step bounds.
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// A concurrency capacity whose interval is one number.
    pub exact: bool,
    /// The SLO that stopped the load from going higher (missed at the lowest missed step).
    pub binding_slo: Option<String>,
    /// `bracketed` (narrowed to the precision), `range top held`, `lowest load missed`,
    /// `max-steps`, `max-time`, `interrupted`, `run-limit`.
    pub ended_by: String,
    pub duration_s: f64,
    #[serde(alias = "levels")]
    pub steps: Vec<SearchStep>,
    /// A rate search's capacity, under its inherited name (null for concurrency).
    pub max_sustainable_rate: Option<f64>,
}

impl SearchOutcome {
    /// The capacity line: `capacity of chat: 8 concurrent (exact) ...`.
    pub fn text(&self) -> String {
        format!("capacity of {}: {}", self.workload, self.answer())
    }

    /// The answer, its interval, the binding SLO and how the search went.
    pub fn answer(&self) -> String {
        let s = self;
        let n = |x: f64| {
            if s.over == "rate" {
                format!("{}/s", crate::dsl::units::trim_float((x * 100.0).round() / 100.0))
            } else {
                format!("{x}")
            }
        };
        let value = match s.capacity {
            None => format!("below the range (the lowest load, {}, missed)", n(s.range[0])),
            Some(c) if s.over == "rate" => format!("{} requests/s", n(c).trim_end_matches("/s")),
            Some(c) => format!("{c} concurrent"),
        };
        let interval = match (s.low, s.high) {
            _ if s.exact => " (exact)".to_string(),
            (Some(l), Some(h)) => format!(" (interval {}..{} at {:.0}% confidence)", n(l), n(h), s.confidence * 100.0),
            (Some(l), None) if s.ended_by == "range top held" => {
                format!(" (at least {}: the top of the range held)", n(l))
            }
            (Some(l), None) => format!(" (at least {}; no step settled a miss)", n(l)),
            (None, Some(h)) => format!(" (at most {})", n(h)),
            (None, None) => " (no interval: no step or pool of steps settled; a longer step-duration gives the steps near the capacity more samples)".to_string(),
        };
        let binding = s.binding_slo.as_ref().map(|b| format!("; bound by {b}")).unwrap_or_default();
        format!("{value}{interval}{binding}; {} steps in {:.1}s, ended: {}", s.steps.len(), s.duration_s, s.ended_by)
    }
}
