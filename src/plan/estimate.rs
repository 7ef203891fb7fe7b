//! Timeline arithmetic for the plan: phase offsets, expected request counts, seeds, and
//! one-line descriptions of workloads and load shapes.

use crate::dsl::kinds::Estimating;
use crate::dsl::model::*;
use crate::dsl::source::SourceMap;
use crate::dsl::units::{trim_float, Duration};

use crate::dsl::validate::ValidScenario;

use super::run::{conditions, declared_length, PressureSpec, SearchSpec, StopCondition};
use super::{Origin, PlannedDrive, PlannedPhase, PlannedSearch};

/// Default bound on requests in flight per open-loop drive: beyond it, starts are dropped
/// (and counted) instead of piling up without limit behind a stalled system.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 10_000;

/// The seed of a run's repetition: the scenario's for the first, derived for the others
/// (so that repetitions are independent samples of the load process).
pub fn repetition_seed(seed: u64, repetition: u64) -> u64 {
    if repetition <= 1 {
        seed
    } else {
        derive_seed(seed, 0x5245_5045_4154, repetition)
    }
}

/// The seed of drive `drive` of phase `phase` (0-based) in a repetition.
pub fn drive_seed(seed: u64, repetition: u64, phase: usize, drive: usize) -> u64 {
    derive_seed(repetition_seed(seed, repetition), phase as u64 + 1, drive as u64 + 1)
}

/// The seed of level `level` of a breaking-point search in phase `phase`.
pub fn search_level_seed(seed: u64, repetition: u64, phase: usize, level: u32) -> u64 {
    derive_seed(repetition_seed(seed, repetition), phase as u64 + 1, 1000 + level as u64)
}

/// splitmix64: derives independent, reproducible seeds for each drive from the scenario seed.
pub fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn arrivals(a: &Arrivals) -> String {
    match a {
        Arrivals::Constant => "constant".into(),
        Arrivals::Poisson => "poisson".into(),
        Arrivals::Gamma { burstiness } => format!("gamma (burstiness {})", trim_float(*burstiness)),
    }
}

pub fn shape_summary(s: &LoadShape) -> String {
    match s {
        LoadShape::Closed { concurrency } => {
            format!("closed loop, {concurrency} worker{}", if *concurrency == 1 { "" } else { "s" })
        }
        LoadShape::Open { rate, arrivals: a } => format!("open loop {rate} {}", arrivals(a)),
        LoadShape::RampRate { from, to, arrivals: a } => format!("ramp {from} -> {to} {}", arrivals(a)),
        LoadShape::RampConcurrency { from, to } => format!("ramp {from} -> {to} workers"),
        LoadShape::Spike { base, peak, every, hold, .. } => {
            format!("spike {base} base, {peak} for {hold} every {every}")
        }
        LoadShape::Stages { stages, .. } => {
            let parts: Vec<String> = stages
                .iter()
                .map(|s| match s.target {
                    Target::Rate(r) => format!("{} at {r}", s.duration),
                    Target::Concurrency(c) => format!("{} x{c}", s.duration),
                })
                .collect();
            format!("stages: {}", parts.join(", "))
        }
    }
}

/// Mean service time of a synthetic request, when it is known in advance.
/// Seconds spent at the peak rate in `dur` of a spike shape: each period runs at the base
/// rate for `every - hold`, then at the peak for `hold`.
pub fn spike_seconds(dur: f64, every: f64, hold: f64) -> f64 {
    let periods = (dur / every).floor();
    let rem = dur - periods * every;
    periods * hold + (rem - (every - hold)).max(0.0)
}

/// Parameters of a synthetic model of `arch` (the count the inference backend builds).
pub fn synthetic_parameters(arch: SyntheticArch) -> u64 {
    crate::model_config::Config::of(arch).parameters()
}

/// What the plan brings to a workload kind's estimates: the device and model sizes.
pub fn estimating(sc: &Scenario, w: &Workload, cores: usize) -> Estimating<'static> {
    let gpu = matches!(w.device.as_ref().or(sc.device.as_ref()).map(|d| d.value.kind), Some(DeviceKind::Cuda { .. }));
    Estimating { gpu, scale: 2.0 / cores.max(1) as f64, parameters: &synthetic_parameters }
}

/// Estimated mean service time of a request of `w`, with a note on where it came from.
pub fn service_time(sc: &Scenario, w: &Workload) -> Option<(f64, String)> {
    w.spec.kind().service_time(&estimating(sc, w, 2))
}

