//! The live view of a run. The engine's reporter and the probe thread hand what happens to
//! a bounded queue (`try_send`: a full queue drops the event and counts it, the run never
//! waits); a processor thread turns it into page events, evaluates every expectation on the
//! totals so far with the verdict's own evidence rule, raises alerts, and publishes to the
//! hub that the server streams from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::sse::{KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::alerts::{Alert, Alerts};
use super::hub::{Hub, HubStats};
use super::{model, Listening, Server};
use crate::dsl::model::{PhaseRole, WorkloadKind};
use crate::engine::events::{Reporter, RunEvent};
use crate::measure::record::Recorded;
use crate::probe::{ProbeTap, Reading};
use crate::result::{ConfigDoc, PhaseDoc, ResultDoc, WorkloadDoc};

/// Events waiting for the processor; beyond this they are dropped (and counted).
const QUEUE: usize = 8192;

pub enum Msg {
    Run(Box<RunEvent>),
    Probe(Reading),
    /// An event made outside the engine (a regression against the baseline, the verdict).
    Extra(Value),
}

/// What the live view recorded, for the result document's `dashboard` section.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub url: String,
    pub alerts: Vec<Alert>,
    /// Per alert key, how often it held again within its cooldown (not shown again).
    pub alerts_held_back: BTreeMap<String, u64>,
    pub cooldown_s: f64,
    /// Events the run's queue could not take (the processor fell behind).
    pub events_dropped: u64,
    #[serde(flatten)]
    pub hub: HubStats,
}

/// Setup of a live view.
pub struct LiveSpec {
    pub name: String,
    pub description: Option<String>,
    /// The plan as the result document's `config` records it.
    pub config: ConfigDoc,
    pub kinds: BTreeMap<String, WorkloadKind>,
    pub cooldown_s: f64,
}

pub struct Live {
    url: String,
    hub: Arc<Hub>,
    server: Option<Server>,
    tx: Option<SyncSender<Msg>>,
    dropped: Arc<AtomicU64>,
    processor: Option<std::thread::JoinHandle<Alerts>>,
    cooldown_s: f64,
}

/// Feeds the live view from the engine (wants the per-window totals).
pub struct LiveReporter {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

fn offer(tx: &SyncSender<Msg>, dropped: &AtomicU64, m: Msg) {
    if let Err(TrySendError::Full(_)) = tx.try_send(m) {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl Reporter for LiveReporter {
    fn event(&mut self, e: &RunEvent) {
        if matches!(e, RunEvent::InFlight { .. }) {
            return;
        }
        offer(&self.tx, &self.dropped, Msg::Run(Box::new(e.clone())));
    }
    fn wants_totals(&self) -> bool {
        true
    }
}

/// The page and the event stream of one hub.
pub fn router(hub: Arc<Hub>, mode: &'static str, title: String) -> Router {
    let stream_hub = hub.clone();
    Router::new()
        .route("/", get(move || async move { super::html(mode, &title) }))
        .route(
            "/events",
            get(move || {
                let hub = stream_hub.clone();
                async move { Sse::new(hub.stream()).keep_alive(KeepAlive::new().interval(Duration::from_secs(5))) }
            }),
        )
        .route(
            "/events.json",
            get(move || {
                let hub = hub.clone();
                async move {
                    // The events are kept as JSON text: joined, not parsed and written again.
                    let items: Vec<String> = hub.history().iter().map(|e| e.data.clone()).collect();
                    ([(header::CONTENT_TYPE, "application/json")], format!("[{}]", items.join(",")))
                }
            }),
        )
}

impl Live {
    /// Starts the server and the processor; the banner is the caller's to print.
    pub fn start(listening: Listening, spec: LiveSpec) -> Result<Live, super::DashboardError> {
        let hub = Hub::new(super::queue_len());
        hub.publish(&model::scenario_event(&spec.name, spec.description.as_deref(), &spec.config));
        let url = listening.base_url();
        let server = Server::start(listening, router(hub.clone(), "live", format!("benchctl: {}", spec.name)))?;
        let (tx, rx) = sync_channel(QUEUE);
        let cooldown_s = spec.cooldown_s;
        let processor_hub = hub.clone();
        let processor = std::thread::Builder::new()
            .name("benchctl-live".into())
            .spawn(move || process(rx, processor_hub, spec))
            .map_err(super::DashboardError::Thread)?;
        Ok(Live {
            url,
            hub,
            server: Some(server),
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            processor: Some(processor),
            cooldown_s,
        })
    }

    pub fn reporter(&self) -> LiveReporter {
        LiveReporter { tx: self.tx.clone().expect("live view running"), dropped: self.dropped.clone() }
    }

    /// Hands every probe reading to the live view.
    pub fn probe_tap(&self) -> ProbeTap {
        let (tx, dropped) = (self.tx.clone().expect("live view running"), self.dropped.clone());
        ProbeTap(Arc::new(move |r| offer(&tx, &dropped, Msg::Probe(r))))
    }

    /// Publishes an event made outside the engine (after the queue's earlier events).
    pub fn extra(&self, v: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Extra(v));
        }
    }

    /// Waits for the processor to publish everything queued, ends the streams and the
    /// server, and returns what the result records.
    pub fn finish(mut self) -> Record {
        self.tx = None;
        let alerts = self.processor.take().and_then(|p| p.join().ok()).unwrap_or_else(|| Alerts::new(self.cooldown_s));
        self.hub.close();
        // Give connected pages a moment to read the last events before the server stops.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(s) = self.server.take() {
            s.stop();
        }
        Record {
            url: self.url.clone(),
            alerts_held_back: alerts.held_back(),
            alerts: alerts.fired,
            cooldown_s: self.cooldown_s,
            events_dropped: self.dropped.load(Ordering::Relaxed),
            hub: self.hub.stats(),
        }
    }
}

