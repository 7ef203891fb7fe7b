//! The measurement data, a leaf of the stage order: what a run records (histograms per
//! metric, counters, 1-second windows) and the statistics read from it. The engine writes
//! it; the result document, the evaluation, merge and the dashboard read it. It depends on
//! the metric catalogue and the statistics only.

pub mod evidence;
pub mod record;
pub mod statistic;

pub use record::Slo;
