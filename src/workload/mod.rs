//! The workload boundary: the trait every kind implements, one request's context and
//! events, service levels, and (in [`setup`]) how a workload is prepared. Workloads know
//! nothing of load shapes; the engine decides when requests start and records what happens.
//! The engine depends on this module and on no kind's folder.

pub mod facts;
pub mod setup;
pub mod synthetic;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::dsl::metrics::MetricDef;
use crate::random::Rng;
pub use facts::Facts;

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
    /// Output tokens, when they are not one per entry of `outputs`: a served stream's chunk
    /// may carry several tokens, and a response that is not streamed has no timestamps.
    /// `None`: one token per entry of `outputs`.
    pub output_tokens: Option<u64>,
    /// Values of the workload's declared per-request measures: (index into
    /// [`Workload::measures`], value in base units).
    pub measured: Vec<(usize, f64)>,
    /// Declared durations that count from the request's intended start (as `ttft` does),
    /// which only the engine knows: (index into [`Workload::measures`], the instant).
    pub since_start: Vec<(usize, Instant)>,
}

impl Events {
    /// Reports one output token, available now.
    pub fn output(&mut self) {
        self.outputs.push(Instant::now());
    }

    /// Reports the value (in base units: seconds, a fraction, a count) of the declared
    /// measure at `index` of [`Workload::measures`].
    pub fn measure(&mut self, index: usize, value: f64) {
        self.measured.push((index, value));
    }

    /// Reports a declared duration that ends at `at` and starts at the request's intended
    /// start (the engine turns it into seconds before recording).
    pub fn measure_since_start(&mut self, index: usize, at: Instant) {
        self.since_start.push((index, at));
    }

    pub fn clear(&mut self) {
        self.since_start.clear();
        self.outputs.clear();
        self.input_tokens = 0;
        self.prefill = None;
        self.output_tokens = None;
        self.measured.clear();
    }
}

/// Why a request failed; the result counts errors by [`RequestError::kind`].
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// The workload's backend failed the request; `what` names the step ("search",
    /// "model", "cuda", ...) and is the error's kind in the result.
    Backend { what: &'static str, message: String },
    /// An error the scenario asked for (the synthetic workload's `errors` probability).
    Injected,
    /// The request's task panicked.
    Panicked(String),
}

impl RequestError {
    pub fn backend(what: &'static str, message: impl Into<String>) -> RequestError {
        RequestError::Backend { what, message: message.into() }
    }

    /// The key errors are counted under in the result's `errors_by_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::Backend { what, .. } => what,
            RequestError::Injected => "injected",
            RequestError::Panicked(_) => "panic",
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Backend { what, message } => write!(f, "{what}: {message}"),
            RequestError::Injected => f.write_str("synthetic error (errors probability)"),
            RequestError::Panicked(m) => write!(f, "the request panicked: {m}"),
        }
    }
}

impl std::error::Error for RequestError {}

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

    /// The per-request measures the workload reports through [`Events::measure`], besides
    /// latency and tokens (recall, device time, ...): catalogue entries with a
    /// `per_request` recording. The engine records them, and the result and every report
    /// show them, without knowing what they are.
    fn measures(&self) -> &'static [&'static MetricDef] {
        &[]
    }

    /// Facts about the workload's setup for the reports and the evaluation (what it is, how
    /// it was prepared, tables measured before the phases), read once the run has ended.
    fn facts(&self) -> Facts {
        Facts::default()
    }

    /// The kind's own machine-readable record of its setup (the result's `setup`: model,
    /// index or kernel details for scripts), read once the run has ended.
    fn detail(&self) -> Option<serde_json::Value> {
        None
    }
}

pub use crate::measure::Slo;

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
