//! The server's own metrics: its Prometheus endpoint scraped on a thread of its own, every
//! interval and at each phase's start and end, so that a phase's counts cover exactly the
//! requests the phase sent. Counters become per-phase increases (a reset counts from zero,
//! as Prometheus's `increase()` does), gauges per-phase summaries and a series over the run,
//! histograms per-phase bucket increases read by interpolation.

pub mod expo;
pub mod family;
pub mod read;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Series, SeriesOut, SeriesSummary};
use family::{Buckets, Family, Snapshot};

/// A server to scrape: the workload that talks to it and where its metrics are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub workload: String,
    pub url: String,
    #[serde(serialize_with = "seconds")]
    pub every: Duration,
    /// The environment variable whose value is sent as a bearer token (the workload's key).
    pub api_key_env: Option<String>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A histogram's increase over a phase: cumulative counts at each finite upper bound (the
/// `+Inf` bucket is `count`), the sum and the count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HistogramDelta {
    pub bounds: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl HistogramDelta {
    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does: the lowest bucket starts at 0, and a rank in the `+Inf`
    /// bucket reads as the highest finite bound. `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count;
        let mut lower = (0.0, 0.0);
        for &(le, cum) in &self.bounds {
            if cum >= rank {
                let in_bucket = cum - lower.1;
                let share = if in_bucket > 0.0 { (rank - lower.1) / in_bucket } else { 1.0 };
                return Some(lower.0 + (le - lower.0) * share);
            }
            lower = (le, cum);
        }
        self.bounds.last().map(|b| b.0)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// Adds another (a second server, a shard): bucket by bucket where the bounds agree.
    pub fn add(&mut self, o: &HistogramDelta) {
        if self.bounds.is_empty() && self.count == 0.0 {
            *self = o.clone();
            return;
        }
        for (le, c) in &o.bounds {
            if let Some(slot) = self.bounds.iter_mut().find(|b| b.0 == *le) {
                slot.1 += c;
            }
        }
        self.bounds.retain(|b| o.bounds.iter().any(|x| x.0 == b.0));
        self.sum += o.sum;
        self.count += o.count;
    }
}

/// What one phase saw on the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerPhase {
    pub phase: String,
    pub repetition: u64,
    pub scrapes: u64,
    /// Scraped at the phase's start and at its end (after the drain): the counters cover
    /// exactly the phase. False when a boundary scrape failed.
    pub complete: bool,
    /// Counter increases over the phase, by canonical name (or the server's own).
    pub counters: BTreeMap<String, f64>,
    /// Counter resets seen during the phase (a restarted server).
    pub resets: u64,
    /// Gauges sampled during the phase.
    pub gauges: BTreeMap<String, SeriesSummary>,
    pub histograms: BTreeMap<String, HistogramDelta>,
}

/// One scraped server over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerRecord {
    pub workload: String,
    pub url: String,
    /// The server, as recognised from its metric names.
    pub family: Option<Family>,
    pub every_s: f64,
    pub scrapes: u64,
    pub failed_scrapes: u64,
    /// Why no scrape succeeded, when none did (a 404, a refused connection).
    pub unavailable: Option<String>,
    /// The last failure, when some scrapes failed.
    pub last_error: Option<String>,
    /// Exposition lines that did not parse, and the first of them.
    pub skipped_lines: u64,
    pub first_skipped: Option<String>,
    pub phases: Vec<ServerPhase>,
    /// Gauges over the whole run (downsampled for long runs).
    pub series: BTreeMap<String, SeriesOut>,
}

enum Command {
    Start {
        phase: String,
        repetition: u64,
        done: tokio::sync::oneshot::Sender<()>,
    },
    End {
        done: tokio::sync::oneshot::Sender<()>,
    },
    /// Scrape now (counted in the open phase too) and hand the snapshot back.
    Peek {
        done: tokio::sync::oneshot::Sender<Option<Snapshot>>,
    },
}

/// The scrapers of a run, one thread each, until [`Scrapers::finish`].
pub struct Scrapers {
    /// Each scraper's workload, its commands, its thread.
    running: Vec<(String, mpsc::Sender<Command>, JoinHandle<ServerRecord>)>,
}

