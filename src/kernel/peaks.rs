//! A device's peaks, the yardstick for a kernel's share: copy bandwidth (a built-in copy
//! kernel over 2 x 512 MiB) and SGEMM throughput (cuBLAS), measured once per device and
//! cached by its name and UUID.

use std::path::Path;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaStream, LaunchConfig, PushKernelArg};
use serde::Serialize;

use super::nvrtc;

/// Peaks of one device, measured once and cached per device.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq)]
pub struct Peaks {
    /// Device-to-device copy kernel over 2 x 512 MiB: bytes read + written per second.
    pub gb_s: f64,
    /// cuBLAS SGEMM 8192 x 8192 x 8192 (f32): flops per second.
    pub tflops: f64,
}

const COPY_KERNEL: &str = r#"extern "C" __global__ void benchctl_copy(const float4* __restrict__ x, float4* __restrict__ y, unsigned long long n) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n; i += (unsigned long long)gridDim.x * blockDim.x) {
        y[i] = x[i];
    }
}
"#;

/// Why the device's peaks could not be measured.
#[derive(Debug)]
pub(super) enum PeakError {
    /// NVRTC is missing or failed (its words).
    Nvrtc(String),
    /// The built-in copy kernel did not compile (the compiler's log).
    CopyKernel(String),
    Driver(cudarc::driver::DriverError),
    Blas(cudarc::cublas::result::CublasError),
}

impl std::fmt::Display for PeakError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeakError::Nvrtc(why) => f.write_str(why),
            PeakError::CopyKernel(log) => write!(f, "the built-in copy kernel did not compile: {log}"),
            PeakError::Driver(e) => e.fmt(f),
            PeakError::Blas(e) => e.fmt(f),
        }
    }
}

fn measure_peaks(ctx: &Arc<CudaContext>, stream: &Arc<CudaStream>) -> Result<Peaks, PeakError> {
    let e = PeakError::Driver;
    // Bandwidth: copy 512 MiB.
    let ptx =
        nvrtc::compile(COPY_KERNEL, "benchctl_copy.cu", &nvrtc::CompileOptions::default()).map_err(|f| match f {
            nvrtc::CompileFailure::NoNvrtc(why) | nvrtc::CompileFailure::Other(why) => PeakError::Nvrtc(why),
            nvrtc::CompileFailure::Errors { log, .. } => PeakError::CopyKernel(log),
        })?;
    let module = ctx.load_module(ptx).map_err(e)?;
    let f = module.load_function("benchctl_copy").map_err(e)?;
    let n4: u64 = (512 << 20) / 16;
    let x = stream.alloc_zeros::<f32>((n4 * 4) as usize).map_err(e)?;
    let mut y = stream.alloc_zeros::<f32>((n4 * 4) as usize).map_err(e)?;
    let cfg = LaunchConfig { grid_dim: (4096, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let start = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(e)?;
        let mut b = stream.launch_builder(&f);
        b.arg(&x).arg(&mut y).arg(&n4);
        // SAFETY: the copy kernel reads and writes n4 float4 values of buffers that long.
        unsafe { b.launch(cfg) }.map_err(e)?;
        let end = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(e)?;
        end.synchronize().map_err(e)?;
        best = best.min(start.elapsed_ms(&end).map_err(e)? as f64 / 1e3);
    }
    let gb_s = 2.0 * (n4 * 16) as f64 / best / 1e9;
    // Compute: SGEMM.
    use cudarc::cublas::{sys::cublasOperation_t, CudaBlas, Gemm, GemmConfig};
    let blas = CudaBlas::new(stream.clone()).map_err(PeakError::Blas)?;
    let n = 8192usize;
    let a = stream.alloc_zeros::<f32>(n * n).map_err(e)?;
    let bm = stream.alloc_zeros::<f32>(n * n).map_err(e)?;
    let mut c = stream.alloc_zeros::<f32>(n * n).map_err(e)?;
    let cfg = GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_N,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: n as i32,
        n: n as i32,
        k: n as i32,
        alpha: 1.0f32,
        lda: n as i32,
        ldb: n as i32,
        beta: 0.0f32,
        ldc: n as i32,
    };
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(e)?;
        // SAFETY: all three matrices are n x n.
        unsafe { blas.gemm(cfg, &a, &bm, &mut c) }.map_err(PeakError::Blas)?;
        let end = stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(e)?;
        end.synchronize().map_err(e)?;
        best = best.min(start.elapsed_ms(&end).map_err(e)? as f64 / 1e3);
    }
    Ok(Peaks { gb_s, tflops: 2.0 * (n as f64).powi(3) / best / 1e12 })
}

/// Peaks from the cache (per device name and UUID), measured when missing.
pub(super) fn peaks(
    ctx: &Arc<CudaContext>,
    stream: &Arc<CudaStream>,
    cache_dir: &Path,
) -> Result<(Peaks, bool), PeakError> {
    let name = ctx.name().map_err(PeakError::Driver)?;
    let uuid =
        ctx.uuid().map(|u| u.bytes.iter().map(|b| format!("{:02x}", *b as u8)).collect::<String>()).unwrap_or_default();
    let key: String =
        format!("{name}-{uuid}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let file = cache_dir.join(format!("gpu-peaks-{key}.json"));
    if let Some(p) = std::fs::read_to_string(&file).ok().and_then(|t| serde_json::from_str::<Peaks>(&t).ok()) {
        if p.gb_s > 0.0 && p.tflops > 0.0 {
            return Ok((p, true));
        }
    }
    let p = measure_peaks(ctx, stream)?;
    let _ = std::fs::create_dir_all(cache_dir);
    let text = serde_json::to_string(&p).expect("peaks serialise: two numbers");
    let _ = crate::files::write_atomic(&file, text.as_bytes());
    Ok((p, false))
}
