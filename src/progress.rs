//! Progress reporters for `benchctl run`: a live bar on a terminal (indicatif), plain lines
//! otherwise (CI logs), nothing with `--quiet`. They only consume engine events.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::events::{Reporter, RunEvent};
use crate::engine::record::WindowSummary;

/// Reports nothing (`--quiet`).
pub struct Quiet;

impl Reporter for Quiet {
    fn event(&mut self, _: &RunEvent) {}
}

fn window_text(workload: &str, s: &WindowSummary) -> String {
    let p95 = s.metrics.get("latency").map(|m| format!(" p95 {:.2}ms", m.p95 * 1e3)).unwrap_or_default();
    let tok = if s.tok_s > 0.0 { format!(" {:.0} tok/s", s.tok_s) } else { String::new() };
    let err = if s.errors > 0 { format!(" errors {}", s.errors) } else { String::new() };
    let dropped = if s.dropped > 0 { format!(" dropped {}", s.dropped) } else { String::new() };
    format!("{workload}: {:.0} req/s{tok}{p95}{err}{dropped}", s.throughput)
}

fn search_text(workload: &str, rate: f64, stable: bool) -> String {
    format!("  search {workload}: {rate:.1}/s {}", if stable { "stable" } else { "unstable" })
}

fn finished_text(name: &str, stopped_by: &str, duration_s: f64) -> String {
    format!("  {name} ended after {duration_s:.1}s: {}", why_ended(stopped_by))
}

/// A phase's `stopped_by` (the result's code) in words.
pub fn why_ended(stopped_by: &str) -> String {
    match stopped_by {
        "duration" => "its duration ran out".into(),
        "requests" => "every drive sent its requests".into(),
        "load shape ended" => "its load shapes ended".into(),
        "interrupted" => "interrupted".into(),
        "search finished" => "the search found its breaking point".into(),
        "search time limit" => "the search ran out of time".into(),
        "skipped" => "skipped (its workload does not run on this machine)".into(),
        other => match (other.strip_prefix("condition: "), other.strip_prefix("aborted: ")) {
            (Some(c), _) => format!("its stop condition `{c}` held"),
            (_, Some(a)) => format!("aborted: `{a}` failed (abort-on-fail)"),
            _ => other.to_string(),
        },
    }
}

/// One line per phase event and a window line every few seconds, on standard error.
pub struct Plain {
    every: Duration,
    last: Option<Instant>,
}

impl Plain {
    pub fn new() -> Plain {
        Plain { every: Duration::from_secs(5), last: None }
    }
}

impl Default for Plain {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for Plain {
    fn event(&mut self, e: &RunEvent) {
        let line = match e {
            RunEvent::PhaseStarted { index, count, name, role, planned_s } => {
                let planned = planned_s.map(|s| format!(", {s}s")).unwrap_or_default();
                format!("phase {}/{count} {name} ({role}{planned})", index + 1)
            }
            RunEvent::Window { workload, elapsed_s, summary, .. } => {
                if self.last.is_some_and(|l| l.elapsed() < self.every) {
                    return;
                }
                self.last = Some(Instant::now());
                format!("  [{elapsed_s:>6.1}s] {}", window_text(workload, summary))
            }
            RunEvent::SearchLevel { workload, rate, stable } => search_text(workload, *rate, *stable),
            RunEvent::PhaseFinished { name, stopped_by, duration_s } => finished_text(name, stopped_by, *duration_s),
            RunEvent::Warning(w) => format!("warning: {w}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// A live bar per phase on a terminal.
pub struct Bar {
    bar: Option<ProgressBar>,
    phase_start: Instant,
}

impl Bar {
    pub fn new() -> Bar {
        Bar { bar: None, phase_start: Instant::now() }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Reporter for Bar {
    fn event(&mut self, e: &RunEvent) {
        match e {
            RunEvent::PhaseStarted { index, count, name, planned_s, .. } => {
                self.phase_start = Instant::now();
                let bar = match planned_s {
                    Some(s) => ProgressBar::new(s.ceil() as u64),
                    None => ProgressBar::new_spinner(),
                };
                let template = if planned_s.is_some() {
                    "{prefix} [{elapsed_precise}] {bar:24} {pos}/{len}s {msg}"
                } else {
                    "{prefix} [{elapsed_precise}] {spinner} {msg}"
                };
                bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
                bar.set_prefix(format!("{}/{count} {name}", index + 1));
                bar.enable_steady_tick(Duration::from_millis(200));
                self.bar = Some(bar);
            }
            RunEvent::Window { workload, summary, .. } => {
                if let Some(b) = &self.bar {
                    b.set_position(self.phase_start.elapsed().as_secs());
                    b.set_message(window_text(workload, summary));
                }
            }
            RunEvent::SearchLevel { workload, rate, stable } => {
                if let Some(b) = &self.bar {
                    b.println(search_text(workload, *rate, *stable));
                }
            }
            RunEvent::PhaseFinished { name, stopped_by, duration_s } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("{}", finished_text(name, stopped_by, *duration_s));
            }
            RunEvent::Warning(w) => match &self.bar {
                Some(b) => b.println(format!("warning: {w}")),
                None => eprintln!("warning: {w}"),
            },
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn why_a_phase_ended_in_words() {
        assert_eq!(finished_text("steady", "duration", 15.0), "  steady ended after 15.0s: its duration ran out");
        assert_eq!(why_ended("condition: w.latency.p99 > 1s"), "its stop condition `w.latency.p99 > 1s` held");
        assert_eq!(why_ended("aborted: w.error_rate < 1%"), "aborted: `w.error_rate < 1%` failed (abort-on-fail)");
        assert_eq!(why_ended("something new"), "something new", "unknown codes are shown as they are");
    }
}
