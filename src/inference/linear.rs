//! A linear layer over dense or quantised weights.
//!
//! Quantised (GGUF) weights multiply a single row fastest through candle's quantised
//! matrix-vector kernels, which read 4-5 bits per weight: that is decoding. A prompt is many
//! rows at once, and there candle's quantised path is no faster per row than decoding (it
//! quantises each activation row and runs one dot product per output, with no reuse of the
//! weights across rows), which is why prefill used to cost as much per token as a decode step.
//! For those calls a dequantised copy goes through the dense GEMM, which reuses each weight
//! across all rows of the prompt.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Module, Result, Tensor};

/// Rows at or above which a quantised layer uses its dense copy (when it has one). Measured
/// on SmolLM2-135M Q4_1, 2 cores: a decode step costs 123 / 225 / 443 ms at batch 2 / 4 / 8
/// on the quantised kernels (linear in rows) and 160 / 168 / 204 ms on the dense copy.
pub const DENSE_FROM_ROWS: usize = 3;

#[derive(Debug, Clone)]
pub enum Linear {
    /// `weight` is (out, in), as in PyTorch's `nn.Linear`.
    Dense { weight: Tensor, bias: Option<Tensor> },
    /// Quantised weights, with an optional dequantised (out, in) copy for multi-row calls.
    Quant { q: QMatMul, dense: Option<Tensor>, out: usize },
}

impl Linear {
    pub fn dense(weight: Tensor, bias: Option<Tensor>) -> Linear {
        Linear::Dense { weight, bias }
    }

    /// A quantised layer; with `dense_prefill` also a dequantised f32 copy.
    pub fn quant(t: QTensor, dense_prefill: bool) -> Result<Linear> {
        let out = t.shape().dims()[0];
        let dense = if dense_prefill { Some(t.dequantize(&t.device())?.to_dtype(DType::F32)?) } else { None };
        Ok(Linear::Quant { q: QMatMul::from_qtensor(t)?, dense, out })
    }

    /// Bytes of weights held (quantised size plus any dense copy).
    pub fn bytes(&self) -> u64 {
        let t = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        match self {
            Linear::Dense { weight, bias } => t(weight) + bias.as_ref().map(t).unwrap_or(0),
            Linear::Quant { q, dense, .. } => {
                let qb = match q {
                    QMatMul::QTensor(q) => q.storage_size_in_bytes() as u64,
                    QMatMul::Tensor(w) | QMatMul::TensorF16(w) => t(w),
                };
                qb + dense.as_ref().map(t).unwrap_or(0)
            }
        }
    }

    pub fn out_features(&self) -> usize {
        match self {
            Linear::Dense { weight, .. } => weight.dims()[0],
            Linear::Quant { out, .. } => *out,
        }
    }

    /// `x` is (..., in); the result (..., out).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().expect("a linear layer takes at least one dimension");
        let rows = x.elem_count() / k.max(1);
        let x2 = x.reshape((rows, k))?;
        let y = match self {
            Linear::Dense { weight, bias } => {
                let y = x2.matmul(&weight.t()?)?;
                match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                }
            }
            Linear::Quant { dense: Some(w), .. } if rows >= DENSE_FROM_ROWS => {
                x2.to_dtype(DType::F32)?.matmul(&w.t()?)?.to_dtype(x.dtype())?
            }
            Linear::Quant { q, .. } => q.forward(&x2)?,
        };
        let mut out = dims;
        *out.last_mut().unwrap() = y.dims()[1];
        y.reshape(out)
    }
}