/// Samples one request adds to `metric`'s histogram (`None`: not known before the run).
fn samples_per_request(w: &Workload, metric: &str) -> Option<f64> {
    let tokens = w.spec.kind().tokens_per_request();
    match metric {
        "itl" => tokens.map(|t| (t - 1.0).max(0.0)),
        _ => Some(1.0),
    }
}

/// An expectation whose phases are expected to collect fewer samples than a pass needs.
pub struct Shortfall {
    /// Index into the scenario's expectations.
    pub expectation: usize,
    /// `selector bound`, as written.
    pub text: String,
    pub needed: u64,
    pub expected: f64,
    pub confidence: f64,
    /// `phase `steady`` or `the measured phases`.
    pub scope: String,
    /// How the requests were estimated.
    pub estimate: String,
}

impl Shortfall {
    pub fn message(&self) -> String {
        format!(
            "`{}` needs at least {} samples to pass at {:.0}% confidence, but {} should give about {:.0}",
            self.text,
            self.needed,
            self.confidence * 100.0,
            self.scope,
            self.expected
        )
    }
}

/// A percentile bound (or an error share read as a quantile) and the drives that feed it,
/// resolved before the run: with a service time, it tells whether its phases will collect
/// the samples a pass needs. The plan keeps these so that the engine can ask again with the
/// service time a warmup measured.
#[derive(Debug, Clone)]
pub struct SampleNeed {
    /// Index into the scenario's expectations.
    pub expectation: usize,
    /// `selector bound`, as written.
    pub text: String,
    pub workload: String,
    /// Samples a pass needs at the expectation's confidence.
    pub needed: u64,
    pub confidence: f64,
    /// Samples one request adds to the metric.
    pub per_request: f64,
    /// The need is over every measured phase, so each repetition adds to it.
    pub repeats: bool,
    /// `phase `steady`` or `the measured phases`.
    pub scope: String,
    /// The workload's drives in those phases.
    pub drives: Vec<DriveLoad>,
    /// The service time declared or estimated before the run, with where it came from.
    pub service: Option<(f64, String)>,
}

/// One drive's load as the sample estimate reads it.
#[derive(Debug, Clone)]
pub struct DriveLoad {
    pub shape: LoadShape,
    /// The phase's fixed length, when it has one and no `until`.
    pub duration_s: Option<f64>,
    pub requests: Option<u64>,
}

impl SampleNeed {
    /// The shortfall with `service` as the mean service time and the measured phases run
    /// `repeat` times; `None` when enough samples are expected, or the count cannot be known.
    pub fn shortfall(&self, service: Option<&(f64, String)>, repeat: u64) -> Option<Shortfall> {
        let mut total = 0.0;
        let mut notes = vec![];
        for d in &self.drives {
            let (n, note) = expected(&d.shape, d.duration_s, service.map(|s| s.0));
            let n = n.map(|n| d.requests.map_or(n, |c| n.min(c as f64)))?;
            total += n;
            notes.push(match service {
                Some((_, how)) if note.starts_with("closed") => format!("{note} ({how})"),
                _ => note,
            });
        }
        let expected = total * self.per_request * if self.repeats { repeat as f64 } else { 1.0 };
        if expected >= self.needed as f64 {
            return None;
        }
        notes.dedup();
        Some(Shortfall {
            expectation: self.expectation,
            text: self.text.clone(),
            needed: self.needed,
            expected,
            confidence: self.confidence,
            scope: self.scope.clone(),
            estimate: notes.join("; "),
        })
    }
}

