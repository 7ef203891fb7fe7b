//! The `kernel` kind's language side: CUDA C compiled at run time with NVRTC and timed
//! with CUDA events. Its backend is `src/kernel/`.

use kdl::KdlNode;

use super::{missing, Estimating, KindSpec, SetupEstimate};
use crate::dsl::decode::workload::read;
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::model::*;
use crate::dsl::reader::{children, Ctx, NodeReader};
use crate::dsl::span::Spanned;
use crate::dsl::units::Bytes;
use crate::keyword_enum;

keyword_enum!(ElemType, "element type" {
    F32 = "f32", F64 = "f64", F16 = "f16", I32 = "i32", U32 = "u32", I64 = "i64", U64 = "u64", U8 = "u8",
});
keyword_enum!(BufferInit, "buffer initialisation" { Zeros = "zeros", Constant = "constant", Random = "random", Iota = "iota" });

#[derive(Debug)]
pub enum KernelSource {
    Inline(Spanned<String>),
    File(Spanned<String>),
}

#[derive(Debug)]
pub struct Buffer {
    pub name: Spanned<String>,
    pub ty: Spanned<ElemType>,
    pub len: Spanned<u64>,
    pub init: Spanned<BufferInit>,
    pub value: Option<Spanned<f64>>,
    pub seed: Option<Spanned<u64>>,
}

#[derive(Debug)]
pub enum KernelArg {
    Buffer(Spanned<String>),
    Scalar { ty: Spanned<ElemType>, value: Spanned<f64> },
}

#[derive(Debug)]
pub struct KernelCheck {
    pub buffer: Spanned<String>,
    pub expect: Option<Spanned<f64>>,
    pub reference: Option<Spanned<String>>,
    pub tolerance: Option<Spanned<f64>>,
}

#[derive(Debug)]
pub struct Kernel {
    pub source: Option<KernelSource>,
    pub entry: Option<Spanned<String>>,
    pub arch: Option<Spanned<String>>,
    pub fast_math: bool,
    pub defines: Vec<(Spanned<String>, Option<Spanned<String>>)>,
    pub grid: Vec<Spanned<u32>>,
    pub block: Vec<Spanned<u32>>,
    pub shared_memory: Option<Spanned<Bytes>>,
    pub buffers: Vec<Buffer>,
    pub args: Vec<KernelArg>,
    pub bytes_per_launch: Option<Spanned<Bytes>>,
    pub flops_per_launch: Option<Spanned<f64>>,
    pub iterations: Option<Spanned<u64>>,
    pub launches_per_timing: Option<Spanned<u64>>,
    pub check: Option<KernelCheck>,
}

pub const KERNEL_NODES: &[&str] = &[
    "source",
    "entry",
    "compile",
    "grid",
    "block",
    "shared-memory",
    "buffer",
    "args",
    "rates",
    "iterations",
    "launches-per-timing",
    "check",
    "device",
];

