//! Capacity search under SLOs: the highest concurrency or arrival rate at which every SLO
//! holds. A load step runs until the evidence rule settles its verdict (every SLO clearly
//! met, or one clearly missed) or its longest duration passes (undecided). The search grows
//! the load until a step misses, then narrows the bracket at the load where a monotone fit
//! of every step so far crosses the bound. [`Searcher`] is the pure part (which load next,
//! and the answer); `Engine::search` runs the steps.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::drive::{self, DriveCtx, Stop};
use super::events::RunEvent;
use super::executor::{Engine, WorkloadOutcome};
use crate::dsl::model::{LoadShape, SearchOver};
use crate::dsl::units::Rate;
use crate::measure::evidence;
use crate::measure::record::{Counters, Hists, Recorded, Recorder};
use crate::measure::statistic;
use crate::plan::estimate::{search_level_seed, DEFAULT_MAX_IN_FLIGHT};
use crate::plan::{PlannedPhase, PlannedSearch, SearchSpec, StopCondition};
use crate::stats::evidence::Decision;

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
            (None, None) => " (no step settled)".to_string(),
        };
        let binding = s.binding_slo.as_ref().map(|b| format!("; bound by {b}")).unwrap_or_default();
        format!("{value}{interval}{binding}; {} steps in {:.1}s, ended: {}", s.steps.len(), s.duration_s, s.ended_by)
    }
}

/// One tried load as the search logic sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tried {
    pub load: f64,
    pub verdict: Verdict,
    pub margin: Option<f64>,
}

/// Why a step runs: growing the load to a bracket (judged for a third of the step length:
/// its verdict only has to lean), narrowing the bracket, or confirming an end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Grow,
    Narrow,
    Confirm,
}

/// The search logic: which load to try next, and the answer from the steps so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Searcher {
    pub lo: f64,
    pub hi: f64,
    /// Concurrency: loads are whole numbers and the answer is exact when settled.
    pub integer: bool,
    pub factor: f64,
    pub geometric: bool,
    pub max_steps: u32,
    pub precision: f64,
}

/// The answer of [`Searcher::answer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub capacity: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub exact: bool,
}

impl Searcher {
    pub fn of(spec: &SearchSpec) -> Searcher {
        let integer = spec.over == SearchOver::Concurrency;
        Searcher {
            lo: if integer { spec.lo.round().max(1.0) } else { spec.lo },
            hi: if integer { spec.hi.round().max(1.0) } else { spec.hi },
            integer,
            factor: spec.factor,
            geometric: spec.geometric,
            max_steps: spec.max_steps,
            precision: spec.precision,
        }
    }

    /// The working bracket: the highest load that leans to holding below the lowest that
    /// leans to missing. A settled step leans its verdict's way; an undecided one by the
    /// monotone fit of every step's margin at its load, which pools the noise of steps
    /// that disagree with the loads around them. Where a load ran twice, its later step
    /// counts.
    fn working(&self, tried: &[Tried]) -> (Option<f64>, Option<f64>) {
        let latest: Vec<&Tried> = tried
            .iter()
            .enumerate()
            .filter(|(i, t)| !tried[i + 1..].iter().any(|u| u.load == t.load))
            .map(|(_, t)| t)
            .collect();
        let mut pts: Vec<(f64, f64)> =
            latest.iter().filter_map(|t| t.margin.filter(|m| m.is_finite()).map(|m| (t.load, m))).collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let fit = isotonic(&pts);
        let leans_holds = |t: &Tried| match t.verdict {
            Verdict::Holds => true,
            Verdict::Missed => false,
            Verdict::Undecided => fit.iter().find(|p| p.0 == t.load).map(|p| p.1).or(t.margin).is_some_and(|m| m < 1.0),
        };
        let h = latest.iter().filter(|t| !leans_holds(t)).map(|t| t.load).reduce(f64::min);
        let l =
            latest.iter().filter(|t| leans_holds(t) && h.is_none_or(|h| t.load < h)).map(|t| t.load).reduce(f64::max);
        (l, h)
    }

    /// The settled bracket: the highest load that held below the lowest that missed.
    fn settled(&self, tried: &[Tried]) -> (Option<f64>, Option<f64>) {
        let h = tried.iter().filter(|t| t.verdict == Verdict::Missed).map(|t| t.load).reduce(f64::min);
        let l = tried
            .iter()
            .filter(|t| t.verdict == Verdict::Holds && h.is_none_or(|h| t.load < h))
            .map(|t| t.load)
            .reduce(f64::max);
        (l, h)
    }

