//! Where published events wait for browsers: the history so far (for a page that joins
//! late) and a broadcast channel of bounded length. Publishing never waits: a client that
//! falls more than the channel's length behind is dropped, not waited for.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::sse::Event as SseEvent;
use futures_util::Stream;
use tokio::sync::broadcast;

/// Events a client may fall behind before it is dropped.
pub const DEFAULT_QUEUE: usize = 1024;
/// Events kept for clients that join late; beyond this the oldest are forgotten.
pub const HISTORY_LIMIT: usize = 100_000;

#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub data: String,
}

#[derive(Default, Debug, Clone, serde::Serialize)]
pub struct HubStats {
    /// Events published.
    pub events: u64,
    /// Oldest events forgotten by the history (a very long run).
    pub history_dropped: u64,
    /// Browsers that connected to the event stream.
    pub clients: u64,
    /// Clients dropped because they fell behind.
    pub slow_clients_dropped: u64,
}

struct Inner {
    history: VecDeque<Arc<Published>>,
    next: u64,
    tx: Option<broadcast::Sender<Arc<Published>>>,
}

pub struct Hub {
    inner: Mutex<Inner>,
    clients: AtomicU64,
    slow: AtomicU64,
    forgotten: AtomicU64,
    history_limit: usize,
}

impl Hub {
    pub fn new(queue: usize) -> Arc<Hub> {
        Hub::with_limits(queue, HISTORY_LIMIT)
    }

    pub fn with_limits(queue: usize, history_limit: usize) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(queue.max(1));
        Arc::new(Hub {
            inner: Mutex::new(Inner { history: VecDeque::new(), next: 0, tx: Some(tx) }),
            clients: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            forgotten: AtomicU64::new(0),
            history_limit,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an event to the history and sends it to every connected client (never waits).
    pub fn publish(&self, v: &serde_json::Value) {
        let data = serde_json::to_string(v).expect("events serialise: their maps have string keys");
        let mut inner = self.lock();
        let e = Arc::new(Published { seq: inner.next, data });
        inner.next += 1;
        if inner.history.len() >= self.history_limit {
            inner.history.pop_front();
            self.forgotten.fetch_add(1, Ordering::Relaxed);
        }
        inner.history.push_back(e.clone());
        if let Some(tx) = &inner.tx {
            let _ = tx.send(e);
        }
    }

    /// Ends every client's stream once it has what was published.
    pub fn close(&self) {
        self.lock().tx = None;
    }

    /// The history so far and a receiver of what follows, taken together (nothing is lost
    /// or seen twice between them).
    pub fn subscribe(&self) -> (Vec<Arc<Published>>, Option<broadcast::Receiver<Arc<Published>>>) {
        let inner = self.lock();
        (inner.history.iter().cloned().collect(), inner.tx.as_ref().map(|t| t.subscribe()))
    }

    pub fn history(&self) -> Vec<Arc<Published>> {
        self.lock().history.iter().cloned().collect()
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            events: self.lock().next,
            history_dropped: self.forgotten.load(Ordering::Relaxed),
            clients: self.clients.load(Ordering::Relaxed),
            slow_clients_dropped: self.slow.load(Ordering::Relaxed),
        }
    }

    /// One client's stream: the history, then live events until the hub closes or the
    /// client falls too far behind.
    pub fn stream(self: Arc<Self>) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static {
        self.clients.fetch_add(1, Ordering::Relaxed);
        let (history, rx) = self.subscribe();
        let state = (history.into_iter(), rx, self);
        futures_util::stream::unfold(state, |(mut history, mut rx, hub)| async move {
            if let Some(e) = history.next() {
                return Some((Ok(sse(&e)), (history, rx, hub)));
            }
            let r = rx.as_mut()?;
            match r.recv().await {
                Ok(e) => Some((Ok(sse(&e)), (history, rx, hub))),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    hub.slow.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }
}

fn sse(e: &Published) -> SseEvent {
    SseEvent::default().id(e.seq.to_string()).data(e.data.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn a_client_that_falls_behind_is_dropped_and_publishing_never_waits() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let hub = Hub::new(8);
            hub.publish(&serde_json::json!({"type": "scenario"}));
            let mut stalled = Box::pin(hub.clone().stream());
            let mut reader = Box::pin(hub.clone().stream());
            // The reading client gets the history first.
            assert!(reader.next().await.is_some());
            let started = std::time::Instant::now();
            for i in 0..100 {
                hub.publish(&serde_json::json!({"type": "window", "i": i}));
                // The reader keeps up.
                assert!(reader.next().await.is_some());
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
            // The stalled client: its history, then it is found 93 events behind and dropped.
            assert!(stalled.next().await.is_some());
            assert!(stalled.next().await.is_none(), "a client 92 events behind a queue of 8 is dropped");
            assert_eq!(hub.stats().slow_clients_dropped, 1);
            assert_eq!(hub.stats().clients, 2);
            // A late joiner still gets everything so far.
            let late: Vec<_> = hub.clone().stream().take(101).collect().await;
            assert_eq!(late.len(), 101);
            hub.close();
            assert!(reader.next().await.is_none(), "closing ends the streams");
        });
    }

    #[test]
    fn history_is_bounded() {
        let hub = Hub::with_limits(4, 10);
        for i in 0..25 {
            hub.publish(&serde_json::json!({"i": i}));
        }
        let h = hub.history();
        assert_eq!(h.len(), 10);
        assert_eq!(h[0].seq, 15);
        assert_eq!(hub.stats().history_dropped, 15);
    }
}
