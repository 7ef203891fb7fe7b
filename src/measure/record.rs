//! Recording what requests did, per workload and phase: HdrHistograms per metric in a few
//! sharded recorders (workers lock their shard, rarely contended), merged once per window
//! into the phase total and a compact per-window summary. No raw samples are kept, so memory
//! stays flat however long the run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::dsl::metrics::{MetricDef, PerRequest};
use crate::stats::histogram;

/// Whether a successful request met every bound of `slo` (times from its intended start).
fn meets(slo: &Slo, s: &Sample) -> bool {
    let since = |t: Instant| t.saturating_duration_since(s.intended);
    let ok = |bound: Option<Duration>, v: Option<Duration>| match (bound, v) {
        (Some(b), Some(v)) => v <= b,
        // A bound on a token metric is missed by a request that produced no token.
        (Some(_), None) => false,
        (None, _) => true,
    };
    let first = s.outputs.first().map(|&t| since(t));
    let last = s.outputs.last().map(|&t| since(t));
    let max_gap = s.outputs.windows(2).map(|p| p[1] - p[0]).max().or(first.map(|_| Duration::ZERO));
    let tokens = s.output_tokens.unwrap_or(s.outputs.len() as u64) as usize;
    let tpot = match (first, last, tokens) {
        (Some(f), Some(l), n) if n > 1 => Some((l - f) / (n as u32 - 1)),
        (Some(_), _, _) => Some(Duration::ZERO),
        _ => None,
    };
    ok(slo.ttft, first) && ok(slo.itl, max_gap) && ok(slo.tpot, tpot) && ok(slo.e2e, last.or(Some(since(s.finished))))
}

/// The distributions the engine records for every workload. Durations in nanoseconds; the
/// per-request token rate in milli-tokens per second. A workload's own per-request measures
/// (recall, device time, ...) are declared by it and kept beside these (see [`Hists`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Latency,
    Ttft,
    Itl,
    Tpot,
    E2e,
    RequestTokS,
    SendLateness,
    /// Latency of failed requests (intended start -> failure), kept apart so that fast
    /// failures do not flatter the latency of the requests that succeeded.
    FailedLatency,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::Latency,
        Metric::Ttft,
        Metric::Itl,
        Metric::Tpot,
        Metric::E2e,
        Metric::RequestTokS,
        Metric::SendLateness,
        Metric::FailedLatency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::Ttft => "ttft",
            Metric::Itl => "itl",
            Metric::Tpot => "tpot",
            Metric::E2e => "e2e",
            Metric::RequestTokS => "request_tok_s",
            Metric::SendLateness => "send_lateness",
            Metric::FailedLatency => "failed_latency",
        }
    }

    /// Divisor from recorded values to reported ones (ns -> s; milli-tok/s -> tok/s).
    /// Every time in the result document is in seconds.
    pub fn scale(self) -> f64 {
        match self {
            Metric::RequestTokS => 1e3,
            _ => 1e9,
        }
    }

    /// The unit of reported values.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::RequestTokS => "tok/s",
            _ => "s",
        }
    }

    /// The unit of the integers recorded in the histogram.
    pub fn recorded_unit(self) -> &'static str {
        match self {
            Metric::RequestTokS => "milli-tok/s",
            _ => "ns",
        }
    }
}

/// One recorded distribution, named, with its units (see [`Hists::all`]).
pub struct Named<'a> {
    pub name: &'static str,
    /// Divisor from recorded integers to reported values.
    pub scale: f64,
    pub unit: &'static str,
    pub recorded_unit: &'static str,
    pub hist: &'a Histogram<u64>,
}

