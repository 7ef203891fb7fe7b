//! The engine against known truth: arrival processes, lateness, ramps, stop conditions,
//! interrupts and the selftest scenario.

mod common;

use std::sync::Arc;
use std::time::Duration;

use benchctl::engine::drive::Stop;
use benchctl::engine::events::{Reporter, RunEvent};
use benchctl::engine::executor::{Engine, Options, RunOutcome};

struct Collect(Vec<RunEvent>);
impl Reporter for Collect {
    fn event(&mut self, e: &RunEvent) {
        self.0.push(e.clone());
    }
}

/// The tests here measure timing: run them one at a time so they do not compete for the
/// two cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_text(text: &str) -> (RunOutcome, Vec<RunEvent>) {
    let mut events = Collect(vec![]);
    let outcome = common::run_text(text, &mut events);
    (outcome, events.0)
}

fn scenario(workload: &str, phases: &str) -> String {
    format!("scenario \"t\" {{\n    seed 11\n    workload \"w\" kind=\"synthetic\" {{\n        {workload}\n    }}\n{phases}\n}}\n")
}

#[test]
fn poisson_arrivals_have_the_declared_rate() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"fixed\" value=\"0s\"",
        "    phase \"p\" duration=\"2s\" { drive \"w\" rate=\"1000/s\" arrivals=\"poisson\"; }",
    ));
    let n = o.phases[0].workloads[0].recorded.counters.requests as f64;
    // 2,000 expected; a Poisson count has sigma = sqrt(2000) = 45: allow 5 sigma.
    assert!((n - 2000.0).abs() < 5.0 * 2000f64.sqrt(), "{n} requests");
}

#[test]
fn constant_rate_keeps_send_lateness_bounded() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"fixed\" value=\"0s\"",
        "    phase \"p\" duration=\"2s\" { drive \"w\" rate=\"2000/s\" arrivals=\"constant\"; }",
    ));
    let r = &o.phases[0].workloads[0].recorded;
    assert!((r.counters.requests as i64 - 4000).abs() <= 2, "{} requests", r.counters.requests);
    let late = r.hists.get(benchctl::measure::record::Metric::SendLateness);
    // Typically a few microseconds; the bound is loose because CI machines are noisy.
    assert!(late.value_at_quantile(0.99) < 20_000_000, "p99 lateness {} ns", late.value_at_quantile(0.99));
}

#[test]
fn ramp_follows_its_line() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"fixed\" value=\"0s\"",
        "    phase \"p\" duration=\"4s\" { drive \"w\" ramp rate=\"100/s..500/s\" arrivals=\"constant\"; }",
    ));
    let r = &o.phases[0].workloads[0].recorded;
    // 0..4 s from 100/s to 500/s: the mean rate in window [t, t+1) is 100 + 100 (t + 0.5).
    for w in r.series.iter().filter(|w| w.start_s < 3.5) {
        let want = 100.0 + 100.0 * (w.start_s + 0.5);
        assert!(
            (w.throughput - want).abs() <= 0.05 * want + 2.0,
            "window at {}s: {} req/s, want {want}",
            w.start_s,
            w.throughput
        );
    }
    assert!((r.counters.requests as f64 - 1200.0).abs() < 10.0, "{}", r.counters.requests);
}

#[test]
fn closed_loop_latency_matches_the_distribution() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"uniform\" min=\"2ms\" max=\"4ms\"",
        "    phase \"p\" duration=\"2s\" { drive \"w\" concurrency=4; }",
    ));
    let h = o.phases[0].workloads[0].recorded.hists.get(benchctl::measure::record::Metric::Latency).clone();
    let median = h.value_at_quantile(0.5) as f64 / 1e6;
    // The drawn median is 3 ms; the service's waits are the engine's precise sleeps, so the
    // bar above is 3.6 ms plus how late those sleeps run on this machine now (a few µs when
    // it is quiet, milliseconds when another job takes a core), measured here.
    let late = sleep_lateness_ms();
    assert!(median >= 2.8 && median < 3.6 + late, "median {median} ms, sleeps {late:.3} ms late");
    assert!(h.min() >= 2_000_000, "no request faster than its drawn latency");
}

/// The median lateness of the engine's precise sleep (3 ms, 40 times, 4 at once as the
/// closed loop above), in ms.
fn sleep_lateness_ms() -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut late: Vec<f64> = rt.block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(async {
                    let mut v = vec![];
                    for _ in 0..10 {
                        let started = std::time::Instant::now();
                        benchctl::clock::sleep(Duration::from_millis(3)).await;
                        v.push(started.elapsed().as_secs_f64() * 1e3 - 3.0);
                    }
                    v
                })
            })
            .collect();
        let mut all = vec![];
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    late.sort_by(f64::total_cmp);
    late[late.len() / 2]
}

