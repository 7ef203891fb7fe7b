//! The commands that make or read results: `run` (check, plan, execute on tokio with
//! signal handling and progress, write the result document, print a short summary),
//! `compare`, `baseline` and `report`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use benchctl::dsl::{self, diag, LoadOptions};
use benchctl::engine::drive::Stop;
use benchctl::engine::events::Reporter;
use benchctl::engine::executor::{Engine, Options};
use benchctl::probe;
use benchctl::registry;
use benchctl::result::{self, ResultDoc};
use benchctl::workload::setup::Cause;
use benchctl::{compare, evaluate, exit, plan, progress, report};

/// What `benchctl run` was asked for besides the scenario.
pub struct RunArgs {
    pub out: Option<PathBuf>,
    pub quiet: bool,
    pub baseline: Option<PathBuf>,
    pub templates: Option<PathBuf>,
    pub repeat: Option<u64>,
    pub dist: Distributed,
    /// `--dashboard`: where to serve the live view, and the alerts' cooldown.
    pub dashboard: Option<LiveArgs>,
}

/// The live dashboard of a run.
pub struct LiveArgs {
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
    Shard { shard: benchctl::shard::Shard, source: String },
    /// One node of a fleet run.
    Fleet { node: String, source: &'static str },
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A file name made of a node's name (anything but letters, digits, `.`, `-`, `_` becomes `_`).
fn safe_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

pub fn run_scenario(file: &Path, opts: &LoadOptions, args: RunArgs, color: bool) -> u8 {
    let RunArgs { out, quiet, baseline, templates, repeat, dist, dashboard } = args;
    let checked = dsl::check_file(file, opts);
    // `--quiet` shows errors only; lints and warnings are for `check`.
    let shown: Vec<diag::Diagnostic> = checked.diagnostics.iter().filter(|d| !quiet || d.is_error()).cloned().collect();
    if !shown.is_empty() {
        eprint!("{}", diag::render(&shown, &checked.sources, color, 100));
    }
    let Some(valid) = &checked.scenario else {
        eprintln!("error: `{}` is not a valid scenario; nothing was run", file.display());
        return exit::INVALID_INPUT;
    };
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut plan = plan::build(valid, &checked.sources);
    if let Some(r) = repeat {
        plan.set_repeat(r, valid);
    }
    // A shard or fleet member records what it ran: the unsplit plan (its expectations are
    // evaluated once, on the merged data), the hash merge matches, and its part.
    let scenario_hash = benchctl::shard::scenario_hash(&result::sources_sha256(&checked.sources), &plan);
    let full_config = serde_json::to_value(&plan).unwrap_or_default();
    let mut parts = vec![];
    if let Role::Shard { shard, .. } = &dist.role {
        match benchctl::shard::apply(&mut plan, shard) {
            Ok(p) => parts = p,
            Err(e) => {
                eprintln!("error: {e}\nnothing was run");
                return exit::INVALID_INPUT;
            }
        }
        for p in parts.iter().filter(|p| p.share == 0.0) {
            eprintln!(
                "warning: shard {shard} has no load for `{}` in phase `{}` ({} split {} ways): this generator idles there",
                p.workload, p.phase, p.declared, shard.count
            );
        }
    }
    let partition = match &dist.role {
        Role::Shard { shard, .. } => Some(*shard),
        _ => None,
    };
    // One rule for every output a scenario names: a relative path resolves against `--out`
    // when the run has one, else against the current folder (docs/running.md).
    let place = |p: &String| match &out {
        Some(dir) if Path::new(p).is_relative() => dir.join(p),
        _ => PathBuf::from(p),
    };
    let (junit, markdown, named_html) = (
        plan.outputs.junit.as_ref().map(place),
        plan.outputs.markdown.as_ref().map(place),
        plan.outputs.html.as_ref().map(place),
    );
    let dir = || out.clone().unwrap_or_else(|| default_dir(&valid.scenario.name.value, std::time::SystemTime::now()));
    let outputs = match &dist.role {
        // Shards and fleet members share one folder (a volume every pod mounts): each writes
        // one file named by its identity, and the reports come from `benchctl merge`.
        Role::Shard { shard, .. } => Outputs {
            json: Some(dir().join(format!("shard-{:05}-of-{}.json", shard.index, shard.count))),
            junit: None,
            markdown: None,
            html: None,
            templates,
        },
        Role::Fleet { node, .. } => Outputs {
            json: Some(dir().join(format!("fleet-{}.json", safe_name(node)))),
            junit: None,
            markdown: None,
            html: None,
            templates,
        },
        Role::Alone => {
            let path = plan.outputs.json.as_ref().map(place).unwrap_or_else(|| dir().join("result.json"));
            // The HTML report always goes beside the JSON (and also where the scenario asks).
            let html = named_html.unwrap_or_else(|| path.with_file_name("report.html"));
            Outputs { json: Some(path), junit, markdown, html: Some(html), templates }
        }
    };
    let shared_folder = !matches!(dist.role, Role::Alone);
    // Before any work: every output folder is writable, the result's folder is this run's
    // alone (a shared folder of shards: the file is), and it does not hold another
    // scenario's result.
    let _lock = match claim_outputs(&outputs, &valid.scenario.name.value, !shared_folder) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}\nnothing was run");
            return exit::INVALID_INPUT;
        }
    };
    // The dashboard's port is taken before setup, so that a busy port fails at once.
    let listening = match &dashboard {
        Some(d) => match benchctl::dashboard::listen(&d.bind) {
            Ok(l) => Some((l, d.cooldown_s)),
            Err(e) => {
                eprintln!("error: --dashboard: {e}\nnothing was run");
                return exit::RUNTIME_ERROR;
            }
        },
        None => None,
    };
    // Setup is the run's first stage: what it will take, and when the whole run should end.
    let setup_started = std::time::Instant::now();
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
            valid.scenario.workloads.len(),
            plan::about(plan.setup_s)
        );
    }
    let mut say = |w: &str, m: String| {
        if !quiet {
            eprintln!("  {w}: {m}");
        }
    };
    let prepared = match registry::prepare_shard(valid, &checked.sources, &base, partition, &mut say) {
        Ok(p) => p,
        Err(registry::SetupFailure { workload, span, error }) => {
            let mut d = diag::Diagnostic::error(
                diag::Code::SetupFailed,
                format!("workload `{workload}` could not be prepared: {}", error.message),
            )
            .with_label(span, "while preparing this");
            if let Some(h) = &error.help {
                d = d.with_help(h.clone());
            }
            let (mut diags, mut sources) = (vec![d], checked.sources.clone());
            diags.extend(setup_notes(&error, &mut sources));
            eprint!("{}", diag::render(&diags, &sources, color, 100));
            return match error.cause {
                Cause::Input => exit::INVALID_INPUT,
                Cause::Machine => exit::RUNTIME_ERROR,
            };
        }
    };
    if !quiet && !plan.setup.is_empty() {
        eprintln!("setup done in {:.1}s", setup_started.elapsed().as_secs_f64());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::RUNTIME_ERROR;
        }
    };
    let interrupt = Arc::new(Stop::default());
    runtime.spawn(watch_signals(interrupt.clone()));
    // The start barrier: every shard waits for the same wall-clock time after its setup.
    if let Some(at) = dist.start_at {
        let wait = at - unix_now();
        if wait > 0.0 {
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
                return exit::INVALID_RUN;
            }
        } else if !quiet {
            eprintln!("warning: --start-at was {:.1}s ago when setup ended: this process starts late", -wait);
        }
    }
    let mut reporter: Box<dyn Reporter> = if quiet {
        Box::new(progress::Quiet)
    } else if std::io::stderr().is_terminal() {
        Box::new(progress::Bar::new())
    } else {
        Box::new(progress::Plain::new())
    };
    let mut options = Options::default();
    let live = match listening {
        Some((l, cooldown_s)) => {
            // Printed even with --quiet: the address (and any token) is needed to connect.
            eprint!("{}", l.banner("dashboard"));
            let spec = benchctl::dashboard::live::LiveSpec {
                name: valid.scenario.name.value.clone(),
                description: valid.scenario.description.as_ref().map(|d| d.value.clone()),
                config: serde_json::to_value(&plan).unwrap_or_default(),
                kinds: valid.scenario.workloads.iter().map(|w| (w.name.value.clone(), w.kind.value)).collect(),
                cooldown_s,
            };
            match benchctl::dashboard::live::Live::start(l, spec) {
                Ok(live) => {
                    options.probe_tap = Some(live.probe_tap());
                    Some(live)
                }
                Err(e) => {
                    eprintln!("error: --dashboard: {e}\nnothing was run");
                    return exit::RUNTIME_ERROR;
                }
            }
        }
        None => None,
    };
    let mut live_reporter = live.as_ref().map(|l| l.reporter());
    let mut tee;
    let reporter: &mut dyn Reporter = match live_reporter.as_mut() {
        Some(lr) => {
            tee = benchctl::engine::events::Tee(reporter.as_mut(), lr);
            &mut tee
        }
        None => reporter.as_mut(),
    };
    let quiet_panics = QuietPanics::install();
    let engine = Engine::new(valid, &plan, prepared.ready, options, interrupt, reporter)
        .with_setup(prepared.warnings, prepared.skipped);
    let outcome = runtime.block_on(engine.execute());
    drop(live_reporter);
    // Work the drains gave up on is told to stop (an inference request stops at its next
    // token), but a blocking call cannot be interrupted: do not wait for it to end the run.
    runtime.shutdown_background();
    drop(quiet_panics);
    let doc = result::build(&outcome, valid, &plan, &checked.sources, probe::system_info());
    if !quiet {
        print!("{}", summary(&doc));
    }
    let Ok(mut value) = serde_json::to_value(&doc) else {
        eprintln!("error: cannot serialise the result");
        return exit::RUNTIME_ERROR;
    };
    let started_unix_s = outcome.started.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let identity = serde_json::json!({
        "run_id": dist.run_id,
        "scenario_hash": scenario_hash,
        "started_unix_s": started_unix_s,
        "ended_unix_s": started_unix_s + outcome.duration.as_secs_f64(),
        "start_at_unix_s": dist.start_at,
    });
    match &dist.role {
        Role::Alone => {}
        Role::Shard { shard, source } => {
            let mut s = identity;
            s["index"] = shard.index.into();
            s["count"] = shard.count.into();
            s["source"] = source.clone().into();
            s["drives"] = serde_json::to_value(&parts).unwrap_or_default();
            value["shard"] = s;
            value["config"] = full_config;
            return write_shard(&value, &outputs, &outcome, quiet);
        }
        Role::Fleet { node, source } => {
            let mut f = identity;
            f["node"] = node.clone().into();
            f["node_source"] = (*source).into();
            f["gpus"] = serde_json::to_value(probe::nvml::gpu_info()).unwrap_or_default();
            value["fleet"] = f;
            let code = present(&mut value, &outputs, quiet, !quiet, color, None);
            return match code {
                exit::FAILED | exit::REGRESSION => {
                    if !quiet {
                        eprintln!(
                            "this node's verdict is in its file; the fleet's comes from `benchctl merge --mode fleet`"
                        );
                    }
                    exit::SUCCESS
                }
                c => c,
            };
        }
    }
    let comparison = baseline_for(&plan, baseline, file).and_then(|(path, tolerance, overrides)| match read_result(&path) {
        Ok(base) => Some(compare::compare(&base, &value, &path.display().to_string(), tolerance, &overrides)),
        Err(e) => {
            if !quiet {
                eprintln!("warning: no comparison with the baseline: {e}\n  help: save one with `benchctl baseline save RESULT.json --to {}`", path.display());
            }
            None
        }
    });
    if let Some(live) = live {
        finish_live(live, &mut value, comparison.as_ref());
    }
    let code = present(&mut value, &outputs, quiet, !quiet, color, comparison);
    if outcome.interrupted {
        eprintln!("the run was interrupted; the result holds what was measured until then");
    }
    if outcome.limited {
        eprintln!("the run reached its run-limit; the result holds what was measured until then");
    }
    code
}