/// The sample needs of a scenario's bounds: percentile bounds, and error shares read as the
/// (1 - share) quantile of a request's failure (both need the same zero-exceedance count to
/// pass). Bounds on a window, on a probe, or on a metric whose samples per request are not
/// known before the run have none.
pub fn sample_needs(v: &ValidScenario) -> Vec<SampleNeed> {
    use crate::dsl::validate::{Bound, Subject};
    let sc = &v.scenario;
    let mut out = vec![];
    for e in &v.expectations {
        let x = &sc.expectations[e.index];
        let Subject::Workload(wi) = e.metric.subject else { continue };
        let (Bound::Compare { op, value }, None) = (&e.bound, &x.window) else { continue };
        let w = &sc.workloads[wi];
        let c = x.confidence.as_ref().or(sc.confidence.as_ref()).map_or(crate::stats::CONFIDENCE, |c| c.value.0);
        let q = match e.metric.aggregation.as_deref().and_then(crate::dsl::metrics::percentile) {
            Some(q) => q,
            None if e.metric.def.name == "error_rate" && matches!(op, Comparison::Lt | Comparison::Le) => {
                1.0 - value.base()
            }
            None => continue,
        };
        let phases: Vec<&Phase> = match e.phase {
            Some(i) => vec![&sc.phases[i]],
            None => sc.phases.iter().filter(|p| p.role == PhaseRole::Measure).collect(),
        };
        let (true, Some(per_request), false) =
            (q > 0.0 && q < 1.0, samples_per_request(w, e.metric.def.name), phases.is_empty())
        else {
            continue;
        };
        let drives = phases
            .iter()
            .flat_map(|p| {
                let duration_s = p.duration.as_ref().map(|d| d.value.as_secs_f64()).filter(|_| p.until.is_empty());
                p.drives.iter().filter(|d| d.workload.value == w.name.value).map(move |d| DriveLoad {
                    shape: d.shape.value.clone(),
                    duration_s,
                    requests: d.requests.as_ref().map(|r| r.value),
                })
            })
            .collect();
        out.push(SampleNeed {
            expectation: e.index,
            text: format!("{} {}", e.metric.selector, e.bound),
            workload: w.name.value.clone(),
            needed: crate::stats::evidence::needed_for_pass(q, *op, c),
            confidence: c,
            per_request,
            repeats: e.phase.is_none(),
            scope: match e.phase {
                Some(i) => format!("phase `{}`", sc.phases[i].name.value),
                None => "the measured phases".into(),
            },
            drives,
            service: service_time(sc, w),
        });
    }
    out
}

/// Percentile bounds (and error shares read as quantiles) whose phases cannot collect the
/// samples a pass needs, with the declared or estimated service times.
pub fn shortfalls(v: &ValidScenario) -> Vec<Shortfall> {
    let repeat = v.scenario.repeat.as_ref().map_or(1, |r| r.value);
    sample_needs(v).iter().filter_map(|n| n.shortfall(n.service.as_ref(), repeat)).collect()
}

/// The lint before a run: [`shortfalls`] from the declared or estimated service times, as
/// warnings at each expectation.
pub fn sample_lints(v: &ValidScenario, diags: &mut Vec<crate::dsl::diag::Diagnostic>) {
    use crate::dsl::diag::{Code, Diagnostic};
    let sc = &v.scenario;
    for s in shortfalls(v) {
        let x = &sc.expectations[s.expectation];
        diags.push(
            Diagnostic::warning(Code::TooFewSamples, s.message())
                .with_label(x.metric.text.span, format!("about {:.0} samples expected", s.expected))
                .with_help(format!(
                    "lengthen the phase, raise the load, `repeat` the run, or bound a lower percentile (estimate: {})",
                    s.estimate
                )),
        );
    }
}

/// Expected requests of a drive over `dur` seconds, with a note on how it was estimated.
fn expected(shape: &LoadShape, dur: Option<f64>, service: Option<f64>) -> (Option<f64>, String) {
    let closed = |workers: f64, d: f64| match service {
        Some(t) => {
            (Some(workers * d / t), format!("closed loop at a mean service time of {}", Duration::from_secs_f64(t)))
        }
        None => (None, "closed loop: depends on the service time".into()),
    };
    let stages_len = |stages: &[Stage]| stages.iter().map(|s| s.duration.as_secs_f64()).sum::<f64>();
    let Some(d) = dur.or(match shape {
        LoadShape::Stages { stages, .. } => Some(stages_len(stages)),
        _ => None,
    }) else {
        return (None, "the phase ends on a condition".into());
    };
    match shape {
        LoadShape::Open { rate, .. } => (Some(rate.0 * d), "rate x duration".into()),
        LoadShape::RampRate { from, to, .. } => {
            (Some((from.0 + to.0) / 2.0 * d), "mean rate of the ramp x duration".into())
        }
        LoadShape::Spike { base, peak, every, hold, .. } => {
            let at_peak = spike_seconds(d, every.as_secs_f64(), hold.as_secs_f64());
            (Some(base.0 * (d - at_peak) + peak.0 * at_peak), "base and peak rates x their time".into())
        }
        LoadShape::Closed { concurrency } => closed(*concurrency as f64, d),
        LoadShape::RampConcurrency { from, to } => closed((*from + *to) as f64 / 2.0, d),
        LoadShape::Stages { stages, .. } => {
            let mut left = d;
            let mut total = 0.0;
            for s in stages {
                let t = s.duration.as_secs_f64().min(left);
                left -= t;
                match s.target {
                    Target::Rate(r) => total += r.0 * t,
                    Target::Concurrency(c) => match service {
                        Some(st) => total += c as f64 * t / st,
                        None => return (None, "closed-loop stages depend on the service time".into()),
                    },
                }
            }
            (Some(total), "sum over stages".into())
        }
    }
}

