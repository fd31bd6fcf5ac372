//! Matryoshka representation learning (Kusupati et al. 2022): the loss at several prefix
//! lengths of the same vectors, so a model's leading dimensions work on their own and an
//! index can keep only them. Wraps InfoNCE as sentence-transformers' `MatryoshkaLoss` wraps
//! its inner loss.

use candle_core::Tensor;
use polydense_model::l2_normalize;
use serde::{Deserialize, Serialize};

use super::{ExtraNegatives, InfoNce, InfoNceConfig, Loss, LossInput, LossOutput};
use crate::error::{Result, TrainError};

/// The keys of `[loss] kind = "matryoshka"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatryoshkaConfig {
    /// Prefix lengths trained, each at most the model's width (e5-small: 384).
    pub dims: Vec<usize>,
    /// Weight of each prefix's loss, in the order of `dims`; empty gives every prefix 1
    /// (sentence-transformers' default).
    pub weights: Vec<f64>,
    /// InfoNCE temperature τ at every prefix.
    pub temperature: f64,
}

impl Default for MatryoshkaConfig {
    fn default() -> Self {
        MatryoshkaConfig {
            dims: vec![384, 192, 96, 48, 24],
            weights: Vec::new(),
            temperature: 0.05,
        }
    }
}

impl MatryoshkaConfig {
    /// Dims non-empty, positive and distinct; one weight per dim (or none), each ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if self.dims.is_empty() || self.dims.contains(&0) {
            return Err(TrainError::config(
                "loss.dims",
                "must list at least one prefix length, each at least 1",
            ));
        }
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.dims.len() {
            return Err(TrainError::config("loss.dims", "lists a length twice"));
        }
        if !self.weights.is_empty() && self.weights.len() != self.dims.len() {
            return Err(TrainError::config(
                "loss.weights",
                format!(
                    "has {} weights for {} dims",
                    self.weights.len(),
                    self.dims.len()
                ),
            ));
        }
        if self.weights.iter().any(|w| w.is_nan() || *w < 0.0) {
            return Err(TrainError::config("loss.weights", "must be at least 0"));
        }
        InfoNceConfig {
            temperature: self.temperature,
        }
        .validate()
    }

    /// `(dim, weight)` pairs.
    pub fn weighted(&self) -> Vec<(usize, f64)> {
        self.dims
            .iter()
            .enumerate()
            .map(|(i, &d)| (d, self.weights.get(i).copied().unwrap_or(1.0)))
            .collect()
    }
}

/// `Σ_d w_d · InfoNCE(prefix_d(q), prefix_d(p))`, each prefix re-normalised so its scores
/// are cosines; memory negatives are cut to the same prefix. One part per prefix
/// (`dim_96`), unweighted.
#[derive(Debug, Clone)]
pub struct MatryoshkaLoss {
    /// `(dim, weight)` pairs.
    pub dims: Vec<(usize, f64)>,
    /// τ of every prefix's InfoNCE.
    pub temperature: f64,
}

/// The first `d` columns of `x`, re-normalised to unit rows.
pub fn prefix(x: &Tensor, d: usize) -> candle_core::Result<Tensor> {
    l2_normalize(&x.narrow(1, 0, d)?)
}

impl Loss for MatryoshkaLoss {
    fn name(&self) -> &str {
        "matryoshka"
    }

