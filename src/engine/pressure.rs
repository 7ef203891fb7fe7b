//! Resource pressure beside a workload: memory ballast allocated and touched, CPU burner
//! threads. A [`Pressure`] guard releases everything when dropped, so the end of a phase,
//! an error or an interrupt all release it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde::Serialize;

use crate::dsl::units::Amount;

/// Default safety cap: never hold memory beyond this share of physical memory in total.
pub const DEFAULT_CAP: f64 = 0.85;
const CHUNK: usize = 64 << 20;

/// What the pressure actually applied (it may be less than asked, because of the cap).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
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

/// Physical memory (total, used) in bytes.
pub fn memory() -> (u64, u64) {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    (sys.total_memory(), sys.used_memory())
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
    fn applies_and_releases() {
        let p = Pressure::apply(Some(Amount::Bytes(Bytes(100 << 20))), 1, DEFAULT_CAP);
        assert_eq!(p.report.memory_held_bytes, 100 << 20);
        assert_eq!(p.burners.len(), 1);
        drop(p);
        // A cap of 0 % refuses any ballast and says so.
        let p = Pressure::apply(Some(Amount::Bytes(Bytes(64 << 20))), 0, 0.0);
        assert_eq!(p.report.memory_held_bytes, 0);
        assert!(p.report.capped);
    }
}
