//! Decoding phases: what drives which workload with which load shape, resource pressure and
//! breaking-point search.

use super::super::diag::{Code, Diagnostic};
use super::super::model::*;
use super::super::reader::{children, Ctx, NodeReader};
use super::super::span::Spanned;
use super::super::units::{Duration, Range, Rate};
use super::expect::conditions;

pub const PHASE_NODES: &[&str] = &["drive", "pressure", "search"];
/// The children of a `search`.
pub const SEARCH_NODES: &[&str] = &["slo"];

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
    let example = "search \"chat\" over=\"concurrency\" concurrency=\"1..64\" slo=\"ttft.p95 < 200ms\"";
    let workload = r.req_arg::<String>(cx, 0, "a workload name", example);
    let over = r.prop::<SearchOver>(cx, "over");
    let rate = r.prop::<Range<Rate>>(cx, "rate");
    let concurrency = r.prop::<Range<u64>>(cx, "concurrency");
    let (step, factor, step_duration, settle) =
        (r.prop(cx, "step"), r.prop(cx, "factor"), r.prop(cx, "step-duration"), r.prop(cx, "settle"));
    let (precision, max_steps, max_time) = (r.prop(cx, "precision"), r.prop(cx, "max-steps"), r.prop(cx, "max-time"));
    let arrivals = arrivals(cx, r);
    let slos = search_slos(cx, r, workload.as_ref());
    let over = search_over(cx, r, over, rate.as_ref().map(|x| x.span), concurrency.as_ref().map(|x| x.span));
    let s = Search {
        over: over?,
        step,
        factor,
        step_duration,
        settle,
        precision,
        max_steps,
        max_time,
        slos,
        workload: workload?,
        rate,
        concurrency,
        arrivals,
    };
    check_search(cx, &s);
    (!s.slos.is_empty()).then_some(s)
}

/// A search's SLOs: `slo="A and B"`, `slo` children, and `until="A or B"` turned around.
fn search_slos(cx: &mut Ctx, r: &mut NodeReader, workload: Option<&Spanned<String>>) -> Vec<Condition> {
    let until = r.prop::<String>(cx, "until");
    let slo = r.prop::<String>(cx, "slo");
    let mut slos = vec![];
    let Some(w) = workload else { return slos };
    if let Some(text) = &slo {
        slos.extend(super::expect::joined(cx, text, Some(w), " and "));
    }
    for node in children(r.node) {
        if node.name().value() != "slo" {
            cx.unknown_node(node, "a search", SEARCH_NODES);
            continue;
        }
        let mut c = NodeReader::new(node);
        slos.extend(super::expect::slo(cx, &mut c, w));
        c.finish(cx);
    }
    if let Some(text) = &until {
        // A stop condition says when a load has failed: its SLO is the opposite bound.
        for mut c in conditions(cx, text, Some(w)) {
            match c.op.value.negated() {
                Some(op) => {
                    c.op.value = op;
                    slos.push(c)
                }
                None => no_equality(cx, &c),
            }
        }
    }
    for c in slos.iter().filter(|c| c.op.value == Comparison::Eq) {
        no_equality(cx, c);
    }
    if slo.is_none() && until.is_none() && children(r.node).is_empty() {
        cx.error(
            Code::MissingProperty,
            r.name_span(cx),
            "a search needs the SLOs a load must meet",
            "no `slo` or `until`",
            "add slo=\"ttft.p95 < 200ms and error_rate < 1%\", or `slo` children: { slo \"ttft.p95\" \"<\" \"200ms\" }",
        );
    }
    slos
}

/// Values a search's properties cannot take.
fn check_search(cx: &mut Ctx, s: &Search) {
    if let Some(f) = s.factor.as_ref().filter(|f| f.value <= 1.0) {
        cx.error(Code::OutOfRange, f.span, "the step factor must be above 1", "too small", "for example: factor=2");
    }
    if let Some(p) = s.precision.as_ref().filter(|p| !(p.value.0 > 0.0 && p.value.0 < 1.0)) {
        cx.error(
            Code::OutOfRange,
            p.span,
            "the precision must be between 0% and 100%",
            "out of range",
            "for example: precision=\"5%\"",
        );
    }
    if let Some(r) = s.rate.as_ref().filter(|r| r.value.lo.0 <= 0.0) {
        cx.error(
            Code::OutOfRange,
            r.span,
            "the search must start above 0/s",
            "starts at zero",
            "for example: rate=\"1/s..500/s\"",
        );
    }
    if let Some(c) = s.concurrency.as_ref().filter(|c| c.value.lo == 0) {
        cx.error(
            Code::OutOfRange,
            c.span,
            "the search must start at concurrency 1 or more",
            "starts at zero",
            "for example: concurrency=\"1..64\"",
        );
    }
}

/// A search bound is a side of a threshold: `==` has no side.
fn no_equality(cx: &mut Ctx, c: &Condition) {
    cx.error(
        Code::InvalidCondition,
        c.op.span,
        "a search's bound needs <, <=, > or >=",
        "`==` has no side",
        "write the SLO as a bound, e.g. \"ttft.p95 < 200ms\"",
    );
}

/// What the search varies: `over=`, or the one range written. The range it names must be
/// there.
fn search_over(
    cx: &mut Ctx,
    r: &NodeReader,
    over: Option<Spanned<SearchOver>>,
    rate: Option<crate::dsl::span::Span>,
    concurrency: Option<crate::dsl::span::Span>,
) -> Option<Spanned<SearchOver>> {
    match (over, rate, concurrency) {
        (Some(o), _, None) if o.value == SearchOver::Concurrency => {
            cx.error(
                Code::MissingProperty,
                o.span,
                "a concurrency search needs its range",
                "no `concurrency=`",
                "add concurrency=\"1..64\"",
            );
            None
        }
        (Some(o), None, _) if o.value == SearchOver::Rate => {
            cx.error(
                Code::MissingProperty,
                o.span,
                "a rate search needs its range",
                "no `rate=`",
                "add rate=\"1/s..64/s\"",
            );
            None
        }
        (Some(o), _, _) => Some(o),
        (None, Some(span), None) => Some(Spanned::new(SearchOver::Rate, span)),
        (None, None, Some(span)) => Some(Spanned::new(SearchOver::Concurrency, span)),
        (None, Some(span), Some(_)) => {
            cx.error(
                Code::MissingProperty,
                span,
                "both ranges are written: say which one the search varies",
                "two ranges",
                "add over=\"rate\" or over=\"concurrency\"",
            );
            None
        }
        (None, None, None) => {
            cx.error(
                Code::MissingProperty,
                r.name_span(cx),
                "a search needs the range of loads it tries",
                "no `concurrency=` or `rate=`",
                "add concurrency=\"1..64\" or rate=\"1/s..64/s\"",
            );
            None
        }
    }
}

/// A percentage amount as (fraction, span).
fn percent_of(a: &Spanned<crate::dsl::units::Amount>) -> Option<(f64, crate::dsl::span::Span)> {
    match a.value {
        crate::dsl::units::Amount::Percent(p) => Some((p.0, a.span)),
        crate::dsl::units::Amount::Bytes(_) => None,
    }
}
