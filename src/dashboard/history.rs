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
pub fn run_of(file: String, doc: &ResultDoc) -> Result<Run, NotARun> {
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
    })
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
/// and by more than three robust standard deviations (1.4826 MAD) of those runs. One
/// marker per step.
pub fn steps(xs: &[f64], tolerance: f64) -> Vec<(usize, f64)> {
    let mut out = vec![];
    let mut i = 3;
    while i + 3 <= xs.len() {
        let mut before: Vec<f64> = xs[i.saturating_sub(5)..i].to_vec();
        let mut after: Vec<f64> = xs[i..i + 3].to_vec();
        let (b, a) = (median(&mut before), median(&mut after));
        let mut dev: Vec<f64> = before.iter().map(|x| (x - b).abs()).collect();
        let sigma = 1.4826 * median(&mut dev);
        // The step starts at i: run i itself is already on the far side.
        let starts_here = relative_change(b, xs[i])
            .is_some_and(|c| c.abs() > tolerance && (xs[i] - b).abs() > 3.0 * sigma && (xs[i] - b) * (a - b) > 0.0);
        match relative_change(b, a) {
            Some(c) if starts_here && c.abs() > tolerance && (a - b).abs() > 3.0 * sigma => {
                out.push((i, c));
                i += 3;
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads every result under `dir` and marks regressions and steps.
pub fn load(dir: &Path, baseline: Option<&(String, Run)>, tolerance: f64) -> History {
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
        match run_of(rel.clone(), &doc) {
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
    let markers = markers(&groups, &runs, baseline, tolerance);
    History {
        dir: dir.display().to_string(),
        runs,
        groups,
        markers,
        baseline: baseline.map(|b| b.0.clone()),
        tolerance,
        skipped,
    }
}

/// Regression markers (each point against the baseline file, or the series' first run)
/// and step markers, per series, workload and metric.
fn markers(groups: &[Group], runs: &[Run], baseline: Option<&(String, Run)>, tolerance: f64) -> Vec<Marker> {
    let mut markers = vec![];
    for g in groups {
        let names: std::collections::BTreeSet<&String> =
            g.runs.iter().flat_map(|&i| runs[i].workloads.keys()).collect();
        for w in names {
            for (metric, higher_better) in METRICS {
                let series: Vec<(usize, f64)> =
                    g.runs.iter().filter_map(|&i| runs[i].workloads.get(w)?.get(metric).map(|&v| (i, v))).collect();
                if series.is_empty() {
                    continue;
                }
                // The baseline: the file given (same scenario), else the series' first run.
                let base = baseline
                    .filter(|(_, b)| b.scenario == g.scenario)
                    .and_then(|(_, b)| b.workloads.get(w)?.get(metric).copied())
                    .or_else(|| (series.len() > 1).then_some(series[0].1));
                if let Some(b) = base {
                    for &(i, x) in series.iter().skip(usize::from(baseline.is_none())) {
                        let Some(c) = relative_change(b, x) else { continue };
                        let worse = if higher_better { c < -tolerance } else { c > tolerance };
                        if worse {
                            markers.push(Marker {
                                run: i,
                                workload: w.clone(),
                                metric: metric.to_string(),
                                kind: "regression",
                                change: c,
                                message: format!("{w}.{metric} {:+.1}% against the baseline", c * 100.0),
                            });
                        }
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
pub fn router(dir: PathBuf, baseline: Option<(String, Run)>, tolerance: f64) -> Router {
    let ctx = std::sync::Arc::new((dir, baseline, tolerance));
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    let title = format!("benchctl history: {}", ctx.0.display());
    Router::new()
        .route("/", get(move || async move { super::html("history", &title) }))
        .route("/api/runs", get(move || async move { axum::Json(load(&c1.0, c1.1.as_ref(), c1.2)).into_response() }))
        .route(
            "/export.csv",
            get(move |Query(f): Query<Filter>| async move {
                let body = csv(&rows(&load(&c2.0, c2.1.as_ref(), c2.2), &f));
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
                let body = serde_json::to_string_pretty(&rows(&load(&c3.0, c3.1.as_ref(), c3.2), &f))
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

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
