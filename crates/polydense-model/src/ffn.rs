//! The position-wise feed-forward block, behind a trait so a layer's FFN can be swapped.
//!
//! The MoE encoder (DESIGN.md, "MoE on the encoder") replaces each layer's FFN with E experts
//! and a gate; it implements [`FeedForward`] and drops into [`crate::encoder::Layer`] unchanged.

use candle_core::{Result, Tensor};

use crate::config::Activation;
use crate::ops::{gelu::bias_gelu, Kernels};

/// A dense layer `x Wᵀ + b` with HF's `[out, in]` weight layout.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out_features, in_features]`, as HF stores it.
    pub weight: Tensor,
    /// `[out_features]`.
    pub bias: Tensor,
}

impl Linear {
    /// `x Wᵀ` without the bias, for callers that fuse the bias into the next op.
    pub fn project(&self, x: &Tensor) -> Result<Tensor> {
        // Wᵀ is a strided view; gemm reads it in place, so no copy is made.
        x.matmul(&self.weight.t()?)
    }

    /// `x Wᵀ + b` on a 2-D input.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.project(x)?.broadcast_add(&self.bias)
    }

    /// A copy that is cut from the autograd graph (shares storage), for inference.
    pub fn detached(&self) -> Self {
        Linear {
            weight: self.weight.detach(),
            bias: self.bias.detach(),
        }
    }

    /// The weight and bias under HF names `<prefix>.weight` and `<prefix>.bias`.
    pub fn named(&self, prefix: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{prefix}.weight"), self.weight.clone()),
            (format!("{prefix}.bias"), self.bias.clone()),
        ]
    }
}

/// What a transformer layer needs from its feed-forward block.
///
/// The layer calls [`FeedForward::forward`] once per forward pass on the attention block's
/// output, flattened to `[tokens, hidden]`; the result (same shape) goes through the residual
/// add and layer norm of the layer, which are not the block's business.
pub trait FeedForward: Send + Sync + std::fmt::Debug {
    /// Maps `[tokens, hidden]` to `[tokens, hidden]`, differentiably.
    fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor>;
    /// The block's tensors with their HF names under the layer prefix (`encoder.layer.N`),
    /// for saving and for the gradient checks.
    fn named(&self, layer_prefix: &str) -> Vec<(String, Tensor)>;
    /// A copy cut from the autograd graph, for inference.
    fn detached(&self) -> Box<dyn FeedForward>;
}

/// BERT's FFN: `W₂ · gelu(W₁ x + b₁) + b₂`.
#[derive(Debug, Clone)]
pub struct DenseFeedForward {
    /// `intermediate.dense`: hidden → intermediate.
    pub intermediate: Linear,
    /// `output.dense`: intermediate → hidden.
    pub output: Linear,
    /// The activation between them.
    pub act: Activation,
}

impl FeedForward for DenseFeedForward {
    fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let inner = bias_gelu(
            &self.intermediate.project(x)?,
            &self.intermediate.bias,
            self.act,
            kernels,
        )?;
        self.output.forward(&inner)
    }

    fn named(&self, p: &str) -> Vec<(String, Tensor)> {
        let mut v = self.intermediate.named(&format!("{p}.intermediate.dense"));
        v.extend(self.output.named(&format!("{p}.output.dense")));
        v
    }

    fn detached(&self) -> Box<dyn FeedForward> {
        Box::new(DenseFeedForward {
            intermediate: self.intermediate.detached(),
            output: self.output.detached(),
            act: self.act,
        })
    }
}
