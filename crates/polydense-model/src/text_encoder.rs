//! [`TextEncoder`]: texts in, vectors out, for indexing, mining and evaluation (no autograd).
//! A model directory holds one encoder, or two towers (`query/` and `passage/`, as training
//! with separate towers saves them); either loads here, and each text is embedded by the
//! tower of its kind.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::model::Encoder;
use crate::pooling::Pooling;
use crate::tokenize::{length_sorted_batches, TextKind, TextTokenizer, TokenBatch};

/// Texts per forward pass unless set otherwise.
const DEFAULT_BATCH: usize = 32;

/// The subdirectories of a two-tower model directory, by the kind of text each embeds.
pub const TOWER_DIRS: [(TextKind, &str); 2] =
    [(TextKind::Query, "query"), (TextKind::Passage, "passage")];

/// Whether `dir` holds two towers (`query/config.json` and `passage/config.json`) rather
/// than one HF model.
pub fn is_two_tower(dir: &Path) -> bool {
    !dir.join("config.json").is_file()
        && TOWER_DIRS
            .iter()
            .all(|(_, sub)| dir.join(sub).join("config.json").is_file())
}

/// The HF directory that embeds texts of `kind` in a model directory of either layout.
pub fn tower_dir(dir: &Path, kind: TextKind) -> PathBuf {
    match is_two_tower(dir) {
        true => dir.join(if kind == TextKind::Query {
            "query"
        } else {
            "passage"
        }),
        false => dir.to_path_buf(),
    }
}

/// One tower: an encoder whose weights are cut from the graph, and its tokenizer.
#[derive(Debug)]
struct Tower {
    encoder: Encoder,
    tokenizer: TextTokenizer,
}

impl Tower {
    fn new(encoder: Encoder) -> Result<Self> {
        let tokenizer = encoder
            .tokenizer()
            .cloned()
            .ok_or_else(|| ModelError::Usage("the model directory has no tokenizer.json".into()))?;
        Ok(Tower { encoder, tokenizer })
    }
}

/// An inference-only encoder: batches texts by length, returns vectors in input order.
#[derive(Debug)]
pub struct TextEncoder {
    query: Tower,
    passage: Option<Tower>,
    batch_size: usize,
    /// Output dims kept (a Matryoshka prefix); `None` keeps them all.
    dim: Option<usize>,
}

impl TextEncoder {
    /// Loads a model directory (see [`crate::resolve`]) for inference on `device`: one HF
    /// encoder, or the two towers of a separate-tower model.
    pub fn load(dir: &Path, device: &Device) -> Result<TextEncoder> {
        if !is_two_tower(dir) {
            return Self::from_encoder(Encoder::load_inner(dir, device, false)?);
        }
        let load = |kind| Tower::new(Encoder::load_inner(&tower_dir(dir, kind), device, false)?);
        let (query, passage) = (load(TextKind::Query)?, load(TextKind::Passage)?);
        if query.encoder.dim() != passage.encoder.dim() {
            return Err(ModelError::Config {
                path: dir.join("passage").join("config.json"),
                field: "hidden_size".into(),
                message: format!(
                    "the passage tower embeds in {} dimensions, the query tower in {}",
                    passage.encoder.dim(),
                    query.encoder.dim()
                ),
            });
        }
        Ok(TextEncoder {
            query,
            passage: Some(passage),
            batch_size: DEFAULT_BATCH,
            dim: None,
        })
    }

    /// Wraps an encoder whose weights are already cut from the graph.
    pub(crate) fn from_encoder(encoder: Encoder) -> Result<TextEncoder> {
        Ok(TextEncoder {
            query: Tower::new(encoder)?,
            passage: None,
            batch_size: DEFAULT_BATCH,
            dim: None,
        })
    }

    fn tower(&self, kind: TextKind) -> &Tower {
        match (kind, &self.passage) {
            (TextKind::Passage, Some(p)) => p,
            _ => &self.query,
        }
    }

