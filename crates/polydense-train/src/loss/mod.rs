//! The [`Loss`] seam: the objective of a training step, given the batch's vectors.
//!
//! Execution model (called once per optimiser step, push): the trainer embeds the batch's
//! queries, passages and, when the loss asks for them, the negatives' own queries; asks the
//! cross-batch memory for extra negatives; then calls [`Loss::loss`] once with everything in
//! a [`LossInput`] and back-propagates [`LossOutput::total`]. Under GradCache the call is the
//! same (once per step) but the vectors are leaf variables embedded without a graph, and the
//! gradient of the total with respect to them is pushed back through the encoder chunk by
//! chunk afterwards; so a loss must be a function of its input alone, with no state that
//! changes between steps other than through [`LossInput::rng`]. New objectives (CLPL,
//! Matryoshka) implement this trait and plug into the same trainer, chosen by the `[loss]`
//! table of the config ([`LossConfig`]).

mod clpl;
mod infonce;
mod matryoshka;

pub use clpl::{ClplConfig, ClplLoss};
pub use infonce::{InfoNce, InfoNceConfig};
pub use matryoshka::{prefix, MatryoshkaConfig, MatryoshkaLoss};

use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch::TrainBatch;
use crate::error::Result;

/// Where training stands when a step's loss is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Optimiser steps completed before this one.
    pub step: u64,
    /// Optimiser steps of the whole run.
    pub total_steps: u64,
    /// The epoch (0-based).
    pub epoch: u64,
}

/// Negatives from earlier batches (a cross-batch memory), shared by every query.
#[derive(Debug, Clone)]
pub struct ExtraNegatives {
    /// `[M, dim]` vectors without a graph: no gradient flows into them.
    pub vectors: Tensor,
    /// `[B, M]` u8: 1 where query i may use entry m, 0 where the entry is one of query i's
    /// positives (by passage id); a loss must leave the 0 entries out.
    pub allowed: Tensor,
}

/// The vectors of one batch, laid out as the trainer builds them, and what else a loss may
/// read.
#[derive(Debug, Clone, Copy)]
pub struct LossInput<'a> {
    /// `[B, dim]`, one row per query.
    pub queries: &'a Tensor,
    /// `[B·group, dim]`: query i's positive is row `i·group`, its hard negatives the
    /// `group - 1` rows after it.
    pub passages: &'a Tensor,
    /// Passages per query (1 + hard negatives).
    pub group: usize,
    /// The batch's texts and ids, in the row order of the tensors.
    pub batch: &'a TrainBatch,
    /// `[N, dim]` vectors of `batch.negative_queries` (same order), embedded by the query
    /// tower; present when [`Loss::needs_negative_queries`] and the batch has any.
    pub negative_queries: Option<&'a Tensor>,
    /// Extra negatives from a cross-batch memory, with the mask of each query's own positives.
    pub extra_negatives: Option<&'a ExtraNegatives>,
    /// Where training stands (for losses whose weights follow a schedule).
    pub progress: Progress,
    /// The seed of this step's random stream; see [`LossInput::rng`].
    pub seed: u64,
}

impl LossInput<'_> {
    /// This step's random numbers: the same for the same run seed and step, so a stochastic
    /// loss (a Gumbel-softmax selection, a sampled penalty) is reproducible and resumes exactly.
    pub fn rng(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x6c6f_7373_5f72_6e67);
        rng.set_stream(self.progress.step);
        rng
    }
}

/// What a loss returns: the scalar to back-propagate and, for composite objectives, its
/// named parts.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The scalar whose gradient trains the encoder.
    pub total: Tensor,
    /// Named scalar parts (e.g. InfoNCE and a penalty, unweighted), logged as `loss_parts` in
    /// metrics.jsonl and drawn as curves in the report; empty for a single-term loss.
    pub parts: Vec<(String, Tensor)>,
    /// Counts that are not loss terms (queries a loss fell back on), logged as `loss_stats`.
    pub stats: Vec<(String, f64)>,
}

impl LossOutput {
    /// A loss with no parts.
    pub fn single(total: Tensor) -> Self {
        LossOutput {
            total,
            parts: Vec::new(),
            stats: Vec::new(),
        }
    }
}

/// A training objective; see the module docs for when the trainer calls it.
pub trait Loss: Send {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// Whether the trainer should embed each negative's own query (CLPL); when false (the
    /// default) [`LossInput::negative_queries`] is `None` and no time is spent on them.
    fn needs_negative_queries(&self) -> bool {
        false
    }

    /// The loss of the batch; `total` must be differentiable in `input.queries`,
    /// `input.passages` and `input.negative_queries`.
    fn loss(&self, input: &LossInput) -> Result<LossOutput>;
}

/// The `[loss]` table of a training config: which objective, with its own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LossConfig {
    /// InfoNCE over in-batch and hard negatives (DPR, sentence-transformers MNRL).
    Infonce(InfoNceConfig),
    /// InfoNCE plus CLPL's penalty pulling each negative towards its own query.
    Clpl(ClplConfig),
    /// InfoNCE at several prefix lengths (Matryoshka representation learning).
    Matryoshka(MatryoshkaConfig),
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig::Infonce(InfoNceConfig::default())
    }
}

impl LossConfig {
    /// The `kind` values this build knows, for error messages and the flag check.
    pub const KINDS: &'static [&'static str] = &["infonce", "clpl", "matryoshka"];

    /// The objective this table describes.
    pub fn build(&self) -> Box<dyn Loss> {
        match self {
            LossConfig::Infonce(c) => Box::new(InfoNce {
                temperature: c.temperature,
            }),
            LossConfig::Clpl(c) => Box::new(ClplLoss {
                lambda: c.lambda,
                temperature: c.temperature,
            }),
            LossConfig::Matryoshka(c) => Box::new(MatryoshkaLoss {
                dims: c.weighted(),
                temperature: c.temperature,
            }),
        }
    }

    /// Checks the keys' ranges; errors name the key as `loss.<key>`.
    pub fn validate(&self) -> Result<()> {
        match self {
            LossConfig::Infonce(c) => c.validate(),
            LossConfig::Clpl(c) => c.validate(),
            LossConfig::Matryoshka(c) => c.validate(),
        }
    }
}

/// Row-wise `log Σ exp` of `[B, N]` scores, `[B, 1]`, stable: the row maximum is subtracted
/// first and carries no gradient (`-inf` entries drop out).
pub fn log_sum_exp(scores: &Tensor) -> candle_core::Result<Tensor> {
    let max = scores.max_keepdim(candle_core::D::Minus1)?.detach();
    scores
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(candle_core::D::Minus1)?
        .log()?
        + max
}

/// A loss value as f64, whatever the tensor's dtype.
pub fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
