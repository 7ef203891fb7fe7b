//! Evaluation against constructed results with known truth: every aggregation and
//! comparison, windowed expectations, validity, JUnit structure, and the CLI verdicts.

mod common;

use std::time::{Duration, Instant, SystemTime};

use benchctl::engine::executor::{PhaseOutcome, RunOutcome, WorkloadOutcome};
use benchctl::evaluate::{self, Status};
use benchctl::measure::record::{Recorder, Sample};
use serde_json::Value;

/// A result whose one phase `steady` recorded `w`: latencies 1..=1000 ms (window i/100),
/// every 10th request failed, 4 tokens per successful request.
fn constructed(expectations: &str) -> benchctl::result::ResultDoc {
    let text = common::wrap(&format!("    workload \"w\" kind=\"synthetic\" {{ latency \"fixed\" value=\"1ms\"; tokens count=4 gap=\"1ms\"; }}\n    phase \"main\" duration=\"10s\" {{ drive \"w\" concurrency=1; }}\n{expectations}"));
    let c = common::check_text(&text, &[]);
    assert!(!c.has_errors(), "{}", common::rendered(&c));
    let valid = c.scenario.unwrap();
    let t0 = Instant::now();
    let rec = Recorder::new(t0, Duration::from_secs(1), 2);
    for i in 1..=1000u64 {
        let intended = t0 + Duration::from_millis(i * 10 - 5);
        let finished = intended + Duration::from_millis(i);
        let error = (i % 10 == 0).then_some("injected");
        let gap = Duration::from_micros(100);
        let outputs: Vec<Instant> =
            if error.is_none() { (0..4).map(|k| finished - gap * (3 - k)).collect() } else { vec![] };
        rec.record(
            i as usize,
            &Sample {
                intended,
                started: intended,
                finished,
                outputs: &outputs,
                output_tokens: None,
                input_tokens: 0,
                prefill: None,
                measured: &[],
                error,
                open_loop: false,
            },
        );
    }
    let recorded = rec.finish(t0 + Duration::from_secs(10));
    let phase = |name: &str, recorded| PhaseOutcome {
        name: name.into(),
        role: benchctl::dsl::model::PhaseRole::Measure,
        repetition: 1,
        started_s: 1.0,
        duration_s: 10.0,
        stopped_by: "duration".into(),
        workloads: vec![WorkloadOutcome {
            name: "w".into(),
            kind: benchctl::dsl::model::WorkloadKind::Synthetic,
            recorded,
        }],
        search: None,
        pressure: None,
    };
    let outcome = RunOutcome {
        started: SystemTime::now(),
        duration: Duration::from_secs(11),
        interrupted: false,
        limited: false,
        aborted_by: None,
        phases: vec![phase("main", recorded)],
        probes: vec![],
        servers: vec![],
        host: Default::default(),
        warnings: vec![],
        workload_facts: Default::default(),
    };
    let plan = benchctl::plan::build(&valid, &c.sources);
    let doc = benchctl::result::build(&outcome, &valid, &plan, &c.sources, benchctl::probe::system_info());
    // Through the written JSON and back, as `report` reads a saved result.
    let text = serde_json::to_string(&doc).unwrap();
    benchctl::result::read_str(&text, std::path::Path::new("constructed.json")).expect("the written result reads back")
}

/// Validates a JUnit file against docs/junit.xsd with xmllint (Debian's libxml2-utils;
/// .ci/run installs it). Without xmllint this says so and passes, unless
/// BENCHCTL_REQUIRE_XMLLINT=1.
fn validate_junit(path: &std::path::Path) {
    let xsd = common::root().join("docs/junit.xsd");
    match std::process::Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(path).output() {
        Ok(o) => {
            assert!(o.status.success(), "{} does not validate:\n{}", path.display(), String::from_utf8_lossy(&o.stderr))
        }
        Err(_) => {
            assert!(
                std::env::var("BENCHCTL_REQUIRE_XMLLINT").is_err(),
                "BENCHCTL_REQUIRE_XMLLINT is set but xmllint is missing"
            );
            eprintln!("skipped: xmllint not installed (Debian package libxml2-utils)");
        }
    }
}

fn statuses(expectations: &str) -> Vec<(String, Status, String)> {
    let doc = constructed(expectations);
    let ev = evaluate::evaluate(&doc);
    ev.outcomes.into_iter().map(|o| (o.selector, o.status, o.measured_text)).collect()
}