#[test]
fn stop_condition_and_request_cap() {
    let _serial = serial();
    let text = scenario(
        "latency \"fixed\" value=\"1ms\"",
        "    phase \"until\" duration=\"20s\" until=\"w.requests.count >= 300\" { drive \"w\" rate=\"500/s\"; }\n    phase \"capped\" { drive \"w\" concurrency=2 requests=50; }",
    );
    let (o, _) = run_text(&text);
    assert!(o.phases[0].stopped_by.starts_with("condition"), "{}", o.phases[0].stopped_by);
    assert!(o.phases[0].duration_s < 5.0);
    assert_eq!(o.phases[1].workloads[0].recorded.counters.requests, 50);
    assert_eq!(o.phases[1].stopped_by, "requests");
}

#[test]
fn errors_and_tokens_are_counted() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"fixed\" value=\"1ms\"\n        errors probability=\"20%\"\n        tokens count=4 gap=\"1ms\"",
        "    phase \"p\" duration=\"1s\" { drive \"w\" concurrency=4; }",
    ));
    let c = &o.phases[0].workloads[0].recorded.counters;
    let share = c.errors as f64 / c.requests as f64;
    assert!((0.12..0.28).contains(&share), "error share {share}");
    assert_eq!(c.output_tokens, (c.requests - c.errors) * 4);
    assert_eq!(c.errors_by_kind["injected"], c.errors);
}

#[test]
fn search_finds_the_capacity_of_a_cpu_bound_service() {
    let _serial = serial();
    // 2 ms of CPU per request on at most 2 runtime threads: capacity is about 1,000/s at most.
    let text = scenario(
        "latency \"fixed\" value=\"0s\"\n        cpu-work \"2ms\"",
        "    phase \"limit\" { search \"w\" rate=\"50/s..6400/s\" until=\"latency.p95 > 50ms\" settle=\"300ms\" step-duration=\"2s\" max-steps=7; }",
    );
    let (o, events) = run_text(&text);
    let s = o.phases[0].search.as_ref().unwrap();
    let max = s.max_sustainable_rate.expect("the lowest rate is sustainable");
    assert!((50.0..=1100.0).contains(&max), "max sustainable {max}");
    assert!(s.steps.iter().any(|l| !l.stable), "some level must fail: {:?}", s.steps);
    assert!(events.iter().any(|e| matches!(e, RunEvent::SearchStep { .. })));
    assert!(events.iter().any(|e| matches!(e, RunEvent::Capacity(_))));
}

#[test]
fn interrupt_writes_a_partial_result() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.kdl");
    std::fs::write(&path, scenario("latency \"fixed\" value=\"1ms\"", "    phase \"long\" duration=\"60s\" { drive \"w\" concurrency=2; }\n    phase \"never\" duration=\"60s\" { drive \"w\" concurrency=2; }")).unwrap();
    let out = dir.path().join("out");
    let mut child = common::Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
            .args(["run", "--quiet", "--out"])
            .arg(&out)
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let code = child.wait().unwrap().code();
    assert!(started.elapsed() < Duration::from_secs(15), "stopping took {:?}", started.elapsed());
    assert_eq!(code, Some(4), "interrupted runs exit with the invalid-run code");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["status"], "interrupted");
    assert_eq!(doc["phases"].as_array().unwrap().len(), 1, "the second phase never started");
    assert_eq!(doc["phases"][0]["stopped_by"], "interrupted");
    assert!(doc["benchmarks"]["w"]["requests"].as_u64().unwrap() > 100);
}

#[test]
fn selftest_scenario_runs_and_writes_a_complete_result() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--quiet", "scenarios/selftest.kdl", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["phases"].as_array().unwrap().len(), 13);
    assert!(doc["duration_s"].as_f64().unwrap() < 40.0);
    let fast = &doc["benchmarks"]["fast"];
    for m in ["latency", "ttft", "itl", "tpot", "e2e", "request_tok_s", "send_lateness"] {
        assert!(fast["metrics"][m]["count"].as_u64().unwrap() > 0, "no {m}");
        let h = benchctl::stats::decode(fast["histograms"][m]["data"].as_str().unwrap()).unwrap();
        assert_eq!(h.len(), fast["metrics"][m]["count"].as_u64().unwrap(), "{m} histogram round-trips");
    }
    assert!(doc["stress_test"]["max_sustainable_load"].as_f64().unwrap() > 0.0);
    assert!(doc["probes"]["system"]["series"]["cpu"]["summary"]["samples"].as_u64().unwrap() > 10);
    let squeeze = doc["phases"].as_array().unwrap().iter().find(|p| p["name"] == "squeeze").unwrap();
    assert_eq!(squeeze["pressure"]["memory_held_bytes"], 256u64 << 20);
    assert!(doc["scenario"]["sha256"].as_str().unwrap().len() == 64);
    schema_matches(&doc);
}

