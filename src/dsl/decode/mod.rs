//! Stage 3, decode: KDL nodes -> typed [`Scenario`]. Every problem is recorded in the
//! [`Ctx`] and decoding goes on, so one `check` shows all errors of a file.

mod expect;
mod phase;
pub(crate) mod workload;

pub use expect::{parse_condition, parse_metric_ref};
pub use phase::{PHASE_NODES, SEARCH_NODES};
pub use workload::{INFERENCE_NODES, KERNEL_NODES, OPENAI_NODES, RETRIEVAL_NODES, SYNTHETIC_NODES};

use kdl::KdlNode;

use super::diag::Code;
use super::model::*;
use super::reader::{children, Ctx, NodeReader};
use super::span::{FileId, Spanned};
use super::units::{Duration, Percent};
use super::value::{FromKdl, ValueError};

/// A body node of the scenario, from the root file or spliced in from an import.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub file: FileId,
    pub node: &'a KdlNode,
}

/// Node names accepted in a scenario body (and at the top level of a module).
pub const BODY_NODES: &[&str] = &[
    "description",
    "seed",
    "device",
    "tags",
    "run-limit",
    "confidence",
    "repeat",
    "host-quiet",
    "param",
    "use",
    "workload",
    "phase",
    "warmup",
    "cooldown",
    "probe",
    "expect",
    "baseline",
    "report",
];

/// Decodes the scenario node's own entries and every body item.
pub fn decode_scenario(cx: &mut Ctx, root_file: FileId, root: &KdlNode, items: &[Item]) -> Scenario {
    cx.file = root_file;
    let mut r = NodeReader::new(root);
    let name = r.req_arg::<String>(cx, 0, "a name", "scenario \"rtx4090\" { ... }");
    let mut sc =
        Scenario { name: name.unwrap_or_else(|| Spanned::new(String::new(), r.name_span(cx))), ..Default::default() };
    sc.description = r.prop(cx, "description");
    sc.seed = r.prop(cx, "seed");
    r.finish(cx);
    for item in items {
        cx.file = item.file;
        decode_item(cx, &mut sc, item.node);
    }
    cx.file = root_file;
    sc
}

fn once<T>(cx: &mut Ctx, slot: &mut Option<Spanned<T>>, value: Option<Spanned<T>>, what: &str) {
    if let Some(v) = value {
        if let Some(prev) = slot {
            let d = super::diag::Diagnostic::error(Code::DuplicateName, format!("`{what}` is given twice"))
                .with_label(v.span, "given again here")
                .with_label(prev.span, "first given here")
                .with_help(format!("keep one `{what}`"));
            cx.push(d);
        }
        *slot = Some(v);
    }
}