/// The live view's last events (a regression against the baseline, the verdict), then its
/// record into the result: the alerts and what the server saw.
fn finish_live(
    live: benchctl::dashboard::live::Live,
    value: &mut serde_json::Value,
    comparison: Option<&compare::Comparison>,
) {
    use benchctl::dashboard::model;
    let t = value["duration_s"].as_f64().unwrap_or(0.0);
    if let Some(c) = comparison.filter(|c| c.regressed) {
        live.extra(serde_json::json!({"type": "alert", "t": t, "key": "regression",
            "message": format!("regression against the baseline {}", c.baseline)}));
    }
    for s in model::spectra(value) {
        live.extra(s);
    }
    let ev = evaluate::evaluate(value);
    live.extra(model::status_event(t, &ev.outcomes, true));
    live.extra(model::end_event(t, value["status"].as_str().unwrap_or(""), Some(ev.verdict)));
    let record = live.finish();
    value["dashboard"] = serde_json::to_value(&record).unwrap_or_default();
}

/// Writes a shard's file (no evaluation: a slice of the load has no verdict of its own).
fn write_shard(
    value: &serde_json::Value,
    outputs: &Outputs,
    outcome: &benchctl::engine::executor::RunOutcome,
    quiet: bool,
) -> u8 {
    let Some(path) = &outputs.json else { return exit::RUNTIME_ERROR };
    if let Err(e) = benchctl::files::write_atomic(path, &serde_json::to_vec(value).unwrap_or_default()) {
        eprintln!("error: cannot write `{}`: {e}", path.display());
        return exit::RUNTIME_ERROR;
    }
    if !quiet {
        println!(
            "shard file: {}\n(its expectations are evaluated by `benchctl merge` on every shard's data)",
            path.display()
        );
    }
    if outcome.interrupted || outcome.limited {
        eprintln!("the shard did not finish; its file holds what was measured until then");
        return exit::INVALID_RUN;
    }
    exit::SUCCESS
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

/// Where the outputs of an evaluated result go.
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// A folder whose report.html replaces the built-in template.
    pub templates: Option<PathBuf>,
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

fn read_result(path: &Path) -> Result<serde_json::Value, String> {
    let text = crate::dsl::source::read_text_bounded(path, result::MAX_RESULT_BYTES)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("`{}` is not JSON: {e}", path.display()))?;
    match v["schema_version"].as_u64() {
        Some(n) if n == u64::from(result::RESULT_SCHEMA_VERSION) => {
            result::verify(&v).map_err(|why| format!("`{}` is damaged: {why}", path.display()))?;
            Ok(v)
        }
        other => Err(format!(
            "`{}` is not a benchctl result of schema version {} (found {})",
            path.display(),
            result::RESULT_SCHEMA_VERSION,
            other.map_or("no schema_version".to_string(), |n| format!("version {n}"))
        )),
    }
}

