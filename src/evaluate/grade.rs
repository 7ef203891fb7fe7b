//! Grading (share of weighted targets met) and recommendations mapped from what failed, with
//! the probe evidence that points at a cause.

use serde::Serialize;

use super::{Outcome, Status};
use crate::result::{ResultDoc, WorkloadDoc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Grade {
    Excellent,
    Good,
    Acceptable,
    Poor,
    /// No expectations.
    Ungraded,
}

impl Grade {
    /// EXCELLENT >= 90 %, GOOD 80-89 %, ACCEPTABLE 60-79 %, POOR < 60 %.
    pub fn of(score: f64) -> Grade {
        match score {
            s if s >= 0.9 => Grade::Excellent,
            s if s >= 0.8 => Grade::Good,
            s if s >= 0.6 => Grade::Acceptable,
            _ => Grade::Poor,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Excellent => "EXCELLENT",
            Grade::Good => "GOOD",
            Grade::Acceptable => "ACCEPTABLE",
            Grade::Poor => "POOR",
            Grade::Ungraded => "UNGRADED",
        }
    }
}

/// (weighted score, targets met, targets, grade). Every expectation is a target with its
/// weight; only a pass counts as met.
pub fn grade(outcomes: &[Outcome]) -> (f64, usize, usize, Grade) {
    let counted: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != Status::Skipped).collect();
    let outcomes = counted.as_slice();
    let total_w: f64 = outcomes.iter().map(|o| o.weight).sum();
    let met_w: f64 = outcomes.iter().filter(|o| o.status == Status::Pass).map(|o| o.weight).sum();
    let met = outcomes.iter().filter(|o| o.status == Status::Pass).count();
    if outcomes.is_empty() || total_w <= 0.0 {
        return (1.0, met, outcomes.len(), if outcomes.is_empty() { Grade::Ungraded } else { Grade::Excellent });
    }
    let score = met_w / total_w;
    (score, met, outcomes.len(), Grade::of(score))
}

fn probe_peak(doc: &ResultDoc, kind: &str, series: &str) -> Option<f64> {
    doc.probe_series(kind, series).map(|s| s.summary.peak)
}

/// What the probes say about throttling and memory pressure, when they say anything.
fn evidence(doc: &ResultDoc) -> Vec<String> {
    let mut e = vec![];
    if let Some(cpu) = probe_peak(doc, "system", "cpu").filter(|c| *c >= 0.9) {
        e.push(format!("system CPU peaked at {:.0}%", cpu * 100.0));
    }
    if let Some(m) = probe_peak(doc, "system", "memory_share").filter(|m| *m >= 0.85) {
        e.push(format!("memory in use peaked at {:.0}%", m * 100.0));
    }
    if let Some(sw) = probe_peak(doc, "system", "swap").filter(|s| *s > 0.0) {
        e.push(format!("{} MiB of swap in use", (sw / 1048576.0).round()));
    }
    e
}

/// The catalogue's advice for a missed bound on `subject.metric`: the workload kind's entry,
/// else the probe's.
fn advice_for(doc: &ResultDoc, subject: &str, metric: &str) -> Option<&'static str> {
    use crate::dsl::metrics::{probe_metrics, workload_metric};
    use crate::dsl::model::ProbeKind;
    match doc.benchmarks.get(subject).and_then(WorkloadDoc::kind) {
        Some(k) => workload_metric(k, metric)?.advice,
        None => probe_metrics(ProbeKind::from_name(subject)?).iter().find(|m| m.name == metric)?.advice,
    }
}

/// Advice for each metric that missed its target, without repeats.
pub fn recommendations(doc: &ResultDoc, outcomes: &[Outcome]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for o in outcomes.iter().filter(|o| o.status != Status::Pass) {
        let mut parts = o.selector.split('.');
        let (subject, metric) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let agg = o.selector.rsplit('.').next().unwrap_or("");
        if o.status == Status::Insufficient {
            push(format!("`{}`: run longer or at a higher rate ({}).", o.name, o.message));
            continue;
        }
        if agg.ends_with("spike_rate") {
            let ev = evidence(doc);
            let why = if ev.is_empty() { String::new() } else { format!(" Evidence: {}.", ev.join(", ")) };
            push(format!("{subject}: latency spikes; check CPU throttling and memory pressure, and isolate the service from other load.{why}"));
            continue;
        }
        let advice = match advice_for(doc, subject, metric) {
            Some(a) => a.to_string(),
            None => format!("`{}` missed its target ({})", o.name, o.message),
        };
        push(format!("{subject}: {advice}."));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(status: Status, weight: f64) -> Outcome {
        Outcome {
            name: "x".into(),
            selector: "w.latency.p95".into(),
            text: String::new(),
            phase: None,
            severity: "fail".into(),
            weight,
            status,
            measured: None,
            measured_text: String::new(),
            message: String::new(),
            samples: None,
            required_samples: None,
            evidence: None,
            origin: None,
        }
    }

    #[test]
    fn grade_edges() {
        assert_eq!(Grade::of(0.9), Grade::Excellent);
        assert_eq!(Grade::of(0.8999), Grade::Good);
        assert_eq!(Grade::of(0.8), Grade::Good);
        assert_eq!(Grade::of(0.7999), Grade::Acceptable);
        assert_eq!(Grade::of(0.6), Grade::Acceptable);
        assert_eq!(Grade::of(0.5999), Grade::Poor);
        assert_eq!(Grade::of(0.0), Grade::Poor);
    }

    #[test]
    fn weights_count() {
        let list = [o(Status::Pass, 3.0), o(Status::Fail, 1.0)];
        let (score, met, total, g) = grade(&list);
        assert_eq!((score, met, total, g), (0.75, 1, 2, Grade::Acceptable));
        let list = [o(Status::Pass, 9.0), o(Status::Warn, 1.0)];
        assert_eq!(grade(&list).3, Grade::Excellent);
        assert_eq!(grade(&[]).3, Grade::Ungraded);
        let list = [o(Status::Insufficient, 1.0), o(Status::Pass, 1.0)];
        assert_eq!(grade(&list).3, Grade::Poor);
    }
}
