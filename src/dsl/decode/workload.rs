//! Decoding `workload` nodes: inference, retrieval, kernel and synthetic option sets.

use kdl::KdlNode;

use super::super::diag::{Code, Diagnostic};
use super::super::model::*;
use super::super::reader::{children, Ctx, NodeReader};
use super::super::span::Spanned;
use super::super::units::{Bytes, Duration, Percent, Range};
use super::device;

pub fn decode(cx: &mut Ctx, r: &mut NodeReader) -> Option<Workload> {
    let name = r.req_arg::<String>(cx, 0, "a name", "workload \"chat\" kind=\"inference\" { ... }");
    let kind = r.req_prop::<WorkloadKind>(cx, "kind", "kind=\"inference\"");
    let device_prop = r.prop::<String>(cx, "device");
    let mut device = device_prop.and_then(|d| match super::parse_device(&d.value) {
        Ok(kind) => Some(Spanned::new(Device { kind, fallback_cpu: false }, d.span)),
        Err(e) => {
            cx.error(e.code, d.span, e.message, "not a device", e.help);
            None
        }
    });
    let kind = kind?;
    let nodes = children(r.node);
    let spec = match kind.value {
        WorkloadKind::Inference => WorkloadSpec::Inference(inference(cx, nodes, &mut device)),
        WorkloadKind::Retrieval => WorkloadSpec::Retrieval(retrieval(cx, nodes)),
        WorkloadKind::Kernel => WorkloadSpec::Kernel(kernel(cx, nodes, &mut device)),
        WorkloadKind::Synthetic => WorkloadSpec::Synthetic(synthetic(cx, nodes)),
        WorkloadKind::Openai => WorkloadSpec::Openai(openai(cx, nodes)),
    };
    Some(Workload { poisoned: false, name: name?, kind, device, spec })
}

/// Runs `f` on a child node's reader and reports leftover entries afterwards.
fn read<T>(cx: &mut Ctx, node: &KdlNode, f: impl FnOnce(&mut Ctx, &mut NodeReader) -> T) -> T {
    let mut r = NodeReader::new(node);
    let out = f(cx, &mut r);
    r.finish(cx);
    out
}

pub const INFERENCE_NODES: &[&str] = &["model", "device", "prompt", "output", "batch", "warmup", "slo"];

fn inference(cx: &mut Ctx, nodes: &[KdlNode], device_slot: &mut Option<Spanned<Device>>) -> Inference {
    let mut inf = Inference {
        model: None,
        prompt: None,
        output_tokens: None,
        ignore_eos: true,
        batch: vec![],
        warmup_requests: None,
        slo: Slo::default(),
    };
    for node in nodes {
        match node.name().value() {
            "model" => inf.model = read(cx, node, model),
            "device" => *device_slot = read(cx, node, device),
            "prompt" => inf.prompt = read(cx, node, prompt),
            "output" => read(cx, node, |cx, r| {
                inf.output_tokens = r.req_prop(cx, "tokens", "output tokens=128");
                if let Some(b) = r.prop::<bool>(cx, "ignore-eos") {
                    inf.ignore_eos = b.value;
                }
            }),
            "batch" => read(cx, node, |cx, r| {
                inf.batch = r.rest_args(cx, 0);
                if inf.batch.is_empty() {
                    let span = r.name_span(cx);
                    cx.error(
                        Code::MissingArgument,
                        span,
                        "`batch` needs at least one batch size",
                        "no sizes",
                        "for example: batch 1 4 8 16",
                    );
                }
                for b in &inf.batch {
                    if b.value == 0 {
                        cx.error(Code::OutOfRange, b.span, "a batch size must be at least 1", "zero", "use 1 or more");
                    }
                }
            }),
            "warmup" => inf.warmup_requests = read(cx, node, |cx, r| r.req_prop(cx, "requests", "warmup requests=4")),
            "slo" => inf.slo = read(cx, node, slo),
            _ => cx.unknown_node(node, "an inference workload", INFERENCE_NODES),
        }
    }
    inf
}

