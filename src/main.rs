//! The `benchctl` command line: parses arguments, runs one subcommand, maps the outcome to a
//! documented exit code (see `benchctl --help` and docs/exit-codes.md).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use benchctl::dsl::{self, diag, format, LoadOptions};
use benchctl::exit;
use benchctl::plan;

mod commands;

#[derive(Parser)]
#[command(name = "benchctl", version, about = "Declare, check, run and gate performance scenarios for AI systems", after_help = exit::HELP_TABLE)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenarios: every error and lint, pointing into the KDL source.
    #[command(after_help = exit::HELP_TABLE)]
    Check {
        /// Scenario files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        load: LoadArgs,
        /// Output format of the diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors (exit 2 when there are any).
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        color: ColorArgs,
    },
    /// Show the resolved plan: timeline, load per workload, probes, expectations.
    #[command(after_help = exit::HELP_TABLE)]
    Plan {
        file: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        color: ColorArgs,
    },
    /// Run a scenario: phases in order; result JSON, HTML report, verdict and exit code.
    #[command(after_help = exit::HELP_TABLE)]
    Run {
        file: PathBuf,
        #[command(flatten)]
        load: LoadArgs,
        /// Folder for the results (default: out/<scenario>/<timestamp>/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// No progress display and no summary; only errors.
        #[arg(long, short)]
        quiet: bool,
        /// Compare with this baseline result (overrides the scenario's `baseline`).
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Folder with a report.html that replaces the built-in HTML template.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Run the measured phases N times (overrides the scenario's `repeat`): the result
        /// records each run, their spread, and a comparison tests between-run variation.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1000))]
        repeat: Option<u64>,
        #[command(flatten)]
        distributed: DistributedArgs,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        color: ColorArgs,
    },
    /// Merge the shard files of a split run, or the results of a fleet run, and evaluate
    /// the scenario's expectations once on the merged data (docs/distributed.md).
    #[command(after_help = exit::HELP_TABLE)]
    Merge {
        /// The folder the shards or fleet members wrote into (their `--out`).
        dir: PathBuf,
        /// How many shards or nodes the run had; fewer (beyond --allow-missing) exits 4.
        #[arg(long, value_name = "N")]
        expect: u64,
        /// `split` (one load shared by N generators) or `fleet` (one scenario on N nodes);
        /// default: what the files are.
        #[arg(long, value_parser = ["split", "fleet"])]
        mode: Option<String>,
        /// Merge even when up to K shards or nodes are missing (said in every output).
        #[arg(long, value_name = "K", default_value_t = 0)]
        allow_missing: u64,
        /// Folder for the merged outputs (default: DIR/merged/).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Fleet mode: a node whose figure is worse than the fleet median by more than this
        /// is an outlier (with 10 or more nodes, its modified z-score must also exceed 3.5).
        #[arg(long, value_name = "PCT", default_value = "5%")]
        outlier_deviation: String,
        /// No table; only errors.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        color: ColorArgs,
    },
    /// Serve the history of the results under DIR: trends per metric by scenario and host,
    /// regression and step markers, filters, CSV and JSON export (docs/dashboard.md).
    Dashboard {
        /// A folder of results (searched 6 levels deep), e.g. out/.
        #[arg(default_value = "out")]
        dir: PathBuf,
        /// Where to listen: PORT, HOST:PORT or HOST (default 127.0.0.1:5665, or the next
        /// free port). Any address other than loopback needs an access token.
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
        /// A result to mark regressions against (default: each series' first run).
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// A change larger than this is a regression or a step.
        #[arg(long, value_name = "PCT", default_value = "10%")]
        tolerance: String,
    },
    /// Show the probes (system, process, GPU, energy) live in the browser, with resource
    /// alerts and no workload (docs/dashboard.md).
    Monitor {
        /// Where to listen (as for `benchctl dashboard`).
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
        /// Probes to sample (repeat or separate with commas).
        #[arg(long, value_delimiter = ',', default_values = ["system", "process"], value_parser = ["system", "process", "gpu", "energy"])]
        probe: Vec<String>,
        /// Sampling interval.
        #[arg(long, value_name = "DURATION", default_value = "1s")]
        every: String,
        /// Stop after this long (default: at Ctrl-C).
        #[arg(long, value_name = "DURATION")]
        duration: Option<String>,
        /// Seconds before an alert with the same key is shown again.
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        alert_cooldown: String,
    },
    /// Evaluate a saved result again: verdict, grade, HTML, JUnit, Markdown, without rerunning.
    #[command(after_help = exit::HELP_TABLE)]
    Report {
        /// A result.json written by `benchctl run`.
        result: PathBuf,
        /// Write JUnit XML here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write the Markdown summary here.
        #[arg(long, value_name = "FILE")]
        markdown: Option<PathBuf>,
        /// Write the evaluated result JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the HTML report here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Folder with a report.html that replaces the built-in HTML template.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Print only the paths written.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        color: ColorArgs,
    },
    /// Compare a result with a baseline result: per metric change, 95% interval, verdict.
    #[command(after_help = exit::HELP_TABLE)]
    Compare {
        baseline: PathBuf,
        result: PathBuf,
        /// Default tolerance: a significant change within it counts as unchanged.
        #[arg(long, default_value = "5%", value_name = "PERCENT")]
        tolerance: String,
        /// Print the comparison as JSON (the result document's `comparison`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Write a commented starter scenario.
    Init {
        /// Where to write it.
        #[arg(default_value = "scenario.kdl")]
        file: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// What the starter benchmarks: a synthetic service, an in-process LLM, vector search, or
        /// a served model behind an OpenAI-compatible API.
        #[arg(long, value_enum, default_value_t = Template::Synthetic)]
        template: Template,
    },
    /// List the scenarios in ./scenarios and the stdlib modules, with what each is for.
    List {
        /// Extra stdlib folder to list (as for `check --stdlib`).
        #[arg(long = "stdlib", value_name = "DIR")]
        stdlib: Vec<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Rewrite scenarios in canonical form (comments kept).
    #[command(after_help = exit::HELP_TABLE)]
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not in canonical form (for CI).
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Save a result as a baseline (default: baseline/<scenario>.json).
    Save {
        result: PathBuf,
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
    /// Add a result's runs to a baseline (created from the result if it does not exist), so
    /// that comparisons test against the variation between runs.
    Add {
        result: PathBuf,
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
}

#[derive(Args)]
struct LoadArgs {
    /// Override a parameter: --set name=value (repeatable; typed like the file's value).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Extra stdlib folder, searched after the scenario's own folder (repeatable).
    #[arg(long = "stdlib", value_name = "DIR")]
    stdlib: Vec<PathBuf>,
}

impl LoadArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions { stdlib_dirs: self.stdlib.clone(), sets: self.sets.clone() }
    }
}

#[derive(Args)]
struct ColorArgs {
    /// When to colour diagnostics (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Format {
    #[value(alias = "text")]
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Color {
    Auto,
    Always,
    Never,
}

impl ColorArgs {
    fn enabled(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal(),
        }
    }
}

/// The file a scenario argument names: the path when it exists; for a bare name (`quick`,
/// `quick.kdl`), `scenarios/NAME.kdl` here when there is one (a local file wins), else the
/// built-in scenario of that name, copied to the cache so that diagnostics point into a
/// file the user can open. Anything else is left as given, for the loader to report.
fn scenario_path(arg: &std::path::Path, quiet: bool) -> PathBuf {
    let given = arg.to_path_buf();
    if given.exists() || given.components().count() != 1 {
        return given;
    }
    let text = given.to_string_lossy();
    let name = text.strip_suffix(".kdl").unwrap_or(&text);
    if let Some(local) = local_scenario(name) {
        return local;
    }
    let Some((_, builtin)) = dsl::load::builtin_scenarios().iter().find(|(n, _)| *n == name) else {
        return given;
    };
    let copy = benchctl::workload::setup::cache_dir().join("scenarios").join(format!("{name}.kdl"));
    let current = std::fs::read_to_string(&copy).is_ok_and(|t| t == *builtin);
    let written = current
        || std::fs::create_dir_all(copy.parent().unwrap_or(&copy))
            .and_then(|_| benchctl::files::write_atomic(&copy, builtin.as_bytes()))
            .is_ok();
    if !written {
        eprintln!("error: cannot write the built-in scenario `{name}` to `{}`", copy.display());
        return given;
    }
    if !quiet {
        eprintln!("{name}: the built-in scenario (a copy to read or edit: {})", copy.display());
    }
    copy
}

/// A local file that takes the place of the built-in scenario `name`: `NAME.kdl` or
/// `scenarios/NAME.kdl` in the working directory.
fn local_scenario(name: &str) -> Option<PathBuf> {
    let file = format!("{name}.kdl");
    [PathBuf::from(&file), std::path::Path::new("scenarios").join(&file)].into_iter().find(|p| p.is_file())
}

fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { files, load, format, deny_warnings, color } => {
            let files: Vec<PathBuf> = files.iter().map(|f| scenario_path(f, false)).collect();
            check(&files, &load.options(), format, deny_warnings, color.enabled())
        }
        Command::Plan { file, load, format, color } => {
            plan_cmd(&scenario_path(&file, false), &load.options(), format, color.enabled())
        }
        Command::Fmt { files, check } => fmt(&files, check),
        Command::Init { file, force, template } => init(&file, force, template),
        Command::List { stdlib } => list(&stdlib),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "benchctl",
                &mut std::io::stdout(),
            );
            exit::SUCCESS
        }
        Command::Compare { baseline, result, tolerance, json } => {
            commands::compare_cmd(&baseline, &result, &tolerance, json)
        }
        Command::Baseline(BaselineCommand::Save { result, to }) => commands::baseline_save(&result, to, false),
        Command::Baseline(BaselineCommand::Add { result, to }) => commands::baseline_save(&result, to, true),
        Command::Report { result, junit, markdown, json, html, templates, quiet, color } => commands::report_cmd(
            &result,
            &commands::Outputs { json, junit, markdown, html, templates },
            quiet,
            color.enabled(),
        ),
        Command::Run { file, load, out, quiet, baseline, templates, repeat, distributed, live, color } => {
            match distributed.resolve().and_then(|d| live.resolve().map(|l| (d, l))) {
                Ok((dist, dashboard)) => commands::run_scenario(
                    &scenario_path(&file, quiet),
                    &load.options(),
                    commands::RunArgs { out, quiet, baseline, templates, repeat, dist, dashboard },
                    color.enabled(),
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::INVALID_INPUT
                }
            }
        }
        Command::Dashboard { dir, addr, baseline, tolerance } => {
            commands::history_cmd(&dir, addr.as_deref(), baseline.as_deref(), &tolerance)
        }
        Command::Monitor { addr, probe, every, duration, alert_cooldown } => {
            commands::monitor_cmd(addr.as_deref(), &probe, &every, duration.as_deref(), &alert_cooldown)
        }
        Command::Merge { dir, expect, mode, allow_missing, out, outlier_deviation, quiet, color } => {
            commands::merge_cmd(commands::MergeArgs {
                dir,
                expect,
                mode,
                allow_missing,
                out,
                outlier_deviation,
                quiet,
                color: color.enabled(),
            })
        }
    };
    ExitCode::from(code)
}

