//! The phase loop: for each phase of the plan, start its drives (and pressure), close a
//! window every second (reporting it and checking stop conditions), stop at the phase's end,
//! an `until` condition, the requests cap or an interrupt, and drain in-flight requests.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::drive::{self, DriveCtx, Stop};
use super::events::{Reporter, RunEvent, Warning};
use super::pressure::{Pressure, PressureReport};
use crate::dsl::model::{PhaseRole, WorkloadKind};
use crate::measure::record::{Recorded, Recorder};
use crate::measure::statistic as measure;
use crate::plan::estimate::{drive_seed, DEFAULT_MAX_IN_FLIGHT};
use crate::plan::{Plan, PlannedPhase, StopCondition};
use crate::probe::server::{Scrapers, ServerRecord, Target};
use crate::probe::{ProbeResult, Probes};
use crate::workload::Workload;

/// Tunables of the engine (not of the scenario).
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of a time-series window.
    pub window: Duration,
    /// How long in-flight requests may finish after a phase ends.
    pub drain: Duration,
    /// Recorder shards per workload and phase (contention vs memory).
    pub shards: usize,
    /// Probe readings are also given to this as they are taken (the live dashboard).
    pub probe_tap: Option<crate::probe::ProbeTap>,
}

impl Default for Options {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            window: Duration::from_secs(1),
            drain: Duration::from_secs(10),
            shards: (2 * cores).max(2),
            probe_tap: None,
        }
    }
}

/// One workload's record in one phase.
#[derive(Debug)]
pub struct WorkloadOutcome {
    pub name: String,
    pub kind: WorkloadKind,
    pub recorded: Recorded,
}

pub use super::capacity::{SearchOutcome, SearchStep};

#[derive(Debug)]
pub struct PhaseOutcome {
    pub name: String,
    pub role: PhaseRole,
    /// Which repetition of the measured block this phase ran in (1-based; phases before and
    /// after the block run once, as repetition 1).
    pub repetition: u64,
    pub started_s: f64,
    pub duration_s: f64,
    pub stopped_by: String,
    pub workloads: Vec<WorkloadOutcome>,
    pub search: Option<SearchOutcome>,
    pub pressure: Option<PressureReport>,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub started: SystemTime,
    pub duration: Duration,
    pub interrupted: bool,
    /// The scenario's `run-limit` ended the run before its phases did.
    pub limited: bool,
    /// The expectation marked `abort-on-fail` that stopped the run early, if one did.
    pub aborted_by: Option<String>,
    pub phases: Vec<PhaseOutcome>,
    pub probes: Vec<ProbeResult>,
    /// The model servers' own metrics, per phase (one record per scraping workload).
    pub servers: Vec<ServerRecord>,
    /// The host monitor's samples (the load generator's self-check).
    pub host: super::host::HostReport,
    pub warnings: Vec<Warning>,
    /// Per workload: where its token counts come from, and facts about its setup.
    pub workload_facts: BTreeMap<String, WorkloadFacts>,
}

#[derive(Debug, Clone)]
pub struct WorkloadFacts {
    pub token_source: &'static str,
    /// The workload's own record of its setup (`Workload::detail`).
    pub setup: Option<serde_json::Value>,
    /// What reports show and the evaluation reads of its setup (`Workload::facts`).
    pub facts: crate::workload::Facts,
    /// Set for a workload skipped on this machine: its kind (it has no record to carry it).
    pub skipped_kind: Option<WorkloadKind>,
}

/// Shared state of one run: the plan it executes (timeline, repeats, seeds, drives, stop
/// conditions, pressure, searches, probes, the bounds that abort a run) and the prepared
/// workloads.
pub struct Engine<'a> {
    pub plan: &'a Plan,
    pub workloads: BTreeMap<String, Arc<dyn Workload>>,
    pub options: Options,
    /// Set by SIGINT/SIGTERM: the current phase stops and no further phase starts.
    pub interrupt: Arc<Stop>,
    pub reporter: &'a mut dyn Reporter,
    origin: Instant,
    warnings: Vec<Warning>,
    aborted_by: Option<String>,
    skipped: BTreeMap<String, String>,
    /// The repetition being run (1-based).
    pub(super) repetition: u64,
    /// Set when the scenario's `run-limit` passed; it also sets `interrupt`.
    limit_hit: Arc<std::sync::atomic::AtomicBool>,
    /// The model servers' scrapers while the run lasts (a capacity step reads them too).
    pub(super) scrapers: Option<Scrapers>,
}

