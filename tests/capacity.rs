//! The capacity search against closed forms: a service with c slots and a fixed service
//! time has a concurrency capacity of exactly c under a mean-latency SLO (Little's law), and
//! its Poisson-rate capacity under a p95 bound is the M/D/c queue's.

mod common;

use benchctl::engine::capacity::{SearchOutcome, Verdict};
use benchctl::engine::events::{Reporter, RunEvent};
use benchctl::engine::executor::RunOutcome;

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &RunEvent) {}
}

/// The searches measure timing: one at a time, so they do not compete for the cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_text(text: &str) -> RunOutcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::run_text(text, &mut Quiet)
}

/// A service of `slots` slots and a fixed `service` time, searched by `search`.
fn search(seed: u64, slots: u64, service: &str, search: &str) -> (SearchOutcome, RunOutcome) {
    let text = format!(
        "scenario \"cap\" {{\n    seed {seed}\n    workload \"svc\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"{service}\"\n        slots {slots}\n    }}\n    phase \"capacity\" {{ {search}; }}\n}}\n"
    );
    let o = run_text(&text);
    let s = o.phases[0].search.clone().expect("the phase searched");
    (s, o)
}

#[test]
fn the_concurrency_capacity_of_a_slotted_service_is_exact() {
    // 4 slots of 40 ms. Closed loop with n <= 4 workers: no request waits, mean 40 ms. With
    // n = 5, one request waits at any time: by Little's law the mean wait is 40 ms / 4, so
    // the mean latency is 50 ms, whatever the order of service.
    let started = std::time::Instant::now();
    let mut answers = vec![];
    for seed in [1, 2] {
        let (s, _) = search(
            seed,
            4,
            "40ms",
            "search \"svc\" over=\"concurrency\" concurrency=\"1..32\" slo=\"latency.mean < 45ms\" settle=\"500ms\" step-duration=\"5s\"",
        );
        eprintln!("{}", s.text());
        for x in &s.steps {
            eprintln!(
                "  {} {:?} after {:?} n={} margin {:?} took {:.1}s",
                x.load,
                x.verdict,
                x.settled_after_s,
                x.samples,
                x.margin(),
                x.duration_s
            );
        }
        assert_eq!(
            (s.capacity, s.low, s.high, s.exact),
            (Some(4.0), Some(4.0), Some(4.0), true),
            "{}\n{:#?}",
            s.text(),
            s.steps
        );
        assert_eq!(s.ended_by, "bracketed");
        assert_eq!(s.binding_slo.as_deref(), Some("svc.latency.mean < 45ms"));
        let at = |c: f64| s.steps.iter().find(|x| x.load == c).map(|x| x.verdict);
        assert_eq!((at(4.0), at(5.0)), (Some(Verdict::Holds), Some(Verdict::Missed)), "{:#?}", s.steps);
        answers.push(s.capacity);
    }
    assert_eq!(answers[0], answers[1], "repeated searches agree");
    eprintln!("two concurrency searches in {:.1}s", started.elapsed().as_secs_f64());
}

/// The p95 of the time in system of an M/D/c queue (first come, first served) at arrival
/// rate `lambda`: customer n starts at max(its arrival, the start of customer n - c plus the
/// service time), since with equal service times customers finish in the order they start.
/// Over `n` customers with a fixed seed, so the value is a smooth function of `lambda`.
fn mdc_p95(lambda: f64, c: usize, service: f64, n: usize) -> f64 {
    let mut rng = benchctl::random::Rng::new(7);
    let mut starts = vec![f64::NEG_INFINITY; c];
    let (mut t, mut sojourn) = (0.0, Vec::with_capacity(n));
    for i in 0..n {
        t += rng.exponential(1.0 / lambda);
        let start = t.max(starts[i % c] + service);
        starts[i % c] = start;
        sojourn.push(start - t + service);
    }
    // The first tenth is the queue filling from empty.
    let mut tail: Vec<f64> = sojourn.split_off(n / 10);
    tail.sort_by(f64::total_cmp);
    tail[(tail.len() as f64 * 0.95) as usize]
}