/// One histogram per [`Metric`], and one per declared per-request distribution of the
/// workload (in the order of its declaration; counters it declares go to [`Counters`]).
#[derive(Clone, Debug)]
pub struct Hists {
    fixed: [Histogram<u64>; 8],
    declared: Vec<(&'static MetricDef, Histogram<u64>)>,
}

impl Default for Hists {
    fn default() -> Self {
        Hists { fixed: std::array::from_fn(|_| histogram()), declared: vec![] }
    }
}

/// Scale and units of a declared distribution; `None` for a declared counter.
fn distribution(def: &MetricDef) -> Option<(f64, &'static str, &'static str)> {
    match def.per_request {
        Some(PerRequest::Distribution { scale, recorded_unit, unit }) => Some((scale, recorded_unit, unit)),
        _ => None,
    }
}

impl Hists {
    /// Empty histograms for the engine's metrics and for each declared measure.
    pub fn with_measures(measures: &[&'static MetricDef]) -> Hists {
        Hists { declared: measures.iter().map(|d| (*d, histogram())).collect(), ..Hists::default() }
    }

    pub fn get(&self, m: Metric) -> &Histogram<u64> {
        &self.fixed[m as usize]
    }

    /// Replaces the histogram of `m` (a record read back from a result).
    pub fn set(&mut self, m: Metric, h: Histogram<u64>) {
        self.fixed[m as usize] = h;
    }

    /// Sets the histogram of a declared distribution (a record read back from a result).
    pub fn set_declared(&mut self, def: &'static MetricDef, h: Histogram<u64>) {
        match self.declared.iter_mut().find(|(d, _)| d.name == def.name) {
            Some((_, old)) => *old = h,
            None => self.declared.push((def, h)),
        }
    }

    /// The histogram to add into for a stored distribution named `name`: the engine's, or a
    /// declared one among `defs` (created empty when this record has none yet).
    pub fn slot_mut(&mut self, name: &str, defs: &[&'static MetricDef]) -> Option<&mut Histogram<u64>> {
        if let Some(m) = Metric::ALL.iter().find(|m| m.name() == name) {
            return Some(&mut self.fixed[*m as usize]);
        }
        let def = *defs.iter().find(|d| d.name == name && distribution(d).is_some())?;
        let at = match self.declared.iter().position(|(d, _)| d.name == name) {
            Some(i) => i,
            None => {
                self.declared.push((def, histogram()));
                self.declared.len() - 1
            }
        };
        Some(&mut self.declared[at].1)
    }

    /// The histogram of a metric by name, engine's or declared, with the divisor from its
    /// integers to base units.
    pub fn named(&self, name: &str) -> Option<(&Histogram<u64>, f64)> {
        if let Some(m) = Metric::ALL.iter().find(|m| m.name() == name) {
            return Some((self.get(*m), m.scale()));
        }
        self.declared.iter().find(|(d, _)| d.name == name).and_then(|(d, h)| distribution(d).map(|(s, ..)| (h, s)))
    }

    /// Every distribution, the engine's first, then the declared ones.
    pub fn all(&self) -> impl Iterator<Item = Named<'_>> {
        let fixed = Metric::ALL.iter().map(|m| Named {
            name: m.name(),
            scale: m.scale(),
            unit: m.unit(),
            recorded_unit: m.recorded_unit(),
            hist: self.get(*m),
        });
        let declared = self.declared.iter().filter_map(|(d, h)| {
            distribution(d).map(|(scale, recorded_unit, unit)| Named {
                name: d.name,
                scale,
                unit,
                recorded_unit,
                hist: h,
            })
        });
        fixed.chain(declared)
    }

    fn record(&mut self, m: Metric, v: u64) {
        // Auto-resizing histograms accept any u64, zero included.
        let _ = self.fixed[m as usize].record(v);
    }

    pub fn add(&mut self, other: &Hists) {
        for (a, b) in self.fixed.iter_mut().zip(&other.fixed) {
            a.add(b).expect("auto-resizing histograms accept any range");
        }
        for (def, h) in &other.declared {
            match self.declared.iter_mut().find(|(d, _)| d.name == def.name) {
                Some((_, mine)) => mine.add(h).expect("auto-resizing histograms accept any range"),
                None => self.declared.push((def, h.clone())),
            }
        }
    }

    /// Takes out an earlier snapshot of the same record (a prefix of it): what was recorded
    /// since.
    pub fn subtract(&mut self, earlier: &Hists) {
        for (a, b) in self.fixed.iter_mut().zip(&earlier.fixed) {
            // A prefix's counts never exceed the whole's: this cannot fail.
            let _ = a.subtract(b);
        }
        for (def, h) in &earlier.declared {
            if let Some((_, mine)) = self.declared.iter_mut().find(|(d, _)| d.name == def.name) {
                let _ = mine.subtract(h);
            }
        }
    }

    fn reset(&mut self) {
        self.fixed.iter_mut().for_each(Histogram::reset);
        self.declared.iter_mut().for_each(|(_, h)| h.reset());
    }
}

/// Counts kept beside the histograms.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Requests finished, successfully or not.
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Open loop: intended starts skipped because max-in-flight was reached.
    pub dropped: u64,
    /// Open loop: intended starts before the phase's end that the generator never reached
    /// (it fell behind, or the phase was stopped early). Every intended arrival is sent
    /// (`requests` once finished), `dropped` or `unsent`.
    pub unsent: u64,
    /// Open loop: requests the generator sent (finished, failed, or abandoned by the drain).
    pub sent: u64,
    /// Requests still in flight when the drain gave up on them: sent, never recorded (the
    /// server may have worked on them).
    pub abandoned: u64,
    /// Open loop: of those, dispatched more than 1 ms after their intended time.
    pub late_sent: u64,
    pub output_tokens: u64,
    pub input_tokens: u64,
    /// Nanoseconds spent processing prompts, summed over requests that report it.
    pub prefill_ns: u64,
    /// Successful requests that met every SLO of the workload.
    pub good: u64,
    /// Sums of the workload's declared per-request counters (kernel launches, ...).
    pub declared: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (k, v) in &o.errors_by_kind {
            *self.errors_by_kind.entry(k.clone()).or_default() += v;
        }
        self.dropped += o.dropped;
        self.unsent += o.unsent;
        self.sent += o.sent;
        self.abandoned += o.abandoned;
        self.late_sent += o.late_sent;
        self.output_tokens += o.output_tokens;
        self.input_tokens += o.input_tokens;
        self.prefill_ns += o.prefill_ns;
        self.good += o.good;
        for (k, v) in &o.declared {
            *self.declared.entry(k).or_default() += v;
        }
    }
}

