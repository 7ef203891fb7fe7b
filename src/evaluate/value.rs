//! Reading an expectation's measured value from a result document: workload histograms and
//! counters (whole run or one phase), 1-second window series for windowed expectations, and
//! probe series.

use serde_json::Value;

use crate::dsl::metrics::{self, MetricDef, PerRequest};
use crate::dsl::model::WorkloadKind;
use crate::dsl::units::{trim_float, Bytes, Duration};
use crate::engine::measure;
use crate::engine::record::{Counters, Hists, Metric};
use crate::workload::Facts;

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

/// The data behind a measured value that the evidence rule can use.
#[derive(Debug, Clone)]
pub enum Basis {
    /// A quantile of a histogram whose recorded integers are base units times `scale`.
    Quantile { hist: hdrhistogram::Histogram<u64>, q: f64, scale: f64 },
    /// The mean of a histogram.
    Mean { hist: hdrhistogram::Histogram<u64>, scale: f64 },
    /// `events` of `trials` (an error share).
    Share { events: u64, trials: u64 },
    /// `events` over `secs` seconds (a rate).
    Count { events: u64, secs: f64 },
}

/// Text of a base-unit value in the unit the expectation's metric is measured in.
pub fn text(unit: &Value, share: bool, x: f64) -> String {
    match unit.as_str() {
        Some("duration") => Duration::from_secs_f64(x.max(0.0)).to_string(),
        Some("rate") => format!("{}/s", trim_float(x)),
        Some("ratio") => format!("{}%", trim_float(x * 100.0)),
        Some("bytes") => Bytes(x.max(0.0) as u64).to_string(),
        Some("bytes_or_share") if share => format!("{}%", trim_float(x * 100.0)),
        Some("bytes_or_share") => Bytes(x.max(0.0) as u64).to_string(),
        _ => match unit.get("number").and_then(Value::as_str) {
            Some(u) => format!("{} {u}", trim_float(x)),
            None => trim_float(x),
        },
    }
}

/// Every run of the named phase (one per repetition); `None` when it never ran.
fn phase<'a>(doc: &'a Value, name: &str) -> Option<Vec<&'a Value>> {
    let all: Vec<&Value> = doc["phases"].as_array()?.iter().filter(|p| p["name"] == name).collect();
    (!all.is_empty()).then_some(all)
}

/// Histograms, counters and seconds of workload records in the result, merged.
fn records(ws: &[&Value]) -> (Hists, Counters, f64) {
    let mut acc = (Hists::default(), Counters::default(), 0.0);
    for w in ws {
        let (h, c, secs) = record(w);
        acc.0.add(&h);
        acc.1.add(&c);
        acc.2 += secs;
    }
    acc
}

/// The workload kind a record in the result names.
fn kind_of(w: &Value) -> Option<WorkloadKind> {
    WorkloadKind::from_name(w["kind"].as_str()?)
}

/// The setup facts of a whole-run workload record (empty when it has none).
pub fn facts_of(w: &Value) -> Facts {
    serde_json::from_value(w["facts"].clone()).unwrap_or_default()
}

