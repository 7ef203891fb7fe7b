//! Probes: system and process (sysinfo), GPU (NVML, `nvml.rs`) and energy (NVML counters
//! and RAPL, `energy.rs`), sampled on their own thread at each probe's interval into bounded
//! time series (downsampled for long runs) and exact summaries. Apart from any workload:
//! the engine starts them beside the run.

pub mod energy;
pub mod nvml;
pub mod server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::dsl::model::ProbeKind;
use crate::stats::histogram;

/// Why a probe has no source on this machine (its metrics are then missing, with the reason).
#[derive(Debug, Clone, PartialEq)]
pub enum Unavailable {
    /// NVML could not be loaded or initialised (no NVIDIA driver).
    NoNvml(String),
    /// NVML works but reports no GPU, or cannot count them.
    NoGpu(String),
    /// No readable RAPL energy counter.
    NoRapl(&'static str),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoNvml(m) | Unavailable::NoGpu(m) => f.write_str(m),
            Unavailable::NoRapl(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Unavailable {}

/// Points kept per series; beyond twice this, neighbouring points are averaged in pairs.
const MAX_POINTS: usize = 1000;

/// Summary of a sampled series, exact over all samples (not only the kept points).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Default)]
pub struct SeriesSummary {
    pub samples: u64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// The largest sample (same as max; the name the targets use).
    pub peak: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub last: f64,
}

impl SeriesSummary {
    /// A statistic by its aggregation name (`mean`, `p95`, `peak`, `last`, ...).
    pub fn get(&self, agg: &str) -> Option<f64> {
        Some(match agg {
            "min" => self.min,
            "mean" => self.mean,
            "max" => self.max,
            "peak" => self.peak,
            "p50" => self.p50,
            "p95" => self.p95,
            "p99" => self.p99,
            "last" => self.last,
            "samples" => self.samples as f64,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SeriesOut {
    pub unit: std::borrow::Cow<'static, str>,
    pub summary: SeriesSummary,
    /// (seconds since the run started, value), downsampled for long runs.
    pub points: Vec<(f64, f64)>,
}

struct Series {
    unit: &'static str,
    /// Values are recorded in the histogram multiplied by this (fractions need resolution).
    scale: f64,
    hist: Histogram<u64>,
    sum: f64,
    last: f64,
    /// Exact extremes (the histogram keeps 3 significant digits).
    min: f64,
    max: f64,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn new(unit: &'static str, scale: f64) -> Series {
        Series {
            unit,
            scale,
            hist: histogram(),
            sum: 0.0,
            last: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            points: vec![],
        }
    }

    fn push(&mut self, t: f64, v: f64) {
        let _ = self.hist.record((v.max(0.0) * self.scale).round() as u64);
        self.sum += v;
        self.last = v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.points.push((t, v));
        if self.points.len() >= 2 * MAX_POINTS {
            self.points = self
                .points
                .chunks(2)
                .map(|p| {
                    (
                        p.iter().map(|x| x.0).sum::<f64>() / p.len() as f64,
                        p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64,
                    )
                })
                .collect();
        }
    }

    fn out(self) -> SeriesOut {
        let h = &self.hist;
        let q = |p: f64| h.value_at_quantile(p) as f64 / self.scale;
        let n = h.len();
        let summary = if n == 0 {
            SeriesSummary::default()
        } else {
            SeriesSummary {
                samples: n,
                min: self.min,
                mean: self.sum / n as f64,
                max: self.max,
                peak: self.max,
                p50: q(0.5),
                p95: q(0.95),
                p99: q(0.99),
                last: self.last,
            }
        };
        SeriesOut { unit: self.unit.into(), summary, points: self.points }
    }
}

/// The result of one probe.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ProbeResult {
    pub kind: ProbeKind,
    pub every_s: f64,
    /// Why the probe has no data on this machine, when it has none.
    pub unavailable: Option<String>,
    pub series: BTreeMap<String, SeriesOut>,
}

struct Sampler {
    kind: ProbeKind,
    every: Duration,
    next: Instant,
    series: BTreeMap<String, Series>,
    /// GPU and energy probes: their sources, opened once (or why they are missing).
    gpus: Option<crate::probe::nvml::Gpus>,
    rapl: Option<crate::probe::energy::Rapl>,
    unavailable: Option<String>,
    energy: EnergyState,
}

/// Energy accounting across samples.
#[derive(Default)]
struct EnergyState {
    /// Per GPU: the NVML counter's first reading (energy counts from there).
    first: Vec<Option<f64>>,
    /// Per GPU without a counter: joules integrated from power, and the last (t, W).
    integrated: Vec<(f64, Option<(f64, f64)>)>,
    last: Option<(f64, f64)>,
}

impl Sampler {
    fn new(kind: ProbeKind, every: Duration, next: Instant) -> Sampler {
        let mut s = Sampler {
            kind,
            every,
            next,
            series: BTreeMap::new(),
            gpus: None,
            rapl: None,
            unavailable: None,
            energy: EnergyState::default(),
        };
        match kind {
            ProbeKind::Gpu => match crate::probe::nvml::Gpus::open() {
                Ok(g) => s.gpus = Some(g),
                Err(why) => s.unavailable = Some(why.to_string()),
            },
            ProbeKind::Energy => {
                let gpus = crate::probe::nvml::Gpus::open();
                let rapl = crate::probe::energy::Rapl::open();
                if let (Err(g), Err(r)) = (&gpus, &rapl) {
                    s.unavailable = Some(format!("no energy source: {g}; {r}"));
                }
                s.gpus = gpus.ok();
                s.rapl = rapl.ok();
            }
            _ => {}
        }
        s
    }

    fn gpu_sample(&mut self, t: f64) {
        let Some(g) = &self.gpus else { return };
        let samples: Vec<_> = (0..g.count()).map(|i| g.sample(i)).collect();
        for (i, x) in samples.iter().enumerate() {
            // The first GPU's series carry plain names; others are prefixed `gpuN_`.
            let p = if i == 0 { String::new() } else { format!("gpu{i}_") };
            let mut put = |name: &str, unit: &'static str, scale: f64, v: Option<f64>| {
                if let Some(v) = v {
                    self.series(&format!("{p}{name}"), unit, scale).push(t, v);
                }
            };
            put("utilization", "fraction", 1e4, x.utilization);
            put("memory", "bytes", 1.0, x.memory_used);
            put("memory_share", "fraction", 1e4, x.memory_share);
            put("temperature", "°C", 10.0, x.temperature);
            put("power", "W", 100.0, x.power_w);
            put("sm_clock", "MHz", 1.0, x.sm_clock);
            put("mem_clock", "MHz", 1.0, x.mem_clock);
            put("throttled", "fraction", 1e4, x.throttled);
        }
    }

    fn energy_sample(&mut self, t: f64) {
        let mut gpu_j = 0.0;
        if let Some(g) = &self.gpus {
            let n = g.count() as usize;
            let samples: Vec<_> = (0..g.count()).map(|i| g.sample(i)).collect();
            let e = &mut self.energy;
            e.first.resize(n, None);
            e.integrated.resize(n, (0.0, None));
            for (i, x) in samples.iter().enumerate() {
                match x.energy_j {
                    // NVML's counter: exact, counted from the first reading.
                    Some(j) => gpu_j += j - *e.first[i].get_or_insert(j),
                    // No counter on this GPU: integrate power.
                    None => {
                        if let Some(w) = x.power_w {
                            let (acc, last) = &mut e.integrated[i];
                            if let Some(prev) = *last {
                                *acc += crate::probe::energy::integrate(&[prev, (t, w)]);
                            }
                            *last = Some((t, w));
                        }
                        gpu_j += e.integrated[i].0;
                    }
                }
            }
            self.series("gpu", "J", 1e3).push(t, gpu_j);
        }
        let cpu_j = self.rapl.as_mut().map(|r| r.sample());
        if let Some(c) = cpu_j {
            self.series("cpu", "J", 1e3).push(t, c);
        }
        if self.gpus.is_none() && cpu_j.is_none() {
            return;
        }
        let total = gpu_j + cpu_j.unwrap_or(0.0);
        if let Some((t0, j0)) = self.energy.last {
            if t > t0 {
                self.series("power", "W", 100.0).push(t, (total - j0) / (t - t0));
            }
        }
        self.energy.last = Some((t, total));
        self.series("total", "J", 1e3).push(t, total);
    }

    fn series(&mut self, name: &str, unit: &'static str, scale: f64) -> &mut Series {
        self.series.entry(name.to_string()).or_insert_with(|| Series::new(unit, scale))
    }

    fn sample(&mut self, sys: &mut System, pid: Pid, t: f64) {
        match self.kind {
            ProbeKind::System => {
                sys.refresh_cpu_usage();
                sys.refresh_memory();
                let cpu = sys.global_cpu_usage() as f64 / 100.0;
                let cores: Vec<f64> = sys.cpus().iter().map(|c| c.cpu_usage() as f64 / 100.0).collect();
                let (used, avail, total, swap) =
                    (sys.used_memory(), sys.available_memory(), sys.total_memory(), sys.used_swap());
                self.series("cpu", "fraction", 1e4).push(t, cpu);
                for (i, c) in cores.into_iter().enumerate() {
                    self.series(&format!("cpu_core{i}"), "fraction", 1e4).push(t, c);
                }
                self.series("memory", "bytes", 1.0).push(t, used as f64);
                self.series("memory_share", "fraction", 1e4).push(t, used as f64 / total.max(1) as f64);
                self.series("memory_available", "bytes", 1.0).push(t, avail as f64);
                self.series("swap", "bytes", 1.0).push(t, swap as f64);
            }
            ProbeKind::Process => {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_memory().with_cpu().with_tasks(),
                );
                if let Some(p) = sys.process(pid) {
                    let (rss, cpu, threads) =
                        (p.memory(), p.cpu_usage() as f64 / 100.0, p.tasks().map_or(0, |t| t.len()));
                    self.series("rss", "bytes", 1.0).push(t, rss as f64);
                    self.series("cpu", "cores", 1e4).push(t, cpu);
                    self.series("threads", "count", 1.0).push(t, threads as f64);
                }
            }
            ProbeKind::Gpu => self.gpu_sample(t),
            ProbeKind::Energy => self.energy_sample(t),
            // Scraped on threads of its own, at phase boundaries too (`server.rs`).
            ProbeKind::Server => {}
        }
    }
}

/// Probes running on their own thread until [`Probes::finish`].
pub struct Probes {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<ProbeResult>>>,
}

/// One probe reading as it is taken, for a live view.
#[derive(Debug, Clone)]
pub struct Reading {
    pub probe: ProbeKind,
    pub series: String,
    pub unit: &'static str,
    /// Seconds since the run started.
    pub t: f64,
    pub value: f64,
}

/// Receives every reading as it is taken (on the probe thread: it must not block).
#[derive(Clone)]
pub struct ProbeTap(pub Arc<dyn Fn(Reading) + Send + Sync>);

impl std::fmt::Debug for ProbeTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeTap")
    }
}

impl Probes {
    pub fn start(probes: &[(ProbeKind, Duration)], origin: Instant) -> Probes {
        Probes::tapped(probes, origin, None)
    }

    /// Probes whose readings are also given to `tap` as they are taken.
    pub fn tapped(probes: &[(ProbeKind, Duration)], origin: Instant, tap: Option<ProbeTap>) -> Probes {
        let stop = Arc::new(AtomicBool::new(false));
        let list = probes.to_vec();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("benchctl-probes".into())
            .spawn(move || sample_loop(list, origin, flag, tap))
            .ok();
        Probes { stop, handle }
    }

    pub fn finish(mut self) -> Vec<ProbeResult> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

fn sample_loop(
    list: Vec<(ProbeKind, Duration)>,
    origin: Instant,
    stop: Arc<AtomicBool>,
    tap: Option<ProbeTap>,
) -> Vec<ProbeResult> {
    let mut sys = System::new();
    let pid = sysinfo::get_current_pid().unwrap_or(Pid::from(0));
    // CPU usage is a difference between two refreshes: prime both.
    sys.refresh_cpu_usage();
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), false, ProcessRefreshKind::nothing().with_cpu());
    let now = Instant::now();
    let mut samplers: Vec<Sampler> = list
        .iter()
        .map(|&(kind, every)| Sampler::new(kind, every, now + every.min(Duration::from_millis(200))))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // With no sampler, just wait for the stop flag (never spin: a spinning probe thread
        // takes a core from the workload).
        let next = samplers.iter().map(|s| s.next).min().unwrap_or_else(|| Instant::now() + Duration::from_millis(50));
        let wait = next.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
        std::thread::sleep(wait);
        let now = Instant::now();
        let t = now.saturating_duration_since(origin).as_secs_f64();
        for s in samplers.iter_mut().filter(|s| s.next <= now) {
            s.sample(&mut sys, pid, t);
            if let Some(tap) = &tap {
                // Per-core CPU series stay in the result; the live view shows the all-core one.
                for (name, series) in s.series.iter().filter(|(n, _)| !n.starts_with("cpu_core")) {
                    if let Some(&(pt, value)) = series.points.last().filter(|p| p.0 == t) {
                        let (probe, series, unit) = (s.kind, name.clone(), series.unit);
                        (tap.0)(Reading { probe, series, unit, t: pt, value });
                    }
                }
            }
            s.next += s.every.max(Duration::from_millis(1));
            if s.next < now {
                s.next = now + s.every;
            }
        }
    }
    samplers
        .into_iter()
        .map(|s| ProbeResult {
            kind: s.kind,
            every_s: s.every.as_secs_f64(),
            unavailable: s.unavailable,
            series: s.series.into_iter().map(|(k, v)| (k, v.out())).collect(),
        })
        .collect()
}

/// Facts about the machine for the result document.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SystemInfo {
    pub cpu_model: String,
    pub cpu_cores_logical: usize,
    pub cpu_cores_physical: Option<usize>,
    pub memory_bytes: u64,
    pub swap_bytes: u64,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: String,
    pub hostname: Option<String>,
    /// GPUs NVML reports (name, memory, driver, CUDA version, compute capability).
    pub gpus: Vec<crate::probe::nvml::GpuInfo>,
}

pub fn system_info() -> SystemInfo {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_all();
    SystemInfo {
        cpu_model: sys.cpus().first().map(|c| c.brand().trim().to_string()).unwrap_or_default(),
        cpu_cores_logical: sys.cpus().len(),
        cpu_cores_physical: System::physical_core_count(),
        memory_bytes: sys.total_memory(),
        swap_bytes: sys.total_swap(),
        os: System::long_os_version(),
        kernel: System::kernel_version(),
        arch: System::cpu_arch(),
        hostname: System::host_name(),
        gpus: crate::probe::nvml::gpu_info(),
    }
}
