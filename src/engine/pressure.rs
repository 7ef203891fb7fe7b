//! Resource pressure beside a workload: memory ballast allocated and touched, CPU burner
//! threads. A [`Pressure`] guard releases everything when dropped, so the end of a phase,
//! an error or an interrupt all release it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::Serialize;

use crate::dsl::units::Amount;

const CHUNK: usize = 64 << 20;

/// What the pressure actually applied (it may be less than asked, because of the cap).
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, PartialEq)]
pub struct PressureReport {
    pub memory_requested_bytes: u64,
    pub memory_held_bytes: u64,
    pub cpu_threads: u32,
    /// Set when the cap stopped the ballast short of the request.
    pub capped: bool,
}

pub struct Pressure {
    ballast: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
    burners: Vec<JoinHandle<()>>,
    pub report: PressureReport,
}

/// The memory this process may really use, (total, used) in bytes: physical memory, or the
/// tightest cgroup limit above the process when that is smaller (a container limited to
/// 1.5 GiB on a 24 GiB host sizes its ballast from 1.5 GiB, so `memory="95%"` cannot get
/// it OOM-killed).
pub fn memory() -> (u64, u64) {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let physical = (sys.total_memory(), sys.used_memory());
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    match cgroup_memory(Path::new("/sys/fs/cgroup"), &own) {
        Some((limit, used)) if limit < physical.0 => (limit, used),
        _ => physical,
    }
}

/// (limit, used) of the tightest memory limit on the way from the process's cgroup up to
/// the root of the hierarchy, cgroup v2 (`memory.max`, `memory.current`) and v1
/// (`memory.limit_in_bytes`, `memory.usage_in_bytes`) both looked at, the smaller winning.
/// `used` leaves out inactive page cache, which the kernel reclaims before it kills.
/// `sys` is where cgroupfs is mounted; `own` the text of /proc/self/cgroup.
pub fn cgroup_memory(sys: &Path, own: &str) -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64)> = None;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (mount, files) = if controllers.is_empty() {
            (sys.to_path_buf(), ("memory.max", "memory.current", "inactive_file"))
        } else if controllers.split(',').any(|c| c == "memory") {
            (sys.join("memory"), ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
        } else {
            continue;
        };
        // Inside a cgroup namespace the mount is the process's own cgroup and the path is
        // relative to the host's: fall back to the mount when the path is not there.
        let rel = path.trim_start_matches('/');
        let mut dir = if mount.join(rel).is_dir() { mount.join(rel) } else { mount.clone() };
        loop {
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            let limit = read(files.0).and_then(|t| t.trim().parse::<u64>().ok());
            if let Some(limit) = limit.filter(|&l| l < 1 << 60) {
                let current = read(files.1).and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
                let inactive = read("memory.stat")
                    .and_then(|t| {
                        t.lines().find_map(|l| l.strip_prefix(files.2)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
                    })
                    .unwrap_or(0);
                let used = current.saturating_sub(inactive);
                if best.is_none_or(|(b, u)| limit.saturating_sub(used) < b.saturating_sub(u)) {
                    best = Some((limit, used));
                }
            }
            if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
                break;
            }
        }
    }
    best
}

impl Pressure {
    /// Allocates and touches the ballast (in 64 MiB chunks, checking the cap before each) and
    /// starts the burner threads.
    pub fn apply(memory_target: Option<Amount>, cpu_threads: u32, cap: f64) -> Pressure {
        let (total, used) = memory();
        let requested = match memory_target {
            Some(Amount::Bytes(b)) => b.0,
            Some(Amount::Percent(p)) => (p.0 * total as f64) as u64,
            None => 0,
        };
        let limit = (cap * total as f64) as u64;
        let mut held = 0u64;
        let mut ballast = vec![];
        let mut capped = false;
        while held < requested {
            let chunk = CHUNK.min((requested - held) as usize);
            if used + held + chunk as u64 > limit {
                capped = true;
                break;
            }
            let mut v = vec![0u8; chunk];
            // Touch every page so the memory is resident, not just reserved.
            for i in (0..chunk).step_by(4096) {
                v[i] = 1;
            }
            held += chunk as u64;
            ballast.push(v);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let burners = (0..cpu_threads)
            .filter_map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("benchctl-burn-{i}"))
                    .spawn(move || {
                        let mut x = i as u64 | 1;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..10_000 {
                                x = std::hint::black_box(x ^ (x << 13) ^ (x >> 7) ^ (x << 17));
                            }
                        }
                    })
                    .ok()
            })
            .collect();
        Pressure {
            ballast,
            stop,
            burners,
            report: PressureReport { memory_requested_bytes: requested, memory_held_bytes: held, cpu_threads, capped },
        }
    }
}

impl Drop for Pressure {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for b in self.burners.drain(..) {
            let _ = b.join();
        }
        self.ballast.clear();
        self.ballast.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::units::Bytes;

    #[test]
    fn cgroup_limits_win_over_the_host() {
        let sys = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let f = sys.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        // v2: a 1.5 GiB limit on the parent, none on the process's own cgroup.
        w("job/memory.max", "1610612736\n");
        w("job/memory.current", "600000000\n");
        w("job/memory.stat", "anon 400000000\ninactive_file 100000000\n");
        w("job/step/memory.max", "max\n");
        w("job/step/memory.current", "5\n");
        assert_eq!(cgroup_memory(sys.path(), "0::/job/step\n"), Some((1610612736, 500000000)));
        // v1 beside it with a tighter limit: the tighter one wins.
        w("memory/ci/memory.limit_in_bytes", "1073741824\n");
        w("memory/ci/memory.usage_in_bytes", "100\n");
        let both = "4:memory:/ci\n0::/job/step\n";
        assert_eq!(cgroup_memory(sys.path(), both), Some((1073741824, 100)));
        // v1 unlimited (the kernel writes a huge number): no limit.
        w("memory/free/memory.limit_in_bytes", "9223372036854771712\n");
        assert_eq!(cgroup_memory(sys.path(), "4:memory:/free\n"), None);
        // A namespaced path that is not under the mount: the mount's own files count.
        w("memory/memory.limit_in_bytes", "2000\n");
        assert_eq!(cgroup_memory(sys.path(), "4:memory:/host/side/id\n"), Some((2000, 0)));
        assert_eq!(cgroup_memory(sys.path(), "garbage\n"), None);
    }

    #[test]
    fn applies_and_releases() {
        let p = Pressure::apply(Some(Amount::Bytes(Bytes(100 << 20))), 1, crate::plan::run::DEFAULT_PRESSURE_CAP);
        assert_eq!(p.report.memory_held_bytes, 100 << 20);
        assert_eq!(p.burners.len(), 1);
        drop(p);
        // A cap of 0 % refuses any ballast and says so.
        let p = Pressure::apply(Some(Amount::Bytes(Bytes(64 << 20))), 0, 0.0);
        assert_eq!(p.report.memory_held_bytes, 0);
        assert!(p.report.capped);
    }
}