impl<'a> Engine<'a> {
    pub fn new(
        plan: &'a Plan,
        workloads: BTreeMap<String, Arc<dyn Workload>>,
        options: Options,
        interrupt: Arc<Stop>,
        reporter: &'a mut dyn Reporter,
    ) -> Self {
        Engine {
            plan,
            workloads,
            options,
            interrupt,
            reporter,
            origin: Instant::now(),
            warnings: vec![],
            aborted_by: None,
            skipped: BTreeMap::new(),
            repetition: 1,
            limit_hit: Arc::default(),
            scrapers: None,
        }
    }

    /// Runs `plan` on `rt` with default options and no interrupt, and returns what it
    /// measured: for benchmarks and tests that drive the engine without the CLI.
    pub fn run_to_end(
        rt: &tokio::runtime::Runtime,
        plan: &Plan,
        workloads: BTreeMap<String, Arc<dyn Workload>>,
        reporter: &mut dyn Reporter,
    ) -> RunOutcome {
        rt.block_on(Engine::new(plan, workloads, Options::default(), Arc::new(Stop::default()), reporter).execute())
    }

    /// What workload setup reported: warnings, and the workloads skipped on this machine.
    pub fn with_setup(mut self, warnings: Vec<Warning>, skipped: BTreeMap<String, String>) -> Self {
        self.warnings.extend(warnings);
        self.skipped = skipped;
        self
    }

