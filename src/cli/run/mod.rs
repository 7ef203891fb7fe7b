//! `benchctl run`: the run as named stages, each its own function. [`plan`] checks the
//! scenario and builds the plan (a shard's part applied); [`claim`] makes sure every output
//! has somewhere to go and takes the dashboard's port, before any work; [`set_up`] prepares
//! the workloads; [`execute`] runs the engine with signals, progress and the live view;
//! [`finish`] builds the result document, compares it with the baseline and presents it.
//! A stage that cannot go on returns the exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use benchctl::dashboard::live::{Live as LiveView, LiveSpec};
use benchctl::dsl::validate::ValidScenario;
use benchctl::dsl::{diag, source::SourceMap, LoadOptions};
use benchctl::engine::drive::Stop;
use benchctl::engine::events::{Reporter, Tee};
use benchctl::engine::executor::{Engine, Options, RunOutcome};
use benchctl::report::Outputs;
use benchctl::result::{self, ConfigDoc, ResultDoc};
use benchctl::shard::{DrivePart, Shard};
use benchctl::workload::setup::Cause;
use benchctl::{compare, exit, plan, probe, progress, registry};

use super::outputs::{claim_outputs, default_dir, present};
use super::signals::{watch_signals, QuietPanics};

/// What `benchctl run` was asked for besides the scenario.
pub struct RunArgs {
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub baseline: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    pub repeat: Option<u64>,
    pub dist: Distributed,
    /// `--dashboard`: where to serve the live view, and the alerts' cooldown.
    pub dashboard: Option<Live>,
}

/// The live dashboard of a run.
pub struct Live {
    pub bind: benchctl::dashboard::Bind,
    pub cooldown_s: f64,
}

/// How a run takes part in a run over several processes or machines.
pub struct Distributed {
    pub role: Role,
    /// `--start-at`, seconds since the Unix epoch.
    pub start_at: Option<f64>,
    pub run_id: Option<String>,
}