/// `slo ttft="200ms" itl="50ms" tpot= e2e=`: per-request bounds for goodput.
fn slo(cx: &mut Ctx, r: &mut NodeReader) -> Slo {
    Slo { ttft: r.prop(cx, "ttft"), itl: r.prop(cx, "itl"), tpot: r.prop(cx, "tpot"), e2e: r.prop(cx, "e2e") }
}

const MODEL_SOURCES: &[&str] = &["gguf", "safetensors", "hf", "synthetic"];

/// `model synthetic="gpt2-medium" dtype="f16"` and its siblings: exactly one source.
fn model(cx: &mut Ctx, r: &mut NodeReader) -> Option<Model> {
    let gguf = r.prop::<String>(cx, "gguf");
    let safetensors = r.prop::<String>(cx, "safetensors");
    let hf = r.prop::<String>(cx, "hf");
    let synthetic = r.prop::<SyntheticArch>(cx, "synthetic");
    let revision = r.prop::<String>(cx, "revision");
    let file = r.prop::<String>(cx, "file");
    let dtype = r.prop(cx, "dtype");
    let tokenizer = r.prop(cx, "tokenizer");
    let fallback = r.prop::<SyntheticArch>(cx, "fallback-synthetic");
    let mut sources: Vec<Spanned<ModelSource>> = vec![];
    if let Some(p) = gguf {
        sources.push(p.map(|path| ModelSource::Gguf { path }));
    }
    if let Some(p) = safetensors {
        sources.push(p.map(|path| ModelSource::Safetensors { path }));
    }
    if let Some(p) = hf {
        let (rev, f) = (revision.map(|x| x.value), file.map(|x| x.value));
        sources.push(p.map(|repo| ModelSource::Hf { repo, revision: rev, file: f }));
    } else if let Some(x) = revision.as_ref().or(file.as_ref()) {
        cx.error(
            Code::ConflictingOptions,
            x.span,
            "`revision` and `file` only apply to `hf` models",
            "needs hf=\"org/name\"",
            "add hf=\"org/name\" or remove this property",
        );
    }
    if let Some(a) = synthetic {
        if let Some(f) = &fallback {
            cx.error(
                Code::ConflictingOptions,
                f.span,
                "a synthetic model needs no fallback",
                "not needed",
                "`fallback-synthetic` goes with gguf= or safetensors=: remove it",
            );
        }
        sources.push(a.map(|arch| ModelSource::Synthetic { arch }));
    }
    if sources.len() > 1 {
        cx.conflict(
            (sources[0].span, "one source"),
            (sources[1].span, "another source"),
            "a model has exactly one source",
            "keep one of gguf=, safetensors=, hf= or synthetic=",
        );
    }
    if sources.is_empty() && MODEL_SOURCES.iter().any(|k| r.has_prop(k)) {
        return None;
    }
    if sources.is_empty() {
        let span = r.name_span(cx);
        cx.error(
            Code::MissingOption,
            span,
            "`model` needs a source",
            "no source",
            format!("add one of {}, e.g. model synthetic=\"gpt2-medium\"", MODEL_SOURCES.join(", ")),
        );
        return None;
    }
    let source = sources.swap_remove(0);
    if let (Some(f), ModelSource::Hf { .. }) = (&fallback, &source.value) {
        cx.error(
            Code::ConflictingOptions,
            f.span,
            "`fallback-synthetic` applies to model files (gguf=, safetensors=), not to hub models",
            "with hf=",
            "name the downloaded file with gguf= or safetensors=, or remove the fallback",
        );
    }
    Some(Model { source, dtype, tokenizer, fallback })
}

