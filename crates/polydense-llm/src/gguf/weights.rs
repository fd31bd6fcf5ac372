//! The transformer of a GGUF file, whichever family it is: candle-transformers' quantized
//! llama (SmolLM2, Llama, Mistral), qwen2, qwen3 and gemma3, chosen by the file's
//! `general.architecture`.

use crate::error::{LlmError, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};
use std::path::Path;

/// A loaded model with its key/value cache.
pub enum Weights {
    /// `llama`, and families stored under it (SmolLM2, Mistral).
    Llama(quantized_llama::ModelWeights),
    /// `qwen2` (Qwen2, Qwen2.5).
    Qwen2(quantized_qwen2::ModelWeights),
    /// `qwen3`.
    Qwen3(quantized_qwen3::ModelWeights),
    /// `gemma3`.
    Gemma3(quantized_gemma3::ModelWeights),
}

impl Weights {
    /// Loads the tensors of `content` (already read from `file`) on the CPU.
    pub fn load<R: std::io::Read + std::io::Seek>(
        path: &Path,
        content: gguf_file::Content,
        file: &mut R,
    ) -> Result<Self> {
        let arch = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let dev = &Device::Cpu;
        let bad = |e: candle_core::Error| LlmError::Model {
            path: path.to_path_buf(),
            message: format!("cannot load the `{arch}` weights: {e}"),
            hint: None,
        };
        Ok(match arch.as_str() {
            "llama" | "mistral" => {
                Weights::Llama(quantized_llama::ModelWeights::from_gguf(content, file, dev).map_err(bad)?)
            }
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, file, dev).map_err(bad)?),
            "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(content, file, dev).map_err(bad)?),
            "gemma3" => Weights::Gemma3(quantized_gemma3::ModelWeights::from_gguf(content, file, dev).map_err(bad)?),
            other => {
                return Err(LlmError::Model {
                    path: path.to_path_buf(),
                    message: format!("architecture `{other}` is not supported"),
                    hint: Some("use a llama (SmolLM2), qwen2, qwen3 or gemma3 GGUF, or serve it with Ollama or llama.cpp".into()),
                })
            }
        })
    }

    /// Runs `tokens` at positions `pos..`, extending the cache, and returns the logits of the
    /// last one as a vector.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        let x = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Weights::Llama(m) => m.forward(&x, pos)?,
            Weights::Qwen2(m) => m.forward(&x, pos)?,
            Weights::Qwen3(m) => m.forward(&x, pos)?,
            Weights::Gemma3(m) => m.forward(&x, pos)?,
        };
        // Some families return [1, vocab], others [1, 1, vocab].
        Ok(logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?)
    }

    /// A copy that shares the weights and owns a copy of the cache (candle's tensors are
    /// immutable, so the copy costs pointers), or `None` for qwen2, whose candle type cannot
    /// be cloned.
    pub fn fork(&self) -> Option<Weights> {
        match self {
            Weights::Llama(m) => Some(Weights::Llama(m.clone())),
            Weights::Qwen2(_) => None,
            Weights::Qwen3(m) => Some(Weights::Qwen3(m.clone())),
            Weights::Gemma3(m) => Some(Weights::Gemma3(m.clone())),
        }
    }

    /// Empties the cache in place (the path for families that cannot [`Weights::fork`]).
    pub fn reset(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            // Gemma3 always forks a clean copy and never reaches here.
            Weights::Gemma3(_) => {}
        }
    }
}
