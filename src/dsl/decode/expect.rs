//! Decoding expectations, metric selectors (`chat.ttft.p95`) and conditions
//! (`"ttft.p95 > 50ms"`), with spans into the middle of string literals.

use crate::dsl::units::Percent;
use kdl::KdlValue;

use super::super::diag::Code;
use super::super::model::*;
use super::super::reader::{Ctx, NodeReader};
use super::super::span::{Span, Spanned};

/// Aggregations that may end a metric selector. `pNN` percentiles are accepted generally.
pub const AGGREGATIONS: &[&str] = &[
    "p50",
    "p90",
    "p95",
    "p99",
    "p999",
    "mean",
    "min",
    "max",
    "stddev",
    "rate",
    "count",
    "spike_rate",
    "robust_spike_rate",
    "recall",
    "peak",
    "total",
    "last",
];

pub fn is_aggregation(s: &str) -> bool {
    AGGREGATIONS.contains(&s) || (s.len() > 1 && s.starts_with('p') && s[1..].chars().all(|c| c.is_ascii_digit()))
}

/// Splits `text` (at `span`) into subject, metric and optional aggregation. With `implied`,
/// the subject may be left out (`ttft.p95` inside `search "chat"`).
pub fn parse_metric_ref(
    text: &str,
    span: Span,
    implied: Option<&Spanned<String>>,
) -> Result<MetricRef, (String, String)> {
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    let mut parts: Vec<(usize, &str)> = vec![];
    let mut at = lead;
    for p in trimmed.split('.') {
        parts.push((at, p));
        at += p.len() + 1;
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if parts.iter().any(|(_, p)| p.is_empty() || !p.chars().all(allowed)) {
        let usage = "write workload.metric or workload.metric.aggregation, e.g. \"chat.ttft.p95\"";
        // Each part cut at the first character a selector cannot hold (`recall@10` ->
        // `recall`), offered when something readable is left.
        let kept: Vec<&str> = parts
            .iter()
            .map(|(_, p)| &p[..p.find(|c: char| !allowed(c)).unwrap_or(p.len())])
            .filter(|p| !p.is_empty())
            .collect();
        let bad = parts.iter().find_map(|(_, p)| p.find(|c: char| !allowed(c)).map(|i| &p[i..]));
        let help = match bad {
            Some(bad) if kept.len() >= 2 => format!(
                "did you mean \"{}\"? `{bad}` cannot be part of a selector (letters, digits, `_` and `-` between dots); {usage}",
                kept.join(".")
            ),
            _ => usage.to_string(),
        };
        return Err((format!("`{trimmed}` is not a metric selector"), help));
    }
    let sub = |(off, p): (usize, &str)| Spanned::new(p.to_string(), span.sub(off, p.len()));
    // A probe's metrics (`server.ttft.p95`) keep their subject where a workload is implied.
    let probe = crate::dsl::model::ProbeKind::from_name(parts[0].1).is_some() && parts.len() > 1;
    let implicit = implied.filter(|w| parts[0].1 != w.value.as_str() && !probe);
    let (subject, rest) = match implicit {
        Some(w) => (Spanned::new(w.value.clone(), span), &parts[..]),
        None => (sub(parts[0]), &parts[1..]),
    };
    if rest.is_empty() {
        return Err((
            format!("`{trimmed}` names no metric"),
            format!("add the metric after the name, e.g. \"{trimmed}.latency.p95\""),
        ));
    }
    let (metric_parts, agg) = match rest.split_last() {
        Some((last, init)) if !init.is_empty() && is_aggregation(last.1) => (init, Some(sub(*last))),
        _ => (rest, None),
    };
    let (first, last) = (metric_parts[0], metric_parts[metric_parts.len() - 1]);
    let metric_text = trimmed[first.0 - lead..last.0 - lead + last.1.len()].to_string();
    let metric = Spanned::new(metric_text, span.sub(first.0, last.0 + last.1.len() - first.0));
    Ok(MetricRef {
        text: Spanned::new(trimmed.to_string(), span.sub(lead, trimmed.len())),
        subject,
        metric,
        aggregation: agg,
    })
}

/// A selector in its own string value, reported at that value on error.
pub fn metric_ref(cx: &mut Ctx, text: &Spanned<String>) -> Option<MetricRef> {
    match parse_metric_ref(&text.value, inner_span(text), None) {
        Ok(m) => Some(m),
        Err((msg, help)) => {
            cx.error(Code::UnknownMetric, text.span, msg, "not a metric selector", help);
            None
        }
    }
}

/// The span of a string's contents, excluding its quotes, when the literal has no escapes
/// (so that byte offsets inside the value match the source).
fn inner_span(text: &Spanned<String>) -> Span {
    if text.span.len == text.value.len() + 2 {
        text.span.sub(1, text.value.len())
    } else {
        text.span
    }
}

const OPERATORS: &[&str] = &[">=", "<=", "==", ">", "<"];

/// Parses `"ttft.p95 > 50ms or error_rate > 1%"` into conditions (any one holding stops).
pub fn conditions(cx: &mut Ctx, text: &Spanned<String>, implied: Option<&Spanned<String>>) -> Vec<Condition> {
    joined(cx, text, implied, " or ")
}

/// Conditions joined by `sep` (` or ` for stop conditions, ` and ` for a search's SLOs).
pub fn joined(cx: &mut Ctx, text: &Spanned<String>, implied: Option<&Spanned<String>>, sep: &str) -> Vec<Condition> {
    let span = inner_span(text);
    let exact = span != text.span;
    let mut out = vec![];
    let mut offset = 0;
    for part in text.value.split(sep) {
        let part_span = if exact { span.sub(offset, part.len()) } else { span };
        match parse_condition(part, part_span, implied) {
            Ok(c) => out.push(c),
            Err((msg, help)) => cx.error(Code::InvalidCondition, part_span, msg, "cannot read this condition", help),
        }
        offset += part.len() + sep.len();
    }
    out
}

pub fn parse_condition(
    text: &str,
    span: Span,
    implied: Option<&Spanned<String>>,
) -> Result<Condition, (String, String)> {
    let help = "write `metric op value`, e.g. \"ttft.p95 > 50ms\" or \"error_rate > 1%\"".to_string();
    let found = text
        .char_indices()
        .find_map(|(i, _)| OPERATORS.iter().find(|op| text[i..].starts_with(**op)).map(|op| (i, *op)));
    let Some((at, op)) = found else {
        return Err((format!("`{}` has no comparison operator", text.trim()), help));
    };
    let lhs = &text[..at];
    let rhs = &text[at + op.len()..];
    let metric = parse_metric_ref(lhs, span.sub(0, at), implied)?;
    let value_text = rhs.trim();
    if value_text.is_empty() {
        return Err((format!("`{}` has no value to compare with", text.trim()), help));
    }
    let value_off = at + op.len() + (rhs.len() - rhs.trim_start().len());
    let value = if let Ok(i) = value_text.replace('_', "").parse::<i64>() {
        KdlValue::Integer(i as i128)
    } else if let Ok(f) = value_text.parse::<f64>() {
        KdlValue::Float(f)
    } else {
        KdlValue::String(value_text.to_string())
    };
    Ok(Condition {
        metric,
        op: Spanned::new(Comparison::from_name(op).expect("operator list"), span.sub(at, op.len())),
        value: Spanned::new(value, span.sub(value_off, value_text.len())),
    })
}

/// The bound of the two-part form: `op value`, or `within="lo..hi"`; errors when both or
/// neither are given, or the operator is not one.
fn bound(
    cx: &mut Ctx,
    selector: &Spanned<String>,
    op: Option<Spanned<String>>,
    value: Option<Spanned<KdlValue>>,
    within: Option<Spanned<String>>,
) -> Option<Check> {
    Some(match (op, value, within) {
        (Some(_), _, Some(w)) => {
            cx.error(
                Code::ConflictingOptions,
                w.span,
                "an expectation compares (op value) or gives a range (within=), not both",
                "range",
                "keep one form",
            );
            return None;
        }
        (Some(op), Some(value), None) => {
            let Some(cmp) = Comparison::from_name(&op.value) else {
                let help = super::super::suggest::help_for(&op.value, Comparison::NAMES, "comparisons");
                cx.error(
                    Code::InvalidComparison,
                    op.span,
                    format!("`{}` is not a comparison", op.value),
                    "unknown operator",
                    help,
                );
                return None;
            };
            Check::Compare { op: Spanned::new(cmp, op.span), value }
        }
        (Some(op), None, None) => {
            cx.error(
                Code::MissingArgument,
                op.span,
                "the comparison has no value",
                "compared with what?",
                "add a bound, e.g. expect \"chat.ttft.p95\" \"<\" \"5ms\"",
            );
            return None;
        }
        (None, _, Some(w)) => Check::Within { range: w },
        (None, _, None) => {
            cx.error(
                Code::MissingArgument,
                selector.span,
                "the expectation has no bound",
                "no comparison",
                "add an operator and a value (\"<\" \"5ms\") or within=\"5%..15%\"",
            );
            return None;
        }
    })
}

/// A search's `slo` child, written like an expectation: `slo "ttft.p95" "<" "$bound"` or
/// `slo "ttft.p95 < 200ms"`; the metric may leave out the searched workload.
pub fn slo(cx: &mut Ctx, r: &mut NodeReader, workload: &Spanned<String>) -> Option<Condition> {
    let selector = r.req_arg::<String>(cx, 0, "a metric", "slo \"ttft.p95\" \"<\" \"200ms\"")?;
    let op = r.arg::<String>(cx, 1);
    let value = r.arg_entry(2).and_then(|e| cx.raw(e)).map(|raw| Spanned::new(raw.value.into_owned(), raw.span));
    if op.is_none() {
        let mut conds = conditions(cx, &selector, Some(workload));
        return (conds.len() == 1).then(|| conds.remove(0));
    }
    let metric = match parse_metric_ref(&selector.value, inner_span(&selector), Some(workload)) {
        Ok(m) => m,
        Err((msg, help)) => {
            cx.error(Code::InvalidCondition, selector.span, msg, "cannot read this metric", help);
            return None;
        }
    };
    match bound(cx, &selector, op, value, None)? {
        Check::Compare { op, value } => Some(Condition { metric, op, value }),
        Check::Within { .. } => None,
    }
}

/// `expect "chat.ttft.p95" "<" "5ms" phase="steady"`, `expect "x.itl.spike_rate" within="5%..15%"`,
/// or the one-string form `expect "chat.ttft.p95 < 5ms"`.
pub fn decode(cx: &mut Ctx, r: &mut NodeReader) -> Option<Expectation> {
    let selector = r.req_arg::<String>(cx, 0, "a metric", "expect \"chat.ttft.p95\" \"<\" \"5ms\"");
    let within = r.prop::<String>(cx, "within");
    let op = r.arg::<String>(cx, 1);
    let value = r.arg_entry(2).and_then(|e| cx.raw(e)).map(|raw| Spanned::new(raw.value.into_owned(), raw.span));
    let props = (
        r.prop(cx, "phase"),
        r.prop::<ExpectSeverity>(cx, "severity"),
        r.prop(cx, "window"),
        r.prop(cx, "windows"),
        r.prop::<bool>(cx, "abort-on-fail"),
        r.prop::<OnMissing>(cx, "on-missing"),
        r.prop::<f64>(cx, "weight"),
        r.prop(cx, "k"),
        r.prop(cx, "name"),
    );
    let confidence = r.prop::<Percent>(cx, "confidence");
    let selector = selector?;
    let span = r.name_span(cx);
    let inline = op.is_none() && within.is_none() && OPERATORS.iter().any(|o| selector.value.contains(o));
    let (metric, check) = if inline {
        let mut conds = conditions(cx, &selector, None);
        if conds.len() != 1 {
            return None;
        }
        let c = conds.remove(0);
        (c.metric, Check::Compare { op: c.op, value: c.value })
    } else {
        let metric = metric_ref(cx, &selector)?;
        let check = bound(cx, &selector, op, value, within)?;
        (metric, check)
    };
    let (phase, severity, window, windows_share, abort, on_missing, weight, k, name) = props;
    if let Some(w) = &weight {
        if w.value < 0.0 || w.value.is_nan() {
            cx.error(
                Code::OutOfRange,
                w.span,
                "a weight cannot be negative",
                "negative",
                "use 0 or more (1 is the default)",
            );
        }
    }
    if let (Some(ws), None) = (&windows_share, &window) {
        cx.error(
            Code::MissingProperty,
            ws.span,
            "`windows` needs `window`",
            "share of which windows?",
            "add window=\"10s\"",
        );
    }
    Some(Expectation {
        span,
        metric,
        check,
        phase,
        severity: severity.map(|s| s.value).unwrap_or(ExpectSeverity::Fail),
        window,
        windows_share,
        abort_on_fail: abort.is_some_and(|a| a.value),
        on_missing: on_missing.map(|o| o.value).unwrap_or(OnMissing::Fail),
        weight,
        k,
        name,
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::span::FileId;

    fn sp(len: usize) -> Span {
        Span::new(FileId(0), 0, len)
    }

    #[test]
    fn selectors() {
        let m = parse_metric_ref("chat.ttft.p95", sp(13), None).unwrap();
        assert_eq!((m.subject.value.as_str(), m.metric.value.as_str()), ("chat", "ttft"));
        assert_eq!(m.aggregation.unwrap().value, "p95");
        let m = parse_metric_ref("chat.tok_s", sp(10), None).unwrap();
        assert_eq!(m.metric.value, "tok_s");
        assert!(m.aggregation.is_none());
        let m = parse_metric_ref("system.memory.peak", sp(18), None).unwrap();
        assert_eq!((m.metric.value.as_str(), m.aggregation.unwrap().value.as_str()), ("memory", "peak"));
        let m = parse_metric_ref("rag.memory.index", sp(16), None).unwrap();
        assert_eq!(m.metric.value, "memory.index");
        assert_eq!(m.metric.span, Span::new(FileId(0), 4, 12));
        assert!(parse_metric_ref("chat", sp(4), None).is_err());
        assert!(parse_metric_ref("chat..p95", sp(9), None).is_err());
        let w = Spanned::new("chat".to_string(), sp(4));
        let m = parse_metric_ref("ttft.p95", sp(8), Some(&w)).unwrap();
        assert_eq!((m.subject.value.as_str(), m.metric.value.as_str()), ("chat", "ttft"));
    }

    #[test]
    fn conditions_parse() {
        let c =
            parse_condition("ttft.p95 > 50ms", Span::new(FileId(0), 10, 15), Some(&Spanned::new("chat".into(), sp(4))))
                .unwrap();
        assert_eq!(c.op.value, Comparison::Gt);
        assert_eq!(c.op.span, Span::new(FileId(0), 19, 1));
        assert_eq!(c.value.value, KdlValue::String("50ms".into()));
        assert_eq!(c.value.span, Span::new(FileId(0), 21, 4));
        let c = parse_condition("chat.requests.count >= 1_000", sp(28), None).unwrap();
        assert_eq!(c.op.value, Comparison::Ge);
        assert_eq!(c.value.value, KdlValue::Integer(1000));
        assert!(parse_condition("ttft.p95 50ms", sp(13), None).is_err());
        assert!(parse_condition("ttft.p95 >", sp(10), None).is_err());
    }
}
