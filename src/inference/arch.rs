//! Model configurations: the exact shapes of the architectures that synthetic models
//! reproduce, read from a Hugging Face `config.json`, or from GGUF metadata; and random
//! weights in those shapes, deterministic from the seed.

use candle_core::{DType, Device, Result, Tensor};
use serde::Deserialize;

use crate::dsl::model::SyntheticArch;
use crate::random::Rng;

/// A GPT-2 family model (GPT-2, DialoGPT).
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub layer_norm_epsilon: f64,
    pub eos_token_id: Option<u32>,
}

/// A llama family model (Llama, Mistral, SmolLM2, TinyLlama).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub eos_token_id: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Config {
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

impl Config {
    /// The shapes of a named architecture.
    pub fn of(arch: SyntheticArch) -> Config {
        let gpt2 = |n_layer, n_embd, n_head| {
            Config::Gpt2(Gpt2Config {
                vocab_size: 50257,
                n_positions: 1024,
                n_embd,
                n_layer,
                n_head,
                layer_norm_epsilon: 1e-5,
                eos_token_id: Some(50256),
            })
        };
        match arch {
            SyntheticArch::Gpt2 => gpt2(12, 768, 12),
            SyntheticArch::Gpt2Medium | SyntheticArch::DialogptMedium => gpt2(24, 1024, 16),
            SyntheticArch::Smollm2_135m => Config::Llama(LlamaConfig {
                vocab_size: 49152,
                hidden_size: 576,
                intermediate_size: 1536,
                num_hidden_layers: 30,
                num_attention_heads: 9,
                num_key_value_heads: 3,
                rope_theta: 100_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: true,
                eos_token_id: Some(2),
            }),
            SyntheticArch::Tinyllama1_1b => Config::Llama(LlamaConfig {
                vocab_size: 32000,
                hidden_size: 2048,
                intermediate_size: 5632,
                num_hidden_layers: 22,
                num_attention_heads: 32,
                num_key_value_heads: 4,
                rope_theta: 10_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 2048,
                tie_word_embeddings: false,
                eos_token_id: Some(2),
            }),
            SyntheticArch::Llama3_8b => Config::Llama(LlamaConfig {
                vocab_size: 128_256,
                hidden_size: 4096,
                intermediate_size: 14336,
                num_hidden_layers: 32,
                num_attention_heads: 32,
                num_key_value_heads: 8,
                rope_theta: 500_000.0,
                rms_norm_eps: 1e-5,
                max_position_embeddings: 8192,
                tie_word_embeddings: false,
                eos_token_id: Some(128_001),
            }),
        }
    }

