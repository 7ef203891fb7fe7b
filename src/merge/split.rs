//! Split mode: the shards of one run folded into one result document, exactly. Histograms
//! add bucket by bucket and counters sum; a phase lasts the union of the shards' spans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{err, list, same_run, MergeError};
use crate::dsl::model::{PhaseRole, WorkloadKind};
use crate::engine::events::Warning;
use crate::measure::record::{Counters, Hists, Recorded, WindowSummary};
use crate::probe::ProbeResult;
use crate::result::{
    self, MergeSection, PhaseDoc, PhaseHost, ResultDoc, RunStatus, RunSummary, ShardRow, ShardSection, ShardSystem,
    WorkloadDoc,
};

struct WorkloadAcc {
    kind: WorkloadKind,
    hists: Hists,
    counters: Counters,
    windows: Vec<WindowSummary>,
}

struct PhaseAcc {
    name: String,
    role: PhaseRole,
    repetition: u64,
    stopped_by: BTreeSet<String>,
    /// Wall-clock span, seconds since the epoch.
    start: f64,
    end: f64,
    workloads: BTreeMap<String, WorkloadAcc>,
    /// The most disturbed generator's host record for the phase.
    host: Option<PhaseHost>,
}

/// Adds window `b` into window `a` (same index of the phase's series): counts, rates and
/// requests in flight add; per-window percentiles become the largest of the shards' (a
/// mixture's quantile never exceeds its largest part's, so this bounds the merged window
/// from above).
pub(super) fn add_window(a: &mut WindowSummary, b: &WindowSummary) {
    a.requests += b.requests;
    a.errors += b.errors;
    a.dropped += b.dropped;
    a.unsent += b.unsent;
    a.in_flight += b.in_flight;
    a.throughput += b.throughput;
    a.tok_s += b.tok_s;
    for (m, s) in &b.metrics {
        let Some(slot) = a.metrics.get_mut(m) else {
            a.metrics.insert(m.clone(), s.clone());
            continue;
        };
        let n = (slot.count + s.count).max(1) as f64;
        slot.mean = (slot.mean * slot.count as f64 + s.mean * s.count as f64) / n;
        slot.count += s.count;
        slot.p50 = slot.p50.max(s.p50);
        slot.p90 = slot.p90.max(s.p90);
        slot.p95 = slot.p95.max(s.p95);
        slot.p99 = slot.p99.max(s.p99);
        slot.max = slot.max.max(s.max);
    }
}

/// Adds a record's stored histograms into `into`, bucket by bucket from their encodings
/// (`stats::sparse`: no histogram is built only to be summed). Every histogram was recorded
/// with benchctl's settings (3 significant digits), so the sum is exact; one of another
/// precision, or one that does not decode or holds no samples, is named.
fn add_stored(into: &mut Hists, r: &WorkloadDoc, path: &Path, phase: &str, workload: &str) -> Result<(), MergeError> {
    let defs = r.declared_defs();
    for (name, stored) in &r.histograms {
        let damaged =
            |why: &str| err(path, format!("damaged: histogram `{name}` of `{workload}` in phase `{phase}`: {why}"));
        let Some(slot) = into.slot_mut(name, &defs) else {
            return Err(damaged("not a distribution of this workload's kind"));
        };
        match crate::stats::sparse(&stored.data) {
            Ok(Some(buckets)) if buckets.is_empty() => return Err(damaged("no samples")),
            Ok(Some(buckets)) => {
                for (value, n) in buckets {
                    slot.record_n(value, n).map_err(|_| damaged("a value out of range"))?;
                }
            }
            Ok(None) => {
                let h = crate::stats::decode(&stored.data).map_err(|e| damaged(&e.to_string()))?;
                if h.sigfig() != crate::stats::SIGFIGS {
                    return Err(err(path, format!(
                        "histogram `{name}` of `{workload}` in phase `{phase}` has {} significant digits, not {}: histograms of different precision cannot be added exactly",
                        h.sigfig(),
                        crate::stats::SIGFIGS
                    )));
                }
                if h.is_empty() {
                    return Err(damaged("no samples"));
                }
                slot.add(&h).map_err(|_| damaged("a value out of range"))?;
            }
            Err(e) => return Err(damaged(&e.to_string())),
        }
    }
    Ok(())
}

