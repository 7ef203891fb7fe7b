//! The check stage as the commands run it: the language stage's diagnostics (parse, decode,
//! validate, lints) and then the plan's sample lints (whether each percentile bound can
//! collect its samples), which need the plan's request estimates. The language stage
//! itself knows nothing of the plan.

use std::path::Path;

use crate::dsl::{self, Checked, LoadOptions};

/// Reads, decodes, validates and lints the scenario at `path`, with the sample lints.
pub fn check_file(path: &Path, opts: &LoadOptions) -> Checked {
    with_sample_lints(dsl::check_file(path, opts))
}

/// Like [`check_file`] for text already in memory; imports resolve next to `path`.
pub fn check_source(name: &str, path: Option<&Path>, text: &str, opts: &LoadOptions) -> Checked {
    with_sample_lints(dsl::check_source(name, path, text, opts))
}

/// Adds the sample lints to a valid scenario's diagnostics (in source order, as the rest).
fn with_sample_lints(mut c: Checked) -> Checked {
    if let Some(valid) = &c.scenario {
        crate::plan::estimate::sample_lints(valid, &mut c.diagnostics);
        dsl::sort_diagnostics(&mut c.diagnostics);
    }
    c
}
