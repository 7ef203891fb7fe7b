//! The terminal summary (green, yellow, red when colour is on) and miette diagnostics that
//! point at each failed expectation in the scenario file, with the measured value.

use super::{scope, status_word};
use crate::dsl::diag::{Code, Diagnostic};
use crate::dsl::source::{Origin, SourceFile, SourceMap};
use crate::dsl::span::Span;
use crate::evaluate::{Evaluation, Grade, Status};

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Pass => "32",
        Status::Fail => "31",
        Status::Warn | Status::Insufficient => "33",
        Status::Skipped => "2",
    }
}

pub fn terminal(ev: &Evaluation, color: bool) -> String {
    let mut out = String::new();
    let grade_color = match ev.performance_grade {
        Grade::Excellent | Grade::Good | Grade::Ungraded => "32",
        Grade::Acceptable => "33",
        Grade::Poor => "31",
    };
    let verdict_color = match ev.verdict {
        "passed" => "32",
        "invalid" => "33",
        _ => "31",
    };
    out += &format!(
        "grade {} ({} of {} targets, {:.0}%), verdict {}\n",
        paint(ev.performance_grade.as_str(), grade_color, color),
        ev.targets_met,
        ev.total_targets,
        ev.score * 100.0,
        paint(ev.verdict, verdict_color, color)
    );
    for f in &ev.host_findings {
        let effect = if ev.host_quiet == crate::dsl::model::HostQuiet::Invalid {
            "makes the run invalid"
        } else {
            "the verdict stands"
        };
        out += &format!(
            "  {} {} ({}; host-quiet {}: {effect})\n",
            paint(
                if matches!(f.code, "foreign_traffic" | "token_disagreement") { "server:" } else { "host:" },
                "33",
                color
            ),
            f.message,
            f.code,
            ev.host_quiet
        );
    }
    let rows: Vec<[String; 4]> = ev
        .outcomes
        .iter()
        .map(|o| [status_word(o.status).to_string(), o.name.clone(), o.measured_text.clone(), scope(o)])
        .collect();
    let w: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for (o, r) in ev.outcomes.iter().zip(&rows) {
        let status = format!("{:<w0$}", r[0], w0 = w[0]);
        out += &format!(
            "  {}  {:<w1$}  {:<w2$}  {}\n",
            paint(&status, status_color(o.status), color),
            r[1],
            r[2],
            r[3],
            w1 = w[1],
            w2 = w[2]
        );
    }
    for r in &ev.invalid_reasons {
        out += &format!("  {} {r}\n", paint("invalid:", "33", color));
    }
    for r in &ev.recommendations {
        out += &format!("  recommendation: {r}\n");
    }
    out
}

/// Byte offset of a 1-based (line, column-in-characters) position.
fn offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let start = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    let rest = text.get(start..)?;
    Some(start + rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i))
}

/// Diagnostics for failed (and insufficient) expectations, labelled at the selector in the
/// scenario file with the measured value. Expectations whose file cannot be read are skipped.
pub fn failure_diagnostics(ev: &Evaluation) -> (Vec<Diagnostic>, SourceMap) {
    let mut sources = SourceMap::new();
    let mut files: std::collections::HashMap<String, crate::dsl::span::FileId> = Default::default();
    let mut diags = vec![];
    for o in ev.outcomes.iter().filter(|o| !matches!(o.status, Status::Pass | Status::Skipped)) {
        let Some(crate::plan::Origin { file, line, column: col }) = &o.origin else {
            continue;
        };
        let (file, line, col) = (file.as_str(), *line, *col);
        let id = match files.get(file) {
            Some(id) => *id,
            None => {
                let Ok(text) = std::fs::read_to_string(file) else {
                    continue;
                };
                let id = sources.add(SourceFile {
                    name: file.to_string(),
                    path: None,
                    text: text.into(),
                    origin: Origin::Root,
                });
                files.insert(file.to_string(), id);
                id
            }
        };
        let text = sources.get(id).text.clone();
        let Some(at) = offset(&text, line, col) else {
            continue;
        };
        let len = o.selector.len().min(text.len().saturating_sub(at));
        let label = format!("measured {}", o.measured_text);
        let d = match o.status {
            Status::Fail => Diagnostic::error(Code::ExpectationFailed, format!("expectation failed: {}", o.text)),
            Status::Insufficient => Diagnostic::warning(Code::InsufficientData, format!("not enough data: {}", o.text)),
            _ => {
                Diagnostic::warning(Code::ExpectationFailed, format!("expectation not met (severity warn): {}", o.text))
            }
        };
        diags.push(d.with_label(Span::new(id, at, len), label).with_help(o.message.clone()));
    }
    (diags, sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        let t = "ab\ncé x\nz";
        assert_eq!(offset(t, 1, 1), Some(0));
        assert_eq!(offset(t, 2, 3), Some(6));
        assert_eq!(offset(t, 3, 1), Some(9));
    }
}
