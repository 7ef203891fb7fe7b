//! Loading a model once: resolving its source (GGUF file, safetensors folder, Hugging Face
//! repository, synthetic shape), its tokenizer, its device and dtype.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Serialize;
use tokenizers::Tokenizer;

use super::arch::{Config, RandomWeights};
use super::attention::Cache;
use super::gpt2::Gpt2;
use super::llama::Llama;
use crate::dsl::model::{DType as DslDType, DeviceKind, ModelSource, SyntheticArch};
use crate::workload::setup::resolve;
pub use crate::workload::setup::SetupError;

/// The network: one of the two families.
#[derive(Debug, Clone)]
pub enum Net {
    Gpt2(Gpt2),
    Llama(Llama),
}

impl Net {
    pub fn forward(&self, tokens: &Tensor, cache: &mut Cache) -> candle_core::Result<Tensor> {
        match self {
            Net::Gpt2(m) => m.forward(tokens, cache),
            Net::Llama(m) => m.forward(tokens, cache),
        }
    }
    pub fn new_cache(&self, batch: usize, max_len: usize) -> Cache {
        match self {
            Net::Gpt2(m) => m.new_cache(batch, max_len),
            Net::Llama(m) => m.new_cache(batch, max_len),
        }
    }
    pub fn device(&self) -> &Device {
        match self {
            Net::Gpt2(m) => m.device(),
            Net::Llama(m) => m.device(),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Net::Gpt2(m) => m.dtype(),
            Net::Llama(m) => m.dtype(),
        }
    }
    pub fn weight_bytes(&self) -> u64 {
        match self {
            Net::Gpt2(m) => m.weight_bytes(),
            Net::Llama(m) => m.weight_bytes(),
        }
    }
    pub fn kv_bytes_per_token(&self) -> u64 {
        match self {
            Net::Gpt2(m) => m.kv_bytes_per_token(),
            Net::Llama(m) => m.kv_bytes_per_token(),
        }
    }
    pub fn config(&self) -> Config {
        match self {
            Net::Gpt2(m) => Config::Gpt2(m.config.clone()),
            Net::Llama(m) => Config::Llama(m.config.clone()),
        }
    }
    /// The longest sequence (prompt + output) the model takes.
    pub fn max_positions(&self) -> usize {
        match self {
            Net::Gpt2(m) => m.config.n_positions,
            Net::Llama(m) => m.config.max_position_embeddings.min(32_768),
        }
    }
}

/// What the result says about the model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFacts {
    /// The source as written (`gguf: FILE`, `synthetic: gpt2-medium`, ...).
    pub source: String,
    pub family: &'static str,
    pub parameters: u64,
    pub layers: usize,
    pub vocab_size: usize,
    pub device: String,
    /// `f32`, `f16`, `bf16`, or the GGUF quantisation (e.g. `q4_1`, computing in f32).
    pub dtype: String,
    pub load_time_s: f64,
    pub weights_bytes: u64,
    pub kv_bytes_per_token: u64,
    /// Where text becomes tokens: `tokenizer.json (PATH)`, `GGUF metadata`, or `none`.
    pub tokenizer: String,
    /// Set when the weights are random: what that means for the figures.
    pub synthetic: Option<String>,
    /// Set when `fallback-synthetic` replaced a model file that is not there: which file.
    pub missing: Option<PathBuf>,
}

pub struct Loaded {
    pub net: Net,
    pub tokenizer: Option<Tokenizer>,
    pub eos: Option<u32>,
    pub facts: ModelFacts,
}

/// What to load.
pub struct LoadSpec<'a> {
    pub source: &'a ModelSource,
    pub dtype: Option<DslDType>,
    pub tokenizer: Option<&'a str>,
    pub device: DeviceKind,
    pub seed: u64,
    /// Relative paths are resolved against this folder (the scenario's).
    pub base: &'a Path,
    /// Run this random-weight architecture when the model file is not there.
    pub fallback: Option<SyntheticArch>,
}