/// Shortest and longest length of a phase (`None`: unbounded).
fn phase_length(p: &Phase) -> (Duration, Option<Duration>) {
    let staged = p.drives.iter().filter_map(|d| match &d.shape.value {
        LoadShape::Stages { stages, .. } => Some(Duration(stages.iter().map(|s| s.duration.0).sum())),
        _ => None,
    });
    let fixed = p.duration.as_ref().map(|d| d.value).or_else(|| staged.max());
    if let Some(s) = &p.search {
        let spec = SearchSpec::of(s, vec![], crate::stats::CONFIDENCE);
        let (step, steps) = (spec.step_max(), spec.max_steps as u64);
        let bound = spec.max_time.unwrap_or(Duration(step.0 * steps));
        let max = fixed.map(|f| f.min(bound)).unwrap_or(bound);
        return (spec.settle.min(max), Some(max));
    }
    match (fixed, p.until.is_empty()) {
        (Some(d), true) => (d, Some(d)),
        (Some(d), false) => (Duration(0), Some(d)),
        (None, _) => (Duration(0), None),
    }
}

pub fn phases(v: &ValidScenario, seed: u64, sources: &SourceMap) -> Vec<PlannedPhase> {
    let sc = &v.scenario;
    let mut start = Duration(0);
    let mut latest = Some(Duration(0));
    let mut out = vec![];
    for (pi, p) in sc.phases.iter().enumerate() {
        let (min, max) = phase_length(p);
        let dur = max.filter(|m| *m == min).or(p.duration.as_ref().map(|d| d.value)).map(|d| d.as_secs_f64());
        let drives = p
            .drives
            .iter()
            .enumerate()
            .map(|(di, d)| {
                let service = sc
                    .workloads
                    .iter()
                    .find(|w| w.name.value == d.workload.value)
                    .and_then(|w| service_time(sc, w))
                    .map(|s| s.0);
                let exact = if p.until.is_empty() { dur } else { None };
                let (mut n, mut note) = expected(&d.shape.value, exact, service);
                if let Some(cap) = &d.requests {
                    if n.is_none_or(|x| x > cap.value as f64) {
                        n = Some(cap.value as f64);
                        note = "capped by requests=".into();
                    }
                }
                PlannedDrive {
                    workload: d.workload.value.clone(),
                    shape: d.shape.value.clone(),
                    summary: shape_summary(&d.shape.value),
                    expected_requests: n.map(|x| x.round() as u64),
                    estimate: note,
                    max_in_flight: d.max_in_flight.as_ref().map(|m| m.value),
                    requests: d.requests.as_ref().map(|r| r.value),
                    seed: drive_seed(seed, 1, pi, di),
                    origin: Origin::of(sources, d.workload.span),
                }
            })
            .collect();
        out.push(PlannedPhase {
            name: p.name.value.clone(),
            role: p.role,
            start,
            latest_start: latest,
            min_duration: min,
            max_duration: max,
            until: p
                .until
                .iter()
                .map(|c| c.metric.text.value.clone() + " " + c.op.value.as_str() + " " + &value_text(&c.value.value))
                .collect(),
            drives,
            pressure: p.pressure.as_ref().map(pressure_summary),
            search: p
                .search
                .as_ref()
                .map(|s| search_summary(s, conditions(&v.search_slos[pi], v), confidence(v), sources)),
            origin: Origin::of(sources, p.name.span),
            length: declared_length(p),
            stop_when: conditions(&v.phase_until[pi], v),
            pressure_spec: p.pressure.as_ref().map(PressureSpec::of),
        });
        start = Duration(start.0 + min.0);
        latest = latest.zip(max).map(|(a, b)| Duration(a.0 + b.0));
    }
    out
}

