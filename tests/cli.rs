//! The `benchctl` binary as users run it: exit codes, output formats, bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::benchctl;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit code 2 with a diagnostic carrying `code`, and never a panic.
fn assert_invalid(o: &Output, code: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stdout: {}\nstderr: {err}", stdout(o));
    assert!(err.contains(&format!("benchctl::{code}")), "missing {code} in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn every_shipped_scenario_and_module_checks_clean() {
    let mut files = vec![];
    for dir in ["scenarios", "stdlib"] {
        let mut stack = vec![common::root().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "kdl") {
                    files.push(p);
                }
            }
        }
    }
    let scenarios: Vec<String> = files
        .iter()
        .filter(|p| p.starts_with(common::root().join("scenarios")))
        .map(|p| p.display().to_string())
        .collect();
    assert!(!scenarios.is_empty());
    let mut args = vec!["check", "--deny-warnings"];
    args.extend(scenarios.iter().map(String::as_str));
    let o = benchctl(&args);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Modules are checked through a scenario that imports each one.
    for m in files.iter().filter(|p| p.starts_with(common::root().join("stdlib"))) {
        let text = std::fs::read_to_string(m).unwrap();
        let c = benchctl::check::check_source(
            &m.display().to_string(),
            Some(m),
            &format!("scenario \"module\" {{\n{text}\n}}\n"),
            &Default::default(),
        );
        let syntax_or_decode: Vec<_> = c
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && !matches!(d.code.as_str(), "unknown-workload" | "no-phases" | "unknown-phase"))
            .collect();
        assert!(syntax_or_decode.is_empty(), "{}:\n{}", m.display(), common::rendered(&c));
    }
}

#[test]
fn check_exit_codes() {
    let ok = benchctl(&["check", "tests/fixtures/imports/main.kdl"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("ok: tests/fixtures/imports/main.kdl"));
    let bad = benchctl(&["check", "tests/fixtures/imports/bad_module_main.kdl"]);
    assert_invalid(&bad, "invalid-duration");
    assert!(stdout(&bad).contains("invalid:"));
}

#[test]
fn check_json_format() {
    let o = benchctl(&["check", "--format", "json", "tests/fixtures/imports/bad_module_main.kdl"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("valid JSON");
    let d = &v.as_array().unwrap()[0];
    assert_eq!(d["file"], "tests/fixtures/imports/lib/bad.kdl");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], 27);
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "benchctl::invalid-duration");
    assert_eq!(d["span"]["length"], 11);
    assert!(d["help"].as_str().unwrap().contains("250ms"));
    assert!(d["message"].as_str().unwrap().contains("parsecs"));
}

#[test]
fn bad_inputs_get_diagnostics_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_invalid(&benchctl(&["check", &temp_file(d, "empty.kdl", b"")]), "empty-file");
    let mut binary = b"KDL\0\x01\x02".to_vec();
    binary.extend(std::iter::repeat_n(0xffu8, 100));
    assert_invalid(&benchctl(&["check", &temp_file(d, "binary.kdl", &binary)]), "binary-file");
    assert_invalid(&benchctl(&["check", &temp_file(d, "latin1.kdl", b"scenario \"caf\xe9\" {}\n")]), "invalid-utf8");
    let big = "// padding\n".repeat(10 * 1024 * 1024 / 11 + 1);
    assert_invalid(&benchctl(&["check", &temp_file(d, "big.kdl", big.as_bytes())]), "file-too-large");
    assert_invalid(&benchctl(&["check", &d.join("missing.kdl").display().to_string()]), "io-error");
    let deep = format!("scenario \"x\" {}{}", "a { ".repeat(5000), "}".repeat(5000));
    assert_invalid(&benchctl(&["check", &temp_file(d, "deep.kdl", deep.as_bytes())]), "too-complex");
    let missing_import = "scenario \"x\" {\n    use \"nowhere.kdl\"\n}\n";
    assert_invalid(&benchctl(&["check", &temp_file(d, "imp.kdl", missing_import.as_bytes())]), "import-not-found");
    assert_invalid(&benchctl(&["check", "tests/fixtures/imports/cycle_a.kdl"]), "import-cycle");
    let dup = common::wrap("    phase \"steady\" duration=\"1s\" { drive \"svc\" concurrency=1; }");
    assert_invalid(&benchctl(&["check", &temp_file(d, "dup.kdl", dup.as_bytes())]), "duplicate-name");
    assert_invalid(&benchctl(&["check", "tests/fixtures/imports/main.kdl", "--set", "nope=1"]), "unknown-parameter");
    assert_invalid(&benchctl(&["check", "tests/fixtures/imports/main.kdl", "--set", "steady"]), "invalid-set");
}