#[test]
fn every_aggregation_against_known_values() {
    // Successful latencies: i ms for i in 1..=1000 except multiples of 10 (900 values). Each
    // bound is far enough from the true value for the evidence rule (99 %) to decide it.
    let cases = [
        ("w.latency.p50 < 560ms", Status::Pass),
        ("w.latency.p50 > 560ms", Status::Fail),
        ("w.latency.p50 < 501ms", Status::Insufficient),
        ("w.latency.p99 <= 999ms", Status::Pass),
        ("w.latency.p99 < 950ms", Status::Fail),
        ("w.latency.max >= 999ms", Status::Pass),
        ("w.latency.min < 2ms", Status::Pass),
        ("w.latency.mean < 530ms", Status::Pass),
        ("w.latency.mean > 470ms", Status::Pass),
        ("w.latency.mean < 470ms", Status::Fail),
        ("w.latency.mean < 505ms", Status::Insufficient),
        ("w.latency.count == 900", Status::Pass),
        ("w.requests.count == 1000", Status::Pass),
        ("w.requests.rate == 100", Status::Pass),
        ("w.errors.count == 100", Status::Pass),
        ("w.error_rate == 10%", Status::Pass),
        ("w.error_rate < 7%", Status::Fail),
        ("w.error_rate < 9%", Status::Insufficient),
        ("w.throughput >= 80", Status::Pass),
        ("w.throughput >= 100", Status::Fail),
        ("w.tok_s == 360", Status::Pass),
        ("w.output_tokens.count == 3600", Status::Pass),
        ("w.ttft.p50 < 560ms", Status::Pass),
        ("w.itl.max < 101us", Status::Pass),
        ("w.tpot.mean < 101us", Status::Pass),
        ("w.latency.spike_rate < 1%", Status::Pass),
        // Near-uniform 1..1000: sigma about 288.7 ms.
        ("w.latency.stddev > 280ms", Status::Pass),
        ("w.latency.stddev < 300ms", Status::Pass),
        ("w.latency.robust_spike_rate < 1%", Status::Pass),
        ("w.dropped.count == 0", Status::Pass),
        ("w.unsent.count == 0", Status::Pass),
        ("w.errors.rate == 10", Status::Pass),
        ("w.send_lateness.p50 < 1ms", Status::Fail),
    ];
    let text: String = cases.iter().map(|(e, _)| format!("    expect \"{e}\"\n")).collect();
    let got = statuses(&text);
    for ((want_text, want), (sel, status, measured)) in cases.iter().zip(&got) {
        assert_eq!(status, want, "{want_text}: measured {measured} ({sel})");
    }
    // Percentile arithmetic: p90 is the 810th of the 900 values (9 per decade), 899 ms; p95
    // the 855th, 949 ms (ceil(p * n) ranks).
    let doc = constructed("    expect \"w.latency.p90 < 2s\"\n    expect \"w.latency.p95 < 2s\"");
    let ev = evaluate::evaluate(&doc);
    assert!((ev.outcomes[0].measured.unwrap() - 0.899).abs() < 0.0005, "{:?}", ev.outcomes[0].measured);
    assert!((ev.outcomes[1].measured.unwrap() - 0.949).abs() < 0.0005, "{:?}", ev.outcomes[1].measured);
}

#[test]
fn within_ranges_and_missing_data_policies() {
    let got = statuses(
        "    expect \"w.error_rate\" within=\"5%..15%\"\n    expect \"w.error_rate\" within=\"13%..15%\"\n    expect \"w.send_lateness.p50\" \"<\" \"1ms\" on-missing=\"pass\"\n    expect \"w.send_lateness.p50\" \"<\" \"1ms\" on-missing=\"warn\"\n    expect \"w.error_rate\" \"<\" \"1%\" severity=\"warn\"",
    );
    let s: Vec<Status> = got.iter().map(|g| g.1).collect();
    assert_eq!(s, [Status::Pass, Status::Fail, Status::Pass, Status::Warn, Status::Warn]);
}