/// The live dashboard of a run.
#[derive(clap::Args, Debug)]
struct LiveArgs {
    /// Serve a live dashboard of the run (GET / and Server-Sent Events at /events) on ADDR:
    /// PORT, HOST:PORT or HOST; default 127.0.0.1:5665 or the next free port. Any address
    /// other than loopback needs an access token (printed, or BENCHCTL_DASHBOARD_TOKEN).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    dashboard: Option<String>,
    /// Seconds before an alert with the same key is shown again.
    #[arg(long, value_name = "DURATION", default_value = "60s", requires = "dashboard")]
    alert_cooldown: String,
}

impl LiveArgs {
    fn resolve(&self) -> Result<Option<commands::LiveArgs>, String> {
        let Some(addr) = &self.dashboard else { return Ok(None) };
        let bind = benchctl::dashboard::parse_bind(Some(addr)).map_err(|e| format!("--dashboard {e}"))?;
        let cooldown_s = commands::parse_cooldown(&self.alert_cooldown)?;
        Ok(Some(commands::LiveArgs { bind, cooldown_s }))
    }
}

/// How a run takes part in a run over several processes or machines.
#[derive(clap::Args, Debug)]
struct DistributedArgs {
    /// Run shard I of N (I from 0) of a split run: 1/N of every drive's rate, concurrency
    /// and request budget; writes shard-I-of-N.json for `benchctl merge`.
    #[arg(long, value_name = "I/N", conflicts_with_all = ["shard_from_env", "fleet_member"])]
    shard: Option<String>,
    /// Read the shard from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX with
    /// BENCHCTL_SHARD_COUNT) or a Slurm array or step (SLURM_ARRAY_TASK_ID, SLURM_PROCID).
    #[arg(long, conflicts_with = "fleet_member")]
    shard_from_env: bool,
    /// Run the whole scenario as one node of a fleet: the result names the node and its
    /// GPUs, for `benchctl merge --mode fleet`.
    #[arg(long)]
    fleet_member: bool,
    /// Start the first phase at this time (RFC 3339, e.g. 2026-12-03T10:00:00Z), after setup:
    /// a start barrier for shards with no coordinator.
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
    /// The run's id, shared by its shards (default: BENCHCTL_RUN_ID, or the Slurm job id).
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
}

