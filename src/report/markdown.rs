//! A Markdown summary for a CI step summary or a pull-request comment.

use std::fmt::Write as _;

use crate::result::{Comparison, ResultDoc};

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

pub fn markdown(doc: &ResultDoc, ev: &Evaluation) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "## benchctl: {} — {} ({} of {} targets, {:.0}%)\n",
        cell(&doc.scenario.name),
        ev.performance_grade.as_str(),
        ev.targets_met,
        ev.total_targets,
        ev.score * 100.0
    );
    let _ = writeln!(
        m,
        "**Verdict: {}** · run {} in {:.1} s · {}\n",
        ev.verdict, doc.status, doc.duration_s, doc.timestamp
    );
    outcomes(&mut m, ev);
    workloads(&mut m, doc);
    setups(&mut m, doc);
    servers(&mut m, doc);
    if let Some(c) = doc.comparison.as_ref().filter(|c| !c.changes.is_empty()) {
        comparison(&mut m, c);
    }
    if let Some(c) = &doc.capacity {
        capacity(&mut m, c);
    }
    m
}

/// The capacity search's answer and its steps.
fn capacity(m: &mut String, c: &crate::engine::capacity::SearchOutcome) {
    let _ = writeln!(m, "\n### Capacity of {}\n\n{}.\n", code(&c.workload), c.answer());
    *m += "| load | verdict | settled after | samples | throughput | closest SLO |\n|---|---|---|---|---|---|\n";
    for s in &c.steps {
        let (closest, settled) = (s.closest_text(), s.settled_text());
        let _ = writeln!(
            m,
            "| {} | {} | {settled} | {} | {:.1}/s | {} |",
            s.load,
            s.verdict.as_str(),
            s.samples,
            s.throughput,
            cell(&closest)
        );
    }
}

/// The expectations' table, the reasons a run is invalid, host findings, recommendations.
fn outcomes(m: &mut String, ev: &Evaluation) {
    if !ev.outcomes.is_empty() {
        *m += "| | expectation | measured | status | scope |\n|---|---|---|---|---|\n";
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
        *m += "\n";
    }
    for r in &ev.invalid_reasons {
        let _ = writeln!(m, "> **Invalid run:** {}", cell(r));
    }
    for f in &ev.host_findings {
        let _ =
            writeln!(m, "> **Host finding** ({}, host-quiet {}): {}", code(f.code), ev.host_quiet, cell(&f.message));
    }
    if !ev.recommendations.is_empty() {
        *m += "\n### Recommendations\n\n";
        for r in &ev.recommendations {
            let _ = writeln!(m, "- {}", text(r));
        }
    }
}

/// One row per workload over the measured phases.
fn workloads(m: &mut String, doc: &ResultDoc) {
    if doc.benchmarks.is_empty() {
        return;
    }
    *m += "\n### Workloads (measured phases)\n\n| workload | requests | req/s | errors | p50 | p95 | p99 | tok/s |\n|---|---|---|---|---|---|---|---|\n";
    for (name, w) in &doc.benchmarks {
        let latency = w.metric("latency");
        let lat =
            |q: fn(&crate::stats::DistSummary) -> f64| latency.map_or("-".into(), |s| format!("{:.2} ms", q(s) * 1e3));
        let _ = writeln!(
            m,
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            cell(name),
            w.requests,
            w.throughput,
            w.errors,
            lat(|s| s.p50),
            lat(|s| s.p95),
            lat(|s| s.p99),
            w.tok_s.map_or("-".into(), |t| format!("{t:.0}"))
        );
    }
}

/// The scraped servers beside their clients (see `summary::server_table`).
fn servers(m: &mut String, doc: &ResultDoc) {
    let Some((head, rows, notes)) = super::summary::server_table(doc) else { return };
    *m += "\n### Server (its own metrics)\n\n";
    for n in notes {
        let _ = writeln!(m, "- {}", cell(&n));
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(m, "\n| {} |\n|{}", head.join(" | "), "---|".repeat(head.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        let _ = writeln!(m, "| {} |", cells.join(" | "));
    }
}

/// Each workload's setup: rows, then its tables.
fn setups(m: &mut String, doc: &ResultDoc) {
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
}

/// The comparison with the baseline, one row per metric.
fn comparison(m: &mut String, c: &Comparison) {
    let _ = writeln!(m, "\n### Compared with {}\n\n| workload | metric | baseline | new | change | 95% interval | verdict |\n|---|---|---|---|---|---|---|", code(&c.baseline));
    for ch in &c.changes {
        let pct = |x: f64| format!("{:+.1}%", x * 100.0);
        let unit = &ch.unit;
        let _ = writeln!(
            m,
            "| {} | {} | {:.3}{unit} | {:.3}{unit} | {} | {} .. {} | {} |",
            cell(&ch.workload),
            cell(&ch.metric),
            ch.base,
            ch.new,
            pct(ch.change),
            pct(ch.ci_low),
            pct(ch.ci_high),
            ch.verdict.words()
        );
    }
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