/// `prompt tokens=128` | `prompt tokens="32..512"` | `prompt tokens=256 stddev=64` | `prompt file="p.jsonl"`
fn prompt(cx: &mut Ctx, r: &mut NodeReader) -> Option<Prompt> {
    let file = r.prop::<String>(cx, "file");
    let format = r.prop(cx, "format");
    let stddev = r.prop::<u64>(cx, "stddev");
    let tokens_entry = r.prop_entry(cx, "tokens");
    let tokens: Option<Spanned<TokenDist>> = tokens_entry.and_then(|e| {
        let raw = cx.raw(e)?;
        let dist = match (&*raw.value, &stddev) {
            (kdl::KdlValue::String(s), _) if s.contains("..") => {
                let range = cx.decode_raw::<Range<u64>>(&raw)?;
                if stddev.is_some() {
                    cx.error(
                        Code::ConflictingOptions,
                        raw.span,
                        "a token range cannot have a `stddev`",
                        "range",
                        "give a mean (tokens=256) with stddev, or a range without",
                    );
                }
                TokenDist::Uniform { min: range.lo, max: range.hi }
            }
            (_, Some(sd)) => TokenDist::Normal { mean: cx.decode_raw::<u64>(&raw)?.value, stddev: sd.value },
            _ => TokenDist::Fixed { tokens: cx.decode_raw::<u64>(&raw)?.value },
        };
        Some(Spanned::new(dist, raw.span))
    });
    match (file, tokens) {
        (Some(path), t) => {
            let range = t.and_then(|t| match t.value {
                TokenDist::Uniform { min, max } => Some(Spanned::new(Range { lo: min, hi: max }, t.span)),
                _ => {
                    cx.error(
                        Code::ConflictingOptions,
                        t.span,
                        "with a prompt file, `tokens` filters by a range",
                        "not a range",
                        "write tokens=\"32..512\" to keep prompts of that length",
                    );
                    None
                }
            });
            Some(Prompt::File { path, format, tokens: range })
        }
        (None, Some(t)) => Some(Prompt::Synthetic(t)),
        (None, None) if r.has_prop("tokens") || r.has_prop("file") => None,
        (None, None) => {
            let span = r.name_span(cx);
            cx.error(
                Code::MissingOption,
                span,
                "`prompt` needs `tokens` or `file`",
                "no prompt source",
                "for example: prompt tokens=\"32..512\"",
            );
            None
        }
    }
}

pub const RETRIEVAL_NODES: &[&str] = &["index", "data", "query", "ef-sweep", "ground-truth", "cache"];

fn retrieval(cx: &mut Ctx, nodes: &[KdlNode]) -> Retrieval {
    let mut ret = Retrieval { index: None, data: None, query: None, ground_truth: true, cache_dir: None, cache: true };
    let mut sweep: Vec<Spanned<u32>> = vec![];
    for node in nodes {
        match node.name().value() {
            "index" => ret.index = read(cx, node, index),
            "data" => ret.data = read(cx, node, data),
            "query" => {
                ret.query = Some(read(cx, node, |cx, r| Query {
                    top_k: r.prop(cx, "top-k"),
                    ef: r.prop(cx, "ef").into_iter().collect(),
                    count: r.prop(cx, "count"),
                    source: r.prop(cx, "source"),
                    file: r.prop(cx, "file"),
                    noise: r.prop(cx, "noise"),
                }))
            }
            "ef-sweep" => sweep = read(cx, node, |cx, r| r.rest_args(cx, 0)),
            "ground-truth" => read(cx, node, |cx, r| {
                if let Some(b) = r.prop::<bool>(cx, "enabled") {
                    ret.ground_truth = b.value;
                }
            }),
            "cache" => read(cx, node, |cx, r| {
                ret.cache_dir = r.prop(cx, "dir");
                if let Some(b) = r.prop::<bool>(cx, "enabled") {
                    ret.cache = b.value;
                }
            }),
            _ => cx.unknown_node(node, "a retrieval workload", RETRIEVAL_NODES),
        }
    }
    if !sweep.is_empty() {
        ef_sweep_lints(cx, ret.query.as_ref().and_then(|q| q.ef.first()), &sweep);
        let q = ret.query.get_or_insert(Query {
            top_k: None,
            ef: vec![],
            count: None,
            source: None,
            file: None,
            noise: None,
        });
        q.ef.extend(sweep);
    }
    ret
}