/// `benchctl compare BASE NEW`: the table, and exit 3 when a metric regressed.
pub fn compare_cmd(base: &Path, new: &Path, tolerance: &str, json: bool) -> u8 {
    let tol = match benchctl::dsl::units::Percent::parse(tolerance, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --tolerance {tolerance}: {}\n  help: {}", e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    let (b, n) = match (read_result(base), read_result(new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}\n  help: pass two result.json files written by `benchctl run`");
            return exit::INVALID_INPUT;
        }
    };
    let c = compare::compare(&b, &n, &base.display().to_string(), tol, &Default::default());
    if json {
        println!("{}", serde_json::to_string_pretty(&c).unwrap_or_default());
    } else {
        print!("{}", compare::table(&c));
    }
    if let Some(why) = &c.not_comparable {
        if !json {
            println!("not comparable: {why}; no regression verdict (rerun both on a quiet host)");
        }
        return exit::INVALID_RUN;
    }
    if c.regressed {
        if !json {
            println!("regression: at least one metric is significantly worse than the baseline beyond its tolerance");
        }
        exit::REGRESSION
    } else {
        exit::SUCCESS
    }
}

/// `benchctl baseline save RESULT [--to FILE]`, and `baseline add` (`add`: the result's
/// runs are appended to those of an existing baseline of the same scenario).
pub fn baseline_save(result: &Path, to: Option<PathBuf>, add: bool) -> u8 {
    let v = match read_result(result) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let name = v.pointer("/scenario/name").and_then(serde_json::Value::as_str).unwrap_or("baseline").to_string();
    let to = to.unwrap_or_else(|| PathBuf::from("baseline").join(format!("{name}.json")));
    let doc = if add && to.exists() {
        let mut base = match read_result(&to) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}\n  help: `baseline add` appends to a baseline written by `baseline save`");
                return exit::INVALID_INPUT;
            }
        };
        let other = base.pointer("/scenario/name").and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        if other != name {
            eprintln!(
                "error: `{}` is a baseline of scenario `{other}`, and `{}` a result of `{name}`\n  help: add results of the same scenario, or pass another --to",
                to.display(),
                result.display()
            );
            return exit::INVALID_INPUT;
        }
        let added = v["runs"].as_array().cloned().unwrap_or_default();
        match base["runs"].as_array_mut() {
            Some(runs) => runs.extend(added),
            None => base["runs"] = serde_json::Value::Array(added),
        }
        base
    } else {
        v
    };
    let runs = doc["runs"].as_array().map_or(0, Vec::len);
    match benchctl::files::write_atomic(&to, &serde_json::to_vec_pretty(&doc).unwrap_or_default()) {
        Ok(()) => {
            println!("baseline: {} ({runs} run{})", to.display(), if runs == 1 { "" } else { "s" });
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write `{}`: {e}", to.display());
            exit::RUNTIME_ERROR
        }
    }
}

