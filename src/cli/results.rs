//! The commands that read saved results: `compare`, `baseline save|add` and `report`.

use std::path::{Path, PathBuf};

use benchctl::report::Outputs;
use benchctl::{compare, evaluate, exit, result};

use super::outputs::present;

/// `benchctl compare BASE NEW`: the table, and exit 3 when a metric regressed.
pub fn compare_cmd(base: &Path, new: &Path, tolerance: &str, json: bool) -> u8 {
    let tol = match benchctl::dsl::units::Percent::parse(tolerance, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --tolerance {tolerance}: {}\n  help: {}", e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    let (b, n) = match (result::read(base), result::read(new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}\n  help: pass two result.json files written by `benchctl run`");
            return exit::INVALID_INPUT;
        }
    };
    let c = compare::compare(&b, &n, &base.display().to_string(), tol, &Default::default());
    if json {
        println!("{}", serde_json::to_string_pretty(&c).expect("a comparison serialises: plain fields"));
    } else {
        print!("{}", compare::table(&c));
    }
    if let Some(why) = &c.not_comparable {
        if !json {
            println!("not comparable: {why}; no regression verdict (rerun both on a quiet host)");
        }
        return exit::INVALID_RUN;
    }
    if c.regressed {
        if !json {
            println!("regression: at least one metric is significantly worse than the baseline beyond its tolerance");
        }
        exit::REGRESSION
    } else {
        exit::SUCCESS
    }
}

/// `benchctl baseline save RESULT [--to FILE]`, and `baseline add` (`add`: the result's
/// runs are appended to those of an existing baseline of the same scenario).
pub fn baseline_save(result: &Path, to: Option<PathBuf>, add: bool) -> u8 {
    let v = match result::read(result) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let name = v.scenario.name.clone();
    let to = to.unwrap_or_else(|| PathBuf::from("baseline").join(format!("{name}.json")));
    let mut doc = if add && to.exists() {
        let mut base = match result::read(&to) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}\n  help: `baseline add` appends to a baseline written by `baseline save`");
                return exit::INVALID_INPUT;
            }
        };
        let other = base.scenario.name.clone();
        if other != name {
            eprintln!(
                "error: `{}` is a baseline of scenario `{other}`, and `{}` a result of `{name}`\n  help: add results of the same scenario, or pass another --to",
                to.display(),
                result.display()
            );
            return exit::INVALID_INPUT;
        }
        base.runs.extend(v.runs);
        base
    } else {
        v
    };
    let runs = doc.runs.len();
    // A baseline is a result document with its evaluation, as `run` writes one.
    let ev = evaluate::evaluate(&doc);
    evaluate::apply(&mut doc, &ev);
    match benchctl::files::write_atomic(&to, &evaluate::Written::new(&doc, &ev).to_vec_pretty()) {
        Ok(()) => {
            println!("baseline: {} ({runs} run{})", to.display(), if runs == 1 { "" } else { "s" });
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write `{}`: {e}", to.display());
            exit::RUNTIME_ERROR
        }
    }
}

/// `benchctl report`: evaluates a saved result again and writes the requested outputs.
pub fn report_cmd(result: &Path, outputs: &Outputs, quiet: bool, color: bool) -> u8 {
    let mut doc = match result::read(result) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}\n  help: pass the result.json that `benchctl run` wrote");
            return exit::INVALID_INPUT;
        }
    };
    present(&mut doc, outputs, quiet, true, color)
}