/// The requests' ef against the sweep: a value the sweep repeats is measured once, and
/// requests at an ef the sweep does not list are measured first, before the listed values.
fn ef_sweep_lints(cx: &mut Ctx, query_ef: Option<&Spanned<u32>>, sweep: &[Spanned<u32>]) {
    for (i, e) in sweep.iter().enumerate() {
        if let Some(first) = sweep[..i].iter().find(|x| x.value == e.value) {
            let d = Diagnostic::warning(Code::EfSweep, format!("ef {} is listed twice in the sweep", e.value))
                .with_label(e.span, "again here")
                .with_label(first.span, "first here")
                .with_help("each ef is measured once; remove the repeat");
            cx.push(d);
        }
    }
    let Some(q) = query_ef else { return };
    let mut listed: Vec<String> = vec![];
    for e in sweep.iter().map(|e| e.value.to_string()) {
        if !listed.contains(&e) {
            listed.push(e);
        }
    }
    if sweep.iter().any(|e| e.value == q.value) {
        return;
    }
    let d = Diagnostic::warning(
        Code::EfSweep,
        format!("the requests run at ef {}, which the sweep ({}) does not list", q.value, listed.join(", ")),
    )
    .with_label(q.span, "the phases' ef")
    .with_label(sweep[0].span, "the sweep")
    .with_help(format!(
        "the sweep measures ef {} first, then its own values; add {} to `ef-sweep`, or drop `ef=` from `query` to run the phases at the sweep's first value ({})",
        q.value, q.value, sweep[0].value
    ));
    cx.push(d);
}

fn index(cx: &mut Ctx, r: &mut NodeReader) -> Option<Index> {
    let kind = r.req_arg(cx, 0, "an index kind", "index \"hnsw\" entries=1_000_000 dim=384");
    let idx = Index {
        kind: kind?,
        backend: r.prop(cx, "backend"),
        entries: r.req_prop(cx, "entries", "entries=1_000_000")?,
        dim: r.req_prop(cx, "dim", "dim=384")?,
        metric: r.prop(cx, "metric"),
        m: r.prop(cx, "m"),
        ef_construction: r.prop(cx, "ef-construction"),
        max_layers: r.prop(cx, "max-layers"),
        extend_candidates: r.prop(cx, "extend-candidates"),
        keep_pruned: r.prop(cx, "keep-pruned"),
        level_scale: r.prop(cx, "level-scale"),
        quantization: r.prop(cx, "quantization"),
    };
    let usearch = idx.backend.as_ref().is_some_and(|b| b.value == IndexBackend::Usearch);
    if let Some(q) = idx.quantization.as_ref().filter(|_| !usearch) {
        cx.error(
            Code::ConflictingOptions,
            q.span,
            "`quantization` applies only to the usearch backend (hnsw_rs and flat indexes store f32)",
            "needs backend=\"usearch\"",
            "add backend=\"usearch\" to this index, or remove `quantization`",
        );
    }
    let cosine = idx.metric.as_ref().is_some_and(|m| m.value == DistanceMetric::Cosine);
    if let Some(q) = idx.quantization.as_ref().filter(|q| usearch && q.value == Quantization::I8 && !cosine) {
        let mut d = Diagnostic::error(
            Code::ConflictingOptions,
            "usearch's `i8` keeps only each vector's direction, so only cosine distances survive it",
        );
        d = match &idx.metric {
            Some(m) => d
                .with_label(q.span, "scales every vector to unit length")
                .with_label(m.span, "distances on the vectors as given"),
            None => d.with_label(q.span, "scales every vector to unit length; the metric is l2 (the default)"),
        };
        cx.push(d.with_help("use metric=\"cosine\", or quantization=\"f16\" or \"bf16\" to keep magnitudes"));
    }
    if usearch {
        let hnsw_rs_only = [
            idx.max_layers.as_ref().map(|x| (x.span, "max-layers")),
            idx.extend_candidates.as_ref().map(|x| (x.span, "extend-candidates")),
            idx.keep_pruned.as_ref().map(|x| (x.span, "keep-pruned")),
            idx.level_scale.as_ref().map(|x| (x.span, "level-scale")),
        ];
        for (span, name) in hnsw_rs_only.into_iter().flatten() {
            cx.push(
                Diagnostic::warning(
                    Code::ConflictingOptions,
                    format!("`{name}` is an hnsw_rs build option; usearch ignores it"),
                )
                .with_label(span, "no effect with backend=\"usearch\"")
                .with_help(format!("remove `{name}`, or use backend=\"hnsw_rs\"")),
            );
        }
    }
    if idx.entries.value == 0 {
        cx.error(Code::OutOfRange, idx.entries.span, "`entries` must be at least 1", "zero", "use a positive number");
    }
    if idx.dim.value == 0 {
        cx.error(Code::OutOfRange, idx.dim.span, "`dim` must be at least 1", "zero", "use a positive number");
    }
    Some(idx)
}

