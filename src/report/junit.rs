//! JUnit XML: one test suite per scenario, one test case per expectation. A failed
//! expectation is a `<failure>` with measured vs bound; too few samples is an `<error>`;
//! a warning passes with the note in `<system-out>`.

use std::fmt::Write as _;

use crate::result::{ResultDoc, Verdict};

use crate::evaluate::{Evaluation, Status};

/// XML text with the five predefined entities escaped and control characters dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn junit(doc: &ResultDoc, ev: &Evaluation) -> String {
    let scenario = doc.scenario.name.as_str();
    let count = |s: Status| ev.outcomes.iter().filter(|o| o.status == s).count();
    let (tests, failures, errors) = (ev.outcomes.len(), count(Status::Fail), count(Status::Insufficient));
    let skipped = count(Status::Skipped);
    let time = doc.duration_s;
    let stamp = doc.timestamp.as_str();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"benchctl\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">");
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\" timestamp=\"{}\">",
        escape(scenario),
        escape(stamp)
    );
    x += "    <properties>\n";
    for (k, v) in [
        ("performance_grade", ev.performance_grade.as_str().to_string()),
        ("score", format!("{:.3}", ev.score)),
        ("verdict", ev.verdict.to_string()),
        ("status", doc.status.to_string()),
        (
            "host_findings",
            ev.host_findings.iter().map(|f| format!("{} in {}", f.code, f.phase)).collect::<Vec<_>>().join(", "),
        ),
    ] {
        let _ = writeln!(x, "      <property name=\"{k}\" value=\"{}\"/>", escape(&v));
    }
    x += "    </properties>\n";
    for o in &ev.outcomes {
        let class = format!("benchctl.{}.{}", scenario, o.selector.split('.').next().unwrap_or(""));
        let _ = write!(x, "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"", escape(&o.name), escape(&class));
        match o.status {
            Status::Pass => x += "/>\n",
            Status::Fail => {
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"expectation\">{}: {}</failure>\n    </testcase>",
                    escape(&o.message),
                    escape(&o.text),
                    escape(&o.message)
                );
            }
            Status::Insufficient => {
                let _ = writeln!(
                    x,
                    ">\n      <error message=\"{}\" type=\"insufficient-data\">{}</error>\n    </testcase>",
                    escape(&o.message),
                    escape(&o.text)
                );
            }
            Status::Warn => {
                let _ =
                    writeln!(x, ">\n      <system-out>warning: {}</system-out>\n    </testcase>", escape(&o.message));
            }
            Status::Skipped => {
                let _ = writeln!(x, ">\n      <skipped message=\"{}\"/>\n    </testcase>", escape(&o.message));
            }
        }
    }
    x += "  </testsuite>\n";
    x += &comparison_suite(doc);
    x += "</testsuites>\n";
    x
}

/// A second suite when the run was compared with a baseline: one case per metric, failing
/// when it regressed.
fn comparison_suite(doc: &ResultDoc) -> String {
    let Some(comparison) = &doc.comparison else { return String::new() };
    let changes = &comparison.changes;
    let regressed = changes.iter().filter(|c| c.verdict == Verdict::Regressed).count();
    let base = comparison.baseline.as_str();
    let mut x = format!("  <testsuite name=\"baseline {}\" tests=\"{}\" failures=\"{regressed}\" errors=\"0\" skipped=\"0\" time=\"0\">\n", escape(base), changes.len());
    for c in changes {
        let name = format!("{}.{}", c.workload, c.metric);
        let _ = write!(x, "    <testcase name=\"{}\" classname=\"benchctl.baseline\" time=\"0\"", escape(&name));
        if c.verdict == Verdict::Regressed {
            let msg = format!(
                "{:+.1}% (95% interval {:+.1}% .. {:+.1}%), tolerance {:.1}%",
                c.change * 100.0,
                c.ci_low * 100.0,
                c.ci_high * 100.0,
                c.tolerance * 100.0
            );
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{}\" type=\"regression\">{}</failure>\n    </testcase>",
                escape(&msg),
                escape(&msg)
            );
        } else {
            x += "/>\n";
        }
    }
    x += "  </testsuite>\n";
    x
}
