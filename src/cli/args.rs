//! Argument groups shared by several commands, and their resolution into what the
//! commands take.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use benchctl::dsl::LoadOptions;

use super::run::{Distributed, Live, Role};

#[derive(Args)]
pub struct LoadArgs {
    /// Override a parameter: --set name=value (repeatable; typed like the file's value).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// Extra stdlib folder, searched after the scenario's own folder (repeatable).
    #[arg(long = "stdlib", value_name = "DIR")]
    stdlib: Vec<PathBuf>,
}

impl LoadArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions { stdlib_dirs: self.stdlib.clone(), sets: self.sets.clone() }
    }
}

#[derive(Args)]
pub struct ColorArgs {
    /// When to colour diagnostics (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Format {
    #[value(alias = "text")]
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl ColorArgs {
    pub fn enabled(&self) -> bool {
        match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal(),
        }
    }
}

/// A command-line option whose value cannot be used: the option as written, and why.
#[derive(Debug)]
pub struct OptionError {
    /// `--shard 4/4`, `--every`: what the user wrote, or the option's name.
    pub option: String,
    pub why: Box<dyn std::error::Error>,
    /// How to fix it, when there is more to say than the reason.
    pub help: Option<&'static str>,
}

impl OptionError {
    pub fn new(option: impl Into<String>, why: impl Into<Box<dyn std::error::Error>>) -> OptionError {
        OptionError { option: option.into(), why: why.into(), help: None }
    }
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.why)?;
        match self.help {
            Some(h) => write!(f, "\n  help: {h}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for OptionError {}

/// The terminal width diagnostics are drawn at.
pub fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}

/// The live dashboard of a run.
#[derive(clap::Args, Debug)]
pub struct LiveArgs {
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
    pub fn resolve(&self) -> Result<Option<Live>, OptionError> {
        let Some(addr) = &self.dashboard else { return Ok(None) };
        let bind = benchctl::dashboard::parse_bind(Some(addr)).map_err(|e| OptionError::new("--dashboard", e))?;
        let cooldown_s = super::dashboard::parse_cooldown(&self.alert_cooldown)?;
        Ok(Some(Live { bind, cooldown_s }))
    }
}

/// How a run takes part in a run over several processes or machines.
#[derive(clap::Args, Debug)]
pub struct DistributedArgs {
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
    pub fn resolve(self) -> Result<Distributed, OptionError> {
        let var = |k: &str| std::env::var(k).ok();
        let start_at = self
            .start_at
            .as_deref()
            .map(benchctl::shard::parse_rfc3339)
            .transpose()
            .map_err(|e| OptionError::new("--start-at", e))?;
        let mut run_id = self.run_id.or_else(|| var("BENCHCTL_RUN_ID")).filter(|s| !s.trim().is_empty());
        let role = if let Some(s) = &self.shard {
            let shard = benchctl::shard::Shard::parse(s).map_err(|e| OptionError::new(format!("--shard {s}"), e))?;
            Role::Shard { shard, source: "--shard".into() }
        } else if self.shard_from_env {
            let found = benchctl::shard::FromEnv::read(&var).map_err(|e| OptionError::new("--shard-from-env", e))?;
            run_id = run_id.or(found.run_id);
            Role::Shard { shard: found.shard, source: found.source }
        } else if self.fleet_member {
            let (node, source) = benchctl::shard::node_name(&var);
            run_id = run_id.or_else(|| var("SLURM_JOB_ID"));
            Role::Fleet { node, source }
        } else {
            Role::Alone
        };
        Ok(Distributed { role, start_at, run_id })
    }
}