impl Counters {
    /// Takes out an earlier snapshot of the same record: what was counted since.
    pub fn subtract(&mut self, o: &Counters) {
        self.requests -= o.requests.min(self.requests);
        self.errors -= o.errors.min(self.errors);
        for (k, v) in &o.errors_by_kind {
            if let Some(mine) = self.errors_by_kind.get_mut(k) {
                *mine -= (*v).min(*mine);
            }
        }
        self.dropped -= o.dropped.min(self.dropped);
        self.unsent -= o.unsent.min(self.unsent);
        self.sent -= o.sent.min(self.sent);
        self.abandoned -= o.abandoned.min(self.abandoned);
        self.late_sent -= o.late_sent.min(self.late_sent);
        self.output_tokens -= o.output_tokens.min(self.output_tokens);
        self.input_tokens -= o.input_tokens.min(self.input_tokens);
        self.prefill_ns -= o.prefill_ns.min(self.prefill_ns);
        self.good -= o.good.min(self.good);
        for (k, v) in &o.declared {
            if let Some(mine) = self.declared.get_mut(k) {
                *mine -= (*v).min(*mine);
            }
        }
    }
}

/// What the engine knows about a finished request.
pub struct Sample<'a> {
    /// When the request should have started (open loop: its scheduled time; closed loop: the
    /// moment the worker issued it). Latencies count from here.
    pub intended: Instant,
    /// When it actually started.
    pub started: Instant,
    pub finished: Instant,
    pub outputs: &'a [Instant],
    /// Output tokens when the workload counted them apart from `outputs` (see
    /// `Events::output_tokens`); else one per output timestamp.
    pub output_tokens: Option<u64>,
    pub input_tokens: u64,
    pub prefill: Option<Duration>,
    /// The workload's declared measures: (index into its `measures`, base-unit value).
    pub measured: &'a [(usize, f64)],
    pub error: Option<&'static str>,
    /// Open loop: record the send lateness.
    pub open_loop: bool,
}