/// Evaluates a result document, writes the outputs, prints the verdict; returns the exit code.
pub fn present(
    value: &mut serde_json::Value,
    outputs: &Outputs,
    quiet: bool,
    print_paths: bool,
    color: bool,
    comparison: Option<compare::Comparison>,
) -> u8 {
    let ev = evaluate::evaluate(value);
    evaluate::apply(value, &ev);
    if let Some(c) = &comparison {
        value["comparison"] = serde_json::to_value(c).unwrap_or_default();
    }
    // `report` on a saved result keeps the comparison the run made.
    let regressed = value.pointer("/comparison/regressed").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let mut files: Vec<(&PathBuf, Vec<u8>)> = vec![];
    if let Some(p) = &outputs.json {
        files.push((p, serde_json::to_vec_pretty(value).unwrap_or_default()));
    }
    if let Some(p) = &outputs.junit {
        files.push((p, report::junit(value, &ev).into_bytes()));
    }
    if let Some(p) = &outputs.markdown {
        files.push((p, report::markdown(value, &ev).into_bytes()));
    }
    if let Some(p) = &outputs.html {
        let template = match &outputs.templates {
            Some(dir) => match std::fs::read_to_string(dir.join("report.html")) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!(
                        "error: cannot read `{}`: {e}\n  help: --templates DIR must hold a report.html",
                        dir.join("report.html").display()
                    );
                    return exit::INVALID_INPUT;
                }
            },
            None => None,
        };
        match report::html(value, &ev, template.as_deref()) {
            Ok(h) => files.push((p, h.into_bytes())),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID_INPUT;
            }
        }
    }
    // Every output is attempted; if the result itself cannot be written, the measurements
    // go to a fallback file that is printed, so a failed write never loses a run.
    let mut write_failed = false;
    for (p, bytes) in &files {
        if let Err(e) = benchctl::files::write_atomic(p, bytes) {
            eprintln!("error: cannot write `{}`: {e}", p.display());
            write_failed = true;
            if Some(*p) == outputs.json.as_ref() {
                let name = value.pointer("/scenario/name").and_then(serde_json::Value::as_str).unwrap_or("result");
                let fallback = benchctl::files::fallback_dir().join(format!(
                    "{}-{}.json",
                    file_name(name),
                    stamp(std::time::SystemTime::now())
                ));
                match benchctl::files::write_atomic(&fallback, bytes) {
                    Ok(()) => eprintln!(
                        "the measurements were saved to {} instead; `benchctl report {0} --html FILE` makes the reports from it",
                        fallback.display()
                    ),
                    Err(e) => eprintln!("error: the fallback `{}` failed too: {e}", fallback.display()),
                }
            }
        }
    }
    if write_failed {
        return exit::RUNTIME_ERROR;
    }
    if !quiet {
        print!("{}", report::terminal(&ev, color && std::io::stdout().is_terminal()));
        let (diags, sources) = report::failure_diagnostics(&ev);
        eprint!("{}", diag::render(&diags, &sources, color, 100));
    }
    if let (Some(c), false) = (&comparison, quiet) {
        print!("{}", compare::table(c));
    }
    if print_paths {
        for (what, p) in [
            ("result", &outputs.json),
            ("report", &outputs.html),
            ("junit", &outputs.junit),
            ("markdown", &outputs.markdown),
        ] {
            if let Some(p) = p {
                // Absolute, so that the line can be pasted from any folder.
                println!("{what}: {}", std::path::absolute(p).unwrap_or_else(|_| p.clone()).display());
            }
        }
    }
    let not_comparable = value.pointer("/comparison/not_comparable").and_then(serde_json::Value::as_str);
    if let (Some(why), false) = (not_comparable, quiet) {
        println!("baseline comparison not comparable: {why}; no regression verdict");
    }
    // Invalid evidence and failed expectations come first; a regression alone exits 3; a
    // baseline comparison that could not be made is invalid evidence for the gate.
    match evaluate::exit_code(&ev) {
        exit::SUCCESS if regressed => exit::REGRESSION,
        exit::SUCCESS if not_comparable.is_some() => exit::INVALID_RUN,
        code => code,
    }
}

