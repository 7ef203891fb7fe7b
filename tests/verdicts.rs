//! Verdicts a release pipeline can trust: accounting that loses nothing (open-loop arrivals,
//! drain windows, zero values), the sample-count lint, the load generator's self-check under
//! a real CPU hog, comparisons across differing host findings, and repeated runs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benchctl::engine::events::{Reporter, RunEvent};
use benchctl::engine::executor::Engine;
use benchctl::measure::record::{Metric, Recorder, Sample};
use serde_json::Value;

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &RunEvent) {}
}

/// Timing-sensitive: one test at a time in this binary.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs scenario text in-process and returns the evaluated result document.
fn run_doc(text: &str) -> Value {
    let c = common::check_text(text, &[]);
    assert!(!c.has_errors(), "{}", common::rendered(&c));
    let valid = c.scenario.unwrap();
    let workloads = benchctl::registry::prepare_all(&valid, &c.sources, std::path::Path::new("."), &mut |_, _| {})
        .expect("synthetic")
        .ready;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut quiet = Quiet;
    let outcome = Engine::run_to_end(&rt, &benchctl::plan::build(&valid, &c.sources), workloads, &mut quiet);
    rt.shutdown_background();
    let plan = benchctl::plan::build(&valid, &c.sources);
    let doc = benchctl::result::build(&outcome, &valid, &plan, &c.sources, benchctl::probe::system_info());
    let mut doc = doc;
    let ev = benchctl::evaluate::evaluate(&doc);
    benchctl::evaluate::apply(&mut doc, &ev);
    serde_json::from_slice(&benchctl::evaluate::Written::new(&doc, &ev).to_vec_pretty()).unwrap()
}

/// The written document read back as `compare` and `report` read one.
fn typed(v: &Value) -> benchctl::result::ResultDoc {
    benchctl::result::read_str(&v.to_string(), std::path::Path::new("result.json")).expect("a result document")
}

