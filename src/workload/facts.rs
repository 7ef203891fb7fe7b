//! Facts about a workload's setup, in one flat shape every report renders the same way:
//! key values (with their units in the text), tables, the catalogue metrics the setup
//! measured, and metrics derived from the mean of a declared measure. Each kind fills them
//! in its own folder; no report or evaluation code knows a kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// Set when part of the workload is synthetic (random weights, generated vectors, a
    /// service whose latency the scenario sets): what that means for the figures, shown
    /// first in every report so that no one takes it for a real system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<String>,
    /// One line each: what the workload is and how it was prepared.
    pub rows: Vec<Row>,
    /// Tables measured during the setup (a batch-size sweep, an ef sweep).
    pub tables: Vec<Table>,
    /// Catalogue metrics the setup measured once for the whole run (`load_time`,
    /// `build_time`, `memory.weights`), in base units: expectations on them read these.
    pub values: BTreeMap<String, f64>,
    /// Catalogue metrics that follow from the mean of a declared per-request measure, per
    /// record (a phase or the whole run).
    pub per_mean: Vec<PerMean>,
    /// Pass/fail checks the setup ran (a kernel's correctness check): each is an
    /// expectation of its own, `WORKLOAD.NAME`, in the evaluation.
    pub checks: Vec<Check>,
}

/// A check the workload's setup ran, graded like an expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The selector's last part (`check`).
    pub name: String,
    /// What was checked, for the expectation's text.
    pub text: String,
    pub passed: bool,
    /// Why it passed or failed.
    pub message: String,
    pub measured: Option<f64>,
    pub measured_text: String,
}

/// A key value: `label: text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    /// How the table was measured (one line).
    pub note: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// `metric = numerator / mean(of)`, with `of` a declared distribution in base units: the
/// declared bytes of a launch over its mean device time is its bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerMean {
    pub metric: String,
    pub numerator: f64,
    pub of: String,
}

impl Facts {
    pub fn row(&mut self, label: &str, text: impl Into<String>) -> &mut Facts {
        self.rows.push(Row { label: label.to_string(), text: text.into() });
        self
    }

    pub fn value(&mut self, metric: &str, v: f64) -> &mut Facts {
        self.values.insert(metric.to_string(), v);
        self
    }

    pub fn per_mean(&mut self, metric: &str, numerator: f64, of: &str) -> &mut Facts {
        self.per_mean.push(PerMean { metric: metric.to_string(), numerator, of: of.to_string() });
        self
    }

    /// The value of a derived metric given the mean of what it is derived from.
    pub fn derived(&self, metric: &str, mean_of: impl Fn(&str) -> Option<f64>) -> Option<f64> {
        let d = self.per_mean.iter().find(|d| d.metric == metric)?;
        let mean = mean_of(&d.of).filter(|m| *m > 0.0)?;
        Some(d.numerator / mean)
    }
}