#[test]
fn set_overrides_are_typed_and_applied() {
    let o = benchctl(&["plan", "tests/fixtures/imports/main.kdl", "--set", "steady=30s", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["phases"][0]["min_duration"], "30s");
    assert_eq!(plan["params"][0]["value"], "30s");
    assert_invalid(&benchctl(&["plan", "tests/fixtures/imports/main.kdl", "--set", "steady=30"]), "invalid-set");
}

#[test]
fn plan_text_and_json() {
    let o = benchctl(&["plan", "scenarios/quick.kdl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "scenario quick",
        "timeline",
        "steady",
        "open loop 100/s poisson",
        "~1000",
        "expectations",
        "svc.ttft.p95 < 20ms",
        "after at least ~",
        "setup (estimated, before the first phase)",
        "rag   index build",
        "rag   ground truth",
        "0 s on a cache hit",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let o = benchctl(&["plan", "--format", "json", "scenarios/quick.kdl"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["schema_version"], 1);
    assert_eq!(plan["scenario"], "quick");
    let steps: Vec<&str> = plan["setup"].as_array().unwrap().iter().map(|s| s["what"].as_str().unwrap()).collect();
    assert_eq!(steps, ["model load", "warmup requests", "index build", "ground truth"]);
    assert!(plan["setup_s"].as_f64().unwrap() > 0.0 && plan["setup_complete"] == false, "{}", plan["setup_s"]);
    assert_eq!(plan["phases"][3]["name"], "steady");
    assert_eq!(plan["phases"][3]["drives"][0]["expected_requests"], 1000);
    assert_eq!(plan["phases"][3]["start"], "33s");
    assert_eq!(plan["expectations"][0]["origin"]["line"], 57);
    let invalid = benchctl(&["plan", "tests/fixtures/imports/cycle_a.kdl"]);
    assert_invalid(&invalid, "import-cycle");
}

#[test]
fn fmt_check_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "scenario   \"x\"{\n  // keep me\n  seed 1\n  workload \"w\" kind=\"synthetic\" {latency \"fixed\" value=\"1ms\";}\n}";
    let path = temp_file(dir.path(), "messy.kdl", messy.as_bytes());
    let o = benchctl(&["fmt", "--check", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("would reformat"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), messy, "--check must not write");
    let o = benchctl(&["fmt", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let formatted = std::fs::read_to_string(&path).unwrap();
    assert!(formatted.contains("    // keep me\n    seed 1\n"), "{formatted}");
    assert_eq!(benchctl(&["fmt", "--check", &path]).status.code(), Some(0));
    let bad = temp_file(dir.path(), "bad.kdl", b"scenario {");
    assert_eq!(benchctl(&["fmt", &bad]).status.code(), Some(2));
}

#[test]
fn shipped_files_are_formatted() {
    let mut args = vec!["fmt".to_string(), "--check".into()];
    for dir in ["scenarios", "stdlib/targets", "stdlib/models", "stdlib/phases", "stdlib/workloads"] {
        for e in std::fs::read_dir(common::root().join(dir)).unwrap() {
            args.push(e.unwrap().path().display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = benchctl(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn help_documents_exit_codes() {
    for args in [vec!["--help"], vec!["check", "--help"]] {
        let o = benchctl(&args);
        assert_eq!(o.status.code(), Some(0));
        let text = stdout(&o);
        for code in [
            "0  success",
            "1  expectations failed",
            "2  invalid input",
            "3  regression",
            "4  invalid run",
            "5  runtime error",
        ] {
            assert!(text.contains(code), "{args:?} help lacks {code:?}");
        }
    }
    assert_eq!(benchctl(&["check"]).status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn stdlib_search_order() {
    // Built in: found without any folder.
    let o = benchctl(&["plan", "--format", "json", "tests/fixtures/imports/stdlib_user.kdl"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["expectations"].as_array().unwrap().len(), 6);
    // --stdlib DIR comes first.
    let o = benchctl(&[
        "plan",
        "--format",
        "json",
        "--stdlib",
        "tests/fixtures/stdlib-override",
        "tests/fixtures/imports/stdlib_user.kdl",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["expectations"][0]["name"], "override");
    // BENCHCTL_STDLIB is searched too.
    let o = Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["plan", "--format", "json", "tests/fixtures/imports/stdlib_user.kdl"])
        .env("BENCHCTL_STDLIB", "tests/fixtures/stdlib-override")
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(plan["expectations"][0]["name"], "override");
}

#[test]
fn run_refuses_what_this_build_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.kdl");
    std::fs::write(
        &file,
        "scenario \"u\" {\n    device \"cuda:0\"\n    workload \"chat\" kind=\"inference\" {\n        model synthetic=\"gpt2\"\n    }\n    phase \"p\" duration=\"1s\" { drive \"chat\" concurrency=1; }\n}\n",
    )
    .unwrap();
    let o = benchctl(&["run", "--quiet", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("benchctl::setup-failed") && err.contains("build-cuda"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn init_list_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("my-bench.kdl");
    let path = file.display().to_string();
    assert_eq!(benchctl(&["init", &path]).status.code(), Some(0));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("scenario \"my-bench\"") && text.contains("//"), "a commented scenario named after the file");
    let o = benchctl(&["check", "--deny-warnings", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(benchctl(&["fmt", "--check", &path]).status.code(), Some(0));
    let o = benchctl(&["init", &path]);
    assert_eq!(o.status.code(), Some(2), "never overwrites without --force");
    assert!(stderr(&o).contains("--force"));
    assert_eq!(benchctl(&["init", "--force", &path]).status.code(), Some(0));
    let o = benchctl(&["list"]);
    let out = stdout(&o);
    assert!(out.contains("scenarios/quick.kdl") && out.contains("std/targets/rtx4090.kdl"), "{out}");
    assert!(out.contains("Smoke test"), "descriptions are shown: {out}");
    for shell in ["bash", "zsh", "fish"] {
        let o = benchctl(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("benchctl"), "{shell}");
    }
}

/// Relative paths in `report` resolve against `--out`, absolute ones stay, and the run prints
/// absolute paths; nothing lands in the folder the run was started from.
#[test]
fn report_paths_resolve_against_out() {
    let cwd = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let abs_md = elsewhere.path().join("summary.md");
    let scenario = cwd.path().join("paths.kdl");
    std::fs::write(
        &scenario,
        format!(
            "scenario \"paths\" {{\n    workload \"w\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"1ms\"\n    }}\n    phase \"p\" duration=\"1s\" {{\n        drive \"w\" concurrency=1 requests=20\n    }}\n    report {{\n        json \"r/result.json\"\n        junit \"ci/junit.xml\"\n        markdown \"{}\"\n    }}\n}}\n",
            abs_md.display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "paths.kdl", "--out", out.path().to_str().unwrap()])
        .current_dir(cwd.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}\n{}", stderr(&o));
    for rel in ["r/result.json", "r/report.html", "ci/junit.xml"] {
        assert!(out.path().join(rel).is_file(), "{rel} is under --out:\n{text}");
    }
    assert!(abs_md.is_file(), "an absolute path is used as written");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, ["paths.kdl"], "nothing is written where the run started");
    for line in
        text.lines().filter(|l| ["result: ", "report: ", "junit: ", "markdown: "].iter().any(|p| l.starts_with(p)))
    {
        let path = line.split_once(": ").unwrap().1;
        assert!(Path::new(path).is_absolute() && Path::new(path).is_file(), "{line}");
    }
    assert!(text.contains(&format!("junit: {}", out.path().join("ci/junit.xml").display())), "{text}");
}

/// Every `init --template` checks clean and runs, passing its own expectations: the synthetic
/// one as written, the others with their phases shortened to 3 s (`--set duration=3s`).
#[test]
fn init_templates_check_and_run() {
    for (template, duration) in [("synthetic", "10s"), ("inference", "3s"), ("retrieval", "3s")] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{template}.kdl"));
        let path = file.display().to_string();
        let o = benchctl(&["init", "--template", template, &path]);
        assert_eq!(o.status.code(), Some(0), "{template}: {}", stderr(&o));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&format!("scenario \"{template}\"")), "{template}: named after the file");
        let o = benchctl(&["check", "--deny-warnings", &path]);
        assert_eq!(o.status.code(), Some(0), "{template}: {}", stderr(&o));
        assert_eq!(benchctl(&["fmt", "--check", &path]).status.code(), Some(0), "{template} is formatted");
        let out = dir.path().join("out");
        let o = Command::new(env!("CARGO_BIN_EXE_benchctl"))
            .args(["run", &path, "--set", &format!("duration={duration}"), "--out", out.to_str().unwrap()])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("BENCHCTL_CACHE", dir.path().join("cache"))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{template}:\n{}\n{}", stdout(&o), stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
        assert_eq!(doc["overall_assessment"]["verdict"], "passed", "{template}");
    }
}

/// The shipped scenarios are built in: `run quick` works from an empty folder (a copy goes
/// to the cache, where diagnostics point); a local `scenarios/NAME.kdl` takes its place, and
/// `list` says so.
#[test]
fn built_in_scenarios_run_from_any_folder_and_a_local_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let in_dir = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_benchctl"))
            .args(args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("BENCHCTL_CACHE", &cache)
            .env_remove("BENCHCTL_STDLIB")
            .output()
            .unwrap()
    };
    // 1 s phases are too short for quick's bounds: the verdict may be "too few samples" (4).
    let o = in_dir(&["run", "quick", "--set", "duration=1s", "--set", "chat_duration=2s", "--out", "out"]);
    assert!(matches!(o.status.code(), Some(0 | 4)), "{}\n{}", stdout(&o), stderr(&o));
    let copy = cache.join("scenarios/quick.kdl");
    assert!(stderr(&o).contains(&format!("quick: the built-in scenario (a copy to read or edit: {})", copy.display())));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/result.json")).unwrap()).unwrap();
    assert_eq!(doc["scenario"]["name"], "quick", "{:#}", doc["scenario"]);
    assert_eq!(doc["status"], "completed");
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        std::fs::read_to_string(common::root().join("scenarios/quick.kdl")).unwrap()
    );
    // A local file of the same name wins, for check, plan and run alike; list says so.
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/quick.kdl"),
        "scenario \"local-quick\" {\n    description \"mine\"\n    workload \"w\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"1ms\"\n    }\n    phase \"p\" duration=\"1s\" {\n        drive \"w\" concurrency=1\n    }\n}\n",
    )
    .unwrap();
    let o = in_dir(&["check", "quick"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok: scenarios/quick.kdl"), "{}", stdout(&o));
    let o = in_dir(&["list"]);
    let line = stdout(&o).lines().find(|l| l.trim_start().starts_with("quick ")).map(str::to_string);
    assert!(line.as_deref().is_some_and(|l| l.contains("[scenarios/quick.kdl is used instead]")), "{}", stdout(&o));
    assert!(stdout(&o).contains("selftest"), "every shipped scenario is listed:\n{}", stdout(&o));
    // A name that is neither a file nor built in is reported as a missing file.
    let o = in_dir(&["check", "no-such-scenario"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Progress and the final table under an 80-column terminal (a real pty, through util-linux
/// `script`): every bar line and table line fits, a workload with nothing completed yet is
/// shown as such with its requests in flight, the bar says when the whole run ends, rates are
/// the phase's averages, and each time column has one unit, named in its header.
#[test]
fn progress_and_summary_fit_80_columns() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "util-linux `script` is needed for the pty test");
        eprintln!("skipped: no `script` to make a pty");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("pty.kdl");
    std::fs::write(
        &scenario,
        "scenario \"pty\" {\n    workload \"svc-with-a-long-name\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"2ms\"\n        tokens count=4 gap=\"1ms\"\n    }\n    workload \"slow\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"3s\"\n    }\n    phase \"both\" duration=\"4s\" {\n        drive \"svc-with-a-long-name\" rate=\"50/s\"\n        drive \"slow\" concurrency=2\n    }\n}\n",
    )
    .unwrap();
    let typescript = dir.path().join("typescript");
    let inner = format!(
        "stty cols 80 rows 30; {} run {} --out {}",
        env!("CARGO_BIN_EXE_benchctl"),
        scenario.display(),
        dir.path().join("out").display()
    );
    let o = Command::new("script").args(["-qfec", &inner]).arg(&typescript).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let raw = std::fs::read_to_string(&typescript).unwrap();
    // What the terminal shows: escape sequences removed, one entry per drawn line.
    let mut text = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                while let Some(&n) = chars.peek() {
                    chars.next();
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            text.push(c);
        }
    }
    let lines: Vec<&str> = text.split(['\r', '\n']).map(str::trim_end).filter(|l| !l.is_empty()).collect();
    let bar: Vec<&&str> = lines.iter().filter(|l| l.contains("in flight") || l.contains("run ends in")).collect();
    assert!(!bar.is_empty(), "no progress drawn:\n{text}");
    let table_start = lines.iter().position(|l| l.starts_with("  workload")).expect("the summary table");
    let table = &lines[table_start..table_start + 3];
    // indicatif draws a multi-line bar as lines padded to the terminal's width, which the
    // terminal wraps: each 80-column row must then start one line of the bar (a longer line
    // would push the next one off its row).
    for l in &bar {
        let chars: Vec<char> = l.chars().collect();
        let rows: Vec<String> = chars.chunks(80).map(|c| c.iter().collect::<String>()).collect();
        assert!(rows.len() <= 3, "more rows than the bar has lines: {rows:#?}");
        assert!(rows[0].starts_with("1/1 both"), "{rows:#?}");
        for (row, name) in rows.iter().skip(1).zip(["  svc-with-a-long-name ", "  slow "]) {
            assert!(row.starts_with(name), "a line of the bar is not on a row of its own: {rows:#?}");
        }
    }
    for l in table {
        assert!(l.chars().count() <= 80, "{} columns: {l:?}", l.chars().count());
    }
    assert!(bar.iter().any(|l| l.contains("slow") && l.contains("nothing completed yet, 2 in flight")), "{bar:#?}");
    assert!(bar.iter().any(|l| l.contains("run ends in ~")), "{bar:#?}");
    assert!(bar.iter().any(|l| l.contains("svc-with-a-long-name") && l.contains("req/s")), "{bar:#?}");
    assert!(table[0].contains("p95 (ms)"), "one unit per time column: {table:#?}");
    assert!(!table[1].contains("ms") && !table[2].contains("ms"), "units in the header only: {table:#?}");
}
