//! `benchctl dashboard DIR`: every result document under DIR as trends per metric, split by
//! scenario and by host (runs on different machines are not one series), with markers where
//! a run regressed against the baseline and where a series stepped, and exports to CSV and
//! JSON. DIR is read again on every request, so new runs appear as they are written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::extract::Query;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::result::{ResultDoc, WorkloadDoc};

/// The metrics each run shows, and whether a higher value is better.
pub const METRICS: [(&str, bool); 8] = [
    ("throughput", true),
    ("tok_s", true),
    ("latency_p50", false),
    ("latency_p95", false),
    ("latency_p99", false),
    ("ttft_p95", false),
    ("itl_p95", false),
    ("error_rate", false),
];

/// Folder depth searched below DIR.
const MAX_DEPTH: usize = 6;

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Path relative to DIR.
    pub file: String,
    pub timestamp: String,
    pub scenario: String,
    /// The machine, as far as comparing runs goes: CPU, cores, memory, GPUs.
    pub host: String,
    pub hostname: Option<String>,
    pub verdict: Option<String>,
    pub status: String,
    /// Per workload, per metric (base units: per second, seconds, fraction).
    pub workloads: BTreeMap<String, BTreeMap<String, f64>>,
    /// Where the document is, to read its histograms and repetitions again when a point
    /// needs evidence.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Marker {
    /// Index into the runs.
    pub run: usize,
    pub workload: String,
    pub metric: String,
    /// `regression` (against the baseline) or `step` (a lasting change in the series).
    pub kind: &'static str,
    /// Relative change (+0.12 = 12 % higher).
    pub change: f64,
    pub message: String,
    /// The rule that marked the point, with its figures.
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub dir: String,
    pub runs: Vec<Run>,
    /// Scenario and host: the runs of one series, oldest first (indexes into runs).
    pub groups: Vec<Group>,
    pub markers: Vec<Marker>,
    pub baseline: Option<String>,
    pub tolerance: f64,
    /// Files that looked like results but could not be read, and why.
    pub skipped: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub scenario: String,
    pub host: String,
    pub runs: Vec<usize>,
}

fn host_key(doc: &ResultDoc) -> String {
    let s = &doc.system_info;
    let gpus: Vec<&str> = s.gpus.iter().map(|g| g.name.as_str()).collect();
    let cpu = if s.cpu_model.is_empty() { "unknown CPU" } else { s.cpu_model.as_str() };
    let mut k =
        format!("{cpu} · {} cores · {:.0} GiB", s.cpu_cores_logical, s.memory_bytes as f64 / (1u64 << 30) as f64);
    if !gpus.is_empty() {
        k.push_str(&format!(" · {}", gpus.join(", ")));
    }
    k
}

/// The metrics of one workload record of a result document.
fn metrics_of(w: &WorkloadDoc) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            m.insert(k.to_string(), v);
        }
    };
    let q = |metric: &str, f: fn(&crate::stats::DistSummary) -> f64| w.metric(metric).map(f);
    put("throughput", Some(w.throughput));
    put("tok_s", w.tok_s.filter(|&v| v > 0.0));
    put("error_rate", Some(w.error_rate));
    put("latency_p50", q("latency", |s| s.p50));
    put("latency_p95", q("latency", |s| s.p95));
    put("latency_p99", q("latency", |s| s.p99));
    put("ttft_p95", q("ttft", |s| s.p95));
    put("itl_p95", q("itl", |s| s.p95));
    m
}

/// Why a result document is not one run of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotARun {
    /// One shard of a split run: a slice of the load, not a run.
    Shard,
}

impl std::fmt::Display for NotARun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotARun::Shard => f.write_str("a shard file (merge the shards with `benchctl merge`)"),
        }
    }
}

