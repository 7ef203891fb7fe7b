//! `cargo bench --bench dashboard`: what the live dashboard costs the measurement. The
//! engine bench's no-op closed loop (2 workers) runs in alternation without and with a live
//! dashboard that a client is reading (`BENCH_PAIRS` pairs of `BENCH_SECS`-second runs,
//! default 12 x 2 s), in one process so both see the same machine from moment to moment;
//! prints the median of the per-pair throughput ratios and the CPU time of the dashboard's
//! own threads.
//!
//! Target: the dashboard on and a client connected costs at most 2 % of the throughput.

use std::io::{Read, Write};
use std::sync::Arc;

use benchctl::dashboard::{self, live};
use benchctl::engine::drive::Stop;
use benchctl::engine::events::{Reporter, RunEvent, Tee};
use benchctl::engine::executor::{Engine, Options, RunOutcome};

struct Quiet;
impl Reporter for Quiet {
    fn event(&mut self, _: &RunEvent) {}
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// CPU ticks of this process's threads whose names start with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let f: Vec<&str> = stat.rsplit_once(')').map_or("", |x| x.1).split_whitespace().collect();
        total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    total
}

fn main() {
    let pairs = env("BENCH_PAIRS", 12);
    let secs = env("BENCH_SECS", 2);
    let text = format!(
        "scenario \"dash\" {{\n    workload \"noop\" kind=\"synthetic\" {{\n        latency \"fixed\" value=\"0s\"\n    }}\n    phase \"c2\" duration=\"{secs}s\" {{\n        drive \"noop\" concurrency=2\n    }}\n    expect \"noop.throughput\" \">\" \"1/s\"\n    expect \"noop.latency.p99\" \"<\" \"1ms\"\n}}\n"
    );
    let c = benchctl::check::check_source("dash.kdl", None, &text, &Default::default());
    let valid = c.scenario.expect("bench scenario is valid");
    let plan = benchctl::plan::build(&valid, &c.sources);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rate = |o: &RunOutcome| {
        let r = &o.phases[0].workloads[0].recorded;
        r.counters.requests as f64 / r.elapsed.as_secs_f64()
    };
    let (mut off, mut on, mut ratios) = (vec![], vec![], vec![]);
    let (mut dash_ticks, mut events) = (0, 0);
    for i in 0..pairs {
        let workloads = benchctl::registry::prepare_all(&valid, &c.sources, std::path::Path::new("."), &mut |_, _| {})
            .unwrap()
            .ready;
        let mut q = Quiet;
        let o =
            rt.block_on(Engine::new(&plan, workloads, Options::default(), Arc::new(Stop::default()), &mut q).execute());
        let a = rate(&o);

        let workloads = benchctl::registry::prepare_all(&valid, &c.sources, std::path::Path::new("."), &mut |_, _| {})
            .unwrap()
            .ready;
        let listening = dashboard::listen(&dashboard::parse_bind(Some("127.0.0.1:0")).unwrap()).unwrap();
        let addr = listening.addr;
        let spec = live::LiveSpec {
            name: "dash".into(),
            description: None,
            config: benchctl::result::ConfigDoc::of(&plan),
            kinds: valid.scenario.workloads.iter().map(|w| (w.name.value.clone(), w.kind.value)).collect(),
            cooldown_s: 60.0,
        };
        let lv = live::Live::start(listening, spec).unwrap();
        // The client: a browser's event stream, read as it comes.
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            let (mut buf, mut got) = ([0u8; 8192], Vec::new());
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&got).matches("\ndata:").count() + usize::from(got.starts_with(b"data:"))
        });
        let options = Options { probe_tap: Some(lv.probe_tap()), ..Default::default() };
        let mut q = Quiet;
        let mut r = lv.reporter();
        let mut tee = Tee(&mut q, &mut r);
        let before = thread_ticks("benchctl-live") + thread_ticks("benchctl-dashbo");
        let o = rt.block_on(Engine::new(&plan, workloads, options, Arc::new(Stop::default()), &mut tee).execute());
        dash_ticks += thread_ticks("benchctl-live") + thread_ticks("benchctl-dashbo") - before;
        drop(r);
        let record = lv.finish();
        events += client.join().unwrap();
        assert_eq!(record.events_dropped, 0);
        let b = rate(&o);
        println!("pair {:>2}: off {:>10.0} req/s  on {:>10.0} req/s  on/off {:.4}", i + 1, a, b, b / a);
        off.push(a);
        on.push(b);
        ratios.push(b / a);
    }
    let median = benchctl::dashboard::history::median;
    let ratios_in_order = ratios.clone();
    let (mo, mn, mr) = (median(&mut off), median(&mut on), median(&mut ratios));
    println!(
        "median off {mo:.0} req/s, on {mn:.0} req/s; median per-pair on/off {mr:.4} ({:+.2} %), pairs {:.4}..{:.4}",
        (mr - 1.0) * 100.0,
        ratios_in_order.iter().copied().fold(f64::INFINITY, f64::min),
        ratios_in_order.iter().copied().fold(0.0, f64::max)
    );
    let run_ticks = (pairs * secs * 100) as f64; // 100 ticks per second per thread
    println!(
        "dashboard threads: {dash_ticks} CPU ticks over {pairs} runs of {secs} s ({:.3} % of one core); {events} events read by the client",
        dash_ticks as f64 / run_ticks * 100.0
    );
}