    fn loss(&self, input: &LossInput) -> Result<LossOutput> {
        let width = input.queries.dim(1)?;
        let inner = InfoNce {
            temperature: self.temperature,
        };
        let mut total: Option<Tensor> = None;
        let mut parts = Vec::with_capacity(self.dims.len());
        for &(d, w) in &self.dims {
            if d > width {
                return Err(TrainError::config(
                    "loss.dims",
                    format!("lists {d}, wider than the model's {width}-dim vectors"),
                ));
            }
            let (q, p) = (prefix(input.queries, d)?, prefix(input.passages, d)?);
            let extra = match input.extra_negatives {
                Some(e) => Some(ExtraNegatives {
                    vectors: prefix(&e.vectors.detach(), d)?,
                    allowed: e.allowed.clone(),
                }),
                None => None,
            };
            let l = inner.nll(&LossInput {
                queries: &q,
                passages: &p,
                extra_negatives: extra.as_ref(),
                ..*input
            })?;
            let weighted = (&l * w)?;
            total = Some(match total {
                Some(t) => (t + weighted)?,
                None => weighted,
            });
            parts.push((format!("dim_{d}"), l));
        }
        Ok(LossOutput {
            total: total.expect("validated: at least one dim"),
            parts,
            stats: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::TrainBatch;
    use crate::loss::{scalar, Progress};
    use candle_core::{Device, Var};

    fn input<'a>(q: &'a Tensor, p: &'a Tensor, batch: &'a TrainBatch) -> LossInput<'a> {
        LossInput {
            queries: q,
            passages: p,
            group: 1,
            batch,
            negative_queries: None,
            extra_negatives: None,
            progress: Progress::default(),
            seed: 0,
        }
    }

    #[test]
    fn each_prefix_is_infonce_on_the_renormalised_prefix_and_weights_add_up() {
        let dev = Device::Cpu;
        // In 2 dims the queries match their passages; in all 4 they are swapped.
        let q = Tensor::new(&[[1f64, 0.0, 0.0, 3.0], [0.0, 1.0, 3.0, 0.0]], &dev).unwrap();
        let p = Tensor::new(&[[1f64, 0.0, 3.0, 0.0], [0.0, 1.0, 0.0, 3.0]], &dev).unwrap();
        let batch = TrainBatch::default();
        let loss = MatryoshkaLoss {
            dims: vec![(4, 1.0), (2, 0.5)],
            temperature: 0.5,
        };
        let out = loss.loss(&input(&q, &p, &batch)).unwrap();
        let part =
            |name: &str| scalar(&out.parts.iter().find(|(n, _)| n == name).unwrap().1).unwrap();
        let inner = InfoNce { temperature: 0.5 };
        let at = |d| {
            let (qd, pd) = (prefix(&q, d).unwrap(), prefix(&p, d).unwrap());
            scalar(&inner.nll(&input(&qd, &pd, &batch)).unwrap()).unwrap()
        };
        assert!((part("dim_4") - at(4)).abs() < 1e-12);
        assert!((part("dim_2") - at(2)).abs() < 1e-12);
        // The 2-dim prefix ranks correctly, the full vectors do not.
        assert!(part("dim_2") < part("dim_4"));
        let total = scalar(&out.total).unwrap();
        assert!((total - (at(4) + 0.5 * at(2))).abs() < 1e-12);
    }

    #[test]
    fn only_the_prefix_gets_a_gradient_from_a_prefix_only_loss() {
        let dev = Device::Cpu;
        let q = Var::new(&[[1f64, 0.2, 0.3], [0.1, 1.0, -0.4]], &dev).unwrap();
        let p = Tensor::new(&[[0.9f64, 0.1, 0.0], [0.0, 1.0, 0.5]], &dev).unwrap();
        let batch = TrainBatch::default();
        let loss = MatryoshkaLoss {
            dims: vec![(2, 1.0)],
            temperature: 0.5,
        };
        let out = loss.loss(&input(q.as_tensor(), &p, &batch)).unwrap();
        let g = out.total.backward().unwrap();
        let g = g.get(q.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        assert!(g.iter().all(|row| row[2] == 0.0 && row[0] != 0.0), "{g:?}");
    }

    #[test]
    fn bad_dims_and_weights_are_named() {
        let bad = |c: MatryoshkaConfig| c.validate().unwrap_err().to_string();
        let base = MatryoshkaConfig::default();
        assert!(bad(MatryoshkaConfig {
            dims: vec![],
            ..base.clone()
        })
        .contains("loss.dims"));
        assert!(bad(MatryoshkaConfig {
            dims: vec![96, 96],
            ..base.clone()
        })
        .contains("twice"));
        assert!(bad(MatryoshkaConfig {
            weights: vec![1.0],
            ..base.clone()
        })
        .contains("loss.weights"));
        let batch = TrainBatch::default();
        let q = Tensor::ones((1, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = MatryoshkaLoss {
            dims: vec![(16, 1.0)],
            temperature: 0.05,
        }
        .loss(&input(&q, &q, &batch))
        .unwrap_err()
        .to_string();
        assert!(err.contains("wider than the model's 8-dim"), "{err}");
    }
}
