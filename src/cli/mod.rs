//! The `benchctl` command line: the arguments (clap), one module per command family, and
//! the map from each command's outcome to a documented exit code (see `benchctl --help`
//! and docs/exit-codes.md). The pipeline itself lives in the library; these modules call
//! its stages and present what they return.

mod args;
mod dashboard;
mod merge;
mod outputs;
mod results;
mod run;
mod scenario;
mod signals;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use benchctl::exit;

use args::{ColorArgs, DistributedArgs, Format, LiveArgs, LoadArgs};
use scenario::{scenario_path, Template};

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

/// Parses the arguments and runs one command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { files, load, format, deny_warnings, color } => {
            let files: Vec<PathBuf> = files.iter().map(|f| scenario_path(f, false)).collect();
            scenario::check(&files, &load.options(), format, deny_warnings, color.enabled())
        }
        Command::Plan { file, load, format, color } => {
            scenario::plan_cmd(&scenario_path(&file, false), &load.options(), format, color.enabled())
        }
        Command::Fmt { files, check } => scenario::fmt(&files, check),
        Command::Init { file, force, template } => scenario::init(&file, force, template),
        Command::List { stdlib } => scenario::list(&stdlib),
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
            results::compare_cmd(&baseline, &result, &tolerance, json)
        }
        Command::Baseline(BaselineCommand::Save { result, to }) => results::baseline_save(&result, to, false),
        Command::Baseline(BaselineCommand::Add { result, to }) => results::baseline_save(&result, to, true),
        Command::Report { result, junit, markdown, json, html, templates, quiet, color } => results::report_cmd(
            &result,
            &benchctl::report::Outputs { json, junit, markdown, html, templates },
            quiet,
            color.enabled(),
        ),
        Command::Run { file, load, out, quiet, baseline, templates, repeat, distributed, live, color } => {
            match distributed.resolve().and_then(|d| live.resolve().map(|l| (d, l))) {
                Ok((dist, dashboard)) => run::run_scenario(
                    &scenario_path(&file, quiet),
                    &load.options(),
                    run::RunArgs { out, quiet, baseline, templates, repeat, dist, dashboard },
                    color.enabled(),
                ),
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::INVALID_INPUT
                }
            }
        }
        Command::Dashboard { dir, addr, baseline, tolerance } => {
            dashboard::history_cmd(&dir, addr.as_deref(), baseline.as_deref(), &tolerance)
        }
        Command::Monitor { addr, probe, every, duration, alert_cooldown } => {
            dashboard::monitor_cmd(addr.as_deref(), &probe, &every, duration.as_deref(), &alert_cooldown)
        }
        Command::Merge { dir, expect, mode, allow_missing, out, outlier_deviation, quiet, color } => {
            merge::merge_cmd(merge::MergeArgs {
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