/// `benchctl report`: evaluates a saved result again and writes the requested outputs.
pub fn report_cmd(result: &Path, outputs: &Outputs, quiet: bool, color: bool) -> u8 {
    let mut value = match read_result(result) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}\n  help: pass the result.json that `benchctl run` wrote");
            return exit::INVALID_INPUT;
        }
    };
    present(&mut value, outputs, quiet, true, color, None)
}

/// `out/<scenario>/<timestamp>/`, the timestamp (when the command started) in a form that
/// sorts and suits file names.
fn default_dir(scenario: &str, at: std::time::SystemTime) -> PathBuf {
    PathBuf::from("out").join(file_name(scenario)).join(stamp(at))
}

fn stamp(at: std::time::SystemTime) -> String {
    result::rfc3339(at).chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// A scenario name as a file name: letters, digits, `-` and `_` kept, the rest `_`.
fn file_name(scenario: &str) -> String {
    scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Makes sure a run's outputs have somewhere to go before the run starts: each output's
/// folder is created and written to, the result's folder is locked for this run, and a
/// result of another scenario already there is not replaced. Returns the held lock.
fn claim_outputs(outputs: &Outputs, scenario: &str, lock: bool) -> Result<Option<benchctl::files::FolderLock>, String> {
    let folder = |p: &PathBuf| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let paths = [&outputs.json, &outputs.junit, &outputs.markdown, &outputs.html];
    for p in paths.into_iter().flatten() {
        // Devices and FIFOs named as outputs are written into; their folder need not be writable.
        if std::fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            continue;
        }
        let dir = folder(p);
        benchctl::files::check_writable(&dir).map_err(|e| {
            format!(
                "cannot write into `{}` (for `{}`): {e}\n  help: choose a writable folder with --out, or fix the output path in the scenario's `report` node",
                dir.display(),
                p.display()
            )
        })?;
    }
    let Some(json) = &outputs.json else { return Ok(None) };
    if std::fs::metadata(json).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return Ok(None);
    }
    let dir = folder(json);
    if !lock {
        return Ok(None);
    }
    let lock = benchctl::files::lock_folder(&dir).map_err(|e| match e {
        benchctl::files::LockError::Busy(_) => {
            format!("{e}\n  help: wait for it to finish, or give this run its own folder with --out")
        }
        e => e.to_string(),
    })?;
    let previous = benchctl::dsl::source::read_text_bounded(json, result::MAX_RESULT_BYTES)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.pointer("/scenario/name").and_then(|n| n.as_str()).map(str::to_string));
    if let Some(other) = previous.filter(|n| n != scenario) {
        return Err(format!(
            "`{}` holds a result of scenario `{other}`; this run of `{scenario}` would replace it\n  help: give this run its own folder with --out, or move the old result away",
            json.display()
        ));
    }
    Ok(Some(lock))
}

