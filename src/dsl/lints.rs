//! Stage 4, lints: warnings about scenarios that are valid but almost certainly not what
//! their author meant (bounds that can never pass or never fail, idle parts, limits).

use std::collections::HashMap;

use super::diag::{Code, Diagnostic};
use super::metrics::{self, Unit};
use super::model::*;
use super::span::FileId;
use super::units::Duration;
use super::validate::{Bound, Quantity, Subject, ValidScenario};

/// The largest share of samples that can lie above mean + k·sigma, by Cantelli's inequality.
pub fn cantelli_max(k: f64) -> f64 {
    1.0 / (1.0 + k * k)
}

pub fn lint(
    v: &ValidScenario,
    root: FileId,
    params: &[ParamDecl],
    used: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) {
    impossible_bounds(v, diags);
    percentile_order(v, diags);
    probe_intervals(&v.scenario, diags);
    run_limit(&v.scenario, diags);
    // Unused or idle parts are often the echo of an error (a misspelt reference): only
    // report them once the scenario is otherwise valid.
    if diags.iter().any(|d| d.is_error()) {
        return;
    }
    idle_parts(&v.scenario, diags);
    contention(&v.scenario, std::thread::available_parallelism().map_or(1, |n| n.get()), diags);
    for p in params.iter().filter(|p| p.name.span.file == root && !used(&p.name.value)) {
        diags.push(
            Diagnostic::warning(Code::UnusedParameter, format!("parameter `{}` is never used", p.name.value))
                .with_label(p.name.span, "declared here")
                .with_help(format!("refer to it as \"${}\" in a value, or remove it", p.name.value)),
        );
    }
}

fn ge(op: Comparison) -> bool {
    matches!(op, Comparison::Gt | Comparison::Ge)
}

/// Bounds on shares above 100 %, and spike-rate bounds beyond Cantelli's limit.
fn impossible_bounds(v: &ValidScenario, diags: &mut Vec<Diagnostic>) {
    for e in &v.expectations {
        let exp = &v.scenario.expectations[e.index];
        let span = match &exp.check {
            Check::Compare { value, .. } => value.span,
            Check::Within { range } => range.span,
        };
        let agg = e.metric.aggregation.as_deref();
        let (max, why) = if agg == Some("spike_rate") {
            let k = exp.k.as_ref().map(|k| k.value).unwrap_or(3.0);
            (
                cantelli_max(k),
                format!(
                    "at most 1/(1+k²) = {:.1}% of samples can exceed mean + {k}·sigma (Cantelli's inequality)",
                    cantelli_max(k) * 100.0
                ),
            )
        } else if matches!(e.metric.unit, Unit::Ratio)
            || matches!(
                e.bound,
                Bound::Compare { value: Quantity::Share(_), .. } | Bound::Within { lo: Quantity::Share(_), .. }
            )
        {
            (1.0, "a share cannot exceed 100%".to_string())
        } else {
            continue;
        };
        let robust = "use `robust_spike_rate` (median + k·1.4826·MAD) or a smaller k for a wider range";
        let help = if agg == Some("spike_rate") { robust } else { "bound the share at 100% or below" };
        let warn =
            |code: Code, msg: String| Diagnostic::warning(code, msg).with_label(span, why.clone()).with_help(help);
        match e.bound {
            Bound::Compare { op, value } => {
                let x = value.base();
                if ge(op) && (x > max || (op == Comparison::Gt && x >= max)) {
                    diags.push(warn(Code::NeverPasses, format!("`{}` {op} {value} can never pass", e.metric.selector)));
                } else if !ge(op) && op != Comparison::Eq && (x > max || (op == Comparison::Le && x >= max)) {
                    diags.push(warn(Code::NeverFails, format!("`{}` {op} {value} can never fail", e.metric.selector)));
                }
            }
            Bound::Within { lo, hi } => {
                if lo.base() > max {
                    diags.push(warn(
                        Code::NeverPasses,
                        format!("`{}` within {lo}..{hi} can never pass", e.metric.selector),
                    ));
                } else if hi.base() > max {
                    let share = (hi.base() - max) / (hi.base() - lo.base()).max(f64::MIN_POSITIVE);
                    diags.push(warn(
                        Code::SpikeRateUnreachable,
                        format!(
                            "{:.0}% of the range {lo}..{hi} on `{}` is unreachable (above {:.1}%)",
                            share * 100.0,
                            e.metric.selector,
                            max * 100.0
                        ),
                    ));
                }
            }
        }
    }
}

/// An upper bound on a high percentile tighter than on a lower one can never hold alone.
fn percentile_order(v: &ValidScenario, diags: &mut Vec<Diagnostic>) {
    // (metric, phase) -> [(percentile, upper bound, expectation index)]
    type Bounds = Vec<(f64, f64, usize)>;
    let mut groups: HashMap<(String, Option<usize>), Bounds> = HashMap::new();
    for (i, e) in v.expectations.iter().enumerate() {
        let (Some(p), Bound::Compare { op: Comparison::Lt | Comparison::Le, value }) =
            (e.metric.aggregation.as_deref().and_then(metrics::percentile), &e.bound)
        else {
            continue;
        };
        let key = (format!("{:?}.{}", e.metric.subject, e.metric.def.name), e.phase);
        groups.entry(key).or_default().push((p, value.base(), i));
    }
    for list in groups.values() {
        for &(p_hi, b_hi, i_hi) in list {
            for &(p_lo, b_lo, i_lo) in list {
                if p_hi > p_lo && b_hi < b_lo {
                    let (hi, lo) = (&v.expectations[i_hi], &v.expectations[i_lo]);
                    let span =
                        |e: &super::validate::ValidExpectation| v.scenario.expectations[e.index].metric.text.span;
                    diags.push(
                        Diagnostic::warning(Code::InconsistentPercentiles, format!("the bound on `{}` is tighter than the bound on `{}`", hi.metric.selector, lo.metric.selector))
                            .with_label(span(hi), format!("{}", hi.bound))
                            .with_label(span(lo), format!("{}", lo.bound))
                            .with_help("a higher percentile is never below a lower one, so the looser lower-percentile bound is implied; check for a typo"),
                    );
                }
            }
        }
    }
}

