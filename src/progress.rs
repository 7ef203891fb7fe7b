//! Progress reporters for `benchctl run`: a live bar on a terminal (indicatif), plain lines
//! otherwise (CI logs), nothing with `--quiet`. They only consume engine events.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::capacity::SearchStep;
use crate::engine::events::{Reporter, RunEvent};
use crate::measure::record::WindowSummary;

/// Reports nothing (`--quiet`).
pub struct Quiet;

impl Reporter for Quiet {
    fn event(&mut self, _: &RunEvent) {}
}

/// A duration in seconds as people read it: `850µs`, `12.4ms`, `1.48s`, `2m05s`.
pub fn short_time(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        "-".into()
    } else if s < 1e-3 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 0.1 {
        format!("{:.2}ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.0}ms", s * 1e3)
    } else if s < 60.0 {
        format!("{s:.2}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// Planned seconds: `20s`, `1m30s`, or `2.5s` when not whole.
fn whole(s: f64) -> String {
    if s.fract() != 0.0 {
        short_time(s)
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        format!("{}m{:02}s", s as u64 / 60, s as u64 % 60)
    }
}

/// The columns of the terminal on file descriptor `fd`, when it is one.
pub fn terminal_width(fd: i32) -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the winsize struct passed by pointer; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// Cuts a line to `width` characters (never inside a character).
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        line.to_string()
    } else {
        line.chars().take(width.saturating_sub(1)).chain(std::iter::once('…')).collect()
    }
}

/// What the display keeps of one workload during a phase: totals over the phase's windows,
/// so that the rate shown is the phase's average (over its time so far, including windows
/// in which nothing finished), not the last second's.
#[derive(Default, Clone)]
struct Live {
    requests: u64,
    errors: u64,
    tokens: f64,
    p95: Option<f64>,
    in_flight: u64,
}

impl Live {
    fn add(&mut self, s: &WindowSummary) {
        self.requests += s.requests;
        self.errors += s.errors;
        self.tokens += s.tok_s * s.seconds;
        if let Some(m) = s.metrics.get("latency") {
            self.p95 = Some(m.p95);
        }
    }

    /// `svc   100.2 req/s  p95 24.6ms  2 in flight  1600 tok/s  errors 3`; a workload that
    /// has completed nothing yet says so.
    fn line(&self, name: &str, name_width: usize, elapsed_s: f64) -> String {
        let flight = format!("{} in flight", self.in_flight);
        if self.requests == 0 {
            return format!("{name:<name_width$}  nothing completed yet, {flight}");
        }
        let secs = elapsed_s.max(1e-3);
        let mut out = format!(
            "{name:<name_width$}  {:>7.1} req/s  p95 {:>7}  {flight}",
            self.requests as f64 / secs,
            self.p95.map_or("-".into(), short_time)
        );
        if self.tokens > 0.0 {
            out += &format!("  {:.0} tok/s", self.tokens / secs);
        }
        if self.errors > 0 {
            out += &format!("  errors {}", self.errors);
        }
        out
    }
}

/// One phase as the display follows it.
struct PhaseView {
    started: Instant,
    /// Seconds of the phase to average over; the clock since `started` when unset (tests
    /// set it).
    elapsed_s: Option<f64>,
    remaining_s: Option<f64>,
    workloads: Vec<(String, Live)>,
}

impl PhaseView {
    fn new(remaining_s: Option<f64>, workloads: &[String]) -> PhaseView {
        let mut seen = vec![];
        for w in workloads {
            if !seen.iter().any(|(n, _): &(String, Live)| n == w) {
                seen.push((w.clone(), Live::default()));
            }
        }
        PhaseView { started: Instant::now(), elapsed_s: None, remaining_s, workloads: seen }
    }

    fn live(&mut self, workload: &str) -> &mut Live {
        let i = match self.workloads.iter().position(|(n, _)| n == workload) {
            Some(i) => i,
            None => {
                self.workloads.push((workload.to_string(), Live::default()));
                self.workloads.len() - 1
            }
        };
        &mut self.workloads[i].1
    }

    fn record(&mut self, workload: &str, s: &WindowSummary) {
        self.live(workload).add(s);
    }

