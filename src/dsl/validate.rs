//! Stage 4, validate: resolves names (workloads, phases, metrics), reads expectation bounds
//! in their metric's unit, and checks what decoding alone cannot. Lints live in `lints.rs`.
//!
//! Invariant of [`ValidScenario`]: every reference resolves, every bound has its metric's
//! unit, every phase ends, and no error was reported.

use std::collections::HashMap;

use kdl::KdlValue;
use serde::Serialize;

use super::diag::{Code, Diagnostic};
use super::metrics::{self, MetricDef, Unit};
use super::model::*;
use super::span::{Span, Spanned};
use super::suggest;
use super::units::{self, Bytes, Duration, Percent, Rate};
use super::value::{FromKdl, ValueError};

/// What a metric selector's first segment names.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "id")]
pub enum Subject {
    /// Index into `Scenario::workloads`.
    Workload(usize),
    Probe(ProbeKind),
}

#[derive(Clone, Debug)]
pub struct ResolvedMetric {
    pub subject: Subject,
    pub def: &'static MetricDef,
    pub aggregation: Option<String>,
    pub unit: Unit,
    /// The canonical selector: `chat.ttft.p95`.
    pub selector: String,
}

/// A bound in its metric's unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Quantity {
    Duration(Duration),
    Rate(Rate),
    Ratio(Percent),
    Bytes(Bytes),
    Share(Percent),
    Count(f64),
    Number(f64),
}