    /// Why the interrupt flag is set: the run limit, or a signal.
    pub(super) fn stop_reason(&self) -> &'static str {
        if self.limit_hit.load(Ordering::SeqCst) {
            "run-limit"
        } else {
            "interrupted"
        }
    }

    fn warn(&mut self, w: Warning) {
        self.reporter.event(&RunEvent::Warning(w.clone()));
        self.warnings.push(w);
    }

    pub async fn execute(mut self) -> RunOutcome {
        let started = SystemTime::now();
        self.origin = Instant::now();
        let probes = Probes::tapped(
            &self.plan.probes.iter().map(|p| (p.kind, p.every.as_std())).collect::<Vec<_>>(),
            self.origin,
            self.options.probe_tap.clone(),
        );
        self.scrapers = Some(Scrapers::start(&self.scrape_targets(), self.origin, self.options.probe_tap.clone()));
        let host = super::host::HostMonitor::start(self.origin);
        // `run-limit` stops every phase kind the way an interrupt does (drain, write), from
        // the first phase's start; setup is not counted.
        let limiter = self.plan.run_limit.map(|limit| {
            let (hit, stop) = (self.limit_hit.clone(), self.interrupt.clone());
            tokio::spawn(async move {
                tokio::time::sleep(limit.as_std()).await;
                hit.store(true, Ordering::SeqCst);
                stop.set();
            })
        });
        let mut phases = vec![];
        let plan = self.plan;
        let order = plan.order();
        let count = order.len();
        for (step, &(index, repetition)) in order.iter().enumerate() {
            if self.interrupt.is_set() {
                break;
            }
            let phase = &plan.phases[index];
            self.repetition = repetition;
            let planned = |p: &PlannedPhase| p.length.map(|d| d.as_secs_f64());
            let planned_s = planned(phase);
            let remaining_s = order[step..].iter().map(|&(i, _)| planned(&plan.phases[i])).sum();
            let workloads = phase
                .drives
                .iter()
                .map(|d| d.workload.clone())
                .chain(phase.search.as_ref().map(|s| s.workload.clone()))
                .collect();
            self.reporter.event(&RunEvent::PhaseStarted {
                index: step,
                count,
                name: phase.name.clone(),
                role: phase.role,
                planned_s,
                remaining_s,
                workloads,
                at_s: self.origin.elapsed().as_secs_f64(),
            });
            if let Some(s) = &self.scrapers {
                s.phase_started(&phase.name, repetition).await;
            }
            let mut outcome = self.phase(index, phase).await;
            if let Some(s) = &self.scrapers {
                s.phase_finished().await;
            }
            outcome.repetition = repetition;
            if phase.role == PhaseRole::Warmup {
                self.warn_from_warmup(&outcome);
            }
            self.reporter.event(&RunEvent::PhaseFinished {
                name: outcome.name.clone(),
                stopped_by: outcome.stopped_by.clone(),
                duration_s: outcome.duration_s,
            });
            phases.push(outcome);
        }
        if let Some(l) = limiter {
            l.abort();
        }
        let probes = probes.finish();
        let servers = self.scrapers.take().map(Scrapers::finish).unwrap_or_default();
        let host = host.finish();
        self.reporter.finish();
        let limited = self.limit_hit.load(Ordering::SeqCst) && self.aborted_by.is_none();
        let interrupted = self.interrupt.is_set() && self.aborted_by.is_none() && !limited;
        let workload_facts = self.workload_facts();
        RunOutcome {
            started,
            duration: self.origin.elapsed(),
            interrupted,
            limited,
            aborted_by: self.aborted_by,
            phases,
            probes,
            servers,
            host,
            workload_facts,
            warnings: self.warnings,
        }
    }

    /// The model servers to scrape, from the plan.
    fn scrape_targets(&self) -> Vec<Target> {
        (self.plan.scrapes.iter())
            .map(|s| Target {
                workload: s.workload.clone(),
                url: s.url.clone(),
                every: s.every.as_std(),
                api_key_env: s.api_key_env.clone(),
            })
            .collect()
    }

    /// Each workload's facts after the run, and why a skipped one was skipped.
    fn workload_facts(&self) -> BTreeMap<String, WorkloadFacts> {
        let ran = self.workloads.iter().map(|(k, w)| {
            let facts = WorkloadFacts {
                token_source: w.token_source(),
                setup: w.detail(),
                facts: w.facts(),
                skipped_kind: None,
            };
            (k.clone(), facts)
        });
        let skipped = self.skipped.iter().map(|(k, why)| {
            let setup = Some(serde_json::json!({ "skipped": why }));
            let kind = self.plan.workloads.iter().find(|w| &w.name == k).map(|w| w.kind);
            let mut facts = crate::workload::Facts::default();
            facts.row("skipped", why.clone());
            (k.clone(), WorkloadFacts { token_source: "none (skipped)", setup, facts, skipped_kind: kind })
        });
        ran.chain(skipped).collect()
    }

    async fn phase(&mut self, index: usize, phase: &PlannedPhase) -> PhaseOutcome {
        let pressure = phase.pressure_spec.as_ref().map(|p| Pressure::apply(p.memory, p.cpu_threads, p.cap));
        // The phase's clock starts once its pressure is in place: touching a large memory
        // ballast takes seconds (about 10 s for 8 GB here), which used to come out of the
        // phase's duration and could leave its drives no time at all.
        let start = Instant::now();
        let started_s = start.duration_since(self.origin).as_secs_f64();
        if let Some(p) = pressure.as_ref().filter(|p| p.report.capped) {
            let w = format!(
                "phase `{}`: memory ballast stopped at {} MiB by the safety cap",
                phase.name,
                p.report.memory_held_bytes >> 20
            );
            self.warn(Warning::new("pressure_capped", w).in_phase(&phase.name));
        }
        if let Some(gpu) = phase.pressure_spec.as_ref().and_then(|p| p.gpu_memory.as_ref()) {
            self.warn(
                Warning::new(
                    "gpu_pressure_skipped",
                    format!(
                        "phase `{}`: GPU memory pressure ({}) needs the GPU support, not in this build; skipped",
                        phase.name, gpu
                    ),
                )
                .in_phase(&phase.name),
            );
        }
        let (workloads, stopped_by, search) = match &phase.search {
            Some(s) if !self.workloads.contains_key(&s.workload) => (vec![], "skipped".to_string(), None),
            Some(s) => self.search(index, phase, s).await,
            None => {
                let (w, why) = self.drives(index, phase, start).await;
                (w, why, None)
            }
        };
        let report = pressure.as_ref().map(|p| p.report.clone());
        drop(pressure); // released before the next phase, whatever happened
        PhaseOutcome {
            name: phase.name.clone(),
            role: phase.role,
            repetition: 1,
            started_s,
            duration_s: start.elapsed().as_secs_f64(),
            stopped_by,
            workloads,
            search,
            pressure: report,
        }
    }

    /// Runs the phase's drives until its end; returns the records and why it stopped.
    async fn drives(&mut self, index: usize, phase: &PlannedPhase, start: Instant) -> (Vec<WorkloadOutcome>, String) {
        let stop = Arc::new(Stop::default());
        let phase_secs = phase.length.map(|d| d.as_secs_f64());
        let end = phase.length.map(|d| start + d.as_std());
        let mut recorders: BTreeMap<String, Arc<Recorder>> = BTreeMap::new();
        let mut ctxs = vec![];
        let mut tasks = vec![];
        for (di, d) in phase.drives.iter().enumerate() {
            let name = d.workload.clone();
            if !self.workloads.contains_key(&name) {
                // Skipped on this machine (see `registry::Workloads::skipped`).
                continue;
            }
            let rec = recorders
                .entry(name.clone())
                .or_insert_with(|| {
                    Arc::new(
                        Recorder::new(start, self.options.window, self.options.shards)
                            .with_measures(self.workloads[&name].measures())
                            .with_slo(self.workloads[&name].slo()),
                    )
                })
                .clone();
            let ctx = Arc::new(DriveCtx::new(
                self.workloads[&name].clone(),
                rec,
                stop.clone(),
                drive_seed(self.plan.seed, self.repetition, index, di),
                d.requests,
                d.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            ));
            let segs = drive::segments(&d.shape, phase_secs);
            tasks.push(tokio::spawn(drive::drive(ctx.clone(), segs, start, end, self.options.shards)));
            ctxs.push(ctx);
        }
        let stopped_by = self.supervise(phase, start, end, &recorders, &phase.stop_when, &tasks).await;
        stop.set();
        self.drain(phase, &recorders, tasks).await;
        let now = Instant::now();
        // The windows the phase's end closes (the last, partial one) reach the reporters too.
        let elapsed_s = now.duration_since(self.origin).as_secs_f64();
        for (name, r) in &recorders {
            for summary in r.close(now) {
                self.reporter.event(&RunEvent::Window {
                    phase: phase.name.clone(),
                    workload: name.clone(),
                    elapsed_s,
                    summary,
                });
            }
        }
        let workloads = recorders
            .into_iter()
            .map(|(name, r)| {
                let mut recorded = r.finish(now);
                for c in ctxs.iter().filter(|c| Arc::ptr_eq(&c.recorder, &r)) {
                    recorded.counters.sent += c.dispatched.load(Ordering::Relaxed);
                    recorded.counters.late_sent += c.late_dispatches.load(Ordering::Relaxed);
                }
                WorkloadOutcome { kind: self.kind(&name), recorded, name }
            })
            .collect();
        (workloads, stopped_by)
    }

    pub(super) fn kind(&self, name: &str) -> WorkloadKind {
        self.plan.workloads.iter().find(|w| w.name == name).map_or(WorkloadKind::Synthetic, |w| w.kind)
    }

    /// Closes windows until the phase should end; returns why it ended.
    #[allow(clippy::too_many_arguments)]
    async fn supervise(
        &mut self,
        phase: &PlannedPhase,
        start: Instant,
        end: Option<Instant>,
        recorders: &BTreeMap<String, Arc<Recorder>>,
        conditions: &[StopCondition],
        tasks: &[tokio::task::JoinHandle<()>],
    ) -> String {
        let window = self.options.window;
        let mut next = start + window;
        loop {
            let wake = end.map_or(next, |e| e.min(next));
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
                _ = self.interrupt.wait() => {}
            }
            let now = Instant::now();
            for (name, r) in recorders {
                for summary in r.tick(now) {
                    let elapsed_s = now.duration_since(self.origin).as_secs_f64();
                    self.reporter.event(&RunEvent::Window {
                        phase: phase.name.clone(),
                        workload: name.clone(),
                        elapsed_s,
                        summary,
                    });
                }
                self.reporter.event(&RunEvent::InFlight {
                    workload: name.clone(),
                    in_flight: r.in_flight.load(Ordering::Relaxed),
                });
            }
            let secs = now.duration_since(start).as_secs_f64();
            // One copy of the totals per window, and only when something will read it.
            let aborts = self.plan.expectations.iter().any(|x| x.abort_on_fail);
            let totals = self.reporter.wants_totals();
            let snapshots: Arc<Snapshots> = Arc::new(if aborts || totals || !conditions.is_empty() {
                recorders.iter().map(|(n, r)| (n.clone(), r.snapshot())).collect()
            } else {
                Snapshots::new()
            });
            if totals {
                self.reporter.event(&RunEvent::Totals {
                    phase: phase.name.clone(),
                    role: phase.role,
                    secs,
                    elapsed_s: now.duration_since(self.origin).as_secs_f64(),
                    workloads: snapshots.clone(),
                });
            }
            if let Some(why) = self.abort_check(phase, &snapshots, secs) {
                self.aborted_by = Some(why.clone());
                self.interrupt.set();
                return format!("aborted: {why}");
            }
            if self.interrupt.is_set() {
                return self.stop_reason().into();
            }
            if end.is_some_and(|e| now >= e) {
                return "duration".into();
            }
            if let Some(c) = conditions.iter().find(|c| holds(c, &snapshots, secs)) {
                return format!("condition: {}", c.text);
            }
            if tasks.iter().all(|t| t.is_finished()) {
                return if phase.drives.iter().any(|d| d.requests.is_some()) {
                    "requests".into()
                } else {
                    "load shape ended".into()
                };
            }
            while next <= now {
                next += window;
            }
        }
    }

    /// Waits for in-flight requests to finish, up to the drain deadline.
    pub(super) async fn drain(
        &mut self,
        phase: &PlannedPhase,
        recorders: &BTreeMap<String, Arc<Recorder>>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    ) {
        let deadline = Instant::now() + self.options.drain;
        for t in tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, t).await.is_err() {
                break;
            }
        }
        while recorders.values().any(|r| r.in_flight.load(Ordering::Relaxed) > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let left: u64 = recorders.values().map(|r| r.in_flight.load(Ordering::Relaxed)).sum();
        for r in recorders.values() {
            r.abandon_in_flight();
        }
        if left > 0 {
            self.warn(
                Warning::new(
                    "drain_abandoned",
                    format!(
                        "phase `{}`: {left} requests still in flight after the {}s drain were not recorded",
                        phase.name,
                        self.options.drain.as_secs()
                    ),
                )
                .in_phase(&phase.name),
            );
        }
    }
}

