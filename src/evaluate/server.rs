//! The `server` subject: the model servers' own metrics over the phases an expectation
//! covers (its phase, else the measured phases), added up over every scraped server.

use serde::Serialize;

use super::host::Finding;
use crate::probe::server::{read, ServerPhase, ServerRecord};
use crate::result::{PhaseDoc, ResultDoc};

/// The server phases (of every scraped server) that match `phases`, by name and repetition.
pub fn server_phases<'a>(doc: &'a ResultDoc, phases: &[&PhaseDoc]) -> Vec<(&'a ServerRecord, &'a ServerPhase)> {
    let wanted = |p: &ServerPhase| phases.iter().any(|d| d.name == p.phase && d.repetition == p.repetition);
    (doc.servers.iter()).flat_map(|s| s.phases.iter().filter(|p| wanted(p)).map(move |p| (s, p))).collect()
}

/// A `server.*` value over the phases (see [`read::value`]): counters as counts or rates
/// over the phases' wall time, the hit rate, histograms as interpolated percentiles, means
/// and counts. Gauges are read by the probe path from the run's series (their points inside
/// the phases).
pub fn value(doc: &ResultDoc, metric: &str, agg: Option<&str>, phase: Option<&str>) -> Option<f64> {
    let phases = doc.phases_of(phase)?;
    let parts: Vec<&ServerPhase> = server_phases(doc, &phases).into_iter().map(|(_, p)| p).collect();
    if parts.is_empty() {
        return None;
    }
    read::value(&parts, metric, agg, phases.iter().map(|p| p.duration_s).sum())
}