/// After a hangup the terminal is gone and writing to it fails; the run still has a result
/// to write, so what it would print goes to /dev/null instead (only where it went to a
/// terminal: a redirected log keeps its lines).
#[cfg(unix)]
fn detach_from_terminal() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return };
    for fd in [1, 2] {
        // SAFETY: isatty and dup2 on the process's own descriptors; `null` outlives the calls.
        unsafe {
            if libc::isatty(fd) == 1 {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session; standard output and error
/// are then pointed at /dev/null).
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals { term: signal(SignalKind::terminate()).ok(), hup: signal(SignalKind::hangup()).ok() }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the next one; false when signals cannot be watched.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) -> bool {
                match s {
                    Some(s) => s.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.is_ok(),
                r = next(&mut self.term) => r,
                r = next(&mut self.hup) => {
                    detach_from_terminal();
                    r
                }
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// First SIGINT, SIGTERM or SIGHUP: stop gracefully (drain, write a partial result).
/// Second: exit now.
async fn watch_signals(interrupt: Arc<Stop>) {
    let mut signals = Signals::new();
    for n in 0.. {
        if !signals.next().await {
            return;
        }
        if n > 0 {
            eprintln!("\ninterrupted twice: exiting without writing a result");
            std::process::exit(130);
        }
        eprintln!("\nstopping: finishing in-flight requests and writing a partial result (interrupt again to abort)");
        interrupt.set();
    }
}

/// While a run is going, a panic inside a workload is counted as an error of kind `panic`;
/// the default hook's message for each would bury the progress display, so the first one
/// is kept and printed once at the end.
struct QuietPanics {
    previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync>,
    first: Arc<std::sync::Mutex<Option<String>>>,
}

impl QuietPanics {
    fn install() -> QuietPanics {
        let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> = Arc::from(std::panic::take_hook());
        let first = Arc::new(std::sync::Mutex::new(None));
        let (prev, slot) = (previous.clone(), first.clone());
        std::panic::set_hook(Box::new(move |info| {
            let worker = std::thread::current().name().is_some_and(|n| n.starts_with("tokio-runtime-worker"));
            if worker {
                let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
                s.get_or_insert_with(|| info.to_string());
            } else {
                prev(info);
            }
        }));
        QuietPanics { previous, first }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        let _ = std::panic::take_hook();
        let prev = self.previous.clone();
        std::panic::set_hook(Box::new(move |info| prev(info)));
        if let Some(msg) = self.first.lock().unwrap_or_else(|e| e.into_inner()).take() {
            eprintln!("warning: a workload panicked (counted as errors of kind `panic`); the first: {msg}");
        }
    }
}

/// A short table per workload (measured phases).
/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out += &format!("{indent}{}\n", cells.join("  ").trim_end());
    }
    out
}

/// A workload's setup facts (rows, then tables) and its declared per-request measures, the
/// same for every kind.
fn setup_lines(name: &str, w: &benchctl::result::WorkloadDoc) -> String {
    let mut out = String::new();
    if let Some(f) = &w.facts {
        if let Some(s) = &f.synthetic {
            out += &format!("  {name} is synthetic: {s}\n");
        }
        if !f.rows.is_empty() {
            out += &format!("  {name}:\n");
            let rows: Vec<Vec<String>> = f.rows.iter().map(|r| vec![r.label.clone(), r.text.clone()]).collect();
            out += &table(&rows, "    ");
        }
        for t in f.tables.iter().filter(|t| !t.rows.is_empty()) {
            out += &format!("  {name}: {} ({})\n", t.title, t.note);
            let mut rows = vec![t.columns.clone()];
            rows.extend(t.rows.iter().cloned());
            out += &table(&rows, "    ");
        }
    }
    let declared: Vec<String> = w
        .metrics
        .iter()
        .filter(|(m, _)| benchctl::dsl::metrics::is_declared(&w.kind, m))
        .map(|(m, d)| {
            let v = |x: f64| benchctl::report::format_value(x, d.unit);
            format!(
                "{m} mean {}, p50 {}, p95 {}, min {} ({} samples)",
                v(d.summary.mean),
                v(d.summary.p50),
                v(d.summary.p95),
                v(d.summary.min),
                d.summary.count
            )
        })
        .collect();
    for line in declared {
        out += &format!("  {name}: {line}\n");
    }
    out
}

fn summary(doc: &ResultDoc) -> String {
    // Columns as (header, cells); time columns share one unit, named in the header.
    let names: Vec<&String> = doc.benchmarks.keys().collect();
    let mut columns: Vec<(String, Vec<String>)> =
        vec![("workload".into(), names.iter().map(|n| n.to_string()).collect())];
    let ws: Vec<&benchctl::result::WorkloadDoc> = doc.benchmarks.values().collect();
    columns.push(("requests".into(), ws.iter().map(|w| w.requests.to_string()).collect()));
    columns.push(("req/s".into(), ws.iter().map(|w| format!("{:.1}", w.throughput)).collect()));
    columns
        .push(("errors".into(), ws.iter().map(|w| format!("{} ({:.2}%)", w.errors, w.error_rate * 100.0)).collect()));
    let times = |header: &str, metric: &str, pick: fn(&benchctl::stats::DistSummary) -> f64| {
        let values: Vec<Option<f64>> = ws.iter().map(|w| w.metrics.get(metric).map(|m| pick(&m.summary))).collect();
        let max = values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let (unit, scale, digits) = if max >= 10.0 {
            ("s", 1.0, 2)
        } else if max >= 1e-3 || max == 0.0 {
            ("ms", 1e3, 2)
        } else {
            ("us", 1e6, 0)
        };
        let cells = values.iter().map(|v| v.map_or("-".into(), |x| format!("{:.digits$}", x * scale))).collect();
        (format!("{header} ({unit})"), cells)
    };
    columns.push(times("p50", "latency", |s| s.p50));
    columns.push(times("p95", "latency", |s| s.p95));
    columns.push(times("p99", "latency", |s| s.p99));
    columns.push(times("ttft p95", "ttft", |s| s.p95));
    columns.push(("tok/s".into(), ws.iter().map(|w| w.tok_s.map_or("-".into(), |t| format!("{t:.0}"))).collect()));
    // Fit the terminal: the least needed columns go first (a wider terminal keeps them).
    let width = std::io::stdout()
        .is_terminal()
        .then(|| benchctl::progress::terminal_width(1))
        .flatten()
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()));
    let render = |cols: &[(String, Vec<String>)]| {
        let mut rows = vec![cols.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>()];
        for i in 0..names.len() {
            rows.push(cols.iter().map(|(_, c)| c[i].clone()).collect());
        }
        table(&rows, "  ")
    };
    let too_wide = |text: &str, w: usize| text.lines().any(|l| l.chars().count() > w);
    if let Some(w) = width {
        for drop in ["p50", "requests", "p99", "ttft p95"] {
            if !too_wide(&render(&columns), w) {
                break;
            }
            columns.retain(|(h, _)| !h.starts_with(&format!("{drop} (")) && h != drop);
        }
    }
    let measured: f64 =
        doc.phases.iter().filter(|p| p.role == benchctl::dsl::model::PhaseRole::Measure).map(|p| p.duration_s).sum();
    let mut out = format!(
        "{} {} in {:.1}s ({measured:.1}s in measured phases; the table covers those)\n",
        doc.scenario.name, doc.status, doc.duration_s
    );
    out += &render(&columns);
    for (name, w) in &doc.benchmarks {
        out += &setup_lines(name, w);
    }
    if let Some(s) = &doc.stress_test {
        let max = s.max_sustainable_load.map_or("none stable".into(), |r| format!("{r:.1} requests/s"));
        out += &format!("  breaking point of {}: max sustainable load {max}\n", s.workload);
    }
    if doc.runs.len() > 1 {
        out += &format!("  between the {} runs (mean, coefficient of variation):\n", doc.runs.len());
        for (name, stats) in &doc.repeat_spread {
            let shown: Vec<String> = ["latency.p50", "latency.p95", "latency.p99", "ttft.p95", "throughput", "tok_s"]
                .iter()
                .filter_map(|k| stats.get(*k).map(|s| (k, s)))
                .map(|(k, s)| {
                    let mean =
                        if k.contains('.') { format!("{:.3}ms", s.mean * 1e3) } else { format!("{:.1}/s", s.mean) };
                    format!("{k} {mean} ±{:.1}%", s.cv * 100.0)
                })
                .collect();
            out += &format!("    {name}: {}\n", shown.join(", "));
        }
    }
    for w in &doc.warnings {
        out += &format!("  warning: {w}\n");
    }
    out
}

