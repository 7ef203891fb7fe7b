//! GPU facts and samples through NVML (libnvidia-ml, loaded at run time). Its absence is a
//! reason, not an error: probes report it and the run goes on.

use super::Unavailable;
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::Nvml;
use serde::Serialize;

/// One GPU at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSample {
    pub utilization: Option<f64>,
    pub memory_used: Option<f64>,
    pub memory_share: Option<f64>,
    pub temperature: Option<f64>,
    pub power_w: Option<f64>,
    pub sm_clock: Option<f64>,
    pub mem_clock: Option<f64>,
    /// 1 when any throttle reason other than idle is active.
    pub throttled: Option<f64>,
    /// NVML's total-energy counter, joules since the driver loaded.
    pub energy_j: Option<f64>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    /// NVML's `GPU-...` identifier, stable across reboots (fleet reports name GPUs by it).
    pub uuid: String,
    pub name: String,
    pub memory_bytes: u64,
    pub driver: String,
    /// e.g. "13.0".
    pub cuda_version: String,
    pub compute_capability: String,
}

pub struct Gpus {
    nvml: Nvml,
    count: u32,
}

impl Gpus {
    /// Opens NVML, or says why not (no library, no driver, no device).
    pub fn open() -> Result<Gpus, Unavailable> {
        let nvml = std::panic::catch_unwind(Nvml::init)
            .map_err(|_| Unavailable::NoNvml("NVML could not be loaded".to_string()))?
            .map_err(|e| {
                Unavailable::NoNvml(format!("NVML is not available ({e}): no NVIDIA driver on this machine?"))
            })?;
        let count = nvml.device_count().map_err(|e| Unavailable::NoGpu(format!("NVML cannot count GPUs: {e}")))?;
        if count == 0 {
            return Err(Unavailable::NoGpu("NVML found no GPU".into()));
        }
        Ok(Gpus { nvml, count })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn info(&self) -> Vec<GpuInfo> {
        let driver = self.nvml.sys_driver_version().unwrap_or_default();
        let cuda = self
            .nvml
            .sys_cuda_driver_version()
            .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10))
            .unwrap_or_default();
        (0..self.count)
            .filter_map(|i| {
                let d = self.nvml.device_by_index(i).ok()?;
                Some(GpuInfo {
                    index: i,
                    uuid: d.uuid().unwrap_or_default(),
                    name: d.name().unwrap_or_default(),
                    memory_bytes: d.memory_info().map(|m| m.total).unwrap_or(0),
                    driver: driver.clone(),
                    cuda_version: cuda.clone(),
                    compute_capability: d
                        .cuda_compute_capability()
                        .map(|c| format!("{}.{}", c.major, c.minor))
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    pub fn sample(&self, index: u32) -> GpuSample {
        let Ok(d) = self.nvml.device_by_index(index) else { return GpuSample::default() };
        let mem = d.memory_info().ok();
        GpuSample {
            utilization: d.utilization_rates().ok().map(|u| u.gpu as f64 / 100.0),
            memory_used: mem.as_ref().map(|m| m.used as f64),
            memory_share: mem.as_ref().filter(|m| m.total > 0).map(|m| m.used as f64 / m.total as f64),
            temperature: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
            power_w: d.power_usage().ok().map(|mw| mw as f64 / 1e3),
            sm_clock: d.clock_info(Clock::SM).ok().map(f64::from),
            mem_clock: d.clock_info(Clock::Memory).ok().map(f64::from),
            throttled: d.current_throttle_reasons().ok().map(|r| {
                let idle = nvml_wrapper::bitmasks::device::ThrottleReasons::GPU_IDLE;
                f64::from(u8::from(!(r - idle).is_empty()))
            }),
            energy_j: d.total_energy_consumption().ok().map(|mj| mj as f64 / 1e3),
        }
    }
}

/// GPU facts for the result's `system_info`, empty where NVML is absent.
pub fn gpu_info() -> Vec<GpuInfo> {
    Gpus::open().map(|g| g.info()).unwrap_or_default()
}