pub(in crate::dsl) fn decode(cx: &mut Ctx, nodes: &[KdlNode], device_slot: &mut Option<Spanned<Device>>) -> Kernel {
    let mut k = Kernel {
        source: None,
        entry: None,
        arch: None,
        fast_math: false,
        defines: vec![],
        grid: vec![],
        block: vec![],
        shared_memory: None,
        buffers: vec![],
        args: vec![],
        bytes_per_launch: None,
        flops_per_launch: None,
        iterations: None,
        launches_per_timing: None,
        check: None,
    };
    for node in nodes {
        match node.name().value() {
            "source" => k.source = read(cx, node, kernel_source),
            "entry" => k.entry = read(cx, node, |cx, r| r.req_arg(cx, 0, "a function name", "entry \"saxpy\"")),
            "device" => *device_slot = read(cx, node, crate::dsl::decode::device),
            "compile" => read(cx, node, |cx, r| {
                k.arch = r.prop(cx, "arch");
                k.fast_math = r.prop::<bool>(cx, "fast-math").is_some_and(|b| b.value);
                for d in children(r.node) {
                    if d.name().value() != "define" {
                        cx.unknown_node(d, "`compile`", &["define"]);
                        continue;
                    }
                    let def = read(cx, d, |cx, r| {
                        (r.req_arg::<String>(cx, 0, "a macro name", "define \"N\" \"1024\""), r.arg::<String>(cx, 1))
                    });
                    if let (Some(n), v) = def {
                        k.defines.push((n, v));
                    }
                }
            }),
            "grid" | "block" => {
                let dims = read(cx, node, dims);
                if node.name().value() == "grid" {
                    k.grid = dims
                } else {
                    k.block = dims
                }
            }
            "shared-memory" => {
                k.shared_memory = read(cx, node, |cx, r| r.req_arg::<Bytes>(cx, 0, "a size", "shared-memory \"48KiB\""))
            }
            "buffer" => k.buffers.extend(read(cx, node, buffer)),
            "args" => k.args = read(cx, node, kernel_args),
            "rates" => read(cx, node, |cx, r| {
                k.bytes_per_launch = r.prop(cx, "bytes");
                k.flops_per_launch = r.prop(cx, "flops");
            }),
            "iterations" => k.iterations = read(cx, node, |cx, r| r.req_arg(cx, 0, "a count", "iterations 1000")),
            "launches-per-timing" => {
                k.launches_per_timing = read(cx, node, |cx, r| r.req_arg(cx, 0, "a count", "launches-per-timing 10"))
            }
            "check" => {
                k.check = read(cx, node, |cx, r| {
                    let buffer = r.req_prop(cx, "buffer", "check buffer=\"y\" expect=4.0")?;
                    Some(KernelCheck {
                        buffer,
                        expect: r.prop(cx, "expect"),
                        reference: r.prop(cx, "reference"),
                        tolerance: r.prop(cx, "tolerance"),
                    })
                })
            }
            _ => cx.unknown_node(node, "a kernel workload", KERNEL_NODES),
        }
    }
    k
}

fn kernel_source(cx: &mut Ctx, r: &mut NodeReader) -> Option<KernelSource> {
    let file = r.prop::<String>(cx, "file");
    let inline = r.arg::<String>(cx, 0);
    match (inline, file) {
        (Some(i), Some(f)) => {
            cx.conflict(
                (i.span, "inline source"),
                (f.span, "source file"),
                "a kernel has one source",
                "keep the inline source or file=",
            );
            None
        }
        (Some(i), None) => Some(KernelSource::Inline(i)),
        (None, Some(f)) => Some(KernelSource::File(f)),
        (None, None) if r.has_prop("file") || r.arg_count() > 0 => None,
        (None, None) => {
            let span = r.name_span(cx);
            cx.error(
                Code::MissingOption,
                span,
                "`source` needs CUDA code or a file",
                "empty",
                "write source file=\"kernels/saxpy.cu\" or an inline raw string",
            );
            None
        }
    }
}

fn dims(cx: &mut Ctx, r: &mut NodeReader) -> Vec<Spanned<u32>> {
    let v: Vec<Spanned<u32>> = r.rest_args(cx, 0);
    let span = r.name_span(cx);
    if v.is_empty() || v.len() > 3 {
        cx.error(
            Code::MissingArgument,
            span,
            format!("`{}` takes 1 to 3 dimensions", r.name()),
            "x [y [z]]",
            format!("for example: {} 256", r.name()),
        );
    }
    for d in &v {
        if d.value == 0 {
            cx.error(Code::OutOfRange, d.span, "a dimension must be at least 1", "zero", "use 1 or more");
        }
    }
    v
}

fn buffer(cx: &mut Ctx, r: &mut NodeReader) -> Option<Buffer> {
    let name = r.req_arg(cx, 0, "a name", "buffer \"x\" type=\"f32\" len=1_048_576 init=\"random\"");
    let ty = r.req_prop(cx, "type", "type=\"f32\"");
    let len = r.req_prop(cx, "len", "len=1_048_576");
    let init = r.prop(cx, "init");
    let value = r.prop(cx, "value");
    let seed = r.prop(cx, "seed");
    let init = init.unwrap_or_else(|| Spanned::new(BufferInit::Zeros, r.name_span(cx)));
    if init.value == BufferInit::Constant && value.is_none() {
        cx.error(Code::MissingProperty, init.span, "a constant buffer needs `value`", "no value", "add value=1.0");
    }
    Some(Buffer { name: name?, ty: ty?, len: len?, init, value, seed })
}

