//! Stage 8, report: presentations of an evaluated result: JUnit XML, Markdown, a terminal
//! table, and miette diagnostics for failed expectations. Each takes the result document
//! and its evaluation, nothing else.

pub mod export;
mod html;
mod junit;
pub(crate) mod markdown;
pub mod setup;
pub mod summary;
mod terminal;

pub use export::{ExportError, Exporter, Outputs};
pub use html::{html, TemplateError, DEFAULT_TEMPLATE};
pub use junit::junit;
pub use markdown::markdown;
pub use setup::format_value;
pub use terminal::{failure_diagnostics, terminal};

use crate::evaluate::Status;

/// A short word for a status.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::Insufficient => "INSUFFICIENT DATA",
        Status::Skipped => "SKIPPED",
    }
}

/// Where an expectation applies, for tables.
pub fn scope(o: &crate::evaluate::Outcome) -> String {
    o.phase.as_ref().map_or("whole run".into(), |p| format!("phase {p}"))
}
