//! The layering of docs/architecture.md, checked over the source tree: the engine knows no
//! workload kind, a backend knows no other backend and nothing above the workload boundary,
//! and a declared per-request measure (retrieval's recall) reaches the result, the terminal
//! summary, the HTML and the Markdown with no code for it outside its backend folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workload backends: one folder each.
const BACKENDS: [&str; 4] = ["inference", "retrieval", "kernel", "endpoint"];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string (a URL) is kept; one after code or at the start is not.
            Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's code names through `crate::` (`use crate::{a, b::c}`
/// included).
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group.
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// (file, module it names) for every file under `dir` naming one of `forbidden`.
fn violations(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    rust_files(dir)
        .into_iter()
        .flat_map(|f| {
            let mods = crate_modules(&code(&std::fs::read_to_string(&f).unwrap()));
            let rel = f.strip_prefix(src()).unwrap().display().to_string();
            forbidden
                .iter()
                .filter(|m| mods.contains(**m))
                .map(|m| format!("{rel} uses crate::{m}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_scanner_sees_grouped_and_plain_imports() {
    let m = crate_modules("use crate::{dsl::model::X, workload::{a, b}};\nlet x = crate::kernel::open(0);");
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["dsl", "kernel", "workload"]);
    assert!(crate_modules(&code("// see crate::kernel\nfn f() {}")).is_empty(), "comments are not code");
}

#[test]
fn the_engine_imports_no_workload_kind() {
    let mut forbidden: Vec<&str> = BACKENDS.to_vec();
    forbidden.extend(["registry", "evaluate", "report", "result", "compare"]);
    let v = violations(&src().join("engine"), &forbidden);
    assert!(v.is_empty(), "the engine knows workloads only through crate::workload:\n{}", v.join("\n"));
}

#[test]
fn backends_depend_downward_only() {
    for backend in BACKENDS {
        let mut forbidden: Vec<&str> = BACKENDS.iter().copied().filter(|b| *b != backend).collect();
        forbidden
            .extend(["engine", "registry", "evaluate", "report", "result", "compare", "plan", "probe", "progress"]);
        let v = violations(&src().join(backend), &forbidden);
        assert!(
            v.is_empty(),
            "`{backend}` may use the workload boundary, clock, random and dsl only:\n{}",
            v.join("\n")
        );
    }
}

#[test]
fn the_boundary_and_the_language_know_no_backend() {
    let mut forbidden: Vec<&str> = BACKENDS.to_vec();
    forbidden.extend(["engine", "registry", "evaluate", "report", "result"]);
    for dir in ["workload", "dsl"] {
        let v = violations(&src().join(dir), &forbidden);
        assert!(v.is_empty(), "{}", v.join("\n"));
    }
}

#[test]
fn only_the_registry_names_every_backend() {
    // Outside the backends' own folders, the registry is the one library file that prepares
    // them; the commands and the tests may use them directly.
    let mut naming = vec![];
    for f in rust_files(&src()) {
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        if BACKENDS.iter().any(|b| rel.starts_with(&format!("{b}/"))) || rel == "main.rs" || rel.starts_with("cli/") {
            continue;
        }
        let mods = crate_modules(&code(&std::fs::read_to_string(&f).unwrap()));
        if BACKENDS.iter().any(|b| mods.contains(*b)) {
            naming.push(rel);
        }
    }
    assert_eq!(naming, ["registry.rs"]);
}

/// (file, module) for every file of `module` (a folder or a single file) naming a module
/// outside `allowed`.
fn outside(module: &str, allowed: &[&str]) -> Vec<String> {
    let dir = src().join(module);
    let files = if dir.is_dir() { rust_files(&dir) } else { vec![src().join(format!("{module}.rs"))] };
    files
        .into_iter()
        .flat_map(|f| {
            let mods = crate_modules(&code(&std::fs::read_to_string(&f).unwrap()));
            let rel = f.strip_prefix(src()).unwrap().display().to_string();
            mods.into_iter()
                .filter(|m| m != module && !allowed.contains(&m.as_str()))
                .map(move |m| format!("{rel} uses crate::{m}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The stage order runs one way (docs/architecture.md): language -> plan -> engine ->
/// measurement data -> result -> evaluate -> compare/merge/report/dashboard. Each leaf
/// names what it may use; nothing reaches back up.
#[test]
fn the_stage_order_runs_one_way() {
    let rules: [(&str, &[&str]); 10] = [
        // The language stage: the scenario as written, nothing of what runs it.
        ("dsl", &["random", "keyword_enum"]),
        // Leaves: the measurement data, the statistics and evidence rules, a shard's part,
        // model shapes.
        ("measure", &["dsl", "stats"]),
        ("stats", &["dsl", "random"]),
        ("partition", &["dsl"]),
        ("model_config", &["dsl"]),
        // The plan: the scenario resolved, with estimates from the leaves.
        ("plan", &["dsl", "stats", "model_config"]),
        // The result document: the outcome recorded; it knows no reader of itself.
        ("result", &["dsl", "engine", "measure", "plan", "probe", "stats", "workload", "shard", "partition"]),
        // The evaluation reads the result, never the engine's live types.
        ("evaluate", &["dsl", "result", "stats", "measure", "plan", "probe", "exit"]),
        ("compare", &["result", "stats", "random", "evaluate"]),
        ("merge", &["dsl", "engine", "evaluate", "measure", "probe", "result", "report", "stats"]),
    ];
    let broken: Vec<String> = rules.iter().flat_map(|(m, allowed)| outside(m, allowed)).collect();
    assert!(broken.is_empty(), "the stage order is broken:\n{}", broken.join("\n"));
}

/// The engine runs from the plan alone: the validated scenario and its resolved conditions
/// stay in the language and plan stages (the plan carries them typed).
#[test]
fn the_engine_runs_from_the_plan() {
    let words = ["validate::", "ValidScenario", "ValidCondition", "ValidExpectation", "model::Scenario"];
    let mut found = vec![];
    for f in rust_files(&src().join("engine")) {
        let text = code(&std::fs::read_to_string(&f).unwrap());
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        for w in words {
            for (i, _) in text.match_indices(w) {
                let before = text[..i].chars().next_back().unwrap_or(' ');
                if !before.is_alphanumeric() && before != '_' {
                    found.push(format!("{rel} names `{w}`"));
                }
            }
        }
    }
    found.dedup();
    assert!(found.is_empty(), "the engine reads the language stage:\n{}", found.join("\n"));
}

/// The events the engine emits are a vocabulary of their own: reporters need nothing else.
#[test]
fn the_events_are_self_contained() {
    let f = src().join("engine/events.rs");
    let mods = crate_modules(&code(&std::fs::read_to_string(f).unwrap()));
    let extra: Vec<&String> = mods.iter().filter(|m| !["dsl", "measure", "engine"].contains(&m.as_str())).collect();
    assert!(extra.is_empty(), "engine/events.rs names {extra:?}");
}

/// The workloads divide their files with the shard's part, not the split-run machinery.
#[test]
fn workloads_know_the_partition_not_the_split() {
    let mut v = violations(&src().join("workload"), &["shard", "plan"]);
    for backend in BACKENDS {
        v.extend(violations(&src().join(backend), &["shard"]));
    }
    assert!(v.is_empty(), "{}", v.join("\n"));
}

/// A kind's language side is one file: outside `dsl/kinds/`, only the three exhaustive
/// matches that list the kinds (the decoder's dispatch, `WorkloadSpec::kind` and the
/// registry) name a `WorkloadSpec` variant; nothing else can forget a new kind.
#[test]
fn a_kind_is_in_two_places() {
    let mut naming = vec![];
    for f in rust_files(&src()) {
        let rel = f.strip_prefix(src()).unwrap().display().to_string();
        let allowed = rel.starts_with("dsl/kinds/") || rel == "dsl/decode/workload.rs" || rel == "registry.rs";
        if !allowed && code(&std::fs::read_to_string(&f).unwrap()).contains("WorkloadSpec::") {
            naming.push(rel);
        }
    }
    assert!(naming.is_empty(), "files that match on the kinds outside their own files: {naming:?}");
    let kinds = std::fs::read_to_string(src().join("dsl/kinds/mod.rs")).unwrap();
    let trait_body = &kinds[kinds.find("pub trait KindSpec").unwrap()..];
    let trait_body = &trait_body[..trait_body.find("\n}\n").unwrap()];
    assert!(!trait_body.contains(") {"), "KindSpec has no default methods: every kind answers every question");
}

/// A word in the code (not the comments) of the layers that record, evaluate and present.
fn mentions_outside_backends(word: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    for dir in ["engine", "workload", "evaluate", "report"] {
        files.extend(rust_files(&src().join(dir)));
    }
    for dir in ["result", "cli", "measure"] {
        files.extend(rust_files(&src().join(dir)));
    }
    for f in ["registry.rs", "progress.rs", "compare.rs"] {
        files.push(src().join(f));
    }
    let mut out: Vec<String> = files
        .into_iter()
        .filter(|f| code(&std::fs::read_to_string(f).unwrap()).contains(word))
        .map(|f| f.strip_prefix(root).unwrap().display().to_string())
        .collect();
    if std::fs::read_to_string(root.join("templates/report.html")).unwrap().contains(word) {
        out.push("templates/report.html".into());
    }
    out
}

#[test]
fn a_declared_measure_reaches_every_report_with_no_code_outside_its_backend() {
    assert_eq!(mentions_outside_backends("recall"), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("recall.kdl");
    std::fs::write(
        &scenario,
        r#"scenario "recall" {
    seed 3
    workload "rag" kind="retrieval" {
        index "flat" entries=2000 dim=16 metric="l2"
        data synthetic clusters=8
        query count=200 top-k=5
        cache enabled=#false
    }
    phase "measure" duration="2s" {
        drive "rag" concurrency=1
    }
    expect "rag.recall.mean > 0.5"
    report {
        markdown "report.md"
    }
}
"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let w = &doc["benchmarks"]["rag"];
    let recall = &w["metrics"]["recall"];
    assert_eq!(recall["unit"], "fraction");
    assert_eq!(w["histograms"]["recall"]["recorded_unit"], "1e-3");
    // An exact index finds every true neighbour.
    assert_eq!(recall["mean"].as_f64(), Some(1.0), "{recall}");
    assert!(recall["count"].as_u64().unwrap() > 0);
    assert!(stdout.contains("rag: recall mean 1.0000"), "the terminal summary shows the measure:\n{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("per-request measures") && html.contains(">recall</td>"), "the HTML shows it");
    // A relative report path resolves against `--out`.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| recall | 1.0000 |"), "the Markdown shows it:\n{md}");
}
