//! The HTML report: one self-contained file (styles inline, charts as inline SVG, no
//! network), rendered by Tera from a flat view-model. The template is built in and can be
//! replaced with `--templates DIR` (DIR/report.html).

use serde::Serialize;
use serde_json::Value;

use super::charts::{self, Band, Line};
use super::{scope, status_word};
use crate::evaluate::{Evaluation, Grade, Status};

/// The built-in template.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../templates/report.html");

#[derive(Serialize)]
struct Row {
    key: String,
    value: String,
}

#[derive(Serialize)]
struct ExpectationView {
    status: &'static str,
    class: &'static str,
    name: String,
    measured: String,
    scope: String,
    message: String,
}

#[derive(Serialize)]
struct WorkloadView {
    name: String,
    kind: String,
    requests: String,
    throughput: String,
    errors: String,
    p50: String,
    p95: String,
    p99: String,
    ttft_p95: String,
    tok_s: String,
}

#[derive(Serialize)]
struct ChartView {
    title: String,
    svg: String,
}

#[derive(Serialize)]
struct LevelView {
    rate: String,
    stable: &'static str,
    class: &'static str,
    requests: String,
    failed: String,
}

#[derive(Serialize)]
struct StressView {
    workload: String,
    max: String,
    levels: Vec<LevelView>,
}

#[derive(Serialize)]
struct ChangeView {
    workload: String,
    metric: String,
    base: String,
    new: String,
    change: String,
    interval: String,
    verdict: String,
    class: &'static str,
}

/// Everything the template sees: strings and flat lists, no domain types.
#[derive(Serialize)]
struct View {
    title: String,
    scenario: String,
    description: String,
    timestamp: String,
    duration: String,
    status: String,
    verdict: &'static str,
    verdict_class: &'static str,
    grade: &'static str,
    grade_class: &'static str,
    score_pct: String,
    targets_met: usize,
    total_targets: usize,
    invalid_reasons: Vec<String>,
    /// Host findings (the load generator's self-check), and the policy applied to them.
    host_findings: Vec<String>,
    host_quiet: String,
    expectations: Vec<ExpectationView>,
    recommendations: Vec<String>,
    workloads: Vec<WorkloadView>,
    setups: Vec<super::setup::SetupView>,
    charts: Vec<ChartView>,
    stress: Option<StressView>,
    comparison: Vec<ChangeView>,
    comparison_baseline: String,
    warnings: Vec<String>,
    system: Vec<Row>,
}

fn class(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Warn | Status::Insufficient => "warn",
        Status::Skipped => "skip",
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

/// A time in seconds (the result's unit) shown in milliseconds.
fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2} ms", x * 1e3))
}

fn workloads(doc: &Value) -> Vec<WorkloadView> {
    let Some(b) = doc["benchmarks"].as_object() else { return vec![] };
    b.iter()
        .map(|(name, w)| {
            let m = |metric: &str, q: &str| w.pointer(&format!("/metrics/{metric}/{q}")).and_then(Value::as_f64);
            WorkloadView {
                name: name.clone(),
                kind: str_of(&w["kind"]),
                requests: w["requests"].to_string(),
                throughput: format!("{:.1}", w["throughput"].as_f64().unwrap_or(0.0)),
                errors: format!("{} ({:.2}%)", w["errors"], w["error_rate"].as_f64().unwrap_or(0.0) * 100.0),
                p50: ms(m("latency", "p50")),
                p95: ms(m("latency", "p95")),
                p99: ms(m("latency", "p99")),
                ttft_p95: ms(m("ttft", "p95")),
                tok_s: w["tok_s"].as_f64().filter(|t| *t > 0.0).map_or("-".into(), |t| format!("{t:.0}")),
            }
        })
        .collect()
}

fn phase_bands(doc: &Value) -> Vec<Band> {
    doc["phases"].as_array().map_or(vec![], |ps| {
        ps.iter()
            .map(|p| {
                let from = p["started_s"].as_f64().unwrap_or(0.0);
                Band { from, to: from + p["duration_s"].as_f64().unwrap_or(0.0), name: str_of(&p["name"]) }
            })
            .collect()
    })
}