impl DistributedArgs {
    fn resolve(self) -> Result<commands::Distributed, String> {
        let var = |k: &str| std::env::var(k).ok();
        let start_at = self
            .start_at
            .as_deref()
            .map(benchctl::shard::parse_rfc3339)
            .transpose()
            .map_err(|e| format!("--start-at: {e}"))?;
        let mut run_id = self.run_id.or_else(|| var("BENCHCTL_RUN_ID")).filter(|s| !s.trim().is_empty());
        let role = if let Some(s) = &self.shard {
            let shard = benchctl::shard::Shard::parse(s).map_err(|e| format!("--shard {s}: {e}"))?;
            commands::Role::Shard { shard, source: "--shard".into() }
        } else if self.shard_from_env {
            let found = benchctl::shard::Shard::from_env(&var)?;
            run_id = run_id.or(found.run_id);
            commands::Role::Shard { shard: found.shard, source: found.source }
        } else if self.fleet_member {
            let (node, source) = benchctl::shard::node_name(&var);
            run_id = run_id.or_else(|| var("SLURM_JOB_ID"));
            commands::Role::Fleet { node, source }
        } else {
            commands::Role::Alone
        };
        Ok(commands::Distributed { role, start_at, run_id })
    }
}

fn check(files: &[PathBuf], opts: &LoadOptions, format: Format, deny_warnings: bool, color: bool) -> u8 {
    let mut json = vec![];
    let (mut errors, mut warnings) = (0, 0);
    for file in files {
        let checked = dsl::check_file(file, opts);
        let e = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        errors += e;
        warnings += checked.diagnostics.len() - e;
        match format {
            Format::Json => json.extend(checked.diagnostics.iter().map(|d| diag::to_json(d, &checked.sources))),
            Format::Human => {
                eprint!("{}", diag::render(&checked.diagnostics, &checked.sources, color, width()));
                let status = if e > 0 { "invalid" } else { "ok" };
                println!(
                    "{status}: {} ({e} error{}, {} warning{})",
                    file.display(),
                    plural(e),
                    checked.diagnostics.len() - e,
                    plural(checked.diagnostics.len() - e)
                );
            }
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&json).expect("diagnostics serialise"));
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn plan_cmd(file: &std::path::Path, opts: &LoadOptions, format: Format, color: bool) -> u8 {
    let checked = dsl::check_file(file, opts);
    if !checked.diagnostics.is_empty() {
        eprint!("{}", diag::render(&checked.diagnostics, &checked.sources, color, width()));
    }
    let Some(valid) = &checked.scenario else {
        eprintln!("error: `{}` is not a valid scenario; nothing to plan", file.display());
        return exit::INVALID_INPUT;
    };
    let p = plan::build(valid, &checked.sources);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&p).expect("plan serialises") + "\n",
        Format::Human => plan::render_text(&p),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit::SUCCESS
}