/// A result document's row (its verdict evaluated again, as `report` would), or why the
/// file is not one.
pub fn run_of(file: String, path: &Path, doc: &ResultDoc) -> Result<Run, NotARun> {
    if doc.shard.is_some() {
        return Err(NotARun::Shard);
    }
    Ok(Run {
        file,
        timestamp: doc.timestamp.clone(),
        scenario: doc.scenario.name.clone(),
        host: host_key(doc),
        hostname: doc.system_info.hostname.clone(),
        verdict: Some(crate::evaluate::evaluate(doc).verdict.to_string()),
        status: doc.status.to_string(),
        workloads: doc.benchmarks.iter().map(|(n, w)| (n.clone(), metrics_of(w))).collect(),
        path: path.to_path_buf(),
    })
}

/// The result `--baseline` names: its row, and the document the evidence reads.
pub struct Baseline {
    pub name: String,
    pub run: Run,
    pub doc: std::sync::Arc<ResultDoc>,
}

/// Why `--baseline FILE` cannot be the history's baseline.
#[derive(Debug)]
pub enum BaselineError {
    Read(crate::result::ReadError),
    NotARun(NotARun),
}

impl std::fmt::Display for BaselineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaselineError::Read(e) => write!(f, "{e}"),
            BaselineError::NotARun(e) => write!(f, "{e}"),
        }
    }
}

impl Baseline {
    pub fn read(path: &Path) -> Result<Baseline, BaselineError> {
        let doc = crate::result::read(path).map_err(BaselineError::Read)?;
        let name = path.display().to_string();
        let run = run_of(name.clone(), path, &doc).map_err(BaselineError::NotARun)?;
        Ok(Baseline { name, run, doc: std::sync::Arc::new(doc) })
    }
}

/// Whether a JSON file looks like a run's result (other JSON beside results, such as
/// fleet.json, a plan or a package file, is passed over without a word).
fn looks_like_result(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Looks {
        schema_version: Option<serde::de::IgnoredAny>,
        benchmarks: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Looks>(text).is_ok_and(|l| l.schema_version.is_some() && l.benchmarks.is_some())
}

fn find(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth < MAX_DEPTH => find(&p, depth + 1, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "json") => out.push(p),
            _ => {}
        }
    }
}

fn relative_change(base: f64, x: f64) -> Option<f64> {
    (base.abs() > f64::EPSILON).then(|| (x - base) / base.abs())
}

