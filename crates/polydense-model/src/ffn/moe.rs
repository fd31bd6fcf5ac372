//! [`MoeFeedForward`]: a layer's feed-forward block as a mixture of experts (CLPL, arXiv
//! 2412.17364): E experts, copies of the pretrained dense weights, behind a bias-free linear
//! gate with per-token top-k routing.
//!
//! The authors' code takes the softmax over the one selected logit, which is always 1, so the
//! gate never gets a gradient. Here the selected experts' outputs are weighted by their
//! probability under the softmax over all E logits, as Switch Transformer (Fedus et al.
//! 2022) does, so the gate learns; `router_scale = "unit"` divides that weight by its own
//! value outside the graph, so an upcycled model starts exactly as the dense one while the
//! gate gets the same gradient direction. A Switch-style load-balancing term
//! (`E·Σ_e f_e·P_e`) is computed on every forward pass for the trainer to add.
//!
//! The block runs as candle ops (the fused CPU layer kernel covers BERT's dense block only);
//! the layer around it still uses the fused attention, layer-norm and GELU kernels.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::Activation;
use crate::linear::Linear;
use crate::ops::gelu::bias_gelu;
use crate::ops::softmax::softmax_last_dim;
use crate::ops::Kernels;

/// Which of the feed-forward's two dense layers become experts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpertLayers {
    /// `intermediate.dense` only (the CLPL recipe); the output dense stays shared.
    Intermediate,
    /// `output.dense` only.
    Output,
    /// Both: each expert is a whole FFN (Switch Transformer).
    Both,
}

impl ExpertLayers {
    /// Whether the intermediate dense is split into experts.
    pub fn intermediate(self) -> bool {
        matches!(self, ExpertLayers::Intermediate | ExpertLayers::Both)
    }

    /// Whether the output dense is split into experts.
    pub fn output(self) -> bool {
        matches!(self, ExpertLayers::Output | ExpertLayers::Both)
    }
}

/// How a selected expert's output is weighted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterScale {
    /// By its gate probability p (Switch Transformer).
    Probability,
    /// By p / p with the denominator outside the graph: the value is 1, so copies of the dense
    /// weights reproduce the dense model exactly; the gate gets Switch's gradient divided by p
    /// (a straight-through estimate) and the input none through the gate.
    Unit,
}

/// The architecture of a mixture-of-experts block, as config.json records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    /// Experts E.
    pub experts: usize,
    /// Experts each token is routed to.
    pub top_k: usize,
    /// Which dense layers are experts.
    pub layers: ExpertLayers,
    /// How selected experts are weighted.
    pub router_scale: RouterScale,
}

/// What the forward passes since the last [`MoeFeedForward::take_stats`] routed.
#[derive(Debug, Default)]
struct Stats {
    /// Token assignments per expert.
    tokens: Vec<u64>,
    /// The load-balancing term of the last forward pass, with its graph.
    balance: Option<Tensor>,
}

/// A mixture-of-experts feed-forward block.
#[derive(Debug)]
pub struct MoeFeedForward {
    /// The bias-free gate, `[E, hidden]`.
    pub gate: Tensor,
    /// The intermediate dense: E experts, or one shared layer.
    pub intermediate: Vec<Linear>,
    /// The output dense: E experts, or one shared layer.
    pub output: Vec<Linear>,
    /// The activation between them.
    pub act: Activation,
    /// The architecture.
    pub config: MoeConfig,
    stats: Arc<Mutex<Stats>>,
}

impl Clone for MoeFeedForward {
    /// A copy that counts its own routing (the statistics are per block instance).
    fn clone(&self) -> Self {
        MoeFeedForward {
            gate: self.gate.clone(),
            intermediate: self.intermediate.clone(),
            output: self.output.clone(),
            act: self.act,
            config: self.config.clone(),
            stats: Arc::default(),
        }
    }
}

impl MoeFeedForward {
    /// A block from its parts.
    pub fn new(
        gate: Tensor,
        intermediate: Vec<Linear>,
        output: Vec<Linear>,
        act: Activation,
        config: MoeConfig,
    ) -> Self {
        MoeFeedForward {
            gate,
            intermediate,
            output,
            act,
            config,
            stats: Arc::default(),
        }
    }

    /// Tokens per expert routed since the last call, and the load-balancing term of the last
    /// forward pass (with its autograd graph when that pass had one); both are reset.
    pub fn take_stats(&self) -> (Vec<u64>, Option<Tensor>) {
        let mut s = self.stats.lock().expect("routing stats lock");
        let tokens = std::mem::take(&mut s.tokens);
        (tokens, s.balance.take())
    }