/// P(Binomial(n, p) >= k) summed term by term in log space: an oracle independent of the
/// incomplete beta function the evaluation uses.
fn exact_sf(k: u64, n: u64, p: f64) -> f64 {
    let ln_choose = |n: u64, k: u64| -> f64 { (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum() };
    (k..=n).map(|j| (ln_choose(n, j) + j as f64 * p.ln() + (n - j) as f64 * (1.0 - p).ln()).exp()).sum()
}

#[test]
fn binomial_tails_match_exact_sums() {
    use benchctl::evaluate::evidence::{binomial_cdf, binomial_sf};
    for (n, p) in [(6u64, 0.05), (90, 0.05), (459, 0.01), (1000, 0.5), (200, 0.3), (37, 0.9)] {
        for k in [0, 1, 2, n / 4, n / 2, n.saturating_sub(1), n] {
            let (ours, exact) = (binomial_sf(k, n, p), exact_sf(k, n, p));
            assert!((ours - exact).abs() <= 1e-9 + 1e-7 * exact, "P(Bin({n}, {p}) >= {k}): {ours} vs {exact}");
            let cdf_exact = 1.0 - exact_sf(k + 1, n, p);
            assert!((binomial_cdf(k, n, p) - cdf_exact).abs() < 1e-9, "P(Bin({n}, {p}) <= {k})");
        }
    }
}

/// The edges of the evidence rule for `pNN < bound` at 99 %: none above, all above, and
/// just enough (or one short of enough) samples, each checked against the exact tails.
#[test]
fn evidence_rule_edges() {
    use benchctl::dsl::model::Comparison::Lt;
    use benchctl::evaluate::evidence::{quantile_decision, Decision, QuantileSamples};
    let d = |n, beyond, p| quantile_decision(&QuantileSamples { n, beyond }, p, Lt, 0.99);
    // 0 above: passes from 90 samples for p95 (0.95^90 = 0.0099), 459 for p99.
    assert!(exact_sf(90, 90, 0.95) <= 0.01 && exact_sf(89, 89, 0.95) > 0.01);
    assert_eq!(d(90, 0, 0.95), Decision::Holds);
    assert_eq!(d(89, 0, 0.95), Decision::Undecided);
    assert_eq!(d(459, 0, 0.99), Decision::Holds);
    assert_eq!(d(458, 0, 0.99), Decision::Undecided);
    // All above: 6 of 6 above a p95 bound is a clear miss; 1 of 1 is not.
    assert!(exact_sf(6, 6, 0.05) <= 0.01);
    assert_eq!(d(6, 6, 0.95), Decision::Missed);
    assert_eq!(d(1, 1, 0.95), Decision::Undecided);
    // Just enough above to fail: the smallest k with P(Bin(n, 0.01) >= k) <= 1 % at n = 248.
    let k = (0..=248).find(|&k| exact_sf(k, 248, 0.01) <= 0.01).unwrap();
    assert_eq!(d(248, k, 0.99), Decision::Missed);
    assert_eq!(d(248, k - 1, 0.99), Decision::Undecided);
    // Just few enough above to pass with 2,000 samples.
    let k = (0..=2000).rev().find(|&k| 1.0 - exact_sf(k + 1, 2000, 0.05) <= 0.01).unwrap();
    assert_eq!(d(2000, k, 0.95), Decision::Holds);
    assert_eq!(d(2000, k + 1, 0.95), Decision::Undecided);
}

/// A bound the samples clearly miss on a large sample fails, with the counts in the outcome.
#[test]
fn a_clear_miss_records_its_evidence() {
    let doc = constructed("    expect \"w.latency.p95\" \"<\" \"1ms\" phase=\"main\"");
    let ev = evaluate::evaluate(&doc);
    let o = &ev.outcomes[0];
    assert_eq!(o.status, Status::Fail, "{}", o.message);
    assert!(o.measured_text.contains("of 900 samples above 1ms"), "{}", o.measured_text);
    let e = o.evidence.as_ref().unwrap();
    assert_eq!((e.n, e.decision), (900, benchctl::evaluate::evidence::Decision::Missed));
    assert!(e.low.unwrap() > 0.9, "the lower limit of p95 is above the bound: {e:?}");
    assert_eq!(ev.verdict, "failed");
}

/// Six samples, all above a p95 bound: failed (exit 1), not "insufficient data", and every
/// output says how many were above; a pass with so few would be insufficient (exit 4).
#[test]
fn six_of_six_above_a_p95_bound_fail_the_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let scenario = |bound: &str| {
        format!(
            "scenario \"six\" {{\n    workload \"w\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"300ms\"\n    }}\n    phase \"p\" duration=\"10s\" {{\n        drive \"w\" concurrency=1 requests=6\n    }}\n    expect \"w.latency.p95\" \"<\" \"{bound}\"\n    report {{\n        junit \"{}\"\n    }}\n}}\n",
            junit.display()
        )
    };
    let (code, doc, out) = cli_run(dir.path(), &scenario("200ms"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("6 of 6 samples above 200ms"), "{out}");
    let e = &doc["evaluation"][0]["evidence"];
    assert_eq!((e["n"].as_u64(), e["beyond"].as_u64(), e["decision"].as_str()), (Some(6), Some(6), Some("missed")));
    assert!(std::fs::read_to_string(&junit).unwrap().contains("6 of 6 samples above 200ms"));
    let (code, doc, out) = cli_run(dir.path(), &scenario("1s"));
    assert_eq!(code, Some(4), "0 of 6 above is not enough to pass a p95 bound: {out}");
    assert_eq!(doc["evaluation"][0]["status"], "insufficient");
    assert_eq!(doc["evaluation"][0]["required_samples"], 90);
}

#[test]
fn windowed_expectations_on_a_known_series() {
    // Request i finishes at 11i - 5 ms with latency i ms, so window k (by finish time) holds
    // latencies of about 91k..91k+91 ms: p95 about 91k + 86 ms, below 500 ms for k <= 4, in
    // 11 windows. Grouped by 2 s, the worst second counts: only the first 2 of 6 groups pass.
    let got = statuses(
        "    expect \"w.latency.p95\" \"<\" \"500ms\" window=\"1s\"\n    expect \"w.latency.p95\" \"<\" \"500ms\" window=\"1s\" windows=\"40%\"\n    expect \"w.latency.p95\" \"<\" \"500ms\" window=\"2s\" windows=\"40%\"\n    expect \"w.throughput\" \">=\" 70 window=\"1s\"",
    );
    assert_eq!(got[0].1, Status::Fail, "{}", got[0].2);
    assert!(got[0].2.starts_with("5 of 11 windows"), "{}", got[0].2);
    assert_eq!(got[1].1, Status::Pass, "{}", got[1].2);
    assert_eq!(got[2].1, Status::Fail, "{}", got[2].2);
    assert!(got[2].2.starts_with("2 of 6 windows"), "{}", got[2].2);
    assert_eq!(got[3].1, Status::Pass, "{}", got[3].2);
}

#[test]
fn percentile_bounds_need_enough_samples() {
    // 900 latency samples: enough for p99 (459) but not for p999 (4,603).
    let doc = constructed("    expect \"w.latency.p99\" \"<\" \"1s\"\n    expect \"w.latency.p999\" \"<\" \"1s\"");
    let ev = evaluate::evaluate(&doc);
    assert_eq!(ev.outcomes[0].status, Status::Pass);
    assert_eq!(ev.outcomes[1].status, Status::Insufficient);
    assert_eq!(ev.outcomes[1].required_samples, Some(4603));
    assert!(!ev.valid);
    assert_eq!(ev.verdict, "invalid");
    assert_eq!(evaluate::exit_code(&ev), 4);
}

#[test]
fn grade_and_inherited_fields() {
    let mut doc =
        constructed("    expect \"w.error_rate\" \"<\" \"20%\" weight=3\n    expect \"w.error_rate\" \"<\" \"1%\"");
    let ev = evaluate::evaluate(&doc);
    assert_eq!((ev.score, ev.performance_grade.as_str(), ev.verdict), (0.75, "ACCEPTABLE", "failed"));
    assert_eq!(evaluate::exit_code(&ev), 1);
    evaluate::apply(&mut doc, &ev);
    let doc: Value = serde_json::from_slice(&evaluate::Written::new(&doc, &ev).to_vec_pretty()).unwrap();
    assert_eq!(doc["overall_assessment"]["performance_grade"], "ACCEPTABLE");
    assert_eq!(doc["overall_assessment"]["targets_met"], 1);
    assert_eq!(doc["overall_assessment"]["total_targets"], 2);
    assert_eq!(doc["benchmarks"]["w"]["meets_targets"], false);
    assert!(doc["overall_assessment"]["recommendations"][0].as_str().unwrap().contains("errors_by_kind"));
}

/// The JUnit XML is well formed and has the structure JUnit consumers read.
#[test]
fn junit_structure() {
    let doc = constructed("    expect \"w.error_rate\" \"<\" \"20%\"\n    expect \"w.error_rate\" \"<\" \"1%\"\n    expect \"w.latency.p999\" \"<\" \"1s\"\n    expect \"w.latency.p50\" \"<\" \"1ms\" severity=\"warn\" name=\"a <name> & \\\"quotes\\\"\"");
    let ev = evaluate::evaluate(&doc);
    let xml = benchctl::report::junit(&doc, &ev);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junit.xml"), &xml).unwrap();
    validate_junit(&dir.path().join("junit.xml"));
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut stack: Vec<String> = vec![];
    let mut seen: Vec<(String, Vec<(String, String)>)> = vec![];
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                let attrs = e
                    .attributes()
                    .map(|a| a.unwrap())
                    .map(|a| {
                        (
                            String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                            a.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().into_owned(),
                        )
                    })
                    .collect();
                seen.push((name.clone(), attrs));
                stack.push(name);
            }
            quick_xml::events::Event::End(_) => {
                stack.pop();
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let attr = |i: usize, k: &str| seen[i].1.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(seen[0].0, "testsuites");
    assert_eq!(
        (attr(0, "tests"), attr(0, "failures"), attr(0, "errors")),
        (Some("4".into()), Some("1".into()), Some("1".into()))
    );
    assert_eq!(seen[1].0, "testsuite");
    let cases: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].0 == "testcase").collect();
    assert_eq!(cases.len(), 4);
    assert!(cases.iter().all(|&i| attr(i, "name").is_some() && attr(i, "classname").is_some()));
    assert_eq!(seen.iter().filter(|s| s.0 == "failure").count(), 1);
    assert_eq!(seen.iter().filter(|s| s.0 == "error").count(), 1);
    let failure = seen.iter().position(|s| s.0 == "failure").unwrap();
    assert!(attr(failure, "message").unwrap().contains("measured 10%"), "{:?}", seen[failure]);
    assert!(
        seen.iter().any(|s| s.1.iter().any(|(_, v)| v == "a <name> & \"quotes\"")),
        "names are escaped and round-trip"
    );
}

