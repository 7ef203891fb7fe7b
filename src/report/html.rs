//! The HTML report: one self-contained file (styles and script inline, no network),
//! rendered by Tera from a flat view-model. Its charts are drawn by the dashboard's
//! renderer from the run's events, embedded as JSON, as the live page drew them. The template is built in and can be
//! replaced with `--templates DIR` (DIR/report.html).

use crate::result::{ResultDoc, Verdict};
use serde::Serialize;

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
struct StepView {
    load: String,
    verdict: &'static str,
    class: &'static str,
    settled: String,
    samples: String,
    throughput: String,
    closest: String,
}

#[derive(Serialize)]
struct CapacityView {
    workload: String,
    answer: String,
    steps: Vec<StepView>,
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
    /// The scraped servers beside their clients: a line per server, a header, rows.
    server_notes: Vec<String>,
    server_columns: Vec<String>,
    server_rows: Vec<Vec<String>>,
    /// The chart renderer and its styles (the dashboard's), and the run's events as JSON
    /// that is safe inside a `<script>` element.
    charts_js: &'static str,
    dashboard_css: &'static str,
    events_json: String,
    capacity: Option<CapacityView>,
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

/// A time in seconds (the result's unit) shown in milliseconds.
fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2} ms", x * 1e3))
}

fn workloads(doc: &ResultDoc) -> Vec<WorkloadView> {
    doc.benchmarks
        .iter()
        .map(|(name, w)| {
            let m = |metric: &str, q: fn(&crate::stats::DistSummary) -> f64| w.metric(metric).map(q);
            WorkloadView {
                name: name.clone(),
                kind: w.kind.clone(),
                requests: w.requests.to_string(),
                throughput: format!("{:.1}", w.throughput),
                errors: format!("{} ({:.2}%)", w.errors, w.error_rate * 100.0),
                p50: ms(m("latency", |s| s.p50)),
                p95: ms(m("latency", |s| s.p95)),
                p99: ms(m("latency", |s| s.p99)),
                ttft_p95: ms(m("ttft", |s| s.p95)),
                tok_s: w.tok_s.filter(|t| *t > 0.0).map_or("-".into(), |t| format!("{t:.0}")),
            }
        })
        .collect()
}

fn capacity(doc: &ResultDoc) -> Option<CapacityView> {
    let c = doc.capacity.as_ref()?;
    let steps = c.steps.iter().map(|s| StepView {
        load: match s.rate {
            Some(r) => format!("{r:.2}/s"),
            None => s.load.to_string(),
        },
        verdict: s.verdict.as_str(),
        class: match s.verdict {
            crate::engine::capacity::Verdict::Holds => "pass",
            crate::engine::capacity::Verdict::Missed => "fail",
            crate::engine::capacity::Verdict::Undecided => "warn",
        },
        settled: s.settled_text(),
        samples: s.samples.to_string(),
        throughput: format!("{:.1}/s", s.throughput),
        closest: s.closest_text(),
    });
    Some(CapacityView { workload: c.workload.clone(), answer: c.text(), steps: steps.collect() })
}

fn comparison(doc: &ResultDoc) -> Vec<ChangeView> {
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    doc.comparison
        .iter()
        .flat_map(|c| &c.changes)
        .map(|c| {
            let unit = &c.unit;
            ChangeView {
                workload: c.workload.clone(),
                metric: c.metric.clone(),
                base: format!("{:.3}{unit}", c.base),
                new: format!("{:.3}{unit}", c.new),
                change: pct(c.change),
                interval: format!("{} .. {}", pct(c.ci_low), pct(c.ci_high)),
                class: match c.verdict {
                    Verdict::Regressed => "fail",
                    Verdict::Improved => "pass",
                    _ => "",
                },
                verdict: c.verdict.words().to_string(),
            }
        })
        .collect()
}

fn system(doc: &ResultDoc) -> Vec<Row> {
    let s = &doc.system_info;
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    [
        ("CPU", s.cpu_model.clone()),
        ("cores", format!("{} logical", s.cpu_cores_logical)),
        ("memory", gib(s.memory_bytes)),
        ("OS", s.os.clone().unwrap_or_default()),
        ("kernel", s.kernel.clone().unwrap_or_default()),
        ("benchctl", doc.benchctl_version.clone()),
        ("scenario file", doc.scenario.file.clone()),
        ("scenario sha256", doc.scenario.sha256.clone()),
    ]
    .into_iter()
    .map(|(k, v)| Row { key: k.into(), value: v })
    .collect()
}

fn view(doc: &ResultDoc, ev: &Evaluation) -> View {
    let scenario = doc.scenario.name.clone();
    let server = super::summary::server_table(doc);
    View {
        title: format!("benchctl: {scenario}"),
        description: doc.scenario.description.clone().unwrap_or_default(),
        timestamp: doc.timestamp.clone(),
        duration: format!("{:.1} s", doc.duration_s),
        status: doc.status.to_string(),
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
        host_quiet: ev.host_quiet.to_string(),
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
        server_notes: server.as_ref().map(|s| s.2.clone()).unwrap_or_default(),
        server_columns: server.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
        server_rows: server.map(|s| s.1).unwrap_or_default(),
        charts_js: crate::dashboard::CHARTS_JS,
        dashboard_css: crate::dashboard::CSS,
        events_json: crate::dashboard::model::embed(&crate::dashboard::model::from_doc(doc, ev)),
        capacity: capacity(doc),
        comparison: comparison(doc),
        comparison_baseline: doc.comparison.as_ref().map(|c| c.baseline.clone()).unwrap_or_default(),
        warnings: doc.warnings.iter().map(|w| w.message.clone()).collect(),
        system: system(doc),
        scenario,
    }
}

/// Renders the report with `template` (the built-in one when `None`).
pub fn html(doc: &ResultDoc, ev: &Evaluation, template: Option<&str>) -> Result<String, TemplateError> {
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
