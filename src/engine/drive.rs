//! Driving one workload with one load shape: closed-loop workers on tokio, open-loop
//! arrivals from a dedicated generator thread (tokio's timer is too coarse for 10,000/s).
//! Every request is timed from its intended start, so a stalled system cannot hide its
//! queueing delay (no coordinated omission).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::curve::{self, ConcurrencyCurve, RateCurve};
use crate::clock;
use crate::dsl::model::{Arrivals, LoadShape, Target};
use crate::measure::record::{Recorder, Sample};
use crate::random::Rng;
use crate::workload::{Call, Events, Workload};

/// A stop signal shared by the tasks and threads of a phase.
#[derive(Default)]
pub struct Stop {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

/// Everything a drive's workers share.
pub struct DriveCtx {
    pub workload: Arc<dyn Workload>,
    pub recorder: Arc<Recorder>,
    pub stop: Arc<Stop>,
    pub seed: u64,
    /// Stop after this many requests.
    pub cap: Option<u64>,
    pub issued: AtomicU64,
    pub max_in_flight: u64,
    /// Open loop: arrivals dispatched more than 1 ms after their intended time.
    pub late_dispatches: AtomicU64,
    pub dispatched: AtomicU64,
}

impl DriveCtx {
    pub fn new(
        workload: Arc<dyn Workload>,
        recorder: Arc<Recorder>,
        stop: Arc<Stop>,
        seed: u64,
        cap: Option<u64>,
        max_in_flight: u64,
    ) -> DriveCtx {
        DriveCtx {
            workload,
            recorder,
            stop,
            seed,
            cap,
            issued: AtomicU64::new(0),
            max_in_flight,
            late_dispatches: AtomicU64::new(0),
            dispatched: AtomicU64::new(0),
        }
    }

    /// Claims the next request slot; false once the cap is reached.
    fn claim(&self) -> bool {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        self.cap.is_none_or(|c| n < c)
    }
}

/// Polls a future, turning a panic into an error result.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.0).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// Runs one request and records it.
async fn execute(ctx: &DriveCtx, shard: usize, rng: &mut Rng, events: &mut Events, intended: Instant, open_loop: bool) {
    events.clear();
    let started = Instant::now();
    let result = tokio::select! {
        biased;
        r = CatchUnwind(ctx.workload.call(Call { rng, events })) => r,
        // Abandoned after the drain: dropping the call drops its work; nothing is recorded.
        _ = ctx.recorder.abandoned() => return,
    };
    let finished = Instant::now();
    for &(i, at) in &events.since_start {
        events.measured.push((i, at.saturating_duration_since(intended).as_secs_f64()));
    }
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.kind()),
        Err(()) => Some("panic"),
    };
    ctx.recorder.record(
        shard,
        &Sample {
            intended,
            started,
            finished,
            outputs: &events.outputs,
            output_tokens: events.output_tokens,
            input_tokens: events.input_tokens,
            prefill: events.prefill,
            measured: &events.measured,
            error,
            open_loop,
        },
    );
}

/// One piece of a drive: open or closed loop, for a length of time (or until stopped).
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    Open { curve: RateCurve, arrivals: Arrivals },
    Closed(ConcurrencyCurve),
}

