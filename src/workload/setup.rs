//! Preparing a workload: the one context every kind's `prepare` receives, the places files
//! are looked up and cached, and the typed error a preparation fails with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dsl::model::DeviceKind;
use crate::dsl::source::SourceMap;
use crate::dsl::span::Span;

/// Whose problem a setup failure is: the user's to fix (a missing or malformed file, a
/// wrong option: exit 2), or the machine's (no GPU, out of memory: exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Input,
    Machine,
}

/// A workload could not be prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupError {
    pub cause: Cause,
    pub message: String,
    pub help: Option<String>,
    /// The scenario place the error is about (the model node, the index kind, the kernel
    /// source); the workload's name when `None`.
    pub at: Option<Span>,
    /// Messages located in a source (a kernel's compiler errors).
    pub notes: Vec<SourceNote>,
}

impl SetupError {
    pub fn input(message: impl Into<String>, help: impl Into<String>) -> SetupError {
        SetupError { cause: Cause::Input, message: message.into(), help: Some(help.into()), at: None, notes: vec![] }
    }
    pub fn runtime(message: impl Into<String>, help: Option<String>) -> SetupError {
        SetupError { cause: Cause::Machine, message: message.into(), help, at: None, notes: vec![] }
    }
    /// Points the error at `span` unless it already points somewhere.
    pub fn at(mut self, span: Span) -> SetupError {
        self.at.get_or_insert(span);
        self
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SetupError {}

/// Where a located setup message points: a span of the scenario, or a place in another
/// file (a `.cu` source).
#[derive(Debug, Clone, PartialEq)]
pub enum NoteAt {
    Span(Span),
    File { path: PathBuf, text: Arc<str>, offset: usize, len: usize },
}

/// A message located in a workload's source (a compiler error or warning).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceNote {
    pub at: NoteAt,
    pub error: bool,
    pub message: String,
}

/// The device a workload asked for: its own `device` node, else the scenario's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceRequest {
    pub kind: DeviceKind,
    /// `fallback="cpu"`: run on the CPU (or skip the workload) where the device cannot open.
    pub fallback_cpu: bool,
}

impl Default for DeviceRequest {
    fn default() -> Self {
        DeviceRequest { kind: DeviceKind::Cpu, fallback_cpu: false }
    }
}

/// Everything preparing one workload may use besides its own scenario node: the same for
/// every kind, built by the registry.
pub struct SetupContext<'a> {
    /// The workload's name in the scenario.
    pub workload: &'a str,
    pub device: DeviceRequest,
    /// The scenario's seed (0 without one).
    pub seed: u64,
    /// The folder relative paths are resolved against (the scenario's).
    pub base: &'a Path,
    /// The root of benchctl's caches (see [`cache_dir`]).
    pub cache: PathBuf,
    /// The scenario's sources, for messages located in inline text.
    pub sources: &'a SourceMap,
    /// A split run's shard: prompt and query files keep the items whose index mod N is
    /// this shard's (see [`crate::partition::Shard::partition`]).
    pub partition: Option<crate::partition::Shard>,
    progress: &'a mut dyn FnMut(String),
    warnings: Vec<(&'static str, String)>,
}

/// A backend's loaded workload as `Prepared::Ready`, or its error pointed at `at` (the
/// node the failure is about) unless the error already points somewhere.
pub fn ready<W: super::Workload + 'static>(
    loaded: Result<W, SetupError>,
    at: Option<Span>,
) -> Result<Prepared, SetupError> {
    match loaded {
        Ok(w) => Ok(Prepared::Ready(std::sync::Arc::new(w))),
        Err(e) => Err(match at {
            Some(span) => e.at(span),
            None => e,
        }),
    }
}

/// What preparing a workload gave.
pub enum Prepared {
    /// A workload ready to take requests.
    Ready(std::sync::Arc<dyn super::Workload>),
    /// A workload that does not run on this machine (a GPU workload with `fallback="cpu"`
    /// and no GPU): its drives do not run and expectations on it are skipped.
    Skipped { reason: String },
}

impl<'a> SetupContext<'a> {
    pub fn new(
        workload: &'a str,
        device: DeviceRequest,
        seed: u64,
        base: &'a Path,
        sources: &'a SourceMap,
        progress: &'a mut dyn FnMut(String),
    ) -> SetupContext<'a> {
        SetupContext {
            workload,
            device,
            seed,
            base,
            cache: cache_dir(),
            sources,
            partition: None,
            progress,
            warnings: vec![],
        }
    }

    /// Reports a step of the preparation (shown while it runs).
    pub fn progress(&mut self, message: String) {
        (self.progress)(message)
    }

    /// Records something the user should know about the preparation: a run warning with
    /// its code (`fallback`, `skipped`, `setup`).
    pub fn warn(&mut self, code: &'static str, message: impl Into<String>) {
        self.warnings.push((code, message.into()));
    }

    /// The warnings recorded so far, leaving none.
    pub fn take_warnings(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.warnings)
    }

    /// A path of the scenario, resolved as [`resolve`] does.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve(self.base, p)
    }
}

/// The folder for caches (GPU peaks, indexes): `BENCHCTL_CACHE`, else ~/.cache/benchctl.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BENCHCTL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/benchctl"))
}

/// The folder fetched models live in: `BENCHCTL_MODELS`, else ~/.cache/benchctl/models.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("BENCHCTL_MODELS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/benchctl/models"),
    }
}

/// A path of a scenario: `~/` is the home folder; a relative path is looked up beside the
/// scenario, then in the model folder (so a scenario can name a fetched model by its
/// relative path).
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        return PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(rest);
    }
    let p = Path::new(p);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let local = base.join(p);
    if local.exists() {
        return local;
    }
    let fetched = models_dir().join(p);
    if fetched.exists() {
        fetched
    } else {
        local
    }
}
