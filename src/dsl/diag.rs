//! Diagnostics for every DSL stage: one error or lint, labelled at spans of the source, with
//! a help line. Rendering (miette graphics or JSON) happens once, at the boundary.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

use super::source::{Origin, SourceMap};
use super::span::{FileId, Span};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Stable identifiers of every diagnostic kind, shown as `benchctl::<code>`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($(#[$doc])* $variant,)* }
        impl Code {
            /// Every code, in declaration order (used by docs and tests).
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }
        }
    };
}

codes! {
    /// The file could not be read.
    Io = "io-error",
    /// The file exceeds [`super::source::MAX_FILE_BYTES`].
    FileTooLarge = "file-too-large",
    /// The file contains NUL bytes.
    BinaryFile = "binary-file",
    /// The path is a folder, FIFO, device or socket.
    NotAFile = "not-a-file",
    /// Nesting, comment nesting or a string beyond what the parser may safely take.
    TooComplex = "too-complex",
    /// The file is not UTF-8.
    InvalidUtf8 = "invalid-utf8",
    /// The file holds no nodes.
    EmptyFile = "empty-file",
    /// The kdl crate could not parse the text.
    Syntax = "kdl-syntax",
    MissingScenario = "missing-scenario",
    DuplicateScenario = "duplicate-scenario",
    UnknownNode = "unknown-node",
    UnknownProperty = "unknown-property",
    DuplicateProperty = "duplicate-property",
    UnexpectedArgument = "unexpected-argument",
    MissingArgument = "missing-argument",
    MissingProperty = "missing-property",
    WrongType = "wrong-type",
    InvalidDuration = "invalid-duration",
    InvalidRate = "invalid-rate",
    InvalidSize = "invalid-size",
    InvalidPercent = "invalid-percent",
    InvalidRange = "invalid-range",
    InvalidNumber = "invalid-number",
    /// A name (parameter, ...) with characters that selectors cannot carry.
    InvalidName = "invalid-name",
    OutOfRange = "out-of-range",
    UnknownValue = "unknown-value",
    UnexpectedType = "unexpected-type-annotation",
    DuplicateName = "duplicate-name",
    UnknownWorkload = "unknown-workload",
    UnknownMetric = "unknown-metric",
    UnknownAggregation = "unknown-aggregation",
    UnknownPhase = "unknown-phase",
    UnknownParameter = "unknown-parameter",
    InvalidSet = "invalid-set",
    ImportNotFound = "import-not-found",
    ImportCycle = "import-cycle",
    ConflictingOptions = "conflicting-options",
    MissingOption = "missing-option",
    InvalidCondition = "invalid-condition",
    InvalidComparison = "invalid-comparison",
    UnitMismatch = "unit-mismatch",
    PhaseWithoutEnd = "phase-without-end",
    NoPhases = "no-phases",
    /// Lint: the expectation can never be met.
    NeverPasses = "never-passes",
    /// Lint: the expectation can never fail.
    NeverFails = "never-fails",
    /// Lint: part of a spike-rate range lies above the Cantelli bound.
    SpikeRateUnreachable = "spike-rate-unreachable",
    /// Lint: a higher percentile has a tighter bound than a lower one.
    InconsistentPercentiles = "inconsistent-percentiles",
    UnusedWorkload = "unused-workload",
    IdlePhase = "idle-phase",
    ProbeIntervalTooShort = "probe-interval-too-short",
    RunLimitExceeded = "run-limit-exceeded",
    /// Lint: a percentile bound's phases cannot collect the samples a pass needs.
    TooFewSamples = "too-few-samples",
    UnusedParameter = "unused-parameter",
    /// Lint: an ef the sweep repeats, or requests at an ef the sweep does not list.
    EfSweep = "ef-sweep",
    /// Lint: two CPU-bound workloads share a measured phase on too few cores.
    CpuContention = "cpu-contention",
    /// Run setup: a workload's model, data or device could not be prepared.
    SetupFailed = "setup-failed",
    /// Run evaluation: an expectation did not hold (shown at its line in the scenario).
    ExpectationFailed = "expectation-failed",
    /// Run evaluation: too few samples for a percentile bound.
    InsufficientData = "insufficient-data",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "benchctl::{}", self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A span with the text shown under it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One problem found in a scenario. The first label is the primary one; labels may lie in
/// different files (e.g. a duplicate name defined in an import).
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// The file a label-less diagnostic is about (unreadable or empty files).
    pub file: Option<FileId>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, code, message: message.into(), labels: vec![], help: None, file: None }
    }

    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Self::error(code, message) }
    }

    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label { span, text: text.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn in_file(mut self, file: FileId) -> Self {
        self.file = Some(file);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The file this diagnostic is about, when it has one.
    pub fn primary_file(&self) -> Option<FileId> {
        self.labels.first().map(|l| l.span.file).or(self.file)
    }
}

/// The diagnostics of one command, with the sources they point into.
#[derive(Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// miette's view of one [`Diagnostic`]: the source is attached here, once.
#[derive(Debug)]
struct Rendered {
    message: String,
    code: Option<String>,
    severity: miette::Severity,
    help: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Rendered>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

fn named_source(sources: &SourceMap, file: FileId) -> NamedSource<Arc<str>> {
    let f = sources.get(file);
    NamedSource::new(f.name.clone(), f.text.clone())
}

fn advice(sources: &SourceMap, file: FileId, message: String, labels: Vec<LabeledSpan>) -> Rendered {
    Rendered {
        message,
        code: None,
        severity: miette::Severity::Advice,
        help: None,
        source: Some(named_source(sources, file)),
        labels,
        related: vec![],
    }
}

fn to_rendered(d: &Diagnostic, sources: &SourceMap) -> Rendered {
    let primary = d.primary_file();
    let mut labels = vec![];
    let mut related = vec![];
    for (i, l) in d.labels.iter().enumerate() {
        let text = (!l.text.is_empty()).then(|| l.text.clone());
        let ls = if i == 0 {
            LabeledSpan::new_primary_with_span(text, (l.span.start, l.span.len))
        } else {
            LabeledSpan::new_with_span(text, (l.span.start, l.span.len))
        };
        if Some(l.span.file) == primary {
            labels.push(ls);
        } else {
            let name = &sources.get(l.span.file).name;
            related.push(advice(sources, l.span.file, format!("see also `{name}`"), vec![ls]));
        }
    }
    // Walk the import chain so an error inside a module says which `use` brought it in.
    let mut file = primary;
    while let Some(f) = file {
        match sources.get(f).origin {
            Origin::Import { by } => {
                let msg = format!("`{}` was imported here", sources.get(f).name);
                let ls = LabeledSpan::new_with_span(Some("imported by this `use`".into()), (by.start, by.len));
                related.push(advice(sources, by.file, msg, vec![ls]));
                file = Some(by.file);
            }
            _ => file = None,
        }
    }
    let has_text = primary.map(|f| !sources.get(f).text.is_empty()).unwrap_or(false);
    // A label on a very long line (minified or generated text) would print the whole line:
    // give the position in the message instead of a snippet.
    let long_line = d.labels.iter().any(|l| line_len(&sources.get(l.span.file).text, l.span.start) > MAX_SNIPPET_LINE);
    if long_line {
        let l = &d.labels[0];
        let (line, col) = sources.line_col(l.span.file, l.span.start);
        let mut message = format!("{} (at {}:{line}:{col}: {})", d.message, sources.get(l.span.file).name, l.text);
        if message.len() > 400 {
            let mut cut = 400;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        return Rendered {
            message,
            code: Some(d.code.to_string()),
            severity: severity(d.severity),
            help: d.help.clone(),
            source: None,
            labels: vec![],
            related: vec![],
        };
    }
    Rendered {
        message: d.message.clone(),
        code: Some(d.code.to_string()),
        severity: severity(d.severity),
        help: d.help.clone(),
        source: primary.filter(|_| has_text && !d.labels.is_empty()).map(|f| named_source(sources, f)),
        labels,
        related,
    }
}

/// Lines longer than this are not quoted in diagnostics.
const MAX_SNIPPET_LINE: usize = 300;

fn line_len(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..].find('\n').map(|i| offset + i).unwrap_or(text.len());
    end - start
}

fn severity(s: Severity) -> miette::Severity {
    match s {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    }
}

/// Renders diagnostics as miette graphics. `color` false gives plain Unicode text; `width`
/// wraps the text (tests fix it so snapshots do not depend on the terminal).
pub fn render(diags: &[Diagnostic], sources: &SourceMap, color: bool, width: usize) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width).with_context_lines(1);
    let mut out = String::new();
    for d in diags {
        let r = to_rendered(d, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    out
}

/// The JSON form of one diagnostic, for editors and CI (`--format json`).
#[derive(Serialize, Debug)]
pub struct JsonDiagnostic {
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub span: Option<JsonSpan>,
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    pub labels: Vec<JsonLabel>,
}

#[derive(Serialize, Debug)]
pub struct JsonSpan {
    pub offset: usize,
    pub length: usize,
}

#[derive(Serialize, Debug)]
pub struct JsonLabel {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub span: JsonSpan,
    pub text: String,
}

pub fn to_json(d: &Diagnostic, sources: &SourceMap) -> JsonDiagnostic {
    let first = d.labels.first();
    let file = d.primary_file().map(|f| sources.get(f).name.clone());
    let (line, column) = match first {
        Some(l) => {
            let (a, b) = sources.line_col(l.span.file, l.span.start);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    JsonDiagnostic {
        file,
        line,
        column,
        span: first.map(|l| JsonSpan { offset: l.span.start, length: l.span.len }),
        severity: d.severity,
        code: d.code.to_string(),
        message: d.message.clone(),
        help: d.help.clone(),
        labels: d
            .labels
            .iter()
            .map(|l| {
                let (line, column) = sources.line_col(l.span.file, l.span.start);
                JsonLabel {
                    file: sources.get(l.span.file).name.clone(),
                    line,
                    column,
                    span: JsonSpan { offset: l.span.start, length: l.span.len },
                    text: l.text.clone(),
                }
            })
            .collect(),
    }
}
