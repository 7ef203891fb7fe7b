//! The workload trait: one request at a time, reporting its output tokens. Workloads know
//! nothing of load shapes; the engine decides when requests start and records what happens.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use super::random::Rng;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one request produced, filled in by the workload while it runs.
#[derive(Debug, Default)]
pub struct Events {
    /// When each output token became available to the host, in order.
    pub outputs: Vec<Instant>,
    /// Prompt tokens processed (0 when the workload has no prompt).
    pub input_tokens: u64,
    /// Time spent processing the prompt, when the workload knows it.
    pub prefill: Option<std::time::Duration>,
    /// Device time of one kernel launch (kernel workloads).
    pub device_time: Option<std::time::Duration>,
    /// Kernel launches behind `device_time`.
    pub launches: u64,
    /// recall@k of a retrieval query, when ground truth exists.
    pub recall: Option<f64>,
}

impl Events {
    /// Reports one output token, available now.
    pub fn output(&mut self) {
        self.outputs.push(Instant::now());
    }

    pub fn clear(&mut self) {
        self.outputs.clear();
        self.input_tokens = 0;
        self.prefill = None;
        self.device_time = None;
        self.launches = 0;
        self.recall = None;
    }
}

/// A failed request; `kind` groups errors in the result ("timeout", "injected", ...).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub kind: &'static str,
    pub message: String,
}

/// One request's context: a seeded random stream of its worker and the event sink.
pub struct Call<'a> {
    pub rng: &'a mut Rng,
    pub events: &'a mut Events,
}

/// A workload executes requests; it is shared by all workers of every drive.
///
/// The first poll of an open-loop request runs on the load generator's thread at the
/// request's intended start (that is the moment the request is sent), so it must be cheap:
/// heavy computation belongs after the first `.await` (or on a blocking pool), where it runs
/// on the runtime's threads.
pub trait Workload: Send + Sync {
    /// Runs one request. Errors are counted and the run goes on.
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>>;

    /// Whether requests stream output tokens (TTFT and ITL are recorded).
    fn streams_tokens(&self) -> bool;

    /// Per-request service levels: requests meeting all of them count towards goodput.
    fn slo(&self) -> Option<Slo> {
        None
    }

    /// Where the result's token counts come from.
    fn token_source(&self) -> &'static str {
        "synthetic token stream (counted per emitted token)"
    }

    /// Facts about the workload's setup for the result (model, index, batch-size table),
    /// read once the run has ended.
    fn facts(&self) -> Option<serde_json::Value> {
        None
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
    pub fn is_empty(&self) -> bool {
        self.ttft.is_none() && self.itl.is_none() && self.tpot.is_none() && self.e2e.is_none()
    }
}

thread_local! {
    static ON_GENERATOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as an open-loop arrival generator (see [`YieldOnce`]).
pub fn mark_generator_thread() {
    ON_GENERATOR.with(|g| g.set(true));
}

/// On the open-loop generator's thread, returns `Pending` once (waking itself), then
/// `Ready`: moves the rest of a request off the generator, onto the runtime. Anywhere else it
/// is `Ready` at once: a self-wake on a runtime worker invites another worker to steal the
/// task, which moved closed-loop searches across cores and added about 30 µs to each (a
/// third of a 0.1 ms search; measured by the retrieval bench).
#[derive(Default)]
pub struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 || !ON_GENERATOR.with(|g| g.get()) {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
