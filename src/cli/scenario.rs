//! The commands on scenario files: `check`, `plan`, `fmt`, `init` and `list`, and how a
//! scenario argument names a file (a path, or a built-in scenario's name).

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use benchctl::dsl::{self, diag, format, LoadOptions};
use benchctl::{exit, plan};

use super::args::{width, Format};

/// The file a scenario argument names: the path when it exists; for a bare name (`quick`,
/// `quick.kdl`), `scenarios/NAME.kdl` here when there is one (a local file wins), else the
/// built-in scenario of that name, copied to the cache so that diagnostics point into a
/// file the user can open. Anything else is left as given, for the loader to report.
pub fn scenario_path(arg: &std::path::Path, quiet: bool) -> PathBuf {
    let given = arg.to_path_buf();
    if given.exists() || given.components().count() != 1 {
        return given;
    }
    let text = given.to_string_lossy();
    let name = text.strip_suffix(".kdl").unwrap_or(&text);
    if let Some(local) = local_scenario(name) {
        return local;
    }
    let Some((_, builtin)) = dsl::load::builtin_scenarios().iter().find(|(n, _)| *n == name) else {
        return given;
    };
    let copy = benchctl::workload::setup::cache_dir().join("scenarios").join(format!("{name}.kdl"));
    let current = std::fs::read_to_string(&copy).is_ok_and(|t| t == *builtin);
    let written = current
        || std::fs::create_dir_all(copy.parent().unwrap_or(&copy))
            .and_then(|_| benchctl::files::write_atomic(&copy, builtin.as_bytes()))
            .is_ok();
    if !written {
        eprintln!("error: cannot write the built-in scenario `{name}` to `{}`", copy.display());
        return given;
    }
    if !quiet {
        eprintln!("{name}: the built-in scenario (a copy to read or edit: {})", copy.display());
    }
    copy
}

/// A local file that takes the place of the built-in scenario `name`: `NAME.kdl` or
/// `scenarios/NAME.kdl` in the working directory.
pub fn local_scenario(name: &str) -> Option<PathBuf> {
    let file = format!("{name}.kdl");
    [PathBuf::from(&file), std::path::Path::new("scenarios").join(&file)].into_iter().find(|p| p.is_file())
}

pub fn check(files: &[PathBuf], opts: &LoadOptions, format: Format, deny_warnings: bool, color: bool) -> u8 {
    let mut json = vec![];
    let (mut errors, mut warnings) = (0, 0);
    for file in files {
        let checked = benchctl::check::check_file(file, opts);
        let e = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        errors += e;
        warnings += checked.diagnostics.len() - e;
        match format {
            Format::Json => json.extend(checked.diagnostics.iter().map(|d| diag::to_json(d, &checked.sources))),
            Format::Human => {
                eprint!("{}", diag::render(&checked.diagnostics, &checked.sources, color, width()));
                let status = if e > 0 { "invalid" } else { "ok" };
                println!(
                    "{status}: {} ({e} error{}, {} warning{})",
                    file.display(),
                    plural(e),
                    checked.diagnostics.len() - e,
                    plural(checked.diagnostics.len() - e)
                );
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json).expect("diagnostics serialise"));
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub fn plan_cmd(file: &std::path::Path, opts: &LoadOptions, format: Format, color: bool) -> u8 {
    let checked = benchctl::check::check_file(file, opts);
    if !checked.diagnostics.is_empty() {
        eprint!("{}", diag::render(&checked.diagnostics, &checked.sources, color, width()));
    }
    let Some(valid) = &checked.scenario else {
        eprintln!("error: `{}` is not a valid scenario; nothing to plan", file.display());
        return exit::INVALID_INPUT;
    };
    let p = plan::build(valid, &checked.sources);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&p).expect("plan serialises") + "\n",
        Format::Human => plan::render_text(&p),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit::SUCCESS
}

pub fn fmt(files: &[PathBuf], check: bool) -> u8 {
    let mut status = exit::SUCCESS;
    for file in files {
        let text = match dsl::source::read_text(file) {
            Ok(t) => t,
            Err((_, msg, help)) => {
                eprintln!("error: {msg}\n  help: {help}");
                return exit::INVALID_INPUT;
            }
        };
        let formatted = match format::format_source(&text) {
            Ok(f) => f,
            Err(format::FormatError::Syntax(_)) => {
                eprintln!(
                    "error: `{}` is not valid KDL; run `benchctl check {}` for details",
                    file.display(),
                    file.display()
                );
                return exit::INVALID_INPUT;
            }
            Err(format::FormatError::TooComplex(at, msg, help)) => {
                // The formatter's own guard: the text is scanned once, not again here.
                let (line, col) = dsl::source::line_col(&text, at);
                eprintln!("error: {}:{line}:{col}: {msg}; it was left as it is\n  help: {help}", file.display());
                return exit::INVALID_INPUT;
            }
            Err(format::FormatError::Unsafe) => {
                eprintln!(
                    "error: cannot format `{}` without changing its meaning; it was left as it is (please report this)",
                    file.display()
                );
                return exit::INVALID_INPUT;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            println!("would reformat: {}", file.display());
            status = exit::FAILED;
        } else if let Err(e) = benchctl::files::write_atomic(file, formatted.as_bytes()) {
            eprintln!("error: cannot write `{}`: {e}", file.display());
            return exit::RUNTIME_ERROR;
        } else {
            println!("formatted: {}", file.display());
        }
    }
    status
}

/// The starter scenarios of `benchctl init`, one per `--template`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Template {
    Synthetic,
    Inference,
    Retrieval,
    Endpoint,
}

impl Template {
    fn text(self) -> &'static str {
        match self {
            Template::Synthetic => include_str!("../../templates/starter.kdl"),
            Template::Inference => include_str!("../../templates/starter-inference.kdl"),
            Template::Retrieval => include_str!("../../templates/starter-retrieval.kdl"),
            Template::Endpoint => include_str!("../../templates/starter-endpoint.kdl"),
        }
    }
}

