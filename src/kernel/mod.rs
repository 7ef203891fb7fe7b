//! The `kernel` workload: CUDA C compiled at run time with NVRTC, buffers copied to the
//! device once, each request one timing (CUDA events around `launches-per-timing` launches),
//! rates from the declared bytes and flops, an optional correctness check, and a bare launch
//! loop on the same kernel as the reference in the same run.

pub mod nvrtc;
mod peaks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use serde::Serialize;

use self::nvrtc::{CompileFailure, Located};
use self::peaks::{peaks, Peaks};
use crate::dsl::metrics::{MetricDef, KERNEL_TIME, LAUNCHES};
use crate::dsl::model::{BufferInit, ElemType, Kernel, KernelArg, KernelSource};
use crate::dsl::span::Span;
use crate::random::Rng;
use crate::workload::facts::{Check, Facts};

/// A number as the result document writes it (`null` where JSON has none).
fn json_number(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}
use crate::workload::setup::{ready, NoteAt, Prepared, SetupContext, SetupError, SourceNote};
use crate::workload::{BoxFuture, Call, RequestError, Workload, YieldOnce};

/// The byte offset of `line`:`column` (1-based) in `text`.
pub fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = if line == 1 { 0 } else { text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
    let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
    Some((start + column.saturating_sub(1)).min(end))
}

/// The scenario byte offset of `line`:`column` of an inline kernel string whose literal
/// occupies `span` in `source`. KDL multi-line strings (`"""`) start their content on the
/// line after the opening quotes and strip the closing line's indentation from every line.
pub fn inline_offset(source: &str, span: Span, line: usize, column: usize) -> Option<usize> {
    let lit = source.get(span.start..span.start + span.len)?;
    let body = lit.trim_start_matches('#');
    if body.starts_with("\"\"\"") {
        let first_nl = lit.find('\n')?;
        let closing = lit.rfind('\n').map(|i| &lit[i + 1..]).unwrap_or("");
        let dedent = closing.len() - closing.trim_start().len();
        let content = &lit[first_nl + 1..];
        let at = offset_of(content, line, column + dedent)?;
        Some(span.start + first_nl + 1 + at)
    } else if line == 1 {
        // A one-line string: its text starts after the opening quote(s).
        let open = lit.find('"')? + 1;
        Some(span.start + open + column.saturating_sub(1))
    } else {
        None
    }
}

/// Device buffer of one element type.
enum DevBuf {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    F16(CudaSlice<u16>),
    I32(CudaSlice<i32>),
    U32(CudaSlice<u32>),
    I64(CudaSlice<i64>),
    U64(CudaSlice<u64>),
    U8(CudaSlice<u8>),
}

/// A scalar argument, kept alive while a launch is built.
#[derive(Clone, Copy)]
enum Scalar {
    F32(f32),
    F64(f64),
    F16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    U8(u8),
}

fn scalar(ty: ElemType, v: f64) -> Scalar {
    match ty {
        ElemType::F32 => Scalar::F32(v as f32),
        ElemType::F64 => Scalar::F64(v),
        ElemType::F16 => Scalar::F16(half::f16::from_f64(v).to_bits()),
        ElemType::I32 => Scalar::I32(v as i32),
        ElemType::U32 => Scalar::U32(v as u32),
        ElemType::I64 => Scalar::I64(v as i64),
        ElemType::U64 => Scalar::U64(v as u64),
        ElemType::U8 => Scalar::U8(v as u8),
    }
}

/// Host values of a buffer's initialisation, as f64.
pub fn init_values(init: BufferInit, len: usize, value: f64, seed: u64) -> Vec<f64> {
    match init {
        BufferInit::Zeros => vec![0.0; len],
        BufferInit::Constant => vec![value; len],
        BufferInit::Iota => (0..len).map(|i| i as f64).collect(),
        BufferInit::Random => {
            let mut r = Rng::new(seed);
            (0..len).map(|_| r.unit()).collect()
        }
    }
}

struct HostBuf {
    name: String,
    ty: ElemType,
    values: Vec<f64>,
}

