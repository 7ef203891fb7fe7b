//! Reading an expectation's measured value from a result document: workload histograms and
//! counters (whole run or one phase), 1-second window series for windowed expectations, and
//! probe series.

use crate::dsl::model::Comparison;
use crate::dsl::units::{trim_float, Bytes, Duration};
use crate::measure::record::{Counters, Hists, WindowSummary};
use crate::measure::statistic;
use crate::probe::SeriesOut;
use crate::result::sections::UnitDoc;
use crate::result::{ExpectationSpec, PhaseDoc, ResultDoc, WorkloadDoc};

/// A measured value in base units, its text in the bound's unit, and what it rests on.
#[derive(Debug, Clone)]
pub struct Measured {
    pub value: f64,
    pub text: String,
    /// Samples behind a distribution statistic.
    pub samples: Option<u64>,
    /// Windowed: (windows that met the bound, windows).
    pub windows: Option<(usize, usize)>,
    /// What a confidence statement about the value can rest on.
    pub basis: Option<Basis>,
}

pub use crate::measure::evidence::Basis;

/// Text of a base-unit value in the unit the expectation's metric is measured in.
pub fn text(unit: &UnitDoc, share: bool, x: f64) -> String {
    match unit {
        UnitDoc::Duration => Duration::from_secs_f64(x.max(0.0)).to_string(),
        UnitDoc::Rate => format!("{}/s", trim_float(x)),
        UnitDoc::Ratio => format!("{}%", trim_float(x * 100.0)),
        UnitDoc::Bytes => Bytes(x.max(0.0) as u64).to_string(),
        UnitDoc::BytesOrShare if share => format!("{}%", trim_float(x * 100.0)),
        UnitDoc::BytesOrShare => Bytes(x.max(0.0) as u64).to_string(),
        UnitDoc::Number(u) => format!("{} {u}", trim_float(x)),
        UnitDoc::Count => trim_float(x),
    }
}

/// Histograms, counters and seconds of workload records in the result, merged.
fn records(ws: &[&WorkloadDoc]) -> (Hists, Counters, f64) {
    let mut acc = (Hists::default(), Counters::default(), 0.0);
    for w in ws {
        let (h, c, secs) = w.record();
        acc.0.add(&h);
        acc.1.add(&c);
        acc.2 += secs;
    }
    acc
}

pub fn measure(doc: &ResultDoc, spec: &ExpectationSpec) -> Option<Measured> {
    let (unit, share) = (&spec.unit, spec.base.share);
    // A single value with nothing behind it for a confidence statement.
    let point =
        |value: f64| Measured { value, text: text(unit, share, value), samples: None, windows: None, basis: None };
    let (subject, metric) = (spec.subject.as_str(), spec.metric.as_str());
    let agg = spec.aggregation.as_deref();
    let phase_name = spec.phase.as_deref();
    if spec.subject_is_probe {
        let mut m = probe(doc, subject, metric, agg, phase_name, share).map(point)?;
        // A server's percentiles come from its own buckets, not from samples.
        if subject == "server" && matches!(metric, "ttft" | "e2e" | "itl") && agg.is_some_and(|a| a != "count") {
            m.text += " (interpolated from the server's buckets)";
        }
        return Some(m);
    }
    if let Some(w) = spec.window_s() {
        return windowed(doc, spec, w);
    }
    let ws: Vec<&WorkloadDoc> = match phase_name {
        Some(p) => doc.phases_of(Some(p))?.into_iter().filter_map(|ph| ph.workloads.get(subject)).collect(),
        None => vec![doc.benchmarks.get(subject)?],
    };
    if ws.is_empty() {
        return None;
    }
    // The setup's facts, read once: a value measured before the phases, or derived below.
    let facts = doc.benchmarks.get(subject).map(WorkloadDoc::facts).unwrap_or_default();
    if let Some(value) = facts.values.get(metric).copied().or_else(|| breaking_point(doc, subject, metric)) {
        return Some(point(value));
    }
    let (h, c, secs) = records(&ws);
    if matches!(metric, "energy_per_token" | "energy_per_query") {
        let value = energy_per(doc, metric, phase_name, &c)?;
        return Some(point(value));
    }
    // A metric derived from the mean of a declared measure (a kernel's GB/s from its declared
    // bytes and mean device time).
    let mean = |of: &str| h.named(of).filter(|(h, _)| !h.is_empty()).map(|(h, scale)| h.mean() / scale);
    if let Some(value) = facts.derived(metric, mean) {
        return Some(point(value));
    }
    let k = spec.spike_k.unwrap_or(3.0);
    let value = statistic::value(metric, agg, &h, &c, secs, k)?;
    let samples = h.named(metric).map(|(h, _)| h.len());
    let basis = crate::measure::evidence::basis(metric, agg, &h, &c, secs);
    Some(Measured { value, text: text(unit, share, value), samples, windows: None, basis })
}

