//! `server.*` SLOs in a capacity step: the searched workload's servers are scraped when the
//! step's judged part starts and every half second after, and each SLO is read from the
//! increase since that start with the evaluation's own reading ([`read::value`]).
//!
//! The evidence: a quantile bound on a server histogram is judged from the observations
//! the buckets place beyond it, bracketed where the bound falls between bucket edges: it
//! holds when even the most that can be beyond would pass, and misses when even the fewest
//! would fail. A counter's rate is judged as a Poisson count. Other server statistics (a
//! gauge's maximum, a histogram's mean) have no sampling rule and are decided by their value
//! at the step's end.

use std::collections::BTreeMap;

use super::{SloReading, Verdict};
use crate::plan::StopCondition;
use crate::probe::server::family::Snapshot;
use crate::probe::server::{add_increase, read, ServerPhase};
use crate::stats::evidence::{quantile_decision, rate_decision, Decision, QuantileSamples};

/// What the servers showed over the judged part of a step (so far), or over pooled steps.
#[derive(Debug, Default, Clone)]
pub(super) struct ServerSeen {
    /// Per server (and per pooled step): the increase since the start.
    pub parts: Vec<ServerPhase>,
    /// Each gauge's points, one per scrape since the start, over every server.
    pub gauges: BTreeMap<String, Vec<f64>>,
}

impl ServerSeen {
    pub fn add(&mut self, o: &ServerSeen) {
        self.parts.extend(o.parts.iter().cloned());
        for (k, v) in &o.gauges {
            self.gauges.entry(k.clone()).or_default().extend(v);
        }
    }

    fn value(&self, slo: &StopCondition, secs: f64) -> Option<f64> {
        if read::GAUGES.contains(&slo.metric) {
            let points = self.gauges.get(slo.metric)?.clone();
            return read::points_stat(points, slo.aggregation.as_deref().unwrap_or("mean"));
        }
        let parts: Vec<&ServerPhase> = self.parts.iter().collect();
        read::value(&parts, slo.metric, slo.aggregation.as_deref(), secs)
    }

    /// A quantile bound's observations, and the fewest and most of them beyond it.
    fn quantile_counts(&self, slo: &StopCondition) -> Option<(f64, f64, f64, f64)> {
        let q = crate::dsl::metrics::percentile(slo.aggregation.as_deref()?)?;
        let parts: Vec<&ServerPhase> = self.parts.iter().collect();
        let h = read::histogram(&parts, slo.metric)?;
        let (fewest, most) = read::beyond_bounds(&h, slo.op, slo.value)?;
        Some((q, h.count, fewest, most))
    }

    /// An SLO's binomial counts for the design effect, as (observations, most beyond).
    pub fn counts(&self, slo: &StopCondition) -> Option<(u64, u64)> {
        self.quantile_counts(slo).map(|(_, n, _, most)| (n.round() as u64, most.round() as u64))
    }
}

/// The scrapes of one step: the snapshots at its judged start and the increases since.
pub(super) struct Track {
    base: Vec<Option<Snapshot>>,
    pub seen: ServerSeen,
    /// Each SLO's counts at the previous scrape.
    last: Vec<(u64, u64)>,
}

impl Track {
    pub fn new(base: Vec<Option<Snapshot>>, slos: usize) -> Track {
        Track { base, seen: ServerSeen::default(), last: vec![(0, 0); slos] }
    }

    /// Takes a scrape in: the increases since the start, the gauges, and for each server
    /// SLO its counts since the previous scrape, added to its `batches` (the design
    /// effect's).
    pub fn update(&mut self, now: &[Option<Snapshot>], slos: &[StopCondition], batches: &mut [Vec<(u64, u64)>]) {
        let mut parts = vec![];
        for (base, now) in self.base.iter().zip(now) {
            if let (Some(b), Some(n)) = (base, now) {
                let mut p = ServerPhase::default();
                add_increase(&mut p, b, n);
                parts.push(p);
            }
            for (name, v) in now.iter().flat_map(|n| &n.gauges) {
                self.seen.gauges.entry(name.clone()).or_default().push(*v);
            }
        }
        self.seen.parts = parts;
        for ((slo, last), list) in slos.iter().zip(self.last.iter_mut()).zip(batches.iter_mut()) {
            if let Some(c) = slo.server.then(|| self.seen.counts(slo)).flatten() {
                list.push((c.0.saturating_sub(last.0), c.1.saturating_sub(last.1)));
                *last = c;
            }
        }
    }
}

/// A `server.*` SLO read over `seen` (`secs` seconds) at confidence `conf`, with the design
/// effect `deff`; `last` decides an SLO without a sampling rule by its value.
pub(super) fn reading(
    slo: &StopCondition,
    seen: &ServerSeen,
    secs: f64,
    conf: f64,
    deff: f64,
    last: bool,
) -> SloReading {
    let measured = seen.value(slo, secs);
    let thin = |x: f64| (x / deff.max(1.0)).round() as u64;
    let quantile = seen.quantile_counts(slo);
    let decision = match (&quantile, slo.aggregation.as_deref()) {
        (&Some((q, n, fewest, most)), _) => {
            let decide =
                |beyond| quantile_decision(&QuantileSamples { n: thin(n), beyond: thin(beyond) }, q, slo.op, conf);
            match (decide(most), decide(fewest)) {
                (Decision::Holds, _) => Some(Decision::Holds),
                (_, Decision::Missed) => Some(Decision::Missed),
                _ => Some(Decision::Undecided),
            }
        }
        (None, Some("rate")) if secs > 0.0 && !read::GAUGES.contains(&slo.metric) => {
            let parts: Vec<&ServerPhase> = seen.parts.iter().collect();
            read::counter(&parts, slo.metric).map(|k| rate_decision(k.round() as u64, secs, slo.value, slo.op, conf))
        }
        _ => None,
    };
    let verdict = match (decision, measured) {
        (Some(Decision::Holds), _) => Verdict::Holds,
        (Some(Decision::Missed), _) => Verdict::Missed,
        (None, Some(x)) if last => {
            if slo.holds(x) {
                Verdict::Holds
            } else {
                Verdict::Missed
            }
        }
        _ => Verdict::Undecided,
    };
    let margin = match quantile {
        Some((q, n, fewest, most)) if n > 0.0 => Some((fewest + most) / 2.0 / n / (1.0 - q)),
        Some(_) => None,
        None => measured.and_then(|x| super::step::margin(slo, None, x)),
    };
    SloReading {
        slo: slo.text.clone(),
        bound: slo.value,
        seconds: slo.aggregation.as_deref() != Some("count")
            && (crate::dsl::metrics::SERVER.iter())
                .any(|m| m.name == slo.metric && m.unit == crate::dsl::metrics::Unit::Duration),
        verdict,
        measured,
        low: None,
        high: None,
        margin,
    }
}