fn upload(stream: &Arc<CudaStream>, b: &HostBuf) -> Result<DevBuf, cudarc::driver::DriverError> {
    let v = &b.values;
    Ok(match b.ty {
        ElemType::F32 => DevBuf::F32(stream.clone_htod(&v.iter().map(|x| *x as f32).collect::<Vec<_>>())?),
        ElemType::F64 => DevBuf::F64(stream.clone_htod(v)?),
        ElemType::F16 => {
            DevBuf::F16(stream.clone_htod(&v.iter().map(|x| half::f16::from_f64(*x).to_bits()).collect::<Vec<_>>())?)
        }
        ElemType::I32 => DevBuf::I32(stream.clone_htod(&v.iter().map(|x| *x as i32).collect::<Vec<_>>())?),
        ElemType::U32 => DevBuf::U32(stream.clone_htod(&v.iter().map(|x| *x as u32).collect::<Vec<_>>())?),
        ElemType::I64 => DevBuf::I64(stream.clone_htod(&v.iter().map(|x| *x as i64).collect::<Vec<_>>())?),
        ElemType::U64 => DevBuf::U64(stream.clone_htod(&v.iter().map(|x| *x as u64).collect::<Vec<_>>())?),
        ElemType::U8 => DevBuf::U8(stream.clone_htod(&v.iter().map(|x| *x as u8).collect::<Vec<_>>())?),
    })
}

fn download(stream: &Arc<CudaStream>, b: &DevBuf) -> Result<Vec<f64>, cudarc::driver::DriverError> {
    Ok(match b {
        DevBuf::F32(s) => stream.clone_dtoh(s)?.into_iter().map(f64::from).collect(),
        DevBuf::F64(s) => stream.clone_dtoh(s)?,
        DevBuf::F16(s) => stream.clone_dtoh(s)?.into_iter().map(|x| half::f16::from_bits(x).to_f64()).collect(),
        DevBuf::I32(s) => stream.clone_dtoh(s)?.into_iter().map(f64::from).collect(),
        DevBuf::U32(s) => stream.clone_dtoh(s)?.into_iter().map(f64::from).collect(),
        DevBuf::I64(s) => stream.clone_dtoh(s)?.into_iter().map(|x| x as f64).collect(),
        DevBuf::U64(s) => stream.clone_dtoh(s)?.into_iter().map(|x| x as f64).collect(),
        DevBuf::U8(s) => stream.clone_dtoh(s)?.into_iter().map(f64::from).collect(),
    })
}

enum Arg {
    Buffer(usize),
    Scalar(Scalar),
}

/// The device side: context, stream, function, buffers. One launch group at a time.
struct Device {
    stream: Arc<CudaStream>,
    func: CudaFunction,
    reference: Option<CudaFunction>,
    buffers: Vec<DevBuf>,
    host: Vec<HostBuf>,
    args: Vec<Arg>,
    cfg: LaunchConfig,
}

impl Device {
    /// The mean time of `per_timing` launches, over `iterations` launches after one warm
    /// timing.
    fn bare_loop(&self, per_timing: u64, iterations: u64) -> Result<Duration, cudarc::driver::DriverError> {
        self.time(per_timing)?;
        let groups = iterations.div_ceil(per_timing);
        let mut total = Duration::ZERO;
        for _ in 0..groups {
            total += self.time(per_timing)?;
        }
        Ok(total / groups as u32)
    }

    fn launch(&self, f: &CudaFunction) -> Result<(), cudarc::driver::DriverError> {
        let mut b = self.stream.launch_builder(f);
        // Scalars are pushed by reference from `self.args`, which outlives the launch: no
        // per-launch allocation on the timed path.
        for a in &self.args {
            match a {
                Arg::Buffer(i) => match &self.buffers[*i] {
                    DevBuf::F32(s) => b.arg(s),
                    DevBuf::F64(s) => b.arg(s),
                    DevBuf::F16(s) => b.arg(s),
                    DevBuf::I32(s) => b.arg(s),
                    DevBuf::U32(s) => b.arg(s),
                    DevBuf::I64(s) => b.arg(s),
                    DevBuf::U64(s) => b.arg(s),
                    DevBuf::U8(s) => b.arg(s),
                },
                Arg::Scalar(s) => match s {
                    Scalar::F32(v) => b.arg(v),
                    Scalar::F64(v) => b.arg(v),
                    Scalar::F16(v) => b.arg(v),
                    Scalar::I32(v) => b.arg(v),
                    Scalar::U32(v) => b.arg(v),
                    Scalar::I64(v) => b.arg(v),
                    Scalar::U64(v) => b.arg(v),
                    Scalar::U8(v) => b.arg(v),
                },
            };
        }
        // SAFETY: the argument list follows the scenario's `args`, which the user declares to
        // match the kernel's signature; buffers are as long as declared.
        unsafe { b.launch(self.cfg) }.map(|_| ())
    }

