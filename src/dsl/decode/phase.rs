//! Decoding phases: what drives which workload with which load shape, resource pressure and
//! breaking-point search.

use super::super::diag::{Code, Diagnostic};
use super::super::model::*;
use super::super::reader::{children, Ctx, NodeReader};
use super::super::span::Spanned;
use super::super::units::{Duration, Range, Rate};
use super::expect::conditions;

pub const PHASE_NODES: &[&str] = &["drive", "pressure", "search"];

pub fn decode(cx: &mut Ctx, r: &mut NodeReader) -> Option<Phase> {
    let fixed_role = match r.name() {
        "warmup" => Some(PhaseRole::Warmup),
        "cooldown" => Some(PhaseRole::Cooldown),
        _ => None,
    };
    let name = match fixed_role {
        Some(role) => {
            r.arg::<String>(cx, 0).unwrap_or_else(|| Spanned::new(role.as_str().to_string(), r.name_span(cx)))
        }
        None => r.req_arg(cx, 0, "a name", "phase \"steady\" duration=\"60s\" { ... }")?,
    };
    let role = match fixed_role {
        Some(role) => role,
        None => r.prop::<PhaseRole>(cx, "role").map(|r| r.value).unwrap_or(PhaseRole::Measure),
    };
    let duration = r.prop(cx, "duration");
    let until = match r.prop::<String>(cx, "until") {
        Some(text) => conditions(cx, &text, None),
        None => vec![],
    };
    let mut phase =
        Phase { poisoned: false, name, role, duration, until, drives: vec![], pressure: None, search: None };
    for node in children(r.node) {
        let mut c = NodeReader::new(node);
        match c.name() {
            "drive" => phase.drives.extend(drive(cx, &mut c)),
            "pressure" => {
                let p = Pressure {
                    span: c.name_span(cx),
                    memory: c.prop(cx, "memory"),
                    cpu_threads: c.prop(cx, "cpu-threads"),
                    gpu_memory: c.prop(cx, "gpu-memory"),
                    cap: c.prop(cx, "cap"),
                };
                // A share of memory is of the memory there is: over 100 % cannot be held.
                let shares = [
                    ("memory", p.memory.as_ref().and_then(percent_of)),
                    ("gpu-memory", p.gpu_memory.as_ref().and_then(percent_of)),
                    ("cap", p.cap.as_ref().map(|c| (c.value.0, c.span))),
                ];
                for (key, share) in shares {
                    if let Some((f, span)) = share.filter(|(f, _)| *f > 1.0) {
                        cx.error(
                            Code::OutOfRange,
                            span,
                            format!("`{key}` is {}, more than all of the memory there is", crate::dsl::units::Percent(f)),
                            "over 100 %",
                            "give a share up to 100 % (the cap keeps the total at or below 85 % unless `cap` says otherwise), or a size such as \"8GiB\"",
                        );
                    }
                }
                if !["memory", "cpu-threads", "gpu-memory"].iter().any(|k| c.has_prop(k)) {
                    cx.error(
                        Code::MissingOption,
                        p.span,
                        "`pressure` applies no pressure",
                        "empty",
                        "add memory=\"60%\", cpu-threads=2 or gpu-memory=\"8GiB\"",
                    );
                }
                phase.pressure = Some(p);
            }
            "search" => phase.search = search(cx, &mut c),
            _ => {
                cx.unknown_node(node, "a phase", PHASE_NODES);
                continue;
            }
        }
        c.finish(cx);
    }
    Some(phase)
}

const SHAPES: &[&str] = &["steady", "ramp", "spike", "stages"];

fn arrivals(cx: &mut Ctx, r: &mut NodeReader) -> Arrivals {
    let kind = r.prop::<ArrivalKind>(cx, "arrivals");
    let burst = r.prop::<f64>(cx, "burstiness");
    match (kind.map(|k| k.value), burst) {
        (Some(ArrivalKind::Gamma), Some(b)) if b.value > 0.0 => Arrivals::Gamma { burstiness: b.value },
        (Some(ArrivalKind::Gamma), Some(b)) => {
            cx.error(
                Code::OutOfRange,
                b.span,
                "`burstiness` must be greater than 0",
                "not positive",
                "1 is Poisson; above 1 is burstier",
            );
            Arrivals::Gamma { burstiness: 1.0 }
        }
        (Some(ArrivalKind::Gamma), None) => Arrivals::Gamma { burstiness: 1.0 },
        (_, Some(b)) => {
            cx.error(
                Code::ConflictingOptions,
                b.span,
                "`burstiness` applies to gamma arrivals only",
                "ignored",
                "add arrivals=\"gamma\" or remove burstiness",
            );
            Arrivals::Poisson
        }
        (Some(ArrivalKind::Constant), None) => Arrivals::Constant,
        (Some(ArrivalKind::Poisson), None) | (None, None) => Arrivals::Poisson,
    }
}

