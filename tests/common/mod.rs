//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use benchctl::dsl::{diag, Checked, LoadOptions};

/// The binary as users run it: no colour, no stdlib folder from the environment.
pub fn benchctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("BENCHCTL_STDLIB")
        .output()
        .expect("benchctl runs")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path relative to the package root (the tests' working directory), so that
/// rendered paths are the same on every machine.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from("tests/fixtures").join(rel)
}

/// Checks scenario text as if it were the file `scenario.kdl` in the tests folder.
pub fn check_text(text: &str, sets: &[&str]) -> Checked {
    let opts = LoadOptions { sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    benchctl::check::check_source("scenario.kdl", Some(&root().join("tests/scenario.kdl")), text, &opts)
}

pub fn check_path(path: &Path, opts: &LoadOptions) -> Checked {
    benchctl::check::check_file(path, opts)
}

/// The diagnostics as users see them: no colour, 80 columns, absolute paths made relative.
pub fn rendered(c: &Checked) -> String {
    let text = diag::render(&c.diagnostics, &c.sources, false, 80);
    let exe_dir = std::env::current_exe().unwrap().parent().unwrap().display().to_string();
    text.replace(&format!("{}/", root().display()), "").replace(&exe_dir, "<exe-dir>")
}

pub fn codes(c: &Checked) -> Vec<&'static str> {
    c.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

/// A minimal valid scenario body around `inner` (a synthetic workload `svc` driven for 1s).
pub fn wrap(inner: &str) -> String {
    format!(
        "scenario \"t\" {{\n    workload \"svc\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"2ms\"\n        tokens count=8 gap=\"1ms\"\n    }}\n    phase \"steady\" duration=\"1s\" {{\n        drive \"svc\" concurrency=1\n    }}\n{inner}\n}}\n"
    )
}

/// A file or folder that scripts/fetch-models.sh puts in the model folder, or `None` (the
/// test is skipped) unless BENCHCTL_REQUIRE_MODELS is set, in which case a missing model
/// fails the test. CI fetches the models and sets it.
pub fn fetched_model(name: &str) -> Option<PathBuf> {
    let p = benchctl::workload::setup::models_dir().join(name);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("BENCHCTL_REQUIRE_MODELS").is_none(),
        "{} is missing: run scripts/fetch-models.sh",
        p.display()
    );
    eprintln!("skipped: {} is missing (run scripts/fetch-models.sh)", p.display());
    None
}

/// A child process that is killed and reaped when the guard is dropped, so a test that
/// fails (panics) never leaves its server running after the suite.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts benchctl with `args` (stderr read on a thread to its end, so the process never
/// meets a closed pipe); waits for the line starting with `prefix` and returns the
/// child, the URL on that line, every stderr line so far and a receiver for the rest.
pub fn start(
    args: &[&str],
    envs: &[(&str, &str)],
    prefix: &str,
) -> (Running, String, String, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_benchctl"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = Running(cmd.spawn().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    loop {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no `{prefix}` line from benchctl {args:?}:\n{seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(url) = line.strip_prefix(prefix) {
            let url = url.split_whitespace().next().unwrap().to_string();
            return (child, url, seen, rx);
        }
    }
}

/// Checks `text` (which must check clean), prepares its workloads and runs its plan on a
/// two-thread runtime, giving the events to `reporter`.
pub fn run_text(
    text: &str,
    reporter: &mut dyn benchctl::engine::events::Reporter,
) -> benchctl::engine::executor::RunOutcome {
    let c = check_text(text, &[]);
    assert!(!c.has_errors(), "{}", rendered(&c));
    let valid = c.scenario.unwrap();
    let workloads = benchctl::registry::prepare_all(&valid, &c.sources, Path::new("."), &mut |_, _| {})
        .expect("synthetic workloads run")
        .ready;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    benchctl::engine::executor::Engine::run_to_end(&rt, &benchctl::plan::build(&valid, &c.sources), workloads, reporter)
}