/// One shard's row of the merged result's `merge.shards`, while it is read.
struct ShardTally {
    index: u64,
    file: String,
    host: String,
    started: f64,
    ended: f64,
    status: RunStatus,
    requests: u64,
    planned_share: f64,
    intended: u64,
    sent: u64,
    late_sent: u64,
    unsent: u64,
    dropped: u64,
    findings: Vec<String>,
}

fn phase_names(d: &ResultDoc) -> Vec<(String, PhaseRole, u64)> {
    d.phases.iter().map(|p| (p.name.clone(), p.role, p.repetition)).collect()
}

/// The merge's state as shards are folded in.
#[derive(Default)]
struct Fold {
    /// The first shard (its path and document): scenario, config and facts come from it.
    first: Option<(PathBuf, ResultDoc, ShardSection)>,
    first_names: Vec<(String, PhaseRole, u64)>,
    seen: BTreeMap<u64, PathBuf>,
    phases: Vec<PhaseAcc>,
    rows: Vec<ShardTally>,
    warnings: Vec<Warning>,
    probes: BTreeMap<String, ProbeResult>,
    servers: Vec<crate::probe::server::ServerRecord>,
    status: Option<RunStatus>,
    systems: Vec<ShardSystem>,
}

impl Fold {
    /// Checks that the shard belongs with those read so far.
    fn admit(&self, path: &Path, doc: &ResultDoc, s: &ShardSection, expect: u64) -> Result<(), MergeError> {
        let (index, count) = (s.index, s.count);
        if count != expect {
            return Err(err(path, format!("shard {index} of a {count}-shard run, but --expect {expect}")));
        }
        if index >= count {
            return Err(err(path, format!("shard index {index} is not below its count {count}")));
        }
        if let Some(other) = self.seen.get(&index) {
            return Err(err(
                path,
                format!("duplicate of shard {index}, already read from {}: remove one", other.display()),
            ));
        }
        if let Some((fp, f, fs)) = &self.first {
            same_run((f, &fs.identity), (doc, &s.identity), path, fp)?;
            if phase_names(doc) != self.first_names {
                return Err(err(
                    path,
                    format!(
                        "ran other phases than {} (an interrupted or aborted shard stops early): {} against {}",
                        fp.display(),
                        doc.phases.len(),
                        self.first_names.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Folds one shard's phases into the accumulators; returns its tally.
    fn phases(&mut self, path: &Path, doc: &ResultDoc, s: &ShardSection) -> Result<ShardTally, MergeError> {
        let started = s.identity.started_unix_s;
        let mut row = ShardTally {
            index: s.index,
            file: path.display().to_string(),
            host: doc.system_info.hostname.clone().unwrap_or_default(),
            started,
            ended: s.identity.ended_unix_s,
            status: doc.status,
            requests: 0,
            planned_share: s.planned_share(),
            intended: 0,
            sent: 0,
            late_sent: 0,
            unsent: 0,
            dropped: 0,
            findings: crate::evaluate::host::findings(doc).into_iter().map(|f| f.message).collect(),
        };
        for (pi, p) in doc.phases.iter().enumerate() {
            let p_start = started + p.started_s;
            let p_end = p_start + p.duration_s;
            if self.phases.len() <= pi {
                self.phases.push(PhaseAcc {
                    name: p.name.clone(),
                    role: p.role,
                    repetition: p.repetition,
                    stopped_by: BTreeSet::new(),
                    start: p_start,
                    end: p_end,
                    workloads: BTreeMap::new(),
                    host: None,
                });
            }
            let acc = &mut self.phases[pi];
            acc.start = acc.start.min(p_start);
            acc.end = acc.end.max(p_end);
            acc.stopped_by.insert(p.stopped_by.clone());
            let busy = |h: &Option<PhaseHost>| h.as_ref().map_or(-1.0, PhaseHost::disturbance);
            if busy(&p.host) > busy(&acc.host) {
                acc.host = p.host.clone();
            }
            for (w, r) in &p.workloads {
                let c = r.counters();
                if p.role == PhaseRole::Measure {
                    row.requests += c.requests;
                    row.sent += c.sent;
                    row.late_sent += c.late_sent;
                    row.unsent += c.unsent;
                    row.dropped += c.dropped;
                    row.intended += r.intended.unwrap_or(0);
                }
                let wa = acc.workloads.entry(w.clone()).or_insert_with(|| WorkloadAcc {
                    kind: r.kind().unwrap_or(WorkloadKind::Synthetic),
                    hists: Hists::default(),
                    counters: Counters::default(),
                    windows: vec![],
                });
                add_stored(&mut wa.hists, r, path, &p.name, w)?;
                wa.counters.add(&c);
                for (i, win) in r.series.iter().enumerate() {
                    match wa.windows.get_mut(i) {
                        Some(slot) => add_window(slot, win),
                        None => wa.windows.push(win.clone()),
                    }
                }
            }
        }
        Ok(row)
    }

    /// Warnings (named by shard), probe series (the most loaded generator's) and the
    /// machine of one shard.
    fn extras(&mut self, index: u64, doc: &mut ResultDoc) {
        for w in &doc.warnings {
            let mut w = w.clone();
            w.message = format!("shard {index}: {}", w.message);
            self.warnings.push(w);
        }
        for (kind, pr) in &doc.probes {
            let slot = self.probes.entry(kind.clone()).or_insert_with(|| pr.clone());
            // Per series, the most loaded generator's (a bound on a probe holds on every one).
            for (name, series) in &pr.series {
                let peak = slot.series.get(name).map_or(f64::NEG_INFINITY, |s| s.summary.peak);
                if series.summary.peak > peak {
                    slot.series.insert(name.clone(), series.clone());
                }
            }
        }
        for sv in std::mem::take(&mut doc.servers) {
            match self.servers.iter_mut().find(|x| x.url == sv.url && x.workload == sv.workload) {
                Some(have) => widest_phases(have, sv),
                None => self.servers.push(sv),
            }
        }
        self.systems.push(ShardSystem { shard: index, system_info: std::mem::take(&mut doc.system_info) });
    }

    fn shard(&mut self, path: &Path, mut doc: ResultDoc, expect: u64) -> Result<(), MergeError> {
        let Some(s) = doc.shard.take() else {
            return Err(err(path, "not a shard file (no `shard` section): a shard is written by `benchctl run --shard I/N`; keep other results out of the folder"));
        };
        self.admit(path, &doc, &s, expect)?;
        if self.first.is_none() {
            self.first_names = phase_names(&doc);
        }
        self.seen.insert(s.index, path.to_path_buf());
        self.status = self.status.max(Some(doc.status));
        let row = self.phases(path, &doc, &s)?;
        self.rows.push(row);
        self.extras(s.index, &mut doc);
        if self.first.is_none() {
            // The skeleton: scenario, config, facts; its phases and benchmarks are replaced.
            doc.phases = vec![];
            self.first = Some((path.to_path_buf(), doc, s));
        }
        Ok(())
    }
}

/// Merges the shard files of one split run into one result document (not yet evaluated).
pub fn split(paths: &[PathBuf], expect: u64, allow_missing: u64) -> Result<ResultDoc, MergeError> {
    let mut fold = Fold::default();
    super::in_order(paths, super::read_shard, |path, doc| fold.shard(path, doc?, expect))?;
    let Some((_, mut out, first_shard)) = fold.first.take() else {
        return Err(MergeError {
            file: None,
            message: "no shard files in the folder: each shard writes shard-I-of-N.json into its --out".into(),
        });
    };
    let missing: Vec<u64> = (0..expect).filter(|i| !fold.seen.contains_key(i)).collect();
    if missing.len() as u64 > allow_missing {
        return Err(MergeError {
            file: None,
            message: format!(
                "missing shard{} {} of {expect} (found {}); rerun {}, or pass --allow-missing {} to merge what is there",
                if missing.len() == 1 { "" } else { "s" },
                list(&missing),
                fold.seen.len(),
                if missing.len() == 1 { "it" } else { "them" },
                missing.len()
            ),
        });
    }
    let t0 = fold.rows.iter().map(|r| r.started).fold(f64::INFINITY, f64::min);
    let t1 = fold.rows.iter().map(|r| r.ended).fold(f64::NEG_INFINITY, f64::max);
    if !missing.is_empty() {
        fold.warnings.push(Warning::new(
            "shards_missing",
            format!(
                "shard{} {} of {expect} missing (--allow-missing): the merged load is about {} of {expect} parts of the declared load",
                if missing.len() == 1 { "" } else { "s" },
                list(&missing),
                expect - missing.len() as u64
            ),
        ));
    }
    let facts = std::mem::take(&mut out.benchmarks);
    let merged = phases(std::mem::take(&mut fold.phases), &facts, t0);
    let memory_peak_mb = fold.probes.get("process").and_then(|p| p.series.get("rss")).map(|s| s.summary.peak / 1e6);
    out.benchmarks = benchmarks(&merged.measured, &facts, memory_peak_mb);
    let runs: Vec<RunSummary> = merged
        .reps
        .into_iter()
        .map(|(rep, ws)| RunSummary {
            repetition: rep,
            timestamp: out.timestamp.clone(),
            workloads: ws.into_iter().map(|(n, (k, r))| (n, result::run_stats(k, &r))).collect(),
        })
        .collect();
    let shards = shard_rows(&mut fold.rows, &missing, expect, fold.seen.len(), t0, &mut fold.warnings);
    out.status = fold.status.unwrap_or(RunStatus::Completed);
    out.duration_s = (t1 - t0).max(0.0);
    out.phases = merged.docs;
    out.repeat_spread = result::spread(&runs);
    out.runs = runs;
    out.probes = fold.probes;
    out.servers = fold.servers;
    out.warnings = fold.warnings;
    out.system_info = fold.systems.first().map(|s| s.system_info.clone()).unwrap_or_default();
    out.stress_test = None;
    out.capacity = None;
    out.merge = Some(MergeSection {
        mode: "split".into(),
        expected: expect,
        merged: fold.seen.len(),
        missing,
        run_id: first_shard.identity.run_id.clone(),
        scenario_hash: first_shard.identity.scenario_hash.clone(),
        start_skew_s: shards.iter().map(|r| r.start_skew_s).fold(0.0, f64::max),
        shards,
        systems: fold.systems,
    });
    Ok(out)
}

/// The merged phases, and the measured records per workload (whole run, and per repetition).
struct Merged {
    docs: Vec<PhaseDoc>,
    measured: BTreeMap<String, (WorkloadKind, Recorded)>,
    reps: BTreeMap<u64, BTreeMap<String, (WorkloadKind, Recorded)>>,
}

/// Phases: records added, over the union of the shards' spans.
fn phases(accs: Vec<PhaseAcc>, facts: &BTreeMap<String, WorkloadDoc>, t0: f64) -> Merged {
    let mut m = Merged { docs: vec![], measured: BTreeMap::new(), reps: BTreeMap::new() };
    for p in accs {
        let span = (p.end - p.start).max(0.0);
        let mut workloads = BTreeMap::new();
        for (name, wa) in p.workloads {
            let rec = Recorded {
                hists: wa.hists,
                counters: wa.counters,
                series: vec![],
                elapsed: std::time::Duration::from_secs_f64(span),
            };
            let mut d = result::workload_doc(wa.kind, &rec, true, None);
            d.series = wa.windows;
            if d.token_source.is_some() {
                if let Some(src) = facts.get(&name).and_then(|f| f.token_source.clone()) {
                    d.token_source = Some(src);
                }
            }
            workloads.insert(name.clone(), d);
            if p.role == PhaseRole::Measure {
                let (_, acc) = m.measured.entry(name.clone()).or_insert_with(|| (wa.kind, Recorded::default()));
                acc.add_totals(&rec);
                let (_, acc) = m
                    .reps
                    .entry(p.repetition)
                    .or_default()
                    .entry(name)
                    .or_insert_with(|| (wa.kind, Recorded::default()));
                acc.add_totals(&rec);
            }
        }
        let stopped: Vec<String> = p.stopped_by.into_iter().collect();
        m.docs.push(PhaseDoc {
            name: p.name,
            role: p.role,
            repetition: p.repetition,
            started_s: p.start - t0,
            duration_s: span,
            stopped_by: stopped.join(" / "),
            workloads,
            search: None,
            pressure: None,
            host: p.host,
        });
    }
    m
}

/// The whole-run records, with the first shard's setup facts.
fn benchmarks(
    measured: &BTreeMap<String, (WorkloadKind, Recorded)>,
    facts: &BTreeMap<String, WorkloadDoc>,
    memory_peak_mb: Option<f64>,
) -> BTreeMap<String, WorkloadDoc> {
    let mut out = BTreeMap::new();
    for (name, (kind, r)) in measured {
        let mut d = result::workload_doc(*kind, r, false, None);
        d.summary = Some(result::flat_summary(&d, memory_peak_mb));
        if let Some(f) = facts.get(name) {
            if f.facts.is_some() {
                d.facts = f.facts.clone();
            }
            if f.setup.is_some() {
                d.setup = f.setup.clone();
            }
            if d.token_source.is_some() && f.token_source.is_some() {
                d.token_source = f.token_source.clone();
            }
        }
        out.insert(name.clone(), d);
    }
    out
}

/// Each shard's achieved share of the measured requests against its planned share; a shard
/// that fell short gets a warning naming it.
fn shard_rows(
    rows: &mut [ShardTally],
    missing: &[u64],
    expect: u64,
    seen: usize,
    t0: f64,
    warnings: &mut Vec<Warning>,
) -> Vec<ShardRow> {
    let total: u64 = rows.iter().map(|r| r.requests).sum();
    rows.sort_by_key(|r| r.index);
    let mut out = vec![];
    for r in rows.iter() {
        let achieved = if total > 0 { r.requests as f64 / total as f64 } else { 0.0 };
        let expected = if missing.is_empty() { r.planned_share } else { r.planned_share * expect as f64 / seen as f64 };
        let short = short_reasons(r, total, achieved, expected);
        for m in &short {
            warnings.push(Warning::new("generator_short", format!("shard {} ({}) fell short: {m}", r.index, r.file)));
        }
        out.push(ShardRow {
            index: r.index,
            file: r.file.clone(),
            host: r.host.clone(),
            status: r.status.to_string(),
            started_unix_s: r.started,
            ended_unix_s: r.ended,
            start_skew_s: r.started - t0,
            requests: r.requests,
            achieved_share: achieved,
            planned_share: expected,
            fell_short: !short.is_empty(),
            short_reasons: short,
            host_findings: r.findings.clone(),
        });
    }
    out
}

/// Why a shard's generator fell short of its part, if it did.
fn short_reasons(r: &ShardTally, total: u64, achieved: f64, expected: f64) -> Vec<String> {
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
    if r.status != RunStatus::Completed {
        short.push(format!("the shard's run was {}", r.status));
    }
    short
}

/// Every shard scraped the same server over nearly the same window, so its counts are not
/// added up: per phase, the shard whose window saw the most (the widest) stands for all,
/// and the self-check sets it beside the clients added up over the shards.
fn widest_phases(have: &mut crate::probe::server::ServerRecord, other: crate::probe::server::ServerRecord) {
    let seen = |p: &crate::probe::server::ServerPhase| {
        ["requests", "generation_tokens", "prompt_tokens"]
            .iter()
            .find_map(|k| p.counters.get(*k).copied())
            .unwrap_or(0.0)
    };
    have.scrapes += other.scrapes;
    have.failed_scrapes += other.failed_scrapes;
    have.family = have.family.or(other.family);
    if have.unavailable.is_some() && other.unavailable.is_none() {
        have.unavailable = None;
        have.series = other.series.clone();
    }
    for p in other.phases {
        match have.phases.iter_mut().find(|x| x.phase == p.phase && x.repetition == p.repetition) {
            Some(x) if seen(&p) > seen(x) => *x = p,
            Some(_) => {}
            None => have.phases.push(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_one_server_keep_the_widest_window_per_phase() {
        use crate::probe::server::{ServerPhase, ServerRecord};
        let rec = |reqs: &[f64]| ServerRecord {
            workload: "chat".into(),
            url: "http://s/metrics".into(),
            scrapes: 3,
            phases: reqs
                .iter()
                .enumerate()
                .map(|(i, r)| ServerPhase {
                    phase: format!("p{i}"),
                    repetition: 1,
                    counters: [("requests".to_string(), *r)].into(),
                    ..ServerPhase::default()
                })
                .collect(),
            ..ServerRecord::default()
        };
        let mut have = rec(&[100.0, 40.0]);
        widest_phases(&mut have, rec(&[98.0, 41.0]));
        let reqs: Vec<f64> = have.phases.iter().map(|p| p.counters["requests"]).collect();
        assert_eq!(reqs, [100.0, 41.0], "the server's count, not the shards' sum");
        assert_eq!(have.scrapes, 6);
    }
    use crate::measure::record::WindowStats;

    #[test]
    fn windows_add() {
        let stats = |count: u64, v: f64| WindowStats { count, mean: v, p50: v, p90: v, p95: v, p99: v, max: v };
        let mut a = WindowSummary { requests: 3, throughput: 3.0, ..Default::default() };
        a.metrics.insert("latency".into(), stats(3, 1.0));
        let mut b = WindowSummary { requests: 1, errors: 1, throughput: 1.0, ..Default::default() };
        b.metrics.insert("latency".into(), stats(1, 3.0));
        add_window(&mut a, &b);
        assert_eq!(a.requests, 4);
        assert_eq!(a.metrics["latency"].mean, 1.5);
        assert_eq!(a.metrics["latency"].p95, 3.0);
    }
}