/// The candle device for a scenario device; without CUDA support compiled in, or without
/// a GPU, a clear error.
pub fn device(kind: DeviceKind) -> Result<Device, SetupError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda { index } => {
            if !cfg!(feature = "cuda") {
                return Err(SetupError::runtime(
                    format!("device `cuda:{index}` needs a benchctl built with CUDA support; this binary runs models on the CPU only"),
                    Some("build with `scripts/build-cuda.sh` (see docs/gpu.md), or write `device \"cuda:0\" fallback=\"cpu\"` to run on the CPU where no GPU is present".into()),
                ));
            }
            Device::new_cuda(index as usize).map_err(|e| {
                SetupError::runtime(
                    format!("cannot open CUDA device {index}: {e}"),
                    Some("check `nvidia-smi`, the driver, and that the index exists; `fallback=\"cpu\"` on the device runs on the CPU instead".into()),
                )
            })
        }
    }
}

fn dtype_of(d: Option<DslDType>, device: &Device) -> DType {
    match d {
        Some(DslDType::F32) => DType::F32,
        Some(DslDType::F16) => DType::F16,
        Some(DslDType::Bf16) => DType::BF16,
        // Half precision is what GPUs serve in; on the CPU f32 is the fast path.
        None if device.is_cuda() => DType::F16,
        None => DType::F32,
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        _ => "f32",
    }
}

fn candle_err<'a>(what: &str, path: &'a Path) -> impl Fn(candle_core::Error) -> SetupError + 'a {
    let what = what.to_string();
    move |e| {
        SetupError::input(
            format!("cannot load {what} `{}`: {e}", path.display()),
            "check that the file is complete and of the kind the `model` node names",
        )
    }
}

/// A synthetic model of `arch`: random weights in its exact shapes (and a tokenizer when
/// one is named).
fn synthetic(
    arch: SyntheticArch,
    spec: &LoadSpec,
    device: &Device,
    explicit_tokenizer: Option<&Path>,
) -> Result<(Net, Option<Tokenizer>, String, String, String), SetupError> {
    let config = Config::of(arch);
    let dtype = dtype_of(spec.dtype, device);
    let w = RandomWeights { seed: spec.seed, dtype, device: device.clone() };
    let net = match &config {
        Config::Gpt2(c) => Gpt2::random(c, &w).map(Net::Gpt2),
        Config::Llama(c) => Llama::random(c, &w).map(Net::Llama),
    }
    .map_err(|e| SetupError::runtime(format!("cannot build the synthetic `{arch}` model: {e}"), None))?;
    let tok = explicit_tokenizer.map(crate::tokenizer::from_file).transpose()?;
    let ts = explicit_tokenizer.map(|p| format!("tokenizer.json ({})", p.display()));
    Ok((
        net,
        tok,
        ts.unwrap_or_else(|| "none (synthetic model: token ids)".into()),
        format!("synthetic: {arch}"),
        dtype_name(dtype).to_string(),
    ))
}