/// Histograms, counters and seconds of one workload record in the result; the kind's
/// declared measures are read by their catalogue entries.
pub fn record(w: &Value) -> (Hists, Counters, f64) {
    let mut h = Hists::default();
    for m in Metric::ALL {
        if let Some(hist) = crate::result::histogram(w, m.name()) {
            h.set(m, hist);
        }
    }
    let declared: Vec<&'static MetricDef> = kind_of(w)
        .map(|k| metrics::workload_metrics(k, true).into_iter().filter(|m| m.per_request.is_some()).collect())
        .unwrap_or_default();
    let mut sums = std::collections::BTreeMap::new();
    for def in declared {
        match def.per_request {
            Some(PerRequest::Sum) => {
                if let Some(n) = w[def.name].as_u64() {
                    sums.insert(def.name, n);
                }
            }
            _ => {
                if let Some(hist) = crate::result::histogram(w, def.name) {
                    h.set_declared(def, hist);
                }
            }
        }
    }
    let n = |k: &str| w[k].as_u64().unwrap_or(0);
    let errors_by_kind = w["errors_by_kind"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    let c = Counters {
        requests: n("requests"),
        errors: n("errors"),
        errors_by_kind,
        dropped: n("dropped"),
        unsent: n("unsent"),
        sent: n("sent"),
        late_sent: n("late_sent"),
        output_tokens: n("output_tokens"),
        input_tokens: n("input_tokens"),
        prefill_ns: (w["prefill_s"].as_f64().unwrap_or(0.0) * 1e9) as u64,
        good: n("good_requests"),
        declared: sums,
    };
    (h, c, w["duration_s"].as_f64().unwrap_or(0.0))
}

pub fn measure(doc: &Value, spec: &Value) -> Option<Measured> {
    let unit = &spec["unit"];
    let share = spec["base"]["share"].as_bool().unwrap_or(false);
    // A single value with nothing behind it for a confidence statement.
    let point =
        |value: f64| Measured { value, text: text(unit, share, value), samples: None, windows: None, basis: None };
    let subject = spec["subject"].as_str()?;
    let metric = spec["metric"].as_str()?;
    let agg = spec["aggregation"].as_str();
    let phase_name = spec["phase"].as_str();
    if spec["subject_is_probe"].as_bool().unwrap_or(false) {
        return probe(doc, subject, metric, agg, phase_name, share).map(point);
    }
    if let Some(w) = spec["window"].as_str().and_then(|w| Duration::parse(w).ok()) {
        return windowed(doc, spec, subject, metric, agg, phase_name, w.as_secs_f64());
    }
    let ws: Vec<&Value> = match phase_name {
        Some(p) => phase(doc, p)?.into_iter().filter_map(|ph| ph.pointer(&format!("/workloads/{subject}"))).collect(),
        None => vec![doc.pointer(&format!("/benchmarks/{subject}"))?],
    };
    if ws.is_empty() {
        return None;
    }
    // The setup's facts, read once: a value measured before the phases, or derived below.
    let facts = doc.pointer(&format!("/benchmarks/{subject}")).map(facts_of).unwrap_or_default();
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
    let k = spec["spike_k"].as_f64().unwrap_or(3.0);
    let value = measure::value(metric, agg, &h, &c, secs, k)?;
    let hist = h.named(metric);
    let samples = hist.map(|(h, _)| h.len());
    let basis = match (hist, agg) {
        (Some((h, scale)), Some(a)) => match crate::dsl::metrics::percentile(a) {
            Some(q) => Some(Basis::Quantile { hist: h.clone(), q, scale }),
            None if a == "mean" => Some(Basis::Mean { hist: h.clone(), scale }),
            None => None,
        },
        (None, _) => match metric {
            "error_rate" => Some(Basis::Share { events: c.errors, trials: c.requests }),
            "throughput" => Some(Basis::Count { events: c.requests - c.errors, secs }),
            "goodput" => Some(Basis::Count { events: c.good, secs }),
            "requests" | "errors" | "dropped" | "unsent" if agg == Some("rate") => {
                let events = match metric {
                    "requests" => c.requests,
                    "errors" => c.errors,
                    "unsent" => c.unsent,
                    _ => c.dropped,
                };
                Some(Basis::Count { events, secs })
            }
            _ => None,
        },
        _ => None,
    };
    Some(Measured { value, text: text(unit, share, value), samples, windows: None, basis })
}

/// Joules the energy probe counted between `start` and `start + len` (seconds of the run):
/// the rise of its cumulative series over the samples inside the window.
fn energy_between(doc: &Value, start: f64, len: f64) -> Option<f64> {
    let inside = points_within(doc.pointer("/probes/energy/series/total")?, start, len)?;
    Some(inside.last()? - inside.first()?)
}

/// The values of a probe series sampled between `start` and `start + len` (run seconds).
fn points_within(series: &Value, start: f64, len: f64) -> Option<Vec<f64>> {
    Some(
        series["points"]
            .as_array()?
            .iter()
            .filter_map(|pt| Some((pt[0].as_f64()?, pt[1].as_f64()?)))
            .filter(|(t, _)| *t >= start && *t <= start + len)
            .map(|(_, v)| v)
            .collect(),
    )
}

/// The named phase, or every measured phase.
fn phases_of<'a>(doc: &'a Value, phase_name: Option<&str>) -> Option<Vec<&'a Value>> {
    Some(match phase_name {
        Some(p) => phase(doc, p)?,
        None => doc["phases"].as_array()?.iter().filter(|p| p["role"] == "measure").collect(),
    })
}

