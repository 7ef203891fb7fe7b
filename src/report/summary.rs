//! The run's measurements as text for the terminal, printed when a run ends (before its
//! evaluation): the same table for every workload kind, then each kind's setup facts.

use crate::result::{ResultDoc, WorkloadDoc};

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>], indent: &str) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out += &format!("{indent}{}\n", cells.join("  ").trim_end());
    }
    out
}

/// A workload's setup facts (rows, then tables) and its declared per-request measures, the
/// same for every kind.
fn setup_lines(name: &str, w: &WorkloadDoc) -> String {
    let mut out = String::new();
    if let Some(f) = &w.facts {
        if let Some(s) = &f.synthetic {
            out += &format!("  {name} is synthetic: {s}\n");
        }
        if !f.rows.is_empty() {
            out += &format!("  {name}:\n");
            let rows: Vec<Vec<String>> = f.rows.iter().map(|r| vec![r.label.clone(), r.text.clone()]).collect();
            out += &table(&rows, "    ");
        }
        for t in f.tables.iter().filter(|t| !t.rows.is_empty()) {
            out += &format!("  {name}: {} ({})\n", t.title, t.note);
            let mut rows = vec![t.columns.clone()];
            rows.extend(t.rows.iter().cloned());
            out += &table(&rows, "    ");
        }
    }
    let declared: Vec<String> = w
        .metrics
        .iter()
        .filter(|(m, _)| crate::dsl::metrics::is_declared(&w.kind, m))
        .map(|(m, d)| {
            let v = |x: f64| super::format_value(x, &d.unit);
            format!(
                "{m} mean {}, p50 {}, p95 {}, min {} ({} samples)",
                v(d.summary.mean),
                v(d.summary.p50),
                v(d.summary.p95),
                v(d.summary.min),
                d.summary.count
            )
        })
        .collect();
    for line in declared {
        out += &format!("  {name}: {line}\n");
    }
    out
}

/// The run's measurements for the terminal: one row per workload over the measured phases,
/// each workload's setup, the breaking point, the spread between repeated runs and the
/// warnings. Columns that do not fit `width` are dropped, the least needed first.
pub fn measurements(doc: &ResultDoc, width: Option<usize>) -> String {
    // Columns as (header, cells); time columns share one unit, named in the header.
    let names: Vec<&String> = doc.benchmarks.keys().collect();
    let mut columns: Vec<(String, Vec<String>)> =
        vec![("workload".into(), names.iter().map(|n| n.to_string()).collect())];
    let ws: Vec<&WorkloadDoc> = doc.benchmarks.values().collect();
    columns.push(("requests".into(), ws.iter().map(|w| w.requests.to_string()).collect()));
    columns.push(("req/s".into(), ws.iter().map(|w| format!("{:.1}", w.throughput)).collect()));
    columns
        .push(("errors".into(), ws.iter().map(|w| format!("{} ({:.2}%)", w.errors, w.error_rate * 100.0)).collect()));
    let times = |header: &str, metric: &str, pick: fn(&crate::stats::DistSummary) -> f64| {
        let values: Vec<Option<f64>> = ws.iter().map(|w| w.metrics.get(metric).map(|m| pick(&m.summary))).collect();
        let max = values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let (unit, scale, digits) = if max >= 10.0 {
            ("s", 1.0, 2)
        } else if max >= 1e-3 || max == 0.0 {
            ("ms", 1e3, 2)
        } else {
            ("µs", 1e6, 0)
        };
        let cells = values.iter().map(|v| v.map_or("-".into(), |x| format!("{:.digits$}", x * scale))).collect();
        (format!("{header} ({unit})"), cells)
    };
    columns.push(times("p50", "latency", |s| s.p50));
    columns.push(times("p95", "latency", |s| s.p95));
    columns.push(times("p99", "latency", |s| s.p99));
    columns.push(times("ttft p95", "ttft", |s| s.p95));
    columns.push(("tok/s".into(), ws.iter().map(|w| w.tok_s.map_or("-".into(), |t| format!("{t:.0}"))).collect()));
    // Fit the terminal: the least needed columns go first (a wider terminal keeps them).
    let render = |cols: &[(String, Vec<String>)]| {
        let mut rows = vec![cols.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>()];
        for i in 0..names.len() {
            rows.push(cols.iter().map(|(_, c)| c[i].clone()).collect());
        }
        table(&rows, "  ")
    };
    let too_wide = |text: &str, w: usize| text.lines().any(|l| l.chars().count() > w);
    if let Some(w) = width {
        for drop in ["p50", "requests", "p99", "ttft p95"] {
            if !too_wide(&render(&columns), w) {
                break;
            }
            columns.retain(|(h, _)| !h.starts_with(&format!("{drop} (")) && h != drop);
        }
    }
    let measured: f64 =
        doc.phases.iter().filter(|p| p.role == crate::dsl::model::PhaseRole::Measure).map(|p| p.duration_s).sum();
    let mut out = format!(
        "{} {} in {:.1}s ({measured:.1}s in measured phases; the table covers those)\n",
        doc.scenario.name, doc.status, doc.duration_s
    );
    out += &render(&columns);
    for (name, w) in &doc.benchmarks {
        out += &setup_lines(name, w);
    }
    out += &server_lines(doc);
    if let Some(c) = &doc.capacity {
        out += &format!("  {}\n", c.text());
    }
    if doc.runs.len() > 1 {
        out += &format!("  between the {} runs (mean, coefficient of variation):\n", doc.runs.len());
        for (name, stats) in &doc.repeat_spread {
            let shown: Vec<String> = ["latency.p50", "latency.p95", "latency.p99", "ttft.p95", "throughput", "tok_s"]
                .iter()
                .filter_map(|k| stats.get(*k).map(|s| (k, s)))
                .map(|(k, s)| {
                    let mean =
                        if k.contains('.') { format!("{:.3}ms", s.mean * 1e3) } else { format!("{:.1}/s", s.mean) };
                    format!("{k} {mean} ±{:.1}%", s.cv * 100.0)
                })
                .collect();
            out += &format!("    {name}: {}\n", shown.join(", "));
        }
    }
    for w in &doc.warnings {
        out += &format!("  warning: {w}\n");
    }
    out
}