    /// The next load to try and why, or why the search is over.
    pub fn next(&self, tried: &[Tried]) -> Result<(f64, Stage), &'static str> {
        if tried.is_empty() {
            return Ok((self.lo, Stage::Grow));
        }
        if tried.len() as u32 >= self.max_steps {
            return Err("max-steps");
        }
        match self.working(tried) {
            (None, h) => self.confirm(tried, [h], "lowest load missed"),
            (Some(l), None) if l >= self.hi => self.confirm(tried, [Some(l)], "range top held"),
            (Some(l), None) => Ok((self.grow(l), Stage::Grow)),
            (Some(l), Some(h)) if self.narrow(l, h) => self.confirm(tried, [Some(l), Some(h)], "bracketed"),
            (Some(l), Some(h)) => Ok((self.inside(l, h, tried), Stage::Narrow)),
        }
    }

    /// Before the search ends: a load that bounds the answer but whose step ended undecided
    /// is run once more for the whole step length, so the interval can rest on it.
    fn confirm<const N: usize>(
        &self,
        tried: &[Tried],
        ends: [Option<f64>; N],
        why: &'static str,
    ) -> Result<(f64, Stage), &'static str> {
        for x in ends.into_iter().flatten() {
            let here = || tried.iter().filter(move |t| t.load == x);
            if here().all(|t| t.verdict == Verdict::Undecided) && here().count() < 2 {
                return Ok((x, Stage::Confirm));
            }
        }
        Err(why)
    }

    fn grow(&self, l: f64) -> f64 {
        let step = (self.hi - self.lo) / (self.max_steps as f64 / 2.0).max(1.0);
        let x = if self.geometric { l * self.factor } else { l + step };
        let x = if self.integer { x.ceil().max(l + 1.0) } else { x };
        x.min(self.hi)
    }

    fn narrow(&self, l: f64, h: f64) -> bool {
        if self.integer {
            h - l <= 1.0
        } else {
            h / l <= 1.0 + self.precision
        }
    }

    /// A load strictly inside `(l, h)`. Where the last step cut the bracket by at least
    /// half, just past the point where the monotone fit crosses the bound, on the side of
    /// the larger part, so that the next step can close the bracket to the precision;
    /// otherwise the middle (the fit is not helping).
    fn inside(&self, l: f64, h: f64, tried: &[Tried]) -> f64 {
        let before = self.working(&tried[..tried.len() - 1]);
        let poor = matches!(before, (Some(l0), Some(h0)) if (h - l) > 0.5 * (h0 - l0));
        let c = crossing(tried).filter(|c| *c > l && *c < h && !poor);
        let upward = |c: f64| c - l <= h - c;
        let x = match c {
            None => (l + h) / 2.0,
            Some(c) if self.integer && upward(c) => c.floor() + 1.0,
            Some(c) if self.integer => c.floor(),
            Some(c) if upward(c) => c * (1.0 + 0.45 * self.precision),
            Some(c) => c * (1.0 - 0.45 * self.precision),
        };
        if self.integer {
            x.round().clamp(l + 1.0, h - 1.0)
        } else {
            let edge = 0.01 * (h - l);
            x.clamp(l + edge, h - edge)
        }
    }

    /// The capacity and its interval from the steps so far.
    pub fn answer(&self, tried: &[Tried]) -> Answer {
        let (l, h) = self.working(tried);
        let (sl, sh) = self.settled(tried);
        let capacity = match (l, h) {
            (None, _) => None,
            (Some(l), _) if self.integer => Some(l),
            (Some(l), None) => Some(l),
            (Some(l), Some(h)) => Some(crossing(tried).unwrap_or(l).clamp(l, h)),
        };
        let high = sh.map(|h| if self.integer { h - 1.0 } else { h });
        let exact = self.integer && sl.is_some() && sl == high && capacity == sl;
        Answer { capacity, low: sl, high, exact }
    }
}