/// Energy per output token or per query: the energy counted during the record's phases
/// divided by the tokens or queries.
fn energy_per(doc: &Value, metric: &str, phase_name: Option<&str>, c: &Counters) -> Option<f64> {
    let joules: f64 = phases_energy(doc, &phases_of(doc, phase_name)?);
    let n = if metric == "energy_per_token" { c.output_tokens } else { c.requests - c.errors };
    (n > 0 && joules > 0.0).then(|| joules / n as f64)
}

/// Joules the energy probe counted during `phases`.
fn phases_energy(doc: &Value, phases: &[&Value]) -> f64 {
    phases.iter().filter_map(|p| energy_between(doc, p["started_s"].as_f64()?, p["duration_s"].as_f64()?)).sum()
}

/// Joules counted during the measured phases `workload` ran in; `None` without an energy
/// source (the inherited summary's `energy_consumption_joules`).
pub fn workload_energy(doc: &Value, workload: &str) -> Option<f64> {
    let per_phase: Vec<f64> = phases_of(doc, None)?
        .into_iter()
        .filter(|p| p.pointer(&format!("/workloads/{workload}")).is_some())
        .filter_map(|p| energy_between(doc, p["started_s"].as_f64()?, p["duration_s"].as_f64()?))
        .collect();
    (!per_phase.is_empty()).then(|| per_phase.iter().sum())
}

/// The highest stable rate of the breaking-point search on the workload (0 when none was).
fn breaking_point(doc: &Value, subject: &str, metric: &str) -> Option<f64> {
    let s = doc.get("stress_test").filter(|s| metric == "max_sustainable_load" && s["workload"] == subject)?;
    Some(s["max_sustainable_load"].as_f64().unwrap_or(0.0))
}

/// Whether a windowed metric is a rate or count (judged over the window's real length).
fn is_rate(metric: &str, agg: Option<&str>) -> bool {
    matches!(metric, "throughput" | "tok_s" | "requests" | "errors" | "dropped" | "unsent") || agg == Some("rate")
}

/// One window's value of a distribution statistic in base units (seconds, tok/s, fraction).
fn window_stat(w: &Value, metric: &str, agg: Option<&str>) -> Option<f64> {
    w.pointer(&format!("/metrics/{metric}/{}", agg.unwrap_or("mean")))?.as_f64()
}