/// `data synthetic clusters=1000` | `data file="vectors.npy"` | `data text="corpus.txt" model="..."`
fn data(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<DataSource>> {
    let file = r.prop::<String>(cx, "file");
    let text = r.prop::<String>(cx, "text");
    let model = r.prop(cx, "model");
    let clusters = r.prop(cx, "clusters");
    let spread = r.prop(cx, "spread");
    let kw = r.arg::<String>(cx, 0);
    if let Some(k) = &kw {
        if k.value != "synthetic" {
            cx.error(
                Code::UnknownValue,
                k.span,
                format!("`{}` is not a data source", k.value),
                "unknown",
                "write `data synthetic ...`, `data file=\"...\"` or `data text=\"...\"`",
            );
        }
    }
    let span = r.name_span(cx);
    match (file, text) {
        (Some(f), Some(t)) => {
            cx.conflict(
                (f.span, "vectors from a file"),
                (t.span, "vectors embedded from text"),
                "vectors come from one source",
                "keep file= or text=",
            );
            None
        }
        (Some(path), None) => Some(Spanned::new(DataSource::File { path }, span)),
        (None, Some(corpus)) => Some(Spanned::new(DataSource::Text { corpus, model }, span)),
        (None, None) => Some(Spanned::new(DataSource::Synthetic { clusters, spread }, span)),
    }
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

fn kernel(cx: &mut Ctx, nodes: &[KdlNode], device_slot: &mut Option<Spanned<Device>>) -> Kernel {
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
            "device" => *device_slot = read(cx, node, device),
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

pub const OPENAI_NODES: &[&str] = &[
    "endpoint",
    "api-key",
    "header",
    "tokenizer",
    "prompt",
    "prefix",
    "output",
    "sampling",
    "connections",
    "tls",
    "token-check",
    "slo",
];

fn openai(cx: &mut Ctx, nodes: &[KdlNode]) -> Openai {
    let mut o = Openai {
        endpoint: None,
        api_key_env: None,
        headers: vec![],
        tokenizer: None,
        prompt: None,
        prefix: Spanned::new(PromptPrefix::Unique, super::super::span::Span::default()),
        output_tokens: None,
        min_tokens: None,
        ignore_eos: None,
        temperature: None,
        sampling_seed: None,
        extra_body: None,
        connections: None,
        tls_ca: None,
        mismatch: None,
        on_mismatch: MismatchAction::Warn,
        slo: Slo::default(),
    };
    for node in nodes {
        match node.name().value() {
            "endpoint" => o.endpoint = read(cx, node, endpoint),
            "api-key" => {
                o.api_key_env = read(cx, node, |cx, r| r.req_prop(cx, "env", "api-key env=\"OPENAI_API_KEY\""))
            }
            "header" => {
                if let Some(h) = read(cx, node, |cx, r| {
                    let name = r.req_arg::<String>(cx, 0, "a header name", "header \"X-Team\" \"ml-infra\"");
                    let value = r.req_arg::<String>(cx, 1, "a header value", "header \"X-Team\" \"ml-infra\"");
                    Some((name?, value?))
                }) {
                    o.headers.push(h);
                }
            }
            "tokenizer" => o.tokenizer = read(cx, node, tokenizer_source),
            "prompt" => o.prompt = read(cx, node, prompt),
            "prefix" => {
                if let Some(p) = read(cx, node, prefix) {
                    o.prefix = p;
                }
            }
            "output" => read(cx, node, |cx, r| {
                o.output_tokens = r.req_prop(cx, "tokens", "output tokens=128");
                o.min_tokens = r.prop(cx, "min-tokens");
                o.ignore_eos = r.prop(cx, "ignore-eos");
                if let (Some(min), Some(max)) = (&o.min_tokens, &o.output_tokens) {
                    if min.value > max.value {
                        cx.error(
                            Code::InvalidRange,
                            min.span,
                            "`min-tokens` is above `tokens`",
                            "above the maximum",
                            "make min-tokens at most tokens",
                        );
                    }
                }
            }),
            "sampling" => read(cx, node, |cx, r| {
                o.temperature = r.prop(cx, "temperature");
                o.sampling_seed = r.prop(cx, "seed");
                o.extra_body = r.prop::<String>(cx, "extra").and_then(|x| json_object(cx, x));
                if let Some(t) = o.temperature.as_ref().filter(|t| !(t.value >= 0.0 && t.value.is_finite())) {
                    cx.error(
                        Code::OutOfRange,
                        t.span,
                        "a temperature cannot be negative",
                        "negative",
                        "use 0 for greedy decoding",
                    );
                }
            }),
            "connections" => {
                o.connections = read(cx, node, |cx, r| {
                    let n = r.req_arg::<u64>(cx, 0, "a connection count", "connections 64")?;
                    if n.value == 0 {
                        cx.error(
                            Code::OutOfRange,
                            n.span,
                            "at least one connection is needed",
                            "zero",
                            "use 1 or more",
                        );
                        return None;
                    }
                    Some(n)
                })
            }
            "tls" => o.tls_ca = read(cx, node, |cx, r| r.req_prop(cx, "ca", "tls ca=\"certs/internal-ca.pem\"")),
            "token-check" => read(cx, node, |cx, r| {
                o.mismatch = r.req_prop::<Percent>(cx, "mismatch", "token-check mismatch=\"5%\" action=\"warn\"");
                if let Some(a) = r.prop::<MismatchAction>(cx, "action") {
                    o.on_mismatch = a.value;
                }
            }),
            "slo" => o.slo = read(cx, node, slo),
            _ => cx.unknown_node(node, "an openai workload", OPENAI_NODES),
        }
    }
    o
}

/// `extra=#"{"top_k": 1}"#`: request-body fields, which must form a JSON object.
fn json_object(cx: &mut Ctx, x: Spanned<String>) -> Option<Spanned<serde_json::Map<String, serde_json::Value>>> {
    let (message, label) = match serde_json::from_str::<serde_json::Value>(&x.value) {
        Ok(serde_json::Value::Object(m)) => return Some(Spanned::new(m, x.span)),
        Ok(_) => ("`extra` must be a JSON object".to_string(), "not an object"),
        Err(e) => (format!("`extra` is not valid JSON: {e}"), "not JSON"),
    };
    let help = "give the extra request-body fields as a JSON object, e.g. extra=#\"{\"top_k\": 1}\"#";
    cx.error(Code::WrongType, x.span, message, label, help);
    None
}

/// `endpoint "http://127.0.0.1:8000/v1" model="NAME" api="chat" stream=#true timeout="60s"`
fn endpoint(cx: &mut Ctx, r: &mut NodeReader) -> Option<Endpoint> {
    let url = r.req_arg::<String>(cx, 0, "a base URL", "endpoint \"http://127.0.0.1:8000/v1\" model=\"NAME\"");
    let model = r.req_prop::<String>(cx, "model", "model=\"NAME\"");
    let api = r.prop::<OpenaiApi>(cx, "api").map_or(OpenaiApi::Chat, |a| a.value);
    let stream = r.prop::<bool>(cx, "stream").is_none_or(|s| s.value);
    let timeout = r.prop(cx, "timeout");
    let url = url?;
    let lower = url.value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        cx.error(
            Code::UnknownValue,
            url.span,
            format!("`{}` is not an http:// or https:// URL", url.value),
            "not a URL",
            "give the server's base URL, for example http://127.0.0.1:8000/v1",
        );
        return None;
    }
    Some(Endpoint { url, model: model?, api, stream, timeout })
}

/// `tokenizer file="tokenizer.json"` | `tokenizer gguf="model.gguf"` | `tokenizer hf="org/name"`
fn tokenizer_source(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<TokenizerSource>> {
    let mut found: Vec<Spanned<TokenizerSource>> = vec![];
    if let Some(p) = r.prop::<String>(cx, "file") {
        found.push(p.map(|path| TokenizerSource::File { path }));
    }
    if let Some(p) = r.prop::<String>(cx, "gguf") {
        found.push(p.map(|path| TokenizerSource::Gguf { path }));
    }
    if let Some(p) = r.prop::<String>(cx, "hf") {
        found.push(p.map(|repo| TokenizerSource::Hf { repo }));
    }
    if found.len() > 1 {
        cx.conflict(
            (found[0].span, "one source"),
            (found[1].span, "another source"),
            "a tokenizer has exactly one source",
            "keep one of file=, gguf= or hf=",
        );
    }
    if found.is_empty() && !["file", "gguf", "hf"].iter().any(|k| r.has_prop(k)) {
        let span = r.name_span(cx);
        cx.error(
            Code::MissingOption,
            span,
            "`tokenizer` needs a source",
            "no source",
            "add one of file=\"tokenizer.json\", gguf=\"model.gguf\" or hf=\"org/name\"",
        );
    }
    (!found.is_empty()).then(|| found.swap_remove(0))
}

/// `prefix "unique"` | `prefix "shared" tokens=64` | `prefix "as-drawn"`
fn prefix(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<PromptPrefix>> {
    let mode = r.req_arg::<String>(cx, 0, "a prefix mode", "prefix \"unique\"")?;
    let p = match mode.value.as_str() {
        "unique" => PromptPrefix::Unique,
        "as-drawn" => PromptPrefix::AsDrawn,
        "shared" => {
            let t = r.req_prop::<u64>(cx, "tokens", "prefix \"shared\" tokens=64")?;
            if t.value == 0 {
                cx.error(Code::OutOfRange, t.span, "a shared prefix needs at least one token", "zero", "use 1 or more");
                return None;
            }
            PromptPrefix::Shared { tokens: t.value }
        }
        other => {
            let help = super::super::suggest::help_for(other, &["unique", "shared", "as-drawn"], "prefix modes");
            cx.error(Code::UnknownValue, mode.span, format!("`{other}` is not a prefix mode"), "unknown mode", help);
            return None;
        }
    };
    Some(Spanned::new(p, mode.span))
}

pub const SYNTHETIC_NODES: &[&str] = &["latency", "cpu-work", "errors", "tokens"];
const DISTRIBUTIONS: &[&str] = &["fixed", "uniform", "normal", "lognormal", "pareto"];

fn synthetic(cx: &mut Ctx, nodes: &[KdlNode]) -> Synthetic {
    let mut s = Synthetic { latency: None, cpu_work: None, error_probability: None, tokens: None };
    for node in nodes {
        match node.name().value() {
            "latency" => s.latency = read(cx, node, latency),
            "cpu-work" => s.cpu_work = read(cx, node, |cx, r| r.req_arg(cx, 0, "a duration", "cpu-work \"1ms\"")),
            "errors" => {
                s.error_probability = read(cx, node, |cx, r| {
                    let p = r.req_prop::<Percent>(cx, "probability", "errors probability=\"1%\"")?;
                    if p.value.0 > 1.0 {
                        cx.error(
                            Code::OutOfRange,
                            p.span,
                            "a probability cannot exceed 100%",
                            "over 100%",
                            "use a value between 0% and 100%",
                        );
                    }
                    Some(p)
                })
            }
            "tokens" => {
                s.tokens = read(cx, node, |cx, r| {
                    let count = r.req_prop(cx, "count", "tokens count=64 gap=\"5ms\"");
                    let gap = r.req_prop(cx, "gap", "gap=\"5ms\"");
                    Some((count?, gap?))
                })
            }
            _ => cx.unknown_node(node, "a synthetic workload", SYNTHETIC_NODES),
        }
    }
    s
}

/// `latency "lognormal" median="20ms" sigma=0.5` and the other distributions.
fn latency(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<LatencyDist>> {
    let kind = r.req_arg::<String>(cx, 0, "a distribution", "latency \"lognormal\" median=\"20ms\" sigma=0.5")?;
    let mut d = |name: &'static str, ex: &str| r.req_prop::<Duration>(cx, name, ex).map(|v| v.value);
    let dist = match kind.value.as_str() {
        "fixed" => LatencyDist::Fixed { value: d("value", "value=\"10ms\"")? },
        "uniform" => {
            let (min, max) = (d("min", "min=\"5ms\""), d("max", "max=\"15ms\""));
            let (min, max) = (min?, max?);
            if min > max {
                cx.error(Code::InvalidRange, kind.span, "`min` is above `max`", "empty range", "swap min and max");
            }
            LatencyDist::Uniform { min, max }
        }
        "normal" => {
            let (mean, stddev) = (d("mean", "mean=\"10ms\""), d("stddev", "stddev=\"2ms\""));
            LatencyDist::Normal { mean: mean?, stddev: stddev? }
        }
        "lognormal" => {
            let median = d("median", "median=\"20ms\"");
            let sigma = positive(cx, r, "sigma", "sigma=0.5");
            LatencyDist::Lognormal { median: median?, sigma: sigma? }
        }
        "pareto" => {
            let scale = d("scale", "scale=\"5ms\"");
            let shape = positive(cx, r, "shape", "shape=2.5");
            LatencyDist::Pareto { scale: scale?, shape: shape? }
        }
        other => {
            let help = super::super::suggest::help_for(other, DISTRIBUTIONS, "distributions");
            cx.error(
                Code::UnknownValue,
                kind.span,
                format!("`{other}` is not a latency distribution"),
                "unknown distribution",
                help,
            );
            return None;
        }
    };
    Some(Spanned::new(dist, kind.span))
}

fn positive(cx: &mut Ctx, r: &mut NodeReader, name: &'static str, ex: &str) -> Option<f64> {
    let v = r.req_prop::<f64>(cx, name, ex)?;
    if v.value <= 0.0 {
        cx.error(
            Code::OutOfRange,
            v.span,
            format!("`{name}` must be greater than 0"),
            "not positive",
            format!("for example: {ex}"),
        );
        return None;
    }
    Some(v.value)
}
