//! Stage 7, evaluate: expectations checked against a result document, run validity (enough
//! samples for each percentile bound), grading and recommendations. Works on the result's
//! JSON, so `benchctl report` can evaluate a saved result without the scenario.

pub mod evidence;
mod grade;
pub mod host;
pub(crate) mod value;

pub use grade::{grade, Grade};

use serde::Serialize;
use serde_json::Value;

use crate::dsl::metrics::percentile;
use crate::dsl::model::Comparison;

pub use crate::stats::{required_samples, required_samples_at, CONFIDENCE};
pub use value::facts_of;

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
    pub origin: Value,
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
    /// Reasons the host or the load generator may have spoiled the run.
    pub host_findings: Vec<host::Finding>,
    /// `warn` (findings shown beside the verdict) or `invalid` (they make the run invalid).
    pub host_quiet: String,
    /// `passed`, `failed` or `invalid`.
    pub verdict: &'static str,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Evaluates every expectation of the result's plan against its data.
pub fn evaluate(doc: &Value) -> Evaluation {
    let empty = vec![];
    let specs = doc.pointer("/config/expectations").and_then(Value::as_array).unwrap_or(&empty);
    let mut outcomes: Vec<Outcome> = specs.iter().map(|e| outcome(doc, e)).collect();
    outcomes.extend(setup_checks(doc));
    let mut invalid_reasons = vec![];
    if s(doc, "status") == Some("interrupted") {
        invalid_reasons.push("the run was interrupted before it finished".to_string());
    }
    if s(doc, "status") == Some("limited") {
        invalid_reasons.push("the run reached its run-limit before its phases finished".to_string());
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Insufficient) {
        invalid_reasons.push(format!("`{}`: {}", o.name, o.message));
    }
    let host_findings = host::findings(doc);
    let host_quiet = doc.pointer("/config/host_quiet").and_then(Value::as_str).unwrap_or("warn").to_string();
    if host_quiet == "invalid" {
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
fn setup_checks(doc: &Value) -> Vec<Outcome> {
    let Some(b) = doc["benchmarks"].as_object() else { return vec![] };
    b.iter()
        .flat_map(|(name, w)| value::facts_of(w).checks.into_iter().map(move |c| (name.clone(), c)))
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
            origin: Value::Null,
        })
        .collect()
}

fn bound_text(spec: &Value) -> String {
    s(spec, "text")
        .map(|t| t.trim_start_matches(s(spec, "selector").unwrap_or("")).trim().to_string())
        .unwrap_or_default()
}

