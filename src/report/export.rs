//! The outputs of an evaluated result, behind one trait: each format renders the document
//! and its evaluation to bytes, and says where they go. The command line builds one list
//! from its output options and writes them in order; a new format is one implementor.

use std::path::{Path, PathBuf};

use crate::evaluate::{Evaluation, Written};
use crate::result::ResultDoc;

/// Why an output could not be rendered.
#[derive(Debug)]
pub enum ExportError {
    /// `--templates DIR` has no readable report.html.
    Template { path: PathBuf, why: std::io::Error },
    /// The HTML template failed to parse or render.
    Render(super::TemplateError),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Template { path, why } => write!(f, "cannot read `{}`: {why}", path.display()),
            ExportError::Render(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExportError {}

impl ExportError {
    /// How to fix it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            ExportError::Template { .. } => Some("--templates DIR must hold a report.html"),
            ExportError::Render(_) => None,
        }
    }
}

/// Where an output goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    File(&'a Path),
    /// Standard output, after every file is written (the terminal summary).
    Stdout,
}

/// One output format of an evaluated result.
pub trait Exporter {
    /// What the output is called in the lines that list them (`result`, `report`, ...).
    fn label(&self) -> &'static str;
    /// Where it goes.
    fn target(&self) -> Target<'_>;
    /// The output's bytes.
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError>;
    /// Whether this output holds the measurements themselves (a failed write goes to a
    /// fallback file, so that a run is never lost).
    fn holds_measurements(&self) -> bool {
        false
    }
}

/// The result document with its evaluation (`result.json`).
pub struct Json(pub PathBuf);

impl Exporter for Json {
    fn label(&self) -> &'static str {
        "result"
    }
    fn target(&self) -> Target<'_> {
        Target::File(&self.0)
    }
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError> {
        Ok(Written::new(doc, ev).to_vec_pretty())
    }
    fn holds_measurements(&self) -> bool {
        true
    }
}

/// JUnit XML, one test case per expectation.
pub struct Junit(pub PathBuf);

impl Exporter for Junit {
    fn label(&self) -> &'static str {
        "junit"
    }
    fn target(&self) -> Target<'_> {
        Target::File(&self.0)
    }
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError> {
        Ok(super::junit(doc, ev).into_bytes())
    }
}

/// A Markdown summary for a CI step summary or a pull-request comment.
pub struct Markdown(pub PathBuf);

impl Exporter for Markdown {
    fn label(&self) -> &'static str {
        "markdown"
    }
    fn target(&self) -> Target<'_> {
        Target::File(&self.0)
    }
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError> {
        Ok(super::markdown(doc, ev).into_bytes())
    }
}

/// The self-contained HTML report, from the built-in template or `templates/report.html`.
pub struct Html {
    pub path: PathBuf,
    /// A folder whose report.html replaces the built-in template.
    pub templates: Option<PathBuf>,
}

impl Exporter for Html {
    fn label(&self) -> &'static str {
        "report"
    }
    fn target(&self) -> Target<'_> {
        Target::File(&self.path)
    }
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError> {
        let template = match &self.templates {
            Some(dir) => {
                let path = dir.join("report.html");
                Some(std::fs::read_to_string(&path).map_err(|why| ExportError::Template { path, why })?)
            }
            None => None,
        };
        super::html(doc, ev, template.as_deref()).map(String::into_bytes).map_err(ExportError::Render)
    }
}

/// The verdict for the terminal: grade, each expectation, host findings, recommendations,
/// and the comparison with the baseline when there is one.
pub struct Terminal {
    /// ANSI colours.
    pub color: bool,
}

impl Exporter for Terminal {
    fn label(&self) -> &'static str {
        "summary"
    }
    fn target(&self) -> Target<'_> {
        Target::Stdout
    }
    fn render(&self, doc: &ResultDoc, ev: &Evaluation) -> Result<Vec<u8>, ExportError> {
        let mut text = super::terminal(ev, self.color);
        if let Some(c) = &doc.comparison {
            text += &crate::compare::table(c);
        }
        Ok(text.into_bytes())
    }
}

/// Where the outputs of an evaluated result go (`None`: not written).
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// A folder whose report.html replaces the built-in template.
    pub templates: Option<PathBuf>,
}

impl Outputs {
    /// The exporters, in the order they are written and listed: the result first, the
    /// terminal summary (`terminal`: with colours or not) last.
    pub fn exporters(&self, terminal: Option<bool>) -> Vec<Box<dyn Exporter>> {
        let mut out: Vec<Box<dyn Exporter>> = vec![];
        if let Some(p) = &self.json {
            out.push(Box::new(Json(p.clone())));
        }
        if let Some(p) = &self.html {
            out.push(Box::new(Html { path: p.clone(), templates: self.templates.clone() }));
        }
        if let Some(p) = &self.junit {
            out.push(Box::new(Junit(p.clone())));
        }
        if let Some(p) = &self.markdown {
            out.push(Box::new(Markdown(p.clone())));
        }
        if let Some(color) = terminal {
            out.push(Box::new(Terminal { color }));
        }
        out
    }

    /// Every file an output goes to.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.json, &self.junit, &self.markdown, &self.html].into_iter().flatten()
    }
}