/// Windowed expectations: the 1-second windows of each phase are grouped into windows of
/// the requested length. A group's rate is its events over its real length (the sum of its
/// windows' `seconds`); a group shorter than half the requested length (the end of a phase,
/// or the drain after it) is left out of rate and count expectations. A group's percentile
/// or maximum is the largest of its seconds' (an upper bound); its minimum the smallest.
fn windowed(
    doc: &Value,
    spec: &Value,
    subject: &str,
    metric: &str,
    agg: Option<&str>,
    phase_name: Option<&str>,
    length: f64,
) -> Option<Measured> {
    let phases = phases_of(doc, phase_name)?;
    let rate = is_rate(metric, agg);
    let mut groups: Vec<f64> = vec![];
    for p in phases {
        let Some(series) = p.pointer(&format!("/workloads/{subject}/series")).and_then(Value::as_array) else {
            continue;
        };
        let per = series.first().and_then(|w| w["seconds"].as_f64()).unwrap_or(1.0).max(1e-9);
        let k = ((length / per).round() as usize).max(1);
        for chunk in series.chunks(k) {
            let secs: f64 = chunk.iter().map(|w| w["seconds"].as_f64().unwrap_or(per)).sum();
            let sum = |key: &str| chunk.iter().map(|w| w[key].as_f64().unwrap_or(0.0)).sum::<f64>();
            let v = if rate || metric == "error_rate" {
                if rate && secs < 0.5 * length {
                    continue;
                }
                match metric {
                    "throughput" => (sum("requests") - sum("errors")) / secs,
                    "tok_s" => {
                        chunk
                            .iter()
                            .map(|w| w["tok_s"].as_f64().unwrap_or(0.0) * w["seconds"].as_f64().unwrap_or(per))
                            .sum::<f64>()
                            / secs
                    }
                    "error_rate" if sum("requests") > 0.0 => sum("errors") / sum("requests"),
                    "error_rate" => continue,
                    m if agg == Some("rate") => sum(m) / secs,
                    m => sum(m),
                }
            } else {
                let vals: Vec<f64> = chunk.iter().filter_map(|w| window_stat(w, metric, agg)).collect();
                if vals.is_empty() {
                    continue;
                }
                match agg {
                    Some("min") => vals.iter().copied().fold(f64::INFINITY, f64::min),
                    Some("mean") => vals.iter().sum::<f64>() / vals.len() as f64,
                    _ => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                }
            };
            groups.push(v);
        }
    }
    if groups.is_empty() {
        return None;
    }
    let passed = groups.iter().filter(|v| super::holds(**v, &spec["base"])).count();
    // The worst window is the lowest for a lower bound and the highest otherwise.
    let lower = matches!(spec.pointer("/base/op").and_then(Value::as_str), Some(">" | ">="));
    let worst = if lower {
        groups.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        groups.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    let share = spec["base"]["share"].as_bool().unwrap_or(false);
    let text = format!("{passed} of {} windows (worst {})", groups.len(), text(&spec["unit"], share, worst));
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
    doc: &Value,
    kind: &str,
    metric: &str,
    agg: Option<&str>,
    phase_name: Option<&str>,
    share: bool,
) -> Option<f64> {
    let probe = doc.pointer(&format!("/probes/{kind}"))?;
    let total = doc["system_info"]["memory_bytes"].as_f64().unwrap_or(0.0);
    let (series, scale) = match (kind, metric, share) {
        ("system", "memory", true) => ("memory_share", 1.0),
        ("process", "rss", true) if total > 0.0 => ("rss", 1.0 / total),
        (_, m, _) => (m, 1.0),
    };
    let s = probe.pointer(&format!("/series/{series}"))?;
    if kind == "energy" && metric == "total" {
        return match phase_name {
            Some(p) => phase(doc, p)?
                .iter()
                .map(|ph| energy_between(doc, ph["started_s"].as_f64()?, ph["duration_s"].as_f64()?))
                .sum(),
            None => s.pointer("/summary/last")?.as_f64(),
        };
    }
    let agg = agg.unwrap_or("mean");
    let v = match phase_name {
        None => s.pointer(&format!("/summary/{agg}"))?.as_f64()?,
        Some(p) => {
            let mut vals = vec![];
            for ph in phase(doc, p)? {
                vals.extend(points_within(s, ph["started_s"].as_f64()?, ph["duration_s"].as_f64()?)?);
            }
            if vals.is_empty() {
                return None;
            }
            vals.sort_by(f64::total_cmp);
            let q = |p: f64| vals[((p * vals.len() as f64).ceil() as usize).clamp(1, vals.len()) - 1];
            match agg {
                "min" => vals[0],
                "max" | "peak" => vals[vals.len() - 1],
                "last" => *vals.last()?,
                "mean" => vals.iter().sum::<f64>() / vals.len() as f64,
                p => q(crate::dsl::metrics::percentile(p)?),
            }
        }
    };
    Some(v * scale)
}
