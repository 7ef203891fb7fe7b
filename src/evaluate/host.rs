//! Host findings: whether the host or the load generator spoiled a run, read from the
//! result document (the host monitor's per-phase means and the open-loop counters), so that
//! `benchctl report` and `compare` judge a saved result the same way `run` did.

use serde::Serialize;
use serde_json::Value;

use crate::result::ResultDoc;

/// Other processes used at least this share of all cores' time on average in a phase.
pub const OTHERS_BUSY: f64 = 0.5;
/// Or the host was at least this busy on average while others took [`OTHERS_SATURATING`].
pub const SATURATED: f64 = 0.9;
pub const OTHERS_SATURATING: f64 = 0.2;
/// CPU steal (a virtual machine waiting for its host) above this share of all cores' time.
pub const STEAL: f64 = 0.05;
/// Open-loop arrivals sent over 1 ms late, as a share of those sent (with over 100 sent).
pub const LATE_SHARE: f64 = 0.05;
/// Open-loop arrivals never sent, as a share of those intended (with at least 10).
pub const UNSENT_SHARE: f64 = 0.01;

/// One reason a run's numbers may describe the host or the load generator rather than the
/// system under test.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// `host_busy`, `cpu_steal` or `generator_behind`.
    pub code: &'static str,
    pub phase: String,
    pub workload: Option<String>,
    pub message: String,
    /// The figures behind it (shares as fractions).
    pub evidence: Value,
}

/// The findings of every measured phase.
pub fn findings(doc: &ResultDoc) -> Vec<Finding> {
    let mut out = vec![];
    for p in doc.measured_phases() {
        let name = p.name.clone();
        if let Some(h) = &p.host {
            out.extend(host_findings(&name, h));
        }
        for (w, r) in &p.workloads {
            let (sent, late, unsent) = (r.sent.unwrap_or(0), r.late_sent.unwrap_or(0), r.unsent);
            let intended = r.intended.unwrap_or(0);
            let late_share = if sent > 0 { late as f64 / sent as f64 } else { 0.0 };
            let unsent_share = if intended > 0 { unsent as f64 / intended as f64 } else { 0.0 };
            let lateness_p99 = r.metric("send_lateness").map(|m| m.p99);
            if (sent > 100 && late_share > LATE_SHARE) || (unsent >= 10 && unsent_share > UNSENT_SHARE) {
                out.push(Finding {
                    code: "generator_behind",
                    phase: name.clone(),
                    workload: Some(w.clone()),
                    message: format!(
                        "phase `{name}`, workload `{w}`: the load generator fell behind: {late} of {sent} arrivals sent over 1 ms late, {unsent} of {intended} never sent; the rate may be above what this machine can generate",
                    ),
                    evidence: serde_json::json!({ "sent": sent, "late_sent": late, "late_share": late_share, "unsent": unsent, "intended": intended, "unsent_share": unsent_share, "send_lateness_p99_s": lateness_p99 }),
                });
            }
        }
    }
    out
}

/// A phase's findings about the host: busy with other work, or CPU stolen.
fn host_findings(name: &str, h: &crate::result::PhaseHost) -> Vec<Finding> {
    let mut out = vec![];
    let (busy, others, steal, own) = (h.busy_mean, h.others_mean, h.steal_mean, h.own_cores_mean);
    if others >= OTHERS_BUSY || (busy >= SATURATED && others >= OTHERS_SATURATING) {
        out.push(Finding {
                code: "host_busy",
                phase: name.to_string(),
                workload: None,
                message: format!(
                    "phase `{name}`: the host was busy with other work (CPU {:.0}% busy, {:.0}% of it other processes, benchctl {:.2} cores); its latencies may measure the contention",
                    busy * 100.0,
                    others * 100.0,
                    own
                ),
                evidence: serde_json::json!({ "busy_mean": busy, "others_mean": others, "others_max": h.others_max, "own_cores_mean": own, "samples": h.samples }),
            });
    }
    if steal >= STEAL {
        out.push(Finding {
            code: "cpu_steal",
            phase: name.to_string(),
            workload: None,
            message: format!("phase `{name}`: {:.1}% of CPU time was stolen by the hypervisor", steal * 100.0),
            evidence: serde_json::json!({ "steal_mean": steal }),
        });
    }
    out
}

/// The set of finding codes per phase, for telling whether two runs are comparable.
pub fn signature(doc: &ResultDoc) -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &'static str)> = findings(doc).into_iter().map(|f| (f.phase, f.code)).collect();
    v.sort();
    v.dedup();
    v
}
