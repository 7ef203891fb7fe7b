//! Text corpora embedded with a sentence-embedding model through candle's BERT
//! (all-MiniLM-L6-v2 by default): mean pooling over the attention mask, then L2
//! normalisation, as sentence-transformers does for that model.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use super::data::Vectors;
use crate::workload::setup::SetupError;

/// The model used when a `data text=` node names none: a folder of that name in the model
/// folder (`$BENCHCTL_MODELS`, else ~/.cache/benchctl/models; scripts/fetch-models.sh puts
/// it there).
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";
/// Longest input in tokens (all-MiniLM-L6-v2 was trained to 256; longer texts are cut).
const MAX_TOKENS: usize = 256;
const BATCH: usize = 32;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub dim: usize,
    pub dir: PathBuf,
}

impl Embedder {
    pub fn load(dir: &Path) -> Result<Embedder, SetupError> {
        let need = ["config.json", "model.safetensors", "tokenizer.json"];
        if let Some(missing) = need.iter().find(|f| !dir.join(f).exists()) {
            return Err(SetupError::input(
                format!("the embedding model folder {} has no {missing}", dir.display()),
                "give `model=` a folder with config.json, model.safetensors and tokenizer.json, \
                 or run scripts/fetch-models.sh for all-MiniLM-L6-v2",
            ));
        }
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            SetupError::input(
                format!("cannot load the embedding model in {} ({what}): {e}", dir.display()),
                "the folder must hold a BERT-family sentence model in safetensors form",
            )
        };
        let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| bad("config.json", &e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| bad("config.json", &e))?;
        let device = Device::Cpu;
        // SAFETY: the file is mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &device) }
            .map_err(|e| bad("model.safetensors", &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| bad("weights", &e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| bad("tokenizer.json", &e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| bad("tokenizer.json", &e))?;
        Ok(Embedder { model, tokenizer, device, dim: config.hidden_size, dir: dir.to_path_buf() })
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&self, texts: &[String], progress: &mut dyn FnMut(usize)) -> Result<Vectors, EmbedError> {
        let mut out = Vec::with_capacity(texts.len() * self.dim);
        for (b, chunk) in texts.chunks(BATCH).enumerate() {
            out.extend(self.batch(chunk).map_err(EmbedError)?);
            progress((b * BATCH + chunk.len()).min(texts.len()));
        }
        Ok(Vectors { dim: self.dim, data: out })
    }

    fn batch(&self, texts: &[String]) -> Result<Vec<f32>, Box<dyn std::error::Error + Send + Sync>> {
        let enc = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> candle_core::Result<Tensor> {
            let v: Vec<Tensor> =
                enc.iter().map(|e| Tensor::new(f(e), &self.device)).collect::<candle_core::Result<_>>()?;
            Tensor::stack(&v, 0)
        };
        let ids = rows(&|e| e.get_ids())?;
        let types = rows(&|e| e.get_type_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens, then unit length.
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let sum = hidden.broadcast_mul(&m)?.sum(1)?;
        let mean = sum.broadcast_div(&m.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok(mean.broadcast_div(&norm)?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// Why a batch of texts could not be embedded (the tokenizer's or the model's error).
#[derive(Debug)]
pub struct EmbedError(pub Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for EmbedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "embedding failed: {}", self.0)
    }
}

impl std::error::Error for EmbedError {}

/// Texts of a corpus or query file: `.jsonl` lines with a `text` string, else one text per
/// non-empty line.
pub fn read_texts(path: &Path) -> Result<Vec<String>, SetupError> {
    let body = crate::dsl::source::read_text_bounded(path, crate::prompts::MAX_TEXT_FILE_BYTES).map_err(|e| {
        SetupError::input(
            format!("cannot read the text file {}: {e}", path.display()),
            "the path is relative to the scenario file; the file must be UTF-8 text",
        )
    })?;
    let jsonl = path.extension().is_some_and(|e| e == "jsonl");
    let mut out = vec![];
    for (i, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                SetupError::input(
                    format!("{}:{}: not a JSON object: {e}", path.display(), i + 1),
                    "each line must be an object with a \"text\" string",
                )
            })?;
            match v.get("text").and_then(|t| t.as_str()) {
                Some(t) => out.push(t.to_string()),
                None => {
                    return Err(SetupError::input(
                        format!("{}:{}: the object has no \"text\" string", path.display(), i + 1),
                        "each line must be an object with a \"text\" string",
                    ))
                }
            }
        } else {
            out.push(line.trim().to_string());
        }
    }
    if out.is_empty() {
        return Err(SetupError::input(format!("{} holds no text", path.display()), "put one text per line"));
    }
    Ok(out)
}