    pub fn family(&self) -> &'static str {
        match self {
            Config::Gpt2(_) => "gpt2",
            Config::Llama(_) => "llama",
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Config::Gpt2(c) => c.vocab_size,
            Config::Llama(c) => c.vocab_size,
        }
    }

    pub fn eos(&self) -> Option<u32> {
        match self {
            Config::Gpt2(c) => c.eos_token_id,
            Config::Llama(c) => c.eos_token_id,
        }
    }

    /// Parameter count (embeddings included once when tied).
    pub fn parameters(&self) -> u64 {
        match self {
            Config::Gpt2(c) => {
                let (d, l) = (c.n_embd as u64, c.n_layer as u64);
                let block = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
                c.vocab_size as u64 * d + c.n_positions as u64 * d + l * block + 2 * d
            }
            Config::Llama(c) => {
                let (d, l) = (c.hidden_size as u64, c.num_hidden_layers as u64);
                let kv = (c.num_key_value_heads * (c.hidden_size / c.num_attention_heads)) as u64;
                let block = 2 * d + d * d * 2 + 2 * d * kv + 3 * d * c.intermediate_size as u64;
                let emb = c.vocab_size as u64 * d * if c.tie_word_embeddings { 1 } else { 2 };
                emb + l * block + d
            }
        }
    }

    /// The Hugging Face `config.json` of this configuration (read back by `from_hf_json`).
    pub fn to_hf_json(&self) -> serde_json::Value {
        match self {
            Config::Gpt2(c) => serde_json::json!({
                "model_type": "gpt2",
                "vocab_size": c.vocab_size,
                "n_positions": c.n_positions,
                "n_embd": c.n_embd,
                "n_layer": c.n_layer,
                "n_head": c.n_head,
                "layer_norm_epsilon": c.layer_norm_epsilon,
                "eos_token_id": c.eos_token_id,
            }),
            Config::Llama(c) => serde_json::json!({
                "model_type": "llama",
                "vocab_size": c.vocab_size,
                "hidden_size": c.hidden_size,
                "intermediate_size": c.intermediate_size,
                "num_hidden_layers": c.num_hidden_layers,
                "num_attention_heads": c.num_attention_heads,
                "num_key_value_heads": c.num_key_value_heads,
                "rope_theta": c.rope_theta,
                "rms_norm_eps": c.rms_norm_eps,
                "max_position_embeddings": c.max_position_embeddings,
                "tie_word_embeddings": c.tie_word_embeddings,
                "eos_token_id": c.eos_token_id,
            }),
        }
    }

    /// Parses a Hugging Face `config.json` (model_type `gpt2` or `llama`/`mistral`).
    pub fn from_hf_json(text: &str) -> std::result::Result<Config, String> {
        #[derive(Deserialize)]
        struct Probe {
            model_type: Option<String>,
        }
        #[derive(Deserialize)]
        struct Gpt2Json {
            vocab_size: usize,
            n_positions: Option<usize>,
            n_ctx: Option<usize>,
            n_embd: usize,
            n_layer: usize,
            n_head: usize,
            layer_norm_epsilon: Option<f64>,
            eos_token_id: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct LlamaJson {
            vocab_size: usize,
            hidden_size: usize,
            intermediate_size: usize,
            num_hidden_layers: usize,
            num_attention_heads: usize,
            num_key_value_heads: Option<usize>,
            rope_theta: Option<f64>,
            rms_norm_eps: Option<f64>,
            max_position_embeddings: Option<usize>,
            tie_word_embeddings: Option<bool>,
            eos_token_id: Option<serde_json::Value>,
        }
        // `eos_token_id` is a number or a list of numbers.
        fn eos(v: Option<serde_json::Value>) -> Option<u32> {
            match v? {
                serde_json::Value::Number(n) => n.as_u64().map(|n| n as u32),
                serde_json::Value::Array(a) => a.first()?.as_u64().map(|n| n as u32),
                _ => None,
            }
        }
        let probe: Probe = serde_json::from_str(text).map_err(|e| format!("config.json is not valid JSON: {e}"))?;
        match probe.model_type.as_deref() {
            Some("gpt2") => {
                let c: Gpt2Json = serde_json::from_str(text).map_err(|e| format!("config.json (gpt2): {e}"))?;
                Ok(Config::Gpt2(Gpt2Config {
                    vocab_size: c.vocab_size,
                    n_positions: c.n_positions.or(c.n_ctx).unwrap_or(1024),
                    n_embd: c.n_embd,
                    n_layer: c.n_layer,
                    n_head: c.n_head,
                    layer_norm_epsilon: c.layer_norm_epsilon.unwrap_or(1e-5),
                    eos_token_id: eos(c.eos_token_id),
                }))
            }
            Some("llama" | "mistral") => {
                let c: LlamaJson = serde_json::from_str(text).map_err(|e| format!("config.json (llama): {e}"))?;
                Ok(Config::Llama(LlamaConfig {
                    vocab_size: c.vocab_size,
                    hidden_size: c.hidden_size,
                    intermediate_size: c.intermediate_size,
                    num_hidden_layers: c.num_hidden_layers,
                    num_attention_heads: c.num_attention_heads,
                    num_key_value_heads: c.num_key_value_heads.unwrap_or(c.num_attention_heads),
                    rope_theta: c.rope_theta.unwrap_or(10_000.0),
                    rms_norm_eps: c.rms_norm_eps.unwrap_or(1e-5),
                    max_position_embeddings: c.max_position_embeddings.unwrap_or(4096),
                    tie_word_embeddings: c.tie_word_embeddings.unwrap_or(false),
                    eos_token_id: eos(c.eos_token_id),
                }))
            }
            Some(other) => Err(format!(
                "config.json declares model_type `{other}`; benchctl runs `gpt2` (GPT-2, DialoGPT) and `llama`/`mistral` (Llama, Mistral, SmolLM2, TinyLlama) safetensors models"
            )),
            None => Err("config.json has no `model_type`".into()),
        }
    }
}

