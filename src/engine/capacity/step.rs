//! The engine's side of a capacity search: runs each load step, judges it at its looks, and
//! puts the steps together into the outcome.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::searcher::BATCH_S;
use super::server::{self, ServerSeen, Track};
use super::{looks, SearchOutcome, SearchStep, Searcher, SloReading, Stage, Tried, Verdict};
use crate::dsl::model::{LoadShape, SearchOver};
use crate::dsl::units::Rate;
use crate::engine::drive::{self, DriveCtx, Stop};
use crate::engine::events::RunEvent;
use crate::engine::executor::{Engine, WorkloadOutcome};
use crate::measure::evidence;
use crate::measure::record::{Counters, Hists, Recorded, Recorder};
use crate::measure::statistic;
use crate::plan::estimate::{search_level_seed, DEFAULT_MAX_IN_FLIGHT};
use crate::plan::{PlannedPhase, PlannedSearch, SearchSpec, StopCondition};
use crate::stats::evidence::Decision;

/// What the last look of a step saw.
#[derive(Default)]
struct Reading {
    slos: Vec<SloReading>,
    verdict: Verdict,
    settled: Option<f64>,
    judged: Judged,
}

/// The samples a step was judged on (after its settling time), kept so that steps can be
/// pooled: its record's increase, the seconds it covers, and each SLO's binomial counts
/// per batch.
#[derive(Default)]
struct Judged {
    counters: Counters,
    hists: Hists,
    secs: f64,
    batches: Vec<Vec<(u64, u64)>>,
    server: ServerSeen,
}