fn scenario(workload: &str, body: &str) -> String {
    format!("scenario \"t\" {{\n    seed 5\n    workload \"w\" kind=\"synthetic\" {{\n        {workload}\n    }}\n{body}\n}}\n")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Far above what the generator can send, every intended arrival is sent, dropped or
/// reported unsent, exactly, and the phase carries a `generator_behind` finding.
#[test]
fn open_loop_far_above_capacity_accounts_for_every_arrival() {
    let _s = serial();
    let doc = run_doc(&scenario(
        "latency \"fixed\" value=\"0s\"",
        "    phase \"flood\" duration=\"1s\" { drive \"w\" rate=\"2000000/s\" arrivals=\"constant\" max-in-flight=1000000; }",
    ));
    let w = &doc["phases"][0]["workloads"]["w"];
    let (intended, sent, dropped, unsent) = (n(&w["intended"]), n(&w["sent"]), n(&w["dropped"]), n(&w["unsent"]));
    assert_eq!(intended, sent + dropped + unsent, "{w:#}");
    // Constant arrivals at 2,000,000/s for 1 s: arrival k at k/rate for k >= 1, before the
    // end, so 1,999,999 intended: the steady case's rule (50/s for 2 s intends 99), whether or
    // not the generator keeps up.
    assert_eq!(intended, 1_999_999, "{w:#}");
    assert!(unsent > 0, "the generator cannot send 2M requests/s on this machine: {w:#}");
    let findings = doc["host_findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["code"] == "generator_behind" && f["workload"] == "w"), "{findings:#?}");
}

/// The steady case of the one rule: constant 50/s for 2 s intends arrivals at k/50 s for
/// k >= 1 before the end, 99 of them, all sent.
#[test]
fn open_loop_that_keeps_up_intends_one_arrival_per_gap_before_the_end() {
    let _s = serial();
    let doc = run_doc(&scenario(
        "latency \"fixed\" value=\"0s\"",
        "    phase \"p\" duration=\"2s\" { drive \"w\" rate=\"50/s\" arrivals=\"constant\"; }",
    ));
    let w = &doc["phases"][0]["workloads"]["w"];
    assert_eq!((n(&w["intended"]), n(&w["sent"]), n(&w["unsent"])), (99, 99, 0), "{w:#}");
}

/// The drain after a phase is a window of its real length, so a windowed throughput bound
/// judges every full second at its real rate (and leaves the short tail out); a failing lower
/// bound names the lowest window.
#[test]
fn windows_carry_their_real_length() {
    let _s = serial();
    let doc = run_doc(&scenario(
        "latency \"fixed\" value=\"20ms\"",
        "    phase \"p\" duration=\"3s\" { drive \"w\" rate=\"200/s\" arrivals=\"constant\"; }\n    expect \"w.throughput\" \">=\" \"150/s\" window=\"1s\"\n    expect \"w.throughput\" \">=\" \"1000/s\" window=\"1s\"",
    ));
    let series = doc["phases"][0]["workloads"]["w"]["series"].as_array().unwrap();
    let last = series.last().unwrap();
    let secs = last["seconds"].as_f64().unwrap();
    assert!(secs < 0.5, "the last window is the 20 ms drain, not a whole second: {last}");
    let total: f64 = series.iter().map(|w| w["seconds"].as_f64().unwrap()).sum();
    let elapsed = doc["phases"][0]["workloads"]["w"]["duration_s"].as_f64().unwrap();
    assert!((total - elapsed).abs() < 1e-3, "windows cover the record: {total} vs {elapsed}");
    let ev = doc["evaluation"].as_array().unwrap();
    assert_eq!(ev[0]["status"], "pass", "{}", ev[0]["measured_text"]);
    assert_eq!(ev[1]["status"], "fail");
    let text = ev[1]["measured_text"].as_str().unwrap();
    // Full seconds deliver about 200/s; the worst (lowest) of them is named, not the highest.
    let worst: f64 = text.split("worst ").nth(1).unwrap().trim_end_matches(')').trim_end_matches("/s").parse().unwrap();
    assert!(worst < 205.0 && worst > 150.0, "{text}");
}

/// A recall of 0 is recorded as 0 (it used to be clamped to the smallest unit, 0.001).
#[test]
fn a_zero_is_recorded_as_zero() {
    let t0 = Instant::now();
    let r = Recorder::new(t0, Duration::from_secs(1), 1).with_measures(&[&benchctl::dsl::metrics::RECALL]);
    for recall in [0.0, 0.0, 1.0] {
        r.record(
            0,
            &Sample {
                intended: t0,
                started: t0,
                finished: t0,
                outputs: &[],
                output_tokens: None,
                input_tokens: 0,
                prefill: None,
                measured: &[(0, recall)],
                error: None,
                open_loop: false,
            },
        );
    }
    let rec = r.finish(t0 + Duration::from_millis(10));
    let (h, _) = rec.hists.named("recall").unwrap();
    assert_eq!((h.min(), h.max(), h.len()), (0, 1000, 3));
    assert_eq!(rec.hists.get(Metric::Latency).min(), 0, "a 0 ns latency is 0 too");
    let v = benchctl::measure::statistic::value("recall", Some("min"), &rec.hists, &rec.counters, 1.0, 3.0);
    assert_eq!(v, Some(0.0));
}

/// Failed requests have their own latency metric and stay out of `latency`.
#[test]
fn failed_requests_have_their_own_latency() {
    let _s = serial();
    let doc = run_doc(&scenario(
        "latency \"fixed\" value=\"5ms\"\n        errors probability=\"50%\"",
        "    phase \"p\" duration=\"1s\" { drive \"w\" concurrency=2; }",
    ));
    let w = &doc["benchmarks"]["w"];
    let (ok, failed) = (n(&w["metrics"]["latency"]["count"]), n(&w["metrics"]["failed_latency"]["count"]));
    assert_eq!(ok + failed, n(&w["requests"]));
    assert_eq!(failed, n(&w["errors"]));
    assert!(failed > 0 && ok > 0);
}

/// `check` warns at the expectation when a closed loop cannot collect the samples a p99
/// bound needs (459 at 99 %); a longer phase silences it.
#[test]
fn sample_lint_on_a_closed_loop() {
    let text = |dur: &str| {
        scenario(
            "latency \"fixed\" value=\"50ms\"",
            &format!("    phase \"p\" duration=\"{dur}\" {{ drive \"w\" concurrency=2; }}\n    expect \"w.latency.p99\" \"<\" \"80ms\""),
        )
    };
    let c = common::check_text(&text("10s"), &[]);
    assert_eq!(common::codes(&c), ["too-few-samples"], "{}", common::rendered(&c));
    let shown = common::rendered(&c);
    assert!(shown.contains("needs at least 459 samples") && shown.contains("about 400"), "{shown}");
    let c = common::check_text(&text("20s"), &[]);
    assert!(common::codes(&c).is_empty(), "{}", common::rendered(&c));
}

/// Spins `threads` threads until the flag drops: another process's load, as seen by a
/// benchctl child process.
fn hog(threads: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    }
                }
                std::hint::black_box(x);
            })
        })
        .collect()
}