/// One line per workload: `pick` reads a window's value; x is seconds from the run start.
fn series(doc: &Value, pick: &dyn Fn(&Value) -> Option<f64>) -> Vec<Line> {
    let mut lines: Vec<Line> = vec![];
    for p in doc["phases"].as_array().into_iter().flatten() {
        let start = p["started_s"].as_f64().unwrap_or(0.0);
        for (name, w) in p["workloads"].as_object().into_iter().flatten() {
            let pts = w["series"].as_array().into_iter().flatten().filter_map(|win| {
                let t = start + win["start_s"].as_f64()? + win["seconds"].as_f64().unwrap_or(1.0) / 2.0;
                Some((t, pick(win)?))
            });
            match lines.iter_mut().find(|l| &l.name == name) {
                Some(l) => l.points.extend(pts),
                None => lines.push(Line { name: name.clone(), points: pts.collect() }),
            }
        }
    }
    lines.retain(|l| !l.points.is_empty());
    lines
}

fn charts(doc: &Value) -> Vec<ChartView> {
    let mut out = vec![];
    let secs = |x: &f64| format!("{x:.0}s");
    let bands = phase_bands(doc);
    let spectrum: Vec<Line> = doc["benchmarks"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, w)| {
            let h = crate::result::histogram(w, "latency")?;
            let n = h.len() as f64;
            let qs = [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999];
            let points = qs
                .iter()
                .filter(|q| **q == 0.0 || 1.0 / (1.0 - **q) <= n)
                .map(|q| (charts::spectrum_x(*q), h.value_at_quantile(*q) as f64 / 1e6))
                .collect();
            Some(Line { name: name.clone(), points })
        })
        .collect();
    if let Some(svg) = charts::lines(
        "Latency by percentile (measured phases)",
        "percentile",
        "latency (ms)",
        &spectrum,
        &[],
        &charts::spectrum_label,
        Some(5),
    ) {
        out.push(ChartView { title: "Latency percentile spectrum".into(), svg });
    }
    let thr = series(doc, &|w| w["throughput"].as_f64());
    if let Some(svg) = charts::lines("Throughput per second", "time", "requests/s", &thr, &bands, &secs, None) {
        out.push(ChartView { title: "Throughput over time, by phase".into(), svg });
    }
    let p95 = series(doc, &|w| w.pointer("/metrics/latency/p95").and_then(Value::as_f64).map(|s| s * 1e3));
    if let Some(svg) = charts::lines("Latency p95 per second", "time", "ms", &p95, &bands, &secs, None) {
        out.push(ChartView { title: "Latency p95 over time, by phase".into(), svg });
    }
    let probe = |kind: &str, series: &str, scale: f64, name: &str| -> Option<Line> {
        let pts = doc.pointer(&format!("/probes/{kind}/series/{series}/points"))?.as_array()?;
        Some(Line {
            name: name.into(),
            points: pts.iter().filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()? * scale))).collect(),
        })
    };
    let probes: Vec<Line> = [
        probe("system", "cpu", 100.0, "CPU %"),
        probe("system", "memory_share", 100.0, "memory %"),
        probe("process", "cpu", 100.0, "benchctl CPU % of a core"),
    ]
    .into_iter()
    .flatten()
    .filter(|l| !l.points.is_empty())
    .collect();
    if let Some(svg) = charts::lines("System probes", "time", "%", &probes, &bands, &secs, None) {
        out.push(ChartView { title: "CPU and memory over time".into(), svg });
    }
    out
}

fn stress(doc: &Value) -> Option<StressView> {
    let st = doc["stress_test"].as_object()?;
    let levels = st.get("levels")?.as_array()?.iter().map(|l| {
        let stable = l["stable"].as_bool().unwrap_or(false);
        LevelView {
            rate: format!("{:.1}/s", l["rate"].as_f64().unwrap_or(0.0)),
            stable: if stable { "stable" } else { "unstable" },
            class: if stable { "pass" } else { "fail" },
            requests: l["requests"].to_string(),
            failed: l["failed"]
                .as_array()
                .map(|f| f.iter().map(str_of).collect::<Vec<_>>().join("; "))
                .unwrap_or_default(),
        }
    });
    Some(StressView {
        workload: st.get("workload").map(str_of).unwrap_or_default(),
        max: st
            .get("max_sustainable_load")
            .and_then(Value::as_f64)
            .map_or("none stable".into(), |r| format!("{r:.1} requests/s")),
        levels: levels.collect(),
    })
}

fn comparison(doc: &Value) -> Vec<ChangeView> {
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    doc.pointer("/comparison/changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let unit = str_of(&c["unit"]);
            let verdict = str_of(&c["verdict"]);
            ChangeView {
                workload: str_of(&c["workload"]),
                metric: str_of(&c["metric"]),
                base: format!("{:.3}{unit}", c["base"].as_f64().unwrap_or(0.0)),
                new: format!("{:.3}{unit}", c["new"].as_f64().unwrap_or(0.0)),
                change: pct(c["change"].as_f64().unwrap_or(0.0)),
                interval: format!(
                    "{} .. {}",
                    pct(c["ci_low"].as_f64().unwrap_or(0.0)),
                    pct(c["ci_high"].as_f64().unwrap_or(0.0))
                ),
                class: match verdict.as_str() {
                    "regressed" => "fail",
                    "improved" => "pass",
                    _ => "",
                },
                verdict: verdict.replace('_', " "),
            }
        })
        .collect()
}

