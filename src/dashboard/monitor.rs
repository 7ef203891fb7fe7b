//! `benchctl monitor`: the probes live, with the resource alerts, and no workload.

use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::alerts::{Alert, Alerts};
use super::hub::Hub;
use super::{live, model, Listening, Server};
use crate::dsl::model::ProbeKind;
use crate::probe::{ProbeTap, Probes};

pub struct MonitorArgs {
    pub probes: Vec<ProbeKind>,
    pub every: Duration,
    /// Stop after this long (otherwise at Ctrl-C).
    pub duration: Option<Duration>,
    pub cooldown_s: f64,
}

/// Runs until `stop` is set or the duration passes; returns the alerts raised.
pub fn run(
    listening: Listening,
    args: &MonitorArgs,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Vec<Alert>, super::DashboardError> {
    let hub = Hub::new(super::queue_len());
    let names: Vec<String> = args.probes.iter().map(|p| p.to_string()).collect();
    let description = format!("probes: {}", names.join(", "));
    hub.publish(&model::scenario_event("monitor", Some(&description), &crate::result::ConfigDoc::default()));
    let server = Server::start(listening, live::router(hub.clone(), "monitor", "benchctl monitor".into()))?;
    let (tx, rx) = sync_channel(8192);
    let tap = ProbeTap(Arc::new(move |r| {
        let _ = tx.try_send(r);
    }));
    let origin = Instant::now();
    let list: Vec<(ProbeKind, Duration)> = args.probes.iter().map(|&p| (p, args.every)).collect();
    let probes = Probes::tapped(&list, origin, Some(tap));
    let mut alerts = Alerts::new(args.cooldown_s);
    let deadline = args.duration.map(|d| origin + d);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(r) => {
                let (event, alert) = live::reading(&mut alerts, &r);
                hub.publish(&event);
                if let Some(a) = alert {
                    super::say(format_args!("alert [{}] {}\n", a.category, a.message));
                    hub.publish(&live::alert_event(a));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let results = probes.finish();
    for p in results.iter().filter(|p| p.unavailable.is_some()) {
        super::say(format_args!("note: probe `{}` had no data: {}\n", p.kind, p.unavailable.as_deref().unwrap_or("")));
    }
    hub.publish(&model::end_event(origin.elapsed().as_secs_f64(), "completed", None));
    hub.close();
    std::thread::sleep(Duration::from_millis(200));
    server.stop();
    Ok(alerts.fired)
}
