//! The generation loop: one prefill of the prompt, then one decode step per token, greedy.
//! Every token's timestamp is taken after its id has been copied to the host, which waits
//! for the device: a token is "ready" when the caller could print it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{Result, Tensor};

use super::attention::argmax_rows;
use super::model::Net;

/// What one generation call did, per sequence of the batch.
#[derive(Debug, Clone)]
pub struct Generated {
    pub started: Instant,
    /// Prompt processing: from the start to the first token on the host.
    pub prefill: Duration,
    /// Per sequence: when each output token was on the host.
    pub times: Vec<Vec<Instant>>,
    /// Per sequence: the generated token ids.
    pub tokens: Vec<Vec<u32>>,
    /// KV cache bytes allocated for the call.
    pub kv_bytes: u64,
}

/// Generates up to `max_new` tokens after each prompt (all prompts of one length). With
/// `eos`, a sequence ends at that token (it is counted); otherwise exactly `max_new`.
pub fn generate(net: &Net, prompts: &[Vec<u32>], max_new: usize, eos: Option<u32>) -> Result<Generated> {
    generate_unless(net, prompts, max_new, eos, &AtomicBool::new(false))
}

/// [`generate`], stopping with an error before the prefill or the next token once `cancel`
/// is set (the request was abandoned).
pub fn generate_unless(
    net: &Net,
    prompts: &[Vec<u32>],
    max_new: usize,
    eos: Option<u32>,
    cancel: &AtomicBool,
) -> Result<Generated> {
    let cancelled = || cancel.load(Ordering::Relaxed);
    let b = prompts.len();
    let s = prompts.first().map(Vec::len).unwrap_or(0);
    if b == 0 || s == 0 || prompts.iter().any(|p| p.len() != s) {
        candle_core::bail!("a batch needs one or more prompts of one non-zero length");
    }
    let device = net.device();
    let started = Instant::now();
    let mut cache = net.new_cache(b, s + max_new);
    let kv_bytes = cache.bytes;
    let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
    let input = Tensor::from_vec(flat, (b, s), device)?;
    let mut times = vec![Vec::with_capacity(max_new); b];
    let mut tokens = vec![Vec::with_capacity(max_new); b];
    let mut done = vec![false; b];
    if cancelled() {
        candle_core::bail!("the request was abandoned");
    }
    let mut next = argmax_rows(&net.forward(&input, &mut cache)?)?;
    let first = Instant::now();
    let prefill = first - started;
    let mut now = first;
    for step in 0..max_new {
        for i in 0..b {
            if !done[i] {
                times[i].push(now);
                tokens[i].push(next[i]);
                done[i] = eos == Some(next[i]);
            }
        }
        if step + 1 == max_new || done.iter().all(|d| *d) {
            break;
        }
        if cancelled() {
            candle_core::bail!("the request was abandoned");
        }
        let input = Tensor::from_vec(next.clone(), (b, 1), device)?;
        next = argmax_rows(&net.forward(&input, &mut cache)?)?;
        now = Instant::now();
    }
    Ok(Generated { started, prefill, times, tokens, kv_bytes })
}