    /// Device time of one launch, averaged over `n` launches between two CUDA events.
    fn time(&self, n: u64) -> Result<Duration, cudarc::driver::DriverError> {
        let start = self.stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        for _ in 0..n {
            self.launch(&self.func)?;
        }
        let end = self.stream.record_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        end.synchronize()?;
        let ms = start.elapsed_ms(&end)? as f64;
        Ok(Duration::from_secs_f64(ms / 1e3 / n.max(1) as f64))
    }

    fn reset(&mut self) -> Result<(), cudarc::driver::DriverError> {
        for (i, h) in self.host.iter().enumerate() {
            self.buffers[i] = upload(&self.stream, h)?;
        }
        Ok(())
    }
}

/// The correctness check's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckOutcome {
    pub buffer: String,
    /// `expect=VALUE` or `reference=KERNEL`.
    pub against: String,
    pub tolerance: f64,
    pub passed: bool,
    pub max_abs_error: f64,
    pub mismatches: u64,
    pub first_mismatch: Option<u64>,
}

/// Compares `got` with `want` (element-wise) within `tol` (absolute, or relative to the
/// expected magnitude when that is above 1).
pub fn compare(got: &[f64], want: &dyn Fn(usize) -> f64, tol: f64) -> (f64, u64, Option<u64>) {
    let mut max = 0f64;
    let mut bad = 0u64;
    let mut first = None;
    for (i, g) in got.iter().enumerate() {
        let w = want(i);
        let err = (g - w).abs();
        let ok = err <= tol * w.abs().max(1.0);
        if err.is_nan() || !ok {
            bad += 1;
            first.get_or_insert(i as u64);
        }
        if err > max || err.is_nan() {
            max = if err.is_nan() { f64::INFINITY } else { err };
        }
    }
    (max, bad, first)
}

