//! `benchctl merge`: the shard files of a split run put together exactly (histograms and
//! counters add; throughput over the union of the shards' time spans), and a fleet's
//! results compared node by node with a robust outlier score. Files are read one at a time
//! and folded into the accumulator, so memory follows one file and the merged data, not the
//! number of shards. Every problem with an input names the file (exit 4).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::dsl::model::WorkloadKind;
use crate::engine::record::{Counters, Hists, Recorded};
use crate::result::{self, RunSummary};

/// A shard or node file that cannot be merged, named.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeError {
    pub file: Option<String>,
    pub message: String,
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{file}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn err(file: &Path, message: impl Into<String>) -> MergeError {
    MergeError { file: Some(file.display().to_string()), message: message.into() }
}

/// The files a merge reads: every `*.json` directly in `dir`, sorted by name.
pub fn inputs(dir: &Path) -> Result<Vec<PathBuf>, MergeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MergeError {
        file: Some(dir.display().to_string()),
        message: format!("cannot read the folder: {e}"),
    })?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads one result file: JSON of the current schema whose histograms all decode with the
/// settings benchctl records with.
pub fn read(path: &Path) -> Result<Value, MergeError> {
    let text = crate::dsl::source::read_text_bounded(path, result::MAX_RESULT_BYTES)
        .map_err(|e| err(path, format!("cannot read it: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        err(path, format!("truncated or not JSON ({e}); rerun this shard or remove the file and pass --allow-missing"))
    })?;
    match v["schema_version"].as_u64() {
        Some(n) if n == u64::from(result::RESULT_SCHEMA_VERSION) => {}
        other => {
            return Err(err(
                path,
                format!(
                    "result schema version {other:?}, not {} (written by another benchctl version)",
                    result::RESULT_SCHEMA_VERSION
                ),
            ))
        }
    }
    // Only the phases' histograms are read (the whole-run records are rebuilt from them);
    // each is decoded once, where it is folded in (see `check_record`).
    if !matches!(v["status"].as_str(), Some("completed" | "interrupted" | "limited" | "aborted")) {
        return Err(err(path, format!("damaged: `status` is {}", v["status"])));
    }
    Ok(v)
}

/// Every histogram was recorded with benchctl's settings (3 significant digits), so adding
/// them bucket by bucket is exact.
fn check_record(h: &Hists, r: &Value, phase: &str, workload: &str) -> Result<(), String> {
    for name in r["histograms"].as_object().into_iter().flatten().map(|(k, _)| k) {
        // Stored histograms have samples: one that reads back as none did not decode.
        if h.named(name).is_none_or(|(hist, _)| hist.is_empty()) {
            let why = crate::stats::decode(r["histograms"][name]["data"].as_str().unwrap_or_default())
                .err()
                .unwrap_or_else(|| "no samples".into());
            return Err(format!("damaged: histogram `{name}` of `{workload}` in phase `{phase}`: {why}"));
        }
    }
    for m in h.all() {
        if m.hist.sigfig() != crate::stats::SIGFIGS {
            return Err(format!(
                "histogram `{}` of `{workload}` in phase `{phase}` has {} significant digits, not {}: histograms of different precision cannot be added exactly",
                m.name,
                m.hist.sigfig(),
                crate::stats::SIGFIGS
            ));
        }
    }
    Ok(())
}

/// What must agree between two files for them to be parts of one run.
fn same_run(first: &Value, doc: &Value, section: &str, path: &Path, first_path: &Path) -> Result<(), MergeError> {
    let f = |d: &Value, k: &str| d[section][k].clone();
    if doc["benchctl_version"] != first["benchctl_version"] {
        return Err(err(
            path,
            format!(
                "written by benchctl {}, and {} by {}: run every part with the same version",
                doc["benchctl_version"],
                first_path.display(),
                first["benchctl_version"]
            ),
        ));
    }
    if f(doc, "scenario_hash") != f(first, "scenario_hash") {
        return Err(err(
            path,
            format!(
                "ran another scenario (hash {}) than {} ({}): the scenario files, --set parameters, seed or repeat differ",
                short(&f(doc, "scenario_hash")),
                first_path.display(),
                short(&f(first, "scenario_hash"))
            ),
        ));
    }
    let (a, b) = (f(doc, "run_id"), f(first, "run_id"));
    if !a.is_null() && !b.is_null() && a != b {
        return Err(err(
            path,
            format!("belongs to run {a}, and {} to run {b}: one folder per run", first_path.display()),
        ));
    }
    Ok(())
}

fn short(v: &Value) -> String {
    v.as_str().map_or("none".into(), |s| s.chars().take(12).collect())
}

// ---- split mode ----------------------------------------------------------------------------

struct WorkloadAcc {
    kind: WorkloadKind,
    hists: Hists,
    counters: Counters,
    windows: Vec<Value>,
}

struct PhaseAcc {
    name: String,
    role: Value,
    repetition: Value,
    stopped_by: BTreeSet<String>,
    /// Wall-clock span, seconds since the epoch.
    start: f64,
    end: f64,
    workloads: BTreeMap<String, WorkloadAcc>,
    /// The most disturbed generator's host record for the phase.
    host: Value,
}

/// Adds window `b` into window `a` (same index of the phase's series): counts and rates
/// add; per-window percentiles become the largest of the shards' (a mixture's quantile never
/// exceeds its largest part's, so this bounds the merged window from above).
fn add_window(a: &mut Value, b: &Value) {
    for k in ["requests", "errors", "dropped", "unsent"] {
        a[k] = (a[k].as_u64().unwrap_or(0) + b[k].as_u64().unwrap_or(0)).into();
    }
    for k in ["throughput", "tok_s"] {
        a[k] = (a[k].as_f64().unwrap_or(0.0) + b[k].as_f64().unwrap_or(0.0)).into();
    }
    let Some(bm) = b["metrics"].as_object() else { return };
    if !a["metrics"].is_object() {
        a["metrics"] = json!({});
    }
    for (m, s) in bm {
        let slot = &mut a["metrics"][m];
        if slot.is_null() {
            *slot = s.clone();
            continue;
        }
        let (ca, cb) = (slot["count"].as_u64().unwrap_or(0), s["count"].as_u64().unwrap_or(0));
        let n = (ca + cb).max(1) as f64;
        slot["mean"] =
            ((slot["mean"].as_f64().unwrap_or(0.0) * ca as f64 + s["mean"].as_f64().unwrap_or(0.0) * cb as f64) / n)
                .into();
        slot["count"] = (ca + cb).into();
        for q in ["p50", "p90", "p95", "p99", "max"] {
            slot[q] = slot[q].as_f64().unwrap_or(0.0).max(s[q].as_f64().unwrap_or(0.0)).into();
        }
    }
}

/// One shard's row of the merged result's `merge.shards`.
struct ShardRow {
    index: u64,
    file: String,
    host: String,
    started: f64,
    ended: f64,
    status: String,
    requests: u64,
    planned_share: f64,
    intended: u64,
    sent: u64,
    late_sent: u64,
    unsent: u64,
    dropped: u64,
    findings: Vec<String>,
}

fn planned_share(doc: &Value) -> f64 {
    let shares: Vec<f64> =
        doc["shard"]["drives"].as_array().into_iter().flatten().filter_map(|d| d["share"].as_f64()).collect();
    if shares.is_empty() {
        1.0 / doc["shard"]["count"].as_f64().unwrap_or(1.0)
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    }
}

fn phase_names(d: &Value) -> Vec<(Value, Value, Value)> {
    d["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["name"].clone(), p["role"].clone(), p["repetition"].clone()))
        .collect()
}

/// Merges the shard files of one split run into one result document (not yet evaluated).
pub fn split(paths: &[PathBuf], expect: u64, allow_missing: u64) -> Result<Value, MergeError> {
    let mut first: Option<(PathBuf, Value)> = None;
    let mut seen: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut phases: Vec<PhaseAcc> = vec![];
    let mut rows: Vec<ShardRow> = vec![];
    let mut warnings: Vec<Value> = vec![];
    let mut probes: BTreeMap<String, Value> = BTreeMap::new();
    let mut status_rank = 0;
    let mut systems = vec![];
    let mut first_names = vec![];
    for path in paths {
        let mut doc = read(path)?;
        let s = &doc["shard"];
        if !s.is_object() {
            return Err(err(path, "not a shard file (no `shard` section): a shard is written by `benchctl run --shard I/N`; keep other results out of the folder"));
        }
        let (index, count) = (s["index"].as_u64().unwrap_or(u64::MAX), s["count"].as_u64().unwrap_or(0));
        if count != expect {
            return Err(err(path, format!("shard {index} of a {count}-shard run, but --expect {expect}")));
        }
        if index >= count {
            return Err(err(path, format!("shard index {index} is not below its count {count}")));
        }
        if let Some(other) = seen.get(&index) {
            return Err(err(
                path,
                format!("duplicate of shard {index}, already read from {}: remove one", other.display()),
            ));
        }
        if let Some((fp, f)) = &first {
            same_run(f, &doc, "shard", path, fp)?;
            if phase_names(&doc) != first_names {
                return Err(err(
                    path,
                    format!(
                        "ran other phases than {} (an interrupted or aborted shard stops early): {} against {}",
                        fp.display(),
                        phase_names(&doc).len(),
                        first_names.len()
                    ),
                ));
            }
        } else {
            first_names = phase_names(&doc);
        }
        seen.insert(index, path.clone());
        let started = s["started_unix_s"].as_f64().unwrap_or(0.0);
        let rank = match doc["status"].as_str() {
            Some("interrupted") => 3,
            Some("limited") => 2,
            Some("aborted") => 1,
            _ => 0,
        };
        status_rank = status_rank.max(rank);
        let mut row = ShardRow {
            index,
            file: path.display().to_string(),
            host: doc["system_info"]["hostname"].as_str().unwrap_or("").to_string(),
            started,
            ended: s["ended_unix_s"].as_f64().unwrap_or(started),
            status: doc["status"].as_str().unwrap_or("").to_string(),
            requests: 0,
            planned_share: planned_share(&doc),
            intended: 0,
            sent: 0,
            late_sent: 0,
            unsent: 0,
            dropped: 0,
            findings: crate::evaluate::host::findings(&doc).into_iter().map(|f| f.message).collect(),
        };
        for (pi, p) in doc["phases"].as_array().into_iter().flatten().enumerate() {
            let p_start = started + p["started_s"].as_f64().unwrap_or(0.0);
            let p_end = p_start + p["duration_s"].as_f64().unwrap_or(0.0);
            if phases.len() <= pi {
                phases.push(PhaseAcc {
                    name: p["name"].as_str().unwrap_or("").to_string(),
                    role: p["role"].clone(),
                    repetition: p["repetition"].clone(),
                    stopped_by: BTreeSet::new(),
                    start: p_start,
                    end: p_end,
                    workloads: BTreeMap::new(),
                    host: Value::Null,
                });
            }
            let acc = &mut phases[pi];
            acc.start = acc.start.min(p_start);
            acc.end = acc.end.max(p_end);
            acc.stopped_by.insert(p["stopped_by"].as_str().unwrap_or("").to_string());
            let busy = |h: &Value| h["others_mean"].as_f64().unwrap_or(-1.0) + h["steal_mean"].as_f64().unwrap_or(0.0);
            if busy(&p["host"]) > busy(&acc.host) {
                acc.host = p["host"].clone();
            }
            for (w, r) in p["workloads"].as_object().into_iter().flatten() {
                let (h, c, _) = crate::evaluate::value::record(r);
                check_record(&h, r, p["name"].as_str().unwrap_or(""), w).map_err(|m| err(path, m))?;
                if p["role"] == "measure" {
                    row.requests += c.requests;
                    row.sent += c.sent;
                    row.late_sent += c.late_sent;
                    row.unsent += c.unsent;
                    row.dropped += c.dropped;
                    row.intended += r["intended"].as_u64().unwrap_or(0);
                }
                let kind = r["kind"].as_str().and_then(WorkloadKind::from_name).unwrap_or(WorkloadKind::Synthetic);
                let wa = acc.workloads.entry(w.clone()).or_insert_with(|| WorkloadAcc {
                    kind,
                    hists: Hists::default(),
                    counters: Counters::default(),
                    windows: vec![],
                });
                wa.hists.add(&h);
                wa.counters.add(&c);
                for (i, win) in r["series"].as_array().into_iter().flatten().enumerate() {
                    if wa.windows.len() <= i {
                        wa.windows.push(win.clone());
                    } else {
                        add_window(&mut wa.windows[i], win);
                    }
                }
            }
        }
        for w in doc["warnings"].as_array().into_iter().flatten() {
            let mut w = w.clone();
            let m = w["message"].as_str().unwrap_or("").to_string();
            w["message"] = format!("shard {index}: {m}").into();
            warnings.push(w);
        }
        for (kind, pr) in doc["probes"].as_object().into_iter().flatten() {
            let slot = probes.entry(kind.clone()).or_insert_with(|| pr.clone());
            // Per series, the most loaded generator's (a bound on a probe holds on every one).
            for (name, series) in pr["series"].as_object().into_iter().flatten() {
                let peak = |v: &Value| v["summary"]["peak"].as_f64().unwrap_or(f64::NEG_INFINITY);
                if peak(series) > peak(&slot["series"][name]) {
                    slot["series"][name] = series.clone();
                }
            }
        }
        systems.push(json!({"shard": index, "system_info": doc["system_info"].take()}));
        rows.push(row);
        if first.is_none() {
            // The skeleton: scenario, config, facts; its phases and benchmarks are replaced.
            doc["phases"] = Value::Null;
            first = Some((path.clone(), doc));
        }
    }
    let Some((_, mut out)) = first else {
        return Err(MergeError {
            file: None,
            message: "no shard files in the folder: each shard writes shard-I-of-N.json into its --out".into(),
        });
    };
    let missing: Vec<u64> = (0..expect).filter(|i| !seen.contains_key(i)).collect();
    if missing.len() as u64 > allow_missing {
        return Err(MergeError {
            file: None,
            message: format!(
                "missing shard{} {} of {expect} (found {}); rerun {}, or pass --allow-missing {} to merge what is there",
                if missing.len() == 1 { "" } else { "s" },
                list(&missing),
                seen.len(),
                if missing.len() == 1 { "it" } else { "them" },
                missing.len()
            ),
        });
    }
    let t0 = rows.iter().map(|r| r.started).fold(f64::INFINITY, f64::min);
    let t1 = rows.iter().map(|r| r.ended).fold(f64::NEG_INFINITY, f64::max);
    if !missing.is_empty() {
        warnings.push(json!({
            "code": "shards_missing",
            "workload": null,
            "message": format!(
                "shard{} {} of {expect} missing (--allow-missing): the merged load is about {} of {expect} parts of the declared load",
                if missing.len() == 1 { "" } else { "s" }, list(&missing), expect - missing.len() as u64
            ),
        }));
    }
    // Phases: records added, over the union of the shards' spans.
    let facts: BTreeMap<String, Value> =
        out["benchmarks"].as_object().cloned().unwrap_or_default().into_iter().collect();
    let mut phase_docs = vec![];
    let mut measured: BTreeMap<String, (WorkloadKind, Recorded)> = BTreeMap::new();
    let mut reps: BTreeMap<u64, BTreeMap<String, (WorkloadKind, Recorded)>> = BTreeMap::new();
    for p in phases {
        let span = (p.end - p.start).max(0.0);
        let mut workloads = serde_json::Map::new();
        let is_measure = p.role == "measure";
        for (name, wa) in p.workloads {
            let rec = Recorded {
                hists: wa.hists,
                counters: wa.counters,
                series: vec![],
                elapsed: std::time::Duration::from_secs_f64(span),
            };
            let mut d = serde_json::to_value(result::workload_doc(wa.kind, &rec, true, None)).unwrap_or_default();
            d["series"] = Value::Array(wa.windows);
            if let Some(src) = facts.get(&name).and_then(|f| f.get("token_source")) {
                if !d["token_source"].is_null() {
                    d["token_source"] = src.clone();
                }
            }
            workloads.insert(name.clone(), d);
            if is_measure {
                let (_, acc) = measured.entry(name.clone()).or_insert_with(|| (wa.kind, Recorded::default()));
                acc.add_totals(&rec);
                let rep = p.repetition.as_u64().unwrap_or(1);
                let (_, acc) =
                    reps.entry(rep).or_default().entry(name).or_insert_with(|| (wa.kind, Recorded::default()));
                acc.add_totals(&rec);
            }
        }
        let stopped: Vec<String> = p.stopped_by.into_iter().collect();
        phase_docs.push(json!({
            "name": p.name,
            "role": p.role,
            "repetition": p.repetition,
            "started_s": p.start - t0,
            "duration_s": span,
            "stopped_by": stopped.join(" / "),
            "workloads": workloads,
            "search": null,
            "pressure": null,
            "host": p.host,
        }));
    }
    let memory_peak_mb =
        probes.get("process").and_then(|p| p["series"]["rss"]["summary"]["peak"].as_f64()).map(|b| b / 1e6);
    let mut benchmarks = serde_json::Map::new();
    for (name, (kind, r)) in &measured {
        let wd = result::workload_doc(*kind, r, false, None);
        let flat = result::flat_summary(&wd, memory_peak_mb);
        let mut d = serde_json::to_value(&wd).unwrap_or_default();
        d["summary"] = serde_json::to_value(flat).unwrap_or_default();
        if let Some(f) = facts.get(name) {
            for k in ["facts", "setup", "token_source"] {
                if !(f[k].is_null() || k == "token_source" && d[k].is_null()) {
                    d[k] = f[k].clone();
                }
            }
        }
        benchmarks.insert(name.clone(), d);
    }
    let timestamp = out["timestamp"].clone();
    let runs: Vec<RunSummary> = reps
        .into_iter()
        .map(|(rep, ws)| RunSummary {
            repetition: rep,
            timestamp: timestamp.as_str().unwrap_or("").to_string(),
            workloads: ws.into_iter().map(|(n, (k, r))| (n, result::run_stats(k, &r))).collect(),
        })
        .collect();
    // Each shard's achieved share of the measured requests against its planned share.
    let total: u64 = rows.iter().map(|r| r.requests).sum();
    let mut shard_docs = vec![];
    rows.sort_by_key(|r| r.index);
    for r in &rows {
        let achieved = if total > 0 { r.requests as f64 / total as f64 } else { 0.0 };
        let expected =
            if missing.is_empty() { r.planned_share } else { r.planned_share * expect as f64 / seen.len() as f64 };
        let mut short = vec![];
        if total > 0 && achieved < 0.9 * expected {
            short.push(format!("sent {:.1}% of the requests, planned {:.1}%", achieved * 100.0, expected * 100.0));
        }
        if r.intended > 0 {
            let missed = r.unsent + r.dropped;
            if missed as f64 > 0.01 * r.intended as f64 {
                short.push(format!("{missed} of {} intended arrivals never sent or dropped", r.intended));
            }
            if r.late_sent as f64 > 0.05 * r.sent.max(1) as f64 {
                short.push(format!("{} of {} requests sent more than 1 ms late", r.late_sent, r.sent));
            }
        }
        if r.status != "completed" {
            short.push(format!("the shard's run was {}", r.status));
        }
        for m in &short {
            warnings.push(json!({
                "code": "generator_short",
                "workload": null,
                "message": format!("shard {} ({}) fell short: {m}", r.index, r.file),
            }));
        }
        shard_docs.push(json!({
            "index": r.index,
            "file": r.file,
            "host": r.host,
            "status": r.status,
            "started_unix_s": r.started,
            "ended_unix_s": r.ended,
            "start_skew_s": r.started - t0,
            "requests": r.requests,
            "achieved_share": achieved,
            "planned_share": expected,
            "fell_short": !short.is_empty(),
            "short_reasons": short,
            "host_findings": r.findings,
        }));
    }
    let skew = rows.iter().map(|r| r.started - t0).fold(0.0, f64::max);
    out["status"] = ["completed", "aborted", "limited", "interrupted"][status_rank].into();
    out["duration_s"] = (t1 - t0).max(0.0).into();
    out["phases"] = Value::Array(phase_docs);
    out["benchmarks"] = Value::Object(benchmarks);
    out["repeat_spread"] = serde_json::to_value(result::spread(&runs)).unwrap_or_default();
    out["runs"] = serde_json::to_value(&runs).unwrap_or_default();
    out["probes"] = serde_json::to_value(&probes).unwrap_or_default();
    out["warnings"] = Value::Array(warnings);
    out["system_info"] = systems.first().map(|s| s["system_info"].clone()).unwrap_or_default();
    out["stress_test"] = Value::Null;
    let shard = out["shard"].take();
    out.as_object_mut().map(|o| o.remove("shard"));
    out["merge"] = json!({
        "mode": "split",
        "expected": expect,
        "merged": seen.len(),
        "missing": missing,
        "run_id": shard["run_id"],
        "scenario_hash": shard["scenario_hash"],
        "start_skew_s": skew,
        "shards": shard_docs,
        "systems": systems,
    });
    Ok(out)
}

fn list(xs: &[u64]) -> String {
    let shown: Vec<String> = xs.iter().take(20).map(u64::to_string).collect();
    let more = if xs.len() > 20 { format!(" and {} more", xs.len() - 20) } else { String::new() };
    format!("{}{more}", shown.join(", "))
}

// ---- fleet mode ----------------------------------------------------------------------------

/// Above this many nodes a node must also be a robust outlier (modified z-score) to be flagged.
pub const ROBUST_FROM: usize = 10;
/// Iglewicz and Hoaglin's cut-off for the modified z-score.
pub const Z_CUT: f64 = 3.5;

/// Which way is worse for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    Lower,
    Higher,
}

/// One node's figure that stands out from the fleet.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outlier {
    pub node: String,
    pub metric: String,
    pub value: f64,
    pub median: f64,
    /// (value - median) / median, signed.
    pub deviation: f64,
    /// The modified z-score, 0.6745 (x - median) / MAD (or, with MAD = 0, the mean absolute
    /// deviation form (x - median) / (1.2533 * meanAD)); null below [`ROBUST_FROM`] nodes or
    /// when every other node has the same figure.
    pub z: Option<f64>,
    /// Worse than the fleet (`slow`) or better (`fast`: reported, never a failure).
    pub direction: &'static str,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Flags the nodes whose `values` (node, figure) stand out: deviation from the fleet median
/// beyond `min_deviation` (a fraction), and with [`ROBUST_FROM`] nodes or more also a
/// modified z-score beyond [`Z_CUT`]. Worst first.
pub fn outliers(metric: &str, values: &[(String, f64)], worse: Worse, min_deviation: f64) -> Vec<Outlier> {
    let xs: Vec<f64> = values.iter().map(|(_, v)| *v).filter(|v| v.is_finite()).collect();
    if xs.len() < 2 {
        return vec![];
    }
    let med = median(&mut xs.clone());
    let mad = median(&mut xs.iter().map(|x| (x - med).abs()).collect::<Vec<_>>());
    let mean_ad = xs.iter().map(|x| (x - med).abs()).sum::<f64>() / xs.len() as f64;
    let robust = xs.len() >= ROBUST_FROM;
    let mut out = vec![];
    for (node, x) in values.iter().filter(|(_, v)| v.is_finite()) {
        let deviation = if med != 0.0 { (x - med) / med.abs() } else { 0.0 };
        let z = if !robust {
            None
        } else if mad > 0.0 {
            Some(0.6745 * (x - med) / mad)
        } else if mean_ad > 0.0 {
            Some((x - med) / (1.2533 * mean_ad))
        } else {
            None
        };
        let far = deviation.abs() > min_deviation;
        let stands_out = !robust || z.is_some_and(|z| z.abs() > Z_CUT);
        if far && stands_out {
            let slow = match worse {
                Worse::Lower => *x < med,
                Worse::Higher => *x > med,
            };
            out.push(Outlier {
                node: node.clone(),
                metric: metric.to_string(),
                value: *x,
                median: med,
                deviation,
                z,
                direction: if slow { "slow" } else { "fast" },
            });
        }
    }
    out.sort_by(|a, b| b.deviation.abs().total_cmp(&a.deviation.abs()));
    out
}

/// The figures a fleet compares, per workload: throughput and tok/s (higher is better),
/// latency p50/p95/p99 and TTFT p95 (lower is better).
fn figures(doc: &Value) -> Vec<(String, f64, Worse)> {
    let mut out = vec![];
    for (w, b) in doc["benchmarks"].as_object().into_iter().flatten() {
        if b["requests"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        if let Some(t) = b["throughput"].as_f64() {
            out.push((format!("{w}.throughput"), t, Worse::Lower));
        }
        if let Some(t) = b["tok_s"].as_f64() {
            out.push((format!("{w}.tok_s"), t, Worse::Lower));
        }
        for (m, q) in [("latency", "p50"), ("latency", "p95"), ("latency", "p99"), ("ttft", "p95")] {
            if let Some(v) = b["metrics"][m][q].as_f64() {
                out.push((format!("{w}.{m}.{q}"), v, Worse::Higher));
            }
        }
    }
    out
}

/// Reads a fleet's member results, evaluates each, and compares them. Returns the fleet
/// document and whether every node's run was valid evidence.
pub fn fleet(paths: &[PathBuf], expect: u64, allow_missing: u64, min_deviation: f64) -> Result<Value, MergeError> {
    let mut first: Option<(PathBuf, Value)> = None;
    let mut nodes: Vec<Value> = vec![];
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut table: BTreeMap<String, (Worse, Vec<(String, f64)>)> = BTreeMap::new();
    for path in paths {
        let doc = read(path)?;
        let f = &doc["fleet"];
        if !f.is_object() {
            return Err(err(
                path,
                "not a fleet member's result (no `fleet` section): members run `benchctl run --fleet-member`",
            ));
        }
        let node = f["node"].as_str().unwrap_or("").to_string();
        if let Some(other) = seen.get(&node) {
            return Err(err(
                path,
                format!("a second result of node `{node}` (the first is {}): remove one", other.display()),
            ));
        }
        if let Some((fp, fd)) = &first {
            same_run(fd, &doc, "fleet", path, fp)?;
        }
        seen.insert(node.clone(), path.clone());
        let ev = crate::evaluate::evaluate(&doc);
        for (metric, v, worse) in figures(&doc) {
            table.entry(metric).or_insert_with(|| (worse, vec![])).1.push((node.clone(), v));
        }
        nodes.push(json!({
            "node": node,
            "file": path.display().to_string(),
            "node_source": f["node_source"],
            "gpus": f["gpus"],
            "status": doc["status"],
            "verdict": ev.verdict,
            "grade": ev.performance_grade,
            "targets_met": ev.targets_met,
            "total_targets": ev.total_targets,
            "failed": ev.outcomes.iter().filter(|o| o.status == crate::evaluate::Status::Fail).map(|o| o.name.clone()).collect::<Vec<_>>(),
            "invalid_reasons": ev.invalid_reasons,
            "started_unix_s": f["started_unix_s"],
        }));
        if first.is_none() {
            let mut skeleton = json!({});
            for k in ["schema_version", "benchctl_version", "scenario"] {
                skeleton[k] = doc[k].clone();
            }
            skeleton["fleet"] = f.clone();
            skeleton["scenario_hash"] = f["scenario_hash"].clone();
            skeleton["run_id"] = f["run_id"].clone();
            first = Some((path.clone(), skeleton));
        }
    }
    let Some((_, mut out)) = first else {
        return Err(MergeError {
            file: None,
            message: "no fleet results in the folder: each member writes fleet-NODE.json into its --out".into(),
        });
    };
    if nodes.len() as u64 > expect {
        return Err(MergeError { file: None, message: format!("{} node results, but --expect {expect}", nodes.len()) });
    }
    let missing = expect - nodes.len() as u64;
    if missing > allow_missing {
        return Err(MergeError {
            file: None,
            message: format!(
                "{missing} of {expect} nodes sent no result (found: {}); rerun them, or pass --allow-missing {missing}",
                seen.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let mut all = vec![];
    let mut stats = serde_json::Map::new();
    for (metric, (worse, values)) in &table {
        let mut xs: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        let med = median(&mut xs);
        let mad = median(&mut xs.iter().map(|x| (x - med).abs()).collect::<Vec<_>>());
        stats.insert(metric.clone(), json!({"nodes": values.len(), "median": med, "mad": mad, "worse": worse}));
        all.extend(outliers(metric, values, *worse, min_deviation));
    }
    all.sort_by(|a, b| {
        (b.direction == "slow").cmp(&(a.direction == "slow")).then(b.deviation.abs().total_cmp(&a.deviation.abs()))
    });
    let failed = nodes.iter().filter(|n| n["verdict"] == "failed").count();
    let invalid = nodes.iter().filter(|n| n["verdict"] == "invalid").count();
    let slow: BTreeSet<&str> = all.iter().filter(|o| o.direction == "slow").map(|o| o.node.as_str()).collect();
    let verdict = if invalid > 0 || missing > 0 && allow_missing == 0 {
        "invalid"
    } else if failed > 0 || !slow.is_empty() {
        "failed"
    } else {
        "passed"
    };
    // Nodes worst first: failed, then by their largest slow deviation.
    let worst = |n: &Value| -> f64 {
        all.iter()
            .filter(|o| o.direction == "slow" && n["node"] == o.node.as_str())
            .map(|o| o.deviation.abs())
            .fold(0.0, f64::max)
    };
    nodes.sort_by(|a, b| {
        let rank = |n: &Value| match n["verdict"].as_str() {
            Some("invalid") => 2,
            Some("failed") => 1,
            _ => 0,
        };
        rank(b).cmp(&rank(a)).then(worst(b).total_cmp(&worst(a)))
    });
    out.as_object_mut().map(|o| o.remove("fleet"));
    out["kind"] = "fleet".into();
    out["verdict"] = verdict.into();
    out["expected"] = expect.into();
    out["missing"] = missing.into();
    out["rule"] = if nodes.len() >= ROBUST_FROM {
        format!(
            "a figure worse than the fleet median by more than {:.1}% and a modified z-score beyond {Z_CUT}",
            min_deviation * 100.0
        )
    } else {
        format!(
            "fewer than {ROBUST_FROM} nodes: a figure worse than the fleet median by more than {:.1}%",
            min_deviation * 100.0
        )
    }
    .into();
    out["nodes"] = Value::Array(nodes);
    out["metrics"] = Value::Object(stats);
    out["outliers"] = serde_json::to_value(&all).unwrap_or_default();
    Ok(out)
}

/// The fleet document as Markdown: nodes worst first, then the outliers.
pub fn fleet_markdown(doc: &Value) -> String {
    use crate::report::markdown::{cell, text};
    let mut s = format!(
        "# Fleet: {}\n\n**Verdict: {}** ({} nodes of {} expected). Outlier rule: {}.\n\n| node | verdict | targets | failed | GPUs |\n|---|---|---|---|---|\n",
        text(doc["scenario"]["name"].as_str().unwrap_or("")),
        doc["verdict"].as_str().unwrap_or(""),
        doc["nodes"].as_array().map_or(0, Vec::len),
        doc["expected"],
        text(doc["rule"].as_str().unwrap_or("")),
    );
    for n in doc["nodes"].as_array().into_iter().flatten() {
        let gpus: Vec<String> = n["gpus"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| format!("{} {}", g["name"].as_str().unwrap_or(""), g["uuid"].as_str().unwrap_or("")))
            .collect();
        let failed: Vec<String> =
            n["failed"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} |\n",
            cell(n["node"].as_str().unwrap_or("")),
            n["verdict"].as_str().unwrap_or(""),
            n["targets_met"],
            n["total_targets"],
            cell(&failed.join(", ")),
            cell(&gpus.join("; ")),
        ));
    }
    let outliers = doc["outliers"].as_array().cloned().unwrap_or_default();
    if outliers.is_empty() {
        s.push_str("\nNo node stands out from the fleet.\n");
    } else {
        s.push_str("\n## Outliers (worst first)\n\n| node | figure | value | fleet median | deviation | z | |\n|---|---|---|---|---|---|---|\n");
        for o in &outliers {
            s.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} | {:+.1}% | {} | {} |\n",
                cell(o["node"].as_str().unwrap_or("")),
                cell(o["metric"].as_str().unwrap_or("")),
                o["value"].as_f64().unwrap_or(0.0),
                o["median"].as_f64().unwrap_or(0.0),
                o["deviation"].as_f64().unwrap_or(0.0) * 100.0,
                o["z"].as_f64().map_or("-".into(), |z| format!("{z:.1}")),
                o["direction"].as_str().unwrap_or(""),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet_of(values: &[f64]) -> Vec<(String, f64)> {
        values.iter().enumerate().map(|(i, v)| (format!("node{i:02}"), *v)).collect()
    }

    #[test]
    fn one_slow_node_among_twelve_is_flagged() {
        // Eleven nodes within 1% of each other, one 8% slower.
        let mut v: Vec<f64> = (0..11).map(|i| 100.0 + (i as f64 - 5.0) * 0.2).collect();
        v.push(92.0);
        let o = outliers("chat.tok_s", &fleet_of(&v), Worse::Lower, 0.05);
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!((o[0].node.as_str(), o[0].direction), ("node11", "slow"));
        assert!(o[0].z.unwrap() < -Z_CUT);
        assert!(o[0].deviation < -0.07 && o[0].deviation > -0.09, "{}", o[0].deviation);
    }

    #[test]
    fn identical_nodes_and_zero_mad() {
        assert!(outliers("x", &fleet_of(&[50.0; 12]), Worse::Lower, 0.05).is_empty());
        // MAD = 0 (most nodes identical): the mean-absolute-deviation form, no division by 0.
        let mut v = vec![50.0; 11];
        v.push(40.0);
        let o = outliers("x", &fleet_of(&v), Worse::Lower, 0.05);
        assert_eq!(o.len(), 1);
        assert!(o[0].z.is_some_and(f64::is_finite));
        // Latency: higher is worse.
        let o = outliers(
            "lat",
            &fleet_of(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.3]),
            Worse::Higher,
            0.05,
        );
        assert_eq!(o[0].direction, "slow");
    }

    #[test]
    fn small_fleets_use_the_deviation_alone() {
        let o = outliers("x", &fleet_of(&[100.0, 100.0, 92.0]), Worse::Lower, 0.05);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].z, None);
        assert!(outliers("x", &fleet_of(&[100.0, 100.0, 97.0]), Worse::Lower, 0.05).is_empty());
        // A fast node is reported, never as slow.
        assert_eq!(outliers("x", &fleet_of(&[100.0, 100.0, 110.0]), Worse::Lower, 0.05)[0].direction, "fast");
    }

    #[test]
    fn windows_add() {
        let mut a = json!({"requests": 3, "errors": 0, "dropped": 0, "unsent": 0, "throughput": 3.0, "tok_s": 0.0,
            "metrics": {"latency": {"count": 3, "mean": 1.0, "p50": 1.0, "p90": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0}}});
        let b = json!({"requests": 1, "errors": 1, "dropped": 0, "unsent": 0, "throughput": 1.0, "tok_s": 0.0,
            "metrics": {"latency": {"count": 1, "mean": 3.0, "p50": 3.0, "p90": 3.0, "p95": 3.0, "p99": 3.0, "max": 3.0}}});
        add_window(&mut a, &b);
        assert_eq!(a["requests"], 4);
        assert_eq!(a["metrics"]["latency"]["mean"], 1.5);
        assert_eq!(a["metrics"]["latency"]["p95"], 3.0);
    }
}