/// What `benchctl merge` was asked for.
pub struct MergeArgs {
    pub dir: PathBuf,
    pub expect: u64,
    pub mode: Option<String>,
    pub allow_missing: u64,
    pub out: Option<PathBuf>,
    pub outlier_deviation: String,
    pub quiet: bool,
    pub color: bool,
}

/// `benchctl merge DIR --expect N`: split mode evaluates the merged data like a run (every
/// output, the usual exit codes); fleet mode writes the fleet document and its Markdown, and
/// exits 1 when a node failed or a slow outlier stands out. A bad input exits 4, named.
pub fn merge_cmd(a: MergeArgs) -> u8 {
    let deviation = match benchctl::dsl::units::Percent::parse(&a.outlier_deviation, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --outlier-deviation {}: {}\n  help: {}", a.outlier_deviation, e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    if a.expect == 0 {
        eprintln!("error: --expect 0: a merge needs at least one shard or node");
        return exit::INVALID_INPUT;
    }
    let paths = match benchctl::merge::inputs(&a.dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    let mode = a.mode.clone().unwrap_or_else(|| {
        let fleet = paths.iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("fleet-")));
        if fleet { "fleet" } else { "split" }.to_string()
    });
    let out = a.out.clone().unwrap_or_else(|| a.dir.join("merged"));
    let bad = |e: benchctl::merge::MergeError| {
        eprintln!("error: cannot merge: {e}");
        exit::INVALID_RUN
    };
    if mode == "fleet" {
        let doc = match benchctl::merge::fleet(&paths, a.expect, a.allow_missing, deviation) {
            Ok(d) => d,
            Err(e) => return bad(e),
        };
        let md = benchctl::merge::fleet_markdown(&doc);
        for (name, bytes) in
            [("fleet.json", serde_json::to_vec_pretty(&doc).unwrap_or_default()), ("fleet.md", md.clone().into_bytes())]
        {
            let p = out.join(name);
            if let Err(e) = benchctl::files::write_atomic(&p, &bytes) {
                eprintln!("error: cannot write `{}`: {e}", p.display());
                return exit::RUNTIME_ERROR;
            }
        }
        if !a.quiet {
            print!("{md}");
            println!("\nwrote {} and {}", out.join("fleet.json").display(), out.join("fleet.md").display());
        }
        return match doc["verdict"].as_str() {
            Some("passed") => exit::SUCCESS,
            Some("failed") => exit::FAILED,
            _ => exit::INVALID_RUN,
        };
    }
    let mut value = match benchctl::merge::split(&paths, a.expect, a.allow_missing) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let m = &value["merge"];
    if !a.quiet {
        println!(
            "merged {} of {} shards (start skew {:.3}s, wall span {:.1}s)",
            m["merged"],
            m["expected"],
            m["start_skew_s"].as_f64().unwrap_or(0.0),
            value["duration_s"].as_f64().unwrap_or(0.0)
        );
        for s in m["shards"].as_array().into_iter().flatten() {
            println!(
                "  shard {:>4}  {:>8} requests  share {:>5.1}% (planned {:>5.1}%)  skew {:>7.3}s{}",
                s["index"],
                s["requests"],
                s["achieved_share"].as_f64().unwrap_or(0.0) * 100.0,
                s["planned_share"].as_f64().unwrap_or(0.0) * 100.0,
                s["start_skew_s"].as_f64().unwrap_or(0.0),
                if s["fell_short"] == true { "  FELL SHORT" } else { "" }
            );
        }
    }
    let outputs = Outputs {
        json: Some(out.join("result.json")),
        junit: Some(out.join("junit.xml")),
        markdown: Some(out.join("summary.md")),
        html: Some(out.join("report.html")),
        templates: None,
    };
    let name = value.pointer("/scenario/name").and_then(serde_json::Value::as_str).unwrap_or("").to_string();
    if let Err(e) = claim_outputs(&outputs, &name, true) {
        eprintln!("error: {e}");
        return exit::INVALID_INPUT;
    }
    present(&mut value, &outputs, a.quiet, !a.quiet, a.color, None)
}

