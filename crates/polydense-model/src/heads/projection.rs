//! [`Projection`]: a dense layer on the pooled vector, stored as sentence-transformers'
//! `Dense` module (`N_Dense/config.json` and `N_Dense/model.safetensors`), so a model with a
//! head loads in sentence-transformers unchanged and models that ship one (LaBSE, the
//! sentence-t5 family) load here.
//!
//! It is also the form every compression head takes at inference: a learned adaptor (MRL,
//! SMEC) is a linear map, and a selection of dimensions is its rows reordered, so a
//! compressed model is this head followed by truncation to a prefix.

use candle_core::{Result, Tensor};
use serde_json::{json, Value};

use crate::linear::Linear;

/// The activation after the projection, as sentence-transformers names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectionActivation {
    /// `torch.nn.modules.linear.Identity`: a linear head.
    Identity,
    /// `torch.nn.modules.activation.Tanh` (sentence-transformers' default for Dense).
    Tanh,
}

impl ProjectionActivation {
    const IDENTITY: &'static str = "torch.nn.modules.linear.Identity";
    const TANH: &'static str = "torch.nn.modules.activation.Tanh";

    /// The class name sentence-transformers writes in the module's config.json.
    pub fn torch_name(self) -> &'static str {
        match self {
            ProjectionActivation::Identity => Self::IDENTITY,
            ProjectionActivation::Tanh => Self::TANH,
        }
    }

    /// Parses a class name from a module's config.json.
    pub fn from_torch_name(name: &str) -> Option<Self> {
        match name {
            Self::IDENTITY => Some(ProjectionActivation::Identity),
            Self::TANH => Some(ProjectionActivation::Tanh),
            _ => None,
        }
    }
}

/// The shape of a projection head; read from and written to the Dense module's config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Width of the pooled vector it reads.
    pub in_features: usize,
    /// Width of the vector it writes.
    pub out_features: usize,
    /// Whether it adds a bias.
    pub bias: bool,
    /// The activation after it.
    pub activation: ProjectionActivation,
}

impl ProjectionConfig {
    /// The module's config.json, as sentence-transformers writes it.
    pub fn to_json(&self) -> Value {
        json!({
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": self.activation.torch_name(),
        })
    }

    /// Reads the module's config.json; the error names the field.
    pub fn from_json(v: &Value) -> std::result::Result<Self, (String, String)> {
        let int = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    (
                        k.to_string(),
                        "missing or not an unsigned integer".to_string(),
                    )
                })
        };
        let act = v
            .get("activation_function")
            .and_then(Value::as_str)
            .unwrap_or(ProjectionActivation::TANH);
        Ok(ProjectionConfig {
            in_features: int("in_features")?,
            out_features: int("out_features")?,
            bias: v.get("bias").and_then(Value::as_bool).unwrap_or(true),
            activation: ProjectionActivation::from_torch_name(act).ok_or_else(|| {
                (
                    "activation_function".to_string(),
                    format!("`{act}` (supported: Identity, Tanh)"),
                )
            })?,
        })
    }
}

/// A dense head on the pooled vector: `act(x Wᵀ + b)`.
#[derive(Debug, Clone)]
pub struct Projection {
    /// `[out, in]` weight (sentence-transformers' `linear.weight`).
    pub weight: Tensor,
    /// `[out]` bias, when the head has one.
    pub bias: Option<Tensor>,
    /// The activation after the product.
    pub activation: ProjectionActivation,
}

impl Projection {
    /// The tensor names inside the module's model.safetensors.
    pub const WEIGHT: &'static str = "linear.weight";
    /// See [`Projection::WEIGHT`].
    pub const BIAS: &'static str = "linear.bias";

    /// The head's shape.
    pub fn config(&self) -> Result<ProjectionConfig> {
        let (out_features, in_features) = self.weight.dims2()?;
        Ok(ProjectionConfig {
            in_features,
            out_features,
            bias: self.bias.is_some(),
            activation: self.activation,
        })
    }

    /// Maps pooled `[batch, in]` vectors to `[batch, out]`, differentiably.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.bias {
            Some(b) => Linear {
                weight: self.weight.clone(),
                bias: b.clone(),
            }
            .forward(x)?,
            None => x.matmul(&self.weight.t()?)?,
        };
        match self.activation {
            ProjectionActivation::Identity => Ok(y),
            ProjectionActivation::Tanh => y.tanh(),
        }
    }

    /// Maps row-major host vectors (width `in`) to row-major `out`-wide ones, for vectors
    /// already computed without the head (a cache of the backbone's).
    pub fn forward_rows(&self, x: &[f32]) -> Result<Vec<f32>> {
        let (_, inp) = self.weight.dims2()?;
        let t = Tensor::from_slice(x, (x.len() / inp, inp), self.weight.device())?
            .to_dtype(self.weight.dtype())?;
        self.forward(&t)?
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()
    }

    /// The output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The tensors under their names in the module's file.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![(Self::WEIGHT.to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            v.push((Self::BIAS.to_string(), b.clone()));
        }
        v
    }

    /// A copy cut from the autograd graph, for inference.
    pub fn detached(&self) -> Self {
        Projection {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
            activation: self.activation,
        }
    }
}