/// The verdict of the steps `idx` pooled, at confidence `conf`. An SLO read from binomial
/// counts takes the pool's design effect: each step's own, weighted by its binomial
/// variance (steps at different loads differ in their share, which must not read as
/// clumping).
fn pooled(judged: &[Judged], idx: &[usize], slos: &[StopCondition], conf: f64) -> Verdict {
    let (mut h, mut c, mut secs, mut server) = (Hists::default(), Counters::default(), 0.0, ServerSeen::default());
    for &i in idx {
        h.add(&judged[i].hists);
        c.add(&judged[i].counters);
        server.add(&judged[i].server);
        secs += judged[i].secs;
    }
    let deffs: Vec<f64> = (0..slos.len())
        .map(|k| {
            let (mut deff_var, mut n, mut e) = (0.0, 0.0, 0.0);
            for &i in idx {
                let b = judged[i].batches.get(k).map(Vec::as_slice).unwrap_or_default();
                let (ni, ei) = b.iter().fold((0.0, 0.0), |a, x| (a.0 + x.0 as f64, a.1 + x.1 as f64));
                if ni > 0.0 {
                    deff_var += ei * (1.0 - ei / ni) * evidence::design_effect(b);
                }
                n += ni;
                e += ei;
            }
            let all = if n > 0.0 { e * (1.0 - e / n) } else { 0.0 };
            if all > 0.0 {
                (deff_var / all).max(1.0)
            } else {
                1.0
            }
        })
        .collect();
    verdict(&read(slos, (&h, &c, &server), secs, conf, &deffs, false), &c)
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
pub(super) fn margin(c: &StopCondition, basis: Option<&evidence::Basis>, x: f64) -> Option<f64> {
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
    (h, c, server): (&Hists, &Counters, &ServerSeen),
    secs: f64,
    conf: f64,
    deffs: &[f64],
    last: bool,
) -> Vec<SloReading> {
    slos.iter()
        .zip(deffs)
        .map(|(s, &deff)| {
            if s.server {
                return server::reading(s, server, secs, conf, deff, last);
            }
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
    pub(in crate::engine) async fn search(
        &mut self,
        index: usize,
        phase: &PlannedPhase,
        search: &PlannedSearch,
    ) -> (Vec<WorkloadOutcome>, String, Option<SearchOutcome>) {
        let (s, workload) = (&search.spec, &search.workload);
        let searcher = Searcher::of(s);
        let started = Instant::now();
        let deadline = s.max_time.map(|t| started + t.as_std());
        let (mut steps, mut tried, mut records, mut judged) = (vec![], vec![], vec![], vec![]);
        let conf = s.confidence;
        let pool_of = |judged: &[Judged], idx: &[usize], tests: usize| {
            pooled(judged, idx, &s.slos, 1.0 - (1.0 - conf) / tests.max(1) as f64)
        };
        let why: String = loop {
            let next = searcher.next(&tried, &|idx: &[usize], t: usize| pool_of(&judged, idx, t));
            let (load, stage) = match next {
                Ok(x) => x,
                Err(why) => break why.into(),
            };
            let judged_s = match stage {
                Stage::Grow => s.step.as_secs_f64().min((s.step.as_secs_f64() / 3.0).max(2.0)),
                Stage::Narrow | Stage::Confirm => s.step.as_secs_f64(),
            };
            if self.interrupt.is_set() {
                break self.stop_reason().into();
            }
            if deadline.is_some_and(|d| Instant::now() + s.step_max().as_std() > d) {
                break "max-time".into();
            }
            let (step, rec, seen) = self.step(index, tried.len() as u32, phase, workload, s, (load, judged_s)).await;
            self.reporter.event(&RunEvent::SearchStep { workload: workload.clone(), step: step.clone() });
            tried.push(Tried { load, verdict: step.verdict, margin: step.margin() });
            steps.push(step);
            records.push(rec);
            judged.push(seen);
        };
        let why = match why.as_str() {
            "interrupted" | "run-limit" => why,
            _ => format!("search: {why}"),
        };
        let answer = searcher.answer(&tried, &|idx: &[usize], t: usize| pool_of(&judged, idx, t));
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
    ) -> (SearchStep, Recorded, Judged) {
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
        let reading = self.judge(&rec, start + s.settle.as_std(), judged_s, s, workload).await;
        stop.set();
        let recorders: BTreeMap<String, Arc<Recorder>> = [(workload.to_string(), rec.clone())].into();
        self.drain(phase, &recorders, vec![task]).await;
        let mut recorded = rec.finish(Instant::now());
        recorded.counters.sent = ctx_sent.dispatched.load(Ordering::Relaxed);
        recorded.counters.late_sent = ctx_sent.late_dispatches.load(Ordering::Relaxed);
        let Reading { slos, verdict, settled, judged } = reading;
        let (c, h, secs) = (&judged.counters, &judged.hists, judged.secs);
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
        (step, recorded, judged)
    }

    /// Judges a running step: from `from` on, takes the record's increase every batch
    /// (0.25 s) for the design effect (and scrapes the servers every other batch when an
    /// SLO reads them), and at each look applies the rule to everything since `from`; stops
    /// at the first settled look, the last look, or an interrupt.
    async fn judge(&mut self, rec: &Recorder, from: Instant, judged_s: f64, s: &SearchSpec, workload: &str) -> Reading {
        let mut reading = Reading::default();
        if !self.wait_until(from, rec).await {
            return reading;
        }
        let mut track = match s.slos.iter().any(|c| c.server) {
            true => Some(Track::new(self.peek(workload).await, s.slos.len())),
            false => None,
        };
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
            for (slo, list) in s.slos.iter().zip(batches.iter_mut()).filter(|(slo, _)| !slo.server) {
                list.extend(batch_counts(slo, &bh, &bc, BATCH_S));
            }
            prev = now;
            let last = !woke || next + 1 == looks.len();
            let look = last || t + 1e-9 >= looks[next];
            if let Some(tr) = track.as_mut().filter(|_| look || i % 2 == 0) {
                tr.update(&self.peek(workload).await, &s.slos, &mut batches);
            }
            if !look {
                continue;
            }
            next += 1;
            let (mut h, mut c) = prev.clone();
            h.subtract(&base.0);
            c.subtract(&base.1);
            let secs = at.min(Instant::now()).saturating_duration_since(from).as_secs_f64();
            let server = track.as_ref().map(|t| t.seen.clone()).unwrap_or_default();
            let deffs: Vec<f64> = batches.iter().map(|b| evidence::design_effect(b)).collect();
            let slos = read(&s.slos, (&h, &c, &server), secs, conf, &deffs, last);
            let v = verdict(&slos, &c);
            reading = Reading {
                slos,
                verdict: v,
                settled: (v != Verdict::Undecided).then_some(secs),
                judged: Judged { counters: c, hists: h, secs, batches: batches.clone(), server },
            };
            if v != Verdict::Undecided || last {
                break;
            }
        }
        reading
    }

    /// Scrapes the servers `workload` sends to, now (none without scrapers).
    async fn peek(&self, workload: &str) -> Vec<Option<crate::probe::server::family::Snapshot>> {
        match &self.scrapers {
            Some(s) => s.peek(workload).await,
            None => vec![],
        }
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
