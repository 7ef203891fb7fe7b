//! Tokenizers shared by the workloads: a Hugging Face `tokenizer.json`, or one built from a
//! GGUF file's metadata (the vocabulary llama.cpp itself serves the model with).

use std::path::Path;

use candle_core::quantized::gguf_file;
use tokenizers::Tokenizer;

use crate::workload::setup::SetupError;

/// Reads a Hugging Face `tokenizer.json`.
pub fn from_file(path: &Path) -> Result<Tokenizer, SetupError> {
    Tokenizer::from_file(path).map_err(|e| {
        SetupError::input(
            format!("cannot read the tokenizer `{}`: {e}", path.display()),
            "give a Hugging Face tokenizer.json with `tokenizer=\"PATH\"`",
        )
    })
}

/// Builds the tokenizer a GGUF file's metadata describes, reading only the metadata.
pub fn from_gguf(path: &Path) -> Result<Tokenizer, SetupError> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        SetupError::input(
            format!("cannot open the GGUF file `{}`: {e}", path.display()),
            "paths are relative to the scenario's folder; `scripts/fetch-models.sh` fetches the test model",
        )
    })?;
    let ct = gguf_file::Content::read(&mut f).map_err(|e| {
        SetupError::input(
            format!("cannot read the GGUF metadata of `{}`: {e}", path.display()),
            "check that the file is a complete GGUF model",
        )
    })?;
    from_gguf_content(&ct, path)
}

/// The tokenizer of GGUF metadata already read (`path` names the file in messages).
pub fn from_gguf_content(ct: &gguf_file::Content, path: &Path) -> Result<Tokenizer, SetupError> {
    use candle_core::quantized::tokenizer::TokenizerFromGguf;
    let mut t = Tokenizer::from_gguf(ct).map_err(|e| {
        SetupError::input(
            format!("cannot build a tokenizer from the GGUF metadata of `{}`: {e}", path.display()),
            "give the model's tokenizer.json with `tokenizer=\"PATH\"`",
        )
    })?;
    fix_pre_tokenizer(ct, &mut t);
    Ok(t)
}

/// candle's GGUF tokenizer splits GPT-2-style vocabularies with a space added in front of
/// the text, which neither GPT-2's nor SmolLM2's own tokenizer does (llama.cpp does not
/// either): "The" would become " The" and the model would see another prompt. Use the
/// Hugging Face pipeline instead: byte-level without a prefix space, and single digits for
/// SmolLM2.
fn fix_pre_tokenizer(ct: &gguf_file::Content, t: &mut Tokenizer) {
    use tokenizers::pre_tokenizers::{byte_level::ByteLevel, digits::Digits, sequence::Sequence, PreTokenizerWrapper};
    let pre =
        ct.metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).map(String::as_str).unwrap_or("gpt2");
    if matches!(pre, "qwen2" | "smaug-bpe" | "lfm2" | "llama3") {
        return;
    }
    let byte_level = ByteLevel::new(false, true, true);
    let p: PreTokenizerWrapper = if pre == "smollm" {
        Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
    } else {
        byte_level.into()
    };
    t.with_pre_tokenizer(Some(p));
}