/// Achieved rate and its share of a peak.
pub fn rates(
    bytes: Option<f64>,
    flops: Option<f64>,
    mean: Duration,
    peak_gb_s: Option<f64>,
    peak_tflops: Option<f64>,
) -> Rates {
    let s = mean.as_secs_f64();
    let gb_s = bytes.filter(|_| s > 0.0).map(|b| b / s / 1e9);
    let tflops = flops.filter(|_| s > 0.0).map(|f| f / s / 1e12);
    Rates {
        gb_s,
        tflops,
        bandwidth_share: gb_s.zip(peak_gb_s).filter(|p| p.1 > 0.0).map(|(a, p)| a / p),
        compute_share: tflops.zip(peak_tflops).filter(|p| p.1 > 0.0).map(|(a, p)| a / p),
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Rates {
    pub gb_s: Option<f64>,
    pub tflops: Option<f64>,
    pub bandwidth_share: Option<f64>,
    pub compute_share: Option<f64>,
}

/// Facts of a prepared kernel workload, for the result.
#[derive(Debug, Clone, Serialize)]
pub struct KernelFacts {
    pub entry: String,
    pub source: String,
    pub device: String,
    pub compute_capability: String,
    pub compile_s: f64,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_memory_bytes: u32,
    pub launches_per_timing: u64,
    pub bytes_per_launch: Option<f64>,
    pub flops_per_launch: Option<f64>,
    pub peaks: Option<Peaks>,
    pub peaks_from_cache: bool,
    /// The bare loop (no harness): `iterations` launches timed in groups.
    pub bare_kernel_time_s: f64,
    pub bare: Rates,
    pub check: Option<CheckOutcome>,
}

pub struct KernelWorkload {
    device: Arc<Mutex<Device>>,
    per_timing: u64,
    facts: KernelFacts,
}

/// Prepares a kernel workload (the registry's entry point). A device with `fallback="cpu"`
/// that cannot open skips the workload (a kernel has no CPU path) with a warning.
pub fn prepare(k: &Kernel, cx: &mut SetupContext) -> Result<Prepared, SetupError> {
    let index = match cx.device.kind {
        crate::dsl::model::DeviceKind::Cuda { index } => index,
        crate::dsl::model::DeviceKind::Cpu => 0,
    };
    if cx.device.fallback_cpu {
        if let Err(e) = open(index) {
            cx.warn("skipped", format!("workload `{}` is skipped: {}", cx.workload, e.message));
            return Ok(Prepared::Skipped { reason: e.message });
        }
    }
    let span = match &k.source {
        Some(KernelSource::Inline(s)) => Some(s.span),
        Some(KernelSource::File(s)) => Some(s.span),
        None => None,
    };
    let options = KernelOptions {
        workload: cx.workload,
        device_index: index,
        base: cx.base,
        scenario_text: span.map(|s| cx.sources.get(s.file).text.clone()),
        cache_dir: cx.cache.clone(),
    };
    let loaded = KernelWorkload::load(k, &options, &mut |m| cx.progress(m));
    ready(loaded, span)
}

/// What building a kernel workload needs besides its node.
pub struct KernelOptions<'a> {
    pub workload: &'a str,
    pub device_index: u32,
    pub base: &'a Path,
    /// The scenario text holding an inline source, and the literal's span.
    pub scenario_text: Option<Arc<str>>,
    pub cache_dir: PathBuf,
}

fn dims(v: &[crate::dsl::span::Spanned<u32>]) -> [u32; 3] {
    let g = |i: usize| v.get(i).map_or(1, |x| x.value);
    [g(0), g(1), g(2)]
}

/// The entry kernel and the check's reference kernel, by name from the compiled module.
fn functions(
    module: &Arc<cudarc::driver::CudaModule>,
    entry: &str,
    k: &Kernel,
) -> Result<(CudaFunction, Option<CudaFunction>), SetupError> {
    let func = module.load_function(entry).map_err(|e| {
        SetupError::input(
            format!("the kernel source has no function `{entry}` ({e})"),
            "declare it `extern \"C\" __global__` so its name is not mangled, and name it in `entry`",
        )
    })?;
    let reference = match k.check.as_ref().and_then(|c| c.reference.as_ref()) {
        Some(r) => Some(module.load_function(&r.value).map_err(|e| {
            SetupError::input(
                format!("the check's reference kernel `{}` is not in the source ({e})", r.value),
                "declare it `extern \"C\" __global__`",
            )
        })?),
        None => None,
    };
    Ok((func, reference))
}

/// The kernel's source text, its file name for the compiler, and its path when it is a file.
fn kernel_source(k: &Kernel, setup: &KernelOptions) -> Result<(String, String, Option<PathBuf>), SetupError> {
    Ok(match &k.source {
        Some(KernelSource::File(p)) => {
            let path = setup.base.join(&p.value);
            let text =
                crate::dsl::source::read_text_bounded(&path, crate::dsl::source::MAX_FILE_BYTES).map_err(|e| {
                    SetupError::input(
                        format!("cannot read the kernel source `{}`: {e}", path.display()),
                        "paths are relative to the scenario's folder",
                    )
                })?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "kernel.cu".into());
            (text, name, Some(path))
        }
        Some(KernelSource::Inline(s)) => (s.value.clone(), format!("{}.cu", setup.workload), None),
        None => {
            return Err(SetupError::input(
                "the kernel has no `source`",
                "add `source file=\"kernel.cu\"` or an inline string",
            ))
        }
    })
}

