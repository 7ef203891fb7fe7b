//! The workload registry: the one place that turns a decoded workload spec into a running
//! workload. One arm per kind, each a single call into the kind's folder with the shared
//! [`SetupContext`]; the engine never sees which kinds exist (docs/architecture.md has the
//! steps for adding one).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dsl::model::{Workload as WorkloadNode, WorkloadSpec};
use crate::dsl::source::SourceMap;
use crate::dsl::span::Span;
use crate::dsl::validate::ValidScenario;
use crate::engine::events::Warning;
use crate::workload::setup::{DeviceRequest, Prepared, SetupContext, SetupError};
use crate::workload::synthetic::Synthetic;
use crate::workload::Workload;

/// Prepares one workload of any kind.
pub fn prepare(spec: &WorkloadSpec, cx: &mut SetupContext) -> Result<Prepared, SetupError> {
    match spec {
        WorkloadSpec::Synthetic(s) => Ok(Prepared::Ready(Arc::new(Synthetic::from_spec(s)))),
        WorkloadSpec::Inference(s) => crate::inference::workload::prepare(s, cx),
        WorkloadSpec::Retrieval(s) => crate::retrieval::workload::prepare(s, cx),
        WorkloadSpec::Kernel(s) => crate::kernel::prepare(s, cx),
        WorkloadSpec::Openai(s) => crate::endpoint::prepare(s, cx),
    }
}

/// Why a scenario's workloads could not be prepared (before anything is measured).
#[derive(Debug)]
pub struct SetupFailure {
    pub workload: String,
    /// Where in the scenario the failure points (the workload's name when the kind said
    /// nothing more precise).
    pub span: Span,
    pub error: Box<SetupError>,
}

/// A scenario's executable workloads, with what their setup had to say.
pub struct Workloads {
    pub ready: BTreeMap<String, Arc<dyn Workload>>,
    /// Workloads skipped on this machine, with the reason: their drives do not run and
    /// expectations on them are skipped.
    pub skipped: BTreeMap<String, String>,
    pub warnings: Vec<Warning>,
}

/// The device a workload asked for: its own `device` node, else the scenario's, else the CPU.
fn device(v: &ValidScenario, w: &WorkloadNode) -> DeviceRequest {
    w.device
        .as_ref()
        .or(v.scenario.device.as_ref())
        .map(|d| DeviceRequest { kind: d.value.kind, fallback_cpu: d.value.fallback_cpu })
        .unwrap_or_default()
}

/// Prepares every workload of the scenario, in order (models are loaded, indexes built,
/// kernels compiled). `base` is the folder relative paths are resolved against; `progress`
/// receives (workload, message) lines.
pub fn prepare_all(
    v: &ValidScenario,
    sources: &SourceMap,
    base: &std::path::Path,
    progress: &mut dyn FnMut(&str, String),
) -> Result<Workloads, SetupFailure> {
    prepare_shard(v, sources, base, None, progress)
}

/// [`prepare_all`] for one shard of a split run: prompt and query files are partitioned.
pub fn prepare_shard(
    v: &ValidScenario,
    sources: &SourceMap,
    base: &std::path::Path,
    partition: Option<crate::partition::Shard>,
    progress: &mut dyn FnMut(&str, String),
) -> Result<Workloads, SetupFailure> {
    let mut out = Workloads { ready: BTreeMap::new(), skipped: BTreeMap::new(), warnings: vec![] };
    let seed = v.scenario.seed.as_ref().map_or(0, |s| s.value);
    for w in &v.scenario.workloads {
        let name = w.name.value.as_str();
        let mut say = |m: String| progress(name, m);
        let mut cx = SetupContext::new(name, device(v, w), seed, base, sources, &mut say);
        cx.partition = partition;
        let prepared = prepare(&w.spec, &mut cx);
        let warnings = cx.take_warnings();
        out.warnings.extend(warnings.into_iter().map(|(code, m)| Warning::new(code, m).for_workload(name)));
        match prepared {
            Ok(Prepared::Ready(workload)) => {
                out.ready.insert(name.to_string(), workload);
            }
            Ok(Prepared::Skipped { reason }) => {
                out.skipped.insert(name.to_string(), reason);
            }
            Err(error) => {
                let span = error.at.unwrap_or(w.name.span);
                return Err(SetupFailure { workload: name.to_string(), span, error: Box::new(error) });
            }
        }
    }
    Ok(out)
}
