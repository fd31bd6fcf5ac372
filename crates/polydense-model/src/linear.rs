//! [`Linear`]: a dense layer in HF's weight layout, shared by the attention projections, the
//! feed-forward blocks and the heads on the pooled vector.

use candle_core::{Result, Tensor};

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
