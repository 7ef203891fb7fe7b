//! Model configurations: the exact shapes of the architectures that synthetic models
//! reproduce, and of models read from a Hugging Face `config.json`. A leaf of the stage
//! order: the plan counts a model's parameters here, and the inference backend builds the
//! model from the same shapes.

use serde::Deserialize;

use crate::dsl::model::SyntheticArch;

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
    pub fn from_hf_json(text: &str) -> std::result::Result<Config, ConfigError> {
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
        let probe: Probe = serde_json::from_str(text).map_err(ConfigError::NotJson)?;
        match probe.model_type.as_deref() {
            Some("gpt2") => {
                let c: Gpt2Json = serde_json::from_str(text).map_err(|e| ConfigError::Fields("gpt2", e))?;
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
                let c: LlamaJson = serde_json::from_str(text).map_err(|e| ConfigError::Fields("llama", e))?;
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
            Some(other) => Err(ConfigError::ModelType(other.to_string())),
            None => Err(ConfigError::NoModelType),
        }
    }
}

/// Why a `config.json` does not describe a model benchctl runs.
#[derive(Debug)]
pub enum ConfigError {
    NotJson(serde_json::Error),
    /// A field of the family's configuration is missing or of the wrong type.
    Fields(&'static str, serde_json::Error),
    /// A `model_type` benchctl has no forward pass for.
    ModelType(String),
    NoModelType,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NotJson(e) => write!(f, "config.json is not valid JSON: {e}"),
            ConfigError::Fields(family, e) => write!(f, "config.json ({family}): {e}"),
            ConfigError::ModelType(other) => write!(
                f,
                "config.json declares model_type `{other}`; benchctl runs `gpt2` (GPT-2, DialoGPT) and `llama`/`mistral` (Llama, Mistral, SmolLM2, TinyLlama) safetensors models"
            ),
            ConfigError::NoModelType => f.write_str("config.json has no `model_type`"),
        }
    }
}

impl std::error::Error for ConfigError {}