/// A phase's name and role with each workload's totals.
type PhaseTotals = (String, PhaseRole, Vec<(String, Recorded)>);

/// The processor's view of the run so far.
struct State {
    spec: LiveSpec,
    alerts: Alerts,
    /// Phases that ended, as the result document records them (encoded once, at their end).
    done: Vec<PhaseDoc>,
    /// The measured phases that ended, added per workload.
    done_totals: BTreeMap<String, Recorded>,
    /// The current phase's latest totals.
    current: Option<PhaseTotals>,
    starts: BTreeMap<String, f64>,
    t: f64,
}

fn process(rx: Receiver<Msg>, hub: Arc<Hub>, spec: LiveSpec) -> Alerts {
    let mut st = State {
        alerts: Alerts::new(spec.cooldown_s),
        spec,
        done: vec![],
        done_totals: BTreeMap::new(),
        current: None,
        starts: BTreeMap::new(),
        t: 0.0,
    };
    while let Ok(m) = rx.recv() {
        for v in st.handle(m) {
            hub.publish(&v);
        }
    }
    st.alerts
}

pub(super) fn alert_event(a: Alert) -> Value {
    let mut v = serde_json::to_value(a).expect("an alert serialises: plain fields");
    v["type"] = "alert".into();
    v
}

/// A probe reading's page event, and the resource alert it raises, if any.
pub(super) fn reading(alerts: &mut Alerts, r: &Reading) -> (Value, Option<Alert>) {
    let probe = r.probe.to_string();
    let event = model::probe_event(&probe, &r.series, r.unit, &[(r.t, r.value)]);
    (event, alerts.reading(r.t, &probe, &r.series, r.value))
}

impl State {
    fn handle(&mut self, m: Msg) -> Vec<Value> {
        let mut out = vec![];
        match m {
            Msg::Probe(r) => {
                self.t = self.t.max(r.t);
                let (event, alert) = reading(&mut self.alerts, &r);
                out.push(event);
                out.extend(alert.map(alert_event));
            }
            Msg::Extra(v) => {
                if v["type"] == "alert" {
                    let a = Alert {
                        t: v["t"].as_f64().unwrap_or(self.t),
                        category: "stability",
                        key: v["key"].as_str().unwrap_or("regression").to_string(),
                        severity: "critical",
                        message: v["message"].as_str().unwrap_or("").to_string(),
                    };
                    let key = a.key.clone();
                    out.extend(self.alerts.raise(a.t, a.category, &key, a.severity, a.message).map(alert_event));
                } else {
                    out.push(v);
                }
            }
            Msg::Run(e) => self.run_event(*e, &mut out),
        }
        out
    }