fn outcome(doc: &Value, spec: &Value) -> Outcome {
    let severity = s(spec, "severity").unwrap_or("fail").to_string();
    let fail_status = if severity == "warn" { Status::Warn } else { Status::Fail };
    let subject = s(spec, "subject").unwrap_or_default();
    let confidence = spec["confidence"].as_f64().unwrap_or(CONFIDENCE);
    // A workload skipped on this machine has no data to measure: the outcome says so.
    let skipped = doc.pointer(&format!("/benchmarks/{subject}/setup/skipped")).and_then(Value::as_str);
    let measured = if skipped.is_some() { None } else { value::measure(doc, spec) };
    let base = &spec["base"];
    let op = base.get("op").and_then(Value::as_str).and_then(Comparison::from_name);
    let required = spec
        .get("aggregation")
        .and_then(Value::as_str)
        .and_then(percentile)
        .map(|p| evidence::needed_for_pass(p, op.unwrap_or(Comparison::Lt), confidence));
    let ev = measured.as_ref().and_then(|m| m.basis.as_ref()).and_then(|b| judge(b, base, confidence));
    let mut measured_text =
        measured.as_ref().map_or(if skipped.is_some() { "skipped" } else { "no data" }.into(), |m| m.text.clone());
    let (status, message) = match &measured {
        None if skipped.is_some() => (Status::Skipped, format!("skipped: {}", skipped.unwrap_or_default())),
        None => match s(spec, "on_missing").unwrap_or("fail") {
            "pass" => (Status::Pass, "no data; on-missing=pass".to_string()),
            "warn" => (Status::Warn, "no data; on-missing=warn".to_string()),
            _ => (fail_status, "no data for this metric in the result".to_string()),
        },
        Some(m) => {
            let point = match m.windows {
                Some((passed, total)) => {
                    total > 0 && passed as f64 >= spec["windows_share"].as_f64().unwrap_or(1.0) * total as f64 - 1e-9
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
                            if severity == "warn" { Status::Warn } else { Status::Insufficient },
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
        name: s(spec, "name").unwrap_or_default().to_string(),
        selector: s(spec, "selector").unwrap_or_default().to_string(),
        text: s(spec, "text").unwrap_or_default().to_string(),
        phase: s(spec, "phase").map(str::to_string),
        severity,
        weight: spec["weight"].as_f64().unwrap_or(1.0),
        status,
        measured: measured.as_ref().map(|m| m.value),
        measured_text,
        message,
        samples: measured.as_ref().and_then(|m| m.samples),
        required_samples: required.filter(|_| skipped.is_none()),
        evidence: ev,
        origin: spec["origin"].clone(),
    }
}

/// Applies the evidence rule to a bound (`op value`, or `lo..hi` as two bounds that must
/// both hold). `None` where the bound has no statistical reading (`==`).
fn judge(basis: &value::Basis, base: &Value, c: f64) -> Option<evidence::Evidence> {
    let one = |op: Comparison, bound: f64| judge_one(basis, op, bound, c);
    match base.get("op").and_then(Value::as_str).and_then(Comparison::from_name) {
        Some(Comparison::Eq) => None,
        Some(op) => one(op, base["value"].as_f64()?),
        None => {
            let lo = one(Comparison::Ge, base["lo"].as_f64()?)?;
            let hi = one(Comparison::Le, base["hi"].as_f64()?)?;
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

fn judge_one(basis: &value::Basis, op: Comparison, bound: f64, c: f64) -> Option<evidence::Evidence> {
    use evidence::*;
    use value::Basis;
    Some(match basis {
        Basis::Quantile { hist, q, scale } => {
            let n = hist.len();
            let b = bound * scale;
            // Samples on the wrong side of the bound (bucket values at 3 significant digits).
            let beyond = match op {
                Comparison::Lt => n - crate::stats::count_below(hist, b),
                Comparison::Le => crate::stats::count_above(hist, b),
                Comparison::Gt => n - crate::stats::count_above(hist, b),
                _ => crate::stats::count_below(hist, b),
            };
            let decision = quantile_decision(&QuantileSamples { n, beyond }, *q, op, c);
            let at = |r: Option<u64>| r.and_then(|r| crate::stats::order_statistic(hist, r)).map(|v| v / scale);
            Evidence {
                method: "binomial order statistic",
                confidence: c,
                n,
                beyond: Some(beyond),
                low: at(lower_rank(n, *q, c)),
                high: at(upper_rank(n, *q, c)),
                needed_for_pass: Some(needed_for_pass(*q, op, c)),
                decision,
            }
        }
        Basis::Mean { hist, scale } => {
            let (mean, sd, n) = (hist.mean() / scale, hist.stdev() / scale, hist.len());
            let (decision, lo, hi) = mean_decision(mean, sd, n, bound, op, c);
            Evidence {
                method: "student t mean",
                confidence: c,
                n,
                beyond: None,
                low: lo.is_finite().then_some(lo),
                high: hi.is_finite().then_some(hi),
                needed_for_pass: None,
                decision,
            }
        }
        Basis::Share { events, trials } => {
            if *trials == 0 {
                return None;
            }
            Evidence {
                method: "binomial share",
                confidence: c,
                n: *trials,
                beyond: Some(*events),
                low: None,
                high: None,
                needed_for_pass: None,
                decision: share_decision(*events, *trials, bound, op, c),
            }
        }
        Basis::Count { events, secs } => {
            if *secs <= 0.0 {
                return None;
            }
            Evidence {
                method: "poisson count",
                confidence: c,
                n: *events,
                beyond: Some(*events),
                low: None,
                high: None,
                needed_for_pass: None,
                decision: rate_decision(*events, *secs, bound, op, c),
            }
        }
    })
}

/// What the evidence says, in words: `6 of 6 samples above 200ms`, `p95 at most 4.1ms`.
fn evidence_text(e: &evidence::Evidence, spec: &Value, c: f64) -> String {
    let unit = &spec["unit"];
    let share = spec["base"]["share"].as_bool().unwrap_or(false);
    let t = |x: f64| value::text(unit, share, x);
    let op = spec.pointer("/base/op").and_then(Value::as_str).unwrap_or("<");
    let pct = c * 100.0;
    match e.method {
        "binomial order statistic" => {
            let side = if matches!(op, ">" | ">=") { "below" } else { "above" };
            let bound = spec.pointer("/base/value").and_then(Value::as_f64).map(t).unwrap_or_default();
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
pub fn holds(x: f64, base: &Value) -> bool {
    match base.get("op").and_then(Value::as_str).and_then(Comparison::from_name) {
        Some(op) => op.holds(x, base["value"].as_f64().unwrap_or(f64::NAN)),
        None => {
            let (lo, hi) = (base["lo"].as_f64().unwrap_or(f64::NAN), base["hi"].as_f64().unwrap_or(f64::NAN));
            x >= lo - 1e-12 && x <= hi + 1e-12
        }
    }
}

/// Adds the evaluation to the result document under the inherited field names.
pub fn apply(doc: &mut Value, ev: &Evaluation) {
    let mut per_workload: std::collections::BTreeMap<String, Vec<&Outcome>> = Default::default();
    for o in &ev.outcomes {
        let subject = o.selector.split('.').next().unwrap_or_default().to_string();
        per_workload.entry(subject).or_default().push(o);
    }
    let energy: std::collections::BTreeMap<String, Option<f64>> = doc["benchmarks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| (name.clone(), value::workload_energy(doc, name)))
        .collect();
    if let Some(b) = doc.get_mut("benchmarks").and_then(Value::as_object_mut) {
        for (name, w) in b.iter_mut() {
            let list = per_workload.get(name).cloned().unwrap_or_default();
            let scores: serde_json::Map<String, Value> = list
                .iter()
                .map(|o| (o.name.clone(), serde_json::json!({ "selector": o.selector, "measured": o.measured, "measured_text": o.measured_text, "status": o.status, "met": o.status == Status::Pass, "score": if o.status == Status::Pass { 1.0 } else { 0.0 } })))
                .collect();
            let meets = list.iter().all(|o| o.status == Status::Pass);
            w["meets_targets"] = Value::Bool(meets);
            if w["summary"].is_object() {
                w["summary"]["meets_targets"] = Value::Bool(meets);
                w["summary"]["energy_consumption_joules"] = serde_json::json!(energy.get(name).copied().flatten());
            }
            w["target_scores"] = Value::Object(scores);
        }
    }
    if let Some(st) = doc.get_mut("stress_test").filter(|v| v.is_object()) {
        st["stable_concurrency_levels"] = st["stable_levels"].clone();
    }
    doc["overall_assessment"] = serde_json::json!({
        "performance_grade": ev.performance_grade,
        "score": ev.score,
        "targets_met": ev.targets_met,
        "total_targets": ev.total_targets,
        "valid": ev.valid,
        "invalid_reasons": ev.invalid_reasons,
        "verdict": ev.verdict,
        "recommendations": ev.recommendations,
        "host_quiet": ev.host_quiet,
    });
    doc["host_findings"] = serde_json::to_value(&ev.host_findings).unwrap_or(Value::Null);
    doc["evaluation"] = serde_json::to_value(&ev.outcomes).unwrap_or(Value::Null);
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
        let lt = serde_json::json!({"op": "<", "value": 0.005});
        assert!(holds(0.004, &lt) && !holds(0.005, &lt));
        let le = serde_json::json!({"op": "<=", "value": 0.005});
        assert!(holds(0.005, &le));
        let ge = serde_json::json!({"op": ">=", "value": 30.0});
        assert!(holds(30.0, &ge) && !holds(29.9, &ge));
        let gt = serde_json::json!({"op": ">", "value": 30.0});
        assert!(!holds(30.0, &gt));
        let eq = serde_json::json!({"op": "==", "value": 1.0});
        assert!(holds(1.0, &eq) && !holds(1.1, &eq));
        let within = serde_json::json!({"op": null, "lo": 0.05, "hi": 0.15});
        assert!(holds(0.05, &within) && holds(0.15, &within) && !holds(0.151, &within) && !holds(0.04, &within));
    }
}