pub enum Role {
    /// An ordinary run.
    Alone,
    /// One shard of a split run; `source` says where its identity came from.
    Shard { shard: Shard, source: String },
    /// One node of a fleet run.
    Fleet { node: String, source: &'static str },
}

/// The checked scenario and its plan (for a shard: its part of the plan).
struct Planned {
    file: PathBuf,
    valid: ValidScenario,
    sources: SourceMap,
    plan: plan::Plan,
    /// A shard's unsplit plan, as it records it (its expectations are evaluated on the
    /// merged data).
    full_config: Option<ConfigDoc>,
    /// What every part of one split or fleet run shares.
    scenario_hash: String,
    /// A shard's part of each drive.
    parts: Vec<DrivePart>,
}

/// The outputs, claimed: their folders writable, the result's folder locked for this run,
/// and the dashboard's port taken.
struct Claimed {
    outputs: Outputs,
    _lock: Option<benchctl::files::FolderLock>,
    listening: Option<(benchctl::dashboard::Listening, f64)>,
}

/// Runs a scenario file; returns the exit code.
pub fn run_scenario(file: &Path, opts: &LoadOptions, args: RunArgs, color: bool) -> u8 {
    let stages = || -> Result<u8, u8> {
        let planned = plan(file, opts, &args, color)?;
        let claimed = claim(&planned, &args)?;
        let prepared = set_up(&planned, &args.dist.role, args.quiet, color)?;
        let (outcome, live) = execute(&planned, &args, claimed.listening, prepared)?;
        Ok(finish(&planned, args, &claimed.outputs, outcome, live, color))
    };
    stages().unwrap_or_else(|code| code)
}

/// A file name made of a node's name (anything but letters, digits, `.`, `-`, `_` becomes `_`).
fn safe_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Checks the scenario (with the sample lints) and builds its plan; a shard applies its part.
fn plan(file: &Path, opts: &LoadOptions, args: &RunArgs, color: bool) -> Result<Planned, u8> {
    let mut checked = benchctl::check::check_file(file, opts);
    // `--quiet` shows errors only; lints and warnings are for `check`.
    let shown: Vec<diag::Diagnostic> =
        checked.diagnostics.iter().filter(|d| !args.quiet || d.is_error()).cloned().collect();
    if !shown.is_empty() {
        eprint!("{}", diag::render(&shown, &checked.sources, color, 100));
    }
    let Some(valid) = checked.scenario.take() else {
        eprintln!("error: `{}` is not a valid scenario; nothing was run", file.display());
        return Err(exit::INVALID_INPUT);
    };
    let mut plan = plan::build(&valid, &checked.sources);
    if let Some(r) = args.repeat {
        plan.set_repeat(r);
    }
    // A shard or fleet member records what it ran: the unsplit plan, the hash merge
    // matches, and its part.
    let scenario_hash = benchctl::shard::scenario_hash(&result::sources_sha256(&checked.sources), &plan);
    let (mut full_config, mut parts) = (None, vec![]);
    if let Role::Shard { shard, .. } = &args.dist.role {
        full_config = Some(ConfigDoc::of(&plan));
        parts = benchctl::shard::apply(&mut plan, shard).map_err(|e| {
            eprintln!("error: {e}\nnothing was run");
            exit::INVALID_INPUT
        })?;
        for p in parts.iter().filter(|p| p.share == 0.0) {
            eprintln!(
                "warning: shard {shard} has no load for `{}` in phase `{}` ({} split {} ways): this generator idles there",
                p.workload, p.phase, p.declared, shard.count
            );
        }
    }
    let sources = checked.sources;
    Ok(Planned { file: file.to_path_buf(), valid, sources, plan, full_config, scenario_hash, parts })
}

/// Where the outputs go: shards and fleet members share one folder (a volume every pod
/// mounts) and each writes one file named by its identity; the reports come from `merge`.
fn outputs(p: &Planned, args: &RunArgs) -> Outputs {
    // One rule for every output a scenario names: a relative path resolves against `--out`
    // when the run has one, else against the current folder (docs/running.md).
    let place = |path: &String| match &args.out {
        Some(dir) if Path::new(path).is_relative() => dir.join(path),
        _ => PathBuf::from(path),
    };
    let dir =
        || args.out.clone().unwrap_or_else(|| default_dir(&p.valid.scenario.name.value, std::time::SystemTime::now()));
    let one_file = |name: String| Outputs {
        json: Some(dir().join(name)),
        templates: args.templates.clone(),
        ..Default::default()
    };
    match &args.dist.role {
        Role::Shard { shard, .. } => one_file(format!("shard-{:05}-of-{}.json", shard.index, shard.count)),
        Role::Fleet { node, .. } => one_file(format!("fleet-{}.json", safe_name(node))),
        Role::Alone => {
            let declared = &p.plan.outputs;
            let json = declared.json.as_ref().map(place).unwrap_or_else(|| dir().join("result.json"));
            // The HTML report always goes beside the JSON (and also where the scenario asks).
            let html = declared.html.as_ref().map(place).unwrap_or_else(|| json.with_file_name("report.html"));
            Outputs {
                json: Some(json),
                junit: declared.junit.as_ref().map(place),
                markdown: declared.markdown.as_ref().map(place),
                html: Some(html),
                templates: args.templates.clone(),
            }
        }
    }
}

/// Before any work: every output folder is writable, the result's folder is this run's
/// alone (a shared folder of shards: the file is), it does not hold another scenario's
/// result, and the dashboard's port is taken (a busy port fails at once).
fn claim(p: &Planned, args: &RunArgs) -> Result<Claimed, u8> {
    let outputs = outputs(p, args);
    let shared_folder = !matches!(args.dist.role, Role::Alone);
    let lock = claim_outputs(&outputs, &p.valid.scenario.name.value, !shared_folder).map_err(|e| {
        eprintln!("error: {e}\nnothing was run");
        exit::INVALID_INPUT
    })?;
    let listening = match &args.dashboard {
        Some(d) => match benchctl::dashboard::listen(&d.bind) {
            Ok(l) => Some((l, d.cooldown_s)),
            Err(e) => {
                eprintln!("error: --dashboard: {e}\nnothing was run");
                return Err(exit::RUNTIME_ERROR);
            }
        },
        None => None,
    };
    Ok(Claimed { outputs, _lock: lock, listening })
}

/// Setup is the run's first stage: what it will take and when the whole run should end,
/// then each workload prepared (a failure points at the workload in the scenario).
fn set_up(p: &Planned, role: &Role, quiet: bool, color: bool) -> Result<registry::Workloads, u8> {
    let plan = &p.plan;
    let started = std::time::Instant::now();
    if !quiet && !plan.setup.is_empty() {
        let at_least = if plan.setup_complete { "" } else { "at least " };
        let end = match plan.max_duration {
            Some(m) if m == plan.min_duration => {
                format!("; the run ends in {}", plan::about(plan.setup_s + m.as_secs_f64()))
            }
            _ => String::new(),
        };
        eprintln!(
            "setup: {} workload(s), {at_least}{} estimated (`benchctl plan` lists the steps){end}",
            p.valid.scenario.workloads.len(),
            plan::about(plan.setup_s)
        );
    }
    let mut say = |w: &str, m: String| {
        if !quiet {
            eprintln!("  {w}: {m}");
        }
    };
    let partition = match role {
        Role::Shard { shard, .. } => Some(*shard),
        _ => None,
    };
    let base = p.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let prepared = registry::prepare_shard(&p.valid, &p.sources, &base, partition, &mut say)
        .map_err(|failure| setup_failed(failure, &p.sources, color))?;
    if !quiet && !plan.setup.is_empty() {
        eprintln!("setup done in {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(prepared)
}

/// Reports a workload that could not be prepared, at its place in the scenario.
fn setup_failed(failure: registry::SetupFailure, sources: &SourceMap, color: bool) -> u8 {
    let registry::SetupFailure { workload, span, error } = failure;
    let mut d = diag::Diagnostic::error(
        diag::Code::SetupFailed,
        format!("workload `{workload}` could not be prepared: {}", error.message),
    )
    .with_label(span, "while preparing this");
    if let Some(h) = &error.help {
        d = d.with_help(h.clone());
    }
    let (mut diags, mut sources) = (vec![d], sources.clone());
    diags.extend(setup_notes(&error, &mut sources));
    eprint!("{}", diag::render(&diags, &sources, color, 100));
    match error.cause {
        Cause::Input => exit::INVALID_INPUT,
        Cause::Machine => exit::RUNTIME_ERROR,
    }
}

/// Located setup messages (a kernel's compiler errors) as diagnostics; `.cu` files they
/// point into are added to `sources` so the messages show the code.
fn setup_notes(
    error: &benchctl::inference::model::SetupError,
    sources: &mut benchctl::dsl::source::SourceMap,
) -> Vec<diag::Diagnostic> {
    use benchctl::dsl::source::{Origin, SourceFile};
    use benchctl::dsl::span::Span;
    use benchctl::workload::setup::NoteAt;
    let mut files: Vec<(std::path::PathBuf, benchctl::dsl::span::FileId)> = vec![];
    error
        .notes
        .iter()
        .map(|n| {
            let span = match &n.at {
                NoteAt::Span(s) => *s,
                NoteAt::File { path, text, offset, len } => {
                    let id = match files.iter().find(|(p, _)| p == path) {
                        Some((_, id)) => *id,
                        None => {
                            let id = sources.add(SourceFile {
                                name: path.display().to_string(),
                                path: Some(path.clone()),
                                text: text.clone(),
                                origin: Origin::Root,
                            });
                            files.push((path.clone(), id));
                            id
                        }
                    };
                    Span::new(id, *offset, *len)
                }
            };
            let d = if n.error {
                diag::Diagnostic::error(diag::Code::SetupFailed, format!("CUDA compile error: {}", n.message))
            } else {
                diag::Diagnostic::warning(diag::Code::SetupFailed, format!("CUDA compile warning: {}", n.message))
            };
            d.with_label(span, "here")
        })
        .collect()
}

/// Waits for `--start-at` (the start barrier every shard shares), unless interrupted.
fn wait_for_start(runtime: &tokio::runtime::Runtime, at: f64, interrupt: &Arc<Stop>, quiet: bool) -> Result<(), u8> {
    let wait = at - unix_now();
    if wait <= 0.0 {
        if !quiet {
            eprintln!("warning: --start-at was {:.1}s ago when setup ended: this process starts late", -wait);
        }
        return Ok(());
    }
    if !quiet {
        eprintln!("waiting {:.1}s for --start-at", wait);
    }
    let stop = interrupt.clone();
    runtime.block_on(async move {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs_f64(wait)) => {}
            _ = stop.wait() => {}
        }
    });
    if interrupt.is_set() {
        eprintln!("interrupted while waiting for --start-at; nothing was measured");
        return Err(exit::INVALID_RUN);
    }
    Ok(())
}

/// Starts the live view on the port `claim` took; the address (and any token) is printed
/// even with --quiet, since it is needed to connect.
fn start_live(p: &Planned, listening: benchctl::dashboard::Listening, cooldown_s: f64) -> Result<LiveView, u8> {
    eprint!("{}", listening.banner("dashboard"));
    let sc = &p.valid.scenario;
    let spec = LiveSpec {
        name: sc.name.value.clone(),
        description: sc.description.as_ref().map(|d| d.value.clone()),
        config: ConfigDoc::of(&p.plan),
        kinds: sc.workloads.iter().map(|w| (w.name.value.clone(), w.kind.value)).collect(),
        cooldown_s,
    };
    LiveView::start(listening, spec).map_err(|e| {
        eprintln!("error: --dashboard: {e}\nnothing was run");
        exit::RUNTIME_ERROR
    })
}

/// Runs the engine on tokio: signals watched, the start barrier kept, progress shown and
/// the live view fed.
fn execute(
    p: &Planned,
    args: &RunArgs,
    listening: Option<(benchctl::dashboard::Listening, f64)>,
    prepared: registry::Workloads,
) -> Result<(RunOutcome, Option<LiveView>), u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        exit::RUNTIME_ERROR
    })?;
    let interrupt = Arc::new(Stop::default());
    runtime.spawn(watch_signals(interrupt.clone()));
    if let Some(at) = args.dist.start_at {
        wait_for_start(&runtime, at, &interrupt, args.quiet)?;
    }
    let mut progress: Box<dyn Reporter> = if args.quiet {
        Box::new(progress::Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(progress::Bar::new())
    } else {
        Box::new(progress::Plain::new())
    };
    let mut options = Options::default();
    let live = listening.map(|(l, cooldown_s)| start_live(p, l, cooldown_s)).transpose()?;
    if let Some(l) = &live {
        options.probe_tap = Some(l.probe_tap());
    }
    let mut live_reporter = live.as_ref().map(LiveView::reporter);
    let mut tee;
    let reporter: &mut dyn Reporter = match live_reporter.as_mut() {
        Some(lr) => {
            tee = Tee(progress.as_mut(), lr);
            &mut tee
        }
        None => progress.as_mut(),
    };
    let quiet_panics = QuietPanics::install();
    let engine = Engine::new(&p.plan, prepared.ready, options, interrupt, reporter)
        .with_setup(prepared.warnings, prepared.skipped);
    let outcome = runtime.block_on(engine.execute());
    drop(live_reporter);
    // Work the drains gave up on is told to stop (an inference request stops at its next
    // token), but a blocking call cannot be interrupted: do not wait for it to end the run.
    runtime.shutdown_background();
    drop(quiet_panics);
    Ok((outcome, live))
}