/// `args "x" "y" (u32)1048576 (f32)2.0`: strings name buffers, annotated numbers are scalars.
fn kernel_args(cx: &mut Ctx, r: &mut NodeReader) -> Vec<KernelArg> {
    let mut out = vec![];
    for i in 0..r.arg_count() {
        let Some(e) = r.arg_entry(i) else { continue };
        let span = cx.value_span(e);
        match (e.value(), e.ty()) {
            (kdl::KdlValue::String(_), None) => out.extend(cx.decode::<String>(e).map(KernelArg::Buffer)),
            (kdl::KdlValue::Integer(_) | kdl::KdlValue::Float(_), Some(t)) => match ElemType::from_name(t.value()) {
                Some(ty) => {
                    let value = e.value().as_float().or(e.value().as_integer().map(|i| i as f64)).unwrap_or(0.0);
                    out.push(KernelArg::Scalar {
                        ty: Spanned::new(ty, cx.span(t.span())),
                        value: Spanned::new(value, span),
                    });
                }
                None => cx.error(
                    Code::UnknownValue,
                    cx.span(t.span()),
                    format!("`{}` is not a scalar type", t.value()),
                    "unknown type",
                    super::super::suggest::help_for(t.value(), ElemType::NAMES, "element types"),
                ),
            },
            _ => cx.error(
                Code::WrongType,
                span,
                "a kernel argument is a buffer name or a typed scalar",
                "neither",
                "write a buffer name (\"x\") or a scalar with its type, e.g. (u32)1024 or (f32)2.0",
            ),
        }
    }
    out
}

impl KindSpec for Kernel {
    fn check(&self, w: &Workload, diags: &mut Vec<Diagnostic>) {
        let k = self;
        if k.source.is_none() {
            missing(diags, w, "a source", "source file=\"kernels/saxpy.cu\"");
        }
        if k.entry.is_none() {
            missing(diags, w, "an entry point", "entry \"saxpy\"");
        }
        if k.grid.is_empty() || k.block.is_empty() {
            missing(diags, w, "a launch configuration", "grid 4096; block 256");
        }
        if let Some(d) = w.device.as_ref().filter(|d| d.value.kind == DeviceKind::Cpu) {
            diags.push(
                Diagnostic::error(Code::ConflictingOptions, "a kernel workload runs CUDA code and needs a GPU")
                    .with_label(d.span, "CPU device")
                    .with_help(
                        "use device \"cuda:0\" (add fallback=\"cpu\" on the scenario to skip it on machines without a GPU)",
                    ),
            );
        }
        let buffers = crate::dsl::validate::unique(k.buffers.iter().map(|b| &b.name), "buffer", diags);
        let refs = k.args.iter().filter_map(|a| match a {
            KernelArg::Buffer(b) => Some(b),
            KernelArg::Scalar { .. } => None,
        });
        for b in refs.chain(k.check.as_ref().map(|c| &c.buffer)) {
            crate::dsl::validate::lookup(&buffers, b, "buffer", Code::UnknownValue, diags);
        }
    }

    fn summary(&self) -> String {
        let entry = self.entry.as_ref().map(|e| e.value.as_str()).unwrap_or("?");
        let dims = |v: &[Spanned<u32>]| v.iter().map(|d| d.value.to_string()).collect::<Vec<_>>().join("x");
        let src = match &self.source {
            Some(KernelSource::File(f)) => f.value.clone(),
            Some(KernelSource::Inline(_)) => "inline source".into(),
            None => "no source".into(),
        };
        format!(
            "CUDA kernel `{entry}` ({src}), grid {} block {}, {} buffers",
            dims(&self.grid),
            dims(&self.block),
            self.buffers.len()
        )
    }

    /// A kernel's time is what the run measures.
    fn service_time(&self, _: &Estimating) -> Option<(f64, String)> {
        None
    }

    fn tokens_per_request(&self) -> Option<f64> {
        None
    }

    fn setup_steps(&self, _: &Estimating) -> Vec<SetupEstimate> {
        vec![SetupEstimate {
            what: "kernel compile",
            seconds: Some(1.0),
            note: "NVRTC, and the device's peaks the first time".into(),
        }]
    }

    /// A kernel runs on the GPU.
    fn cpu_demand(&self, _: usize, _: usize, _: bool) -> Option<usize> {
        None
    }

    /// No model server to scrape.
    fn server_metrics(&self) -> Option<super::ServerMetrics> {
        None
    }
}
