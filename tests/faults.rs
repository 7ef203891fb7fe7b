//! Hostile input and faults, one test per defect found by the fault campaign: deep nesting
//! and endless input refused before the parser, special files neither read nor replaced,
//! outputs checked before the run and saved elsewhere when writing fails at the end, a
//! locked output folder, `run-limit` on every phase kind, SIGHUP, shares over 100 %.
//! Each of these failed on the main branch before the fix (a crash, a hang, a clobbered
//! file, a lost result or a silently accepted value).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::benchctl;

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Exit 2, `needle` in the output, and no crash (a stack overflow is SIGABRT, no exit code).
fn refused(o: &Output, needle: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains(needle), "missing `{needle}` in:\n{t}");
    assert!(!t.contains("panicked") && !t.contains("overflow"), "{t}");
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

/// A synthetic scenario whose phase lasts `secs`, with an expectation that passes however
/// slow the machine is (a count bound, decided by the count: an error-rate bound needs a
/// few hundred requests of evidence, which a 1 s phase on a busy machine may not reach).
fn scenario(name: &str, secs: u32) -> String {
    format!(
        "scenario \"{name}\" {{\n    workload \"svc\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"1ms\"\n    }}\n    phase \"steady\" duration=\"{secs}s\" {{\n        drive \"svc\" concurrency=1\n    }}\n    expect \"svc.requests\" \">=\" 10\n}}\n"
    )
}

#[test]
fn nesting_that_would_exhaust_the_stack_is_refused_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        // An unterminated quote hides the braces from a string-aware count.
        ("quote.kdl", format!("scenario \"x\" {{\n a \"open{}", " b {".repeat(3000)), "too-complex"),
        ("comments.kdl", format!("scenario \"x\" {{}}\n{}", "/* ".repeat(4000)), "too-complex"),
        ("blocks.kdl", format!("scenario \"x\" {}{}", "a { ".repeat(2000), "}".repeat(2000)), "too-complex"),
        ("string.kdl", format!("scenario \"x\" description=\"{}\" {{}}\n", "y".repeat(2 << 20)), "too-complex"),
    ];
    for (name, body, code) in &cases {
        let f = write(d, name, body);
        for cmd in ["check", "plan", "run"] {
            let o = benchctl(&[cmd, &f]);
            refused(&o, &format!("benchctl::{code}"));
        }
        let o = benchctl(&["fmt", "--check", &f]);
        refused(&o, "it was left as it is");
        // A module that is too deep is refused where it is imported.
        let importer = write(d, &format!("uses-{name}"), &format!("use \"{name}\"\nscenario \"y\" {{}}\n"));
        refused(&benchctl(&["check", &importer]), &format!("benchctl::{code}"));
    }
}

#[test]
fn endless_streams_fifos_devices_and_folders_are_refused_as_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.kdl");
    mkfifo(&fifo);
    let started = Instant::now();
    for path in ["/dev/zero", fifo.to_str().unwrap(), dir.path().to_str().unwrap()] {
        refused(&benchctl(&["check", path]), "benchctl::not-a-file");
        refused(&benchctl(&["fmt", "--check", path]), "not a scenario file");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "a FIFO with no writer must not hang the command");
    // A `use` of a folder or a device says what it is, not that it is missing.
    std::fs::create_dir(dir.path().join("mod.kdl")).unwrap();
    let f = write(dir.path(), "main.kdl", "use \"mod.kdl\"\nuse \"/dev/zero\"\nscenario \"x\" {}\n");
    let o = benchctl(&["check", &f]);
    refused(&o, "is a folder, not a scenario file");
    refused(&o, "is a character device, not a scenario file");
    assert!(!text(&o).contains("cannot find module"), "{}", text(&o));
    // `init --force` writes a scenario file, never into a device, a FIFO or a folder.
    for path in ["/dev/zero", fifo.to_str().unwrap(), dir.path().to_str().unwrap()] {
        refused(&benchctl(&["init", "--force", path]), "not a scenario file");
    }
    // A result read from an endless stream is refused, not read into memory.
    refused(&benchctl(&["report", "/dev/zero", "--quiet"]), "not a regular file");
}