/// The gauges handed to a live view as they are scraped (the dashboard's server panel).
pub const LIVE_GAUGES: &[&str] = read::GAUGES;

/// How long a phase boundary waits for its scrape.
const BOUNDARY_WAIT: Duration = Duration::from_secs(3);

impl Scrapers {
    /// Starts a thread per target; `tap` (a live view) gets the [`LIVE_GAUGES`] as scraped.
    pub fn start(targets: &[Target], origin: Instant, tap: Option<super::ProbeTap>) -> Scrapers {
        let running = targets
            .iter()
            .filter_map(|t| {
                let (tx, rx) = mpsc::channel();
                let (t, workload) = (t.clone(), t.workload.clone());
                let tap = tap.clone();
                std::thread::Builder::new()
                    .name("benchctl-scrape".into())
                    .spawn(move || Scraper::new(t, origin, tap).run(rx))
                    .ok()
                    .map(|h| (workload, tx, h))
            })
            .collect();
        Scrapers { running }
    }

    /// Scrapes every server now and opens `phase`; returns once the scrapes are in (or after
    /// a few seconds, for a server that does not answer).
    pub async fn phase_started(&self, phase: &str, repetition: u64) {
        self.boundary(|done| Command::Start { phase: phase.to_string(), repetition, done }).await
    }

    /// Scrapes every server now and closes the open phase.
    pub async fn phase_finished(&self) {
        self.boundary(|done| Command::End { done }).await
    }

    /// Sends every scraper the command `make` builds and waits (a bounded time) until each
    /// has scraped.
    async fn boundary(&self, make: impl Fn(tokio::sync::oneshot::Sender<()>) -> Command) {
        let waits: Vec<_> = (self.running.iter())
            .filter_map(|(_, tx, _)| {
                let (done, wait) = tokio::sync::oneshot::channel();
                tx.send(make(done)).ok().map(|_| wait)
            })
            .collect();
        let _ = tokio::time::timeout(BOUNDARY_WAIT, futures_util::future::join_all(waits)).await;
    }

    /// Scrapes the servers of `workload` now: one snapshot each, in a fixed order, `None`
    /// where the scrape failed or did not answer within [`BOUNDARY_WAIT`].
    pub async fn peek(&self, workload: &str) -> Vec<Option<Snapshot>> {
        let asks = (self.running.iter()).filter(|(w, _, _)| w == workload).map(|(_, tx, _)| {
            let (done, wait) = tokio::sync::oneshot::channel();
            let sent = tx.send(Command::Peek { done }).is_ok();
            async move {
                match sent {
                    true => tokio::time::timeout(BOUNDARY_WAIT, wait).await.ok().and_then(Result::ok).flatten(),
                    false => None,
                }
            }
        });
        futures_util::future::join_all(asks).await
    }

    pub fn finish(self) -> Vec<ServerRecord> {
        self.running
            .into_iter()
            .filter_map(|(_, tx, h)| {
                drop(tx);
                h.join().ok()
            })
            .collect()
    }
}

/// A phase being counted: the increases since its first scrape.
struct Open {
    phase: ServerPhase,
    /// The last successful scrape in this phase (increases are taken from it).
    last: Option<Snapshot>,
    started_ok: bool,
    gauges: BTreeMap<String, Series>,
}

struct Scraper {
    target: Target,
    origin: Instant,
    agent: ureq::Agent,
    token: Option<String>,
    record: ServerRecord,
    open: Option<Open>,
    /// The last successful scrape, between phases too.
    last: Option<Snapshot>,
    series: BTreeMap<String, Series>,
    tap: Option<super::ProbeTap>,
}

