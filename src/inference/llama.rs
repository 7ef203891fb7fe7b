//! The llama family (Llama, Mistral, SmolLM2, TinyLlama): RMS-norm decoder blocks with
//! rotary positions, grouped-query attention and a SwiGLU MLP. Weights come from a GGUF
//! file (quantised), a safetensors checkpoint, or random weights of a named shape.

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, IndexOp, Result, Tensor};
use candle_nn::VarBuilder;

use super::arch::{LlamaConfig, RandomWeights};
use super::attention::{attend, causal_mask, Cache};
use super::linear::Linear;

#[derive(Debug, Clone)]
struct Block {
    attn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    mlp_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

#[derive(Debug, Clone)]
pub struct Llama {
    pub config: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    head: Linear,
    cos: Tensor,
    sin: Tensor,
    /// GGUF files store Q and K permuted for interleaved rotary pairs (2i, 2i+1); Hugging
    /// Face checkpoints pair i with i + d/2.
    interleaved_rope: bool,
    /// The head shares the embedding's storage (counted once).
    tied: bool,
    device: Device,
    dtype: DType,
}

fn rope_tables(c: &LlamaConfig, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
    let hd = c.hidden_size / c.num_attention_heads;
    let max = c.max_position_embeddings.min(32_768);
    let inv: Vec<f32> = (0..hd).step_by(2).map(|i| 1.0 / (c.rope_theta as f32).powf(i as f32 / hd as f32)).collect();
    let inv = Tensor::new(inv.as_slice(), device)?.reshape((1, hd / 2))?;
    let t = Tensor::arange(0u32, max as u32, device)?.to_dtype(DType::F32)?.reshape((max, 1))?;
    let freqs = t.matmul(&inv)?;
    Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
}

fn md<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    ct.metadata.get(key).ok_or_else(|| candle_core::Error::Msg(format!("the GGUF metadata has no `{key}`")))
}

