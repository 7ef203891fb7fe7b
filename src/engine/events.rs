//! What the engine tells its reporters while it runs. The engine only emits these; the
//! progress display (and anything else) consumes them.

use crate::dsl::model::PhaseRole;
use crate::measure::record::WindowSummary;

#[derive(Debug, Clone)]
pub enum RunEvent {
    PhaseStarted {
        index: usize,
        count: usize,
        name: String,
        role: PhaseRole,
        planned_s: Option<f64>,
        /// Planned seconds from this phase's start to the end of the run (`None` when a
        /// phase ahead ends only on a condition).
        remaining_s: Option<f64>,
        /// The workloads the phase drives (or searches), in the scenario's order.
        workloads: Vec<String>,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A closed window of one workload's time series.
    Window {
        phase: String,
        workload: String,
        elapsed_s: f64,
        summary: WindowSummary,
    },
    /// Requests of a workload in flight, once a window (whether or not one finished).
    InFlight {
        workload: String,
        in_flight: u64,
    },
    /// A capacity search's step ended with its verdict.
    SearchStep {
        workload: String,
        step: super::capacity::SearchStep,
    },
    /// A capacity search's answer.
    Capacity(super::capacity::SearchOutcome),
    PhaseFinished {
        name: String,
        stopped_by: String,
        duration_s: f64,
    },
    Warning(Warning),
    /// Each workload's totals so far in the current phase, once a window; only sent to a
    /// reporter whose [`Reporter::wants_totals`] says so (a copy of the histograms).
    Totals {
        phase: String,
        role: PhaseRole,
        /// Seconds since the phase started.
        secs: f64,
        elapsed_s: f64,
        /// Shared with the engine's own checks: reporters clone the `Arc`, not the totals.
        workloads: std::sync::Arc<super::executor::Snapshots>,
    },
}

/// A warning of the run, as the result document records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Warning {
    /// Stable identifier: `setup`, `fallback`, `pressure_capped`, `gpu_pressure_skipped`,
    /// `drain_abandoned`, `too_few_samples` (after a warmup), `aborted`.
    pub code: std::borrow::Cow<'static, str>,
    pub message: String,
    pub phase: Option<String>,
    pub workload: Option<String>,
}

impl Warning {
    pub fn new(code: &'static str, message: impl Into<String>) -> Warning {
        Warning { code: code.into(), message: message.into(), phase: None, workload: None }
    }
    pub fn in_phase(mut self, phase: &str) -> Warning {
        self.phase = Some(phase.to_string());
        self
    }
    pub fn for_workload(mut self, workload: &str) -> Warning {
        self.workload = Some(workload.to_string());
        self
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Consumes run events (progress bars, plain lines, nothing).
pub trait Reporter: Send {
    fn event(&mut self, e: &RunEvent);
    fn finish(&mut self) {}
    /// Whether this reporter reads [`RunEvent::Totals`] (they cost a copy of the totals).
    fn wants_totals(&self) -> bool {
        false
    }
}

/// Two reporters fed the same events (the progress display and the live dashboard).
pub struct Tee<'a>(pub &'a mut dyn Reporter, pub &'a mut dyn Reporter);

impl Reporter for Tee<'_> {
    fn event(&mut self, e: &RunEvent) {
        if !matches!(e, RunEvent::Totals { .. }) || self.0.wants_totals() {
            self.0.event(e);
        }
        if !matches!(e, RunEvent::Totals { .. }) || self.1.wants_totals() {
            self.1.event(e);
        }
    }
    fn finish(&mut self) {
        self.0.finish();
        self.1.finish();
    }
    fn wants_totals(&self) -> bool {
        self.0.wants_totals() || self.1.wants_totals()
    }
}
