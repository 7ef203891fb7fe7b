//! Fleet mode: every node ran the whole scenario; each is evaluated on its own and its
//! figures compared with the fleet's, with a robust outlier score.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{err, same_run, MergeError};
use crate::evaluate::Status;
use crate::probe::nvml::GpuInfo;
use crate::result::{FleetSection, ResultDoc, RunStatus, ScenarioInfo};

/// Above this many nodes a node must also be a robust outlier (modified z-score) to be flagged.
pub const ROBUST_FROM: usize = 10;
/// Iglewicz and Hoaglin's cut-off for the modified z-score.
pub const Z_CUT: f64 = 3.5;

/// Which way is worse for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    Lower,
    Higher,
}

/// One node's figure that stands out from the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
fn figures(doc: &ResultDoc) -> Vec<(String, f64, Worse)> {
    let mut out = vec![];
    for (w, b) in doc.benchmarks.iter().filter(|(_, b)| b.requests > 0) {
        out.push((format!("{w}.throughput"), b.throughput, Worse::Lower));
        if let Some(t) = b.tok_s {
            out.push((format!("{w}.tok_s"), t, Worse::Lower));
        }
        type Stat = fn(&crate::stats::DistSummary) -> f64;
        let stats: [(&str, &str, Stat); 4] = [
            ("latency", "p50", |s| s.p50),
            ("latency", "p95", |s| s.p95),
            ("latency", "p99", |s| s.p99),
            ("ttft", "p95", |s| s.p95),
        ];
        for (m, q, stat) in stats {
            if let Some(s) = b.metric(m) {
                out.push((format!("{w}.{m}.{q}"), stat(s), Worse::Higher));
            }
        }
    }
    out
}

/// A fleet's verdict, its nodes worst first and the figures that stand out.
#[derive(Debug, Clone, Serialize)]
pub struct FleetDoc {
    pub schema_version: u32,
    pub benchctl_version: String,
    pub scenario: ScenarioInfo,
    pub scenario_hash: String,
    pub run_id: Option<String>,
    /// `fleet`.
    pub kind: &'static str,
    /// `passed`, `failed` or `invalid`.
    pub verdict: &'static str,
    pub expected: u64,
    pub missing: u64,
    /// The outlier rule applied, in words.
    pub rule: String,
    pub nodes: Vec<NodeRow>,
    /// Per figure: the fleet's median and median absolute deviation.
    pub metrics: BTreeMap<String, FleetStat>,
    pub outliers: Vec<Outlier>,
}

/// One node of a fleet.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub node: String,
    pub file: String,
    pub node_source: String,
    pub gpus: Vec<GpuInfo>,
    pub status: RunStatus,
    pub verdict: &'static str,
    pub grade: crate::evaluate::Grade,
    pub targets_met: usize,
    pub total_targets: usize,
    /// The expectations the node failed.
    pub failed: Vec<String>,
    pub invalid_reasons: Vec<String>,
    pub started_unix_s: f64,
}

/// A figure over the fleet.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStat {
    pub nodes: usize,
    pub median: f64,
    pub mad: f64,
    pub worse: Worse,
}

/// The nodes read so far.
#[derive(Default)]
struct Nodes {
    first: Option<(PathBuf, ResultDoc, FleetSection)>,
    rows: Vec<NodeRow>,
    seen: BTreeMap<String, PathBuf>,
    table: BTreeMap<String, (Worse, Vec<(String, f64)>)>,
}

impl Nodes {
    fn node(&mut self, path: &Path) -> Result<(), MergeError> {
        let mut doc = super::read(path)?;
        let Some(f) = doc.fleet.take() else {
            return Err(err(
                path,
                "not a fleet member's result (no `fleet` section): members run `benchctl run --fleet-member`",
            ));
        };
        if let Some(other) = self.seen.get(&f.node) {
            return Err(err(
                path,
                format!("a second result of node `{}` (the first is {}): remove one", f.node, other.display()),
            ));
        }
        if let Some((fp, fd, ff)) = &self.first {
            same_run((fd, &ff.identity), (&doc, &f.identity), path, fp)?;
        }
        self.seen.insert(f.node.clone(), path.to_path_buf());
        let ev = crate::evaluate::evaluate(&doc);
        for (metric, v, worse) in figures(&doc) {
            self.table.entry(metric).or_insert_with(|| (worse, vec![])).1.push((f.node.clone(), v));
        }
        self.rows.push(NodeRow {
            node: f.node.clone(),
            file: path.display().to_string(),
            node_source: f.node_source.clone(),
            gpus: f.gpus.clone(),
            status: doc.status,
            verdict: ev.verdict,
            grade: ev.performance_grade,
            targets_met: ev.targets_met,
            total_targets: ev.total_targets,
            failed: ev.outcomes.iter().filter(|o| o.status == Status::Fail).map(|o| o.name.clone()).collect(),
            invalid_reasons: ev.invalid_reasons,
            started_unix_s: f.identity.started_unix_s,
        });
        if self.first.is_none() {
            self.first = Some((path.to_path_buf(), doc, f));
        }
        Ok(())
    }
}