pub fn init(file: &std::path::Path, force: bool, template: Template) -> u8 {
    if let Some(kind) = std::fs::metadata(file).ok().as_ref().and_then(dsl::source::special_kind) {
        // A scenario is a regular file: never write one into a device, a FIFO or a folder.
        eprintln!("error: `{}` is {kind}, not a scenario file\n  help: name a .kdl file to create", file.display());
        return exit::INVALID_INPUT;
    }
    if file.exists() && !force {
        eprintln!("error: `{}` exists; pass --force to overwrite it", file.display());
        return exit::INVALID_INPUT;
    }
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "starter".into());
    let name: String =
        name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let text = template
        .text()
        .replace("scenario \"starter\"", &format!("scenario \"{name}\""))
        .replace("out/starter/", &format!("out/{name}/"));
    if let Err(e) = benchctl::files::write_atomic(file, text.as_bytes()) {
        eprintln!("error: cannot write `{}`: {e}", file.display());
        return exit::RUNTIME_ERROR;
    }
    println!("wrote {}: check it with `benchctl check {0}`, run it with `benchctl run {0}`", file.display());
    exit::SUCCESS
}

pub fn list(extra: &[PathBuf]) -> u8 {
    use benchctl::dsl::load::{builtin_modules, summary_line};
    // Sections of (name, what it is for), printed with one name column.
    let mut sections: Vec<(String, Vec<(String, String)>)> = vec![];
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir("scenarios")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
        .collect();
    scenarios.sort();
    if !scenarios.is_empty() {
        let rows = scenarios
            .iter()
            .map(|p| {
                let text = dsl::source::read_text_bounded(p, dsl::source::MAX_FILE_BYTES).unwrap_or_default();
                (p.display().to_string(), summary_line(&text))
            })
            .collect();
        sections.push(("scenarios (./scenarios):".into(), rows));
    }
    let rows = dsl::load::builtin_scenarios()
        .iter()
        .map(|(name, text)| {
            let what = summary_line(text);
            match local_scenario(name) {
                Some(p) => (name.to_string(), format!("{what} [{} is used instead]", p.display())),
                None => (name.to_string(), what),
            }
        })
        .collect();
    sections.push(("scenarios built in (benchctl run NAME):".into(), rows));
    let opts = LoadOptions { stdlib_dirs: extra.to_vec(), ..Default::default() };
    for dir in opts.stdlib_path() {
        let mut files = vec![];
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "kdl") {
                    files.push(p);
                }
            }
        }
        files.sort();
        if !files.is_empty() {
            let rows = files
                .iter()
                .map(|p| {
                    let rel = p.strip_prefix(&dir).unwrap_or(p).display().to_string();
                    let text = dsl::source::read_text_bounded(p, dsl::source::MAX_FILE_BYTES).unwrap_or_default();
                    (format!("std/{rel}"), summary_line(&text))
                })
                .collect();
            sections.push((format!("stdlib modules in {}:", dir.display()), rows));
        }
    }
    let rows = builtin_modules().iter().map(|(path, text)| (format!("std/{path}"), summary_line(text))).collect();
    sections.push(("stdlib modules built in (use \"std/...\"):".into(), rows));
    let width = sections.iter().flat_map(|s| s.1.iter().map(|r| r.0.len())).max().unwrap_or(0);
    for (title, rows) in sections {
        println!("{title}");
        for (name, what) in rows {
            println!("  {name:<width$}  {what}");
        }
    }
    exit::SUCCESS
}