/// A gauge's points (run seconds, value) inside the phases, over every scraped server.
pub fn gauge_points(doc: &ResultDoc, metric: &str, phase: Option<&str>) -> Option<Vec<f64>> {
    let phases = doc.phases_of(phase)?;
    let mut out = vec![];
    for s in doc.servers.iter().filter_map(|s| s.series.get(metric)) {
        for ph in &phases {
            let end = ph.started_s + ph.duration_s;
            out.extend(s.points.iter().filter(|(t, _)| *t >= ph.started_s && *t <= end).map(|(_, v)| *v));
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A server counted more requests than the clients could have caused by more than this
/// share (and [`FOREIGN_MIN`] requests): another tenant was on the server.
pub const FOREIGN_SHARE: f64 = 0.05;
pub const FOREIGN_MIN: f64 = 3.0;
/// Without a request counter (llama.cpp), tokens beyond what the clients could have caused
/// by more than this share (and [`FOREIGN_TOKENS_MIN`]) tell the same.
pub const FOREIGN_TOKEN_SHARE: f64 = 0.2;
pub const FOREIGN_TOKENS_MIN: f64 = 64.0;
/// Token counts of the server and the clients, in a phase where every request finished
/// there, differ by more than this share (and [`TOKENS_MIN`] tokens).
pub const TOKEN_SHARE: f64 = 0.05;
pub const TOKENS_MIN: f64 = 16.0;

/// One measured phase of one server, set beside the clients that sent to it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerCheck {
    pub phase: String,
    pub repetition: u64,
    pub url: String,
    pub family: Option<&'static str>,
    /// The workloads that sent to this server (their counts are added up).
    pub workloads: Vec<String>,
    /// Both boundary scrapes succeeded: the server's counts cover exactly the phase.
    pub complete: bool,
    pub client_requests: u64,
    pub client_errors: u64,
    /// Requests the drain gave up on in this phase, and in the phase before (the server may
    /// finish or count those during this one).
    pub client_abandoned: u64,
    pub carried_in: u64,
    pub server_requests: Option<f64>,
    pub client_prompt_tokens: Option<u64>,
    pub server_prompt_tokens: Option<f64>,
    pub client_output_tokens: Option<u64>,
    pub server_generation_tokens: Option<f64>,
    /// Client TTFT median (seconds) minus the server's (interpolated): time spent outside
    /// the server (network, HTTP, the client), when both are known.
    pub client_ttft_p50_s: Option<f64>,
    pub server_ttft_p50_s: Option<f64>,
    pub client_overhead_s: Option<f64>,
}

/// The self-check of every measured phase: per server (by URL), the clients' requests and
/// tokens beside the server's increases, and the TTFT gap.
pub fn checks(doc: &ResultDoc) -> Vec<ServerCheck> {
    let mut out = vec![];
    for (i, p) in doc.phases.iter().enumerate().filter(|(_, p)| p.role == crate::dsl::model::PhaseRole::Measure) {
        let before = i.checked_sub(1).map(|j| &doc.phases[j]);
        let mut urls: Vec<&str> = vec![];
        for s in &doc.servers {
            if !urls.contains(&s.url.as_str()) {
                urls.push(&s.url);
            }
        }
        for url in urls {
            let records: Vec<&ServerRecord> = doc.servers.iter().filter(|s| s.url == url).collect();
            // Several workloads at one server: one scrape stands for all (they read the same
            // counters); the clients add up.
            let Some(sp) = records[0].phases.iter().find(|x| x.phase == p.name && x.repetition == p.repetition) else {
                continue;
            };
            let clients: Vec<(&String, &crate::result::WorkloadDoc)> =
                records.iter().filter_map(|r| p.workloads.get_key_value(&r.workload)).collect();
            if clients.is_empty() {
                continue;
            }
            let sum_opt = |f: &dyn Fn(&crate::result::WorkloadDoc) -> Option<u64>| -> Option<u64> {
                clients.iter().map(|(_, w)| f(w)).sum::<Option<u64>>()
            };
            let client_ttft = clients
                .iter()
                .filter_map(|(_, w)| w.metric("ttft").filter(|m| m.count > 0).map(|m| m.p50))
                .reduce(f64::max);
            let server_ttft = sp.histograms.get("ttft").and_then(|h| h.quantile(0.5));
            out.push(ServerCheck {
                phase: p.name.clone(),
                repetition: p.repetition,
                url: url.to_string(),
                family: records[0].family.map(|f| f.name()),
                workloads: clients.iter().map(|(n, _)| n.to_string()).collect(),
                complete: sp.complete,
                client_requests: clients.iter().map(|(_, w)| w.requests).sum(),
                client_errors: clients.iter().map(|(_, w)| w.errors).sum(),
                client_abandoned: clients.iter().map(|(_, w)| w.abandoned).sum(),
                carried_in: before
                    .map_or(0, |b| clients.iter().filter_map(|(n, _)| b.workloads.get(*n)).map(|w| w.abandoned).sum()),
                server_requests: sp.counters.get("requests").copied(),
                client_prompt_tokens: sum_opt(&|w| w.input_tokens),
                server_prompt_tokens: sp.counters.get("prompt_tokens").copied(),
                client_output_tokens: sum_opt(&|w| w.output_tokens),
                server_generation_tokens: sp.counters.get("generation_tokens").copied(),
                client_ttft_p50_s: client_ttft,
                server_ttft_p50_s: server_ttft,
                client_overhead_s: client_ttft.zip(server_ttft).map(|(c, s)| c - s),
            });
        }
    }
    out
}

/// `foreign_traffic` where a server counted clearly more than its clients could have caused
/// in a phase (their requests, plus those the drain gave up on in this phase and the one
/// before, which the server may still have worked on); `token_disagreement` where, in a
/// phase whose requests all finished there, the token counts differ beyond tolerance.
/// Phases whose boundary scrapes failed are skipped.
pub fn findings(checks: &[ServerCheck]) -> Vec<Finding> {
    let mut out = vec![];
    for c in checks.iter().filter(|c| c.complete) {
        let ok = c.client_requests - c.client_errors;
        // Requests the server may count beyond the clients' successful ones.
        let loose = (c.client_requests - ok + c.client_abandoned + c.carried_in) as f64;
        let caused = (c.client_requests + c.client_abandoned + c.carried_in) as f64;
        let more_requests = c.server_requests.is_some_and(|s| s > caused + (caused * FOREIGN_SHARE).max(FOREIGN_MIN));
        let pairs = [
            ("prompt", c.server_prompt_tokens, c.client_prompt_tokens),
            ("generated", c.server_generation_tokens, c.client_output_tokens),
        ];
        let tokens: Vec<(&str, f64, f64)> =
            pairs.iter().filter_map(|(what, s, cl)| Some((*what, (*s)?, (*cl)? as f64))).collect();
        // Without a request counter: tokens beyond the clients' plus twice their mean per
        // request for every request that may have been worked on unseen.
        let more_tokens = c.server_requests.is_none()
            && tokens.iter().any(|(_, s, cl)| {
                let per = if ok > 0 { cl / ok as f64 } else { 0.0 };
                let bound = cl + loose * 2.0 * per;
                *s > bound + (bound * FOREIGN_TOKEN_SHARE).max(FOREIGN_TOKENS_MIN)
            });
        let evidence = serde_json::to_value(c).expect("a server check serialises");
        let workloads = c.workloads.join(", ");
        if more_requests || more_tokens {
            out.push(Finding {
                code: "foreign_traffic",
                phase: c.phase.clone(),
                workload: Some(workloads.clone()),
                message: format!(
                    "phase `{}`: the server at {} served clearly more than this run sent ({} requests sent{}; the server counted {}, and {} generated tokens against {} received): another client was using it, so its figures are contaminated",
                    c.phase,
                    c.url,
                    c.client_requests,
                    if loose > 0.0 { format!(", {} abandoned or carried over", c.client_abandoned + c.carried_in) } else { String::new() },
                    c.server_requests.map_or("no requests".into(), |r| format!("{r:.0} requests")),
                    c.server_generation_tokens.map_or("?".into(), |t| format!("{t:.0}")),
                    c.client_output_tokens.map_or("?".into(), |t| t.to_string()),
                ),
                evidence,
            });
            continue;
        }
        if loose > 0.0 {
            continue;
        }
        let off: Vec<String> = tokens
            .iter()
            .filter(|(_, s, cl)| (s - cl).abs() > (cl * TOKEN_SHARE).max(TOKENS_MIN))
            .map(|(what, s, cl)| format!("{what} tokens: server {s:.0}, clients {cl:.0}"))
            .collect();
        if !off.is_empty() {
            out.push(Finding {
                code: "token_disagreement",
                phase: c.phase.clone(),
                workload: Some(workloads),
                message: format!(
                    "phase `{}`: the server at {} and its clients count tokens differently ({}): check where the client's counts come from (usage, tokenizer or chunks) and the chat template",
                    c.phase,
                    c.url,
                    off.join("; ")
                ),
                evidence,
            });
        }
    }
    out
}
