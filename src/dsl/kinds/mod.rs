//! The workload kinds' language side, one file per kind: its spec (what the scenario says),
//! its decoder, the checks decoding alone cannot make, and what the plan needs to know
//! before anything runs (a summary, the service time, tokens per request, the setup steps,
//! the CPU it keeps busy). Each kind implements [`KindSpec`] in full (no default methods),
//! and [`WorkloadSpec::kind`] is the one match that lists the kinds: a new kind does not
//! compile until it answers every question. Its runtime side is its backend folder.

pub mod inference;
pub mod kernel;
pub mod openai;
pub mod retrieval;
pub mod synthetic;

use super::diag::{Code, Diagnostic};
use super::model::{SyntheticArch, Workload, WorkloadSpec};

/// What the plan brings to the kinds' estimates: facts about the machine and the models
/// that the language does not know.
pub struct Estimating<'a> {
    /// Whether the workload runs on a GPU (its device, else the scenario's).
    pub gpu: bool,
    /// Setup times were measured on 2 cores: multiplied by 2 / the cores this machine has.
    pub scale: f64,
    /// The parameters of a synthetic model of an architecture.
    pub parameters: &'a dyn Fn(SyntheticArch) -> u64,
}

/// One setup step of a workload, estimated.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupEstimate {
    /// What the step does: `model load`, `index build`, `ground truth`, ...
    pub what: &'static str,
    /// Estimated seconds; `None` when nothing before the run can tell.
    pub seconds: Option<f64>,
    /// How the estimate was made (or what makes it vary: a cache hit).
    pub note: String,
}

/// Everything the language and plan stages know about one workload kind.
pub trait KindSpec {
    /// What the kind cannot run without, and conflicts among its options (the validate
    /// stage; `w` is the workload the spec belongs to).
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>);
    /// One line for the plan: what the workload does.
    fn summary(&self) -> String;
    /// Estimated mean service time of a request, with where the figure came from; `None`
    /// when nothing before the run can tell.
    fn service_time(&self, est: &Estimating) -> Option<(f64, String)>;
    /// Output tokens every request surely produces, when known before the run (the samples
    /// a request adds to ITL).
    fn tokens_per_request(&self) -> Option<f64>;
    /// The setup steps before the first phase, estimated.
    fn setup_steps(&self, est: &Estimating) -> Vec<SetupEstimate>;
    /// Cores a drive of `workers` concurrent requests keeps busy (`None`: the workload
    /// mostly waits, or runs on a GPU), for the CPU-contention lint.
    fn cpu_demand(&self, workers: usize, cores: usize, on_cpu: bool) -> Option<usize>;
    /// The model server's Prometheus endpoint to scrape during the run, if the kind talks
    /// to a server and scraping is on.
    fn server_metrics(&self) -> Option<ServerMetrics>;
}

/// Where a workload's server publishes its metrics, and how often to read them.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetrics {
    pub url: String,
    pub every: super::units::Duration,
    /// The environment variable holding the API key, sent as a bearer token.
    pub api_key_env: Option<String>,
}

impl WorkloadSpec {
    /// The kind's language side.
    pub fn kind(&self) -> &dyn KindSpec {
        match self {
            WorkloadSpec::Inference(s) => s,
            WorkloadSpec::Retrieval(s) => s,
            WorkloadSpec::Kernel(s) => s,
            WorkloadSpec::Synthetic(s) => s,
            WorkloadSpec::Openai(s) => s,
        }
    }
}

/// Reports an option a workload cannot run without, with an example.
pub(crate) fn missing(diags: &mut Vec<Diagnostic>, w: &Workload, what: &str, example: &str) {
    diags.push(
        Diagnostic::error(Code::MissingOption, format!("{} workload `{}` needs {what}", w.kind.value, w.name.value))
            .with_label(w.name.span, "missing")
            .with_help(format!("add, for example: {example}")),
    );
}