/// The result document: built, identified (shard or fleet member), compared with the
/// baseline, recorded by the live view, evaluated and written.
fn finish(
    p: &Planned,
    args: RunArgs,
    outputs: &Outputs,
    outcome: RunOutcome,
    live: Option<LiveView>,
    color: bool,
) -> u8 {
    let quiet = args.quiet;
    let mut doc = result::build(&outcome, &p.valid, &p.plan, &p.sources, probe::system_info());
    if !quiet {
        // Fit the terminal: the summary drops its least needed columns to fit.
        let width = std::io::stdout()
            .is_terminal()
            .then(|| progress::terminal_width(1))
            .flatten()
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()));
        print!("{}", benchctl::report::summary::measurements(&doc, width));
    }
    let started_unix_s = outcome.started.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let identity = result::Identity {
        run_id: args.dist.run_id.clone(),
        scenario_hash: p.scenario_hash.clone(),
        started_unix_s,
        ended_unix_s: started_unix_s + outcome.duration.as_secs_f64(),
        start_at_unix_s: args.dist.start_at,
    };
    let code = match &args.dist.role {
        Role::Shard { shard, source } => {
            doc.shard = Some(result::ShardSection {
                identity,
                index: shard.index,
                count: shard.count,
                source: source.clone(),
                drives: p.parts.clone(),
            });
            if let Some(c) = &p.full_config {
                doc.config = c.clone();
            }
            return write_shard(&doc, outputs, quiet);
        }
        Role::Fleet { node, source } => {
            doc.fleet = Some(result::FleetSection {
                identity,
                node: node.clone(),
                node_source: source.to_string(),
                gpus: probe::nvml::gpu_info(),
            });
            fleet_member_code(present(&mut doc, outputs, quiet, !quiet, color), quiet)
        }
        Role::Alone => {
            doc.comparison = compare_with_baseline(p, args.baseline, &doc, quiet);
            if let Some(live) = live {
                finish_live(live, &mut doc);
            }
            present(&mut doc, outputs, quiet, !quiet, color)
        }
    };
    if outcome.interrupted {
        eprintln!("the run was interrupted; the result holds what was measured until then");
    }
    if outcome.limited {
        eprintln!("the run reached its run-limit; the result holds what was measured until then");
    }
    code
}