/// The highest rate at which the M/D/c p95 stays under `bound` (bisection: the p95 grows
/// with the rate).
fn mdc_capacity(c: usize, service: f64, bound: f64) -> f64 {
    let (mut lo, mut hi) = (0.01, c as f64 / service * 0.999);
    for _ in 0..30 {
        let mid = (lo + hi) / 2.0;
        if mdc_p95(mid, c, service, 200_000) < bound {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[test]
fn the_md_c_calculation_matches_known_values() {
    // CPU-heavy: not beside a search, whose timing it would disturb.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One server, Poisson arrivals at half the service rate: the M/D/1 mean wait is
    // rho * S / (2 (1 - rho)) = S / 2, so the mean time in system is 1.5 S. A p95 is not
    // closed-form; check the mean by the same recursion and the p95's order.
    let (lambda, s) = (25.0, 0.02);
    let mut rng = benchctl::random::Rng::new(3);
    let (mut t, mut free, mut sum, n) = (0.0, 0.0f64, 0.0, 400_000);
    for _ in 0..n {
        t += rng.exponential(1.0 / lambda);
        let start = t.max(free);
        free = start + s;
        sum += free - t;
    }
    let mean = sum / n as f64;
    assert!((mean / (1.5 * s) - 1.0).abs() < 0.02, "M/D/1 mean {mean}");
    let p95 = mdc_p95(lambda, 1, s, 400_000);
    assert!(p95 > 1.5 * s && p95 < 5.0 * s, "{p95}");
}

#[test]
fn the_rate_capacity_agrees_with_the_md_c_queue() {
    // 2 slots of 20 ms, Poisson arrivals, time in system p95 < 60 ms.
    let started = std::time::Instant::now();
    let (s, o) = search(
        3,
        2,
        "20ms",
        "search \"svc\" rate=\"20/s..95/s\" arrivals=\"poisson\" slo=\"latency.p95 < 60ms\" settle=\"1s\" step-duration=\"15s\" precision=\"8%\"",
    );
    // The service time the timer really gave (sleeps overshoot by up to a millisecond): the
    // 5th percentile of latency, which requests that found a free slot set.
    let rec = &o.phases[0].workloads[0].recorded;
    let service = rec.hists.named("latency").unwrap().0.value_at_quantile(0.05) as f64 / 1e9;
    assert!((0.0195..0.025).contains(&service), "service time {service}");
    let truth = {
        // CPU-heavy: not beside a search.
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        mdc_capacity(2, service, 0.060)
    };
    eprintln!(
        "{}; M/D/2 capacity {truth:.2}/s at service {:.2}ms; {:.1}s",
        s.text(),
        service * 1e3,
        started.elapsed().as_secs_f64()
    );
    for x in &s.steps {
        eprintln!(
            "  {:.2}/s {:?} after {:?} n={} margin {:?} p95 {:?}",
            x.load,
            x.verdict,
            x.settled_after_s,
            x.samples,
            x.margin(),
            x.slos[0].measured
        );
    }
    // The interval's ends are settled steps; an end no step settled is open.
    let (value, low, high) = (s.capacity.unwrap(), s.low.unwrap_or(0.0), s.high.unwrap_or(f64::INFINITY));
    assert!(low <= truth && truth <= high, "M/D/2 {truth:.2}/s outside {low:.2}..{high:.2}: {:#?}", s.steps);
    assert!((value / truth - 1.0).abs() < 0.15, "{value:.2}/s against M/D/2 {truth:.2}/s");
    assert!(s.duration_s < 240.0, "{}s", s.duration_s);
}

/// scripts/slot-server.py on a free port, stopped when dropped; `None` without python3.
struct SlotServer(std::process::Child, u16);

impl SlotServer {
    fn start(slots: u32) -> Option<SlotServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let script = common::root().join("scripts/slot-server.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--slots",
                &slots.to_string(),
                "--ttft",
                "40ms",
                "--tokens",
                "8",
                "--gap",
                "5ms",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "the slot server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(SlotServer(child, port))
    }
}

impl Drop for SlotServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_shipped_scenario_finds_a_served_capacity_exactly() {
    // 4 slots; a request holds one for 40 ms to its first token and 35 ms more. At 4
    // streams TTFT is 40 ms; at 5, a request waits for a slot (by Little's law 75 ms / 4 on
    // average, and at least a fifth of them the whole 75 ms while the slots turn in step),
    // so TTFT p95 < 50 ms holds at 4 and is missed at 5.
    let Some(server) = SlotServer::start(4) else {
        assert!(std::env::var("CI").is_err(), "python3 is needed for the slot server");
        eprintln!("skipped: no python3");
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run", "--quiet", "--out"])
        .arg(dir.path())
        .arg(common::root().join("scenarios/capacity.kdl"))
        .args(["--set", &format!("base_url=http://127.0.0.1:{}/v1", server.1), "--set", "model=slots"])
        .args(["--set", "ttft_p95=50ms", "--set", "concurrency=1..32"])
        .output()
        .unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).expect("a result")).unwrap();
    let c = &doc["capacity"];
    assert_eq!(out.status.code(), Some(0), "{}\n{c:#}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((c["capacity"].as_f64(), c["exact"].as_bool()), (Some(4.0), Some(true)), "{c:#}");
    assert_eq!(c["binding_slo"], "served.ttft.p95 < 50ms");
    assert!(c["duration_s"].as_f64().unwrap() < 240.0);
    // The answer is an expectation's value and the report says it.
    let outcome = doc["evaluation"].as_array().unwrap().iter().find(|o| o["name"] == "served.capacity >= 1");
    assert_eq!(outcome.map(|o| o["measured"].as_f64()), Some(Some(4.0)), "{:#}", doc["evaluation"]);
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Capacity of served") && html.contains("4 concurrent (exact)"));
}

#[test]
fn an_slo_on_the_servers_own_metrics_is_read_per_step() {
    // The same 4-slot server, judged on its own TTFT histogram (from arrival, the wait for
    // a slot included; 50 ms is one of its bucket edges) instead of the client's: exactly 4.
    let Some(server) = SlotServer::start(4) else {
        assert!(std::env::var("CI").is_err(), "python3 is needed for the slot server");
        eprintln!("skipped: no python3");
        return;
    };
    let text = format!(
        r#"scenario "server-slo" {{
    workload "served" kind="openai" {{
        endpoint "http://127.0.0.1:{}/v1" model="slots" api="chat" stream=#true
        output tokens=8
        metrics every="1s"
    }}
    phase "capacity" {{
        search "served" concurrency="1..16" settle="1s" step-duration="10s" slo="server.ttft.p95 < 50ms"
    }}
}}"#,
        server.1
    );
    let out = run_text(&text);
    let s = out.phases[0].search.as_ref().expect("a search");
    assert_eq!((s.capacity, s.exact), (Some(4.0), true), "{}", s.text());
    assert_eq!(s.binding_slo.as_deref(), Some("server.ttft.p95 < 50ms"), "{}", s.text());
    // Every step read the server's histogram: a measured value, and a verdict settled
    // before the step's end at the loads away from the crossing.
    for step in &s.steps {
        let r = &step.slos[0];
        assert!(r.measured.is_some_and(|x| x > 0.0) && r.seconds, "{step:?}");
    }
    let at = |c: f64| s.steps.iter().filter(move |st| st.load == c);
    assert!(at(4.0).any(|st| st.verdict == Verdict::Holds), "{}", s.text());
    assert!(at(5.0).any(|st| st.verdict == Verdict::Missed), "{}", s.text());
}

#[test]
fn the_plan_says_how_many_samples_a_step_needs_to_hold() {
    // A 15 s step has 8 looks, each at 1 - 1 % / 8: p95 < bound and error_rate < 5 % both
    // need ln(0.00125) / ln(0.95) = 130.3, so 131 samples with none beyond.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["plan", "--set", "ttft_p95=50ms"])
        .arg(common::root().join("scenarios/capacity.kdl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("`served.ttft.p95 < 50ms` needs 131 samples, none beyond it"), "{text}");
    assert!(text.contains("`served.error_rate < 5%` needs 131 samples, none beyond it"), "{text}");
}