/// The median (sorts `v`; NaN-free input).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Step changes in a series: at run i, run i and the median of runs i..i+2 both differ from
/// the median of up to five runs before, in the same direction, by more than `tolerance`
/// and by more than three robust standard deviations (1.4826 MAD) of those runs, and the
/// runs from i on differ from those before by Welch's t at 99 % (so a run of identical
/// values before cannot make any wobble a step). One marker per step.
pub fn steps(xs: &[f64], tolerance: f64) -> Vec<(usize, f64)> {
    let mut out = vec![];
    let mut i = 3;
    while i + 3 <= xs.len() {
        let window = &xs[i.saturating_sub(5)..i];
        let mut before: Vec<f64> = window.to_vec();
        let mut after: Vec<f64> = xs[i..i + 3].to_vec();
        let (b, a) = (median(&mut before), median(&mut after));
        let mut dev: Vec<f64> = before.iter().map(|x| (x - b).abs()).collect();
        let sigma = 1.4826 * median(&mut dev);
        // The step starts at i: run i itself is already on the far side.
        let starts_here = relative_change(b, xs[i])
            .is_some_and(|c| c.abs() > tolerance && (xs[i] - b).abs() > 3.0 * sigma && (xs[i] - b) * (a - b) > 0.0);
        match relative_change(b, a) {
            Some(c)
                if starts_here
                    && c.abs() > tolerance
                    && (a - b).abs() > 3.0 * sigma
                    && welch_differs(window, &xs[i..i + 3], 0.99) =>
            {
                out.push((i, c));
                i += 3;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether the means of `a` and `b` differ by Welch's t at `confidence` (two-sided). With
/// no spread on either side, any difference does.
fn welch_differs(a: &[f64], b: &[f64], confidence: f64) -> bool {
    // Both sides hold at least three runs here (three before a step, three from it on).
    let mv = |x: &[f64]| {
        let (m, v) = crate::compare::mean_var(x);
        (m, v, x.len() as f64)
    };
    let ((ma, va, na), (mb, vb, nb)) = (mv(a), mv(b));
    let (sa, sb) = (va / na, vb / nb);
    if sa + sb <= 0.0 {
        return ma != mb;
    }
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0).max(1.0) + sb * sb / (nb - 1.0).max(1.0));
    let t = crate::stats::evidence::student_t_quantile(1.0 - (1.0 - confidence) / 2.0, df.max(1.0));
    (mb - ma).abs() > t * (sa + sb).sqrt()
}

/// The history's metric as `compare` names it (`latency_p95` -> `latency.p95`); `None` for
/// the error rate, which `compare` does not gate.
fn compared_metric(metric: &str) -> Option<String> {
    match metric {
        "throughput" | "tok_s" => Some(metric.to_string()),
        "error_rate" => None,
        m => m.rsplit_once('_').map(|(a, b)| format!("{a}.{b}")),
    }
}

/// What the evidence said about one point against its baseline.
#[derive(Debug, Clone)]
pub struct Judged {
    pub regressed: bool,
    pub change: f64,
    pub rule: String,
}

/// Judgements already made, by baseline file, run file (each with its modification time),
/// workload and metric: the page asks again every 10 s, and a bootstrap is not free.
#[derive(Default)]
pub struct Evidence {
    judged: std::sync::Mutex<std::collections::HashMap<String, Option<Judged>>>,
}

fn file_key(p: &Path) -> String {
    let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let ns = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    format!("{}@{ns}", p.display())
}

/// A point against its baseline, by the rule `compare` uses: between-run variance where
/// either side has repetitions, else the histograms' own sampling error and the noise floor;
/// for the error rate, a two-proportion test on the request counts. Significant at 95 % and
/// beyond the tolerance, in the worse direction.
pub fn judge(base: &ResultDoc, new: &ResultDoc, workload: &str, metric: &str, tolerance: f64) -> Option<Judged> {
    let pct = |x: f64| format!("{:+.1}%", x * 100.0);
    let Some(compared) = compared_metric(metric) else {
        let (b, n) = (base.benchmarks.get(workload)?, new.benchmarks.get(workload)?);
        return error_rate_judged(b.errors, b.requests, n.errors, n.requests, tolerance);
    };
    let c = crate::compare::change(base, new, workload, &compared, tolerance)?;
    let beyond = if c.noise_floor > c.tolerance {
        format!("beyond the single-run noise floor {:.0}%", c.noise_floor * 100.0)
    } else {
        format!("beyond the tolerance {:.0}%", c.tolerance * 100.0)
    };
    Some(Judged {
        regressed: c.verdict == crate::compare::Verdict::Regressed,
        change: c.change,
        rule: format!(
            "{}: {} (95% interval {} .. {}), {beyond}",
            c.method,
            pct(c.change),
            pct(c.ci_low),
            pct(c.ci_high)
        ),
    })
}

/// Error rates as binomial proportions: the new one is worse when a one-sided 97.5 % z-test
/// on the pooled proportion says so and the relative change is beyond the tolerance.
fn error_rate_judged(be: u64, bn: u64, ne: u64, nn: u64, tolerance: f64) -> Option<Judged> {
    if bn == 0 || nn == 0 {
        return None;
    }
    let (pb, pn) = (be as f64 / bn as f64, ne as f64 / nn as f64);
    let pool = (be + ne) as f64 / (bn + nn) as f64;
    let se = (pool * (1.0 - pool) * (1.0 / bn as f64 + 1.0 / nn as f64)).sqrt();
    let z = if se > 0.0 { (pn - pb) / se } else { 0.0 };
    let change = if pb > 0.0 {
        pn / pb - 1.0
    } else if pn > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some(Judged {
        regressed: z > 1.96 && change > tolerance,
        change: if change.is_finite() { change } else { pn },
        rule: format!(
            "two-proportion test on the request counts: {ne} of {nn} failed against {be} of {bn} (z = {z:.2}, worse beyond 1.96), beyond the tolerance {:.0}%",
            tolerance * 100.0
        ),
    })
}

/// Reads every result under `dir` and marks regressions and steps.
pub fn load(dir: &Path, baseline: Option<&Baseline>, tolerance: f64, evidence: &Evidence) -> History {
    let mut files = vec![];
    find(dir, 0, &mut files);
    let (mut runs, mut skipped) = (vec![], vec![]);
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        let text = match crate::dsl::source::read_text_bounded(&f, crate::result::MAX_RESULT_BYTES) {
            Ok(t) => t,
            Err(e) => {
                skipped.push((rel, e.to_string()));
                continue;
            }
        };
        let doc = match crate::result::read_str(&text, &f) {
            Ok(d) => d,
            Err(e @ crate::result::ReadError::NotJson { .. }) => {
                skipped.push((rel, e.to_string()));
                continue;
            }
            // Other JSON beside the results (fleet.json, a plan) is passed over without a word.
            Err(_) if !looks_like_result(&text) => continue,
            Err(e) => {
                skipped.push((rel, e.to_string()));
                continue;
            }
        };
        match run_of(rel.clone(), &f, &doc) {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push((rel, e.to_string())),
        }
    }
    runs.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.file.cmp(&b.file)));
    let mut by: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        by.entry((r.scenario.clone(), r.host.clone())).or_default().push(i);
    }
    let groups: Vec<Group> = by.into_iter().map(|((scenario, host), runs)| Group { scenario, host, runs }).collect();
    let markers = markers(&groups, &runs, baseline, tolerance, evidence);
    History {
        dir: dir.display().to_string(),
        runs,
        groups,
        markers,
        baseline: baseline.map(|b| b.name.clone()),
        tolerance,
        skipped,
    }
}