fn cli_run(dir: &std::path::Path, scenario: &str) -> (Option<i32>, Value, String) {
    let path = dir.join("s.kdl");
    std::fs::write(&path, scenario).unwrap();
    let out = dir.join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--out"])
        .arg(&out)
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let doc = serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    (o.status.code(), doc, String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout))
}

fn cli_scenario(expect: &str, junit: &std::path::Path) -> String {
    format!(
        "scenario \"cli\" {{\n    workload \"w\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"5ms\"\n    }}\n    phase \"p\" duration=\"1500ms\" {{\n        drive \"w\" concurrency=1\n    }}\n    {expect}\n    report {{\n        junit \"{}\"\n    }}\n}}\n",
        junit.display()
    )
}

#[test]
fn cli_pass_fail_and_invalid() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    // About 300 requests of 5 ms: enough for a p95 bound (90), far from a p999 one (4,603).
    let (code, doc, out) = cli_run(dir.path(), &cli_scenario("expect \"w.latency.p95\" \"<\" \"50ms\"", &junit));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(doc["overall_assessment"]["verdict"], "passed");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("failures=\"0\""));
    // A bound no 5 ms request can meet.
    let (code, doc, out) = cli_run(dir.path(), &cli_scenario("expect \"w.latency.p95\" \"<\" \"100us\"", &junit));
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(doc["overall_assessment"]["verdict"], "failed");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<failure"));
    validate_junit(&junit);
    assert!(out.contains("benchctl::expectation-failed"), "{out}");
    assert!(out.contains("s.kdl:8:13"), "the diagnostic points at the expectation: {out}");
    // p999 needs 4,603 samples.
    let (code, doc, out) = cli_run(dir.path(), &cli_scenario("expect \"w.latency.p999\" \"<\" \"50ms\"", &junit));
    assert_eq!(code, Some(4), "{out}");
    assert_eq!(doc["overall_assessment"]["verdict"], "invalid");
    assert!(out.contains("benchctl::insufficient-data"), "{out}");
    // `report` evaluates the saved result again, without running.
    let md = dir.path().join("summary.md");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .arg("report")
        .arg(dir.path().join("out/result.json"))
        .arg("--markdown")
        .arg(&md)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert!(std::fs::read_to_string(&md).unwrap().contains("INSUFFICIENT DATA"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"schema_version\": 99}").unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl")).arg("report").arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn abort_on_fail_stops_a_hopeless_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let scenario = "scenario \"abort\" {\n    workload \"w\" kind=\"synthetic\" {\n        latency \"fixed\" value=\"1ms\"\n        errors probability=\"50%\"\n    }\n    phase \"p\" duration=\"30s\" {\n        drive \"w\" concurrency=4\n    }\n    expect \"w.error_rate\" \"<\" \"5%\" abort-on-fail=#true\n}\n";
    let started = Instant::now();
    let (code, doc, out) = cli_run(dir.path(), scenario);
    assert!(started.elapsed() < Duration::from_secs(15), "the run went on for {:?}", started.elapsed());
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(doc["status"], "aborted");
    assert!(doc["phases"][0]["stopped_by"].as_str().unwrap().starts_with("aborted"));
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn bench(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_benchctl")).args(args).env("NO_COLOR", "1").output().unwrap()
}

#[test]
fn baseline_save_compare_and_regression() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenario = |latency: &str| {
        format!("scenario \"reg\" {{\n    workload \"w\" kind=\"synthetic\" {{\n        latency \"uniform\" min=\"{latency}\" max=\"{latency}\"\n    }}\n    phase \"p\" duration=\"2s\" {{\n        drive \"w\" concurrency=2\n    }}\n}}\n")
    };
    let run = |name: &str, latency: &str, extra: &[&str]| {
        let path = d.join(format!("{name}.kdl"));
        std::fs::write(&path, scenario(latency)).unwrap();
        let out = d.join(name);
        let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), "--out".as_ref(), out.as_os_str(), path.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        (bench(&args), out.join("result.json"))
    };
    let (o, base) = run("base", "2ms", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let saved = d.join("baseline/reg.json");
    let o = bench(&["baseline".as_ref(), "save".as_ref(), base.as_os_str(), "--to".as_ref(), saved.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    // A result against itself: nothing changed, so nothing is significant (a second run of the
    // same service is not used here: on a shared CI machine its tail can really move).
    let o = bench(&["compare".as_ref(), saved.as_os_str(), base.as_os_str()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains("REGRESSED") && !stdout.contains("improved") && stdout.contains("within noise"),
        "{stdout}"
    );
    // Another run of the same service: its median cannot have regressed by the 5 % tolerance.
    let (o, same) = run("same", "2ms", &["--baseline", saved.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", String::from_utf8_lossy(&o.stdout));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&same).unwrap()).unwrap();
    let p50 =
        doc["comparison"]["changes"].as_array().unwrap().iter().find(|c| c["metric"] == "latency.p50").unwrap().clone();
    assert_ne!(p50["verdict"], "regressed", "{p50}");
    // Twice as slow: latency regressed, throughput regressed; exit 3.
    let (o, slower) = run("slower", "4ms", &["--baseline", saved.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("REGRESSED"), "{stdout}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&slower).unwrap()).unwrap();
    assert_eq!(doc["comparison"]["regressed"], true);
    let p50 =
        doc["comparison"]["changes"].as_array().unwrap().iter().find(|c| c["metric"] == "latency.p50").unwrap().clone();
    assert_eq!(p50["verdict"], "regressed");
    assert!(p50["change"].as_f64().unwrap() > 0.8, "{p50}");
    // Every output carries the comparison: the JUnit file gets a failing baseline case.
    let o = bench(&[
        "report".as_ref(),
        slower.as_os_str(),
        "--junit".as_ref(),
        d.join("j.xml").as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(3), "report keeps the run's regression verdict");
    let junit = std::fs::read_to_string(d.join("j.xml")).unwrap();
    assert!(junit.contains("type=\"regression\"") && junit.contains("w.latency.p50"), "{junit}");
    validate_junit(&d.join("j.xml"));
    // `compare` on the files says the same, and the reverse direction is an improvement.
    assert_eq!(bench(&["compare".as_ref(), saved.as_os_str(), slower.as_os_str()]).status.code(), Some(3));
    let o = bench(&["compare".as_ref(), slower.as_os_str(), saved.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("improved"));
}
