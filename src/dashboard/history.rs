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
use serde_json::Value;

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

fn host_key(doc: &Value) -> String {
    let s = &doc["system_info"];
    let gpus: Vec<String> =
        s["gpus"].as_array().into_iter().flatten().filter_map(|g| g["name"].as_str().map(str::to_string)).collect();
    let mut k = format!(
        "{} · {} cores · {:.0} GiB",
        s["cpu_model"].as_str().unwrap_or("unknown CPU"),
        s["cpu_cores_logical"].as_u64().unwrap_or(0),
        s["memory_bytes"].as_f64().unwrap_or(0.0) / (1u64 << 30) as f64
    );
    if !gpus.is_empty() {
        k.push_str(&format!(" · {}", gpus.join(", ")));
    }
    k
}

/// The metrics of one workload record of a result document.
fn metrics_of(w: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            m.insert(k.to_string(), v);
        }
    };
    put("throughput", w["throughput"].as_f64());
    put("tok_s", w["tok_s"].as_f64().filter(|&v| v > 0.0));
    put("error_rate", w["error_rate"].as_f64());
    put("latency_p50", w["metrics"]["latency"]["p50"].as_f64());
    put("latency_p95", w["metrics"]["latency"]["p95"].as_f64());
    put("latency_p99", w["metrics"]["latency"]["p99"].as_f64());
    put("ttft_p95", w["metrics"]["ttft"]["p95"].as_f64());
    put("itl_p95", w["metrics"]["itl"]["p95"].as_f64());
    m
}

/// A result document's row, or why the file is not one.
pub fn run_of(file: String, doc: &Value) -> Result<Run, String> {
    if doc.get("shard").is_some() {
        return Err("a shard file (merge the shards with `benchctl merge`)".into());
    }
    let benchmarks = doc["benchmarks"].as_object().ok_or("no `benchmarks`: not a benchctl result")?;
    Ok(Run {
        file,
        timestamp: doc["timestamp"].as_str().unwrap_or("").to_string(),
        scenario: doc["scenario"]["name"].as_str().unwrap_or("").to_string(),
        host: host_key(doc),
        hostname: doc["system_info"]["hostname"].as_str().map(str::to_string),
        verdict: doc.pointer("/evaluation/verdict").and_then(Value::as_str).map(str::to_string),
        status: doc["status"].as_str().unwrap_or("").to_string(),
        workloads: benchmarks.iter().map(|(n, w)| (n.clone(), metrics_of(w))).collect(),
    })
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
        let doc: Value = match std::fs::read(&f)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => {
                skipped.push((rel, e));
                continue;
            }
        };
        // Other JSON files (fleet.json, a baseline, a plan) are not runs.
        if doc.get("schema_version").is_none() || doc.get("benchmarks").is_none() {
            continue;
        }
        match run_of(rel.clone(), &doc) {
            Ok(r) => runs.push(r),
            Err(e) => skipped.push((rel, e)),
        }
    }
    runs.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.file.cmp(&b.file)));
    let mut by: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        by.entry((r.scenario.clone(), r.host.clone())).or_default().push(i);
    }
    let groups: Vec<Group> = by.into_iter().map(|((scenario, host), runs)| Group { scenario, host, runs }).collect();
    let mut markers = vec![];
    for g in &groups {
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

#[derive(Deserialize, Default)]
pub struct Filter {
    pub scenario: Option<String>,
    pub host: Option<String>,
    pub workload: Option<String>,
    pub metric: Option<String>,
}

/// One row per run, workload and metric, filtered; with the markers of that point.
pub fn rows(h: &History, f: &Filter) -> Vec<Value> {
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
                out.push(serde_json::json!({
                    "file": r.file, "timestamp": r.timestamp, "scenario": r.scenario, "host": r.host,
                    "verdict": r.verdict, "workload": w, "metric": m, "value": v, "markers": marks.join(" "),
                }));
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

pub fn csv(rows: &[Value]) -> String {
    let cols = ["file", "timestamp", "scenario", "host", "verdict", "workload", "metric", "value", "markers"];
    let mut s = cols.join(",");
    s.push('\n');
    for r in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match &r[*c] {
                Value::String(x) => csv_cell(x),
                Value::Null => String::new(),
                v => v.to_string(),
            })
            .collect();
        s.push_str(&cells.join(","));
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
                let body =
                    serde_json::to_string_pretty(&rows(&load(&c3.0, c3.1.as_ref(), c3.2), &f)).unwrap_or_default();
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
