//! The synthetic workload: latency from a declared distribution, optional CPU work, injected
//! errors and token streams, deterministic under the seed. It calibrates the harness and
//! drives the tests; it is not a stand-in for the real workloads.

use std::time::{Duration, Instant};

use super::{BoxFuture, Call, RequestError, Workload, YieldOnce};
use crate::clock;
use crate::dsl::model::{LatencyDist, Synthetic as Spec};
use crate::random::Rng;

#[derive(Debug, Clone)]
pub struct Synthetic {
    latency: LatencyDist,
    cpu_work: Duration,
    error_probability: f64,
    tokens: Option<(u64, Duration)>,
    /// Requests in service at once; the rest queue in arrival order (tokio's semaphore is
    /// first come, first served).
    slots: Option<std::sync::Arc<tokio::sync::Semaphore>>,
}

impl Synthetic {
    pub fn from_spec(spec: &Spec) -> Synthetic {
        Synthetic {
            latency: spec.latency.as_ref().map(|l| l.value).unwrap_or(LatencyDist::Fixed { value: Default::default() }),
            cpu_work: spec.cpu_work.as_ref().map(|c| c.value.as_std()).unwrap_or_default(),
            error_probability: spec.error_probability.as_ref().map(|p| p.value.0).unwrap_or(0.0),
            tokens: spec.tokens.as_ref().map(|(n, gap)| (n.value, gap.value.as_std())),
            slots: spec
                .slots
                .as_ref()
                .map(|n| std::sync::Arc::new(tokio::sync::Semaphore::new(n.value.min(u32::MAX as u64) as usize))),
        }
    }

    /// A latency draw in seconds (never negative).
    pub fn draw(&self, rng: &mut Rng) -> f64 {
        let s = match self.latency {
            LatencyDist::Fixed { value } => value.as_secs_f64(),
            LatencyDist::Uniform { min, max } => rng.uniform(min.as_secs_f64(), max.as_secs_f64()),
            LatencyDist::Normal { mean, stddev } => mean.as_secs_f64() + stddev.as_secs_f64() * rng.normal(),
            LatencyDist::Lognormal { median, sigma } => median.as_secs_f64() * (sigma * rng.normal()).exp(),
            LatencyDist::Pareto { scale, shape } => rng.pareto(scale.as_secs_f64(), shape),
        };
        s.max(0.0)
    }
}

/// Busy work for `d`: the CPU cost a real service would spend.
fn burn(d: Duration) {
    let end = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < end {
        for i in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

impl Workload for Synthetic {
    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<(), RequestError>> {
        // Draw everything up front so the sequence depends only on the seed and request order.
        let latency = self.draw(call.rng);
        let fail = self.error_probability > 0.0 && call.rng.chance(self.error_probability);
        Box::pin(async move {
            // Held until the response ends: a slot serves one request at a time.
            let _slot = match &self.slots {
                Some(s) => Some(s.acquire().await.map_err(|_| RequestError::backend("slots", "the service closed"))?),
                None => None,
            };
            if !self.cpu_work.is_zero() {
                // Service-side work runs on the runtime's threads, never on the open-loop
                // generator that makes the first poll.
                YieldOnce::default().await;
                burn(self.cpu_work);
            }
            if latency > 0.0 {
                clock::sleep(Duration::from_secs_f64(latency)).await;
            }
            if fail {
                return Err(RequestError::Injected);
            }
            if let Some((count, gap)) = self.tokens {
                let start = Instant::now();
                for i in 0..count {
                    if i > 0 && !gap.is_zero() {
                        // Deadlines from the first token, so sleep overshoot does not accumulate.
                        clock::sleep_until(start + gap * i as u32).await;
                    }
                    call.events.output();
                }
            }
            Ok(())
        })
    }

    fn streams_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    fn facts(&self) -> super::Facts {
        let injected = if self.error_probability > 0.0 {
            format!(", errors injected with probability {}", crate::dsl::units::Percent(self.error_probability))
        } else {
            String::new()
        };
        let slots = self.slots.as_ref().map_or(String::new(), |s| format!(", {} slots", s.available_permits()));
        super::Facts {
            synthetic: Some(format!(
                "synthetic service: latency{} set by the scenario{injected}{slots}",
                if self.tokens.is_some() { " and token stream" } else { "" }
            )),
            ..Default::default()
        }
    }
}