fn system(doc: &Value) -> Vec<Row> {
    let s = &doc["system_info"];
    let gib = |b: &Value| format!("{:.1} GiB", b.as_f64().unwrap_or(0.0) / (1u64 << 30) as f64);
    [
        ("CPU", str_of(&s["cpu_model"])),
        ("cores", format!("{} logical", s["cpu_cores_logical"])),
        ("memory", gib(&s["memory_bytes"])),
        ("OS", str_of(&s["os"])),
        ("kernel", str_of(&s["kernel"])),
        ("benchctl", str_of(&doc["benchctl_version"])),
        ("scenario file", str_of(&doc["scenario"]["file"])),
        ("scenario sha256", str_of(&doc["scenario"]["sha256"])),
    ]
    .into_iter()
    .map(|(k, v)| Row { key: k.into(), value: v })
    .collect()
}

fn view(doc: &Value, ev: &Evaluation) -> View {
    let scenario = str_of(&doc["scenario"]["name"]);
    View {
        title: format!("benchctl: {scenario}"),
        description: str_of(&doc["scenario"]["description"]),
        timestamp: str_of(&doc["timestamp"]),
        duration: format!("{:.1} s", doc["duration_s"].as_f64().unwrap_or(0.0)),
        status: str_of(&doc["status"]),
        verdict: ev.verdict,
        verdict_class: match ev.verdict {
            "passed" => "pass",
            "invalid" => "warn",
            _ => "fail",
        },
        grade: ev.performance_grade.as_str(),
        grade_class: match ev.performance_grade {
            Grade::Excellent | Grade::Good | Grade::Ungraded => "pass",
            Grade::Acceptable => "warn",
            Grade::Poor => "fail",
        },
        score_pct: format!("{:.0}%", ev.score * 100.0),
        targets_met: ev.targets_met,
        total_targets: ev.total_targets,
        invalid_reasons: ev.invalid_reasons.clone(),
        host_findings: ev.host_findings.iter().map(|f| f.message.clone()).collect(),
        host_quiet: ev.host_quiet.clone(),
        expectations: ev
            .outcomes
            .iter()
            .map(|o| ExpectationView {
                status: status_word(o.status),
                class: class(o.status),
                name: o.name.clone(),
                measured: o.measured_text.clone(),
                scope: scope(o),
                message: o.message.clone(),
            })
            .collect(),
        recommendations: ev.recommendations.clone(),
        workloads: workloads(doc),
        setups: super::setup::setups(doc),
        charts: charts(doc),
        stress: stress(doc),
        comparison: comparison(doc),
        comparison_baseline: doc.pointer("/comparison/baseline").map(str_of).unwrap_or_default(),
        warnings: doc["warnings"]
            .as_array()
            .map(|w| w.iter().map(|w| w["message"].as_str().map(str::to_string).unwrap_or_else(|| str_of(w))).collect())
            .unwrap_or_default(),
        system: system(doc),
        scenario,
    }
}

/// Renders the report with `template` (the built-in one when `None`).
pub fn html(doc: &Value, ev: &Evaluation, template: Option<&str>) -> Result<String, TemplateError> {
    let mut tera = tera::Tera::new();
    tera.add_raw_template("report.html", template.unwrap_or(DEFAULT_TEMPLATE))
        .map_err(|e| TemplateError::Parse(e.to_string()))?;
    let context = tera::Context::from_serialize(&view(doc, ev)).map_err(|e| TemplateError::Context(e.to_string()))?;
    tera.render("report.html", &context).map_err(|e| TemplateError::Render(e.to_string()))
}

/// Why the HTML report could not be made (a user's `--templates` is the usual cause).
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateError {
    /// The template is not valid Tera.
    Parse(String),
    /// The view-model could not be serialised for the template.
    Context(String),
    /// The template names something the view-model does not have, or a filter failed.
    Render(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Parse(e) => write!(f, "the report template does not parse: {e}"),
            TemplateError::Context(e) => write!(f, "cannot build the report context: {e}"),
            TemplateError::Render(e) => write!(f, "cannot render the report: {e}"),
        }
    }
}

impl std::error::Error for TemplateError {}
