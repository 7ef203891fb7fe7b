//! Random weights in the shapes of [`crate::model_config`]'s architectures, deterministic
//! from the seed.

use candle_core::{DType, Device, Result, Tensor};

pub use crate::model_config::{Config, Gpt2Config, LlamaConfig};
use crate::random::Rng;

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
    use crate::dsl::model::SyntheticArch;

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
        assert!(err.to_string().contains("`bert`"), "{err}");
    }
}