/// A duration given to `flag`, in the scenario language's units.
fn flag_duration(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    benchctl::dsl::units::Duration::parse(s)
        .map(|d| d.as_std())
        .map_err(|e| format!("{flag} {s}: {}\n  help: {}", e.message, e.help))
}

/// `--alert-cooldown`, in seconds.
pub fn parse_cooldown(s: &str) -> Result<f64, String> {
    flag_duration("--alert-cooldown", s).map(|d| d.as_secs_f64())
}

fn bind_or_exit(addr: Option<&str>) -> Result<benchctl::dashboard::Listening, u8> {
    let bind = benchctl::dashboard::parse_bind(addr).map_err(|e| {
        eprintln!("error: --addr {e}");
        exit::INVALID_INPUT
    })?;
    benchctl::dashboard::listen(&bind).map_err(|e| {
        eprintln!("error: {e}");
        exit::RUNTIME_ERROR
    })
}

/// Blocks until the first SIGINT, SIGTERM or SIGHUP.
fn until_signal() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    rt.block_on(async { Signals::new().next().await });
}

/// `benchctl dashboard DIR`: serves the history until Ctrl-C.
pub fn history_cmd(dir: &Path, addr: Option<&str>, baseline: Option<&Path>, tolerance: &str) -> u8 {
    use benchctl::dashboard::{history, say, Server};
    let tolerance = match benchctl::dsl::units::Percent::parse(tolerance, true) {
        Ok(p) => p.0,
        Err(e) => {
            eprintln!("error: --tolerance {tolerance}: {}\n  help: {}", e.message, e.help);
            return exit::INVALID_INPUT;
        }
    };
    if !dir.is_dir() {
        eprintln!(
            "error: `{}` is not a folder\n  help: give the folder your runs write into (their --out), e.g. out/",
            dir.display()
        );
        return exit::INVALID_INPUT;
    }
    let base = match baseline {
        Some(p) => {
            match read_result(p).map_err(|e| e.to_string()).and_then(|d| history::run_of(p.display().to_string(), &d)) {
                Ok(r) => Some((p.display().to_string(), r)),
                Err(e) => {
                    eprintln!("error: --baseline {}: {e}", p.display());
                    return exit::INVALID_INPUT;
                }
            }
        }
        None => None,
    };
    let found = history::load(dir, base.as_ref(), tolerance);
    let listening = match bind_or_exit(addr) {
        Ok(l) => l,
        Err(code) => return code,
    };
    say(format_args!("{}", listening.banner("history")));
    say(format_args!(
        "{} runs in {} series under {}; Ctrl-C stops\n",
        found.runs.len(),
        found.groups.len(),
        dir.display()
    ));
    for (f, why) in &found.skipped {
        say(format_args!("note: skipped {f}: {why}\n"));
    }
    let server = match Server::start(listening, history::router(dir.to_path_buf(), base, tolerance)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::RUNTIME_ERROR;
        }
    };
    until_signal();
    server.stop();
    exit::SUCCESS
}

/// `benchctl monitor`: the probes live until Ctrl-C or --duration.
pub fn monitor_cmd(addr: Option<&str>, probes: &[String], every: &str, duration: Option<&str>, cooldown: &str) -> u8 {
    use benchctl::dashboard::{monitor, say};
    use benchctl::dsl::model::ProbeKind;
    let durations = (|| {
        let every = flag_duration("--every", every)?;
        if every.is_zero() {
            return Err("--every must be above 0".to_string());
        }
        let duration = duration.map(|d| flag_duration("--duration", d)).transpose()?;
        Ok((every, duration, parse_cooldown(cooldown)?))
    })();
    let (every, duration, cooldown_s) = match durations {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID_INPUT;
        }
    };
    // clap allows only the probe kinds' names.
    let mut kinds: Vec<ProbeKind> = vec![];
    for k in probes.iter().filter_map(|p| ProbeKind::from_name(p)) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let listening = match bind_or_exit(addr) {
        Ok(l) => l,
        Err(code) => return code,
    };
    say(format_args!("{}", listening.banner("monitor")));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let watcher = std::thread::spawn(move || {
        until_signal();
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let args = monitor::MonitorArgs { probes: kinds, every, duration, cooldown_s };
    let result = monitor::run(listening, &args, stop);
    drop(watcher);
    match result {
        Ok(alerts) => {
            say(format_args!("monitor stopped; {} alert(s)\n", alerts.len()));
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::RUNTIME_ERROR
        }
    }
}