    fn in_flight(&mut self, workload: &str, n: u64) {
        self.live(workload).in_flight = n;
    }

    /// `run ends in ~1m05s` from the plan, while it is known.
    fn run_eta(&self) -> Option<String> {
        let left = (self.remaining_s? - self.started.elapsed().as_secs_f64()).max(0.0).round() as u64;
        let text = if left < 60 { format!("{left}s") } else { format!("{}m{:02}s", left / 60, left % 60) };
        Some(format!("run ends in ~{text}"))
    }

    fn lines(&self, width: usize) -> Vec<String> {
        let name_width = self.workloads.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
        // Windows close on whole seconds of the phase: count the time they cover.
        let elapsed = self.elapsed_s.unwrap_or_else(|| self.started.elapsed().as_secs_f64().floor());
        self.workloads.iter().map(|(n, l)| fit(&format!("  {}", l.line(n, name_width, elapsed)), width)).collect()
    }
}

fn search_text(workload: &str, step: &SearchStep) -> String {
    let load = match step.rate {
        Some(r) => format!("{r:.2}/s"),
        None => format!("concurrency {}", step.load),
    };
    let when = step.settled_after_s.map_or("at the step's end".to_string(), |t| format!("after {t:.1}s"));
    let binding = step
        .binding()
        .map(|b| format!("; closest: {} at {:.0}% of its bound", b.slo, b.margin.unwrap_or(0.0) * 100.0))
        .unwrap_or_default();
    format!("  search {workload} at {load}: {} {when} ({} samples{binding})", step.verdict.as_str(), step.samples)
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
        "run-limit" => "the scenario's run-limit passed".into(),
        "skipped" => "skipped (its workload does not run on this machine)".into(),
        other => {
            match (other.strip_prefix("condition: "), other.strip_prefix("aborted: "), other.strip_prefix("search: ")) {
                (Some(c), _, _) => format!("its stop condition `{c}` held"),
                (_, Some(a), _) => format!("aborted: `{a}` failed (abort-on-fail)"),
                (_, _, Some(s)) => format!("its capacity search ended ({s})"),
                _ => other.to_string(),
            }
        }
    }
}

/// One line per phase event and, every few seconds, a line per workload with the phase's
/// averages so far, on standard error (CI logs).
pub struct Plain {
    every: Duration,
    last: Option<Instant>,
    phase: Option<PhaseView>,
}