/// Where the isotonic (non-decreasing) least-squares fit of margin against load, joined by
/// straight lines, first reaches 1.
pub fn crossing(tried: &[Tried]) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> =
        tried.iter().filter_map(|t| t.margin.filter(|m| m.is_finite()).map(|m| (t.load, m))).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let fit = isotonic(&pts);
    let above = fit.iter().position(|&(_, m)| m >= 1.0)?;
    if above == 0 {
        return None;
    }
    let ((x0, m0), (x1, m1)) = (fit[above - 1], fit[above]);
    Some(if m1 > m0 { x0 + (1.0 - m0) * (x1 - x0) / (m1 - m0) } else { x0 })
}

/// Pool-adjacent-violators: the non-decreasing sequence nearest to the points' values.
/// Points at the same load are pooled first.
pub fn isotonic(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    // Blocks of (load of the first point, sum, count, loads in the block).
    let mut blocks: Vec<(Vec<f64>, f64, f64)> = vec![];
    for &(x, m) in pts {
        blocks.push((vec![x], m, 1.0));
        while blocks.len() > 1 {
            let n = blocks.len();
            let (a, b) = (&blocks[n - 2], &blocks[n - 1]);
            let same_load = a.0.last() == b.0.first();
            if !same_load && a.1 / a.2 <= b.1 / b.2 {
                break;
            }
            let b = blocks.pop().expect("two blocks");
            let a = blocks.last_mut().expect("two blocks");
            a.0.extend(b.0);
            a.1 += b.1;
            a.2 += b.2;
        }
    }
    let mut out: Vec<(f64, f64)> = vec![];
    for (xs, sum, n) in blocks {
        let mean = sum / n;
        for x in xs {
            if out.last().is_none_or(|p| p.0 != x) {
                out.push((x, mean));
            }
        }
    }
    out
}

/// The look times of one step, seconds after its settling time: from 1 s (four batches,
/// the fewest a design effect is read from), growing by half each time, on the batch grid,
/// the last at the step's length. The verdict is tested at each, so each test runs at
/// 1 - (1 - confidence) / looks to keep the step's error within the confidence
/// (Bonferroni).
pub fn looks(step_s: f64) -> Vec<f64> {
    let grid = |t: f64| (t / BATCH_S).round().max(1.0) * BATCH_S;
    let end = grid(step_s);
    let mut out: Vec<f64> = vec![];
    let mut t = 1.0f64;
    while grid(t) < end {
        if out.last() != Some(&grid(t)) {
            out.push(grid(t));
        }
        t *= 1.5;
    }
    out.push(end);
    out
}

/// Length of a batch of a step's samples, for the design effect.
const BATCH_S: f64 = 0.25;

/// What the last look of a step saw.
#[derive(Default)]
struct Reading {
    slos: Vec<SloReading>,
    verdict: Verdict,
    settled: Option<f64>,
    counters: Counters,
    hists: Hists,
    secs: f64,
}

/// One batch's binomial counts for an SLO, if its rule reads counts.
fn batch_counts(slo: &StopCondition, h: &Hists, c: &Counters, secs: f64) -> Option<(u64, u64)> {
    let b = evidence::basis(slo.metric, slo.aggregation.as_deref(), h, c, secs)?;
    evidence::counts(&b, slo.op, slo.value)
}

/// The margin of a measured value against an SLO (above 1 is a miss). For a quantile bound
/// it is the share of samples beyond the bound over the share the bound allows (`p95 <
/// 50ms` with 7.5 % of samples above 50 ms: 1.5): that share changes smoothly with load,
/// where the quantile itself can jump when it sits at the edge of a tail.
fn margin(c: &StopCondition, basis: Option<&evidence::Basis>, x: f64) -> Option<f64> {
    use crate::dsl::model::Comparison::*;
    if let Some(b @ evidence::Basis::Quantile { q, .. }) = basis {
        let (n, beyond) = evidence::counts(b, c.op, c.value)?;
        let allowed = if matches!(c.op, Lt | Le) { 1.0 - q } else { *q };
        return (n > 0 && allowed > 0.0).then(|| beyond as f64 / n as f64 / allowed);
    }
    match c.op {
        Lt | Le if c.value > 0.0 => Some(x / c.value),
        Gt | Ge if x > 0.0 => Some(c.value / x),
        Gt | Ge => Some(f64::INFINITY),
        _ => None,
    }
}

