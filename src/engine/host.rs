//! The load generator's self-check: while a run goes, how busy the host is, how much of it
//! other processes take, CPU steal, and benchctl's own CPU, read from /proc every 250 ms on
//! a thread of its own (always on: it costs a few microseconds a sample). The evaluation
//! turns these into host findings (see `evaluate::host`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Time between host samples.
pub const EVERY: Duration = Duration::from_millis(250);

/// One host sample, over the interval since the previous one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct HostSample {
    /// Seconds from the start of the run (end of the interval).
    pub t: f64,
    /// Share of all cores' time that was busy (not idle, not waiting for I/O), 0..1.
    pub busy: f64,
    /// Share of all cores' time used by other processes (busy minus benchctl's own), 0..1.
    pub others: f64,
    /// Share of all cores' time stolen by the hypervisor, 0..1.
    pub steal: f64,
    /// benchctl's own CPU, in cores.
    pub own_cores: f64,
}

/// What the host monitor saw during a run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct HostReport {
    /// Why there are no samples (not Linux, /proc unreadable), when there are none.
    pub unavailable: Option<String>,
    pub every_s: f64,
    pub cores: usize,
    pub samples: Vec<HostSample>,
}

/// CPU jiffies: (busy, total, steal) of the whole machine.
fn machine() -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let steal = v.get(7).copied().unwrap_or(0);
    Some((total - idle - steal, total, steal))
}

/// This process's CPU jiffies (user + system).
fn own() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3; utime and stime are fields 14 and 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The monitor thread; [`HostMonitor::finish`] stops it and returns its report.
pub struct HostMonitor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<HostReport>>,
}

impl HostMonitor {
    pub fn start(origin: Instant) -> HostMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle =
            std::thread::Builder::new().name("benchctl-host".into()).spawn(move || monitor(origin, &flag)).ok();
        HostMonitor { stop, handle }
    }

    pub fn finish(mut self) -> HostReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_else(|| HostReport {
            unavailable: Some("the host monitor thread could not start".into()),
            ..Default::default()
        })
    }
}

fn monitor(origin: Instant, stop: &AtomicBool) -> HostReport {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = HostReport { every_s: EVERY.as_secs_f64(), cores, ..Default::default() };
    let (Some(mut prev), Some(mut prev_own)) = (machine(), own()) else {
        report.unavailable = Some("host CPU accounting needs Linux's /proc/stat and /proc/self/stat".into());
        return report;
    };
    while !stop.load(Ordering::Relaxed) {
        // Sleep in slices so that the end of the run is not held up by a whole interval.
        let until = Instant::now() + EVERY;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(25).min(until.saturating_duration_since(Instant::now())));
        }
        let (Some(now), Some(now_own)) = (machine(), own()) else { break };
        let total = now.1.saturating_sub(prev.1);
        if total == 0 {
            continue;
        }
        let (busy, steal) = (now.0.saturating_sub(prev.0), now.2.saturating_sub(prev.2));
        let mine = now_own.saturating_sub(prev_own);
        let share = |x: u64| (x as f64 / total as f64).clamp(0.0, 1.0);
        report.samples.push(HostSample {
            t: origin.elapsed().as_secs_f64(),
            busy: share(busy),
            others: share(busy.saturating_sub(mine)),
            steal: share(steal),
            own_cores: mine as f64 / (total as f64 / cores as f64),
        });
        (prev, prev_own) = (now, now_own);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn sees_its_own_cpu() {
        let m = HostMonitor::start(Instant::now());
        // Spin one thread for about a second: its CPU counts as benchctl's own.
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(1100) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let r = m.finish();
        assert!(r.unavailable.is_none(), "{r:?}");
        assert!(r.samples.len() >= 3, "{r:?}");
        let own: f64 = r.samples.iter().map(|s| s.own_cores).sum::<f64>() / r.samples.len() as f64;
        assert!(own > 0.5, "a spinning thread is about one core of our own: {own}");
        assert!(r.samples.iter().all(|s| s.others <= s.busy + 1e-9 && s.busy <= 1.0));
    }
}