/// Splits a load shape into segments; `phase_secs` is the phase's length when known (a ramp
/// spans it).
pub fn segments(shape: &LoadShape, phase_secs: Option<f64>) -> Vec<(Segment, Option<f64>)> {
    let over = phase_secs.unwrap_or(60.0).max(1e-3);
    match shape {
        LoadShape::Closed { concurrency } => vec![(Segment::Closed(ConcurrencyCurve::Fixed(*concurrency)), None)],
        LoadShape::Open { rate, arrivals } => {
            vec![(Segment::Open { curve: RateCurve::Constant(rate.0), arrivals: *arrivals }, None)]
        }
        LoadShape::RampRate { from, to, arrivals } => {
            vec![(
                Segment::Open { curve: RateCurve::Linear { from: from.0, to: to.0, over }, arrivals: *arrivals },
                None,
            )]
        }
        LoadShape::RampConcurrency { from, to } => {
            vec![(Segment::Closed(ConcurrencyCurve::Linear { from: *from, to: *to, over }), None)]
        }
        LoadShape::Spike { base, peak, every, hold, arrivals } => vec![(
            Segment::Open {
                curve: RateCurve::Spike {
                    base: base.0,
                    peak: peak.0,
                    every: every.as_secs_f64(),
                    hold: hold.as_secs_f64(),
                },
                arrivals: *arrivals,
            },
            None,
        )],
        LoadShape::Stages { stages, arrivals } => stages
            .iter()
            .map(|s| {
                let seg = match s.target {
                    Target::Rate(r) => Segment::Open { curve: RateCurve::Constant(r.0), arrivals: *arrivals },
                    Target::Concurrency(c) => Segment::Closed(ConcurrencyCurve::Fixed(c)),
                };
                (seg, Some(s.duration.as_secs_f64()))
            })
            .collect(),
    }
}