    fn run_event(&mut self, e: RunEvent, out: &mut Vec<Value>) {
        match e {
            RunEvent::PhaseStarted { index, name, role, planned_s, at_s, .. } => {
                self.t = self.t.max(at_s);
                self.starts.insert(name.clone(), at_s);
                out.push(model::phase_event(index, &name, role.as_str(), at_s, planned_s));
            }
            RunEvent::Window { phase, workload, elapsed_s, summary } => {
                self.t = self.t.max(elapsed_s);
                // The window's end in run seconds: the engine closes a window a tick late.
                let start = self.phase_start(&phase);
                let t = start.map_or(elapsed_s, |s| s + summary.start_s + summary.seconds);
                out.push(model::window_event(&phase, &workload, t, &summary));
                out.extend(self.alerts.window(elapsed_s, &workload, summary.requests, summary.errors).map(alert_event));
            }
            RunEvent::Totals { phase, role, secs, elapsed_s, workloads } => {
                self.t = self.t.max(elapsed_s);
                let elapsed = Duration::from_secs_f64(secs.max(0.0));
                let recs = workloads
                    .iter()
                    .map(|(n, (hists, counters))| {
                        (
                            n.clone(),
                            Recorded { hists: hists.clone(), counters: counters.clone(), series: vec![], elapsed },
                        )
                    })
                    .collect();
                self.current = Some((phase, role, recs));
                out.extend(self.status(false));
            }
            RunEvent::PhaseFinished { name, stopped_by, duration_s } => {
                let start = self.phase_start(&name).unwrap_or(self.t - duration_s);
                let end = start + duration_s;
                self.t = self.t.max(end);
                out.push(model::phase_end_event(&name, end, &stopped_by));
                if let Some((phase, role, recs)) = self.current.take().filter(|c| c.0 == name) {
                    let doc = self.phase_doc(&phase, role, &recs);
                    for (w, wd) in &doc.workloads {
                        out.push(model::phase_summary_event(&name, w, wd));
                    }
                    self.done.push(doc);
                    if role == PhaseRole::Measure {
                        for (w, r) in &recs {
                            self.done_totals.entry(w.clone()).or_default().add_totals(r);
                        }
                    }
                }
            }
            RunEvent::Warning(w) => {
                out.push(json!({"type": "warning", "t": self.t, "code": w.code, "message": w.message}));
                let alert = match w.code.as_ref() {
                    "drain_abandoned" => Some(("timeout", "requests timed out in the drain")),
                    "aborted" => Some(("aborted", "the run was aborted")),
                    _ => None,
                };
                if let Some((key, _)) = alert {
                    out.extend(
                        self.alerts.raise(self.t, "stability", key, "critical", w.message.clone()).map(alert_event),
                    );
                }
            }
            RunEvent::SearchStep { workload, step } => out.push(model::search_event(&workload, &step)),
            RunEvent::Capacity(s) => out.push(model::capacity_event(&s)),
            RunEvent::InFlight { .. } => {}
        }
    }

    fn kind(&self, w: &str) -> WorkloadKind {
        self.spec.kinds.get(w).copied().unwrap_or(WorkloadKind::Synthetic)
    }

    /// Run seconds at which the phase (its latest repetition) started.
    fn phase_start(&self, phase: &str) -> Option<f64> {
        self.starts.get(phase).copied()
    }

    /// Every expectation evaluated on the totals so far (phases done and the current one).
    fn status(&mut self, final_: bool) -> Vec<Value> {
        if self.spec.config.expectations.is_empty() {
            return vec![];
        }
        let doc = self.doc();
        let ev = crate::evaluate::evaluate(&doc);
        let mut out = vec![model::status_event(self.t, &ev.outcomes, final_)];
        for o in &ev.outcomes {
            if matches!(o.status, crate::evaluate::Status::Fail | crate::evaluate::Status::Warn) {
                let severity = if o.status == crate::evaluate::Status::Fail { "critical" } else { "warning" };
                let msg = format!("`{}` is missed: measured {} ({})", o.text, o.measured_text, o.message);
                out.extend(
                    self.alerts
                        .raise(self.t, "performance", &format!("expect:{}", o.name), severity, msg)
                        .map(alert_event),
                );
            }
        }
        out
    }

    fn workload_doc(&self, w: &str, r: &Recorded) -> WorkloadDoc {
        crate::result::workload_doc(self.kind(w), r, false, None)
    }

    /// One phase as the result document's `phases[]` records it.
    fn phase_doc(&self, name: &str, role: PhaseRole, recs: &[(String, Recorded)]) -> PhaseDoc {
        let workloads = recs.iter().map(|(w, r)| (w.clone(), self.workload_doc(w, r))).collect();
        PhaseDoc::of_totals(name, role, workloads)
    }

    /// A result document of the totals so far, for the evaluation: the finished phases as
    /// they were encoded at their end, and the current one.
    fn doc(&self) -> ResultDoc {
        let mut phases = self.done.clone();
        let mut current = vec![];
        if let Some((name, role, recs)) = &self.current {
            phases.push(self.phase_doc(name, *role, recs));
            if *role == PhaseRole::Measure {
                current.extend(recs.iter());
            }
        }
        let mut merged: BTreeMap<String, Recorded> = BTreeMap::new();
        for (w, r) in self.done_totals.iter().chain(current.into_iter().map(|(w, r)| (w, r))) {
            merged.entry(w.clone()).or_default().add_totals(r);
        }
        let benchmarks = merged.iter().map(|(w, r)| (w.clone(), self.workload_doc(w, r))).collect();
        ResultDoc::of_totals(self.spec.config.clone(), phases, benchmarks)
    }
}