/// Judges the points of one series against its baseline: reads a run's document again only
/// when a point estimate puts it past the tolerance (the evidence needs its histograms and
/// repetitions), once per run, and keeps every judgement in `Evidence`.
struct SeriesJudge<'a> {
    runs: &'a [Run],
    file_base: Option<&'a Baseline>,
    tolerance: f64,
    evidence: &'a Evidence,
    docs: std::collections::HashMap<usize, Option<std::sync::Arc<ResultDoc>>>,
}

impl SeriesJudge<'_> {
    fn doc(&mut self, i: usize) -> Option<std::sync::Arc<ResultDoc>> {
        let path = &self.runs[i].path;
        self.docs.entry(i).or_insert_with(|| crate::result::read(path).ok().map(std::sync::Arc::new)).clone()
    }

    /// Run `i` against the baseline (run `first` of the series, or the baseline file).
    fn judged(&mut self, first: Option<usize>, i: usize, w: &str, metric: &str) -> Option<Judged> {
        let base_path = match (first, self.file_base) {
            (Some(f), _) => self.runs[f].path.clone(),
            (None, Some(b)) => PathBuf::from(&b.name),
            (None, None) => return None,
        };
        let key = format!("{}|{}|{w}|{metric}", file_key(&base_path), file_key(&self.runs[i].path));
        if let Some(j) = self.evidence.judged.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return j.clone();
        }
        let base_doc = match first {
            Some(f) => self.doc(f),
            None => self.file_base.map(|b| b.doc.clone()),
        };
        let j = match (base_doc, self.doc(i)) {
            (Some(bd), Some(nd)) => judge(&bd, &nd, w, metric, self.tolerance),
            _ => None,
        };
        self.evidence.judged.lock().unwrap_or_else(|e| e.into_inner()).insert(key, j.clone());
        j
    }
}