fn decode_item(cx: &mut Ctx, sc: &mut Scenario, node: &KdlNode) {
    let mut r = NodeReader::new(node);
    match r.name() {
        "use" | "param" => return, // resolved before decoding (imports, parameters)
        "description" => {
            let v = r.req_arg(cx, 0, "a text", "description \"What this scenario answers\"");
            once(cx, &mut sc.description, v, "description");
        }
        "seed" => {
            let v = r.req_arg(cx, 0, "a number", "seed 42");
            once(cx, &mut sc.seed, v, "seed");
        }
        "device" => {
            let v = device(cx, &mut r);
            once(cx, &mut sc.device, v, "device");
        }
        "tags" => sc.tags.extend(r.rest_args(cx, 0)),
        "run-limit" => {
            let v = r.req_arg(cx, 0, "a duration", "run-limit \"30m\"");
            once(cx, &mut sc.run_limit, v, "run-limit");
        }
        "confidence" => {
            let v = r.req_arg(cx, 0, "a percentage", "confidence \"99%\"");
            once(cx, &mut sc.confidence, v, "confidence");
        }
        "repeat" => {
            let v = r.req_arg(cx, 0, "a count", "repeat 3");
            once(cx, &mut sc.repeat, v, "repeat");
        }
        "host-quiet" => {
            let v = r.req_arg(cx, 0, "a policy", "host-quiet \"invalid\"");
            once(cx, &mut sc.host_quiet, v, "host-quiet");
        }
        "workload" => {
            let before = cx.error_count();
            let w = workload::decode(cx, &mut r);
            r.finish(cx);
            if let Some(mut w) = w {
                w.poisoned = cx.error_count() > before;
                sc.workloads.push(w);
            }
            return;
        }
        "phase" | "warmup" | "cooldown" => {
            let before = cx.error_count();
            let p = phase::decode(cx, &mut r);
            r.finish(cx);
            if let Some(mut p) = p {
                p.poisoned = cx.error_count() > before;
                sc.phases.push(p);
            }
            return;
        }
        "probe" => {
            let kind = r.req_arg(cx, 0, "a probe kind", "probe \"system\" every=\"100ms\"");
            let every = r.prop(cx, "every");
            if let Some(kind) = kind {
                sc.probes.push(Probe { kind, every });
            }
        }
        "expect" => {
            if let Some(e) = expect::decode(cx, &mut r) {
                sc.expectations.push(e);
            }
        }
        "baseline" => {
            let b = baseline(cx, &mut r);
            if let (Some(b), Some(prev)) = (&b, &sc.baseline) {
                cx.push(
                    super::diag::Diagnostic::error(Code::DuplicateName, "`baseline` is given twice")
                        .with_label(b.path.span, "given again here")
                        .with_label(prev.path.span, "first given here")
                        .with_help("a scenario compares against one baseline"),
                );
            }
            if b.is_some() {
                sc.baseline = b;
            }
        }
        "report" => sc.report = Some(report(cx, &mut r)),
        _ => {
            cx.unknown_node(node, "the scenario", BODY_NODES);
            return;
        }
    }
    r.finish(cx);
}

/// `device "cuda:0" fallback="cpu"`
pub(crate) fn device(cx: &mut Ctx, r: &mut NodeReader) -> Option<Spanned<Device>> {
    let text = r.req_arg::<String>(cx, 0, "a device", "device \"cuda:0\"")?;
    let fallback = r.prop::<String>(cx, "fallback");
    let kind = match parse_device(&text.value) {
        Ok(k) => k,
        Err(e) => {
            cx.error(e.code, text.span, e.message, "not a device", e.help);
            return None;
        }
    };
    let fallback_cpu = match fallback {
        Some(f) if f.value == "cpu" => true,
        Some(f) => {
            cx.error(
                Code::UnknownValue,
                f.span,
                format!("cannot fall back to `{}`", f.value),
                "not a fallback",
                "the only fallback is \"cpu\"",
            );
            false
        }
        None => false,
    };
    Some(Spanned::new(Device { kind, fallback_cpu }, text.span))
}

pub fn parse_device(text: &str) -> Result<DeviceKind, ValueError> {
    let help = "expected \"cpu\", \"cuda\" or \"cuda:N\" (e.g. \"cuda:0\")";
    match text {
        "cpu" => Ok(DeviceKind::Cpu),
        "cuda" | "gpu" => Ok(DeviceKind::Cuda { index: 0 }),
        t => match t.strip_prefix("cuda:").map(|n| n.parse::<u32>()) {
            Some(Ok(index)) => Ok(DeviceKind::Cuda { index }),
            _ => Err(ValueError::new(Code::UnknownValue, format!("`{t}` is not a device"), help)),
        },
    }
}