/// What a launch needs on the device: the buffers (host copies and uploaded), the
/// arguments, the launch configuration, and grid, block and shared memory as declared.
#[allow(clippy::type_complexity)]
fn device_inputs(
    k: &Kernel,
    stream: &Arc<CudaStream>,
) -> Result<(Vec<HostBuf>, Vec<DevBuf>, Vec<Arg>, LaunchConfig, [u32; 3], [u32; 3], u32), cudarc::driver::DriverError> {
    let host: Vec<HostBuf> = k
        .buffers
        .iter()
        .map(|b| HostBuf {
            name: b.name.value.clone(),
            ty: b.ty.value,
            values: init_values(
                b.init.value,
                b.len.value as usize,
                b.value.as_ref().map_or(0.0, |v| v.value),
                b.seed.as_ref().map_or(0, |s| s.value),
            ),
        })
        .collect();
    let buffers = host.iter().map(|h| upload(stream, h)).collect::<Result<Vec<_>, _>>()?;
    let args = k
        .args
        .iter()
        .map(|a| match a {
            KernelArg::Buffer(n) => Arg::Buffer(host.iter().position(|h| h.name == n.value).unwrap_or(0)),
            KernelArg::Scalar { ty, value } => Arg::Scalar(scalar(ty.value, value.value)),
        })
        .collect();
    let (grid, block) = (dims(&k.grid), dims(&k.block));
    let shared = k.shared_memory.as_ref().map_or(0, |s| s.value.0 as u32);
    let cfg = LaunchConfig {
        grid_dim: (grid[0], grid[1], grid[2]),
        block_dim: (block[0], block[1], block[2]),
        shared_mem_bytes: shared,
    };
    Ok((host, buffers, args, cfg, grid, block, shared))
}

impl KernelWorkload {
    pub fn load(
        k: &Kernel,
        setup: &KernelOptions,
        progress: &mut dyn FnMut(String),
    ) -> Result<KernelWorkload, SetupError> {
        let (text, name, file) = kernel_source(k, setup)?;
        let entry = k.entry.as_ref().map(|e| e.value.clone()).unwrap_or_default();
        let opts = nvrtc::CompileOptions {
            arch: k.arch.as_ref().map(|a| a.value.clone()),
            fast_math: k.fast_math,
            defines: k.defines.iter().map(|(n, v)| (n.value.clone(), v.as_ref().map(|v| v.value.clone()))).collect(),
        };
        progress(format!("compiling {name} with NVRTC"));
        let t = std::time::Instant::now();
        let ptx = nvrtc::compile(&text, &name, &opts)
            .map_err(|f| compile_error(f, &name, &text, file.as_deref(), k, setup))?;
        let compile_s = t.elapsed().as_secs_f64();

        // Device.
        let ctx = open(setup.device_index)?;
        let dev_name = ctx.name().unwrap_or_default();
        let cc = ctx.compute_capability().map(|(a, b)| format!("{a}.{b}")).unwrap_or_default();
        progress(format!("running on {dev_name} (compute capability {cc})"));
        let derr = |what: &str| {
            let what = what.to_string();
            move |e: cudarc::driver::DriverError| SetupError::runtime(format!("CUDA failed while {what}: {e}"), None)
        };
        let stream = ctx.default_stream();
        let module = ctx.load_module(ptx).map_err(derr("loading the compiled module"))?;
        let (func, reference) = functions(&module, &entry, k)?;
        let (host, buffers, args, cfg, grid, block, shared) =
            device_inputs(k, &stream).map_err(derr("copying the buffers to the device"))?;
        let mut dev = Device { stream: stream.clone(), func, reference, buffers, host, args, cfg };

        // Correctness first (on the initial buffers), then the bare reference loop.
        let check = match &k.check {
            Some(c) => Some(run_check(&mut dev, c).map_err(derr("running the correctness check"))?),
            None => None,
        };
        let per_timing = k.launches_per_timing.as_ref().map_or(1, |l| l.value.max(1));
        let iterations = k.iterations.as_ref().map_or(1000, |i| i.value.max(1));
        progress(format!("bare loop: {iterations} launches"));
        let bare_mean = dev.bare_loop(per_timing, iterations).map_err(derr("launching the kernel"))?;
        let bytes = k.bytes_per_launch.as_ref().map(|b| b.value.0 as f64);
        let flops = k.flops_per_launch.as_ref().map(|f| f.value);
        let (pk, cached) = match peaks(&ctx, &stream, &setup.cache_dir) {
            Ok((p, c)) => (Some(p), c),
            Err(e) => {
                progress(format!("peaks not measured: {e}"));
                (None, false)
            }
        };
        let facts = KernelFacts {
            entry,
            source: file.map_or_else(|| "inline".to_string(), |p| p.display().to_string()),
            device: dev_name,
            compute_capability: cc,
            compile_s,
            grid,
            block,
            shared_memory_bytes: shared,
            launches_per_timing: per_timing,
            bytes_per_launch: bytes,
            flops_per_launch: flops,
            peaks: pk,
            peaks_from_cache: cached,
            bare_kernel_time_s: bare_mean.as_secs_f64(),
            bare: rates(bytes, flops, bare_mean, pk.map(|p| p.gb_s), pk.map(|p| p.tflops)),
            check,
        };
        Ok(KernelWorkload { device: Arc::new(Mutex::new(dev)), per_timing, facts })
    }