/// Percentiles of one metric in one window, in reported units.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowStats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl WindowStats {
    pub fn of(h: &Histogram<u64>, scale: f64) -> Option<WindowStats> {
        (!h.is_empty()).then(|| WindowStats {
            count: h.len(),
            mean: h.mean() / scale,
            p50: h.value_at_quantile(0.5) as f64 / scale,
            p90: h.value_at_quantile(0.9) as f64 / scale,
            p95: h.value_at_quantile(0.95) as f64 / scale,
            p99: h.value_at_quantile(0.99) as f64 / scale,
            max: h.max() as f64 / scale,
        })
    }
}

/// One window of the time series.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowSummary {
    /// Seconds from the start of the phase to the start of the window.
    pub start_s: f64,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    pub unsent: u64,
    /// Requests finished per second in this window.
    pub throughput: f64,
    /// Output tokens per second in this window.
    pub tok_s: f64,
    /// Requests in flight when the window was closed.
    pub in_flight: u64,
    /// Per metric (only those with samples).
    pub metrics: BTreeMap<String, WindowStats>,
}

#[derive(Default)]
struct Shard {
    window: u64,
    dirty: bool,
    hists: Hists,
    counters: Counters,
}

#[derive(Default)]
struct Agg {
    total: Hists,
    counters: Counters,
    open: BTreeMap<u64, (Hists, Counters)>,
    series: Vec<WindowSummary>,
    /// Windows below this index are closed: late data goes to the next open window.
    closed_below: u64,
    /// When the record ended (set by `finish`): the last window is as long as it really
    /// was, not a whole window (a drain of 21 ms is not a second).
    end: Option<Instant>,
}

/// Recorder of one workload in one phase, shared by all its workers.
pub struct Recorder {
    start: Instant,
    window: Duration,
    shards: Vec<Mutex<Shard>>,
    agg: Mutex<Agg>,
    pub in_flight: AtomicU64,
    slo: Option<Slo>,
    /// Set when the drain gives up on the requests still in flight: they return at once,
    /// unrecorded, and drop their work (an inference request stops at its next token), so
    /// that they load neither the following phases nor the end of the run.
    abandoned: AtomicBool,
    abandon: tokio::sync::Notify,
    /// How many were in flight when they were abandoned.
    abandoned_count: AtomicU64,
}

/// Everything recorded for one workload in one phase.
#[derive(Debug, Default)]
pub struct Recorded {
    pub hists: Hists,
    pub counters: Counters,
    pub series: Vec<WindowSummary>,
    pub elapsed: Duration,
}

impl Recorded {
    /// Adds another record's totals (histograms add losslessly); the series is left as is.
    pub fn add_totals(&mut self, other: &Recorded) {
        self.hists.add(&other.hists);
        self.counters.add(&other.counters);
        self.elapsed += other.elapsed;
    }

    /// Appends a record that followed this one: totals add, and its windows (which count
    /// from its own start) are shifted to follow this record's.
    pub fn append(&mut self, other: Recorded) {
        let offset = self.elapsed.as_secs_f64();
        self.add_totals(&other);
        self.series.extend(other.series.into_iter().map(|mut w| {
            w.start_s += offset;
            w
        }));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker must not take the measurements with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    pub fn new(start: Instant, window: Duration, shards: usize) -> Recorder {
        Recorder {
            start,
            window,
            shards: (0..shards.max(1)).map(|_| Mutex::new(Shard::default())).collect(),
            agg: Mutex::new(Agg::default()),
            in_flight: AtomicU64::new(0),
            slo: None,
            abandoned: AtomicBool::new(false),
            abandon: tokio::sync::Notify::new(),
            abandoned_count: AtomicU64::new(0),
        }
    }

    /// Gives up on the requests in flight (see `abandoned`).
    pub fn abandon_in_flight(&self) {
        if !self.abandoned.load(Ordering::SeqCst) {
            self.abandoned_count.store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        self.abandoned.store(true, Ordering::SeqCst);
        self.abandon.notify_waiters();
    }

    /// Resolves once the requests in flight are abandoned.
    pub async fn abandoned(&self) {
        let notified = self.abandon.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.abandoned.load(Ordering::SeqCst) {
            notified.await;
        }
    }

    /// Records the workload's declared per-request measures (`Workload::measures`).
    pub fn with_measures(self, measures: &[&'static MetricDef]) -> Recorder {
        for sh in &self.shards {
            lock(sh).hists = Hists::with_measures(measures);
        }
        lock(&self.agg).total = Hists::with_measures(measures);
        self
    }

    /// Counts requests meeting `slo` (goodput).
    pub fn with_slo(mut self, slo: Option<Slo>) -> Recorder {
        self.slo = slo;
        self
    }

    fn window_of(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.start).as_nanos() / self.window.as_nanos().max(1)) as u64
    }

    fn shard(&self, i: usize) -> std::sync::MutexGuard<'_, Shard> {
        lock(&self.shards[i % self.shards.len()])
    }

