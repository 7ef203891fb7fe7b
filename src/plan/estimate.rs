//! Timeline arithmetic for the plan: phase offsets, expected request counts, seeds, and
//! one-line descriptions of workloads and load shapes.

use crate::dsl::kinds::Estimating;
use crate::dsl::model::*;
use crate::dsl::source::SourceMap;
use crate::dsl::units::{trim_float, Duration};

use super::{Origin, PlannedDrive, PlannedPhase, PlannedSearch};

/// Default length of one breaking-point search step, and the default step limit.
pub const SEARCH_STEP: Duration = Duration(10_000_000_000);
pub const SEARCH_MAX_STEPS: u32 = 20;
/// Default growth factor of a geometric search.
pub const SEARCH_FACTOR: f64 = 2.0;
/// Default bound on requests in flight per open-loop drive: beyond it, starts are dropped
/// (and counted) instead of piling up without limit behind a stalled system.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 10_000;

/// The resolved limits of a breaking-point search: step length, step count and factor.
pub fn search_limits(s: &Search) -> (Duration, u32, f64) {
    (
        s.step_duration.as_ref().map_or(SEARCH_STEP, |d| d.value),
        s.max_steps.as_ref().map_or(SEARCH_MAX_STEPS, |m| m.value),
        s.factor.as_ref().map_or(SEARCH_FACTOR, |f| f.value),
    )
}

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

/// Service time of a workload: `measured` where it knows one (a warmup's mean latency),
/// else the declared or estimated one.
pub type ServiceTime<'a> = &'a dyn Fn(&Workload) -> Option<(f64, String)>;

/// Percentile bounds (and error shares read as quantiles) whose phases cannot collect the
/// samples a pass needs at the bound's confidence, with request counts estimated from the
/// drives and `service`.
pub fn shortfalls(v: &crate::dsl::validate::ValidScenario, service: ServiceTime<'_>) -> Vec<Shortfall> {
    use crate::dsl::validate::{Bound, Subject};
    let sc = &v.scenario;
    let repeat = sc.repeat.as_ref().map_or(1, |r| r.value) as f64;
    let mut out = vec![];
    for e in &v.expectations {
        let x = &sc.expectations[e.index];
        let Subject::Workload(wi) = e.metric.subject else { continue };
        let (Bound::Compare { op, value }, None) = (&e.bound, &x.window) else { continue };
        let w = &sc.workloads[wi];
        let c = x.confidence.as_ref().or(sc.confidence.as_ref()).map_or(crate::stats::CONFIDENCE, |c| c.value.0);
        // A percentile bound, or an error share bound read as the (1 - share) quantile of a
        // request's failure: both need the same zero-exceedance sample count to pass.
        let q = match e.metric.aggregation.as_deref().and_then(crate::dsl::metrics::percentile) {
            Some(q) => q,
            None if e.metric.def.name == "error_rate" && matches!(op, Comparison::Lt | Comparison::Le) => {
                1.0 - value.base()
            }
            None => continue,
        };
        if !(q > 0.0 && q < 1.0) {
            continue;
        }
        let needed = crate::stats::evidence::needed_for_pass(q, *op, c);
        let phases: Vec<&Phase> = match e.phase {
            Some(i) => vec![&sc.phases[i]],
            None => sc.phases.iter().filter(|p| p.role == PhaseRole::Measure).collect(),
        };
        let mut total = 0.0;
        let mut notes = vec![];
        let mut known = true;
        for p in &phases {
            let dur = p.duration.as_ref().map(|d| d.value.as_secs_f64()).filter(|_| p.until.is_empty());
            for d in p.drives.iter().filter(|d| d.workload.value == w.name.value) {
                let service = service(w);
                let (n, note) = expected(&d.shape.value, dur, service.as_ref().map(|s| s.0));
                let cap = d.requests.as_ref().map(|r| r.value as f64);
                match n.map(|n| cap.map_or(n, |c| n.min(c))) {
                    Some(n) => {
                        total += n;
                        notes.push(match &service {
                            Some((_, how)) if note.starts_with("closed") => format!("{note} ({how})"),
                            _ => note,
                        });
                    }
                    None => known = false,
                }
            }
        }
        let per = samples_per_request(w, e.metric.def.name);
        let (true, Some(per)) = (known, per) else { continue };
        let expected_samples = total * per * if e.phase.is_some() { 1.0 } else { repeat };
        if expected_samples >= needed as f64 || phases.is_empty() {
            continue;
        }
        notes.dedup();
        out.push(Shortfall {
            expectation: e.index,
            text: format!("{} {}", e.metric.selector, e.bound),
            needed,
            expected: expected_samples,
            confidence: c,
            scope: match e.phase {
                Some(i) => format!("phase `{}`", sc.phases[i].name.value),
                None => "the measured phases".into(),
            },
            estimate: notes.join("; "),
        });
    }
    out
}

/// The lint before a run: [`shortfalls`] from the declared or estimated service times, as
/// warnings at each expectation.
pub fn sample_lints(v: &crate::dsl::validate::ValidScenario, diags: &mut Vec<crate::dsl::diag::Diagnostic>) {
    use crate::dsl::diag::{Code, Diagnostic};
    let sc = &v.scenario;
    for s in shortfalls(v, &|w| service_time(sc, w)) {
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
        let (step, steps, _) = search_limits(s);
        let steps = steps as u64;
        let bound = s.max_time.as_ref().map(|t| t.value).unwrap_or(Duration(step.0 * steps));
        let max = fixed.map(|f| f.min(bound)).unwrap_or(bound);
        return (step.min(max), Some(max));
    }
    match (fixed, p.until.is_empty()) {
        (Some(d), true) => (d, Some(d)),
        (Some(d), false) => (Duration(0), Some(d)),
        (None, _) => (Duration(0), None),
    }
}

pub fn phases(sc: &Scenario, seed: u64, sources: &SourceMap) -> Vec<PlannedPhase> {
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
            search: p.search.as_ref().map(|s| search_summary(s, sources)),
            origin: Origin::of(sources, p.name.span),
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

fn search_summary(s: &Search, sources: &SourceMap) -> PlannedSearch {
    let step = s.step.as_ref().map(|x| x.value).unwrap_or(StepPolicy::Geometric);
    let (step_len, steps, factor) = search_limits(s);
    let policy = match step {
        StepPolicy::Geometric => format!("x{} steps then bisection", trim_float(factor)),
        StepPolicy::Linear => "linear steps then bisection".into(),
    };
    PlannedSearch {
        workload: s.workload.value.clone(),
        summary: format!(
            "search {} over {} ({policy}, {step_len} per step, at most {steps} steps)",
            s.workload.value, s.rate.value
        ),
        until: s
            .until
            .iter()
            .map(|c| c.metric.text.value.clone() + " " + c.op.value.as_str() + " " + &value_text(&c.value.value))
            .collect(),
        origin: Origin::of(sources, s.workload.span),
    }
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