/// Reads every SLO on a record at confidence `conf`, each with its design effect; `last`
/// decides the SLOs the rule cannot test by their point value.
fn read(
    slos: &[StopCondition],
    h: &Hists,
    c: &Counters,
    secs: f64,
    conf: f64,
    deffs: &[f64],
    last: bool,
) -> Vec<SloReading> {
    slos.iter()
        .zip(deffs)
        .map(|(s, &deff)| {
            let agg = s.aggregation.as_deref();
            let measured = statistic::value(s.metric, agg, h, c, secs, 3.0);
            let basis = evidence::basis(s.metric, agg, h, c, secs);
            let ev = basis.as_ref().and_then(|b| evidence::judge_clustered(b, s.op, s.value, conf, deff));
            let verdict = match (&ev, measured) {
                (Some(e), _) if e.decision == Decision::Holds => Verdict::Holds,
                (Some(e), _) if e.decision == Decision::Missed => Verdict::Missed,
                (None, Some(x)) if last => {
                    if s.holds(x) {
                        Verdict::Holds
                    } else {
                        Verdict::Missed
                    }
                }
                _ => Verdict::Undecided,
            };
            SloReading {
                slo: s.text.clone(),
                bound: s.value,
                seconds: h.all().any(|n| n.name == s.metric && n.unit == "s"),
                verdict,
                measured,
                low: ev.as_ref().and_then(|e| e.low),
                high: ev.as_ref().and_then(|e| e.high),
                margin: measured.and_then(|x| margin(s, basis.as_ref(), x)),
            }
        })
        .collect()
}

/// The step's verdict from its SLO readings; a step where requests finished but none
/// succeeded misses whatever its SLOs say.
fn verdict(readings: &[SloReading], c: &Counters) -> Verdict {
    if c.requests > 0 && c.errors == c.requests || readings.iter().any(|r| r.verdict == Verdict::Missed) {
        Verdict::Missed
    } else if readings.iter().all(|r| r.verdict == Verdict::Holds) {
        Verdict::Holds
    } else {
        Verdict::Undecided
    }
}

