//! The plan as text for `benchctl plan`: a header, workloads, the timeline, probes and
//! expectations, aligned in columns.

use std::fmt::Write as _;

use super::Plan;
use crate::dsl::units::Duration;

fn table(out: &mut String, rows: &[Vec<String>], indent: &str) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = indent.to_string();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn span_text(start: Duration, latest: Option<Duration>) -> String {
    match latest {
        Some(l) if l == start => start.to_string(),
        Some(l) => format!("{start}..{l}"),
        None => format!("{start}+"),
    }
}

fn length_text(min: Duration, max: Option<Duration>) -> String {
    match max {
        Some(m) if m == min => m.to_string(),
        Some(m) => format!("<= {m}"),
        None => "until condition".into(),
    }
}

pub fn render_text(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {}", p.scenario);
    if let Some(d) = &p.description {
        let _ = writeln!(out, "  {d}");
    }
    let total = match p.max_duration {
        Some(m) if m == p.min_duration => format!("runs {m}"),
        Some(m) => format!("runs {}..{m}", p.min_duration),
        None => format!("runs at least {} (a phase ends on a condition)", p.min_duration),
    };
    let limit = p.run_limit.map(|l| format!(", run limit {l}")).unwrap_or_default();
    let repeat = if p.repeat > 1 { format!(", measured phases {} times", p.repeat) } else { String::new() };
    let setup = match (p.setup.is_empty(), p.setup_complete) {
        (true, _) => String::new(),
        (false, true) => format!(" after {} of setup", about(p.setup_s)),
        (false, false) => format!(" after at least {} of setup", about(p.setup_s)),
    };
    let _ = writeln!(out, "  seed {}, device {}, {total}{setup}{repeat}{limit}", p.seed, p.device);
    if !p.tags.is_empty() {
        let _ = writeln!(out, "  tags: {}", p.tags.join(", "));
    }
    parameters(&mut out, p);
    let _ = writeln!(out, "\nworkloads");
    let rows: Vec<Vec<String>> = p
        .workloads
        .iter()
        .map(|w| vec![w.name.clone(), w.kind.to_string(), w.device.clone(), w.summary.clone()])
        .collect();
    table(&mut out, &rows, "  ");
    if !p.setup.is_empty() {
        let _ = writeln!(out, "\nsetup (estimated, before the first phase)");
        let rows: Vec<Vec<String>> = p
            .setup
            .iter()
            .map(|s| vec![s.workload.clone(), s.what.clone(), s.seconds.map_or("?".into(), about), s.note.clone()])
            .collect();
        table(&mut out, &rows, "  ");
    }
    timeline(&mut out, p);
    if !p.probes.is_empty() {
        let _ = writeln!(out, "\nprobes");
        let rows: Vec<Vec<String>> = p
            .probes
            .iter()
            .map(|x| {
                vec![
                    x.kind.to_string(),
                    format!("every {}", x.every),
                    if x.implied { "(implied by an expectation)".into() } else { String::new() },
                ]
            })
            .collect();
        table(&mut out, &rows, "  ");
    }
    scrapes(&mut out, p);
    expectations(&mut out, p);
    if let Some(b) = &p.baseline {
        let _ =
            writeln!(out, "\nbaseline {} (tolerance {}%)", b.path, crate::dsl::units::trim_float(b.tolerance * 100.0));
        for (m, t) in &b.overrides {
            let _ = writeln!(out, "  {m}: tolerance {}%", crate::dsl::units::trim_float(t * 100.0));
        }
    }
    let o = &p.outputs;
    let outs: Vec<String> = [("json", &o.json), ("html", &o.html), ("junit", &o.junit), ("markdown", &o.markdown)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect();
    if !outs.is_empty() {
        let _ = writeln!(out, "\noutputs: {}", outs.join(", "));
    }
    out
}

/// The parameters, each with where its value was written.
fn parameters(out: &mut String, p: &Plan) {
    if !p.params.is_empty() {
        let _ = writeln!(out, "\nparameters");
        let rows: Vec<Vec<String>> = p
            .params
            .iter()
            .map(|x| vec![x.name.clone(), x.value.clone(), format!("({}:{})", x.origin.file, x.origin.line)])
            .collect();
        table(out, &rows, "  ");
    }
}

/// The expectations: each with its scope and flags.
fn expectations(out: &mut String, p: &Plan) {
    if !p.expectations.is_empty() {
        let _ = writeln!(out, "\nexpectations");
        let rows: Vec<Vec<String>> = p
            .expectations
            .iter()
            .map(|e| {
                let scope = match (&e.phase, e.window) {
                    (Some(ph), Some(w)) => format!("phase {ph}, every {w} window"),
                    (Some(ph), None) => format!("phase {ph}"),
                    (None, Some(w)) => format!("every {w} window"),
                    (None, None) => "whole run".into(),
                };
                let mut flags = vec![e.severity.to_string()];
                if e.weight != 1.0 {
                    flags.push(format!("weight {}", crate::dsl::units::trim_float(e.weight)));
                }
                if e.abort_on_fail {
                    flags.push("abort-on-fail".into());
                }
                if let Some(k) = e.spike_k {
                    flags.push(format!("k={}", crate::dsl::units::trim_float(k)));
                }
                vec![e.text.clone(), scope, flags.join(", ")]
            })
            .collect();
        table(out, &rows, "  ");
    }
}

fn timeline(out: &mut String, p: &Plan) {
    let _ = writeln!(out, "\ntimeline");
    let mut rows = vec![vec![
        "phase".to_string(),
        "role".into(),
        "start".into(),
        "length".into(),
        "drives".into(),
        "expected requests".into(),
    ]];
    for ph in &p.phases {
        let mut first = vec![
            ph.name.clone(),
            ph.role.to_string(),
            span_text(ph.start, ph.latest_start),
            length_text(ph.min_duration, ph.max_duration),
        ];
        let mut lines: Vec<(String, String)> = ph
            .drives
            .iter()
            .map(|d| {
                let n = match (d.expected_requests, d.requests) {
                    (Some(n), _) => format!("~{n}"),
                    (None, _) => "?".into(),
                };
                (format!("{}: {}", d.workload, d.summary), n)
            })
            .collect();
        if let Some(s) = &ph.search {
            // Two lines, so that the timeline's column stays readable.
            lines.push((s.summary.clone(), "-".into()));
            lines.push((format!("  SLOs {}", s.slos.join(" and ")), String::new()));
        }
        if let Some(pr) = &ph.pressure {
            lines.push((format!("pressure: {pr}"), String::new()));
        }
        if !ph.until.is_empty() {
            lines.push((format!("until {}", ph.until.join(" or ")), String::new()));
        }
        if lines.is_empty() {
            lines.push(("(nothing)".into(), String::new()));
        }
        for (i, (what, n)) in lines.into_iter().enumerate() {
            if i == 0 {
                first.push(what);
                first.push(n);
                rows.push(std::mem::take(&mut first));
            } else {
                rows.push(vec![String::new(), String::new(), String::new(), String::new(), what, n]);
            }
        }
    }
    table(out, &rows, "  ");
}

/// An estimate of seconds as people read it: `~0.4s`, `~12s`, `~4m10s`.
pub fn about(s: f64) -> String {
    if s < 1.0 {
        format!("~{s:.1}s")
    } else if s < 60.0 {
        format!("~{s:.0}s")
    } else {
        let s = s.round() as u64;
        format!("~{}m{:02}s", s / 60, s % 60)
    }
}

/// The model servers scraped during the run.
fn scrapes(out: &mut String, p: &Plan) {
    if p.scrapes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nserver metrics (the `server` subject)");
    let rows: Vec<Vec<String>> = (p.scrapes.iter())
        .map(|x| {
            vec![x.workload.clone(), x.url.clone(), format!("every {} and at each phase's start and end", x.every)]
        })
        .collect();
    table(out, &rows, "  ");
}
