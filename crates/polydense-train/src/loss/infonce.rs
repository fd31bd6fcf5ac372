//! InfoNCE, the contrastive objective every recipe here starts from.

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use super::{Loss, LossInput, LossOutput};
use crate::error::{Result, TrainError};

/// The keys of `[loss] kind = "infonce"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InfoNceConfig {
    /// Softmax temperature τ: scores are cos/τ (0.05, sentence-transformers' scale 20; E5 was
    /// trained near 0.01).
    pub temperature: f64,
}

impl Default for InfoNceConfig {
    fn default() -> Self {
        InfoNceConfig { temperature: 0.05 }
    }
}

impl InfoNceConfig {
    /// τ must be positive.
    pub fn validate(&self) -> Result<()> {
        match self.temperature > 0.0 {
            true => Ok(()),
            false => Err(TrainError::config(
                "loss.temperature",
                "must be greater than 0",
            )),
        }
    }
}

/// InfoNCE (van den Oord et al. 2018) as DPR (Karpukhin et al. 2020) uses it: each query's
/// softmax runs over every passage of the batch, its own positive and hard negatives and
/// all other queries' passages (the in-batch negatives), plus any extra negatives.
/// Equal to sentence-transformers' MultipleNegativesRankingLoss with scale = 1/τ.
#[derive(Debug, Clone, Copy)]
pub struct InfoNce {
    /// Temperature τ: similarities are divided by it before the softmax.
    pub temperature: f64,
}

impl Loss for InfoNce {
    fn name(&self) -> &str {
        "infonce"
    }

    fn loss(&self, input: &LossInput) -> Result<LossOutput> {
        Ok(LossOutput::single(self.nll(input)?))
    }
}

impl InfoNce {
    /// The mean negative log-likelihood of each query's positive; other losses build on it.
    pub fn nll(&self, input: &LossInput) -> Result<Tensor> {
        Ok(self.per_query(input)?.mean_all()?)
    }

    /// The negative log-likelihood of each query's positive, `[B]`.
    pub fn per_query(&self, input: &LossInput) -> Result<Tensor> {
        let q = input.queries;
        let in_batch = (q.matmul(&input.passages.t()?)? / self.temperature)?;
        let mut scores = in_batch.clone();
        if let Some(extra) = input.extra_negatives {
            let vectors = extra.vectors.detach().to_dtype(q.dtype())?;
            let s = (q.matmul(&vectors.t()?)? / self.temperature)?;
            // A query's own positive coming back from the memory is no negative: -inf drops it
            // from the softmax and passes it no gradient.
            let excluded =
                Tensor::full(f32::NEG_INFINITY, s.shape(), s.device())?.to_dtype(s.dtype())?;
            scores = Tensor::cat(&[&scores, &extra.allowed.where_cond(&s, &excluded)?], 1)?;
        }
        let lse = super::log_sum_exp(&scores)?;
        // The positive's score, picked from the in-batch columns (a product with a one-hot row
        // would turn the memory's -inf entries into NaN).
        let (b, cols) = in_batch.dims2()?;
        let mut onehot = vec![0f32; b * cols];
        for i in 0..b {
            onehot[i * cols + i * input.group] = 1.0;
        }
        let onehot =
            Tensor::from_vec(onehot, (b, cols), in_batch.device())?.to_dtype(in_batch.dtype())?;
        let positive = (&in_batch * onehot)?.sum_keepdim(D::Minus1)?;
        Ok((lse - positive)?.squeeze(D::Minus1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::TrainBatch;
    use crate::loss::{scalar, ExtraNegatives, Progress};
    use candle_core::Device;

    fn loss_of(q: &Tensor, p: &Tensor, extra: Option<&ExtraNegatives>) -> f64 {
        let batch = TrainBatch::default();
        let input = LossInput {
            queries: q,
            passages: p,
            group: 2,
            batch: &batch,
            negative_queries: None,
            extra_negatives: extra,
            progress: Progress::default(),
            seed: 0,
        };
        let out = InfoNce { temperature: 0.5 }.loss(&input).unwrap();
        assert!(out.parts.is_empty());
        scalar(&out.total).unwrap()
    }

    fn ce<const N: usize>(row: [f64; N], target: usize) -> f64 {
        let z: f64 = row.iter().map(|s| (s / 0.5).exp()).sum();
        z.ln() - row[target] / 0.5
    }

    #[test]
    fn infonce_matches_a_hand_computed_softmax() {
        let q = Tensor::new(&[[1f64, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        // group 2: rows 0,1 belong to query 0 (positive, negative), rows 2,3 to query 1.
        let p = Tensor::new(
            &[[1f64, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]],
            &Device::Cpu,
        )
        .unwrap();
        let got = loss_of(&q, &p, None);
        let want = (ce([1.0, 0.6, 0.0, 0.8], 0) + ce([0.0, 0.8, 1.0, 0.6], 2)) / 2.0;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");

        // An extra negative identical to query 0's positive doubles its competition.
        let extra = |allowed: [u8; 2]| ExtraNegatives {
            vectors: Tensor::new(&[[1f64, 0.0]], &Device::Cpu).unwrap(),
            allowed: Tensor::new(&[[allowed[0]], [allowed[1]]], &Device::Cpu).unwrap(),
        };
        let with = loss_of(&q, &p, Some(&extra([1, 1])));
        let want = (ce([1.0, 0.6, 0.0, 0.8, 1.0], 0) + ce([0.0, 0.8, 1.0, 0.6, 0.0], 2)) / 2.0;
        assert!((with - want).abs() < 1e-12, "{with} vs {want}");

        // Masked for query 0 (it is that query's own positive), kept for query 1.
        let masked = loss_of(&q, &p, Some(&extra([0, 1])));
        let want = (ce([1.0, 0.6, 0.0, 0.8], 0) + ce([0.0, 0.8, 1.0, 0.6, 0.0], 2)) / 2.0;
        assert!((masked - want).abs() < 1e-12, "{masked} vs {want}");
    }

    #[test]
    fn a_masked_memory_entry_gets_no_gradient_and_no_nan() {
        let q = candle_core::Var::new(&[[1f64, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let p = Tensor::new(
            &[[1f64, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]],
            &Device::Cpu,
        )
        .unwrap();
        let extra = ExtraNegatives {
            vectors: Tensor::new(&[[0.3f64, 0.9]], &Device::Cpu).unwrap(),
            allowed: Tensor::new(&[[0u8], [0]], &Device::Cpu).unwrap(),
        };
        let batch = TrainBatch::default();
        let input = |e| LossInput {
            queries: q.as_tensor(),
            passages: &p,
            group: 2,
            batch: &batch,
            negative_queries: None,
            extra_negatives: e,
            progress: Progress::default(),
            seed: 0,
        };
        let l = InfoNce { temperature: 0.5 };
        let grad = |e| {
            let out = l.loss(&input(e)).unwrap().total;
            let g = out.backward().unwrap();
            g.get(q.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
        };
        // Every entry masked: the same loss and gradient as no memory at all.
        let (a, b) = (grad(Some(&extra)), grad(None));
        assert!(a.iter().all(|x| x.is_finite()), "{a:?}");
        assert_eq!(a, b);
    }
}
