//! NVIDIA GPUs: CUDA kernels compiled at run time with NVRTC and launched through cudarc
//! (both loaded dynamically, so the default binary runs without CUDA), NVML probes, and
//! energy counters.

pub mod energy;
pub mod kernel;
pub mod nvml;
pub mod nvrtc;