/// Loads the model `spec` names, timing the load.
pub fn load(spec: &LoadSpec) -> Result<Loaded, SetupError> {
    let file = match spec.source {
        ModelSource::Gguf { path } | ModelSource::Safetensors { path } => Some(resolve(spec.base, path)),
        _ => None,
    };
    if let (Some(arch), Some(missing)) = (spec.fallback, file.filter(|f| !f.exists())) {
        let twin = ModelSource::Synthetic { arch };
        let mut loaded = load(&LoadSpec { source: &twin, fallback: None, ..*spec })?;
        loaded.facts.source = format!("synthetic: {arch} (fallback: {} is not there)", missing.display());
        loaded.facts.missing = Some(missing);
        return Ok(loaded);
    }
    let started = Instant::now();
    let device = device(spec.device)?;
    let explicit_tokenizer = spec.tokenizer.map(|t| resolve(spec.base, t));
    let (net, tokenizer, tokenizer_source, source, dtype_label) = match spec.source {
        ModelSource::Synthetic { arch } => synthetic(*arch, spec, &device, explicit_tokenizer.as_deref())?,
        ModelSource::Gguf { path } => {
            let path = resolve(spec.base, path);
            let (net, tok, ts, q) = load_gguf(&path, &device, explicit_tokenizer.as_deref())?;
            (net, tok, ts, format!("gguf: {}", path.display()), q)
        }
        ModelSource::Safetensors { path } => {
            let dir = resolve(spec.base, path);
            let dtype = dtype_of(spec.dtype, &device);
            let (net, tok, ts) = load_safetensors(&dir, dtype, &device, explicit_tokenizer.as_deref())?;
            (net, tok, ts, format!("safetensors: {}", dir.display()), dtype_name(dtype).to_string())
        }
        ModelSource::Hf { repo, revision, file } => {
            let local = hf_fetch(repo, revision.as_deref(), file.as_deref())?;
            match local {
                HfLocal::Gguf(path) => {
                    let (net, tok, ts, q) = load_gguf(&path, &device, explicit_tokenizer.as_deref())?;
                    (net, tok, ts, format!("hf: {repo} ({})", path.display()), q)
                }
                HfLocal::Folder(dir) => {
                    let dtype = dtype_of(spec.dtype, &device);
                    let (net, tok, ts) = load_safetensors(&dir, dtype, &device, explicit_tokenizer.as_deref())?;
                    (net, tok, ts, format!("hf: {repo}"), dtype_name(dtype).to_string())
                }
            }
        }
    };
    let config = net.config();
    let (layers, eos) = match &config {
        Config::Gpt2(c) => (c.n_layer, c.eos_token_id),
        Config::Llama(c) => (c.num_hidden_layers, c.eos_token_id),
    };
    let facts = ModelFacts {
        source,
        family: config.family(),
        parameters: config.parameters(),
        layers,
        vocab_size: config.vocab_size(),
        device: match spec.device {
            DeviceKind::Cpu => "cpu".to_string(),
            DeviceKind::Cuda { index } => format!("cuda:{index}"),
        },
        synthetic: match spec.source {
            ModelSource::Synthetic { arch } => Some(arch.synthetic_note()),
            _ => None,
        },
        missing: None,
        dtype: dtype_label,
        load_time_s: started.elapsed().as_secs_f64(),
        weights_bytes: net.weight_bytes(),
        kv_bytes_per_token: net.kv_bytes_per_token(),
        tokenizer: tokenizer_source,
    };
    Ok(Loaded { net, tokenizer, eos, facts })
}

type Parts = (Net, Option<Tokenizer>, String, String);

fn load_gguf(path: &Path, device: &Device, tokenizer: Option<&Path>) -> Result<Parts, SetupError> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        SetupError::input(
            format!("cannot open the GGUF file `{}`: {e}", path.display()),
            "paths are relative to the scenario's folder; `scripts/fetch-models.sh` fetches the test model",
        )
    })?;
    let ct = gguf_file::Content::read(&mut f).map_err(candle_err("the GGUF file", path))?;
    let quant = ct
        .tensor_infos
        .get("blk.0.attn_q.weight")
        .map(|t| format!("{:?}", t.ggml_dtype).to_lowercase())
        .unwrap_or_else(|| "gguf".into());
    // The dense copy for prompts costs 4 bytes per weight: worth it for the small models a
    // CPU serves, not for multi-billion-parameter ones.
    let params: u64 = ct.tensor_infos.values().map(|t| t.shape.elem_count() as u64).sum();
    let dense_prefill = device.is_cpu() && params <= 2_000_000_000;
    let net = Llama::from_gguf(&ct, &mut f, device, dense_prefill).map_err(candle_err("the GGUF model", path))?;
    let (tok, ts) = match tokenizer {
        Some(t) => (Some(crate::tokenizer::from_file(t)?), format!("tokenizer.json ({})", t.display())),
        None => (Some(crate::tokenizer::from_gguf_content(&ct, path)?), "GGUF metadata".to_string()),
    };
    Ok((Net::Llama(net), tok, ts, format!("{quant} (computing in f32)")))
}

