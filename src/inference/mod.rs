//! LLM inference in-process with candle: model families (GPT-2, llama), their sources
//! (GGUF, safetensors, Hugging Face, synthetic random weights of real shapes), tokenizers,
//! prompts, the generation loop and the `inference` workload.

pub mod arch;
pub mod attention;
pub mod generate;
pub mod gpt2;
pub mod linear;
pub mod llama;
pub mod model;
pub mod workload;