/// Joules the energy probe counted between `start` and `start + len` (seconds of the run):
/// the rise of its cumulative series over the samples inside the window.
fn energy_between(doc: &ResultDoc, start: f64, len: f64) -> Option<f64> {
    let inside = points_within(doc.probe_series("energy", "total")?, start, len);
    Some(inside.last()? - inside.first()?)
}

/// The values of a probe series sampled between `start` and `start + len` (run seconds).
fn points_within(series: &SeriesOut, start: f64, len: f64) -> Vec<f64> {
    series.points.iter().filter(|(t, _)| *t >= start && *t <= start + len).map(|(_, v)| *v).collect()
}

/// Energy per output token or per query: the energy counted during the record's phases
/// divided by the tokens or queries.
fn energy_per(doc: &ResultDoc, metric: &str, phase_name: Option<&str>, c: &Counters) -> Option<f64> {
    let joules: f64 = phases_energy(doc, &doc.phases_of(phase_name)?);
    let n = if metric == "energy_per_token" { c.output_tokens } else { c.requests - c.errors };
    (n > 0 && joules > 0.0).then(|| joules / n as f64)
}

/// Joules the energy probe counted during `phases`.
fn phases_energy(doc: &ResultDoc, phases: &[&PhaseDoc]) -> f64 {
    phases.iter().filter_map(|p| energy_between(doc, p.started_s, p.duration_s)).sum()
}

/// Joules counted during the measured phases `workload` ran in; `None` without an energy
/// source (the inherited summary's `energy_consumption_joules`).
pub fn workload_energy(doc: &ResultDoc, workload: &str) -> Option<f64> {
    let per_phase: Vec<f64> = doc
        .measured_phases()
        .filter(|p| p.workloads.contains_key(workload))
        .filter_map(|p| energy_between(doc, p.started_s, p.duration_s))
        .collect();
    (!per_phase.is_empty()).then(|| per_phase.iter().sum())
}

/// The capacity search's answer on the workload (0 when even its lowest load missed):
/// `capacity` for either search, `max_sustainable_load` for a rate search.
fn breaking_point(doc: &ResultDoc, subject: &str, metric: &str) -> Option<f64> {
    let Some(s) = doc.capacity.as_ref().filter(|s| s.workload == subject) else {
        // A result an earlier version wrote has only the breaking point's inherited view.
        let st = doc.stress_test.as_ref().filter(|s| metric == "max_sustainable_load" && s.workload == subject)?;
        return Some(st.max_sustainable_load.unwrap_or(0.0));
    };
    match metric {
        "capacity" => Some(s.capacity.unwrap_or(0.0)),
        "max_sustainable_load" if s.over == "rate" => Some(s.capacity.unwrap_or(0.0)),
        _ => None,
    }
}

/// Whether a windowed metric is a rate or count (judged over the window's real length).
fn is_rate(metric: &str, agg: Option<&str>) -> bool {
    matches!(metric, "throughput" | "tok_s" | "requests" | "errors" | "dropped" | "unsent") || agg == Some("rate")
}

/// One window's value of a distribution statistic in base units (seconds, tok/s, fraction).
fn window_stat(w: &WindowSummary, metric: &str, agg: Option<&str>) -> Option<f64> {
    let s = w.metrics.get(metric)?;
    match agg.unwrap_or("mean") {
        "mean" => Some(s.mean),
        "p50" => Some(s.p50),
        "p90" => Some(s.p90),
        "p95" => Some(s.p95),
        "p99" => Some(s.p99),
        "max" => Some(s.max),
        "count" => Some(s.count as f64),
        _ => None,
    }
}

/// A window counter by the metric's name.
fn window_count(w: &WindowSummary, metric: &str) -> f64 {
    (match metric {
        "requests" => w.requests,
        "errors" => w.errors,
        "dropped" => w.dropped,
        "unsent" => w.unsent,
        _ => 0,
    }) as f64
}