fn load_safetensors(
    dir: &Path,
    dtype: DType,
    device: &Device,
    tokenizer: Option<&Path>,
) -> Result<(Net, Option<Tokenizer>, String), SetupError> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        SetupError::input(
            format!("cannot read `{}`: {e}", config_path.display()),
            "a safetensors model is a folder with config.json, *.safetensors and tokenizer.json",
        )
    })?;
    let config = Config::from_hf_json(&text)
        .map_err(|e| SetupError::input(format!("{}: {e}", config_path.display()), "use a gpt2 or llama checkpoint"))?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SetupError::input(format!("cannot list `{}`: {e}", dir.display()), "check the path"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SetupError::input(
            format!("`{}` holds no .safetensors file", dir.display()),
            "convert PyTorch .bin weights to safetensors, or point at a folder that has them",
        ));
    }
    // SAFETY: the files are memory-mapped read-only; benchctl does not modify them, and a
    // model folder changed by another process while a benchmark runs is outside its contract.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
        .map_err(candle_err("the safetensors files in", dir))?;
    let net = match &config {
        Config::Gpt2(c) => Gpt2::load(vb, c).map(Net::Gpt2),
        Config::Llama(c) => Llama::load(vb, c).map(Net::Llama),
    }
    .map_err(candle_err("the weights in", dir))?;
    let tok_path = tokenizer.map(Path::to_path_buf).unwrap_or_else(|| dir.join("tokenizer.json"));
    let tok =
        if tok_path.exists() || tokenizer.is_some() { Some(crate::tokenizer::from_file(&tok_path)?) } else { None };
    let ts = match &tok {
        Some(_) => format!("tokenizer.json ({})", tok_path.display()),
        None => "none (no tokenizer.json: token ids)".into(),
    };
    Ok((net, tok, ts))
}

enum HfLocal {
    Gguf(PathBuf),
    Folder(PathBuf),
}

/// Resolves a Hugging Face repository through the standard cache (`HF_HOME`), downloading
/// what is missing unless `HF_HUB_OFFLINE` is set.
fn hf_fetch(repo: &str, revision: Option<&str>, file: Option<&str>) -> Result<HfLocal, SetupError> {
    use hf_hub::{Repo, RepoType};
    let r = Repo::with_revision(repo.to_string(), RepoType::Model, revision.unwrap_or("main").to_string());
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0");
    let wanted: Vec<&str> = match file {
        Some(f) => vec![f],
        None => vec!["config.json", "tokenizer.json", "model.safetensors"],
    };
    let mut got = vec![];
    if offline {
        let cache = hf_hub::Cache::from_env().repo(r);
        for f in &wanted {
            match cache.get(f) {
                Some(p) => got.push(p),
                None if *f == "tokenizer.json" => {}
                None => {
                    return Err(SetupError::input(
                        format!("`{repo}` file `{f}` is not in the Hugging Face cache, and HF_HUB_OFFLINE is set"),
                        "download it once with network access (unset HF_HUB_OFFLINE), or point `model` at local files",
                    ))
                }
            }
        }
    } else {
        let api = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(false)
            .build()
            .map_err(|e| SetupError::runtime(format!("cannot start the Hugging Face client: {e}"), None))?;
        let api = api.repo(r);
        for f in &wanted {
            match api.get(f) {
                Ok(p) => got.push(p),
                Err(_) if *f == "tokenizer.json" => {}
                Err(e) => return Err(SetupError::runtime(
                    format!("cannot fetch `{f}` of `{repo}` from the Hugging Face hub: {e}"),
                    Some(
                        "check the repository id and your network; with HF_HUB_OFFLINE=1 only the local cache is used"
                            .into(),
                    ),
                )),
            }
        }
    }
    let first = got.first().cloned().expect("a wanted file was found");
    if first.extension().is_some_and(|e| e == "gguf") {
        Ok(HfLocal::Gguf(first))
    } else {
        Ok(HfLocal::Folder(first.parent().map(Path::to_path_buf).unwrap_or_default()))
    }
}