impl Engine<'_> {
    /// Capacity search: brackets, then narrows, each step run until its verdict settles.
    pub(super) async fn search(
        &mut self,
        index: usize,
        phase: &PlannedPhase,
        search: &PlannedSearch,
    ) -> (Vec<WorkloadOutcome>, String, Option<SearchOutcome>) {
        let (s, workload) = (&search.spec, &search.workload);
        let searcher = Searcher::of(s);
        let started = Instant::now();
        let deadline = s.max_time.map(|t| started + t.as_std());
        let (mut steps, mut tried, mut records) = (vec![], vec![], vec![]);
        let why: String = loop {
            let (load, stage) = match searcher.next(&tried) {
                Ok(x) => x,
                Err(why) => break why.into(),
            };
            let judged = match stage {
                Stage::Grow => s.step.as_secs_f64().min((s.step.as_secs_f64() / 3.0).max(2.0)),
                Stage::Narrow | Stage::Confirm => s.step.as_secs_f64(),
            };
            if self.interrupt.is_set() {
                break self.stop_reason().into();
            }
            if deadline.is_some_and(|d| Instant::now() + s.step_max().as_std() > d) {
                break "max-time".into();
            }
            let (step, rec) = self.step(index, tried.len() as u32, phase, workload, s, (load, judged)).await;
            self.reporter.event(&RunEvent::SearchStep { workload: workload.clone(), step: step.clone() });
            tried.push(Tried { load, verdict: step.verdict, margin: step.margin() });
            steps.push(step);
            records.push(rec);
        };
        let why = match why.as_str() {
            "interrupted" | "run-limit" => why,
            _ => format!("search: {why}"),
        };
        let answer = searcher.answer(&tried);
        let binding = binding_slo(&steps, answer.high.map(|h| if searcher.integer { h + 1.0 } else { h }));
        let outcome = SearchOutcome {
            workload: workload.clone(),
            over: s.over.as_str().into(),
            range: [searcher.lo, searcher.hi],
            slos: s.slos.iter().map(|c| c.text.clone()).collect(),
            confidence: s.confidence,
            capacity: answer.capacity,
            low: answer.low,
            high: answer.high,
            exact: answer.exact,
            binding_slo: binding,
            ended_by: why.trim_start_matches("search: ").to_string(),
            duration_s: started.elapsed().as_secs_f64(),
            max_sustainable_rate: (s.over == SearchOver::Rate).then_some(answer.capacity).flatten(),
            steps,
        };
        self.reporter.event(&RunEvent::Capacity(outcome.clone()));
        let merged = records.into_iter().reduce(|mut acc, r| {
            acc.append(r);
            acc
        });
        let workloads = merged
            .map(|recorded| WorkloadOutcome { name: workload.clone(), kind: self.kind(workload), recorded })
            .into_iter()
            .collect();
        (workloads, why, Some(outcome))
    }

    /// Runs one load step: the settling time, then looks until the verdict settles or the
    /// step's length passes; drains; returns the step and its whole record.
    async fn step(
        &mut self,
        index: usize,
        n: u32,
        phase: &PlannedPhase,
        workload: &str,
        s: &SearchSpec,
        (load, judged_s): (f64, f64),
    ) -> (SearchStep, Recorded) {
        let start = Instant::now();
        let stop = Arc::new(Stop::default());
        let w = self.workloads[workload].clone();
        let rec = Arc::new(
            Recorder::new(start, self.options.window, self.options.shards)
                .with_measures(w.measures())
                .with_slo(w.slo()),
        );
        let seed = search_level_seed(self.plan.seed, self.repetition, index, n);
        let ctx = Arc::new(DriveCtx::new(w, rec.clone(), stop.clone(), seed, None, DEFAULT_MAX_IN_FLIGHT));
        let ctx_sent = ctx.clone();
        let shape = match s.over {
            SearchOver::Concurrency => LoadShape::Closed { concurrency: load as u64 },
            SearchOver::Rate => LoadShape::Open { rate: Rate(load), arrivals: s.arrivals },
        };
        let longest = s.settle.as_std() + Duration::from_secs_f64(judged_s);
        let task = tokio::spawn(drive::drive(
            ctx,
            drive::segments(&shape, None),
            start,
            Some(start + longest),
            self.options.shards,
        ));
        let reading = self.judge(&rec, start + s.settle.as_std(), judged_s, s).await;
        stop.set();
        let recorders: BTreeMap<String, Arc<Recorder>> = [(workload.to_string(), rec.clone())].into();
        self.drain(phase, &recorders, vec![task]).await;
        let mut recorded = rec.finish(Instant::now());
        recorded.counters.sent = ctx_sent.dispatched.load(Ordering::Relaxed);
        recorded.counters.late_sent = ctx_sent.late_dispatches.load(Ordering::Relaxed);
        let Reading { slos, verdict, settled, counters: c, hists: h, secs } = reading;
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let streams = c.output_tokens > 0;
        let itl = h.named("itl").filter(|(h, _)| !h.is_empty()).map(|(h, scale)| h.mean() / scale);
        let step = SearchStep {
            load,
            verdict,
            stable: verdict == Verdict::Holds,
            rate: (s.over == SearchOver::Rate).then_some(load),
            throughput: per_sec(c.requests - c.errors),
            tok_s: streams.then(|| per_sec(c.output_tokens)),
            tok_s_per_user: itl.filter(|m| *m > 0.0).map(|m| 1.0 / m),
            requests: recorded.counters.requests,
            errors: recorded.counters.errors,
            samples: c.requests,
            duration_s: recorded.elapsed.as_secs_f64(),
            settled_after_s: settled,
            failed: slos.iter().filter(|r| r.verdict == Verdict::Missed).map(|r| r.slo.clone()).collect(),
            slos,
        };
        (step, recorded)
    }

    /// Judges a running step: from `from` on, takes the record's increase every batch
    /// (0.25 s) for the design effect, and at each look applies the rule to everything since
    /// `from`; stops at the first settled look, the last look, or an interrupt.
    async fn judge(&mut self, rec: &Recorder, from: Instant, judged_s: f64, s: &SearchSpec) -> Reading {
        let mut reading = Reading::default();
        if !self.wait_until(from, rec).await {
            return reading;
        }
        let base = rec.snapshot();
        let looks = looks(judged_s);
        let conf = 1.0 - (1.0 - s.confidence) / looks.len() as f64;
        let mut batches: Vec<Vec<(u64, u64)>> = vec![vec![]; s.slos.len()];
        let mut prev = base.clone();
        let mut next = 0;
        for i in 1.. {
            let t = i as f64 * BATCH_S;
            let at = from + Duration::from_secs_f64(t);
            let woke = self.wait_until(at, rec).await;
            let now = rec.snapshot();
            let (mut bh, mut bc) = now.clone();
            bh.subtract(&prev.0);
            bc.subtract(&prev.1);
            for (slo, list) in s.slos.iter().zip(batches.iter_mut()) {
                list.extend(batch_counts(slo, &bh, &bc, BATCH_S));
            }
            prev = now;
            let last = !woke || next + 1 == looks.len();
            if t + 1e-9 < looks[next] && !last {
                continue;
            }
            next += 1;
            let (mut h, mut c) = prev.clone();
            h.subtract(&base.0);
            c.subtract(&base.1);
            let secs = at.min(Instant::now()).saturating_duration_since(from).as_secs_f64();
            let deffs: Vec<f64> = batches.iter().map(|b| evidence::design_effect(b)).collect();
            let slos = read(&s.slos, &h, &c, secs, conf, &deffs, last);
            let v = verdict(&slos, &c);
            reading = Reading {
                slos,
                verdict: v,
                settled: (v != Verdict::Undecided).then_some(secs),
                counters: c,
                hists: h,
                secs,
            };
            if v != Verdict::Undecided || last {
                break;
            }
        }
        reading
    }

    /// Sleeps until `at`, closing the recorder's windows on the way so its totals are
    /// current; false when the run was interrupted first.
    async fn wait_until(&mut self, at: Instant, rec: &Recorder) -> bool {
        let woke = tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => true,
            _ = self.interrupt.wait() => false,
        };
        rec.tick(Instant::now());
        woke
    }
}