fn cli(dir: &std::path::Path, text: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    // A folder per run: a run does not replace another scenario's result.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("s{n}.kdl"));
    std::fs::write(&path, text).unwrap();
    let out = dir.join(format!("out{n}"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let doc = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    (o.status.code(), doc, String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

/// With both cores taken by another process, the run says the host was busy, next to the
/// verdict; `host-quiet "invalid"` turns the verdict invalid (exit 4).
#[test]
fn a_cpu_hog_is_a_host_finding() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let text = |policy: &str| {
        scenario(
            "latency \"fixed\" value=\"2ms\"",
            &format!("    host-quiet \"{policy}\"\n    phase \"p\" duration=\"3s\" {{ drive \"w\" rate=\"50/s\"; }}\n    expect \"w.error_rate\" \"==\" 0"),
        )
    };
    let stop = Arc::new(AtomicBool::new(false));
    let threads = hog(cores, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    let (warned, doc, out) = cli(dir.path(), &text("warn"), &[]);
    let (invalid, doc2, out2) = cli(dir.path(), &text("invalid"), &[]);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let host = &doc["phases"][0]["host"];
    assert!(host["others_mean"].as_f64().unwrap() >= 0.5, "{host}");
    let finding = doc["host_findings"].as_array().unwrap().iter().find(|f| f["code"] == "host_busy").cloned();
    assert!(finding.is_some(), "{:#}", doc["host_findings"]);
    assert!(out.contains("host_busy") || out.contains("busy with other work"), "shown beside the verdict: {out}");
    assert_eq!(warned, Some(0), "warn keeps the verdict: {out}");
    assert_eq!(invalid, Some(4), "{out2}");
    assert_eq!(doc2["overall_assessment"]["verdict"], "invalid");
    assert!(doc2["overall_assessment"]["invalid_reasons"].to_string().contains("host-quiet"), "{out2}");
}

/// A comparison across runs whose host findings differ is "not comparable", with the reason,
/// and calls nothing regressed, even a planted slowdown.
#[test]
fn differing_host_findings_are_not_comparable() {
    let _s = serial();
    let text = |median: &str| {
        scenario(
            &format!("latency \"lognormal\" median=\"{median}\" sigma=0.2"),
            "    phase \"p\" duration=\"2s\" { drive \"w\" rate=\"100/s\"; }",
        )
    };
    let mut base = run_doc(&text("10ms"));
    let mut slower = run_doc(&text("15ms"));
    // The host records are set, not measured: on a busy machine either run may have a real
    // finding of its own, and this test is about what differing findings do.
    let quiet = serde_json::json!({ "samples": 8, "busy_mean": 0.1, "others_mean": 0.0, "others_max": 0.05, "steal_mean": 0.0, "own_cores_mean": 0.1 });
    base["phases"][0]["host"] = quiet.clone();
    slower["phases"][0]["host"] = quiet;
    let c = benchctl::compare::compare(&typed(&base), &typed(&slower), "base", 0.05, &Default::default());
    assert!(c.regressed && c.not_comparable.is_none(), "a 50% slowdown on a quiet host is a regression");
    slower["phases"][0]["host"] = serde_json::json!({ "samples": 8, "busy_mean": 1.0, "others_mean": 0.9, "others_max": 1.0, "steal_mean": 0.0, "own_cores_mean": 0.1 });
    let c = benchctl::compare::compare(&typed(&base), &typed(&slower), "base", 0.05, &Default::default());
    assert!(!c.regressed, "{:#?}", c.changes);
    let why = c.not_comparable.unwrap();
    assert!(why.contains("host_busy in `p`"), "{why}");
    assert!(c.changes.iter().any(|m| m.verdict == benchctl::compare::Verdict::NotComparable));
}

/// `repeat 3` runs the measured phases three times, records each run and their spread, and a
/// comparison of two repeated results tests between-run variation (Welch).
#[test]
fn repeated_runs_are_recorded_and_compared_between_runs() {
    let _s = serial();
    let text = scenario(
        "latency \"lognormal\" median=\"5ms\" sigma=0.2",
        "    repeat 3\n    warmup duration=\"300ms\" { drive \"w\" rate=\"100/s\"; }\n    phase \"p\" duration=\"1s\" { drive \"w\" rate=\"200/s\"; }\n    expect \"w.latency.p50\" \"<\" \"50ms\" phase=\"p\"",
    );
    let a = run_doc(&text);
    let phases: Vec<(String, u64)> = a["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), n(&p["repetition"])))
        .collect();
    let want: Vec<(String, u64)> =
        [("warmup", 1), ("p", 1), ("p", 2), ("p", 3)].iter().map(|(n, r)| (n.to_string(), *r)).collect();
    assert_eq!(phases, want);
    assert_eq!(a["runs"].as_array().unwrap().len(), 3);
    let spread = &a["repeat_spread"]["w"]["latency.p50"];
    assert_eq!(spread["runs"], 3, "{spread}");
    // A phase-scoped expectation reads every repetition of its phase.
    let ev = &a["evaluation"][0];
    let total: u64 = a["phases"].as_array().unwrap()[1..]
        .iter()
        .map(|p| n(&p["workloads"]["w"]["metrics"]["latency"]["count"]))
        .sum();
    assert_eq!(n(&ev["samples"]), total);
    let b = run_doc(&text);
    let c = benchctl::compare::compare(&typed(&a), &typed(&b), "a", 0.05, &Default::default());
    assert_eq!((c.baseline_runs, c.runs), (3, 3));
    let p50 = c.changes.iter().find(|m| m.metric == "latency.p50").unwrap();
    assert!(p50.method.starts_with("between runs (Welch"), "{}", p50.method);
    assert_ne!(p50.verdict, benchctl::compare::Verdict::Regressed, "{p50:?}");
}

/// `--quiet` prints nothing on a clean run (no progress, summary, lints or paths); the exit
/// code and the files carry the outcome.
#[test]
fn quiet_prints_nothing() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    // The p99 bound draws a too-few-samples lint, which --quiet keeps to itself.
    let text = scenario(
        "latency \"fixed\" value=\"1ms\"",
        "    phase \"p\" duration=\"1s\" { drive \"w\" rate=\"50/s\"; }\n    expect \"w.latency.p50\" \"<\" \"1s\"\n    expect \"w.latency.p99\" \"<\" \"1s\" severity=\"warn\"",
    );
    let (code, doc, out) = cli(dir.path(), &text, &["--quiet"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, "", "--quiet printed something");
    assert_eq!(doc["overall_assessment"]["verdict"], "passed");
    let reports = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path().join("report.html").exists());
    assert_eq!(reports.count(), 1, "the report is written");
}

/// Where no service time is known before the run (a closed loop on a retrieval index), the
/// run estimates the samples again from the warmup's measured latency and warns when a
/// percentile bound cannot collect them; `check` had nothing to say.
#[test]
fn a_warmup_measures_what_the_plan_could_not() {
    let _s = serial();
    let text = "scenario \"t\" {\n    seed 3\n    workload \"rag\" kind=\"retrieval\" {\n        index \"flat\" entries=20000 dim=32\n        data synthetic clusters=20 spread=0.4\n        query top-k=10 count=100\n        cache enabled=#false\n    }\n    warmup duration=\"300ms\" { drive \"rag\" concurrency=1; }\n    phase \"p\" duration=\"200ms\" { drive \"rag\" concurrency=1; }\n    expect \"rag.latency.p999\" \"<\" \"1s\" severity=\"warn\"\n}\n";
    let c = common::check_text(text, &[]);
    assert!(common::codes(&c).is_empty(), "{}", common::rendered(&c));
    let doc = run_doc(text);
    let w: Vec<&Value> =
        doc["warnings"].as_array().unwrap().iter().filter(|w| w["code"] == "too_few_samples").collect();
    assert_eq!(w.len(), 1, "{:#}", doc["warnings"]);
    let msg = w[0]["message"].as_str().unwrap();
    assert!(msg.contains("needs at least 4603 samples") && msg.contains("the warmup's mean latency"), "{msg}");
}

/// A damaged result is refused when read (exit 2), and a comparison with another scenario's
/// result compares nothing: not comparable (exit 4), never a pass.
#[test]
fn damaged_results_and_foreign_baselines_are_refused() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let text = |name: &str| {
        format!("scenario \"{name}\" {{\n    workload \"w\" kind=\"synthetic\" {{ latency \"fixed\" value=\"1ms\"; }}\n    phase \"p\" duration=\"500ms\" {{ drive \"w\" rate=\"100/s\"; }}\n}}\n")
    };
    let (_, doc, _) = cli(dir.path(), &text("a"), &["--quiet"]);
    let good = dir.path().join("a.json");
    std::fs::write(&good, serde_json::to_vec(&doc).unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_benchctl");
    let cmd = |args: &[&std::ffi::OsStr]| std::process::Command::new(bin).args(args).output().unwrap();
    let mut broken = doc.clone();
    broken["benchmarks"]["w"]["histograms"]["latency"]["data"] = Value::String("bm90IGEgaGlzdG9ncmFt".into());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&broken).unwrap()).unwrap();
    let o = cmd(&["report".as_ref(), bad.as_os_str(), "--quiet".as_ref()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is damaged") && err.contains("benchmarks.w.histograms.latency"), "{err}");
    let o = cmd(&["compare".as_ref(), bad.as_os_str(), good.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "a damaged baseline is refused");
    let mut odd = doc.clone();
    odd["status"] = Value::String("nonsense".into());
    std::fs::write(&bad, serde_json::to_vec(&odd).unwrap()).unwrap();
    let o = cmd(&["report".as_ref(), bad.as_os_str()]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    // Another scenario's result as the baseline.
    let (_, other, _) = cli(dir.path(), &text("b"), &["--quiet"]);
    let foreign = dir.path().join("b.json");
    std::fs::write(&foreign, serde_json::to_vec(&other).unwrap()).unwrap();
    let o = cmd(&["compare".as_ref(), foreign.as_os_str(), good.as_os_str()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("not comparable") && out.contains("scenario `b`"), "{out}");
}