    /// Moves a shard's current window into the aggregate.
    fn flush(&self, sh: &mut Shard) {
        if !sh.dirty {
            return;
        }
        let mut agg = lock(&self.agg);
        let w = sh.window.max(agg.closed_below);
        agg.total.add(&sh.hists);
        agg.counters.add(&sh.counters);
        let slot = agg.open.entry(w).or_default();
        slot.0.add(&sh.hists);
        slot.1.add(&sh.counters);
        sh.hists.reset();
        sh.counters = Counters::default();
        sh.dirty = false;
    }

    fn enter(&self, sh: &mut Shard, at: Instant) {
        let w = self.window_of(at);
        if w > sh.window {
            self.flush(sh);
            sh.window = w;
        }
        sh.dirty = true;
    }

    pub fn record(&self, shard: usize, s: &Sample) {
        let ns = |a: Instant, b: Instant| b.saturating_duration_since(a).as_nanos() as u64;
        let mut sh = self.shard(shard);
        self.enter(&mut sh, s.finished);
        sh.counters.requests += 1;
        sh.counters.input_tokens += s.input_tokens;
        if s.open_loop {
            sh.hists.record(Metric::SendLateness, ns(s.intended, s.started));
        }
        if let Some(kind) = s.error {
            sh.counters.errors += 1;
            *sh.counters.errors_by_kind.entry(kind.to_string()).or_default() += 1;
            sh.hists.record(Metric::FailedLatency, ns(s.intended, s.finished));
            return;
        }
        sh.hists.record(Metric::Latency, ns(s.intended, s.finished));
        if let Some(p) = s.prefill {
            sh.counters.prefill_ns += p.as_nanos() as u64;
        }
        for &(i, v) in s.measured {
            let Some((def, h)) = sh.hists.declared.get_mut(i) else { continue };
            match def.per_request {
                Some(PerRequest::Distribution { scale, .. }) => {
                    let _ = h.record((v * scale).round().max(0.0) as u64);
                }
                Some(PerRequest::Sum) => {
                    let name = def.name;
                    *sh.counters.declared.entry(name).or_default() += v.max(0.0) as u64;
                }
                None => {}
            }
        }
        // With no SLO, every successful request meets all of them.
        if self.slo.as_ref().is_none_or(|slo| meets(slo, s)) {
            sh.counters.good += 1;
        }
        let n = s.output_tokens.unwrap_or(s.outputs.len() as u64);
        sh.counters.output_tokens += n;
        if let (Some(&first), Some(&last)) = (s.outputs.first(), s.outputs.last()) {
            let (ttft, e2e) = (ns(s.intended, first), ns(s.intended, last));
            sh.hists.record(Metric::Ttft, ttft);
            sh.hists.record(Metric::E2e, e2e);
            for pair in s.outputs.windows(2) {
                sh.hists.record(Metric::Itl, ns(pair[0], pair[1]));
            }
            if n > 1 {
                sh.hists.record(Metric::Tpot, (e2e - ttft) / (n - 1));
            }
            if e2e > 0 {
                sh.hists.record(Metric::RequestTokS, (n as f64 * 1e12 / e2e as f64) as u64);
            }
        } else if n > 0 {
            // Tokens without timestamps (a response that was not streamed): the rate runs to
            // the end of the response.
            let total = ns(s.intended, s.finished);
            if total > 0 {
                sh.hists.record(Metric::RequestTokS, (n as f64 * 1e12 / total as f64) as u64);
            }
        }
    }