/// The server table for the terminal (nothing without a scraped server).
fn server_lines(doc: &ResultDoc) -> String {
    let Some((head, rows, notes)) = server_table(doc) else { return String::new() };
    let mut out: String = notes.iter().map(|n| format!("  {n}\n")).collect();
    let mut all = vec![head];
    all.extend(rows);
    out += &table(&all, "    ");
    out
}

/// The scraped servers beside their clients: the header, one row per measured phase and
/// server, and a line per server (what it is, or why it had no metrics).
pub type ServerTable = (Vec<String>, Vec<Vec<String>>, Vec<String>);

/// See [`ServerTable`].
pub fn server_table(doc: &ResultDoc) -> Option<ServerTable> {
    if doc.servers.is_empty() {
        return None;
    }
    let notes = (doc.servers.iter())
        .map(|s| match &s.unavailable {
            Some(why) => {
                format!("server of {} ({}): no metrics ({why}); the run goes on without them", s.workload, s.url)
            }
            None => format!(
                "server of {} ({}, {}): {} scrapes{}",
                s.workload,
                s.url,
                s.family.map_or("unrecognised names", |f| f.name()),
                s.scrapes,
                if s.failed_scrapes > 0 { format!(", {} failed", s.failed_scrapes) } else { String::new() }
            ),
        })
        .collect();
    let head = [
        "phase",
        "requests sent/served",
        "prompt tok sent/server",
        "output tok got/server",
        "running mean/max",
        "waiting max",
        "kv cache max",
        "ttft p50 client/server",
    ];
    let num = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.0}"));
    let int = |x: Option<u64>| x.map_or("-".into(), |v| v.to_string());
    let phases = doc.measured_phases().collect::<Vec<_>>();
    let mut rows = vec![];
    for c in crate::evaluate::server::checks(doc) {
        let ph: Vec<&crate::result::PhaseDoc> =
            phases.iter().copied().filter(|p| p.name == c.phase && p.repetition == c.repetition).collect();
        let parts = crate::evaluate::server::server_phases(doc, &ph);
        let gauge = |name: &str| parts.iter().find_map(|(_, p)| p.gauges.get(name).filter(|g| g.samples > 0));
        let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.1}ms", v * 1e3));
        rows.push(vec![
            if doc.runs.len() > 1 { format!("{} #{}", c.phase, c.repetition) } else { c.phase.clone() },
            format!("{}/{}", c.client_requests, num(c.server_requests)),
            format!("{}/{}", int(c.client_prompt_tokens), num(c.server_prompt_tokens)),
            format!("{}/{}", int(c.client_output_tokens), num(c.server_generation_tokens)),
            gauge("running").map_or("-".into(), |g| format!("{:.1}/{:.0}", g.mean, g.max)),
            gauge("waiting").map_or("-".into(), |g| format!("{:.0}", g.max)),
            gauge("kv_cache_usage").map_or("-".into(), |g| format!("{:.0}%", g.max * 100.0)),
            format!("{}/{}", ms(c.client_ttft_p50_s), ms(c.server_ttft_p50_s)),
        ]);
    }
    Some((head.iter().map(|h| h.to_string()).collect(), rows, notes))
}