/// The SLO that missed at the lowest missed load (the one with the largest margin there).
fn binding_slo(steps: &[SearchStep], first_missed: Option<f64>) -> Option<String> {
    let at = first_missed
        .or_else(|| steps.iter().filter(|s| s.verdict == Verdict::Missed).map(|s| s.load).reduce(f64::min))?;
    let step = steps.iter().find(|s| s.load == at && s.verdict == Verdict::Missed)?;
    step.slos
        .iter()
        .filter(|r| r.verdict == Verdict::Missed)
        .max_by(|a, b| a.margin.partial_cmp(&b.margin).unwrap_or(std::cmp::Ordering::Equal))
        .or_else(|| step.binding())
        .map(|r| r.slo.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searcher(lo: f64, hi: f64, integer: bool) -> Searcher {
        Searcher { lo, hi, integer, factor: 2.0, geometric: true, max_steps: 30, precision: 0.05 }
    }

    /// Runs the search against an oracle that gives each load's verdict and margin.
    fn run(s: &Searcher, oracle: impl Fn(f64) -> (Verdict, f64)) -> (Vec<Tried>, &'static str) {
        let mut tried = vec![];
        loop {
            match s.next(&tried) {
                Ok((x, stage)) => {
                    let again = tried.iter().any(|t: &Tried| t.load == x);
                    assert_eq!(again, stage == Stage::Confirm, "load {x} at {stage:?}: {tried:?}");
                    let (verdict, m) = oracle(x);
                    tried.push(Tried { load: x, verdict, margin: Some(m) });
                }
                Err(why) => return (tried, why),
            }
        }
    }

    fn settled(capacity: f64) -> impl Fn(f64) -> (Verdict, f64) {
        move |x| {
            let m = if x <= capacity { 0.8 } else { 1.0 + (x - capacity) / capacity };
            (if m < 1.0 { Verdict::Holds } else { Verdict::Missed }, m)
        }
    }

    #[test]
    fn a_concurrency_search_is_exact_for_every_capacity_in_range() {
        let s = searcher(1.0, 64.0, true);
        for c in 1..64 {
            let (tried, why) = run(&s, settled(c as f64));
            let a = s.answer(&tried);
            assert_eq!(
                (a.capacity, a.low, a.high, a.exact),
                (Some(c as f64), Some(c as f64), Some(c as f64), true),
                "c = {c}: {tried:?}"
            );
            assert_eq!(why, "bracketed");
            // Bracketing takes about log2(c) steps; narrowing about log2 of the bracket.
            assert!(tried.len() <= 14, "c = {c}: {} steps", tried.len());
        }
    }

    #[test]
    fn the_ends_of_the_range() {
        let s = searcher(2.0, 16.0, true);
        let (tried, why) = run(&s, settled(100.0));
        assert_eq!((why, s.answer(&tried).capacity, s.answer(&tried).high), ("range top held", Some(16.0), None));
        let (tried, why) = run(&s, settled(1.0));
        let a = s.answer(&tried);
        assert_eq!((why, a.capacity, a.low, a.high), ("lowest load missed", None, None, Some(1.0)));
    }

    #[test]
    fn a_rate_search_brackets_the_crossing_within_its_precision() {
        let s = searcher(1.0, 1000.0, false);
        // Margin grows linearly with load and crosses 1 at 37.3/s.
        let (tried, why) = run(&s, |x| {
            let m = x / 37.3;
            (if m < 1.0 { Verdict::Holds } else { Verdict::Missed }, m)
        });
        let a = s.answer(&tried);
        assert_eq!(why, "bracketed");
        let (lo, hi) = (a.low.unwrap(), a.high.unwrap());
        assert!(lo <= 37.3 && 37.3 <= hi && hi / lo <= 1.05, "{lo}..{hi}");
        // The fit is exact for a linear margin.
        assert!((a.capacity.unwrap() - 37.3).abs() < 1e-6, "{a:?}");
        assert!(tried.len() <= 9, "{} steps", tried.len());
    }

    #[test]
    fn undecided_steps_steer_the_search_but_do_not_bound_the_interval() {
        let s = searcher(1.0, 64.0, true);
        // Capacity 5, but the step at 6 cannot be settled (its estimate is just over).
        let (tried, _) = run(&s, |x| match x as u32 {
            6 => (Verdict::Undecided, 1.01),
            _ => settled(5.0)(x),
        });
        let a = s.answer(&tried);
        assert_eq!((a.capacity, a.low), (Some(5.0), Some(5.0)));
        assert!(a.high.unwrap() >= 6.0 && !a.exact, "{a:?}");
    }

    #[test]
    fn an_undecided_end_of_the_bracket_is_run_again() {
        let s = searcher(1.0, 64.0, true);
        // Capacity 4; the first step at 4 (growing, short) cannot settle, the second can.
        let seen = std::cell::Cell::new(0);
        let (tried, why) = run(&s, |x| match x as u32 {
            4 => {
                seen.set(seen.get() + 1);
                if seen.get() == 1 {
                    (Verdict::Undecided, 0.9)
                } else {
                    (Verdict::Holds, 0.9)
                }
            }
            _ => settled(4.0)(x),
        });
        assert_eq!((seen.get(), why), (2, "bracketed"));
        let a = s.answer(&tried);
        assert_eq!((a.capacity, a.low, a.high, a.exact), (Some(4.0), Some(4.0), Some(4.0), true), "{tried:?}");
        // A confirmation that misses moves the bracket down.
        let (tried, _) = run(&s, |x| match x as u32 {
            4 if tried_once(x) => (Verdict::Missed, 1.1),
            4 => (Verdict::Undecided, 0.95),
            _ => settled(3.0)(x),
        });
        assert_eq!(s.answer(&tried).capacity, Some(3.0), "{tried:?}");
    }

    thread_local!(static ONCE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(vec![]) });

    /// Whether `x` was asked for before (this thread's second ask onwards).
    fn tried_once(x: f64) -> bool {
        ONCE.with(|o| {
            let mut o = o.borrow_mut();
            let seen = o.contains(&x.to_bits());
            o.push(x.to_bits());
            seen
        })
    }

    #[test]
    fn the_monotone_fit_pools_violators() {
        let fit = isotonic(&[(1.0, 0.5), (2.0, 0.9), (3.0, 0.7), (4.0, 1.5)]);
        assert_eq!(fit, vec![(1.0, 0.5), (2.0, 0.8), (3.0, 0.8), (4.0, 1.5)]);
        let t = |load, m| Tried { load, verdict: Verdict::Undecided, margin: Some(m) };
        // Crosses between 3 (0.8) and 4 (1.5): 3 + 0.2 / 0.7.
        let x = crossing(&[t(1.0, 0.5), t(2.0, 0.9), t(3.0, 0.7), t(4.0, 1.5)]).unwrap();
        assert!((x - (3.0 + 0.2 / 0.7)).abs() < 1e-12);
        assert_eq!(crossing(&[t(1.0, 1.2)]), None, "no load below the bound");
    }

    #[test]
    fn looks_grow_and_end_at_the_step_length() {
        let l = looks(10.0);
        assert_eq!(l, vec![1.0, 1.5, 2.25, 3.5, 5.0, 7.5, 10.0]);
        assert_eq!(looks(15.0).len(), 8);
        assert_eq!(looks(0.2), vec![0.25]);
    }
}
