//! The events the dashboard page draws from, as JSON. The live view streams them over SSE as
//! the run goes; `report.html` embeds the same events rebuilt from the result document, and
//! the page's one renderer replays them. Both sides build each event with the functions here,
//! so a chart of the report is the chart the live page showed at the end of the run.

use serde_json::{json, Value};

use crate::evaluate::{Evaluation, Outcome, Status};
use crate::measure::record::WindowSummary;
use crate::result::{ConfigDoc, ResultDoc, WorkloadDoc};

/// The run's frame: workloads, planned phases and each expectation's bound as a threshold
/// the charts draw (values in base units: seconds, per second, fractions, bytes).
pub fn scenario_event(name: &str, description: Option<&str>, config: &ConfigDoc) -> Value {
    let workloads: Vec<Value> = config.workloads.iter().map(|w| json!({"name": w.name, "kind": w.kind})).collect();
    let phases: Vec<Value> = config
        .phases
        .iter()
        .map(|p| {
            let drives: Vec<&str> = p.drives.iter().map(|d| d.workload.as_str()).collect();
            json!({"name": p.name, "role": p.role, "start_s": p.start_s(), "planned_s": p.max_duration_s(),
                   "workloads": drives})
        })
        .collect();
    let thresholds: Vec<Value> = config
        .expectations
        .iter()
        .filter(|e| e.base.value.is_some() && e.window.is_none())
        .map(|e| {
            json!({"name": e.name, "text": e.text, "subject": e.subject, "probe": e.subject_is_probe,
                   "metric": e.metric, "aggregation": e.aggregation, "op": e.base.op,
                   "value": e.base.value, "phase": e.phase})
        })
        .collect();
    json!({"type": "scenario", "name": name, "description": description, "workloads": workloads,
           "phases": phases, "thresholds": thresholds})
}

pub fn phase_event(index: usize, name: &str, role: &str, t: f64, planned_s: Option<f64>) -> Value {
    json!({"type": "phase", "index": index, "name": name, "role": role, "t": t, "planned_s": planned_s})
}

pub fn phase_end_event(name: &str, t: f64, stopped_by: &str) -> Value {
    json!({"type": "phase_end", "name": name, "t": t, "stopped_by": stopped_by})
}

/// One closed window of a workload; `t` is run seconds at the window's end and `w` the
/// window's summary as the result document's `series` records it.
pub fn window_event(phase: &str, workload: &str, t: f64, w: &WindowSummary) -> Value {
    json!({"type": "window", "phase": phase, "workload": workload, "t": t, "w": w})
}

/// A workload's totals over one phase (a result document's `phases[].workloads.NAME`, or
/// the live totals at the phase's end).
pub fn phase_summary_event(phase: &str, workload: &str, w: &WorkloadDoc) -> Value {
    let m = |metric: &str, q: fn(&crate::stats::DistSummary) -> f64| w.metric(metric).map(q);
    json!({"type": "phase_summary", "phase": phase, "workload": workload,
           "requests": w.requests, "errors": w.errors, "throughput": w.throughput,
           "tok_s": w.tok_s, "duration_s": w.duration_s,
           "p50": m("latency", |s| s.p50), "p95": m("latency", |s| s.p95), "p99": m("latency", |s| s.p99),
           "ttft_p95": m("ttft", |s| s.p95), "itl_p95": m("itl", |s| s.p95)})
}

pub fn probe_event(probe: &str, series: &str, unit: &str, points: &[(f64, f64)]) -> Value {
    json!({"type": "probe", "probe": probe, "series": series, "unit": unit, "points": points})
}

/// The word the page shows for an expectation: `pass`, `at_risk` (the samples do not decide
/// it yet), `fail`, `warn` (failed, severity warn) or `skipped`.
pub fn live_status(o: &Outcome) -> &'static str {
    match o.status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Insufficient => "at_risk",
        Status::Skipped => "skipped",
    }
}

/// Each expectation's status; `final_` when it is the run's verdict rather than a live view.
pub fn status_event(t: f64, outcomes: &[Outcome], final_: bool) -> Value {
    let list: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({"name": o.name, "text": o.text, "status": live_status(o), "severity": o.severity,
                   "measured": o.measured_text, "message": o.message, "samples": o.samples})
        })
        .collect();
    json!({"type": "status", "t": t, "final": final_, "expectations": list})
}

