//! Stage 7, evaluate: expectations checked against a result document, run validity (enough
//! samples for each percentile bound), grading and recommendations. Works on the typed
//! result document (its `config` carries the expectations), so `benchctl report` can
//! evaluate a saved result without the scenario. The [`Evaluation`] travels beside the
//! document; [`Written`] puts both in the written JSON.

mod grade;
pub use crate::stats::evidence;
pub mod host;
pub mod server;
pub(crate) mod value;

pub use grade::{grade, Grade};

use serde::Serialize;

use crate::dsl::metrics::percentile;
use crate::dsl::model::{Comparison, ExpectSeverity, HostQuiet, OnMissing};
use crate::plan::{BaseBound, Origin};
use crate::result::{ExpectationSpec, ResultDoc, RunStatus, TargetScore};

pub use crate::stats::{required_samples, required_samples_at, CONFIDENCE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Failed, but the expectation's severity is `warn`.
    Warn,
    /// The samples show neither that the bound holds nor that it is missed at the
    /// confidence asked for: not evidence either way; the run is invalid for it.
    Insufficient,
    /// The workload was skipped on this machine (a GPU workload with `fallback="cpu"` and no
    /// GPU): neither passed nor failed, and left out of the grade.
    Skipped,
}

impl Status {
    /// The status as the result writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Insufficient => "insufficient",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub selector: String,
    pub text: String,
    pub phase: Option<String>,
    pub severity: String,
    pub weight: f64,
    pub status: Status,
    /// The measured value in base units (seconds, per second, fraction, bytes, count).
    pub measured: Option<f64>,
    /// The measured value as text in the bound's unit (`6.2ms`, `93.1%`, `8 of 10 windows`).
    pub measured_text: String,
    pub message: String,
    pub samples: Option<u64>,
    /// Fewest samples with none beyond the bound that could pass a quantile bound.
    pub required_samples: Option<u64>,
    /// The evidence rule's counts, interval and decision, where the bound has one.
    pub evidence: Option<evidence::Evidence>,
    /// Where the expectation was written; null for a setup check.
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub outcomes: Vec<Outcome>,
    pub performance_grade: Grade,
    /// Weighted share of expectations that passed.
    pub score: f64,
    pub targets_met: usize,
    pub total_targets: usize,
    pub valid: bool,
    pub invalid_reasons: Vec<String>,
    pub recommendations: Vec<String>,
    /// Reasons the host, the load generator or another client of the server may have
    /// spoiled the run, and server/client count disagreements.
    pub host_findings: Vec<host::Finding>,
    /// Per measured phase and scraped server: the clients' counts beside the server's.
    pub server_checks: Vec<server::ServerCheck>,
    /// `warn` (findings shown beside the verdict) or `invalid` (they make the run invalid).
    pub host_quiet: HostQuiet,
    /// `passed`, `failed` or `invalid`.
    pub verdict: &'static str,
}

/// Evaluates every expectation of the result's plan against its data.
pub fn evaluate(doc: &ResultDoc) -> Evaluation {
    let mut outcomes: Vec<Outcome> = doc.config.expectations.iter().map(|e| outcome(doc, e)).collect();
    outcomes.extend(setup_checks(doc));
    let mut invalid_reasons = vec![];
    if doc.status == RunStatus::Interrupted {
        invalid_reasons.push("the run was interrupted before it finished".to_string());
    }
    if doc.status == RunStatus::Limited {
        invalid_reasons.push("the run reached its run-limit before its phases finished".to_string());
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Insufficient) {
        invalid_reasons.push(format!("`{}`: {}", o.name, o.message));
    }
    let server_checks = server::checks(doc);
    let mut host_findings = host::findings(doc);
    host_findings.extend(server::findings(&server_checks));
    let host_quiet = doc.config.host_quiet();
    if host_quiet == HostQuiet::Invalid {
        invalid_reasons.extend(host_findings.iter().map(|f| format!("host-quiet=\"invalid\": {}", f.message)));
    }
    let (score, met, total, g) = grade(&outcomes);
    let failed = outcomes.iter().any(|o| o.status == Status::Fail);
    let valid = invalid_reasons.is_empty();
    Evaluation {
        recommendations: grade::recommendations(doc, &outcomes),
        outcomes,
        performance_grade: g,
        score,
        targets_met: met,
        total_targets: total,
        valid,
        invalid_reasons,
        host_findings,
        server_checks,
        host_quiet,
        verdict: if !valid {
            "invalid"
        } else if failed {
            "failed"
        } else {
            "passed"
        },
    }
}