    /// Counts an intended start that was skipped (max-in-flight reached).
    pub fn record_drop(&self, shard: usize, at: Instant) {
        let mut sh = self.shard(shard);
        self.enter(&mut sh, at);
        sh.counters.dropped += 1;
    }

    /// Counts intended starts the generator never reached before the phase ended.
    pub fn record_unsent(&self, shard: usize, at: Instant, n: u64) {
        if n == 0 {
            return;
        }
        let mut sh = self.shard(shard);
        self.enter(&mut sh, at);
        sh.counters.unsent += n;
    }

    /// Flushes every shard and closes the windows that ended before `now` (leaving the last
    /// one open for stragglers). Returns the newly closed windows.
    pub fn tick(&self, now: Instant) -> Vec<WindowSummary> {
        for i in 0..self.shards.len() {
            let mut sh = self.shard(i);
            self.flush(&mut sh);
        }
        let current = self.window_of(now);
        self.close_below(current.saturating_sub(1))
    }

    fn close_below(&self, limit: u64) -> Vec<WindowSummary> {
        let mut agg = lock(&self.agg);
        let mut out = vec![];
        while let Some((&w, _)) = agg.open.first_key_value() {
            if w >= limit {
                break;
            }
            let (_, (h, c)) = agg.open.pop_first().expect("peeked");
            out.push(self.summary(w, &h, &c, agg.end));
        }
        agg.closed_below = agg.closed_below.max(limit);
        agg.series.extend(out.iter().cloned());
        out
    }

    fn summary(&self, w: u64, h: &Hists, c: &Counters, end: Option<Instant>) -> WindowSummary {
        let full = self.window.as_secs_f64();
        let start_s = w as f64 * full;
        // The window's real length: cut at the record's end (never below 1 µs).
        let secs =
            end.map_or(full, |e| (e.saturating_duration_since(self.start).as_secs_f64() - start_s).clamp(1e-6, full));
        WindowSummary {
            start_s,
            seconds: secs,
            requests: c.requests,
            errors: c.errors,
            dropped: c.dropped,
            unsent: c.unsent,
            throughput: (c.requests - c.errors) as f64 / secs,
            tok_s: c.output_tokens as f64 / secs,
            in_flight: self.in_flight.load(std::sync::atomic::Ordering::Relaxed),
            metrics: h
                .all()
                .filter_map(|n| WindowStats::of(n.hist, n.scale).map(|s| (n.name.to_string(), s)))
                .collect(),
        }
    }

    /// A copy of the totals so far (flushed at the last tick), for stop conditions.
    pub fn snapshot(&self) -> (Hists, Counters) {
        let agg = lock(&self.agg);
        (agg.total.clone(), agg.counters.clone())
    }

    /// Flushes and closes every window still open, the last cut at `end` (when the phase
    /// ended); returns them.
    pub fn close(&self, end: Instant) -> Vec<WindowSummary> {
        let mut out = self.tick(end);
        lock(&self.agg).end = Some(end);
        out.extend(self.close_below(u64::MAX));
        out
    }

    /// Closes everything (see [`Recorder::close`]) and hands over the record.
    pub fn finish(&self, end: Instant) -> Recorded {
        self.close(end);
        let mut agg = lock(&self.agg);
        Recorded {
            hists: std::mem::take(&mut agg.total),
            counters: Counters {
                abandoned: self.abandoned_count.load(Ordering::SeqCst),
                ..std::mem::take(&mut agg.counters)
            },
            series: std::mem::take(&mut agg.series),
            elapsed: end.saturating_duration_since(self.start),
        }
    }
}

/// Service-level bounds of one request. `itl` bounds every gap between two tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    pub ttft: Option<std::time::Duration>,
    pub itl: Option<std::time::Duration>,
    pub tpot: Option<std::time::Duration>,
    pub e2e: Option<std::time::Duration>,
}

