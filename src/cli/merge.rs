//! `benchctl merge DIR`: a split run's shards into one evaluated result, or a fleet's
//! members compared.

use std::path::{Path, PathBuf};

use benchctl::exit;
use benchctl::merge::MergeError;
use benchctl::report::Outputs;

use super::outputs::{claim_outputs, present};

/// What `benchctl merge` was asked for.
pub struct MergeArgs {
    pub dir: PathBuf,
    pub expect: u64,
    pub mode: Option<String>,
    pub allow_missing: u64,
    pub out: Option<PathBuf>,
    pub outlier_deviation: String,
    pub quiet: bool,
    pub color: bool,
}

/// `benchctl merge DIR --expect N`: split mode evaluates the merged data like a run (every
/// output, the usual exit codes); fleet mode writes the fleet document and its Markdown, and
/// exits 1 when a node failed or a slow outlier stands out. A bad input exits 4, named.
pub fn merge_cmd(a: MergeArgs) -> u8 {
    let deviation = match benchctl::dsl::units::Percent::parse(&a.outlier_deviation, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --outlier-deviation {}: {}\n  help: {}", a.outlier_deviation, e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    if a.expect == 0 {
        eprintln!("error: --expect 0: a merge needs at least one shard or node");
        return exit::INVALID_INPUT;
    }
    let paths = match benchctl::merge::inputs(&a.dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let mode = a.mode.clone().unwrap_or_else(|| {
        let fleet = paths.iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("fleet-")));
        if fleet { "fleet" } else { "split" }.to_string()
    });
    let out = a.out.clone().unwrap_or_else(|| a.dir.join("merged"));
    let code = if mode == "fleet" { fleet(&a, &paths, &out, deviation) } else { split(&a, &paths, &out) };
    code.unwrap_or_else(|e| {
        eprintln!("error: cannot merge: {e}");
        exit::INVALID_RUN
    })
}

/// Fleet mode: fleet.json and fleet.md; exit 0 passed, 1 failed, 4 invalid.
fn fleet(a: &MergeArgs, paths: &[PathBuf], out: &Path, deviation: f64) -> Result<u8, MergeError> {
    let doc = benchctl::merge::fleet(paths, a.expect, a.allow_missing, deviation)?;
    let md = benchctl::merge::fleet_markdown(&doc);
    let json = serde_json::to_vec_pretty(&doc).expect("a fleet document serialises: plain fields");
    for (name, bytes) in [("fleet.json", json), ("fleet.md", md.clone().into_bytes())] {
        let p = out.join(name);
        if let Err(e) = benchctl::files::write_atomic(&p, &bytes) {
            eprintln!("error: cannot write `{}`: {e}", p.display());
            return Ok(exit::RUNTIME_ERROR);
        }
    }
    if !a.quiet {
        print!("{md}");
        println!("\nwrote {} and {}", out.join("fleet.json").display(), out.join("fleet.md").display());
    }
    Ok(match doc.verdict {
        "passed" => exit::SUCCESS,
        "failed" => exit::FAILED,
        _ => exit::INVALID_RUN,
    })
}

/// Split mode: the shards merged, then evaluated and presented like a run.
fn split(a: &MergeArgs, paths: &[PathBuf], out: &Path) -> Result<u8, MergeError> {
    let mut doc = benchctl::merge::split(paths, a.expect, a.allow_missing)?;
    if let (Some(m), false) = (&doc.merge, a.quiet) {
        println!(
            "merged {} of {} shards (start skew {:.3}s, wall span {:.1}s)",
            m.merged, m.expected, m.start_skew_s, doc.duration_s
        );
        for s in &m.shards {
            println!(
                "  shard {:>4}  {:>8} requests  share {:>5.1}% (planned {:>5.1}%)  skew {:>7.3}s{}",
                s.index,
                s.requests,
                s.achieved_share * 100.0,
                s.planned_share * 100.0,
                s.start_skew_s,
                if s.fell_short { "  FELL SHORT" } else { "" }
            );
        }
    }
    let outputs = Outputs {
        json: Some(out.join("result.json")),
        junit: Some(out.join("junit.xml")),
        markdown: Some(out.join("summary.md")),
        html: Some(out.join("report.html")),
        templates: None,
    };
    if let Err(e) = claim_outputs(&outputs, &doc.scenario.name, true) {
        eprintln!("error: {e}");
        return Ok(exit::INVALID_INPUT);
    }
    Ok(present(&mut doc, &outputs, a.quiet, !a.quiet, a.color))
}