    /// Maps `[tokens, hidden]` to `[tokens, hidden]`, differentiably in every weight, the gate
    /// included.
    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let (t, _) = x.dims2()?;
        let e_count = self.config.experts;
        // Under the unit scale the output does not depend on the probabilities, so no gradient
        // may reach the input through them; the gate alone gets the surrogate gradient.
        let gate_in = match self.config.router_scale {
            RouterScale::Probability => x.clone(),
            RouterScale::Unit => x.detach(),
        };
        let probs = softmax_last_dim(&gate_in.matmul(&self.gate.t()?)?, kernels)?;
        let host: Vec<f32> = probs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        // Each token's top-k experts (ties to the lower index), grouped by expert.
        let k = self.config.top_k.clamp(1, e_count);
        let mut routed: Vec<Vec<u32>> = vec![Vec::new(); e_count];
        for tok in 0..t {
            let row = &host[tok * e_count..(tok + 1) * e_count];
            let mut order: Vec<usize> = (0..e_count).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            for &e in &order[..k] {
                routed[e].push(tok as u32);
            }
        }
        let device = x.device();
        let flat = probs.flatten_all()?;
        let weight_of = |e: usize, idx: &[u32]| -> Result<Tensor> {
            let at: Vec<u32> = idx
                .iter()
                .map(|&tok| tok * e_count as u32 + e as u32)
                .collect();
            let p = flat.index_select(&Tensor::from_vec(at, idx.len(), device)?, 0)?;
            let w = match self.config.router_scale {
                RouterScale::Probability => p,
                RouterScale::Unit => (&p / p.detach())?,
            };
            w.unsqueeze(1)
        };
        let layers = self.config.layers;
        // With shared intermediate weights, the activation is computed once for all tokens.
        let shared_act = match layers.intermediate() {
            true => None,
            false => Some(self.activate(x, &self.intermediate[0], kernels)?),
        };
        let width = match layers.output() {
            true => x.dim(1)?,
            false => self.intermediate[0].weight.dim(0)?,
        };
        let mut combined = Tensor::zeros((t, width), x.dtype(), device)?;
        for (e, idx) in routed.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let ids = Tensor::from_vec(idx.clone(), idx.len(), device)?;
            let w = weight_of(e, idx)?;
            let out = match layers {
                ExpertLayers::Intermediate => {
                    self.intermediate[e].forward(&x.index_select(&ids, 0)?)?
                }
                ExpertLayers::Output => self.output[e]
                    .forward(&shared_act.as_ref().expect("shared").index_select(&ids, 0)?)?,
                ExpertLayers::Both => {
                    let a =
                        self.activate(&x.index_select(&ids, 0)?, &self.intermediate[e], kernels)?;
                    self.output[e].forward(&a)?
                }
            };
            combined = combined.index_add(&ids, &out.broadcast_mul(&w)?, 0)?;
        }
        let y = match layers {
            // The weighted pre-activations of the experts go through the activation and the
            // shared output dense.
            ExpertLayers::Intermediate => {
                let zero = Tensor::zeros(width, x.dtype(), device)?;
                let a = bias_gelu(&combined, &zero, self.act, kernels)?;
                self.output[0].forward(&a)?
            }
            _ => combined,
        };
        // Switch Transformer's auxiliary loss: E · Σ_e (share of assignments to e) · (mean
        // probability of e); 1 when routing is uniform.
        let total = (t * k).max(1) as f64;
        let share: Vec<f32> = routed
            .iter()
            .map(|r| (r.len() as f64 / total) as f32)
            .collect();
        let share = Tensor::from_vec(share, e_count, device)?.to_dtype(x.dtype())?;
        let balance = ((probs.mean(0)? * share)?.sum_all()? * e_count as f64)?;
        let mut s = self.stats.lock().expect("routing stats lock");
        if s.tokens.len() != e_count {
            s.tokens = vec![0; e_count];
        }
        for (c, r) in s.tokens.iter_mut().zip(&routed) {
            *c += r.len() as u64;
        }
        s.balance = Some(balance);
        Ok(y)
    }

    /// `act(x W₁ᵀ + b₁)` with the fused bias-GELU kernel.
    fn activate(&self, x: &Tensor, l: &Linear, kernels: Kernels) -> Result<Tensor> {
        bias_gelu(&l.project(x)?, &l.bias, self.act, kernels)
    }

    /// The block's tensors under their names (`encoder.layer.N.moe.gate.weight`,
    /// `.intermediate.experts.E.{weight,bias}` or `.intermediate.dense.*`, likewise `output`).
    pub fn named(&self, p: &str) -> Vec<(String, Tensor)> {
        let mut v = vec![(format!("{p}.moe.gate.weight"), self.gate.clone())];
        let layers = self.config.layers;
        for (name, list, split) in [
            ("intermediate", &self.intermediate, layers.intermediate()),
            ("output", &self.output, layers.output()),
        ] {
            match split {
                true => {
                    for (e, l) in list.iter().enumerate() {
                        v.extend(l.named(&format!("{p}.{name}.experts.{e}")));
                    }
                }
                false => v.extend(list[0].named(&format!("{p}.{name}.dense"))),
            }
        }
        v
    }

    /// A copy cut from the autograd graph, for inference.
    pub fn detached(&self) -> Self {
        MoeFeedForward::new(
            self.gate.detach(),
            self.intermediate.iter().map(Linear::detached).collect(),
            self.output.iter().map(Linear::detached).collect(),
            self.act,
            self.config.clone(),
        )
    }
}

/// Gaussian noise of standard deviation `scale · std(w)` added to `w`, drawn from `seed`: lets
/// copied experts diverge from the first step (0 keeps exact copies).
pub fn perturbed(w: &Tensor, scale: f64, seed: u64) -> Result<Tensor> {
    if scale == 0.0 {
        return w.copy();
    }
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let values: Vec<f64> = w.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = rand_distr::Normal::new(0.0, scale * std.max(1e-12)).expect("a finite std");
    let noisy: Vec<f64> = values.iter().map(|x| x + normal.sample(&mut rng)).collect();
    Tensor::from_vec(noisy, w.shape(), &Device::Cpu)?
        .to_device(w.device())?
        .to_dtype(w.dtype())
}