/// Regression markers (each point against the baseline file, or the series' first run, by
/// the evidence of `judge`) and step markers, per series, workload and metric.
fn markers(
    groups: &[Group],
    runs: &[Run],
    baseline: Option<&Baseline>,
    tolerance: f64,
    evidence: &Evidence,
) -> Vec<Marker> {
    let mut markers = vec![];
    for g in groups {
        let file_base = baseline.filter(|b| b.run.scenario == g.scenario);
        let mut judge = SeriesJudge { runs, file_base, tolerance, evidence, docs: Default::default() };
        let names: std::collections::BTreeSet<&String> =
            g.runs.iter().flat_map(|&i| runs[i].workloads.keys()).collect();
        for w in names {
            for (metric, higher_better) in METRICS {
                let series: Vec<(usize, f64)> =
                    g.runs.iter().filter_map(|&i| runs[i].workloads.get(w)?.get(metric).map(|&v| (i, v))).collect();
                // The baseline: the file given (same scenario), else the series' first run.
                let base = match file_base {
                    Some(b) => b.run.workloads.get(w).and_then(|m| m.get(metric)).map(|&v| (v, None)),
                    None => (series.len() > 1).then(|| (series[0].1, Some(series[0].0))),
                };
                for &(i, x) in base.map_or(&[][..], |(_, first)| &series[usize::from(first.is_some())..]) {
                    let (b, first) = base.expect("only with a baseline");
                    let past =
                        relative_change(b, x)
                            .is_some_and(|c| if higher_better { c < -tolerance } else { c > tolerance });
                    if let Some(j) = past.then(|| judge.judged(first, i, w, metric)).flatten().filter(|j| j.regressed) {
                        markers.push(Marker {
                            run: i,
                            workload: w.clone(),
                            metric: metric.to_string(),
                            kind: "regression",
                            change: j.change,
                            message: format!("{w}.{metric} {:+.1}% against the baseline", j.change * 100.0),
                            rule: j.rule,
                        });
                    }
                }
                let xs: Vec<f64> = series.iter().map(|s| s.1).collect();
                for (j, c) in steps(&xs, tolerance) {
                    markers.push(Marker {
                        run: series[j].0,
                        workload: w.clone(),
                        metric: metric.to_string(),
                        kind: "step",
                        change: c,
                        message: format!("{w}.{metric} stepped {:+.1}% from this run on", c * 100.0),
                        rule: format!(
                            "step: this run and the median of it and the next two against the median of up to five runs before, beyond the tolerance {:.0}% and three robust standard deviations, Welch's t at 99%",
                            tolerance * 100.0
                        ),
                    });
                }
            }
        }
    }
    markers
}

#[derive(Deserialize, Default)]
pub struct Filter {
    pub scenario: Option<String>,
    pub host: Option<String>,
    pub workload: Option<String>,
    pub metric: Option<String>,
}

/// One exported point: a run's value of one workload's metric, with its markers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub file: String,
    pub timestamp: String,
    pub scenario: String,
    pub host: String,
    pub verdict: Option<String>,
    pub workload: String,
    pub metric: String,
    pub value: f64,
    /// The markers' kinds, space-separated.
    pub markers: String,
}

impl Row {
    /// The CSV columns, in order.
    const COLUMNS: [&'static str; 9] =
        ["file", "timestamp", "scenario", "host", "verdict", "workload", "metric", "value", "markers"];

    fn cells(&self) -> [String; 9] {
        [
            csv_cell(&self.file),
            csv_cell(&self.timestamp),
            csv_cell(&self.scenario),
            csv_cell(&self.host),
            self.verdict.as_deref().map(csv_cell).unwrap_or_default(),
            csv_cell(&self.workload),
            csv_cell(&self.metric),
            serde_json::Number::from_f64(self.value).map_or_else(String::new, |n| n.to_string()),
            csv_cell(&self.markers),
        ]
    }
}

/// One row per run, workload and metric, filtered; with the markers of that point.
pub fn rows(h: &History, f: &Filter) -> Vec<Row> {
    let keep = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w.is_empty() || w == have);
    let mut out = vec![];
    for (i, r) in h.runs.iter().enumerate() {
        if !keep(&f.scenario, &r.scenario) || !keep(&f.host, &r.host) {
            continue;
        }
        for (w, ms) in &r.workloads {
            if !keep(&f.workload, w) {
                continue;
            }
            for (m, v) in ms {
                if !keep(&f.metric, m) {
                    continue;
                }
                let marks: Vec<&str> = h
                    .markers
                    .iter()
                    .filter(|k| k.run == i && &k.workload == w && &k.metric == m)
                    .map(|k| k.kind)
                    .collect();
                out.push(Row {
                    file: r.file.clone(),
                    timestamp: r.timestamp.clone(),
                    scenario: r.scenario.clone(),
                    host: r.host.clone(),
                    verdict: r.verdict.clone(),
                    workload: w.clone(),
                    metric: m.clone(),
                    value: *v,
                    markers: marks.join(" "),
                });
            }
        }
    }
    out
}

