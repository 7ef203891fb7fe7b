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
}

impl Events {
    /// Reports one output token, available now.
    pub fn output(&mut self) {
        self.outputs.push(Instant::now());
    }

    pub fn clear(&mut self) {
        self.outputs.clear();
        self.input_tokens = 0;
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
}
