//! Decoding `workload` nodes: inference, retrieval, kernel and synthetic option sets.

use kdl::KdlNode;

use super::super::diag::Code;
use super::super::model::*;
use super::super::reader::{children, Ctx, NodeReader};
use super::super::span::Spanned;
use super::super::units::Range;
use crate::dsl::kinds;

pub use crate::dsl::kinds::inference::INFERENCE_NODES;
pub use crate::dsl::kinds::kernel::KERNEL_NODES;
pub use crate::dsl::kinds::openai::OPENAI_NODES;
pub use crate::dsl::kinds::retrieval::RETRIEVAL_NODES;
pub use crate::dsl::kinds::synthetic::SYNTHETIC_NODES;

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
        WorkloadKind::Inference => WorkloadSpec::Inference(kinds::inference::decode(cx, nodes, &mut device)),
        WorkloadKind::Retrieval => WorkloadSpec::Retrieval(kinds::retrieval::decode(cx, nodes)),
        WorkloadKind::Kernel => WorkloadSpec::Kernel(kinds::kernel::decode(cx, nodes, &mut device)),
        WorkloadKind::Synthetic => WorkloadSpec::Synthetic(kinds::synthetic::decode(cx, nodes)),
        WorkloadKind::Openai => WorkloadSpec::Openai(kinds::openai::decode(cx, nodes)),
    };
    Some(Workload { poisoned: false, name: name?, kind, device, spec })
}

/// Runs `f` on a child node's reader and reports leftover entries afterwards.
pub(in crate::dsl) fn read<T>(cx: &mut Ctx, node: &KdlNode, f: impl FnOnce(&mut Ctx, &mut NodeReader) -> T) -> T {
    let mut r = NodeReader::new(node);
    let out = f(cx, &mut r);
    r.finish(cx);
    out
}

/// `slo ttft="200ms" itl="50ms" tpot= e2e=`: per-request bounds for goodput.
pub(in crate::dsl) fn slo(cx: &mut Ctx, r: &mut NodeReader) -> Slo {
    Slo { ttft: r.prop(cx, "ttft"), itl: r.prop(cx, "itl"), tpot: r.prop(cx, "tpot"), e2e: r.prop(cx, "e2e") }
}

/// `prompt tokens=128` | `prompt tokens="32..512"` | `prompt tokens=256 stddev=64` | `prompt file="p.jsonl"`
pub(in crate::dsl) fn prompt(cx: &mut Ctx, r: &mut NodeReader) -> Option<Prompt> {
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