/// A check a workload's setup ran (a kernel's correctness check) is an expectation of its
/// own: `NAME.CHECK`.
fn setup_checks(doc: &ResultDoc) -> Vec<Outcome> {
    doc.benchmarks
        .iter()
        .flat_map(|(name, w)| w.facts().checks.into_iter().map(move |c| (name.clone(), c)))
        .map(|(name, c)| Outcome {
            name: format!("{name}.{}", c.name),
            selector: format!("{name}.{}", c.name),
            text: format!("{name}.{} {}", c.name, c.text),
            phase: None,
            severity: "fail".into(),
            weight: 1.0,
            status: if c.passed { Status::Pass } else { Status::Fail },
            measured: c.measured,
            measured_text: c.measured_text,
            message: c.message,
            samples: None,
            required_samples: None,
            evidence: None,
            origin: None,
        })
        .collect()
}

fn bound_text(spec: &ExpectationSpec) -> String {
    spec.text.trim_start_matches(spec.selector.as_str()).trim().to_string()
}

/// Why a workload was skipped on this machine (its setup record says), if it was.
fn skipped_because<'a>(doc: &'a ResultDoc, workload: &str) -> Option<&'a str> {
    doc.benchmarks.get(workload)?.setup.as_ref()?.get("skipped")?.as_str()
}

fn outcome(doc: &ResultDoc, spec: &ExpectationSpec) -> Outcome {
    let warn_only = spec.severity == ExpectSeverity::Warn;
    let fail_status = if warn_only { Status::Warn } else { Status::Fail };
    let confidence = spec.confidence;
    // A workload skipped on this machine has no data to measure: the outcome says so.
    let skipped = skipped_because(doc, &spec.subject);
    let measured = if skipped.is_some() { None } else { value::measure(doc, spec) };
    let base = &spec.base;
    let required = spec
        .aggregation
        .as_deref()
        .and_then(percentile)
        .map(|p| evidence::needed_for_pass(p, base.op.unwrap_or(Comparison::Lt), confidence));
    let ev = measured.as_ref().and_then(|m| m.basis.as_ref()).and_then(|b| judge(b, base, confidence));
    let mut measured_text =
        measured.as_ref().map_or(if skipped.is_some() { "skipped" } else { "no data" }.into(), |m| m.text.clone());
    let (status, message) = match &measured {
        None if skipped.is_some() => (Status::Skipped, format!("skipped: {}", skipped.unwrap_or_default())),
        None => match spec.on_missing {
            OnMissing::Pass => (Status::Pass, "no data; on-missing=pass".to_string()),
            OnMissing::Warn => (Status::Warn, "no data; on-missing=warn".to_string()),
            OnMissing::Fail => (fail_status, "no data for this metric in the result".to_string()),
        },
        Some(m) => {
            let point = match m.windows {
                Some((passed, total)) => {
                    total > 0 && passed as f64 >= spec.windows_share.unwrap_or(1.0) * total as f64 - 1e-9
                }
                None => holds(m.value, base),
            };
            let expected = bound_text(spec);
            match &ev {
                Some(e) => {
                    let said = evidence_text(e, spec, confidence);
                    measured_text = format!("{} ({said})", m.text);
                    match e.decision {
                        evidence::Decision::Holds => {
                            (Status::Pass, format!("passed: measured {}, expected {expected}; {said}", m.text))
                        }
                        evidence::Decision::Missed => {
                            (fail_status, format!("failed: measured {}, expected {expected}; {said}", m.text))
                        }
                        // A `severity="warn"` expectation never changes the exit code: an
                        // undecided one is a warning, not an invalid run.
                        evidence::Decision::Undecided => (
                            if warn_only { Status::Warn } else { Status::Insufficient },
                            format!(
                                "not evidence either way at {:.0}% confidence: measured {}, expected {expected}; {said}",
                                confidence * 100.0,
                                m.text
                            ),
                        ),
                    }
                }
                None => {
                    let msg = format!("measured {}, expected {expected}", m.text);
                    (if point { Status::Pass } else { fail_status }, msg)
                }
            }
        }
    };
    Outcome {
        name: spec.name.clone(),
        selector: spec.selector.clone(),
        text: spec.text.clone(),
        phase: spec.phase.clone(),
        severity: spec.severity.as_str().to_string(),
        weight: spec.weight,
        status,
        measured: measured.as_ref().map(|m| m.value),
        measured_text,
        message,
        samples: measured.as_ref().and_then(|m| m.samples),
        required_samples: required.filter(|_| skipped.is_none()),
        evidence: ev,
        origin: Some(spec.origin.clone()),
    }
}