    pub fn facts(&self) -> &KernelFacts {
        &self.facts
    }
}

fn run_check(
    dev: &mut Device,
    c: &crate::dsl::model::KernelCheck,
) -> Result<CheckOutcome, cudarc::driver::DriverError> {
    let idx = dev.host.iter().position(|h| h.name == c.buffer.value).unwrap_or(0);
    let tol = c.tolerance.as_ref().map_or(1e-5, |t| t.value);
    dev.reset()?;
    dev.launch(&dev.func)?;
    let got = download(&dev.stream, &dev.buffers[idx])?;
    let (against, want): (String, Vec<f64>) = match (&c.expect, &dev.reference) {
        (Some(v), _) => (format!("expect={}", v.value), vec![v.value; got.len()]),
        (None, Some(r)) => {
            let r = r.clone();
            dev.reset()?;
            dev.launch(&r)?;
            (
                format!("reference={}", c.reference.as_ref().map_or("", |r| r.value.as_str())),
                download(&dev.stream, &dev.buffers[idx])?,
            )
        }
        (None, None) => (String::from("none"), got.clone()),
    };
    dev.reset()?;
    let (max, bad, first) = compare(&got, &|i| want[i], tol);
    Ok(CheckOutcome {
        buffer: c.buffer.value.clone(),
        against,
        tolerance: tol,
        passed: bad == 0,
        max_abs_error: max,
        mismatches: bad,
        first_mismatch: first,
    })
}

/// Opens CUDA device `index`, or says clearly why not.
pub fn open(index: u32) -> Result<Arc<CudaContext>, SetupError> {
    #[cfg(not(feature = "cuda"))]
    {
        // SAFETY: only tries to open the driver library by its usual names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(SetupError::runtime(
                format!("device `cuda:{index}` needs the NVIDIA driver, and libcuda.so.1 was not found on this machine"),
                Some("run on a machine with an NVIDIA GPU and its driver, or write `device \"cuda:0\" fallback=\"cpu\"` to skip GPU workloads here".into()),
            ));
        }
    }
    match std::panic::catch_unwind(|| CudaContext::new(index as usize)) {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(e)) => Err(SetupError::runtime(
            format!("cannot open CUDA device {index}: {e}"),
            Some("check `nvidia-smi` and that the device index exists; `fallback=\"cpu\"` skips GPU workloads where none is usable".into()),
        )),
        Err(_) => Err(SetupError::runtime(format!("cannot open CUDA device {index}: the driver library is unusable"), None)),
    }
}

/// A compile failure as a setup error whose notes point into the kernel source.
fn compile_error(
    f: CompileFailure,
    name: &str,
    text: &str,
    file: Option<&Path>,
    k: &Kernel,
    setup: &KernelOptions,
) -> SetupError {
    match f {
        CompileFailure::NoNvrtc(why) => SetupError::runtime(
            format!("cannot compile the kernel: {why}"),
            Some("install the CUDA toolkit (or `pip install nvidia-cuda-nvrtc`) and put its lib folder on LD_LIBRARY_PATH".into()),
        ),
        CompileFailure::Other(why) => SetupError::runtime(why, None),
        CompileFailure::Errors { log, located } => {
            let errors = located.iter().filter(|l| l.error).count();
            let mut e = SetupError::input(
                format!("NVRTC could not compile `{name}` ({errors} error{})", if errors == 1 { "" } else { "s" }),
                "fix the kernel source; the compiler's messages follow",
            );
            e.notes = located.iter().filter_map(|l| note(l, text, file, k, setup)).collect();
            if e.notes.is_empty() {
                e.message += &format!(":\n{log}");
            }
            e
        }
    }
}