/// The published JSON Schema names exactly the fields the document has (at every level the
/// schema spells out), so docs/result.schema.json cannot drift from the code.
fn schema_matches(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::root().join("docs/result.schema.json")).unwrap())
            .unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let required = |path: &str| -> Vec<String> {
        let mut k: Vec<String> =
            schema.pointer(path).unwrap().as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(doc), required("/required"), "top level");
    let mut workload = required("/$defs/workload/required");
    workload.extend(required("/properties/benchmarks/additionalProperties/allOf/1/required"));
    workload.sort();
    assert_eq!(keys(&doc["benchmarks"]["fast"]), workload, "benchmarks workload");
    assert_eq!(keys(&doc["phases"][1]["workloads"]["fast"]), required("/$defs/workload/required"), "phase workload");
    assert_eq!(keys(&doc["overall_assessment"]), required("/properties/overall_assessment/required"), "assessment");
    assert_eq!(keys(&doc["evaluation"][0]), required("/$defs/outcome/required"), "outcome");
    let phase = &doc["phases"][1];
    assert_eq!(keys(phase), required("/$defs/phase/required"), "phase");
    let mut metric = keys(&doc["benchmarks"]["fast"]["metrics"]["latency"]);
    metric.retain(|k| k != "unit");
    let mut want = required("/$defs/metric/required");
    want.retain(|k| k != "unit");
    assert_eq!(metric, want, "metric");
    assert_eq!(keys(&phase["workloads"]["fast"]["series"][0]), required("/$defs/window/required"), "window");
    assert_eq!(keys(&doc["stress_test"]), required("/properties/stress_test/oneOf/1/required"), "stress test");
    let level = &doc["stress_test"]["levels"][0];
    assert_eq!(keys(level), required("/$defs/search_level/required"), "search level");
}

/// Requests the drain gives up on are dropped (so their work stops) rather than left running
/// into the next phase and past the end of the run.
#[test]
fn requests_left_after_the_drain_are_dropped() {
    use benchctl::workload::{BoxFuture, Call, RequestError, Workload};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Never answers; counts calls started and call futures dropped.
    #[derive(Default)]
    struct Stuck {
        started: AtomicU64,
        dropped: Arc<AtomicU64>,
    }
    struct OnDrop(Arc<AtomicU64>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl Workload for Stuck {
        fn call<'a>(&'a self, _: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let guard = OnDrop(self.dropped.clone());
            Box::pin(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
                Ok(())
            })
        }
        fn streams_tokens(&self) -> bool {
            false
        }
    }

    let _serial = serial();
    let text = scenario(
        "latency \"fixed\" value=\"1ms\"",
        "    phase \"a\" duration=\"1s\" { drive \"w\" rate=\"50/s\"; }\n    phase \"b\" duration=\"1s\" { drive \"w\" concurrency=3; }",
    );
    let c = common::check_text(&text, &[]);
    let valid = c.scenario.unwrap();
    let stuck = Arc::new(Stuck::default());
    let mut workloads = std::collections::BTreeMap::new();
    workloads.insert("w".to_string(), stuck.clone() as Arc<dyn Workload>);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let options = Options { drain: Duration::from_millis(200), ..Options::default() };
    let mut events = Collect(vec![]);
    let outcome = rt.block_on(
        Engine::new(
            &benchctl::plan::build(&valid, &c.sources),
            workloads,
            options,
            Arc::new(Stop::default()),
            &mut events,
        )
        .execute(),
    );
    let started = stuck.started.load(Ordering::SeqCst);
    assert!(started >= 40, "{started} calls started");
    assert_eq!(stuck.dropped.load(Ordering::SeqCst), started, "every abandoned call was dropped");
    let left: Vec<_> = outcome.warnings.iter().filter(|w| w.code == "drain_abandoned").collect();
    assert_eq!(left.len(), 2, "{:?}", outcome.warnings);
    assert!(left[1].message.contains("3 requests"), "{left:?}");
}

/// A phase's duration counts from when its pressure is in place: touching a memory ballast
/// takes time that must not come out of the drives' share.
#[test]
fn pressure_setup_does_not_shorten_the_phase() {
    let _serial = serial();
    let (o, _) = run_text(&scenario(
        "latency \"fixed\" value=\"1ms\"",
        "    phase \"p\" duration=\"1s\" {\n        pressure memory=\"2GiB\"\n        drive \"w\" concurrency=1\n    }",
    ));
    let r = &o.phases[0].workloads[0].recorded;
    assert!(o.phases[0].pressure.as_ref().is_some_and(|p| p.memory_held_bytes >= 2 << 30));
    // The same phase without pressure, now, is the reference: about 900 requests of 1 ms on a
    // quiet machine, fewer on a busy one. Had touching the 2 GiB come out of the phase's
    // second, the phase with pressure would fit far fewer.
    let (plain, _) = run_text(&scenario(
        "latency \"fixed\" value=\"1ms\"",
        "    phase \"p\" duration=\"1s\" {\n        drive \"w\" concurrency=1\n    }",
    ));
    let reference = plain.phases[0].workloads[0].recorded.counters.requests;
    assert!(
        r.counters.requests as f64 > 0.75 * reference as f64,
        "{} requests with pressure, {reference} without",
        r.counters.requests
    );
}