/// Runs the segments one after the other from `start`, until they end, the phase ends
/// (`phase_end`: no request is issued at or after it) or `ctx.stop` is set.
pub async fn drive(
    ctx: Arc<DriveCtx>,
    segs: Vec<(Segment, Option<f64>)>,
    start: Instant,
    phase_end: Option<Instant>,
    shards: usize,
) {
    let mut seg_start = start;
    for (i, (seg, len)) in segs.into_iter().enumerate() {
        let own_end = len.map(|l| seg_start + Duration::from_secs_f64(l));
        let end = match (own_end, phase_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let seed = ctx.seed ^ (i as u64).wrapping_mul(0x9E37_79B9);
        match seg {
            Segment::Closed(c) => closed(ctx.clone(), c, seg_start, end, seed, shards).await,
            Segment::Open { curve, arrivals } => open(ctx.clone(), curve, arrivals, seg_start, end, seed, shards).await,
        }
        if ctx.stop.is_set() || ctx.cap.is_some_and(|c| ctx.issued.load(Ordering::Relaxed) >= c) {
            break;
        }
        match own_end {
            Some(e) if phase_end.is_none_or(|p| e < p) => seg_start = e,
            _ => break,
        }
    }
}

async fn closed(
    ctx: Arc<DriveCtx>,
    curve: ConcurrencyCurve,
    start: Instant,
    end: Option<Instant>,
    seed: u64,
    shards: usize,
) {
    let base = Rng::new(seed);
    let workers: Vec<_> = (0..curve.max())
        .map(|w| {
            let (ctx, curve, mut rng) = (ctx.clone(), curve.clone(), base.fork(w));
            tokio::spawn(async move {
                let mut events = Events::default();
                let shard = w as usize % shards;
                loop {
                    let now = Instant::now();
                    if ctx.stop.is_set() || end.is_some_and(|e| now >= e) {
                        break;
                    }
                    if w >= curve.target(now.saturating_duration_since(start).as_secs_f64()) {
                        // Not active at this point of the ramp: look again shortly.
                        let wake =
                            end.map_or(now + Duration::from_millis(5), |e| e.min(now + Duration::from_millis(5)));
                        clock::sleep_until(wake).await;
                        continue;
                    }
                    if !ctx.claim() {
                        break;
                    }
                    ctx.recorder.in_flight.fetch_add(1, Ordering::Relaxed);
                    execute(&ctx, shard, &mut rng, &mut events, now, false).await;
                    ctx.recorder.in_flight.fetch_sub(1, Ordering::Relaxed);
                    // Let other tasks (and the phase supervisor) run on a busy runtime.
                    tokio::task::consume_budget().await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

async fn open(
    ctx: Arc<DriveCtx>,
    curve: RateCurve,
    arrivals: Arrivals,
    start: Instant,
    end: Option<Instant>,
    seed: u64,
    shards: usize,
) {
    let handle = tokio::runtime::Handle::current();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let gen_ctx = ctx.clone();
    let spawned = std::thread::Builder::new().name("benchctl-arrivals".into()).spawn(move || {
        generate(&gen_ctx, &curve, arrivals, start, end, seed, shards, &handle);
        let _ = done_tx.send(());
    });
    if spawned.is_ok() {
        let _ = done_rx.await;
    }
}

/// The arrival loop: computes each intended start from the seeded process, waits for it
/// precisely, and hands the request to the runtime.
#[allow(clippy::too_many_arguments)]
fn generate(
    ctx: &Arc<DriveCtx>,
    curve: &RateCurve,
    arrivals: Arrivals,
    start: Instant,
    end: Option<Instant>,
    seed: u64,
    shards: usize,
    handle: &tokio::runtime::Handle,
) {
    crate::workload::mark_generator_thread();
    let mut rng = Rng::new(seed);
    let requests = Rng::new(seed ^ 0x5EED);
    let mut t = 0.0;
    for index in 0u64.. {
        let Some(next) = curve.advance(t, curve::gap(arrivals, &mut rng)) else {
            return;
        };
        t = next;
        let intended = at(start, t);
        if end.is_some_and(|e| intended >= e) {
            return;
        }
        // Wait in slices so a stop is noticed even between sparse arrivals.
        loop {
            if ctx.stop.is_set() {
                let shard = index as usize % shards;
                let limit = end.map_or(Instant::now(), |e| e.min(Instant::now()));
                let n = unsent(curve, arrivals, &mut rng, t, start, limit);
                ctx.recorder.record_unsent(shard, intended.min(Instant::now()), n);
                return;
            }
            let now = Instant::now();
            if intended <= now {
                break;
            }
            if intended - now > Duration::from_millis(20) {
                std::thread::sleep(Duration::from_millis(10));
            } else {
                clock::wait_until(intended);
            }
        }
        let shard = index as usize % shards;
        if ctx.recorder.in_flight.load(Ordering::Relaxed) >= ctx.max_in_flight {
            ctx.recorder.record_drop(shard, intended);
            continue;
        }
        if !ctx.claim() {
            return;
        }
        ctx.dispatched.fetch_add(1, Ordering::Relaxed);
        if Instant::now().saturating_duration_since(intended) > Duration::from_millis(1) {
            ctx.late_dispatches.fetch_add(1, Ordering::Relaxed);
        }
        ctx.recorder.in_flight.fetch_add(1, Ordering::Relaxed);
        let (ctx, mut rng) = (ctx.clone(), requests.fork(index));
        let mut request: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let mut events = Events::default();
            execute(&ctx, shard, &mut rng, &mut events, intended, true).await;
            ctx.recorder.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        // Send inline: the first poll runs here, on time, like a load generator writing the
        // request to the wire; only a request that has to wait moves to the runtime (which
        // polls it again and so registers its own waker).
        if request.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())).is_pending() {
            handle.spawn(request);
        }
    }
}

/// The intended instant of the arrival at `t` seconds from `start`, to the nearest nanosecond:
/// `t` is a running sum of gaps, and rounding keeps its last-bit error from deciding whether an
/// arrival at exactly the phase's end (the 100th of 50/s over 2 s) is inside it. The one rule
/// for every open loop: arrival k (k >= 1) is intended when its instant is before the end.
fn at(start: Instant, t: f64) -> Instant {
    start + Duration::from_nanos((t * 1e9).round() as u64)
}

/// Counts the intended arrivals from the one at `t` (seconds from `start`) up to `limit`
/// that the generator did not reach: they are reported as unsent, never silently lost
/// (the latest arrivals of a phase are the worst ones; forgetting them would be coordinated
/// omission at the phase's end).
/// An arrival counts when its intended instant is before the limit, by the same rule as the
/// arrivals that are sent (`at`), so a generator that falls behind reports the same intended
/// count as one that keeps up.
fn unsent(curve: &RateCurve, arrivals: Arrivals, rng: &mut Rng, mut t: f64, start: Instant, limit: Instant) -> u64 {
    let mut n = 0u64;
    while at(start, t) < limit && n < 1 << 40 {
        n += 1;
        match curve.advance(t, curve::gap(arrivals, rng)) {
            Some(next) => t = next,
            None => break,
        }
    }
    n
}
