//! The position-wise feed-forward block of a layer, built from its description in the model
//! config ([`FfnConfig`]), so a model with another block kind saves and loads back as itself.
//!
//! A block is an enum rather than a trait object because the fused CPU layer
//! ([`crate::ops::layer`]) computes a dense block together with attention and the norms: the
//! transformer must know which block it runs to pick the fused kernel, and it knows that from
//! the variant built from the config, never from tensor names. The mixture-of-experts block
//! ([`moe`], CLPL arXiv 2412.17364) is the second variant.

pub mod moe;

pub use moe::{ExpertLayers, MoeConfig, MoeFeedForward, RouterScale};

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::Activation;
use crate::linear::Linear;
use crate::ops::{gelu::bias_gelu, Kernels};

/// How one layer's feed-forward block is built; written to config.json (see
/// [`crate::config::EncoderConfig::ffn`]) when any layer is not dense.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FfnConfig {
    /// BERT's `W₂ · act(W₁ x + b₁) + b₂` (`intermediate.dense`, `output.dense`).
    Dense,
    /// A mixture of experts with a gate ([`MoeFeedForward`]).
    Moe(MoeConfig),
}

/// BERT's FFN: `W₂ · act(W₁ x + b₁) + b₂`.
#[derive(Debug, Clone)]
pub struct DenseFeedForward {
    /// `intermediate.dense`: hidden → intermediate.
    pub intermediate: Linear,
    /// `output.dense`: intermediate → hidden.
    pub output: Linear,
    /// The activation between them.
    pub act: Activation,
}

impl DenseFeedForward {
    fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let inner = bias_gelu(
            &self.intermediate.project(x)?,
            &self.intermediate.bias,
            self.act,
            kernels,
        )?;
        self.output.forward(&inner)
    }
}

/// A layer's feed-forward block. The layer calls [`FeedForward::forward`] once per forward
/// pass on the attention block's output, flattened to `[tokens, hidden]`; the result (same
/// shape) goes through the layer's residual add and norm, which are not the block's business.
/// On CPU a dense block never gets that call: the fused layer kernel computes it.
#[derive(Debug, Clone)]
pub enum FeedForward {
    /// See [`FfnConfig::Dense`].
    Dense(DenseFeedForward),
    /// See [`FfnConfig::Moe`].
    Moe(MoeFeedForward),
}

impl FeedForward {
    /// The description that rebuilds this block (written to config.json on save).
    pub fn config(&self) -> FfnConfig {
        match self {
            FeedForward::Dense(_) => FfnConfig::Dense,
            FeedForward::Moe(m) => FfnConfig::Moe(m.config.clone()),
        }
    }

    /// Maps `[tokens, hidden]` to `[tokens, hidden]`, differentiably.
    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        match self {
            FeedForward::Dense(d) => d.forward(x, kernels),
            FeedForward::Moe(m) => m.forward(x, kernels),
        }
    }

    /// The block's tensors with their HF names under the layer prefix (`encoder.layer.N`),
    /// for saving and for the gradient checks.
    pub fn named(&self, p: &str) -> Vec<(String, Tensor)> {
        match self {
            FeedForward::Dense(d) => {
                let mut v = d.intermediate.named(&format!("{p}.intermediate.dense"));
                v.extend(d.output.named(&format!("{p}.output.dense")));
                v
            }
            FeedForward::Moe(m) => m.named(p),
        }
    }

    /// A copy cut from the autograd graph, for inference.
    pub fn detached(&self) -> Self {
        match self {
            FeedForward::Dense(d) => FeedForward::Dense(DenseFeedForward {
                intermediate: d.intermediate.detached(),
                output: d.output.detached(),
                act: d.act,
            }),
            FeedForward::Moe(m) => FeedForward::Moe(m.detached()),
        }
    }
}