impl Plain {
    pub fn new() -> Plain {
        Plain { every: Duration::from_secs(5), last: None, phase: None }
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
            RunEvent::PhaseStarted { index, count, name, role, planned_s, remaining_s, workloads, .. } => {
                self.phase = Some(PhaseView::new(*remaining_s, workloads));
                self.last = Some(Instant::now());
                let planned = planned_s.map(|s| format!(", {}", whole(s))).unwrap_or_default();
                let eta =
                    self.phase.as_ref().and_then(PhaseView::run_eta).map(|e| format!("; {e}")).unwrap_or_default();
                format!("phase {}/{count} {name} ({role}{planned}){eta}", index + 1)
            }
            RunEvent::InFlight { workload, in_flight } => {
                if let Some(view) = self.phase.as_mut() {
                    view.in_flight(workload, *in_flight);
                }
                return;
            }
            RunEvent::Window { workload, elapsed_s, summary, .. } => {
                let Some(view) = self.phase.as_mut() else { return };
                view.record(workload, summary);
                if self.last.is_some_and(|l| l.elapsed() < self.every) {
                    return;
                }
                self.last = Some(Instant::now());
                let lines = view.lines(usize::MAX);
                format!("  [{:>7}] phase averages\n{}", short_time(*elapsed_s), lines.join("\n"))
            }
            RunEvent::SearchStep { workload, step } => search_text(workload, step),
            RunEvent::Capacity(s) => format!("  {}", s.text()),
            RunEvent::PhaseFinished { name, stopped_by, duration_s } => finished_text(name, stopped_by, *duration_s),
            RunEvent::Warning(w) => format!("warning: {w}"),
            RunEvent::Totals { .. } => return,
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

/// A live bar per phase on a terminal: the phase's progress and the whole run's time left
/// on the first line, then a line per workload it drives (phase averages, p95 of the last
/// window, requests in flight), each cut to the terminal's width; warnings go above it.
pub struct Bar {
    bar: Option<ProgressBar>,
    phase: Option<PhaseView>,
    width: usize,
}

impl Bar {
    pub fn new() -> Bar {
        Bar { bar: None, phase: None, width: terminal_width(2).unwrap_or(80) }
    }

    fn refresh(&self) {
        let (Some(b), Some(view)) = (&self.bar, &self.phase) else { return };
        b.set_position(view.started.elapsed().as_secs());
        let mut msg = view.run_eta().unwrap_or_default();
        for l in view.lines(self.width) {
            msg.push('\n');
            msg += &l;
        }
        b.set_message(msg);
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
            RunEvent::PhaseStarted { index, count, name, planned_s, remaining_s, workloads, .. } => {
                self.width = terminal_width(2).unwrap_or(self.width);
                let bar = match planned_s {
                    Some(s) => ProgressBar::new(s.ceil() as u64),
                    None => ProgressBar::new_spinner(),
                };
                let template = if planned_s.is_some() {
                    "{prefix} {bar:20} {pos}/{len}s  {msg}"
                } else {
                    "{prefix} {spinner} {elapsed}  {msg}"
                };
                bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
                let prefix: String = format!("{}/{count} {name}", index + 1).chars().take(self.width / 3).collect();
                bar.set_prefix(prefix);
                bar.enable_steady_tick(Duration::from_millis(200));
                self.bar = Some(bar);
                self.phase = Some(PhaseView::new(*remaining_s, workloads));
                self.refresh();
            }
            RunEvent::Window { workload, summary, .. } => {
                if let Some(view) = self.phase.as_mut() {
                    view.record(workload, summary);
                }
            }
            RunEvent::InFlight { workload, in_flight } => {
                // Sent once per window for every workload, after its closed windows.
                if let Some(view) = self.phase.as_mut() {
                    view.in_flight(workload, *in_flight);
                }
                self.refresh();
            }
            RunEvent::SearchStep { workload, step } => {
                if let Some(b) = &self.bar {
                    b.println(search_text(workload, step));
                }
            }
            RunEvent::Capacity(s) => {
                if let Some(b) = &self.bar {
                    b.println(format!("  {}", s.text()));
                }
            }
            RunEvent::PhaseFinished { name, stopped_by, duration_s } => {
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                eprintln!("{}", fit(&finished_text(name, stopped_by, *duration_s), self.width));
            }
            RunEvent::Warning(w) => match &self.bar {
                Some(b) => b.println(format!("warning: {w}")),
                None => eprintln!("warning: {w}"),
            },
            RunEvent::Totals { .. } => {}
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
        assert_eq!(why_ended("run-limit"), "the scenario's run-limit passed");
    }

    #[test]
    fn workload_lines_show_phase_averages_and_waiting_workloads() {
        let window = |requests: u64, seconds: f64, p95: f64| {
            let mut metrics = std::collections::BTreeMap::new();
            metrics.insert("latency".to_string(), crate::measure::record::WindowStats { p95, ..Default::default() });
            WindowSummary { requests, seconds, throughput: requests as f64 / seconds, metrics, ..Default::default() }
        };
        let mut view = PhaseView::new(Some(30.0), &["chat".into(), "rag".into()]);
        // A busy second after nine idle ones: the average is 1/s, not the last second's 10/s.
        view.record("rag", &window(10, 1.0, 0.0123));
        view.in_flight("rag", 2);
        // Windows in which nothing finished are not sent: the average is over the phase's time.
        view.elapsed_s = Some(10.0);
        let lines = view.lines(80);
        assert_eq!(lines[0], "  chat  nothing completed yet, 0 in flight");
        assert!(lines[1].starts_with("  rag       1.0 req/s  p95 12.30ms  2 in flight"), "{}", lines[1]);
        assert!(view.run_eta().unwrap().starts_with("run ends in ~"));
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(short_time(0.00085), "850µs");
        assert_eq!(short_time(1.478), "1.48s");
        assert_eq!(short_time(125.0), "2m05s");
        assert_eq!((whole(20.0), whole(90.0), whole(2.5)), ("20s".into(), "1m30s".into(), "2.50s".into()));
    }
}