impl Slo {
    /// The bounds a workload's `slo` node gives.
    pub fn from_spec(s: &crate::dsl::model::Slo) -> Slo {
        let d =
            |x: &Option<crate::dsl::span::Spanned<crate::dsl::units::Duration>>| x.as_ref().map(|d| d.value.as_std());
        Slo { ttft: d(&s.ttft), itl: d(&s.itl), tpot: d(&s.tpot), e2e: d(&s.e2e) }
    }

    pub fn is_empty(&self) -> bool {
        self.ttft.is_none() && self.itl.is_none() && self.tpot.is_none() && self.e2e.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_token_metrics_and_windows() {
        let t0 = Instant::now();
        let r = Recorder::new(t0, Duration::from_secs(1), 2);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let outputs = [ms(10), ms(12), ms(15)];
        r.record(
            0,
            &Sample {
                intended: t0,
                started: ms(1),
                finished: ms(15),
                outputs: &outputs,
                output_tokens: None,
                input_tokens: 4,
                prefill: None,
                measured: &[],
                error: None,
                open_loop: true,
            },
        );
        r.record(
            1,
            &Sample {
                intended: ms(1500),
                started: ms(1500),
                finished: ms(1600),
                outputs: &[],
                output_tokens: None,
                input_tokens: 0,
                prefill: None,
                measured: &[],
                error: Some("boom"),
                open_loop: false,
            },
        );
        r.record_drop(0, ms(2500));
        let rec = r.finish(ms(3000));
        assert_eq!(rec.counters.requests, 2);
        assert_eq!(rec.counters.errors_by_kind["boom"], 1);
        assert_eq!(rec.counters.dropped, 1);
        assert_eq!(rec.counters.output_tokens, 3);
        let h = |m: Metric| rec.hists.get(m);
        assert_eq!(h(Metric::Ttft).len(), 1);
        assert_eq!(h(Metric::Itl).len(), 2);
        assert!((h(Metric::Ttft).max() as f64 - 10e6).abs() < 10e3);
        assert!((h(Metric::Tpot).max() as f64 - 2.5e6).abs() < 3e3);
        assert!((h(Metric::SendLateness).max() as f64 - 1e6).abs() < 1e3);
        // 3 tokens over 15 ms = 200 tok/s, recorded in milli-tok/s.
        assert!((h(Metric::RequestTokS).max() as f64 - 200e3).abs() < 200.0);
        let windows: Vec<(f64, u64, u64)> = rec.series.iter().map(|w| (w.start_s, w.requests, w.dropped)).collect();
        assert_eq!(windows, [(0.0, 1, 0), (1.0, 1, 0), (2.0, 0, 1)]);
    }

    #[test]
    fn goodput_counts_requests_meeting_every_slo() {
        let t0 = Instant::now();
        let slo =
            Slo { ttft: Some(Duration::from_millis(20)), itl: Some(Duration::from_millis(5)), ..Default::default() };
        let r = Recorder::new(t0, Duration::from_secs(1), 1).with_slo(Some(slo));
        let ms = |n: u64| t0 + Duration::from_millis(n);
        fn sample<'a>(t0: Instant, outputs: &'a [Instant], error: Option<&'static str>) -> Sample<'a> {
            Sample {
                intended: t0,
                started: t0,
                finished: *outputs.last().unwrap_or(&(t0 + Duration::from_millis(50))),
                outputs,
                output_tokens: None,
                input_tokens: 8,
                prefill: Some(Duration::from_millis(4)),
                measured: &[],
                error,
                open_loop: false,
            }
        }
        r.record(0, &sample(t0, &[ms(10), ms(14), ms(18)], None)); // meets both
        r.record(0, &sample(t0, &[ms(25), ms(27)], None)); // TTFT 25 ms > 20 ms
        r.record(0, &sample(t0, &[ms(10), ms(20)], None)); // a 10 ms gap > 5 ms
        r.record(0, &sample(t0, &[], None)); // no token: misses the token SLOs
        r.record(0, &sample(t0, &[ms(5)], Some("boom"))); // failed
        let rec = r.finish(ms(1000));
        assert_eq!(rec.counters.good, 1);
        assert_eq!(rec.counters.prefill_ns, 4 * 4_000_000);
        assert_eq!(rec.counters.input_tokens, 40);
    }
}