/// A fleet member's verdict is in its file; the fleet's comes from `merge`, so a failed or
/// regressed member does not fail its job (a scheduler would retry a slow node).
fn fleet_member_code(code: u8, quiet: bool) -> u8 {
    match code {
        exit::FAILED | exit::REGRESSION => {
            if !quiet {
                eprintln!("this node's verdict is in its file; the fleet's comes from `benchctl merge --mode fleet`");
            }
            exit::SUCCESS
        }
        c => c,
    }
}

/// The comparison with the baseline (`--baseline`, else the scenario's `baseline` node).
fn compare_with_baseline(
    p: &Planned,
    flag: Option<PathBuf>,
    doc: &ResultDoc,
    quiet: bool,
) -> Option<result::Comparison> {
    let (path, tolerance, overrides) = baseline_for(&p.plan, flag, &p.file)?;
    match result::read(&path) {
        Ok(base) => Some(compare::compare(&base, doc, &path.display().to_string(), tolerance, &overrides)),
        Err(e) => {
            if !quiet {
                eprintln!("warning: no comparison with the baseline: {e}\n  help: save one with `benchctl baseline save RESULT.json --to {}`", path.display());
            }
            None
        }
    }
}

/// The live view's last events (a regression against the baseline, the verdict), then its
/// record into the result: the alerts and what the server saw.
fn finish_live(live: LiveView, doc: &mut ResultDoc) {
    use benchctl::dashboard::model;
    let t = doc.duration_s;
    if let Some(c) = doc.comparison.as_ref().filter(|c| c.regressed) {
        live.extra(serde_json::json!({"type": "alert", "t": t, "key": "regression",
            "message": format!("regression against the baseline {}", c.baseline)}));
    }
    for s in model::spectra(doc) {
        live.extra(s);
    }
    let ev = benchctl::evaluate::evaluate(doc);
    live.extra(model::status_event(t, &ev.outcomes, true));
    live.extra(model::end_event(t, doc.status.as_str(), Some(ev.verdict)));
    let record = live.finish();
    doc.dashboard = Some(serde_json::to_value(&record).expect("the dashboard record serialises: plain fields"));
}

