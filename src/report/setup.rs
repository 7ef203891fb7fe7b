//! The setup section of every report: a workload's facts (rows and tables) and its declared
//! per-request measures, read from the result document the same way for every kind.

use serde::Serialize;

use crate::dsl::metrics::is_declared;
use crate::dsl::units::{trim_float, Duration};
use crate::result::{ResultDoc, WorkloadDoc};

/// A value of a metric summary in its reported unit (`s`, `fraction`, `tok/s`, ...).
pub fn format_value(x: f64, unit: &str) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    match unit {
        "s" => Duration::from_secs_f64(x.max(0.0)).to_string(),
        "fraction" => format!("{x:.4}"),
        u => format!("{} {u}", trim_float((x * 1e3).round() / 1e3)),
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct RowView {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct TableView {
    pub title: String,
    pub note: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One workload's setup section.
#[derive(Debug, Serialize, PartialEq)]
pub struct SetupView {
    pub workload: String,
    pub rows: Vec<RowView>,
    pub tables: Vec<TableView>,
}

/// The statistics shown for each declared per-request measure.
const MEASURE_COLUMNS: [&str; 6] = ["measure", "mean", "p50", "p95", "min", "samples"];

/// The declared per-request measures of a workload record, as table rows.
pub fn measure_rows(w: &WorkloadDoc) -> Vec<Vec<String>> {
    w.metrics
        .iter()
        .filter(|(name, _)| is_declared(&w.kind, name))
        .map(|(name, m)| {
            let v = |x: f64| format_value(x, &m.unit);
            let s = &m.summary;
            vec![name.clone(), v(s.mean), v(s.p50), v(s.p95), v(s.min), s.count.to_string()]
        })
        .collect()
}

/// Every workload's setup section, in the result's order; workloads with nothing to show
/// are left out.
pub fn setups(doc: &ResultDoc) -> Vec<SetupView> {
    doc.benchmarks
        .iter()
        .map(|(name, w)| {
            let f = w.facts();
            let synthetic = f.synthetic.map(|s| RowView { key: "synthetic".into(), value: s });
            let rows = synthetic
                .into_iter()
                .chain(f.rows.into_iter().map(|r| RowView { key: r.label, value: r.text }))
                .collect();
            let mut tables: Vec<TableView> = f
                .tables
                .into_iter()
                .filter(|t| !t.rows.is_empty())
                .map(|t| TableView { title: t.title, note: t.note, columns: t.columns, rows: t.rows })
                .collect();
            let measures = measure_rows(w);
            if !measures.is_empty() {
                tables.push(TableView {
                    title: "per-request measures".into(),
                    note: "declared by the workload, over the measured phases".into(),
                    columns: MEASURE_COLUMNS.map(String::from).to_vec(),
                    rows: measures,
                });
            }
            SetupView { workload: name.clone(), rows, tables }
        })
        .filter(|s| !s.rows.is_empty() || !s.tables.is_empty())
        .collect()
}
