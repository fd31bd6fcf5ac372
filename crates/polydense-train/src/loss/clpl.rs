//! The Contrastive Learning Penalty Loss (CLPL, arXiv 2412.17364): InfoNCE plus a penalty
//! that pulls each hard negative towards a query for which it is the answer, so training
//! pushes negatives away from the wrong query without pushing them anywhere at all.

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use super::{InfoNce, InfoNceConfig, Loss, LossInput, LossOutput};
use crate::error::{Result, TrainError};

/// The keys of `[loss] kind = "clpl"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClplConfig {
    /// λ, the penalty's share: loss = (1 − λ)·InfoNCE + λ·penalty (0.1 in the authors' runs,
    /// hard-coded in their code).
    pub lambda: f64,
    /// The InfoNCE temperature τ (0.02 in the authors' runs on BGE-M3).
    pub temperature: f64,
}

impl Default for ClplConfig {
    fn default() -> Self {
        ClplConfig {
            lambda: 0.1,
            temperature: 0.02,
        }
    }
}

impl ClplConfig {
    /// λ in [0, 1], τ positive.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.lambda) {
            return Err(TrainError::config("loss.lambda", "must lie in [0, 1]"));
        }
        InfoNceConfig {
            temperature: self.temperature,
        }
        .validate()
    }
}

/// CLPL: for query i with hard negatives whose own queries are known,
/// `(1 − λ)·CE_i + λ·mean_j (1 − cos(negq_j, neg_j))`; a query none of whose negatives has a
/// known query falls back to `CE_i` alone. The batch loss is the mean over queries.
///
/// Each negative query is paired with its own negative through the batch's row layout, for
/// any batch size and under GradCache (the authors' code pairs them with the wrong rows
/// once a device holds more than one query).
#[derive(Debug, Clone, Copy)]
pub struct ClplLoss {
    /// λ.
    pub lambda: f64,
    /// τ of the InfoNCE term.
    pub temperature: f64,
}

impl Loss for ClplLoss {
    fn name(&self) -> &str {
        "clpl"
    }

    fn needs_negative_queries(&self) -> bool {
        true
    }

    fn loss(&self, input: &LossInput) -> Result<LossOutput> {
        let ce = InfoNce {
            temperature: self.temperature,
        }
        .per_query(input)?;
        let b = input.batch.len();
        let group = input.group.max(1);
        let pairs = &input.batch.negative_queries;
        // Row i of `owner` averages the penalties of query i's negatives.
        let mut counts = vec![0usize; b];
        for n in pairs {
            counts[n.row / group] += 1;
        }
        let (dev, dtype) = (ce.device().clone(), ce.dtype());
        let with = counts.iter().filter(|&&c| c > 0).count();
        let (total, penalty_mean) = match (input.negative_queries, pairs.is_empty()) {
            (Some(nq), false) => {
                let rows: Vec<u32> = pairs.iter().map(|n| n.row as u32).collect();
                let rows = Tensor::from_vec(rows, pairs.len(), &dev)?;
                let neg = input.passages.index_select(&rows, 0)?;
                let penalty = (1.0 - cosine(nq, &neg)?)?;
                let mut owner = vec![0f32; b * pairs.len()];
                for (k, n) in pairs.iter().enumerate() {
                    let i = n.row / group;
                    owner[i * pairs.len() + k] = 1.0 / counts[i] as f32;
                }
                let owner = Tensor::from_vec(owner, (b, pairs.len()), &dev)?.to_dtype(dtype)?;
                let per_query = owner.matmul(&penalty.unsqueeze(1)?)?.squeeze(1)?;
                let has: Vec<f32> = counts.iter().map(|&c| f32::from(u8::from(c > 0))).collect();
                let has = Tensor::from_vec(has, b, &dev)?.to_dtype(dtype)?;
                // (1 − λ) on the InfoNCE of queries with a penalty, 1 on the others.
                let w_ce = (1.0 - (&has * self.lambda)?)?;
                let total =
                    ((&ce * w_ce)? + ((per_query.clone() * &has)? * self.lambda)?)?.mean_all()?;
                let penalty_mean = ((per_query * has)?.sum_all()? / with.max(1) as f64)?;
                (total, penalty_mean)
            }
            _ => (ce.mean_all()?, Tensor::zeros((), dtype, &dev)?),
        };
        Ok(LossOutput {
            total,
            parts: vec![
                ("infonce".into(), ce.mean_all()?),
                ("penalty".into(), penalty_mean),
            ],
            stats: vec![("no_negative_query".into(), (b - with) as f64)],
        })
    }
}