    /// Whether queries and passages have towers of their own.
    pub fn is_two_tower(&self) -> bool {
        self.passage.is_some()
    }

    /// Texts per forward pass (memory grows with batch × length²).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Truncates inputs to `n` tokens (special tokens included), within the model's limit.
    pub fn with_max_length(mut self, n: usize) -> Self {
        for tower in std::iter::once(&mut self.query).chain(self.passage.as_mut()) {
            let n = n.clamp(2, tower.encoder.config().max_tokens());
            if let Ok(t) = tower.tokenizer.with_max_length(n) {
                tower.tokenizer = t;
            }
        }
        self
    }

    /// Keeps the first `d` dims of every vector, re-normalised when the model normalises:
    /// the vectors of a Matryoshka-trained model or a compression head at `d` dims.
    pub fn with_dim(mut self, d: usize) -> Result<Self> {
        let full = self.query.encoder.dim();
        if d == 0 || d > full {
            return Err(ModelError::Usage(format!(
                "--dim {d}: the model's vectors have {full} dims (choose 1..={full})"
            )));
        }
        self.dim = (d < full).then_some(d);
        Ok(self)
    }

    /// Takes off a linear head (no bias, identity activation, as compression heads are) from
    /// a shared-tower model and returns it, so its backbone's vectors
    /// can be cached and the head applied to them afterwards: `normalize(W x)` is the same
    /// whether `x` was normalised first or not. `None` (and the model unchanged) otherwise.
    pub fn take_linear_head(&mut self) -> Option<crate::heads::Projection> {
        let linear = self.passage.is_none()
            && self.query.encoder.head().is_some_and(|h| {
                h.bias.is_none() && h.activation == crate::heads::ProjectionActivation::Identity
            });
        match linear {
            true => self.query.encoder.remove_head().map(|h| h.detached()),
            false => None,
        }
    }

    /// The width of the vectors (after [`TextEncoder::with_dim`]).
    pub fn dim(&self) -> usize {
        self.dim.unwrap_or_else(|| self.query.encoder.dim())
    }

    /// Pooling and normalisation in use (the query tower's, for two towers).
    pub fn pooling(&self) -> Pooling {
        self.query.encoder.pooling()
    }

    /// The tokenizer (with prefixes and length limit) of the query tower.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.query.tokenizer
    }

    /// The tokenizer that texts of `kind` go through.
    pub fn tokenizer_for(&self, kind: TextKind) -> &TextTokenizer {
        &self.tower(kind).tokenizer
    }

    /// The encoder of texts of `kind` (weights not trainable).
    pub fn encoder_for(&self, kind: TextKind) -> &Encoder {
        &self.tower(kind).encoder
    }

    /// The query tower's encoder, the only one of a shared-tower model.
    pub fn encoder(&self) -> &Encoder {
        &self.query.encoder
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
        let Tower { encoder, tokenizer } = self.tower(kind);
        let full = encoder.dim();
        let device = encoder.transformer().device().clone();
        let ids = tokenizer.tokenize(texts, kind)?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out = vec![0f32; texts.len() * full];
        let mut done = 0;
        for group in length_sorted_batches(&lengths, self.batch_size) {
            let rows: Vec<Vec<u32>> = group.iter().map(|&i| ids[i].clone()).collect();
            let batch = TokenBatch::from_ids(&rows, tokenizer.pad_id(), &device)?;
            let vecs: Vec<f32> = encoder
                .forward(&batch)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            for (k, &i) in group.iter().enumerate() {
                out[i * full..(i + 1) * full].copy_from_slice(&vecs[k * full..(k + 1) * full]);
            }
            done += group.len();
            on_batch(done);
        }
        let out = Tensor::from_vec(out, (texts.len(), full), &device)?;
        match self.dim {
            Some(d) => {
                let prefix = out.narrow(1, 0, d)?;
                match encoder.pooling().normalize {
                    true => Ok(crate::pooling::l2_normalize(&prefix)?),
                    false => Ok(prefix),
                }
            }
            None => Ok(out),
        }
    }
}