/// Applies the evidence rule to a bound (`op value`, or `lo..hi` as two bounds that must
/// both hold). `None` where the bound has no statistical reading (`==`).
fn judge(basis: &value::Basis, base: &BaseBound, c: f64) -> Option<evidence::Evidence> {
    let one = |op: Comparison, bound: f64| crate::measure::evidence::judge(basis, op, bound, c);
    match base.op {
        Some(Comparison::Eq) => None,
        Some(op) => one(op, base.value?),
        None => {
            let lo = one(Comparison::Ge, base.lo?)?;
            let hi = one(Comparison::Le, base.hi?)?;
            use evidence::Decision::*;
            let decision = match (lo.decision, hi.decision) {
                (Holds, Holds) => Holds,
                (Missed, _) | (_, Missed) => Missed,
                _ => Undecided,
            };
            // The side that decides (or the first that does not hold) is the one reported.
            let mut e = if hi.decision == Missed || (lo.decision == Holds && hi.decision != Holds) { hi } else { lo };
            e.decision = decision;
            Some(e)
        }
    }
}

/// What the evidence says, in words: `6 of 6 samples above 200ms`, `p95 at most 4.1ms`.
fn evidence_text(e: &evidence::Evidence, spec: &ExpectationSpec, c: f64) -> String {
    let t = |x: f64| value::text(&spec.unit, spec.base.share, x);
    let pct = c * 100.0;
    match e.method {
        "binomial order statistic" => {
            let lower_bound = matches!(spec.base.op, Some(Comparison::Gt | Comparison::Ge));
            let side = if lower_bound { "below" } else { "above" };
            let bound = spec.base.value.map(t).unwrap_or_default();
            let mut out = format!("{} of {} samples {side} {bound}", e.beyond.unwrap_or(0), e.n);
            match (e.decision, e.low, e.high) {
                (evidence::Decision::Holds, _, Some(h)) if side == "above" => {
                    out += &format!("; at most {} at {pct:.0}% confidence", t(h))
                }
                (evidence::Decision::Holds, Some(l), _) => {
                    out += &format!("; at least {} at {pct:.0}% confidence", t(l))
                }
                (evidence::Decision::Missed, Some(l), _) if side == "above" => {
                    out += &format!("; at least {} at {pct:.0}% confidence", t(l))
                }
                (evidence::Decision::Missed, _, Some(h)) => {
                    out += &format!("; at most {} at {pct:.0}% confidence", t(h))
                }
                (evidence::Decision::Undecided, lo, hi) => match e.needed_for_pass {
                    Some(need) if e.n < need => out += &format!("; a pass needs at least {need} samples"),
                    _ => {
                        let side = |v: Option<f64>| v.map_or("?".to_string(), t);
                        out += &format!("; {pct:.0}% interval {}..{} contains the bound", side(lo), side(hi))
                    }
                },
                _ => {}
            }
            out
        }
        "student t mean" => match (e.low, e.high) {
            (Some(l), Some(h)) => format!("{pct:.0}% interval {}..{} over {} samples", t(l), t(h), e.n),
            _ => format!("{} samples: too few for an interval", e.n),
        },
        "binomial share" => format!("{} of {} requests", e.beyond.unwrap_or(0), e.n),
        _ => format!("{} events counted", e.n),
    }
}

/// Whether a base-unit value satisfies a bound (`op value` or `lo..hi`).
pub fn holds(x: f64, base: &BaseBound) -> bool {
    base.holds(x)
}