/// Random weights for synthetic models: each tensor from its own stream (seed and name),
/// uniform with the standard deviation GPT-2 and llama use at initialisation (0.02), filled
/// on all cores. The numbers are real weights of the right shape, not a stand-in for them:
/// every kernel runs as it would on a trained model.
pub struct RandomWeights {
    pub seed: u64,
    pub dtype: DType,
    pub device: Device,
}

impl RandomWeights {
    fn stream(&self, name: &str) -> Rng {
        let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        Rng::new(self.seed ^ h)
    }

    /// Values uniform around `center` with standard deviation `std`.
    pub fn tensor(&self, name: &str, shape: &[usize], center: f32, std: f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let half = std * 3f32.sqrt();
        let mut data = vec![0f32; n];
        let root = self.stream(name);
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(16);
        let chunk = n.div_ceil(threads).max(1 << 16);
        std::thread::scope(|s| {
            for (i, part) in data.chunks_mut(chunk).enumerate() {
                let mut rng = root.fork(i as u64);
                s.spawn(move || {
                    for x in part {
                        // 24 random bits are all an f32 mantissa holds.
                        let u = (rng.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
                        *x = center + half * (2.0 * u - 1.0);
                    }
                });
            }
        });
        Tensor::from_vec(data, shape, &Device::Cpu)?.to_dtype(self.dtype)?.to_device(&self.device)
    }

    pub fn matrix(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.tensor(name, shape, 0.0, 0.02)
    }

    /// Norm gains near one, so activations keep their scale through the layers.
    pub fn gain(&self, name: &str, n: usize) -> Result<Tensor> {
        self.tensor(name, &[n], 1.0, 0.02)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_published_sizes() {
        // GPT-2 medium: 354.8M without the tied head; SmolLM2: 134.5M; TinyLlama: 1.1B.
        let p = |a| Config::of(a).parameters() as f64 / 1e6;
        assert!((p(SyntheticArch::Gpt2Medium) - 354.8).abs() < 1.0, "{}", p(SyntheticArch::Gpt2Medium));
        assert!((p(SyntheticArch::Gpt2) - 124.4).abs() < 1.0, "{}", p(SyntheticArch::Gpt2));
        assert!((p(SyntheticArch::Smollm2_135m) - 134.5).abs() < 1.0, "{}", p(SyntheticArch::Smollm2_135m));
        assert!((p(SyntheticArch::Tinyllama1_1b) - 1100.0).abs() < 5.0, "{}", p(SyntheticArch::Tinyllama1_1b));
        assert!((p(SyntheticArch::Llama3_8b) - 8030.0).abs() < 10.0, "{}", p(SyntheticArch::Llama3_8b));
    }

    #[test]
    fn random_weights_are_deterministic_and_scaled() {
        let w = RandomWeights { seed: 7, dtype: DType::F32, device: Device::Cpu };
        let a: Vec<f32> = w.matrix("x", &[300_000]).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = w.matrix("x", &[300_000]).unwrap().to_vec1().unwrap();
        let c: Vec<f32> = w.matrix("y", &[300_000]).unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 1e-3 && (var.sqrt() - 0.02).abs() < 1e-3, "{mean} {}", var.sqrt());
    }

    #[test]
    fn hf_configs() {
        let gpt2 = r#"{"model_type":"gpt2","vocab_size":50257,"n_ctx":1024,"n_embd":1024,"n_layer":24,"n_head":16,"eos_token_id":50256}"#;
        assert_eq!(Config::from_hf_json(gpt2).unwrap(), Config::of(SyntheticArch::DialogptMedium));
        let err = Config::from_hf_json(r#"{"model_type":"bert"}"#).unwrap_err();
        assert!(err.contains("`bert`"), "{err}");
    }
}