/// `drive "chat" concurrency=4`, `drive "chat" rate="20/s"`, `drive "chat" ramp ...`,
/// `drive "rag" spike ...`, `drive "chat" stages { ... }`.
fn drive(cx: &mut Ctx, r: &mut NodeReader) -> Option<Drive> {
    let workload = r.req_arg::<String>(cx, 0, "a workload name", "drive \"chat\" concurrency=4");
    let shape_kw = r.arg::<String>(cx, 1);
    let arrivals = arrivals(cx, r);
    let max_in_flight = r.prop(cx, "max-in-flight");
    let requests = r.prop(cx, "requests");
    let kw = shape_kw.as_ref().map(|s| s.value.as_str()).unwrap_or("steady");
    let span = shape_kw.as_ref().map(|s| s.span).unwrap_or_else(|| r.name_span(cx));
    let shape = match kw {
        "steady" => steady(cx, r, arrivals),
        "ramp" => ramp(cx, r, arrivals),
        "spike" => {
            let base = r.req_prop::<Rate>(cx, "base", "base=\"100/s\"");
            let peak = r.req_prop::<Rate>(cx, "peak", "peak=\"1000/s\"");
            let every = r.req_prop::<Duration>(cx, "every", "every=\"15s\"");
            let hold = r.req_prop::<Duration>(cx, "hold", "hold=\"2s\"");
            let (base, peak, every, hold) = (base?, peak?, every?, hold?);
            if hold.value >= every.value {
                cx.error(
                    Code::OutOfRange,
                    hold.span,
                    "a spike's `hold` must be shorter than its period `every`",
                    "not shorter than every",
                    "shorten hold or lengthen every",
                );
            }
            if peak.value < base.value {
                cx.push(
                    Diagnostic::warning(Code::OutOfRange, "the spike's peak is below its base rate")
                        .with_label(peak.span, "peak")
                        .with_label(base.span, "base")
                        .with_help("swap base and peak"),
                );
            }
            Some(LoadShape::Spike {
                base: base.value,
                peak: peak.value,
                every: every.value,
                hold: hold.value,
                arrivals,
            })
        }
        "stages" => stages(cx, r, arrivals),
        other => {
            r.consume_all();
            let help = super::super::suggest::help_for(other, SHAPES, "load shapes");
            cx.error(Code::UnknownValue, span, format!("`{other}` is not a load shape"), "unknown shape", help);
            None
        }
    };
    Some(Drive { workload: workload?, shape: Spanned::new(shape?, span), max_in_flight, requests })
}

fn steady(cx: &mut Ctx, r: &mut NodeReader, arrivals: Arrivals) -> Option<LoadShape> {
    let conc = r.prop::<u64>(cx, "concurrency");
    let rate = r.prop::<Rate>(cx, "rate");
    match (conc, rate) {
        (Some(c), Some(rt)) => {
            cx.conflict(
                (c.span, "closed loop"),
                (rt.span, "open loop"),
                "a steady drive is closed-loop (concurrency) or open-loop (rate), not both",
                "keep concurrency= for a fixed number of workers, or rate= for a fixed arrival rate",
            );
            None
        }
        (Some(c), None) if c.value == 0 => {
            cx.error(Code::OutOfRange, c.span, "concurrency must be at least 1", "zero", "use concurrency=1 or more");
            None
        }
        (Some(c), None) => Some(LoadShape::Closed { concurrency: c.value }),
        (None, Some(rt)) if rt.value.0 <= 0.0 => {
            cx.error(Code::OutOfRange, rt.span, "the rate must be above 0", "zero", "use a rate like \"1/s\" or more");
            None
        }
        (None, Some(rt)) => Some(LoadShape::Open { rate: rt.value, arrivals }),
        (None, None) if r.has_prop("concurrency") || r.has_prop("rate") => None,
        (None, None) => {
            let span = r.name_span(cx);
            cx.error(
                Code::MissingOption,
                span,
                "`drive` needs a load: concurrency= or rate=",
                "no load",
                "for example: drive \"chat\" concurrency=4, or drive \"chat\" rate=\"20/s\"",
            );
            None
        }
    }
}

