//! [`DualEncoder`]: the query and passage towers of a bi-encoder, shared or separate.

use std::path::Path;

use candle_core::{Tensor, Var};
use polydense_model::{Encoder, TextKind, TokenBatch};

use crate::error::Result;

/// A bi-encoder (DPR, Karpukhin et al. 2020): queries and passages are embedded apart and
/// scored by inner product. With shared towers one encoder embeds both.
#[derive(Debug)]
pub struct DualEncoder {
    query: Encoder,
    passage: Option<Encoder>,
}

impl DualEncoder {
    /// One encoder for queries and passages.
    pub fn shared(encoder: Encoder) -> Self {
        DualEncoder {
            query: encoder,
            passage: None,
        }
    }

    /// Separate query and passage towers (usually two loads of the same checkpoint).
    pub fn separate(query: Encoder, passage: Encoder) -> Self {
        DualEncoder {
            query,
            passage: Some(passage),
        }
    }

    /// Whether the towers are separate.
    pub fn is_separate(&self) -> bool {
        self.passage.is_some()
    }

    /// The encoder that embeds texts of `kind`.
    pub fn tower(&self, kind: TextKind) -> &Encoder {
        match (kind, &self.passage) {
            (TextKind::Passage, Some(p)) => p,
            _ => &self.query,
        }
    }

    /// Every trainable weight, sorted by name: the HF name for shared towers, prefixed by
    /// `query.` / `passage.` for separate ones. Names key the optimiser state and checkpoints.
    pub fn params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        let mut add = |enc: &Encoder, prefix: &str| {
            let data = enc.varmap().data().lock().expect("varmap lock poisoned");
            out.extend(
                data.iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
            );
        };
        match &self.passage {
            None => add(&self.query, ""),
            Some(p) => {
                add(&self.query, "query.");
                add(p, "passage.");
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Vectors `[B, dim]` of a batch with the autograd graph, for the training step.
    pub fn forward(&self, kind: TextKind, batch: &TokenBatch) -> Result<Tensor> {
        Ok(self.tower(kind).forward(batch)?)
    }

    /// Vectors `[B, dim]` without building a graph, for GradCache's first pass and for
    /// evaluation (the weights are shared, not copied).
    pub fn encode(&self, kind: TextKind, batch: &TokenBatch) -> Result<Tensor> {
        let tower = self.tower(kind);
        let hidden = tower.transformer().detached().forward(batch)?;
        Ok(tower
            .pooling()
            .pool(&hidden, batch.lengths(), batch.seq_len())?)
    }

    /// Saves the model as an HF + sentence-transformers directory: `dir` itself for shared
    /// towers, `dir/query` and `dir/passage` for separate ones.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match &self.passage {
            None => self.query.save(dir)?,
            Some(p) => {
                self.query.save(&dir.join("query"))?;
                p.save(&dir.join("passage"))?;
            }
        }
        Ok(())
    }
}
