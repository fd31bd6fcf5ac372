//! The encoder seam of the stages that compare texts by embedding (RAG selection, the
//! adversarial filter).

use crate::error::{MineError, Result};
use polydense_model::TextKind;

/// Turns texts into vectors whose inner products rank similarity.
///
/// Called by a filter once per batch, with every text it needs embedded as one `kind` (a
/// query or a passage, which e5-style models prefix differently). It returns one vector per
/// text, in order, all of one width; an `Err` stops the run like any stage error.
pub trait Embedder: Send + Sync {
    /// One vector per text, in order.
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>>;
}

/// A polydense encoder (an HF directory or an installed name such as `e5-small`).
pub struct EncoderEmbedder(pub polydense_model::TextEncoder);

impl EncoderEmbedder {
    /// Loads the encoder `name_or_path` on the CPU for `stage` (named in errors).
    pub fn load(name_or_path: &str, stage: &str) -> Result<Self> {
        let bad = |e: polydense_model::ModelError| MineError::Stage {
            stage: stage.into(),
            message: format!("encoder `{name_or_path}`: {e}"),
        };
        let dir = polydense_model::resolve(name_or_path).map_err(bad)?;
        let enc =
            polydense_model::TextEncoder::load(&dir, &candle_core::Device::Cpu).map_err(bad)?;
        Ok(EncoderEmbedder(enc))
    }
}

impl Embedder for EncoderEmbedder {
    fn embed(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<f32>>> {
        let bad = |e: String| MineError::Stage {
            stage: "encoder".into(),
            message: format!("embedding: {e}"),
        };
        let t = self.0.encode(texts, kind).map_err(|e| bad(e.to_string()))?;
        t.to_vec2::<f32>().map_err(|e| bad(e.to_string()))
    }
}