/// Puts the evaluation's per-workload parts into the document under the inherited field
/// names: `meets_targets`, `target_scores`, the flat summary's `meets_targets` and
/// `energy_consumption_joules`, and the search's `stable_concurrency_levels`.
pub fn apply(doc: &mut ResultDoc, ev: &Evaluation) {
    let mut per_workload: std::collections::BTreeMap<&str, Vec<&Outcome>> = Default::default();
    for o in &ev.outcomes {
        per_workload.entry(o.selector.split('.').next().unwrap_or_default()).or_default().push(o);
    }
    let energy: std::collections::BTreeMap<String, Option<f64>> =
        doc.benchmarks.keys().map(|name| (name.clone(), value::workload_energy(doc, name))).collect();
    for (name, w) in doc.benchmarks.iter_mut() {
        let list = per_workload.get(name.as_str()).cloned().unwrap_or_default();
        let scores = list
            .iter()
            .map(|o| {
                let met = o.status == Status::Pass;
                let score = TargetScore {
                    selector: o.selector.clone(),
                    measured: o.measured,
                    measured_text: o.measured_text.clone(),
                    status: o.status.as_str().to_string(),
                    met,
                    score: if met { 1.0 } else { 0.0 },
                };
                (o.name.clone(), score)
            })
            .collect();
        let meets = list.iter().all(|o| o.status == Status::Pass);
        w.meets_targets = Some(meets);
        if let Some(summary) = w.summary.as_mut() {
            summary.meets_targets = Some(meets);
            summary.energy_consumption_joules = energy.get(name).copied().flatten();
        }
        w.target_scores = Some(scores);
    }
    if let Some(st) = doc.stress_test.as_mut() {
        st.stable_concurrency_levels = Some(st.stable_levels.clone());
    }
}

/// The evaluation's summary under the result's inherited name `overall_assessment`.
#[derive(Debug, Serialize)]
pub struct Assessment<'a> {
    pub performance_grade: Grade,
    pub score: f64,
    pub targets_met: usize,
    pub total_targets: usize,
    pub valid: bool,
    pub invalid_reasons: &'a [String],
    pub verdict: &'a str,
    pub recommendations: &'a [String],
    pub host_quiet: HostQuiet,
}

/// A result document with its evaluation, as written: the document's fields, then
/// `overall_assessment`, `host_findings` and `evaluation` (the outcomes).
#[derive(Debug, Serialize)]
pub struct Written<'a> {
    #[serde(flatten)]
    pub doc: &'a ResultDoc,
    pub overall_assessment: Assessment<'a>,
    pub host_findings: &'a [host::Finding],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub server_checks: &'a [server::ServerCheck],
    pub evaluation: &'a [Outcome],
}

impl<'a> Written<'a> {
    pub fn new(doc: &'a ResultDoc, ev: &'a Evaluation) -> Written<'a> {
        Written {
            doc,
            overall_assessment: Assessment {
                performance_grade: ev.performance_grade,
                score: ev.score,
                targets_met: ev.targets_met,
                total_targets: ev.total_targets,
                valid: ev.valid,
                invalid_reasons: &ev.invalid_reasons,
                verdict: ev.verdict,
                recommendations: &ev.recommendations,
                host_quiet: ev.host_quiet,
            },
            host_findings: &ev.host_findings,
            server_checks: &ev.server_checks,
            evaluation: &ev.outcomes,
        }
    }

    /// The JSON text, indented.
    pub fn to_vec_pretty(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a result serialises: its maps have string keys")
    }
}

/// The exit code of a run or report: invalid evidence first, then failures.
pub fn exit_code(ev: &Evaluation) -> u8 {
    match ev.verdict {
        "invalid" => crate::exit::INVALID_RUN,
        "failed" => crate::exit::FAILED,
        _ => crate::exit::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_requirements() {
        assert_eq!(required_samples(0.99), 459);
        assert_eq!(required_samples(0.9), 44);
        assert_eq!(required_samples(0.5), 7);
        assert_eq!(required_samples(0.999), 4603);
    }

    #[test]
    fn bounds_hold() {
        let b =
            |op: Option<Comparison>, value: f64| BaseBound { op, value: Some(value), lo: None, hi: None, share: false };
        let lt = b(Some(Comparison::Lt), 0.005);
        assert!(holds(0.004, &lt) && !holds(0.005, &lt));
        assert!(holds(0.005, &b(Some(Comparison::Le), 0.005)));
        let ge = b(Some(Comparison::Ge), 30.0);
        assert!(holds(30.0, &ge) && !holds(29.9, &ge));
        assert!(!holds(30.0, &b(Some(Comparison::Gt), 30.0)));
        let eq = b(Some(Comparison::Eq), 1.0);
        assert!(holds(1.0, &eq) && !holds(1.1, &eq));
        let within = BaseBound { op: None, value: None, lo: Some(0.05), hi: Some(0.15), share: false };
        assert!(holds(0.05, &within) && holds(0.15, &within) && !holds(0.151, &within) && !holds(0.04, &within));
    }
}