fn fmt(files: &[PathBuf], check: bool) -> u8 {
    let mut status = exit::SUCCESS;
    for file in files {
        let text = match dsl::source::read_text(file) {
            Ok(t) => t,
            Err((_, msg, help)) => {
                eprintln!("error: {msg}\n  help: {help}");
                return exit::INVALID_INPUT;
            }
        };
        let formatted = match format::format_source(&text) {
            Ok(f) => f,
            Err(format::FormatError::Syntax(_)) => {
                eprintln!(
                    "error: `{}` is not valid KDL; run `benchctl check {}` for details",
                    file.display(),
                    file.display()
                );
                return exit::INVALID_INPUT;
            }
            Err(format::FormatError::TooComplex(at, msg, help)) => {
                // The formatter's own guard: the text is scanned once, not again here.
                let (line, col) = dsl::source::line_col(&text, at);
                eprintln!("error: {}:{line}:{col}: {msg}; it was left as it is\n  help: {help}", file.display());
                return exit::INVALID_INPUT;
            }
            Err(format::FormatError::Unsafe) => {
                eprintln!(
                    "error: cannot format `{}` without changing its meaning; it was left as it is (please report this)",
                    file.display()
                );
                return exit::INVALID_INPUT;
            }
        };
        if formatted == text {
            continue;
        }
        if check {
            println!("would reformat: {}", file.display());
            status = exit::FAILED;
        } else if let Err(e) = benchctl::files::write_atomic(file, formatted.as_bytes()) {
            eprintln!("error: cannot write `{}`: {e}", file.display());
            return exit::RUNTIME_ERROR;
        } else {
            println!("formatted: {}", file.display());
        }
    }
    status
}