fn note(l: &Located, text: &str, file: Option<&Path>, k: &Kernel, setup: &KernelOptions) -> Option<SourceNote> {
    let col = l.column.unwrap_or(1);
    let at = match (file, &k.source) {
        (Some(path), _) => {
            let offset = offset_of(text, l.line, col)?;
            NoteAt::File {
                path: path.to_path_buf(),
                text: Arc::from(text),
                offset,
                len: if l.column.is_some() { 1 } else { 0 },
            }
        }
        (None, Some(KernelSource::Inline(s))) => {
            let src = setup.scenario_text.as_ref()?;
            match inline_offset(src, s.span, l.line, col) {
                Some(o) => NoteAt::Span(Span::new(s.span.file, o, 1)),
                None => NoteAt::Span(s.span),
            }
        }
        _ => return None,
    };
    Some(SourceNote { at, error: l.error, message: format!("line {}: {}", l.line, l.message) })
}

impl Workload for KernelWorkload {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        Box::pin(async move {
            YieldOnce::default().await;
            let (dev, n) = (self.device.clone(), self.per_timing);
            let r = tokio::task::spawn_blocking(move || {
                let d = dev.lock().unwrap_or_else(|e| e.into_inner());
                d.time(n)
            })
            .await;
            match r {
                Ok(Ok(t)) => {
                    call.events.measure(0, t.as_secs_f64());
                    call.events.measure(1, n as f64);
                    Ok(())
                }
                Ok(Err(e)) => Err(RequestError::backend("cuda", e.to_string())),
                Err(e) => Err(RequestError::Panicked(e.to_string())),
            }
        })
    }

    fn streams_tokens(&self) -> bool {
        false
    }

    fn token_source(&self) -> &'static str {
        "none (kernel launches)"
    }

    fn measures(&self) -> &'static [&'static MetricDef] {
        // Recorded by `call`: 0 the device time of one launch, 1 the launches behind it.
        &[&KERNEL_TIME, &LAUNCHES]
    }

    fn facts(&self) -> Facts {
        let k = &self.facts;
        let mut f = Facts::default();
        f.row("kernel", format!("`{}` from {}", k.entry, k.source))
            .row("device", format!("{} (compute capability {})", k.device, k.compute_capability))
            .row(
                "launch",
                format!(
                    "grid {:?}, block {:?}, {} B shared; {} launches per timing",
                    k.grid, k.block, k.shared_memory_bytes, k.launches_per_timing
                ),
            );
        let mut bare = format!("{:.4} ms per launch", k.bare_kernel_time_s * 1e3);
        if let Some(g) = k.bare.gb_s {
            bare += &format!(", {g:.1} GB/s");
        }
        f.row("bare loop", bare);
        if let Some(p) = &k.peaks {
            let cached = if k.peaks_from_cache { " (from the cache)" } else { "" };
            f.row("device peaks", format!("copy {:.0} GB/s, SGEMM {:.1} TFLOP/s{cached}", p.gb_s, p.tflops));
        }
        if let Some(c) = &k.check {
            let verdict =
                if c.passed { "passed".to_string() } else { format!("FAILED, {} elements off", c.mismatches) };
            f.row("check", format!("`{}` ({}): {verdict}", c.buffer, c.against));
            let first = c.first_mismatch.map_or("null".to_string(), |i| i.to_string());
            f.checks.push(Check {
                name: "check".into(),
                text: format!("{} {}", c.buffer, c.against),
                passed: c.passed,
                message: if c.passed {
                    format!("every element within {}", json_number(c.tolerance))
                } else {
                    format!(
                        "{} elements off by more than {} (first at index {first}, largest error {})",
                        c.mismatches,
                        json_number(c.tolerance),
                        json_number(c.max_abs_error)
                    )
                },
                measured: Some(c.max_abs_error).filter(|e| e.is_finite()),
                measured_text: format!("max error {}", json_number(c.max_abs_error)),
            });
        }
        // Rates over the mean device time of a launch, per record.
        if let Some(b) = k.bytes_per_launch {
            f.per_mean("gb_s", b / 1e9, KERNEL_TIME.name);
            if let Some(p) = k.peaks.filter(|p| p.gb_s > 0.0) {
                f.per_mean("bandwidth_share", b / 1e9 / p.gb_s, KERNEL_TIME.name);
            }
        }
        if let Some(fl) = k.flops_per_launch {
            f.per_mean("tflops", fl / 1e12, KERNEL_TIME.name);
            if let Some(p) = k.peaks.filter(|p| p.tflops > 0.0) {
                f.per_mean("compute_share", fl / 1e12 / p.tflops, KERNEL_TIME.name);
            }
        }
        f
    }

    fn detail(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "kernel": self.facts }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::span::FileId;

    #[test]
    fn offsets_in_files_and_inline_strings() {
        let text = "a\nbcd\nef";
        assert_eq!(offset_of(text, 1, 1), Some(0));
        assert_eq!(offset_of(text, 2, 3), Some(4));
        assert_eq!(offset_of(text, 3, 9), Some(8)); // clamped to the line's end
        assert_eq!(offset_of(text, 4, 1), None);
        // A multi-line KDL string, indented by 4 in the file and dedented by its closing line.
        let scenario = "    source \"\"\"\n        int x;\n        y = 1;\n        \"\"\"\n";
        let start = scenario.find("\"\"\"").unwrap();
        let end = scenario.rfind("\"\"\"").unwrap() + 3;
        let span = Span::new(FileId(0), start, end - start);
        let at = inline_offset(scenario, span, 2, 1).unwrap();
        assert_eq!(&scenario[at..at + 5], "y = 1");
        // A one-line string.
        let one = "source \"int x = yy;\"";
        let span = Span::new(FileId(0), 7, one.len() - 7);
        let at = inline_offset(one, span, 1, 9).unwrap();
        assert_eq!(&one[at..at + 2], "yy");
    }

    #[test]
    fn rates_and_shares() {
        let r = rates(Some(12.0 * 1024.0 * 1024.0), Some(2.0e6), Duration::from_micros(5), Some(3000.0), Some(60.0));
        let gb = 12.0 * 1024.0 * 1024.0 / 5e-6 / 1e9;
        assert!((r.gb_s.unwrap() - gb).abs() < 1e-9);
        assert!((r.bandwidth_share.unwrap() - gb / 3000.0).abs() < 1e-12);
        assert!((r.tflops.unwrap() - 0.4).abs() < 1e-12);
        assert!((r.compute_share.unwrap() - 0.4 / 60.0).abs() < 1e-12);
        let none = rates(None, None, Duration::ZERO, None, None);
        assert_eq!((none.gb_s, none.bandwidth_share, none.compute_share), (None, None, None));
    }

    #[test]
    fn checks_compare_within_tolerance() {
        let got = [3.0, 3.0000001, 2.5, f64::NAN];
        let (max, bad, first) = compare(&got, &|_| 3.0, 1e-5);
        assert_eq!((bad, first), (2, Some(2)));
        assert!(max.is_infinite());
        let (max, bad, _) = compare(&got[..2], &|_| 3.0, 1e-5);
        assert_eq!(bad, 0);
        assert!(max < 1e-6);
        assert_eq!(init_values(BufferInit::Iota, 3, 0.0, 0), [0.0, 1.0, 2.0]);
        assert_eq!(init_values(BufferInit::Constant, 2, 1.5, 0), [1.5, 1.5]);
        let r = init_values(BufferInit::Random, 1000, 0.0, 7);
        assert!(r.iter().all(|x| (0.0..1.0).contains(x)) && r == init_values(BufferInit::Random, 1000, 0.0, 7));
    }
}