pub fn end_event(t: f64, status: &str, verdict: Option<&str>) -> Value {
    json!({"type": "end", "t": t, "status": status, "verdict": verdict})
}

/// The latency spectrum of a workload over the measured phases (quantile, milliseconds).
fn spectrum_event(name: &str, w: &WorkloadDoc) -> Option<Value> {
    let h = w.histogram("latency")?;
    let qs = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0];
    let points: Vec<(f64, f64)> = qs.iter().map(|&q| (q, h.value_at_quantile(q) as f64 / 1e9)).collect();
    Some(json!({"type": "spectrum", "workload": name, "points": points}))
}

/// The latency spectrum of every workload of a finished run.
pub fn spectra(doc: &ResultDoc) -> Vec<Value> {
    doc.benchmarks.iter().filter_map(|(name, w)| spectrum_event(name, w)).collect()
}

/// A capacity search's step: its load, verdict and SLO readings (the load charts).
pub fn search_event(workload: &str, step: &crate::engine::capacity::SearchStep) -> Value {
    json!({"type": "search", "workload": workload, "step": step})
}

/// A capacity search's answer (marked on the load charts).
pub fn capacity_event(s: &crate::engine::capacity::SearchOutcome) -> Value {
    json!({"type": "capacity", "workload": s.workload, "over": s.over, "capacity": s.capacity,
        "low": s.low, "high": s.high, "exact": s.exact, "binding_slo": s.binding_slo})
}

/// The events of a finished run, rebuilt from its result document (the static report).
pub fn from_doc(doc: &ResultDoc, ev: &Evaluation) -> Vec<Value> {
    let mut out = vec![scenario_event(&doc.scenario.name, doc.scenario.description.as_deref(), &doc.config)];
    for (i, p) in doc.phases.iter().enumerate() {
        let (name, start, dur) = (p.name.as_str(), p.started_s, p.duration_s);
        out.push(phase_event(i, name, p.role.as_str(), start, Some(dur)));
        for (w, wd) in &p.workloads {
            for win in &wd.series {
                out.push(window_event(name, w, start + win.start_s + win.seconds, win));
            }
        }
        out.push(phase_end_event(name, start + dur, &p.stopped_by));
        for (w, wd) in &p.workloads {
            out.push(phase_summary_event(name, w, wd));
        }
    }
    for (probe, pr) in &doc.probes {
        for (series, s) in pr.series.iter().filter(|(n, _)| !n.starts_with("cpu_core")) {
            out.push(probe_event(probe, series, &s.unit, &s.points));
        }
    }
    // The scraped servers' gauges, drawn as the live page drew them.
    for sv in &doc.servers {
        for name in crate::probe::server::LIVE_GAUGES {
            if let Some(s) = sv.series.get(*name) {
                out.push(probe_event("server", name, &s.unit, &s.points));
            }
        }
    }
    out.extend(spectra(doc));
    if let Some(c) = &doc.capacity {
        out.extend(c.steps.iter().map(|s| search_event(&c.workload, s)));
        out.push(capacity_event(c));
    }
    let end = doc.duration_s;
    let alerts = doc.dashboard.as_ref().and_then(|d| d.get("alerts")).and_then(Value::as_array);
    for a in alerts.into_iter().flatten() {
        let mut a = a.clone();
        a["type"] = "alert".into();
        out.push(a);
    }
    out.push(status_event(end, &ev.outcomes, true));
    out.push(end_event(end, doc.status.as_str(), Some(ev.verdict)));
    out
}

/// JSON that is safe inside an HTML `<script>` element: `<`, `>`, `&` and the two line
/// separators JavaScript treats as newlines are written as escapes.
pub fn embed<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let s = serde_json::to_string(v).expect("events serialise: their maps have string keys");
    let mut out = String::with_capacity(s.len() + 64);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script() {
        let v = json!({"name": "</script><script>alert(1)</script> & \u{2028}"});
        let s = embed(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v, "the escapes decode to the same text");
    }
}
