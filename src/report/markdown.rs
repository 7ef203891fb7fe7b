//! A Markdown summary for a CI step summary or a pull-request comment.

use std::fmt::Write as _;

use serde_json::Value;

use super::{scope, status_word};
use crate::evaluate::{Evaluation, Status};

fn icon(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Warn => "⚠️",
        Status::Insufficient => "❔",
        Status::Skipped => "⏭️",
    }
}

/// Text from the scenario or the run in running Markdown: raw HTML is shown as text, not
/// passed through (`<`, `>` and `&` as entities), and `[` cannot start a link.
pub(crate) fn text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('[', "\\[").replace('\n', " ")
}

/// A table cell: [`text`], and no pipes.
pub(crate) fn cell(s: &str) -> String {
    text(s).replace('|', "\\|")
}

/// A code span: shown literally, so only a backtick could end it early; the span is widened
/// with double backticks when the text holds one.
fn code(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.contains('`') {
        format!("`` {} ``", s.replace("``", "` `"))
    } else {
        format!("`{s}`")
    }
}

pub fn markdown(doc: &Value, ev: &Evaluation) -> String {
    let name = doc.pointer("/scenario/name").and_then(Value::as_str).unwrap_or("scenario");
    let mut m = String::new();
    let _ = writeln!(
        m,
        "## benchctl: {} — {} ({} of {} targets, {:.0}%)\n",
        cell(name),
        ev.performance_grade.as_str(),
        ev.targets_met,
        ev.total_targets,
        ev.score * 100.0
    );
    let _ = writeln!(
        m,
        "**Verdict: {}** · run {} in {:.1} s · {}\n",
        ev.verdict,
        doc["status"].as_str().unwrap_or("?"),
        doc["duration_s"].as_f64().unwrap_or(0.0),
        doc["timestamp"].as_str().unwrap_or("")
    );
    if !ev.outcomes.is_empty() {
        m += "| | expectation | measured | status | scope |\n|---|---|---|---|---|\n";
        for o in &ev.outcomes {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                icon(o.status),
                cell(&o.name),
                cell(&o.measured_text),
                status_word(o.status),
                cell(&scope(o))
            );
        }
        m += "\n";
    }
    for r in &ev.invalid_reasons {
        let _ = writeln!(m, "> **Invalid run:** {}", cell(r));
    }
    for f in &ev.host_findings {
        let _ =
            writeln!(m, "> **Host finding** ({}, host-quiet {}): {}", code(f.code), ev.host_quiet, cell(&f.message));
    }
    if !ev.recommendations.is_empty() {
        m += "\n### Recommendations\n\n";
        for r in &ev.recommendations {
            let _ = writeln!(m, "- {}", text(r));
        }
    }
    if let Some(b) = doc["benchmarks"].as_object().filter(|b| !b.is_empty()) {
        m += "\n### Workloads (measured phases)\n\n| workload | requests | req/s | errors | p50 | p95 | p99 | tok/s |\n|---|---|---|---|---|---|---|---|\n";
        for (name, w) in b {
            let lat = |q: &str| {
                w.pointer(&format!("/metrics/latency/{q}"))
                    .and_then(Value::as_f64)
                    .map_or("-".into(), |v| format!("{:.2} ms", v * 1e3))
            };
            let _ = writeln!(
                m,
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} |",
                cell(name),
                w["requests"],
                w["throughput"].as_f64().unwrap_or(0.0),
                w["errors"],
                lat("p50"),
                lat("p95"),
                lat("p99"),
                w["tok_s"].as_f64().map_or("-".into(), |t| format!("{t:.0}"))
            );
        }
    }
    for setup in super::setup::setups(doc) {
        let _ = writeln!(m, "\n### Setup of {}\n", code(&setup.workload));
        for r in &setup.rows {
            let _ = writeln!(m, "- {}: {}", cell(&r.key), cell(&r.value));
        }
        for t in &setup.tables {
            let _ = writeln!(m, "\n{} ({}):\n", cell(&t.title), cell(&t.note));
            let cells = |row: &[String]| row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ");
            let _ = writeln!(m, "| {} |\n|{}", cells(&t.columns), "---|".repeat(t.columns.len()));
            for row in &t.rows {
                let _ = writeln!(m, "| {} |", cells(row));
            }
        }
    }
    if let Some(changes) = doc.pointer("/comparison/changes").and_then(Value::as_array).filter(|c| !c.is_empty()) {
        let _ = writeln!(m, "\n### Compared with {}\n\n| workload | metric | baseline | new | change | 95% interval | verdict |\n|---|---|---|---|---|---|---|", code(doc.pointer("/comparison/baseline").and_then(Value::as_str).unwrap_or("")));
        for c in changes {
            let pct = |k: &str| format!("{:+.1}%", c[k].as_f64().unwrap_or(0.0) * 100.0);
            let unit = c["unit"].as_str().unwrap_or("");
            let _ = writeln!(
                m,
                "| {} | {} | {:.3}{unit} | {:.3}{unit} | {} | {} .. {} | {} |",
                cell(c["workload"].as_str().unwrap_or("")),
                cell(c["metric"].as_str().unwrap_or("")),
                c["base"].as_f64().unwrap_or(0.0),
                c["new"].as_f64().unwrap_or(0.0),
                pct("change"),
                pct("ci_low"),
                pct("ci_high"),
                c["verdict"].as_str().unwrap_or("").replace('_', " ")
            );
        }
    }
    if let Some(st) = doc["stress_test"].as_object() {
        let max = st
            .get("max_sustainable_load")
            .and_then(Value::as_f64)
            .map_or("none stable".into(), |r| format!("{r:.1} requests/s"));
        let _ = writeln!(
            m,
            "\nBreaking point of {}: max sustainable load {max}.",
            code(st.get("workload").and_then(Value::as_str).unwrap_or("?"))
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_strings_cannot_inject_html_or_links() {
        let hostile = "<img src=x onerror=alert(1)> [x](javascript:alert(1)) a|b\nc";
        let c = cell(hostile);
        assert!(!c.contains('<') && !c.contains('>'), "{c}");
        assert!(c.contains("&lt;img") && c.contains("\\[x]") && c.contains("a\\|b c"), "{c}");
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(text("a & b"), "a &amp; b");
    }
}