/// Row-wise cosine of two `[N, d]` matrices, `[N]`; norms clamped as torch's
/// `F.cosine_similarity` clamps them (eps 1e-8).
fn cosine(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dot = (a * b)?.sum(D::Minus1)?;
    let na = a.sqr()?.sum(D::Minus1)?.sqrt()?.maximum(1e-8)?;
    let nb = b.sqr()?.sum(D::Minus1)?.sqrt()?.maximum(1e-8)?;
    Ok((dot / (na * nb)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{NegativeQuery, TrainBatch};
    use crate::loss::{scalar, Progress};
    use candle_core::Device;

    /// A batch of three queries with two passages each (positive, negative); queries 0 and 2
    /// know their negative's own query, query 1 does not.
    fn batch() -> TrainBatch {
        TrainBatch {
            queries: vec!["a".into(), "b".into(), "c".into()],
            group: 2,
            negative_queries: vec![
                NegativeQuery {
                    row: 1,
                    text: "who a?".into(),
                },
                NegativeQuery {
                    row: 5,
                    text: "who c?".into(),
                },
            ],
            ..TrainBatch::default()
        }
    }

    fn t(rows: &[[f64; 2]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    #[test]
    fn clpl_matches_a_hand_computation_for_a_batch_of_three() {
        let q = t(&[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]);
        let p = t(&[
            [1.0, 0.0],
            [0.8, 0.6],
            [0.0, 1.0],
            [0.6, 0.8],
            [0.6, 0.8],
            [1.0, 0.0],
        ]);
        let nq = t(&[[0.6, 0.8], [0.0, 1.0]]);
        let b = batch();
        let (lambda, tau) = (0.1, 0.5);
        let input = LossInput {
            queries: &q,
            passages: &p,
            group: 2,
            batch: &b,
            negative_queries: Some(&nq),
            extra_negatives: None,
            progress: Progress::default(),
            seed: 0,
        };
        let out = ClplLoss {
            lambda,
            temperature: tau,
        }
        .loss(&input)
        .unwrap();
        // By hand: each query's cross-entropy over all six passages.
        let qs = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]];
        let ps = [
            [1.0, 0.0],
            [0.8, 0.6],
            [0.0, 1.0],
            [0.6, 0.8],
            [0.6, 0.8],
            [1.0, 0.0],
        ];
        let dot = |a: [f64; 2], b: [f64; 2]| a[0] * b[0] + a[1] * b[1];
        let ce: Vec<f64> = (0..3)
            .map(|i| {
                let z: f64 = ps.iter().map(|p| (dot(qs[i], *p) / tau).exp()).sum();
                z.ln() - dot(qs[i], ps[2 * i]) / tau
            })
            .collect();
        // Penalties: negative row 1 (0.8, 0.6) against its query (0.6, 0.8); row 5 (1, 0)
        // against (0, 1). All vectors are unit length, so cosine is the dot product.
        let pen0 = 1.0 - dot([0.8, 0.6], [0.6, 0.8]);
        let pen2 = 1.0 - dot([1.0, 0.0], [0.0, 1.0]);
        let want = ((1.0 - lambda) * ce[0]
            + lambda * pen0
            + ce[1]
            + (1.0 - lambda) * ce[2]
            + lambda * pen2)
            / 3.0;
        let got = scalar(&out.total).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let part = |n: &str| scalar(&out.parts.iter().find(|p| p.0 == n).unwrap().1).unwrap();
        assert!((part("infonce") - ce.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        assert!((part("penalty") - (pen0 + pen2) / 2.0).abs() < 1e-12);
        assert_eq!(out.stats, vec![("no_negative_query".to_string(), 1.0)]);

        // Without negative queries the loss is InfoNCE.
        let plain = LossInput {
            negative_queries: None,
            ..input
        };
        let got = scalar(
            &ClplLoss {
                lambda,
                temperature: tau,
            }
            .loss(&plain)
            .unwrap()
            .total,
        )
        .unwrap();
        assert!((got - ce.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    }
}
