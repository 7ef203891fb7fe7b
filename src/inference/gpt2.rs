//! GPT-2 (and DialoGPT, which is GPT-2): pre-norm decoder blocks with learned positions,
//! fused QKV projection, tanh-approximated GELU and a head tied to the token embedding.
//! Candle has no GPT-2 model; this one runs in f32, f16 and bf16 with a KV cache.

use candle_core::{DType, Device, IndexOp, Result, Tensor};
use candle_nn::VarBuilder;

use super::arch::{Gpt2Config, RandomWeights};
use super::attention::{attend, causal_mask, Cache};
use super::linear::Linear;

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
}

#[derive(Debug, Clone)]
pub struct Gpt2 {
    pub config: Gpt2Config,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    device: Device,
    dtype: DType,
}

impl Gpt2 {
    /// Loads Hugging Face GPT-2 weights (with or without the `transformer.` prefix). The
    /// checkpoint's Conv1D weights are (in, out); they are stored transposed as (out, in).
    pub fn load(vb: VarBuilder, config: &Gpt2Config) -> Result<Gpt2> {
        let vb = if vb.contains_tensor("transformer.wte.weight") { vb.pp("transformer") } else { vb };
        let (d, eps) = (config.n_embd, config.layer_norm_epsilon as f32);
        let ln = |vb: VarBuilder| -> Result<LayerNorm> {
            Ok(LayerNorm { weight: vb.get(d, "weight")?, bias: vb.get(d, "bias")?, eps })
        };
        let conv = |vb: VarBuilder, i: usize, o: usize| -> Result<Linear> {
            let w = vb.get((i, o), "weight")?.t()?.contiguous()?;
            Ok(Linear::dense(w, Some(vb.get(o, "bias")?)))
        };
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let b = vb.pp(format!("h.{l}"));
            blocks.push(Block {
                ln_1: ln(b.pp("ln_1"))?,
                c_attn: conv(b.pp("attn.c_attn"), d, 3 * d)?,
                attn_proj: conv(b.pp("attn.c_proj"), d, d)?,
                ln_2: ln(b.pp("ln_2"))?,
                c_fc: conv(b.pp("mlp.c_fc"), d, 4 * d)?,
                mlp_proj: conv(b.pp("mlp.c_proj"), 4 * d, d)?,
            });
        }
        Ok(Gpt2 {
            config: config.clone(),
            wte: vb.get((config.vocab_size, d), "wte.weight")?,
            wpe: vb.get((config.n_positions, d), "wpe.weight")?,
            blocks,
            ln_f: ln(vb.pp("ln_f"))?,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Random weights in the exact shapes of `config`, named as in the Hugging Face
    /// checkpoint (so [`Gpt2::tensors`] can write them out as one).
    pub fn random(config: &Gpt2Config, w: &RandomWeights) -> Result<Gpt2> {
        let d = config.n_embd;
        let ln = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: w.gain(&format!("{name}.weight"), d)?,
                bias: w.tensor(&format!("{name}.bias"), &[d], 0.0, 0.02)?,
                eps: config.layer_norm_epsilon as f32,
            })
        };
        let lin = |name: &str, i: usize, o: usize| -> Result<Linear> {
            Ok(Linear::dense(
                w.matrix(&format!("{name}.weight"), &[o, i])?,
                Some(w.tensor(&format!("{name}.bias"), &[o], 0.0, 0.02)?),
            ))
        };
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let p = format!("h.{l}");
            blocks.push(Block {
                ln_1: ln(&format!("{p}.ln_1"))?,
                c_attn: lin(&format!("{p}.attn.c_attn"), d, 3 * d)?,
                attn_proj: lin(&format!("{p}.attn.c_proj"), d, d)?,
                ln_2: ln(&format!("{p}.ln_2"))?,
                c_fc: lin(&format!("{p}.mlp.c_fc"), d, 4 * d)?,
                mlp_proj: lin(&format!("{p}.mlp.c_proj"), 4 * d, d)?,
            });
        }
        Ok(Gpt2 {
            config: config.clone(),
            wte: w.matrix("wte.weight", &[config.vocab_size, d])?,
            wpe: w.tensor("wpe.weight", &[config.n_positions, d], 0.0, 0.01)?,
            blocks,
            ln_f: ln("ln_f")?,
            device: w.device.clone(),
            dtype: w.dtype,
        })
    }

    /// The weights as a Hugging Face checkpoint would name them (Conv1D layout, (in, out)).
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = vec![("wte.weight".to_string(), self.wte.clone()), ("wpe.weight".to_string(), self.wpe.clone())];
        let mut ln = |name: String, l: &LayerNorm| {
            out.push((format!("{name}.weight"), l.weight.clone()));
            out.push((format!("{name}.bias"), l.bias.clone()));
        };
        for (i, b) in self.blocks.iter().enumerate() {
            ln(format!("h.{i}.ln_1"), &b.ln_1);
            ln(format!("h.{i}.ln_2"), &b.ln_2);
        }
        ln("ln_f".into(), &self.ln_f);
        for (i, b) in self.blocks.iter().enumerate() {
            for (name, lin) in [
                ("attn.c_attn", &b.c_attn),
                ("attn.c_proj", &b.attn_proj),
                ("mlp.c_fc", &b.c_fc),
                ("mlp.c_proj", &b.mlp_proj),
            ] {
                if let Linear::Dense { weight, bias } = lin {
                    out.push((format!("h.{i}.{name}.weight"), weight.t()?.contiguous()?));
                    if let Some(bias) = bias {
                        out.push((format!("h.{i}.{name}.bias"), bias.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// K and V bytes that one token of one sequence adds, over all layers.
    pub fn kv_bytes_per_token(&self) -> u64 {
        (2 * self.config.n_layer * self.config.n_embd * self.dtype.size_in_bytes()) as u64
    }

    pub fn weight_bytes(&self) -> u64 {
        let t = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        let ln = |l: &LayerNorm| t(&l.weight) + t(&l.bias);
        t(&self.wte)
            + t(&self.wpe)
            + ln(&self.ln_f)
            + self
                .blocks
                .iter()
                .map(|b| {
                    ln(&b.ln_1)
                        + ln(&b.ln_2)
                        + b.c_attn.bytes()
                        + b.attn_proj.bytes()
                        + b.c_fc.bytes()
                        + b.mlp_proj.bytes()
                })
                .sum::<u64>()
    }

    pub fn new_cache(&self, batch: usize, max_len: usize) -> Cache {
        Cache::new(self.config.n_layer, batch, max_len, self.kv_bytes_per_token())
    }

    /// `tokens` (b, s) u32 after `cache.len()` cached positions; the logits (b, vocab) of the
    /// last position, in f32.
    pub fn forward(&self, tokens: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let (b, s) = tokens.dims2()?;
        let past = cache.len();
        if past + s > self.config.n_positions {
            candle_core::bail!(
                "the sequence would reach {} tokens; this model has {} positions",
                past + s,
                self.config.n_positions
            );
        }
        let (d, h) = (self.config.n_embd, self.config.n_head);
        let hd = d / h;
        let positions = Tensor::arange(past as u32, (past + s) as u32, &self.device)?;
        let mut x = self
            .wte
            .embedding(&tokens.flatten_all()?)?
            .reshape((b, s, d))?
            .broadcast_add(&self.wpe.embedding(&positions)?)?;
        let mask = if s > 1 { Some(causal_mask(s, past, &self.device)?) } else { None };
        for (block, kv) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let a = block.ln_1.forward(&x)?;
            let qkv = block.c_attn.forward(&a)?.reshape((b, s, 3, h, hd))?;
            let q = qkv.i((.., .., 0))?.transpose(1, 2)?.contiguous()?;
            let k = qkv.i((.., .., 1))?.transpose(1, 2)?.contiguous()?;
            let v = qkv.i((.., .., 2))?.transpose(1, 2)?.contiguous()?;
            let (k, v) = kv.append(&k, &v)?;
            let y = attend(&q, &k, &v, mask.as_ref())?;
            x = (x + block.attn_proj.forward(&y)?)?;
            let m = block.ln_2.forward(&x)?;
            let m = block.c_fc.forward(&m)?.gelu()?;
            x = (x + block.mlp_proj.forward(&m)?)?;
        }
        let last = x.i((.., s - 1..s, ..))?;
        let last = self.ln_f.forward(&last)?.reshape((b, d))?;
        last.matmul(&self.wte.t()?)?.to_dtype(DType::F32)
    }
}
