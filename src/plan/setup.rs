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

/// The setup steps of every workload, in the scenario's order (each kind estimates its own:
/// `dsl/kinds/`).
pub fn steps(sc: &Scenario, cores: usize) -> Vec<SetupStep> {
    let mut out = vec![];
    for w in &sc.workloads {
        let est = super::estimate::estimating(sc, w, cores);
        out.extend(w.spec.kind().setup_steps(&est).into_iter().map(|s| SetupStep {
            workload: w.name.value.clone(),
            what: s.what.into(),
            seconds: s.seconds,
            note: s.note,
        }));
    }
    out
}

/// The total of the steps that could be estimated, and whether that was all of them.
pub fn total(steps: &[SetupStep]) -> (f64, bool) {
    (steps.iter().filter_map(|s| s.seconds).sum(), steps.iter().all(|s| s.seconds.is_some()))
}
