//! Setup before the first phase, estimated: model loads, index builds, ground truth, sweeps.
//! The figures are rough (a machine's speed is not known before it runs) but of the right
//! size, from measurements on the project's 2-core machines (docs/running.md, "Setup time"),
//! scaled by the work each step does and the cores this machine has.

use serde::Serialize;

use crate::dsl::model::*;

/// One step of a workload's setup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SetupStep {
    pub workload: String,
    /// What the step does: `model load`, `index build`, `ground truth`, ...
    pub what: String,
    /// Estimated seconds; `None` when nothing before the run can tell.
    pub seconds: Option<f64>,
    /// How the estimate was made (or what makes it vary: a cache hit).
    pub note: String,
}

/// Seconds per vector and per ef_construction step to insert into HNSW, at dimension 128 on
/// 2 cores: 1M vectors took 251 s (usearch) and 553 s (hnsw_rs) at ef_construction 200.
const USEARCH_INSERT_S: f64 = 251.0 / 1e6 / 200.0;
const HNSW_RS_INSERT_S: f64 = 553.0 / 1e6 / 200.0;
/// Seconds per (query x vector x dimension) of exact search on 2 cores (release build).
const EXACT_S: f64 = 0.25e-9;
/// Seconds per parameter to make random weights.
const RANDOM_WEIGHT_S: f64 = 4e-9;
/// Seconds to open a model file whose size is not known before the run.
const FILE_LOAD_S: f64 = 2.0;

/// The setup steps of every workload, in the scenario's order.
pub fn steps(sc: &Scenario, cores: usize) -> Vec<SetupStep> {
    let scale = 2.0 / cores.max(1) as f64;
    let mut out = vec![];
    for w in &sc.workloads {
        let name = &w.name.value;
        let step = |what: &str, seconds: Option<f64>, note: String| SetupStep {
            workload: name.clone(),
            what: what.into(),
            seconds,
            note,
        };
        match &w.spec {
            WorkloadSpec::Inference(i) => {
                let Some(m) = &i.model else { continue };
                match &m.source.value {
                    ModelSource::Synthetic { arch } => {
                        let params = super::estimate::synthetic_parameters(*arch) as f64;
                        out.push(step(
                            "model load",
                            Some(params * RANDOM_WEIGHT_S),
                            format!("random weights for {:.0}M parameters", params / 1e6),
                        ));
                    }
                    ModelSource::Hf { .. } => out.push(step(
                        "model load",
                        None,
                        "from the Hugging Face cache, or downloaded first (not known before the run)".into(),
                    )),
                    _ => out.push(step(
                        "model load",
                        Some(FILE_LOAD_S),
                        "reading the model file (its size varies)".into(),
                    )),
                }
                let service = super::estimate::service_time(sc, w).map(|(t, _)| t);
                let warmup = i.warmup_requests.as_ref().map_or(0, |n| n.value);
                if warmup > 0 {
                    out.push(step(
                        "warmup requests",
                        service.map(|t| t * warmup as f64),
                        format!("{warmup} request(s) before the phases"),
                    ));
                }
                if !i.batch.is_empty() {
                    let total: u64 = i.batch.iter().map(|b| b.value).sum();
                    out.push(step(
                        "batch-size sweep",
                        service.map(|t| t * 3.0 * total as f64),
                        format!(
                            "batch sizes {}",
                            i.batch.iter().map(|b| b.value.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            WorkloadSpec::Retrieval(r) => {
                let Some(idx) = &r.index else { continue };
                let (n, dim) = (idx.entries.value as f64, idx.dim.value as f64);
                let queries = r.query.as_ref().and_then(|q| q.count.as_ref()).map_or(1000, |c| c.value) as f64;
                let cache = if r.cache { "; 0 s on a cache hit" } else { "" };
                if idx.kind.value == IndexKind::Hnsw {
                    let efc = idx.ef_construction.as_ref().map_or(200, |e| e.value) as f64;
                    let usearch = idx.backend.as_ref().is_some_and(|b| b.value == IndexBackend::Usearch);
                    let per = if usearch { USEARCH_INSERT_S } else { HNSW_RS_INSERT_S };
                    out.push(step(
                        "index build",
                        Some(n * efc * per * (dim / 128.0) * scale),
                        format!("{n:.0} vectors at ef_construction {efc:.0}{cache}"),
                    ));
                }
                if r.ground_truth {
                    out.push(step(
                        "ground truth",
                        Some(queries * n * dim * EXACT_S * scale),
                        format!("exact search of {queries:.0} queries{cache}"),
                    ));
                }
                let sweep = r.query.as_ref().map_or(0, |q| q.ef.len().saturating_sub(1));
                if sweep > 0 && idx.kind.value == IndexKind::Hnsw {
                    // A query costs about as much as inserting a vector at ef = ef_construction.
                    let efs: f64 = r.query.as_ref().map_or(0.0, |q| q.ef.iter().map(|e| e.value as f64).sum());
                    out.push(step(
                        "ef sweep",
                        Some(queries * efs * USEARCH_INSERT_S * (dim / 128.0)),
                        format!("{queries:.0} queries at each of {} ef values", q_efs(r)),
                    ));
                }
            }
            WorkloadSpec::Kernel(_) => {
                out.push(step("kernel compile", Some(1.0), "NVRTC, and the device's peaks the first time".into()))
            }
            _ => {}
        }
    }
    out
}

fn q_efs(r: &Retrieval) -> usize {
    r.query.as_ref().map_or(0, |q| q.ef.len())
}

/// The total of the steps that could be estimated, and whether that was all of them.
pub fn total(steps: &[SetupStep]) -> (f64, bool) {
    (steps.iter().filter_map(|s| s.seconds).sum(), steps.iter().all(|s| s.seconds.is_some()))
}