impl Engine<'_> {
    /// After a warmup: percentile bounds the measured phases cannot collect enough samples
    /// for, with closed-loop request counts estimated from the warmup's measured mean
    /// latency. Only bounds the estimate before the run could not flag are reported.
    fn warn_from_warmup(&mut self, warmup: &PhaseOutcome) {
        let measured: BTreeMap<&str, (f64, String)> = warmup
            .workloads
            .iter()
            .filter_map(|w| {
                let h = w.recorded.hists.get(crate::measure::record::Metric::Latency);
                if h.len() < 3 {
                    return None;
                }
                let t = h.mean() / 1e9;
                let how = format!("the warmup's mean latency, {}", crate::dsl::units::Duration::from_secs_f64(t));
                Some((w.name.as_str(), (t, how)))
            })
            .collect();
        let repeat = self.plan.repeat;
        let found: Vec<_> = (self.plan.sample_needs.iter())
            .filter(|n| n.shortfall(n.service.as_ref(), repeat).is_none())
            .filter_map(|n| n.shortfall(measured.get(n.workload.as_str()).or(n.service.as_ref()), repeat))
            .collect();
        for s in found {
            let w = Warning::new("too_few_samples", format!("{} (estimate: {})", s.message(), s.estimate));
            self.warn(w);
        }
    }

    /// An `abort-on-fail` expectation on this phase's workloads that already fails, with
    /// enough samples to say so; checked once per window.
    fn abort_check(&self, phase: &PlannedPhase, snapshots: &Snapshots, secs: f64) -> Option<String> {
        for e in &self.plan.expectations {
            let in_phase = e.phase.as_ref().is_none_or(|p| *p == phase.name);
            if !(e.abort_on_fail && in_phase && !e.subject_is_probe) {
                continue;
            }
            let Some((h, c)) = snapshots.get(&e.subject) else {
                continue;
            };
            let agg = e.aggregation.as_deref();
            let Some(v) = measure::value(&e.metric, agg, h, c, secs, e.spike_k.unwrap_or(3.0)) else {
                continue;
            };
            let needed = agg.and_then(crate::dsl::metrics::percentile).map(crate::stats::required_samples);
            let have = h.named(&e.metric).map(|(h, _)| h.len());
            if needed.is_some_and(|n| have.unwrap_or(0) < n) {
                continue;
            }
            if !e.base.holds(v) {
                return Some(e.text.clone());
            }
        }
        None
    }
}

/// Each workload's totals so far in a phase, taken once per window.
pub type Snapshots = BTreeMap<String, (crate::measure::record::Hists, crate::measure::record::Counters)>;

/// Whether a stop condition holds on the data recorded so far.
fn holds(c: &StopCondition, snapshots: &Snapshots, secs: f64) -> bool {
    let Some((h, counters)) = c.workload.as_ref().and_then(|w| snapshots.get(w)) else {
        return false;
    };
    measure::value(c.metric, c.aggregation.as_deref(), h, counters, secs, 3.0).is_some_and(|x| c.holds(x))
}
