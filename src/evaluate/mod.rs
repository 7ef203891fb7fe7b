//! Stage 7, evaluate: expectations checked against a result document, run validity (enough
//! samples for each percentile bound), grading and recommendations. Works on the result's
//! JSON, so `benchctl report` can evaluate a saved result without the scenario.

mod grade;
mod value;

pub use grade::{grade, Grade};

use serde::Serialize;
use serde_json::Value;

use crate::dsl::metrics::percentile;
use crate::dsl::model::Comparison;

/// Confidence for the sample-count rule of percentile bounds.
pub const CONFIDENCE: f64 = 0.99;

/// Samples needed before a `p`-quantile bound is evidence: the smallest n with p^n <= 1 - c,
/// so that if the true quantile were above the bound, seeing no sample above it would have
/// probability at most 1 - c. At c = 99 %: p99 needs 459, p95 90, p90 44, p50 7.
pub fn required_samples(p: f64) -> u64 {
    ((1.0 - CONFIDENCE).ln() / p.ln()).ceil() as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Failed, but the expectation's severity is `warn`.
    Warn,
    /// Too few samples for the percentile: not evidence either way; the run is invalid for it.
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
    pub required_samples: Option<u64>,
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
    outcomes.extend(kernel_checks(doc));
    let mut invalid_reasons = vec![];
    if s(doc, "status") == Some("interrupted") {
        invalid_reasons.push("the run was interrupted before it finished".to_string());
    }
    for o in outcomes.iter().filter(|o| o.status == Status::Insufficient) {
        invalid_reasons.push(format!("`{}`: {}", o.name, o.message));
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
        verdict: if !valid {
            "invalid"
        } else if failed {
            "failed"
        } else {
            "passed"
        },
    }
}

/// A kernel's correctness check is an expectation of its own: `NAME.check`.
fn kernel_checks(doc: &Value) -> Vec<Outcome> {
    let Some(b) = doc["benchmarks"].as_object() else { return vec![] };
    b.iter()
        .filter_map(|(name, w)| {
            let c = w.pointer("/setup/kernel/check").filter(|c| c.is_object())?;
            let passed = c["passed"].as_bool().unwrap_or(false);
            let text =
                format!("{name}.check {} {}", c["buffer"].as_str().unwrap_or(""), c["against"].as_str().unwrap_or(""));
            let message = if passed {
                format!("every element within {}", c["tolerance"])
            } else {
                format!(
                    "{} elements off by more than {} (first at index {}, largest error {})",
                    c["mismatches"], c["tolerance"], c["first_mismatch"], c["max_abs_error"]
                )
            };
            Some(Outcome {
                name: format!("{name}.check"),
                selector: format!("{name}.check"),
                text,
                phase: None,
                severity: "fail".into(),
                weight: 1.0,
                status: if passed { Status::Pass } else { Status::Fail },
                measured: c["max_abs_error"].as_f64(),
                measured_text: format!("max error {}", c["max_abs_error"]),
                message,
                samples: None,
                required_samples: None,
                origin: Value::Null,
            })
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
    // A workload skipped on this machine has no data to measure: the outcome says so.
    let skipped = doc.pointer(&format!("/benchmarks/{subject}/setup/skipped")).and_then(Value::as_str);
    let measured = if skipped.is_some() { None } else { value::measure(doc, spec) };
    let required = spec.get("aggregation").and_then(Value::as_str).and_then(percentile).map(required_samples);
    let base = &spec["base"];
    let (status, message) = match &measured {
        None if skipped.is_some() => (Status::Skipped, format!("skipped: {}", skipped.unwrap_or_default())),
        None => match s(spec, "on_missing").unwrap_or("fail") {
            "pass" => (Status::Pass, "no data; on-missing=pass".to_string()),
            "warn" => (Status::Warn, "no data; on-missing=warn".to_string()),
            _ => (fail_status, "no data for this metric in the result".to_string()),
        },
        Some(m) if m.windows.is_none() && required.is_some_and(|r| m.samples.is_some_and(|n| n < r)) => (
            Status::Insufficient,
            format!(
                "{} samples, but a {} bound needs at least {} at {:.0}% confidence",
                m.samples.unwrap_or(0),
                s(spec, "aggregation").unwrap_or(""),
                required.unwrap_or(0),
                CONFIDENCE * 100.0
            ),
        ),
        Some(m) => {
            let ok = match m.windows {
                Some((passed, total)) => {
                    total > 0 && passed as f64 >= spec["windows_share"].as_f64().unwrap_or(1.0) * total as f64 - 1e-9
                }
                None => holds(m.value, base),
            };
            let msg = format!("measured {}, expected {}", m.text, bound_text(spec));
            (if ok { Status::Pass } else { fail_status }, msg)
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
        measured_text: measured
            .as_ref()
            .map_or(if skipped.is_some() { "skipped" } else { "no data" }.into(), |m| m.text.clone()),
        message,
        samples: measured.as_ref().and_then(|m| m.samples),
        required_samples: required.filter(|_| skipped.is_none()),
        origin: spec["origin"].clone(),
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
    if let Some(b) = doc.get_mut("benchmarks").and_then(Value::as_object_mut) {
        for (name, w) in b.iter_mut() {
            let list = per_workload.get(name).cloned().unwrap_or_default();
            let scores: serde_json::Map<String, Value> = list
                .iter()
                .map(|o| (o.name.clone(), serde_json::json!({ "selector": o.selector, "measured": o.measured, "measured_text": o.measured_text, "status": o.status, "met": o.status == Status::Pass, "score": if o.status == Status::Pass { 1.0 } else { 0.0 } })))
                .collect();
            w["meets_targets"] = Value::Bool(list.iter().all(|o| o.status == Status::Pass));
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
    });
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