/// Reads a fleet's member results, evaluates each, and compares them.
pub fn fleet(paths: &[PathBuf], expect: u64, allow_missing: u64, min_deviation: f64) -> Result<FleetDoc, MergeError> {
    let mut nodes = Nodes::default();
    for path in paths {
        nodes.node(path)?;
    }
    let Some((_, first, first_fleet)) = nodes.first.take() else {
        return Err(MergeError {
            file: None,
            message: "no fleet results in the folder: each member writes fleet-NODE.json into its --out".into(),
        });
    };
    let mut rows = nodes.rows;
    if rows.len() as u64 > expect {
        return Err(MergeError { file: None, message: format!("{} node results, but --expect {expect}", rows.len()) });
    }
    let missing = expect - rows.len() as u64;
    if missing > allow_missing {
        return Err(MergeError {
            file: None,
            message: format!(
                "{missing} of {expect} nodes sent no result (found: {}); rerun them, or pass --allow-missing {missing}",
                nodes.seen.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let mut all = vec![];
    let mut stats = BTreeMap::new();
    for (metric, (worse, values)) in &nodes.table {
        let mut xs: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
        let med = median(&mut xs);
        let mad = median(&mut xs.iter().map(|x| (x - med).abs()).collect::<Vec<_>>());
        stats.insert(metric.clone(), FleetStat { nodes: values.len(), median: med, mad, worse: *worse });
        all.extend(outliers(metric, values, *worse, min_deviation));
    }
    all.sort_by(|a, b| {
        (b.direction == "slow").cmp(&(a.direction == "slow")).then(b.deviation.abs().total_cmp(&a.deviation.abs()))
    });
    let verdict = verdict(&mut rows, &all, missing, allow_missing);
    let rule = if rows.len() >= ROBUST_FROM {
        format!(
            "a figure worse than the fleet median by more than {:.1}% and a modified z-score beyond {Z_CUT}",
            min_deviation * 100.0
        )
    } else {
        format!(
            "fewer than {ROBUST_FROM} nodes: a figure worse than the fleet median by more than {:.1}%",
            min_deviation * 100.0
        )
    };
    Ok(FleetDoc {
        schema_version: first.schema_version,
        benchctl_version: first.benchctl_version,
        scenario: first.scenario,
        scenario_hash: first_fleet.identity.scenario_hash,
        run_id: first_fleet.identity.run_id,
        kind: "fleet",
        verdict,
        expected: expect,
        missing,
        rule,
        nodes: rows,
        metrics: stats,
        outliers: all,
    })
}

/// The fleet's verdict (invalid when a node is, or nodes are missing unallowed; failed when a
/// node failed or a slow outlier stands out), with the nodes sorted worst first: invalid,
/// failed, then by their largest slow deviation.
fn verdict(rows: &mut [NodeRow], all: &[Outlier], missing: u64, allow_missing: u64) -> &'static str {
    let failed = rows.iter().filter(|n| n.verdict == "failed").count();
    let invalid = rows.iter().filter(|n| n.verdict == "invalid").count();
    let slow: BTreeSet<&str> = all.iter().filter(|o| o.direction == "slow").map(|o| o.node.as_str()).collect();
    let verdict = if invalid > 0 || missing > 0 && allow_missing == 0 {
        "invalid"
    } else if failed > 0 || !slow.is_empty() {
        "failed"
    } else {
        "passed"
    };
    // Nodes worst first: failed, then by their largest slow deviation.
    let worst = |n: &NodeRow| -> f64 {
        all.iter().filter(|o| o.direction == "slow" && o.node == n.node).map(|o| o.deviation.abs()).fold(0.0, f64::max)
    };
    let rank = |n: &NodeRow| match n.verdict {
        "invalid" => 2,
        "failed" => 1,
        _ => 0,
    };
    rows.sort_by(|a, b| rank(b).cmp(&rank(a)).then(worst(b).total_cmp(&worst(a))));
    verdict
}

/// The fleet document as Markdown: nodes worst first, then the outliers.
pub fn fleet_markdown(doc: &FleetDoc) -> String {
    use crate::report::markdown::{cell, text};
    let mut s = format!(
        "# Fleet: {}\n\n**Verdict: {}** ({} nodes of {} expected). Outlier rule: {}.\n\n| node | verdict | targets | failed | GPUs |\n|---|---|---|---|---|\n",
        text(&doc.scenario.name),
        doc.verdict,
        doc.nodes.len(),
        doc.expected,
        text(&doc.rule),
    );
    for n in &doc.nodes {
        let gpus: Vec<String> = n.gpus.iter().map(|g| format!("{} {}", g.name, g.uuid)).collect();
        s.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} |\n",
            cell(&n.node),
            n.verdict,
            n.targets_met,
            n.total_targets,
            cell(&n.failed.join(", ")),
            cell(&gpus.join("; ")),
        ));
    }
    if doc.outliers.is_empty() {
        s.push_str("\nNo node stands out from the fleet.\n");
    } else {
        s.push_str("\n## Outliers (worst first)\n\n| node | figure | value | fleet median | deviation | z | |\n|---|---|---|---|---|---|---|\n");
        for o in &doc.outliers {
            s.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} | {:+.1}% | {} | {} |\n",
                cell(&o.node),
                cell(&o.metric),
                o.value,
                o.median,
                o.deviation * 100.0,
                o.z.map_or("-".into(), |z| format!("{z:.1}")),
                o.direction,
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
}
