//! Causal self-attention over a per-request KV cache, shared by both model families.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::kv_cache::KvCache;

/// One sequence group's state: a KV cache per layer, preallocated for the whole request.
pub struct Cache {
    pub layers: Vec<KvCache>,
    /// Bytes of K and V held when full (all layers).
    pub bytes: u64,
}

impl Cache {
    /// `per_token` is the K+V bytes one token of one sequence adds over all layers.
    pub fn new(layers: usize, batch: usize, max_len: usize, per_token: u64) -> Cache {
        Cache {
            layers: (0..layers).map(|_| KvCache::new(2, max_len.max(1))).collect(),
            bytes: per_token * (batch * max_len) as u64,
        }
    }

    pub fn len(&self) -> usize {
        self.layers.first().map(KvCache::current_seq_len).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The u8 mask of future positions for `seq` new tokens after `past` cached ones.
pub fn causal_mask(seq: usize, past: usize, device: &Device) -> Result<Tensor> {
    let kv = past + seq;
    let mask: Vec<u8> = (0..seq).flat_map(|i| (0..kv).map(move |j| u8::from(j > past + i))).collect();
    Tensor::from_slice(&mask, (seq, kv), device)
}

/// Attention of `q` (b, h, s, d) over `k`, `v` (b, h_kv, t, d), grouped-query when h > h_kv.
/// `mask` (s, t) marks positions to hide.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, s, d) = q.dims4()?;
    let h_kv = k.dim(1)?;
    let rep = h / h_kv;
    let (k, v) = if rep > 1 {
        (
            candle_transformers::utils::repeat_kv(k.contiguous()?, rep)?,
            candle_transformers::utils::repeat_kv(v.contiguous()?, rep)?,
        )
    } else {
        (k.clone(), v.clone())
    };
    let q = (q * (1.0 / (d as f64).sqrt()))?;
    let att = q.matmul(&k.t()?)?;
    let att = match mask {
        Some(m) => {
            let neg = Tensor::new(f32::NEG_INFINITY, att.device())?.to_dtype(att.dtype())?;
            m.broadcast_as(att.shape())?.where_cond(&neg.broadcast_as(att.shape())?, &att)?
        }
        None => att,
    };
    // Softmax in f32 whatever the model's dtype: half-precision sums lose the small weights.
    let dt = att.dtype();
    let att = if dt == DType::F32 {
        candle_nn::ops::softmax_last_dim(&att)?
    } else {
        candle_nn::ops::softmax_last_dim(&att.to_dtype(DType::F32)?)?.to_dtype(dt)?
    };
    let y = att.matmul(&v.contiguous()?)?;
    // (b, h, s, d) -> (b, s, h*d)
    y.transpose(1, 2)?.reshape((b, s, h * d))
}

/// The index of the largest value in each row of (b, vocab) logits, copied to the host:
/// this copy is the device synchronisation that makes a token's timestamp honest.
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>> {
    logits.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec1::<u32>()
}