/// One group of windows' value: a rate over its real length, a count, or the worst of its
/// windows' statistics; `None` when the group does not count.
fn group_value(chunk: &[WindowSummary], metric: &str, agg: Option<&str>, length: f64) -> Option<f64> {
    let secs: f64 = chunk.iter().map(|w| w.seconds).sum();
    let sum = |m: &str| chunk.iter().map(|w| window_count(w, m)).sum::<f64>();
    let rate = is_rate(metric, agg);
    if rate || metric == "error_rate" {
        if rate && secs < 0.5 * length {
            return None;
        }
        return match metric {
            "throughput" => Some((sum("requests") - sum("errors")) / secs),
            "tok_s" => Some(chunk.iter().map(|w| w.tok_s * w.seconds).sum::<f64>() / secs),
            "error_rate" if sum("requests") > 0.0 => Some(sum("errors") / sum("requests")),
            "error_rate" => None,
            m if agg == Some("rate") => Some(sum(m) / secs),
            m => Some(sum(m)),
        };
    }
    let vals: Vec<f64> = chunk.iter().filter_map(|w| window_stat(w, metric, agg)).collect();
    if vals.is_empty() {
        return None;
    }
    Some(match agg {
        Some("min") => vals.iter().copied().fold(f64::INFINITY, f64::min),
        Some("mean") => vals.iter().sum::<f64>() / vals.len() as f64,
        _ => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Windowed expectations: the 1-second windows of each phase are grouped into windows of
/// the requested length. A group's rate is its events over its real length (the sum of its
/// windows' `seconds`); a group shorter than half the requested length (the end of a phase,
/// or the drain after it) is left out of rate and count expectations. A group's percentile
/// or maximum is the largest of its seconds' (an upper bound); its minimum the smallest.
fn windowed(doc: &ResultDoc, spec: &ExpectationSpec, length: f64) -> Option<Measured> {
    let (metric, agg) = (spec.metric.as_str(), spec.aggregation.as_deref());
    let mut groups: Vec<f64> = vec![];
    for p in doc.phases_of(spec.phase.as_deref())? {
        let Some(series) = p.workloads.get(&spec.subject).map(|w| &w.series) else { continue };
        let per = series.first().map_or(1.0, |w| w.seconds).max(1e-9);
        let k = ((length / per).round() as usize).max(1);
        groups.extend(series.chunks(k).filter_map(|chunk| group_value(chunk, metric, agg, length)));
    }
    if groups.is_empty() {
        return None;
    }
    let passed = groups.iter().filter(|v| super::holds(**v, &spec.base)).count();
    // The worst window is the lowest for a lower bound and the highest otherwise.
    let lower = matches!(spec.base.op, Some(Comparison::Gt | Comparison::Ge));
    let worst = if lower {
        groups.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        groups.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    let text = format!("{passed} of {} windows (worst {})", groups.len(), text(&spec.unit, spec.base.share, worst));
    Some(Measured {
        value: passed as f64 / groups.len() as f64,
        text,
        samples: None,
        windows: Some((passed, groups.len())),
        basis: None,
    })
}

/// A probe statistic: from the summary for the whole run, from the points within a phase.
fn probe(
    doc: &ResultDoc,
    kind: &str,
    metric: &str,
    agg: Option<&str>,
    phase_name: Option<&str>,
    share: bool,
) -> Option<f64> {
    if kind == "server" {
        return match metric {
            m if crate::probe::server::read::GAUGES.contains(&m) => crate::probe::server::read::points_stat(
                super::server::gauge_points(doc, metric, phase_name)?,
                agg.unwrap_or("mean"),
            ),
            _ => super::server::value(doc, metric, agg, phase_name),
        };
    }
    let probe = doc.probes.get(kind)?;
    let total = doc.system_info.memory_bytes as f64;
    let (series, scale) = match (kind, metric, share) {
        ("system", "memory", true) => ("memory_share", 1.0),
        ("process", "rss", true) if total > 0.0 => ("rss", 1.0 / total),
        (_, m, _) => (m, 1.0),
    };
    let s = probe.series.get(series)?;
    if kind == "energy" && metric == "total" {
        return match phase_name {
            Some(p) => doc.phases_of(Some(p))?.iter().map(|ph| energy_between(doc, ph.started_s, ph.duration_s)).sum(),
            None => Some(s.summary.last),
        };
    }
    let agg = agg.unwrap_or("mean");
    let v = match phase_name {
        None => s.summary.get(agg)?,
        Some(p) => {
            let mut vals = vec![];
            for ph in doc.phases_of(Some(p))? {
                vals.extend(points_within(s, ph.started_s, ph.duration_s));
            }
            crate::probe::server::read::points_stat(vals, agg)?
        }
    };
    Some(v * scale)
}