impl Llama {
    /// Reads the configuration from GGUF metadata (architecture `llama`).
    pub fn gguf_config(ct: &gguf_file::Content) -> Result<LlamaConfig> {
        let arch = md(ct, "general.architecture")?.to_string()?.clone();
        if arch != "llama" {
            candle_core::bail!(
                "the GGUF file holds a `{arch}` model; benchctl runs GGUF models of the llama family (Llama, Mistral, SmolLM2, TinyLlama)"
            );
        }
        let u = |k: &str| -> Result<usize> { Ok(md(ct, &format!("llama.{k}"))?.to_u32()? as usize) };
        let heads = u("attention.head_count")?;
        let embed = ct.tensor_infos.get("token_embd.weight").map(|t| t.shape.dims().to_vec());
        let vocab = match (ct.metadata.get("llama.vocab_size"), embed) {
            (Some(v), _) => v.to_u32()? as usize,
            (None, Some(dims)) => dims[0],
            _ => candle_core::bail!("the GGUF file has no token embedding"),
        };
        Ok(LlamaConfig {
            vocab_size: vocab,
            hidden_size: u("embedding_length")?,
            intermediate_size: u("feed_forward_length")?,
            num_hidden_layers: u("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: u("attention.head_count_kv").unwrap_or(heads),
            rope_theta: md(ct, "llama.rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0) as f64,
            rms_norm_eps: md(ct, "llama.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            max_position_embeddings: u("context_length").unwrap_or(4096),
            tie_word_embeddings: !ct.tensor_infos.contains_key("output.weight"),
            eos_token_id: ct.metadata.get("tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()),
        })
    }

    /// Loads a GGUF model; `dense_prefill` keeps a dequantised f32 copy of every matrix for
    /// multi-token (prompt) calls.
    pub fn from_gguf<R: Read + Seek>(
        ct: &gguf_file::Content,
        r: &mut R,
        device: &Device,
        dense_prefill: bool,
    ) -> Result<Llama> {
        let config = Self::gguf_config(ct)?;
        let mut q = |name: &str| ct.tensor(r, name, device);
        let embed_q = q("token_embd.weight")?;
        let embed = embed_q.dequantize(device)?;
        let tied = config.tie_word_embeddings;
        let head = if tied { Linear::quant(embed_q, false)? } else { Linear::quant(q("output.weight")?, false)? };
        let norm = q("output_norm.weight")?.dequantize(device)?;
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let mut lin =
                |n: &str| -> Result<Linear> { Linear::quant(q(&format!("blk.{l}.{n}.weight"))?, dense_prefill) };
            let wq = lin("attn_q")?;
            let wk = lin("attn_k")?;
            let wv = lin("attn_v")?;
            let wo = lin("attn_output")?;
            let gate = lin("ffn_gate")?;
            let up = lin("ffn_up")?;
            let down = lin("ffn_down")?;
            let attn_norm = q(&format!("blk.{l}.attn_norm.weight"))?.dequantize(device)?;
            let mlp_norm = q(&format!("blk.{l}.ffn_norm.weight"))?.dequantize(device)?;
            blocks.push(Block { attn_norm, wq, wk, wv, wo, mlp_norm, gate, up, down });
        }
        let (cos, sin) = rope_tables(&config, DType::F32, device)?;
        Ok(Llama {
            config,
            embed,
            blocks,
            norm,
            head,
            cos,
            sin,
            interleaved_rope: true,
            // The dequantised embedding and the quantised head are both held.
            tied: false,
            device: device.clone(),
            dtype: DType::F32,
        })
    }

    /// Loads Hugging Face llama weights (`model.layers.N...`).
    pub fn load(vb: VarBuilder, config: &LlamaConfig) -> Result<Llama> {
        let c = config;
        let hd = c.hidden_size / c.num_attention_heads;
        let kv = c.num_key_value_heads * hd;
        let lin = |vb: VarBuilder, i: usize, o: usize| -> Result<Linear> {
            Ok(Linear::dense(vb.get((o, i), "weight")?, None))
        };
        let m = vb.pp("model");
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let b = m.pp(format!("layers.{l}"));
            let (a, f) = (b.pp("self_attn"), b.pp("mlp"));
            blocks.push(Block {
                attn_norm: b.get(c.hidden_size, "input_layernorm.weight")?,
                wq: lin(a.pp("q_proj"), c.hidden_size, c.hidden_size)?,
                wk: lin(a.pp("k_proj"), c.hidden_size, kv)?,
                wv: lin(a.pp("v_proj"), c.hidden_size, kv)?,
                wo: lin(a.pp("o_proj"), c.hidden_size, c.hidden_size)?,
                mlp_norm: b.get(c.hidden_size, "post_attention_layernorm.weight")?,
                gate: lin(f.pp("gate_proj"), c.hidden_size, c.intermediate_size)?,
                up: lin(f.pp("up_proj"), c.hidden_size, c.intermediate_size)?,
                down: lin(f.pp("down_proj"), c.intermediate_size, c.hidden_size)?,
            });
        }
        let embed = m.get((c.vocab_size, c.hidden_size), "embed_tokens.weight")?;
        let tied = c.tie_word_embeddings || !vb.contains_tensor("lm_head.weight");
        let head =
            if tied { Linear::dense(embed.clone(), None) } else { lin(vb.pp("lm_head"), c.hidden_size, c.vocab_size)? };
        let (cos, sin) = rope_tables(c, vb.dtype(), vb.device())?;
        Ok(Llama {
            config: c.clone(),
            embed,
            blocks,
            norm: m.get(c.hidden_size, "norm.weight")?,
            head,
            cos,
            sin,
            interleaved_rope: false,
            tied,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Random weights in the exact shapes of `config`.
    pub fn random(config: &LlamaConfig, w: &RandomWeights) -> Result<Llama> {
        let c = config;
        let hd = c.hidden_size / c.num_attention_heads;
        let kv = c.num_key_value_heads * hd;
        let lin =
            |name: String, i: usize, o: usize| -> Result<Linear> { Ok(Linear::dense(w.matrix(&name, &[o, i])?, None)) };
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            blocks.push(Block {
                attn_norm: w.gain(&format!("{p}.input_layernorm.weight"), c.hidden_size)?,
                wq: lin(format!("{p}.self_attn.q_proj"), c.hidden_size, c.hidden_size)?,
                wk: lin(format!("{p}.self_attn.k_proj"), c.hidden_size, kv)?,
                wv: lin(format!("{p}.self_attn.v_proj"), c.hidden_size, kv)?,
                wo: lin(format!("{p}.self_attn.o_proj"), c.hidden_size, c.hidden_size)?,
                mlp_norm: w.gain(&format!("{p}.post_attention_layernorm.weight"), c.hidden_size)?,
                gate: lin(format!("{p}.mlp.gate_proj"), c.hidden_size, c.intermediate_size)?,
                up: lin(format!("{p}.mlp.up_proj"), c.hidden_size, c.intermediate_size)?,
                down: lin(format!("{p}.mlp.down_proj"), c.intermediate_size, c.hidden_size)?,
            });
        }
        let embed = w.matrix("model.embed_tokens.weight", &[c.vocab_size, c.hidden_size])?;
        let head = if c.tie_word_embeddings {
            Linear::dense(embed.clone(), None)
        } else {
            lin("lm_head".into(), c.hidden_size, c.vocab_size)?
        };
        let (cos, sin) = rope_tables(c, w.dtype, &w.device)?;
        Ok(Llama {
            config: c.clone(),
            embed,
            blocks,
            norm: w.gain("model.norm.weight", c.hidden_size)?,
            head,
            cos,
            sin,
            interleaved_rope: false,
            tied: c.tie_word_embeddings,
            device: w.device.clone(),
            dtype: w.dtype,
        })
    }

    /// Dense weights under their Hugging Face names (quantised GGUF layers are left out).
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![
            ("model.embed_tokens.weight".to_string(), self.embed.clone()),
            ("model.norm.weight".to_string(), self.norm.clone()),
        ];
        let dense = |l: &Linear| match l {
            Linear::Dense { weight, .. } => Some(weight.clone()),
            Linear::Quant { .. } => None,
        };
        if !self.tied {
            out.extend(dense(&self.head).map(|w| ("lm_head.weight".to_string(), w)));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.push((format!("{p}.input_layernorm.weight"), b.attn_norm.clone()));
            out.push((format!("{p}.post_attention_layernorm.weight"), b.mlp_norm.clone()));
            for (name, l) in [
                ("self_attn.q_proj", &b.wq),
                ("self_attn.k_proj", &b.wk),
                ("self_attn.v_proj", &b.wv),
                ("self_attn.o_proj", &b.wo),
                ("mlp.gate_proj", &b.gate),
                ("mlp.up_proj", &b.up),
                ("mlp.down_proj", &b.down),
            ] {
                out.extend(dense(l).map(|w| (format!("{p}.{name}.weight"), w)));
            }
        }
        out
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn kv_bytes_per_token(&self) -> u64 {
        let c = &self.config;
        let hd = c.hidden_size / c.num_attention_heads;
        (2 * c.num_hidden_layers * c.num_key_value_heads * hd * self.dtype.size_in_bytes()) as u64
    }

    pub fn weight_bytes(&self) -> u64 {
        let t = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        let blocks: u64 = self
            .blocks
            .iter()
            .map(|b| {
                t(&b.attn_norm)
                    + t(&b.mlp_norm)
                    + [&b.wq, &b.wk, &b.wv, &b.wo, &b.gate, &b.up, &b.down].iter().map(|l| l.bytes()).sum::<u64>()
            })
            .sum();
        t(&self.embed) + t(&self.norm) + blocks + if self.tied { 0 } else { self.head.bytes() }
    }

    pub fn new_cache(&self, batch: usize, max_len: usize) -> Cache {
        Cache::new(self.config.num_hidden_layers, batch, max_len, self.kv_bytes_per_token())
    }

    fn rope(&self, x: &Tensor, past: usize) -> Result<Tensor> {
        let s = x.dim(2)?;
        let cos = self.cos.narrow(0, past, s)?;
        let sin = self.sin.narrow(0, past, s)?;
        if self.interleaved_rope {
            candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
    }

    /// `tokens` (b, s) after `cache.len()` cached positions: the last position's logits
    /// (b, vocab) in f32.
    pub fn forward(&self, tokens: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let c = &self.config;
        let (b, s) = tokens.dims2()?;
        let past = cache.len();
        if past + s > self.cos.dim(0)? {
            candle_core::bail!(
                "the sequence would reach {} tokens; this model has {} positions",
                past + s,
                self.cos.dim(0)?
            );
        }
        let (h, h_kv) = (c.num_attention_heads, c.num_key_value_heads);
        let hd = c.hidden_size / h;
        let eps = c.rms_norm_eps as f32;
        let mask = if s > 1 { Some(causal_mask(s, past, &self.device)?) } else { None };
        let mut x =
            self.embed.embedding(&tokens.flatten_all()?)?.reshape((b, s, c.hidden_size))?.to_dtype(self.dtype)?;
        for (blk, kv) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            let a = candle_nn::ops::rms_norm(&x, &blk.attn_norm, eps)?;
            let q = blk.wq.forward(&a)?.reshape((b, s, h, hd))?.transpose(1, 2)?;
            let k = blk.wk.forward(&a)?.reshape((b, s, h_kv, hd))?.transpose(1, 2)?;
            let v = blk.wv.forward(&a)?.reshape((b, s, h_kv, hd))?.transpose(1, 2)?.contiguous()?;
            let q = self.rope(&q, past)?;
            let k = self.rope(&k, past)?;
            let (k, v) = kv.append(&k, &v)?;
            let y = attend(&q, &k, &v, mask.as_ref())?;
            x = (x + blk.wo.forward(&y)?)?;
            let m = candle_nn::ops::rms_norm(&x, &blk.mlp_norm, eps)?;
            let g = candle_nn::ops::silu(&blk.gate.forward(&m)?)?;
            let u = blk.up.forward(&m)?;
            x = (x + blk.down.forward(&(g * u)?)?)?;
        }
        let last = x.i((.., s - 1..s, ..))?;
        let last = candle_nn::ops::rms_norm(&last.contiguous()?, &self.norm, eps)?.reshape((b, c.hidden_size))?;
        self.head.forward(&last)?.to_dtype(DType::F32)
    }
}