/// Writes a shard's file (no evaluation: a slice of the load has no verdict of its own).
fn write_shard(doc: &ResultDoc, outputs: &Outputs, quiet: bool) -> u8 {
    let Some(path) = &outputs.json else { return exit::RUNTIME_ERROR };
    let bytes = serde_json::to_vec(doc).expect("a result serialises: its maps have string keys");
    if let Err(e) = benchctl::files::write_atomic(path, &bytes) {
        eprintln!("error: cannot write `{}`: {e}", path.display());
        return exit::RUNTIME_ERROR;
    }
    if !quiet {
        println!(
            "shard file: {}\n(its expectations are evaluated by `benchctl merge` on every shard's data)",
            path.display()
        );
    }
    if doc.status != result::RunStatus::Completed && doc.status != result::RunStatus::Aborted {
        eprintln!("the shard did not finish; its file holds what was measured until then");
        return exit::INVALID_RUN;
    }
    exit::SUCCESS
}

/// The baseline to compare with: `--baseline`, else the scenario's `baseline` node (a path
/// relative to the current directory, else to the scenario's folder), with its tolerances.
fn baseline_for(
    plan: &plan::Plan,
    flag: Option<PathBuf>,
    scenario: &Path,
) -> Option<(PathBuf, f64, std::collections::BTreeMap<String, f64>)> {
    let declared = plan.baseline.as_ref();
    let tolerance = declared.map_or(plan::DEFAULT_TOLERANCE, |b| b.tolerance);
    let overrides = declared.map(|b| b.overrides.iter().cloned().collect()).unwrap_or_default();
    let path = match flag {
        Some(p) => p,
        None => {
            let p = PathBuf::from(&declared?.path);
            let beside = scenario.parent().map(|d| d.join(&p));
            if p.exists() {
                p
            } else {
                beside.filter(|b| b.exists()).unwrap_or(p)
            }
        }
    };
    Some((path, tolerance, overrides))
}