fn csv_cell(s: &str) -> String {
    // A leading = + - @ would be read as a formula by a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn csv(rows: &[Row]) -> String {
    let mut s = Row::COLUMNS.join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&r.cells().join(","));
        s.push('\n');
    }
    s
}

/// The history server's routes.
pub fn router(dir: PathBuf, baseline: Option<Baseline>, tolerance: f64, evidence: std::sync::Arc<Evidence>) -> Router {
    let ctx = std::sync::Arc::new((dir, baseline, tolerance, evidence));
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    let title = format!("benchctl history: {}", ctx.0.display());
    Router::new()
        .route("/", get(move || async move { super::html("history", &title) }))
        .route(
            "/api/runs",
            get(move || async move { axum::Json(load(&c1.0, c1.1.as_ref(), c1.2, &c1.3)).into_response() }),
        )
        .route(
            "/export.csv",
            get(move |Query(f): Query<Filter>| async move {
                let body = csv(&rows(&load(&c2.0, c2.1.as_ref(), c2.2, &c2.3), &f));
                (
                    [
                        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"benchctl-history.csv\""),
                    ],
                    body,
                )
            }),
        )
        .route(
            "/export.json",
            get(move |Query(f): Query<Filter>| async move {
                let body = serde_json::to_string_pretty(&rows(&load(&c3.0, c3.1.as_ref(), c3.2, &c3.3), &f))
                    .expect("history rows serialise: plain fields");
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CONTENT_DISPOSITION, "attachment; filename=\"benchctl-history.json\""),
                    ],
                    body,
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_found_once_and_noise_is_not() {
        let flat = [100.0, 101.0, 99.0, 100.5, 99.5, 100.0, 101.0, 99.0];
        assert!(steps(&flat, 0.05).is_empty());
        let step = [100.0, 101.0, 99.0, 100.5, 80.0, 81.0, 79.5, 80.5, 80.0];
        let s = steps(&step, 0.05);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].0, 4);
        assert!((s[0].1 + 0.2).abs() < 0.02);
    }

    /// Five identical runs before leave no spread, so the robust deviation is zero; a
    /// wobble after them is not a step unless Welch's t says the runs differ.
    #[test]
    fn a_wobble_after_identical_runs_is_not_a_step() {
        let wobble = [100.0, 100.0, 100.0, 100.0, 100.0, 106.0, 99.0, 107.0];
        assert!(steps(&wobble, 0.05).is_empty(), "{:?}", steps(&wobble, 0.05));
        let step = [100.0, 100.0, 100.0, 100.0, 100.0, 120.0, 121.0, 119.0];
        assert_eq!(steps(&step, 0.05).len(), 1);
    }

    #[test]
    fn the_history_names_metrics_as_compare_does() {
        assert_eq!(compared_metric("latency_p95").as_deref(), Some("latency.p95"));
        assert_eq!(compared_metric("ttft_p95").as_deref(), Some("ttft.p95"));
        assert_eq!(compared_metric("tok_s").as_deref(), Some("tok_s"));
        assert_eq!(compared_metric("error_rate"), None);
    }

    /// 2 failures in 500 against 0 in 500 is not evidence (z = 1.42); 30 in 500 is.
    #[test]
    fn error_rates_need_evidence() {
        assert!(!error_rate_judged(0, 500, 2, 500, 0.1).unwrap().regressed);
        let j = error_rate_judged(0, 500, 30, 500, 0.1).unwrap();
        assert!(j.regressed && j.rule.contains("30 of 500"), "{j:?}");
        assert!(!error_rate_judged(30, 500, 0, 500, 0.1).unwrap().regressed, "fewer errors is no regression");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
