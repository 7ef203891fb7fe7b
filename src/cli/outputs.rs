//! Where a command's outputs go: claimed before a run starts (writable, locked, not another
//! scenario's), then written from one list of exporters after the evaluation.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use benchctl::dsl::diag;
use benchctl::files::{FolderLock, LockError};
use benchctl::report::export::{Exporter, Target};
use benchctl::report::Outputs;
use benchctl::result::{self, ResultDoc};
use benchctl::{evaluate, exit, report};

/// Evaluates a result document, writes the outputs, prints the verdict; returns the exit code.
pub fn present(doc: &mut ResultDoc, outputs: &Outputs, quiet: bool, print_paths: bool, color: bool) -> u8 {
    let ev = evaluate::evaluate(doc);
    evaluate::apply(doc, &ev);
    let doc = &*doc;
    let exporters = outputs.exporters((!quiet).then(|| color && std::io::stdout().is_terminal()));
    // Everything is rendered before anything is written: a bad template writes nothing.
    let mut rendered = vec![];
    for e in &exporters {
        match e.render(doc, &ev) {
            Ok(bytes) => rendered.push((e.as_ref(), bytes)),
            Err(err) => {
                let help = err.help().map(|h| format!("\n  help: {h}")).unwrap_or_default();
                eprintln!("error: {err}{help}");
                return exit::INVALID_INPUT;
            }
        }
    }
    if !write_files(doc, &rendered) {
        return exit::RUNTIME_ERROR;
    }
    for (_, bytes) in rendered.iter().filter(|(e, _)| e.target() == Target::Stdout) {
        print!("{}", String::from_utf8_lossy(bytes));
    }
    if !quiet {
        let (diags, sources) = report::failure_diagnostics(&ev);
        eprint!("{}", diag::render(&diags, &sources, color, 100));
    }
    if print_paths {
        for e in &exporters {
            if let Target::File(p) = e.target() {
                // Absolute, so that the line can be pasted from any folder.
                println!("{}: {}", e.label(), std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display());
            }
        }
    }
    let not_comparable = doc.comparison.as_ref().and_then(|c| c.not_comparable.as_deref());
    if let (Some(why), false) = (not_comparable, quiet) {
        println!("baseline comparison not comparable: {why}; no regression verdict");
    }
    // Invalid evidence and failed expectations come first; a regression alone exits 3; a
    // baseline comparison that could not be made is invalid evidence for the gate.
    let regressed = doc.comparison.as_ref().is_some_and(|c| c.regressed);
    match evaluate::exit_code(&ev) {
        exit::SUCCESS if regressed => exit::REGRESSION,
        exit::SUCCESS if not_comparable.is_some() => exit::INVALID_RUN,
        code => code,
    }
}

/// Writes every file output; returns whether all were written. Every output is attempted;
/// if the one holding the measurements cannot be written, they go to a fallback file that
/// is printed, so a failed write never loses a run.
fn write_files(doc: &ResultDoc, rendered: &[(&dyn Exporter, Vec<u8>)]) -> bool {
    let mut ok = true;
    for (e, bytes) in rendered {
        let Target::File(p) = e.target() else { continue };
        let Err(err) = benchctl::files::write_atomic(p, bytes) else { continue };
        eprintln!("error: cannot write `{}`: {err}", p.display());
        ok = false;
        if e.holds_measurements() {
            let name = file_name(&doc.scenario.name);
            let fallback =
                benchctl::files::fallback_dir().join(format!("{name}-{}.json", stamp(std::time::SystemTime::now())));
            match benchctl::files::write_atomic(&fallback, bytes) {
                Ok(()) => eprintln!(
                    "the measurements were saved to {} instead; `benchctl report {0} --html FILE` makes the reports from it",
                    fallback.display()
                ),
                Err(e) => eprintln!("error: the fallback `{}` failed too: {e}", fallback.display()),
            }
        }
    }
    ok
}

/// `out/<scenario>/<timestamp>/`, the timestamp (when the command started) in a form that
/// sorts and suits file names.
pub fn default_dir(scenario: &str, at: std::time::SystemTime) -> PathBuf {
    PathBuf::from("out").join(file_name(scenario)).join(stamp(at))
}

fn stamp(at: std::time::SystemTime) -> String {
    result::rfc3339(at).chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// A scenario name as a file name: letters, digits, `-` and `_` kept, the rest `_`.
fn file_name(scenario: &str) -> String {
    scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Makes sure a run's outputs have somewhere to go before the run starts: each output's
/// folder is created and written to, the result's folder is locked for this run, and a
/// result of another scenario already there is not replaced. Returns the held lock.
pub fn claim_outputs(outputs: &Outputs, scenario: &str, lock: bool) -> Result<Option<FolderLock>, ClaimError> {
    let folder = |p: &PathBuf| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    for p in outputs.paths() {
        // Devices and FIFOs named as outputs are written into; their folder need not be writable.
        if std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            continue;
        }
        let dir = folder(p);
        benchctl::files::check_writable(&dir).map_err(|source| ClaimError::Unwritable {
            dir: dir.clone(),
            path: p.clone(),
            source,
        })?;
    }
    let Some(json) = &outputs.json else { return Ok(None) };
    if std::fs::metadata(json).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Ok(None);
    }
    let dir = folder(json);
    if !lock {
        return Ok(None);
    }
    let lock = benchctl::files::lock_folder(&dir).map_err(ClaimError::Lock)?;
    let previous = benchctl::dsl::source::read_text_bounded(json, result::MAX_RESULT_BYTES)
        .ok()
        .and_then(|t| serde_json::from_str::<Named>(&t).ok())
        .map(|n| n.scenario.name);
    if let Some(other) = previous.filter(|n| n != scenario) {
        return Err(ClaimError::OtherScenario { json: json.clone(), other, scenario: scenario.to_string() });
    }
    Ok(Some(lock))
}

/// The scenario a JSON file already at a result's place belongs to, if it is a result.
#[derive(serde::Deserialize)]
struct Named {
    scenario: NameOnly,
}

#[derive(serde::Deserialize)]
struct NameOnly {
    name: String,
}

/// Why a run's outputs cannot be claimed before it starts.
#[derive(Debug)]
pub enum ClaimError {
    /// An output's folder cannot be created or written.
    Unwritable { dir: PathBuf, path: PathBuf, source: std::io::Error },
    /// The result's folder is another run's (busy), or cannot be locked.
    Lock(LockError),
    /// The result's place holds a result of another scenario.
    OtherScenario { json: PathBuf, other: String, scenario: String },
}

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimError::Unwritable { dir, path, source } => write!(
                f,
                "cannot write into `{}` (for `{}`): {source}\n  help: choose a writable folder with --out, or fix the output path in the scenario's `report` node",
                dir.display(),
                path.display()
            ),
            ClaimError::Lock(e @ LockError::Busy(_)) => {
                write!(f, "{e}\n  help: wait for it to finish, or give this run its own folder with --out")
            }
            ClaimError::Lock(e) => e.fmt(f),
            ClaimError::OtherScenario { json, other, scenario } => write!(
                f,
                "`{}` holds a result of scenario `{other}`; this run of `{scenario}` would replace it\n  help: give this run its own folder with --out, or move the old result away",
                json.display()
            ),
        }
    }
}

impl std::error::Error for ClaimError {}