impl Quantity {
    /// The value in base units (seconds, per second, fraction, bytes, count).
    pub fn base(&self) -> f64 {
        match self {
            Quantity::Duration(d) => d.as_secs_f64(),
            Quantity::Rate(r) => r.0,
            Quantity::Ratio(p) | Quantity::Share(p) => p.0,
            Quantity::Bytes(b) => b.0 as f64,
            Quantity::Count(n) | Quantity::Number(n) => *n,
        }
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantity::Duration(d) => d.fmt(f),
            Quantity::Rate(r) => r.fmt(f),
            Quantity::Ratio(p) | Quantity::Share(p) => p.fmt(f),
            Quantity::Bytes(b) => b.fmt(f),
            Quantity::Count(n) | Quantity::Number(n) => f.write_str(&units::trim_float(*n)),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Bound {
    Compare { op: Comparison, value: Quantity },
    Within { lo: Quantity, hi: Quantity },
}

impl Bound {
    /// Whether a value in base units meets the bound.
    pub fn holds(&self, x: f64) -> bool {
        match self {
            Bound::Compare { op, value } => op.holds(x, value.base()),
            Bound::Within { lo, hi } => x >= lo.base() && x <= hi.base(),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Compare { op, value } => write!(f, "{op} {value}"),
            Bound::Within { lo, hi } => write!(f, "within {lo}..{hi}"),
        }
    }
}

/// A condition (phase `until`, search `until`) with its metric and bound resolved.
#[derive(Clone, Debug)]
pub struct ValidCondition {
    pub metric: ResolvedMetric,
    pub op: Comparison,
    pub value: Quantity,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ValidExpectation {
    /// Index into `Scenario::expectations`.
    pub index: usize,
    pub metric: ResolvedMetric,
    pub bound: Bound,
    /// Index into `Scenario::phases`.
    pub phase: Option<usize>,
}

/// A scenario whose references all resolve; see the module doc for its invariants.
#[derive(Debug)]
pub struct ValidScenario {
    pub scenario: Scenario,
    pub expectations: Vec<ValidExpectation>,
    /// Per phase, its `until` conditions; and per phase with a search, the SLOs a load must
    /// meet (empty for a phase without one).
    pub phase_until: Vec<Vec<ValidCondition>>,
    pub search_slos: Vec<Vec<ValidCondition>>,
    /// Probes to run: declared ones, then those implied by expectations.
    pub probes: Vec<(ProbeKind, Duration, bool)>,
    /// Each parameter's effective value (after `--set`) and where that value was written.
    pub params: Vec<EffectiveParam>,
}

#[derive(Clone, Debug)]
pub struct EffectiveParam {
    pub name: String,
    pub value: KdlValue,
    pub span: Span,
}

/// Default probe sampling interval.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration(1_000_000_000);

struct Names<'a> {
    workloads: HashMap<&'a str, usize>,
    phases: HashMap<&'a str, usize>,
}

pub fn validate(sc: Scenario, diags: &mut Vec<Diagnostic>) -> ValidScenario {
    let names = Names {
        workloads: unique(sc.workloads.iter().map(|w| &w.name), "workload", diags),
        phases: unique(sc.phases.iter().map(|p| &p.name), "phase", diags),
    };
    for w in &sc.workloads {
        if ProbeKind::from_name(&w.name.value).is_some() {
            diags.push(
                Diagnostic::error(Code::DuplicateName, format!("`{}` is the name of a probe", w.name.value))
                    .with_label(w.name.span, "reserved name")
                    .with_help("metric selectors start with a workload or probe name; rename the workload"),
            );
        }
        if !w.poisoned {
            check_workload(w, diags);
        }
    }
    if sc.phases.is_empty() && !sc.name.value.is_empty() {
        diags.push(
            Diagnostic::error(Code::NoPhases, "the scenario has no phases, so nothing would run")
                .with_label(sc.name.span, "no `phase` in this scenario")
                .with_help("add a phase, e.g. phase \"steady\" duration=\"60s\" { drive \"chat\" concurrency=4 }"),
        );
    }
    let mut phase_until = vec![];
    let mut search_slos = vec![];
    for p in &sc.phases {
        check_phase(p, &names, diags);
        phase_until.push(p.until.iter().filter_map(|c| condition(&sc, c, diags)).collect());
        search_slos.push(p.search.iter().flat_map(|s| search_slos_of(&sc, s, diags)).collect());
    }
    let mut expectations = vec![];
    for (index, e) in sc.expectations.iter().enumerate() {
        let Some(metric) = resolve(&sc, &e.metric, diags) else {
            continue;
        };
        let phase = e.phase.as_ref().and_then(|p| lookup(&names.phases, p, "phase", Code::UnknownPhase, diags));
        if let Some(bound) = bound(&metric, &e.check, diags) {
            expectations.push(ValidExpectation { index, metric, bound, phase });
        }
    }
    if let Some(b) = &sc.baseline {
        for (m, _) in &b.overrides {
            resolve(&sc, m, diags);
        }
    }
    let confidences = sc.confidence.iter().chain(sc.expectations.iter().filter_map(|e| e.confidence.as_ref()));
    for c in confidences {
        if !(c.value.0 >= 0.5 && c.value.0 < 1.0) {
            diags.push(
                Diagnostic::error(Code::OutOfRange, format!("a confidence of {} cannot be used", c.value))
                    .with_label(c.span, "outside 50%..100%")
                    .with_help("give a level from 50% up to (not including) 100%; 99% is the default, 95% asks for fewer samples"),
            );
        }
    }
    if let Some(r) = sc.repeat.as_ref().filter(|r| r.value == 0 || r.value > 1000) {
        diags.push(
            Diagnostic::error(Code::OutOfRange, format!("`repeat {}` is out of range", r.value))
                .with_label(r.span, "1 to 1000")
                .with_help("repeat the measured phases 1 to 1000 times (3 to 5 gives a between-run spread)"),
        );
    }
    check_server_metrics(&sc, &expectations, diags);
    let probes = probes(&sc, &expectations);
    ValidScenario { scenario: sc, expectations, phase_until, search_slos, probes, params: vec![] }
}

/// Maps names to indices, reporting duplicates with both spans.
pub(crate) fn unique<'a>(
    items: impl Iterator<Item = &'a Spanned<String>>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> HashMap<&'a str, usize> {
    let mut map: HashMap<&str, (usize, Span)> = HashMap::new();
    for (i, name) in items.enumerate() {
        if let Some((_, first)) = map.get(name.value.as_str()) {
            diags.push(
                Diagnostic::error(Code::DuplicateName, format!("two {what}s are named `{}`", name.value))
                    .with_label(name.span, "defined again here")
                    .with_label(*first, "first defined here")
                    .with_help(format!("{what} names must be unique; rename one of them")),
            );
        } else {
            map.insert(&name.value, (i, name.span));
        }
    }
    map.into_iter().map(|(k, (i, _))| (k, i)).collect()
}

pub(crate) fn lookup(
    map: &HashMap<&str, usize>,
    name: &Spanned<String>,
    what: &str,
    code: Code,
    diags: &mut Vec<Diagnostic>,
) -> Option<usize> {
    if let Some(&i) = map.get(name.value.as_str()) {
        return Some(i);
    }
    let mut names: Vec<&str> = map.keys().copied().collect();
    names.sort();
    let help = match suggest::closest(&name.value, names.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if names.is_empty() => format!("this scenario defines no {what}s"),
        None => suggest::list_help(&names, &format!("{what}s")),
    };
    diags.push(
        Diagnostic::error(code, format!("no {what} is named `{}`", name.value))
            .with_label(name.span, format!("unknown {what}"))
            .with_help(help),
    );
    None
}

/// What each kind cannot run without: its own file says (`dsl/kinds/`).
fn check_workload(w: &Workload, diags: &mut Vec<Diagnostic>) {
    w.spec.kind().check(w, diags);
}

fn check_phase(p: &Phase, names: &Names, diags: &mut Vec<Diagnostic>) {
    for d in &p.drives {
        lookup(&names.workloads, &d.workload, "workload", Code::UnknownWorkload, diags);
    }
    if let Some(s) = &p.search {
        lookup(&names.workloads, &s.workload, "workload", Code::UnknownWorkload, diags);
    }
    let staged = p.drives.iter().any(|d| matches!(d.shape.value, LoadShape::Stages { .. }));
    let counted = !p.drives.is_empty() && p.drives.iter().all(|d| d.requests.is_some());
    let ends = p.poisoned || p.duration.is_some() || !p.until.is_empty() || p.search.is_some() || staged || counted;
    if !ends {
        diags.push(
            Diagnostic::error(Code::PhaseWithoutEnd, format!("phase `{}` never ends", p.name.value))
                .with_label(p.name.span, "no duration or stop condition")
                .with_help("add duration=\"60s\", an until=\"...\" condition, or requests=N on every drive"),
        );
    }
}

/// Resolves `subject.metric[.agg]` against the workloads and probes of the scenario.
pub fn resolve(sc: &Scenario, m: &MetricRef, diags: &mut Vec<Diagnostic>) -> Option<ResolvedMetric> {
    let (subject, defs): (Subject, Vec<&'static MetricDef>) =
        if let Some(i) = sc.workloads.iter().position(|w| w.name.value == m.subject.value) {
            let w = &sc.workloads[i];
            // Whether a request streams tokens (it decides a synthetic workload's metrics).
            let tokens = w.spec.kind().tokens_per_request().is_some();
            (Subject::Workload(i), metrics::workload_metrics(w.kind.value, tokens))
        } else if let Some(kind) = ProbeKind::from_name(&m.subject.value) {
            (Subject::Probe(kind), metrics::probe_metrics(kind).iter().collect())
        } else {
            let mut names: Vec<&str> = sc.workloads.iter().map(|w| w.name.value.as_str()).collect();
            names.extend(ProbeKind::NAMES);
            let help = suggest::help_for(&m.subject.value, &names, "workloads and probes");
            diags.push(
                Diagnostic::error(
                    Code::UnknownWorkload,
                    format!("`{}` is neither a workload nor a probe", m.subject.value),
                )
                .with_label(m.subject.span, "unknown name")
                .with_help(help),
            );
            return None;
        };
    let Some(def) = defs.iter().copied().find(|d| d.name == m.metric.value) else {
        let names: Vec<&str> = defs.iter().map(|d| d.name).collect();
        let what = match subject {
            Subject::Workload(i) => format!("a {} workload", sc.workloads[i].kind.value),
            Subject::Probe(k) => format!("the {k} probe"),
        };
        // "chat.p95" forgets the metric: say so rather than suggesting a random name.
        let help = if super::decode::is_aggregation_name(&m.metric.value) {
            format!("name the metric before the aggregation, e.g. `{}.latency.{}`", m.subject.value, m.metric.value)
        } else {
            suggest::help_for(&m.metric.value, &names, "metrics")
        };
        diags.push(
            Diagnostic::error(Code::UnknownMetric, format!("{what} has no metric `{}`", m.metric.value))
                .with_label(m.metric.span, "unknown metric")
                .with_help(help),
        );
        return None;
    };
    let agg = aggregation(def, m, diags)?;
    let unit = metrics::aggregated_unit(def, agg.as_deref());
    let selector = match &agg {
        Some(a) => format!("{}.{}.{a}", m.subject.value, def.name),
        None => format!("{}.{}", m.subject.value, def.name),
    };
    Some(ResolvedMetric { subject, def, aggregation: agg, unit, selector })
}

/// Checks the aggregation against the metric; `Some(None)` for a single-valued metric.
fn aggregation(def: &MetricDef, m: &MetricRef, diags: &mut Vec<Diagnostic>) -> Option<Option<String>> {
    match &m.aggregation {
        Some(a)
            if def.aggs.contains(&a.value.as_str())
                || (metrics::percentile(&a.value).is_some() && def.aggs.contains(&"p50")) =>
        {
            Some(Some(a.value.clone()))
        }
        Some(a) => {
            let help = if def.aggs.is_empty() {
                format!("`{}` is one value per phase; remove `.{}`", def.name, a.value)
            } else {
                suggest::help_for(&a.value, def.aggs, "aggregations of this metric")
            };
            diags.push(
                Diagnostic::error(
                    Code::UnknownAggregation,
                    format!("`{}` cannot be aggregated as `{}`", def.name, a.value),
                )
                .with_label(a.span, "not an aggregation of this metric")
                .with_help(help),
            );
            None
        }
        None if def.aggs.is_empty() => Some(None),
        None if def.default_agg.is_some() => Some(def.default_agg.map(str::to_string)),
        None => {
            diags.push(
                Diagnostic::error(Code::UnknownAggregation, format!("`{}` needs an aggregation", def.name))
                    .with_label(m.metric.span, "which statistic?")
                    .with_help(format!(
                        "add one, e.g. `{}.{}.p95`; accepted: {}",
                        m.subject.value,
                        def.name,
                        def.aggs.join(", ")
                    )),
            );
            None
        }
    }
}

/// Reads a bound written as a KDL value in the metric's unit.
pub fn quantity(unit: Unit, v: &KdlValue) -> Result<Quantity, ValueError> {
    Ok(match unit {
        Unit::Duration => Quantity::Duration(Duration::from_kdl(v, None)?),
        Unit::Rate => Quantity::Rate(match v {
            KdlValue::String(s) => {
                Rate::parse(s, true).map_err(|e| ValueError::new(Code::InvalidRate, e.message, e.help))?
            }
            _ => Rate(f64::from_kdl(v, None)?),
        }),
        Unit::Ratio => Quantity::Ratio(Percent::from_kdl(v, None)?),
        Unit::Bytes => Quantity::Bytes(Bytes::from_kdl(v, None)?),
        Unit::BytesOrShare => match units::Amount::from_kdl(v, None)? {
            units::Amount::Bytes(b) => Quantity::Bytes(b),
            units::Amount::Percent(p) => Quantity::Share(p),
        },
        Unit::Count => Quantity::Count(f64::from_kdl(v, None)?),
        Unit::Number(suffix) => Quantity::Number(match v {
            KdlValue::String(s) => {
                let t = s.trim().strip_suffix(suffix).unwrap_or(s).trim();
                f64::from_kdl(&KdlValue::String(t.to_string()), None)?
            }
            _ => f64::from_kdl(v, None)?,
        }),
    })
}

fn unit_error(metric: &ResolvedMetric, span: Span, e: ValueError, diags: &mut Vec<Diagnostic>) {
    let code = if e.code == Code::WrongType { Code::UnitMismatch } else { e.code };
    diags.push(
        Diagnostic::error(code, format!("`{}` is measured as {}: {}", metric.selector, metric.unit.name(), e.message))
            .with_label(span, format!("expected {}", metric.unit.name()))
            .with_help(format!("write the bound like {}", metric.unit.example())),
    );
}

fn bound(metric: &ResolvedMetric, check: &Check, diags: &mut Vec<Diagnostic>) -> Option<Bound> {
    match check {
        Check::Compare { op, value } => match quantity(metric.unit, &value.value) {
            Ok(q) => Some(Bound::Compare { op: op.value, value: q }),
            Err(e) => {
                unit_error(metric, value.span, e, diags);
                None
            }
        },
        Check::Within { range } => {
            let Some((a, b)) = units::split_range(&range.value) else {
                diags.push(
                    Diagnostic::error(Code::InvalidRange, format!("`{}` is not a range", range.value))
                        .with_label(range.span, "expected low..high")
                        .with_help(format!("for example within=\"{}\"", range_example(metric.unit))),
                );
                return None;
            };
            let end = |t: &str| quantity(metric.unit, &KdlValue::String(t.to_string()));
            match (end(a), end(b)) {
                (Ok(lo), Ok(hi)) if lo.base() <= hi.base() => Some(Bound::Within { lo, hi }),
                (Ok(_), Ok(_)) => {
                    diags.push(
                        Diagnostic::error(Code::InvalidRange, "the range is empty: its low end is above its high end")
                            .with_label(range.span, "empty range")
                            .with_help("write the smaller value first"),
                    );
                    None
                }
                (Err(e), _) | (_, Err(e)) => {
                    unit_error(metric, range.span, e, diags);
                    None
                }
            }
        }
    }
}

fn range_example(unit: Unit) -> &'static str {
    match unit {
        Unit::Duration => "10ms..50ms",
        Unit::Rate => "10/s..50/s",
        _ => "5%..15%",
    }
}

/// A search's SLOs, resolved. Each step reads the searched workload's own record, and the
/// metrics of the server it scrapes; a bound on another subject (a probe, another workload)
/// cannot settle a step.
fn search_slos_of(sc: &Scenario, s: &Search, diags: &mut Vec<Diagnostic>) -> Vec<ValidCondition> {
    let own = sc.workloads.iter().position(|w| w.name.value == s.workload.value);
    let scrapes = own.is_some_and(|i| sc.workloads[i].spec.kind().server_metrics().is_some());
    let mut out = vec![];
    for c in &s.slos {
        let Some(v) = condition(sc, c, diags) else { continue };
        let Some(own) = own else {
            out.push(v);
            continue;
        };
        let (label, help) = match v.metric.subject {
            Subject::Workload(i) if i == own => {
                out.push(v);
                continue;
            }
            Subject::Probe(ProbeKind::Server) if scrapes => {
                out.push(v);
                continue;
            }
            Subject::Probe(ProbeKind::Server) => (
                "no server scraped for this workload",
                format!("`server.*` SLOs read the server that `{}` scrapes: an openai workload with scraping on (the default; `metrics #false` turns it off)", s.workload.value),
            ),
            _ => (
                "another subject",
                "a search step is judged on the searched workload's own samples and its server's metrics: write the workload's metrics without a prefix (\"ttft.p95 < 200ms\"), the server's with `server.`".to_string(),
            ),
        };
        diags.push(
            Diagnostic::error(
                Code::InvalidCondition,
                format!("`{}` is not a metric of `{}`", v.metric.selector, s.workload.value),
            )
            .with_label(c.metric.subject.span, label)
            .with_help(help),
        );
    }
    out
}

fn condition(sc: &Scenario, c: &Condition, diags: &mut Vec<Diagnostic>) -> Option<ValidCondition> {
    let metric = resolve(sc, &c.metric, diags)?;
    match quantity(metric.unit, &c.value.value) {
        Ok(value) => Some(ValidCondition { metric, op: c.op.value, value, span: c.metric.text.span }),
        Err(e) => {
            unit_error(&metric, c.value.span, e, diags);
            None
        }
    }
}

/// Declared probes, plus a probe at the default interval for every probe kind that an
/// expectation names but the scenario does not declare.
/// The server's metrics come from the `openai` workloads that scrape it: a `probe "server"`
/// node has nothing to sample, and a bound on `server.*` needs such a workload.
fn check_server_metrics(sc: &Scenario, expectations: &[ValidExpectation], diags: &mut Vec<Diagnostic>) {
    for p in sc.probes.iter().filter(|p| p.kind.value == ProbeKind::Server) {
        diags.push(
            Diagnostic::error(Code::UnknownValue, "the server's metrics are not a probe to declare")
                .with_label(p.kind.span, "not a sampled probe")
                .with_help("an openai workload scrapes its server by default; set the URL or interval with `metrics url=\"...\" every=\"1s\"` inside it"),
        );
    }
    let scraped = sc.workloads.iter().any(|w| w.spec.kind().server_metrics().is_some());
    for e in expectations.iter().filter(|e| e.metric.subject == Subject::Probe(ProbeKind::Server)) {
        if !scraped {
            diags.push(
                Diagnostic::error(Code::UnknownWorkload, format!("`{}` needs a server to scrape", e.metric.selector))
                    .with_label(sc.expectations[e.index].metric.subject.span, "no workload scrapes a server")
                    .with_help("server metrics come from an openai workload with scraping on (the default; `metrics #false` turns it off)"),
            );
        }
    }
}

fn probes(sc: &Scenario, expectations: &[ValidExpectation]) -> Vec<(ProbeKind, Duration, bool)> {
    let mut out: Vec<(ProbeKind, Duration, bool)> = sc
        .probes
        .iter()
        .map(|p| (p.kind.value, p.every.as_ref().map(|e| e.value).unwrap_or(DEFAULT_PROBE_INTERVAL), false))
        .collect();
    for e in expectations {
        if let Subject::Probe(kind) = e.metric.subject {
            if kind != ProbeKind::Server && !out.iter().any(|(k, _, _)| *k == kind) {
                out.push((kind, DEFAULT_PROBE_INTERVAL, true));
            }
        }
    }
    out
}
