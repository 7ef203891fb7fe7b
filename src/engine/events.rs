//! What the engine tells its reporters while it runs. The engine only emits these; the
//! progress display (and anything else) consumes them.

use super::record::WindowSummary;
use crate::dsl::model::PhaseRole;

#[derive(Debug, Clone)]
pub enum RunEvent {
    PhaseStarted {
        index: usize,
        count: usize,
        name: String,
        role: PhaseRole,
        planned_s: Option<f64>,
    },
    /// A closed window of one workload's time series.
    Window {
        phase: String,
        workload: String,
        elapsed_s: f64,
        summary: WindowSummary,
    },
    SearchLevel {
        workload: String,
        rate: f64,
        stable: bool,
    },
    PhaseFinished {
        name: String,
        stopped_by: String,
        duration_s: f64,
    },
    Warning(String),
}

/// Consumes run events (progress bars, plain lines, nothing).
pub trait Reporter: Send {
    fn event(&mut self, e: &RunEvent);
    fn finish(&mut self) {}
}