fn ramp(cx: &mut Ctx, r: &mut NodeReader, arrivals: Arrivals) -> Option<LoadShape> {
    let conc = r.prop::<Range<u64>>(cx, "concurrency");
    let rate = r.prop::<Range<Rate>>(cx, "rate");
    match (conc, rate) {
        (Some(c), Some(rt)) => {
            cx.conflict(
                (c.span, "concurrency ramp"),
                (rt.span, "rate ramp"),
                "a ramp goes over rate or over concurrency, not both",
                "keep one of them",
            );
            None
        }
        (Some(c), None) => Some(LoadShape::RampConcurrency { from: c.value.lo.max(1), to: c.value.hi.max(1) }),
        (None, Some(rt)) => Some(LoadShape::RampRate { from: rt.value.lo, to: rt.value.hi, arrivals }),
        (None, None) if r.has_prop("concurrency") || r.has_prop("rate") => None,
        (None, None) => {
            let span = r.name_span(cx);
            cx.error(
                Code::MissingOption,
                span,
                "a ramp needs rate=\"from..to\" or concurrency=\"from..to\"",
                "no range",
                "for example: drive \"chat\" ramp rate=\"1/s..50/s\"",
            );
            None
        }
    }
}

fn stages(cx: &mut Ctx, r: &mut NodeReader, arrivals: Arrivals) -> Option<LoadShape> {
    let mut out = vec![];
    for node in children(r.node) {
        let mut c = NodeReader::new(node);
        if c.name() != "stage" {
            cx.unknown_node(node, "`stages`", &["stage"]);
            continue;
        }
        let duration = c.req_arg::<Duration>(cx, 0, "a duration", "stage \"30s\" rate=\"20/s\"");
        let target = steady(cx, &mut c, arrivals);
        c.finish(cx);
        let target = match target {
            Some(LoadShape::Closed { concurrency }) => Target::Concurrency(concurrency),
            Some(LoadShape::Open { rate, .. }) => Target::Rate(rate),
            _ => continue,
        };
        if let Some(d) = duration {
            out.push(Stage { duration: d.value, target });
        }
    }
    if out.is_empty() {
        let span = r.name_span(cx);
        cx.error(
            Code::MissingOption,
            span,
            "`stages` needs at least one `stage`",
            "no stages",
            "drive \"chat\" stages { stage \"30s\" rate=\"10/s\"; stage \"30s\" rate=\"50/s\" }",
        );
        return None;
    }
    Some(LoadShape::Stages { stages: out, arrivals })
}

fn search(cx: &mut Ctx, r: &mut NodeReader) -> Option<Search> {
    let workload =
        r.req_arg::<String>(cx, 0, "a workload name", "search \"chat\" rate=\"1/s..500/s\" until=\"ttft.p95 > 50ms\"");
    let rate = r.req_prop::<Range<Rate>>(cx, "rate", "rate=\"1/s..500/s\"");
    let until = r.req_prop::<String>(cx, "until", "until=\"ttft.p95 > 50ms\"");
    let arrivals = arrivals(cx, r);
    let s = Search {
        step: r.prop(cx, "step"),
        factor: r.prop(cx, "factor"),
        step_duration: r.prop(cx, "step-duration"),
        max_steps: r.prop(cx, "max-steps"),
        max_time: r.prop(cx, "max-time"),
        until: match (&until, &workload) {
            (Some(u), Some(w)) => conditions(cx, u, Some(w)),
            _ => vec![],
        },
        workload: workload?,
        rate: rate?,
        arrivals,
    };
    if let Some(f) = &s.factor {
        if f.value <= 1.0 {
            cx.error(Code::OutOfRange, f.span, "the step factor must be above 1", "too small", "for example: factor=2");
        }
    }
    if s.rate.value.lo.0 <= 0.0 {
        cx.error(
            Code::OutOfRange,
            s.rate.span,
            "the search must start above 0/s",
            "starts at zero",
            "for example: rate=\"1/s..500/s\"",
        );
    }
    until?;
    Some(s)
}

/// A percentage amount as (fraction, span).
fn percent_of(a: &Spanned<crate::dsl::units::Amount>) -> Option<(f64, crate::dsl::span::Span)> {
    match a.value {
        crate::dsl::units::Amount::Percent(p) => Some((p.0, a.span)),
        crate::dsl::units::Amount::Bytes(_) => None,
    }
}