/// Runs a 1 s synthetic scenario into `out` and returns its result's path.
fn run_into(dir: &Path, out: &Path) -> std::path::PathBuf {
    let f = write(dir, "s.kdl", &scenario("faults", 1));
    let o = benchctl(&["run", "--quiet", "--out", out.to_str().unwrap(), &f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    out.join("result.json")
}

#[test]
fn outputs_go_through_links_into_devices_and_fifos_never_over_them() {
    let dir = tempfile::tempdir().unwrap();
    let result = run_into(dir.path(), &dir.path().join("out"));
    // A device stays a device (as root the old rename replaced /dev/null with a file).
    let o = benchctl(&["baseline", "save", result.to_str().unwrap(), "--to", "/dev/null"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file(), "/dev/null was replaced");
    // A FIFO gets the bytes through it and stays a FIFO.
    let fifo = dir.path().join("report.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = benchctl(&["report", result.to_str().unwrap(), "--quiet", "--markdown", fifo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(reader.join().unwrap().contains("## benchctl: faults"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // A symlink is written through; the link stays.
    let target = dir.path().join("real.xml");
    let link = dir.path().join("link.xml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = benchctl(&["report", result.to_str().unwrap(), "--quiet", "--junit", link.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().contains("<testsuite"));
    // A folder is refused, and nothing is left beside it.
    let folder = dir.path().join("folder.html");
    std::fs::create_dir(&folder).unwrap();
    let o = benchctl(&["report", result.to_str().unwrap(), "--quiet", "--html", folder.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("it is a folder"), "{}", text(&o));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unusable_output_folder_is_found_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "plain", "a regular file");
    let f = write(dir.path(), "s.kdl", &scenario("faults", 30));
    for out in [format!("{file}/sub"), "/proc/benchctl-out".to_string()] {
        let started = Instant::now();
        let o = benchctl(&["run", "--quiet", "--out", &out, &f]);
        refused(&o, "nothing was run");
        assert!(started.elapsed() < Duration::from_secs(10), "the 30 s phase must not run first");
    }
}

#[test]
fn measurements_survive_an_output_folder_that_fails_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let f = write(dir.path(), "s.kdl", &scenario("faults", 3));
    let child = Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--quiet", "--out", out.to_str().unwrap(), &f])
        .env("XDG_CACHE_HOME", &cache)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The folder passed the check; while the run goes on it is replaced by a regular file.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, "not a folder").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    let saved: Vec<_> =
        std::fs::read_dir(cache.join("benchctl/unsaved")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(saved.len(), 1, "{}", text(&o));
    assert!(text(&o).contains(&saved[0].display().to_string()), "the fallback is printed: {}", text(&o));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved[0]).unwrap()).unwrap();
    assert!(doc["benchmarks"]["svc"]["requests"].as_u64().unwrap() > 100);
    // It is a valid result the other commands accept.
    let o = benchctl(&["report", saved[0].to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn one_run_at_a_time_per_output_folder_and_no_other_scenario_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let f = write(dir.path(), "s.kdl", &scenario("faults", 3));
    let first = Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--quiet", "--out", out.to_str().unwrap(), &f])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let o = benchctl(&["run", "--quiet", "--out", out.to_str().unwrap(), &f]);
    refused(&o, "another benchctl run is writing into");
    let status = first.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(0));
    // Another scenario into the same folder is refused before it runs; the same one replaces.
    let other = write(dir.path(), "other.kdl", &scenario("other", 1));
    refused(
        &benchctl(&["run", "--quiet", "--out", out.to_str().unwrap(), &other]),
        "holds a result of scenario `faults`",
    );
    let o = benchctl(&[
        "run",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        &write(dir.path(), "s1.kdl", &scenario("faults", 1)),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn run_limit_ends_until_and_search_phases() {
    let dir = tempfile::tempdir().unwrap();
    let body = |phase: &str| {
        format!(
            "scenario \"limited\" {{\n    run-limit \"2s\"\n    workload \"svc\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"1ms\"\n    }}\n{phase}\n    phase \"after\" duration=\"1s\" {{\n        drive \"svc\" concurrency=1\n    }}\n}}\n"
        )
    };
    let phases = [
        "    phase \"never\" until=\"svc.error_rate > 50%\" {\n        drive \"svc\" concurrency=1\n    }",
        "    phase \"limit\" {\n        search \"svc\" rate=\"10/s..100000/s\" until=\"error_rate > 50%\" step-duration=\"1s\" max-steps=30\n    }",
    ];
    for (i, phase) in phases.iter().enumerate() {
        let f = write(dir.path(), &format!("l{i}.kdl"), &body(phase));
        let out = dir.path().join(format!("out{i}"));
        let started = Instant::now();
        let o = benchctl(&["run", "--quiet", "--out", out.to_str().unwrap(), &f]);
        assert!(started.elapsed() < Duration::from_secs(12), "took {:?}", started.elapsed());
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
        assert_eq!(doc["status"], "limited");
        assert_eq!(doc["phases"].as_array().unwrap().len(), 1, "the phase after never started");
        assert_eq!(doc["phases"][0]["stopped_by"], "run-limit");
    }
}

#[test]
fn sighup_writes_a_partial_result_like_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let f = write(dir.path(), "s.kdl", &scenario("faults", 60));
    let mut child = Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--quiet", "--out", out.to_str().unwrap(), &f])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(4));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["status"], "interrupted");
}

#[test]
fn shares_over_everything_are_refused() {
    for (prop, value) in [("memory", "150%"), ("cap", "101%"), ("gpu-memory", "200%")] {
        let extra = if prop == "cap" { " memory=\"10%\"" } else { "" };
        let text = format!(
            "scenario \"x\" {{\n    workload \"svc\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"1ms\"\n    }}\n    phase \"p\" duration=\"1s\" {{\n        drive \"svc\" concurrency=1\n        pressure {prop}=\"{value}\"{extra}\n    }}\n}}\n"
        );
        let c = common::check_text(&text, &[]);
        assert!(common::codes(&c).contains(&"out-of-range"), "{prop}: {}", common::rendered(&c));
        assert!(common::rendered(&c).contains("more than all of the memory"), "{}", common::rendered(&c));
    }
}