fn baseline(cx: &mut Ctx, r: &mut NodeReader) -> Option<Baseline> {
    let path = r.req_arg::<String>(cx, 0, "a result file", "baseline \"baseline/rtx4090.json\" tolerance=\"5%\"");
    let tolerance = r.prop::<Percent>(cx, "tolerance");
    let mut overrides = vec![];
    for child in children(r.node) {
        let mut c = NodeReader::new(child);
        if c.name() != "tolerance" {
            cx.unknown_node(child, "`baseline`", &["tolerance"]);
            continue;
        }
        let metric = c.req_arg::<String>(cx, 0, "a metric", "tolerance \"chat.ttft.p95\" \"10%\"");
        let value = c.req_arg::<Percent>(cx, 1, "a tolerance", "tolerance \"chat.ttft.p95\" \"10%\"");
        c.finish(cx);
        if let (Some(m), Some(v)) = (metric, value) {
            if let Some(m) = expect::metric_ref(cx, &m) {
                overrides.push((m, v));
            }
        }
    }
    Some(Baseline { path: path?, tolerance, overrides })
}

fn report(cx: &mut Ctx, r: &mut NodeReader) -> ReportOutputs {
    let mut out = ReportOutputs::default();
    for child in children(r.node) {
        let mut c = NodeReader::new(child);
        let slot = match c.name() {
            "json" => &mut out.json,
            "html" => &mut out.html,
            "junit" => &mut out.junit,
            "markdown" => &mut out.markdown,
            _ => {
                cx.unknown_node(child, "`report`", &["json", "html", "junit", "markdown"]);
                continue;
            }
        };
        let v = c.req_arg(cx, 0, "a file path", "junit \"out/junit.xml\"");
        c.finish(cx);
        let what = child.name().value().to_string();
        once(cx, slot, v, &what);
    }
    out
}

/// Decodes a `param` node (done before the body, since the body refers to parameters).
pub fn decode_param(cx: &mut Ctx, node: &KdlNode) -> Option<ParamDecl> {
    let mut r = NodeReader::new(node);
    let name = r.req_arg::<String>(cx, 0, "a name", "param \"duration\" type=\"duration\" default=\"60s\"");
    let ty = r.req_prop::<ParamType>(cx, "type", "type=\"duration\"");
    let default = r.prop_entry(cx, "default").and_then(|e| {
        let raw = cx.raw(e)?;
        Some(Spanned::new(raw.value.into_owned(), raw.span))
    });
    let description = r.prop(cx, "description");
    r.finish(cx);
    let (name, ty) = (name?, ty?);
    if let Some(d) = &default {
        if let Err(e) = check_param_value(ty.value, &d.value) {
            cx.error(e.code, d.span, e.message, format!("not a valid {}", ty.value), e.help);
        }
    }
    if !name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') || name.value.is_empty() {
        cx.error(
            Code::InvalidName,
            name.span,
            "parameter names use letters, digits, `_` and `-`",
            "invalid name",
            "rename the parameter, e.g. \"steady_duration\"",
        );
    }
    Some(ParamDecl { name, ty, default, description })
}

/// Checks that a value fits a parameter's declared type.
pub fn check_param_value(ty: ParamType, v: &kdl::KdlValue) -> Result<(), ValueError> {
    use super::units::{Bytes, Range, Rate};
    match ty {
        ParamType::String => String::from_kdl(v, None).map(drop),
        ParamType::Int => i64::from_kdl(v, None).map(drop),
        ParamType::Float => f64::from_kdl(v, None).map(drop),
        ParamType::Bool => bool::from_kdl(v, None).map(drop),
        ParamType::Duration => Duration::from_kdl(v, None).map(drop),
        ParamType::Rate => Rate::from_kdl(v, None).map(drop),
        ParamType::Size => Bytes::from_kdl(v, None).map(drop),
        ParamType::Percent => Percent::from_kdl(v, None).map(drop),
        ParamType::Range => match v {
            kdl::KdlValue::String(s) if s.contains("..") => Ok(()),
            _ => Range::<u64>::from_kdl(v, None).map(drop),
        },
    }
}

/// Whether a name is an aggregation (`p95`, `mean`, ...), for better "unknown metric" help.
pub fn is_aggregation_name(s: &str) -> bool {
    expect::is_aggregation(s)
}