fn idle_parts(sc: &Scenario, diags: &mut Vec<Diagnostic>) {
    for w in &sc.workloads {
        let driven = sc.phases.iter().any(|p| {
            p.drives.iter().any(|d| d.workload.value == w.name.value)
                || p.search.as_ref().is_some_and(|s| s.workload.value == w.name.value)
        });
        if !driven {
            diags.push(
                Diagnostic::warning(Code::UnusedWorkload, format!("workload `{}` is never driven", w.name.value))
                    .with_label(w.name.span, "defined but no phase drives it")
                    .with_help(format!("add `drive \"{}\" ...` to a phase, or remove the workload", w.name.value)),
            );
        }
    }
    for p in &sc.phases {
        if p.drives.is_empty() && p.search.is_none() {
            let msg = if p.pressure.is_some() { "applies pressure but drives no workload" } else { "drives nothing" };
            diags.push(
                Diagnostic::warning(Code::IdlePhase, format!("phase `{}` {msg}", p.name.value))
                    .with_label(p.name.span, "no `drive` or `search`")
                    .with_help("add `drive \"workload\" concurrency=1` (or rate=...) inside the phase"),
            );
        }
    }
}

/// Two CPU-bound workloads driven in one measured phase, on a machine with fewer cores than
/// they demand together: each one's latency would measure the other's load (a retrieval p95
/// that fails beside an inference workload, with advice about ef that cannot help).
pub fn contention(sc: &Scenario, cores: usize, diags: &mut Vec<Diagnostic>) {
    for phase in sc.phases.iter().filter(|p| p.role == PhaseRole::Measure && !p.poisoned) {
        let bound: Vec<(&Drive, usize)> = phase
            .drives
            .iter()
            .filter_map(|d| {
                let w = sc.workloads.iter().find(|w| w.name.value == d.workload.value)?;
                cpu_demand(sc, w, &d.shape.value, cores).map(|n| (d, n))
            })
            .collect();
        let demand: usize = bound.iter().map(|(_, n)| n).sum();
        let [(a, _), (b, _), ..] = bound.as_slice() else { continue };
        if demand <= cores {
            continue;
        }
        let (a, b) = (&a.workload, &b.workload);
        diags.push(
            Diagnostic::warning(
                Code::CpuContention,
                format!(
                    "`{}` and `{}` are both CPU-bound and driven together in phase `{}`: they need about {demand} cores, this machine has {cores}",
                    a.value, b.value, phase.name.value
                ),
            )
            .with_label(a.span, "CPU-bound")
            .with_label(b.span, "CPU-bound, in the same phase")
            .with_help(
                "give each its own phase (one after the other), or move one to a GPU with device=\"cuda\"; driven together, each one's latency measures the other's load",
            ),
        );
    }
}

/// Cores a drive of a CPU-bound workload keeps busy, or `None` when the workload mostly
/// waits (a synthetic service without `cpu-work`, an endpoint) or runs on a GPU. Inference on
/// the CPU spreads each request's matrix products over the cores: counted as two per
/// concurrent request (small models' products gain little beyond that).
fn cpu_demand(sc: &Scenario, w: &Workload, shape: &LoadShape, cores: usize) -> Option<usize> {
    let device = w.device.as_ref().or(sc.device.as_ref()).map(|d| d.value.kind);
    let on_cpu = matches!(device, None | Some(DeviceKind::Cpu));
    let workers = match shape {
        LoadShape::Closed { concurrency } => *concurrency as usize,
        LoadShape::RampConcurrency { from, to } => (*from).max(*to) as usize,
        _ => 1,
    };
    w.spec.kind().cpu_demand(workers, cores, on_cpu)
}

fn probe_intervals(sc: &Scenario, diags: &mut Vec<Diagnostic>) {
    for p in &sc.probes {
        if let Some(every) = p.every.as_ref().filter(|e| e.value < Duration(10_000_000)) {
            diags.push(
                Diagnostic::warning(
                    Code::ProbeIntervalTooShort,
                    format!("sampling the {} probe every {} costs more than it tells", p.kind.value, every.value),
                )
                .with_label(every.span, "under 10ms")
                .with_help("probes read /proc and NVML; sample every 100ms or more"),
            );
        }
    }
}

fn run_limit(sc: &Scenario, diags: &mut Vec<Diagnostic>) {
    let Some(limit) = &sc.run_limit else { return };
    let total: u64 = sc.phases.iter().filter_map(|p| p.duration.as_ref()).map(|d| d.value.0).sum();
    if total > limit.value.0 {
        diags.push(
            Diagnostic::warning(
                Code::RunLimitExceeded,
                format!("the phases last {} in all, over the run limit of {}", Duration(total), limit.value),
            )
            .with_label(limit.span, "run limit")
            .with_help("shorten phases (e.g. with --set) or raise run-limit; the run would stop at the limit"),
        );
    }
}

/// True when a subject is a probe (used by the planner to describe expectations).
pub fn is_probe(s: Subject) -> bool {
    matches!(s, Subject::Probe(_))
}
