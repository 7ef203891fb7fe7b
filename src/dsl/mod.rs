//! The scenario language: source -> KDL -> decoded [`model::Scenario`] -> [`ValidScenario`].
//!
//! Depends on nothing heavy (no tokio, candle, hnsw_rs): `check`, `plan` and `fmt` build
//! only on this module and `plan`.

pub mod decode;
pub mod diag;
pub mod format;
pub mod kinds;
pub mod lints;
pub mod load;
pub mod metrics;
pub mod model;
pub mod reader;
pub mod source;
pub mod span;
pub mod suggest;
pub mod units;
pub mod validate;
pub mod value;

use std::path::Path;

pub use diag::{Diagnostic, Severity};
pub use load::{LoadOptions, Workspace};
pub use source::SourceMap;
pub use validate::ValidScenario;

/// The outcome of checking one scenario: its sources, every diagnostic, and the validated
/// scenario when there were no errors.
pub struct Checked {
    pub sources: SourceMap,
    pub diagnostics: Vec<Diagnostic>,
    pub scenario: Option<ValidScenario>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads, decodes, validates and lints the scenario at `path` (the commands add the plan's
/// sample lints: [`crate::check`]).
pub fn check_file(path: &Path, opts: &LoadOptions) -> Checked {
    finish(Workspace::open(path, opts), opts)
}

/// Like [`check_file`] for text already in memory; imports resolve next to `path`.
pub fn check_source(name: &str, path: Option<&Path>, text: &str, opts: &LoadOptions) -> Checked {
    finish(Workspace::from_source(name, path, text.to_string(), opts), opts)
}

fn finish(mut ws: Workspace, opts: &LoadOptions) -> Checked {
    let mut diagnostics = std::mem::take(&mut ws.diags);
    let root = ws.root;
    let mut sources = ws.sources.clone();
    let index = ws.scenario_index();
    diagnostics.append(&mut ws.diags);
    let Some(index) = index else {
        return done(sources, diagnostics, None);
    };
    let scenario_node = ws.root_node(index);
    let items = ws.items(scenario_node);
    let (params, decls) = load::bind_params(&mut sources, &items, &opts.sets, &mut diagnostics);
    let mut cx = reader::Ctx::new(root, &params);
    let mut scenario = decode::decode_scenario(&mut cx, root, scenario_node, &items);
    diagnostics.append(&mut cx.diags);
    scenario.params = decls.clone();
    let mut valid = validate::validate(scenario, &mut diagnostics);
    valid.params = decls
        .iter()
        .filter_map(|d| {
            params.bindings.get(&d.name.value).map(|b| validate::EffectiveParam {
                name: d.name.value.clone(),
                value: b.value.clone(),
                span: b.value_span,
            })
        })
        .collect();
    lints::lint(&valid, root, &decls, &|n| params.is_used(n), &mut diagnostics);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    done(sources, diagnostics, ok.then_some(valid))
}

fn done(sources: SourceMap, mut diagnostics: Vec<Diagnostic>, scenario: Option<ValidScenario>) -> Checked {
    sort_diagnostics(&mut diagnostics);
    Checked { sources, diagnostics, scenario }
}

/// Puts diagnostics in source order per file (errors before warnings at the same place),
/// without repeats.
pub fn sort_diagnostics(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics
        .sort_by_key(|d| (d.primary_file(), d.labels.first().map(|l| l.span.start), d.severity != Severity::Error));
    diagnostics.dedup();
}