/// The starter scenarios of `benchctl init`, one per `--template`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Template {
    Synthetic,
    Inference,
    Retrieval,
    Endpoint,
}

impl Template {
    fn text(self) -> &'static str {
        match self {
            Template::Synthetic => include_str!("../templates/starter.kdl"),
            Template::Inference => include_str!("../templates/starter-inference.kdl"),
            Template::Retrieval => include_str!("../templates/starter-retrieval.kdl"),
            Template::Endpoint => include_str!("../templates/starter-endpoint.kdl"),
        }
    }
}

fn init(file: &std::path::Path, force: bool, template: Template) -> u8 {
    if let Some(kind) = std::fs::metadata(file).ok().as_ref().and_then(dsl::source::special_kind) {
        // A scenario is a regular file: never write one into a device, a FIFO or a folder.
        eprintln!("error: `{}` is {kind}, not a scenario file\n  help: name a .kdl file to create", file.display());
        return exit::INVALID_INPUT;
    }
    if file.exists() && !force {
        eprintln!("error: `{}` exists; pass --force to overwrite it", file.display());
        return exit::INVALID_INPUT;
    }
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "starter".into());
    let name: String =
        name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let text = template
        .text()
        .replace("scenario \"starter\"", &format!("scenario \"{name}\""))
        .replace("out/starter/", &format!("out/{name}/"));
    if let Err(e) = benchctl::files::write_atomic(file, text.as_bytes()) {
        eprintln!("error: cannot write `{}`: {e}", file.display());
        return exit::RUNTIME_ERROR;
    }
    println!("wrote {}: check it with `benchctl check {0}`, run it with `benchctl run {0}`", file.display());
    exit::SUCCESS
}

fn list(extra: &[PathBuf]) -> u8 {
    use benchctl::dsl::load::{builtin_modules, summary_line};
    // Sections of (name, what it is for), printed with one name column.
    let mut sections: Vec<(String, Vec<(String, String)>)> = vec![];
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir("scenarios")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
        .collect();
    scenarios.sort();
    if !scenarios.is_empty() {
        let rows = scenarios
            .iter()
            .map(|p| {
                let text = dsl::source::read_text_bounded(p, dsl::source::MAX_FILE_BYTES).unwrap_or_default();
                (p.display().to_string(), summary_line(&text))
            })
            .collect();
        sections.push(("scenarios (./scenarios):".into(), rows));
    }
    let rows = dsl::load::builtin_scenarios()
        .iter()
        .map(|(name, text)| {
            let what = summary_line(text);
            match local_scenario(name) {
                Some(p) => (name.to_string(), format!("{what} [{} is used instead]", p.display())),
                None => (name.to_string(), what),
            }
        })
        .collect();
    sections.push(("scenarios built in (benchctl run NAME):".into(), rows));
    let opts = LoadOptions { stdlib_dirs: extra.to_vec(), ..Default::default() };
    for dir in opts.stdlib_path() {
        let mut files = vec![];
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "kdl") {
                    files.push(p);
                }
            }
        }
        files.sort();
        if !files.is_empty() {
            let rows = files
                .iter()
                .map(|p| {
                    let rel = p.strip_prefix(&dir).unwrap_or(p).display().to_string();
                    let text = dsl::source::read_text_bounded(p, dsl::source::MAX_FILE_BYTES).unwrap_or_default();
                    (format!("std/{rel}"), summary_line(&text))
                })
                .collect();
            sections.push((format!("stdlib modules in {}:", dir.display()), rows));
        }
    }
    let rows = builtin_modules().iter().map(|(path, text)| (format!("std/{path}"), summary_line(text))).collect();
    sections.push(("stdlib modules built in (use \"std/...\"):".into(), rows));
    let width = sections.iter().flat_map(|s| s.1.iter().map(|r| r.0.len())).max().unwrap_or(0);
    for (title, rows) in sections {
        println!("{title}");
        for (name, what) in rows {
            println!("  {name:<width$}  {what}");
        }
    }
    exit::SUCCESS
}