impl Scraper {
    fn new(target: Target, origin: Instant, tap: Option<super::ProbeTap>) -> Scraper {
        let timeout = target.every.clamp(Duration::from_millis(500), Duration::from_secs(5));
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        let token = target.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
        let record = ServerRecord {
            workload: target.workload.clone(),
            url: target.url.clone(),
            every_s: target.every.as_secs_f64(),
            ..ServerRecord::default()
        };
        Scraper { target, origin, agent, token, record, open: None, last: None, series: BTreeMap::new(), tap }
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) -> ServerRecord {
        let every = self.target.every.max(Duration::from_millis(100));
        let mut next = Instant::now();
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Command::Start { phase, repetition, done }) => {
                    self.close();
                    let ok = self.scrape();
                    let phase = ServerPhase { phase, repetition, ..ServerPhase::default() };
                    let last = if ok { self.last.clone() } else { None };
                    self.open = Some(Open { phase, last, started_ok: ok, gauges: BTreeMap::new() });
                    if ok {
                        self.sample_gauges();
                    }
                    let _ = done.send(());
                    next = Instant::now() + every;
                }
                Ok(Command::End { done }) => {
                    let ok = self.scrape_into_phase();
                    if let Some(o) = self.open.as_mut() {
                        o.phase.complete = o.started_ok && ok;
                    }
                    self.close();
                    let _ = done.send(());
                    next = Instant::now() + every;
                }
                Ok(Command::Peek { done }) => {
                    let ok = self.scrape_into_phase();
                    let _ = done.send(if ok { self.last.clone() } else { None });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.scrape_into_phase();
                    next += every;
                    if next < Instant::now() {
                        next = Instant::now() + every;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.close();
        self.record.series = std::mem::take(&mut self.series).into_iter().map(|(k, s)| (k, s.out())).collect();
        if self.record.scrapes == 0 {
            self.record.unavailable = self.record.last_error.clone();
        }
        self.record
    }

    /// Scrapes, adding the increases since the last scrape to the open phase.
    fn scrape_into_phase(&mut self) -> bool {
        if !self.scrape() {
            return false;
        }
        let now = self.last.clone().expect("a successful scrape sets `last`");
        if let Some(o) = self.open.as_mut() {
            // Without the phase's first scrape, counting starts here (the phase is incomplete).
            if let Some(prev) = &o.last {
                o.phase.resets += add_increase(&mut o.phase, prev, &now);
            }
            o.last = Some(now);
        }
        self.sample_gauges();
        true
    }

    fn sample_gauges(&mut self) {
        let Some(now) = &self.last else { return };
        let t = self.origin.elapsed().as_secs_f64();
        for (name, v) in &now.gauges {
            self.series.entry(name.clone()).or_insert_with(|| Series::new("", 1e4)).push(t, *v);
            if let Some(tap) = self.tap.as_ref().filter(|_| LIVE_GAUGES.contains(&name.as_str())) {
                let probe = crate::dsl::model::ProbeKind::Server;
                (tap.0)(super::Reading { probe, series: name.clone(), unit: "", t, value: *v });
            }
            if let Some(o) = self.open.as_mut() {
                o.gauges.entry(name.clone()).or_insert_with(|| Series::new("", 1e4)).push(t, *v);
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut o) = self.open.take() {
            o.phase.gauges = o.gauges.into_iter().map(|(k, s)| (k, s.out().summary)).collect();
            self.record.phases.push(o.phase);
        }
    }

    /// One GET of the metrics; on success `last` holds it in canonical names.
    fn scrape(&mut self) -> bool {
        let mut req = self.agent.get(&self.target.url).set("Accept", "text/plain;version=0.0.4");
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let text = match req.call() {
            Ok(r) => r.into_string().map_err(|e| format!("reading the answer: {e}")),
            Err(ureq::Error::Status(code, r)) => Err(format!("HTTP {code} {}", r.status_text())),
            Err(ureq::Error::Transport(t)) => Err(t.to_string()),
        };
        let text = match text {
            Ok(t) => t,
            Err(why) => {
                self.record.failed_scrapes += 1;
                self.record.last_error = Some(why);
                return false;
            }
        };
        let e = expo::parse(&text);
        if self.record.family.is_none() {
            self.record.family = family::detect(&e);
        }
        if e.skipped > 0 {
            self.record.skipped_lines += e.skipped;
            self.record.first_skipped = self.record.first_skipped.take().or(e.first_skipped.clone());
        }
        self.record.scrapes += 1;
        if let Some(o) = self.open.as_mut() {
            o.phase.scrapes += 1;
        }
        self.last = Some(family::snapshot(&e, self.record.family));
        true
    }
}

/// Adds the increases from `prev` to `now` into the phase; returns the resets seen. A
/// counter that went down was reset and counts from zero (Prometheus's `increase()`); a
/// counter absent before counts from zero too (a label set or series that appeared).
pub fn add_increase(phase: &mut ServerPhase, prev: &Snapshot, now: &Snapshot) -> u64 {
    let mut resets = 0;
    for (name, &v) in &now.counters {
        let before = prev.counters.get(name).copied().unwrap_or(0.0);
        let inc = if v >= before {
            v - before
        } else {
            resets += 1;
            v
        };
        *phase.counters.entry(name.clone()).or_default() += inc;
    }
    for (name, h) in &now.histograms {
        let empty = Buckets::default();
        let before = prev.histograms.get(name).unwrap_or(&empty);
        let reset = h.count < before.count;
        resets += reset as u64;
        let base = if reset { &empty } else { before };
        let delta = phase.histograms.entry(name.clone()).or_default();
        let finite: Vec<(f64, f64)> = h.bounds.iter().copied().filter(|b| b.0.is_finite()).collect();
        if delta.bounds.is_empty() {
            delta.bounds = finite.iter().map(|b| (b.0, 0.0)).collect();
        }
        for (le, c) in finite {
            let was = base.bounds.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            if let Some(slot) = delta.bounds.iter_mut().find(|b| b.0 == le) {
                slot.1 += c - was;
            }
        }
        delta.sum += h.sum - base.sum;
        delta.count += h.count - base.count;
    }
    resets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(counters: &[(&str, f64)], ttft: &[(f64, f64)], count: f64) -> Snapshot {
        let mut s = Snapshot::default();
        for (k, v) in counters {
            s.counters.insert(k.to_string(), *v);
        }
        if !ttft.is_empty() {
            s.histograms.insert("ttft".into(), Buckets { bounds: ttft.to_vec(), sum: count * 0.1, count });
        }
        s
    }

    #[test]
    fn increases_survive_a_reset() {
        let mut p = ServerPhase::default();
        let a = snap(&[("requests", 100.0)], &[], 0.0);
        let b = snap(&[("requests", 130.0)], &[], 0.0);
        let restarted = snap(&[("requests", 5.0)], &[], 0.0);
        let c = snap(&[("requests", 12.0), ("new", 3.0)], &[], 0.0);
        assert_eq!(add_increase(&mut p, &a, &b), 0);
        assert_eq!(add_increase(&mut p, &b, &restarted), 1);
        assert_eq!(add_increase(&mut p, &restarted, &c), 0);
        assert_eq!(p.counters["requests"], 30.0 + 5.0 + 7.0);
        assert_eq!(p.counters["new"], 3.0);
    }

    #[test]
    fn histogram_increases_read_as_quantiles() {
        let mut p = ServerPhase::default();
        let inf = f64::INFINITY;
        let a = snap(&[], &[(0.1, 10.0), (0.5, 10.0), (1.0, 10.0), (inf, 10.0)], 10.0);
        let b = snap(&[], &[(0.1, 10.0), (0.5, 60.0), (1.0, 110.0), (inf, 110.0)], 110.0);
        add_increase(&mut p, &a, &b);
        let h = &p.histograms["ttft"];
        assert_eq!(h.bounds, vec![(0.1, 0.0), (0.5, 50.0), (1.0, 100.0)]);
        assert_eq!(h.count, 100.0);
        // The median is the last observation of the (0.1, 0.5] bucket: its upper bound.
        assert!((h.quantile(0.5).unwrap() - 0.5).abs() < 1e-12);
        // p75: halfway into (0.5, 1.0].
        assert!((h.quantile(0.75).unwrap() - 0.75).abs() < 1e-12);
        assert!((h.quantile(0.25).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(HistogramDelta::default().quantile(0.5), None);
    }

    #[test]
    fn a_rank_in_the_open_bucket_reads_the_highest_bound() {
        let h = HistogramDelta { bounds: vec![(0.1, 1.0), (1.0, 2.0)], sum: 30.0, count: 10.0 };
        assert_eq!(h.quantile(0.99), Some(1.0));
    }
}
