//! [`TextEncoder`]: texts in, vectors out, for indexing, mining and evaluation (no autograd).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::model::Encoder;
use crate::pooling::Pooling;
use crate::tokenize::{length_sorted_batches, TextKind, TextTokenizer, TokenBatch};

/// Texts per forward pass unless set otherwise.
const DEFAULT_BATCH: usize = 32;

/// An inference-only encoder: batches texts by length, returns vectors in input order.
#[derive(Debug)]
pub struct TextEncoder {
    encoder: Encoder,
    tokenizer: TextTokenizer,
    batch_size: usize,
}

impl TextEncoder {
    /// Loads an HF model directory (see [`crate::resolve`]) for inference on `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<TextEncoder> {
        Self::from_encoder(Encoder::load_inner(dir, device, false)?)
    }

    /// Wraps an encoder whose weights are already cut from the graph.
    pub(crate) fn from_encoder(encoder: Encoder) -> Result<TextEncoder> {
        let tokenizer = encoder
            .tokenizer()
            .cloned()
            .ok_or_else(|| ModelError::Usage("the model directory has no tokenizer.json".into()))?;
        Ok(TextEncoder {
            encoder,
            tokenizer,
            batch_size: DEFAULT_BATCH,
        })
    }

    /// Texts per forward pass (memory grows with batch × length²).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Truncates inputs to `n` tokens (special tokens included), within the model's limit.
    pub fn with_max_length(mut self, n: usize) -> Self {
        let n = n.clamp(2, self.encoder.config().max_tokens());
        if let Ok(t) = self.tokenizer.with_max_length(n) {
            self.tokenizer = t;
        }
        self
    }

    /// The width of the vectors.
    pub fn dim(&self) -> usize {
        self.encoder.dim()
    }

    /// Pooling and normalisation in use.
    pub fn pooling(&self) -> Pooling {
        self.encoder.pooling()
    }

    /// The tokenizer (with prefixes and length limit).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The underlying encoder (weights not trainable).
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// `[n, dim]` f32 vectors of `texts`, in input order, normalised if the model says so.
    pub fn encode(&self, texts: &[&str], kind: TextKind) -> Result<Tensor> {
        self.encode_with_progress(texts, kind, &mut |_| {})
    }

    /// As [`TextEncoder::encode`], calling `on_batch` with the number of texts done so far
    /// after each batch (for progress bars).
    pub fn encode_with_progress(
        &self,
        texts: &[&str],
        kind: TextKind,
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Tensor> {
        let dim = self.dim();
        let device = self.encoder.transformer().device().clone();
        let ids = self.tokenizer.tokenize(texts, kind)?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out = vec![0f32; texts.len() * dim];
        let mut done = 0;
        for group in length_sorted_batches(&lengths, self.batch_size) {
            let rows: Vec<Vec<u32>> = group.iter().map(|&i| ids[i].clone()).collect();
            let batch = TokenBatch::from_ids(&rows, self.tokenizer.pad_id(), &device)?;
            let vecs: Vec<f32> = self
                .encoder
                .forward(&batch)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            for (k, &i) in group.iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&vecs[k * dim..(k + 1) * dim]);
            }
            done += group.len();
            on_batch(done);
        }
        Ok(Tensor::from_vec(out, (texts.len(), dim), &device)?)
    }
}