fn value_text(v: &kdl::KdlValue) -> String {
    match v {
        kdl::KdlValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pressure_summary(p: &Pressure) -> String {
    let mut parts = vec![];
    if let Some(m) = &p.memory {
        parts.push(format!("memory ballast {}", m.value));
    }
    if let Some(c) = &p.cpu_threads {
        parts.push(format!("{} CPU burner thread{}", c.value, if c.value == 1 { "" } else { "s" }));
    }
    if let Some(g) = &p.gpu_memory {
        parts.push(format!("GPU memory {}", g.value));
    }
    let cap = p.cap.as_ref().map(|c| c.value.to_string()).unwrap_or_else(|| "85%".into());
    format!("{} (memory cap {cap})", parts.join(", "))
}

/// The scenario's confidence (the evidence rule's default where it says none).
fn confidence(v: &ValidScenario) -> f64 {
    v.scenario.confidence.as_ref().map_or(crate::stats::CONFIDENCE, |c| c.value.0)
}

fn search_summary(s: &Search, slos: Vec<StopCondition>, confidence: f64, sources: &SourceMap) -> PlannedSearch {
    let spec = SearchSpec::of(s, slos, confidence);
    let range = match (&s.concurrency, &s.rate) {
        (Some(c), _) if spec.over == SearchOver::Concurrency => format!("concurrency {}..{}", c.value.lo, c.value.hi),
        (_, Some(r)) => format!("rate {}", r.value),
        _ => String::new(),
    };
    let bracket = if spec.geometric { format!("x{} steps", trim_float(spec.factor)) } else { "linear steps".into() };
    let needs: Vec<String> = (spec.slos.iter())
        .filter_map(|c| samples_to_hold(c, &spec).map(|n| format!("`{}` needs {n} samples, none beyond it", c.text)))
        .collect();
    let needs = if needs.is_empty() { String::new() } else { format!("; for a step to hold, {}", needs.join(", ")) };
    PlannedSearch {
        workload: s.workload.value.clone(),
        summary: format!(
            "capacity of {} over {range}: {bracket} to a bracket, then bisection on a monotone fit; each step settles {} then runs until its verdict is settled at {:.0}% confidence (at most {}), at most {} steps{needs}",
            s.workload.value,
            spec.settle,
            confidence * 100.0,
            spec.step,
            spec.max_steps
        ),
        slos: spec.slos.iter().map(|c| c.text.clone()).collect(),
        origin: Origin::of(sources, s.workload.span),
        spec,
    }
}

/// The fewest samples, none beyond the bound, with which a step can hold an SLO: a
/// quantile's or an error share's upper bound at the step's per-look confidence. `None` for
/// the other rules (their need depends on the values).
pub fn samples_to_hold(c: &StopCondition, spec: &SearchSpec) -> Option<u64> {
    use crate::dsl::model::Comparison::{Le, Lt};
    let looks = super::run::looks(spec.step.as_secs_f64()).len() as f64;
    let conf = 1.0 - (1.0 - spec.confidence) / looks;
    let upper = matches!(c.op, Lt | Le);
    // An error share below b is the (1 - b)-quantile of "failed" staying at 0.
    let q = match (c.metric, c.aggregation.as_deref().and_then(crate::dsl::metrics::percentile)) {
        (_, Some(q)) => q,
        ("error_rate", None) if c.value > 0.0 && c.value < 1.0 => 1.0 - c.value,
        _ => return None,
    };
    upper.then(|| crate::stats::evidence::needed_for_pass(q, c.op, conf))
}

/// One line for the plan: what the workload does (its kind says).
pub fn workload_summary(w: &Workload) -> String {
    w.spec.kind().summary()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_time() {
        // 60 s at every=15 s, hold=2 s: four full periods, 2 s at the peak in each.
        assert_eq!(spike_seconds(60.0, 15.0, 2.0), 8.0);
        // 14 s: one partial period, the last 1 s of the burst.
        assert_eq!(spike_seconds(14.0, 15.0, 2.0), 1.0);
        assert_eq!(spike_seconds(10.0, 15.0, 2.0), 0.0);
    }

    #[test]
    fn seeds_differ_per_drive_and_repeat() {
        assert_eq!(derive_seed(42, 1, 1), derive_seed(42, 1, 1));
        assert_ne!(derive_seed(42, 1, 1), derive_seed(42, 1, 2));
        assert_ne!(derive_seed(42, 1, 1), derive_seed(43, 1, 1));
    }
}
