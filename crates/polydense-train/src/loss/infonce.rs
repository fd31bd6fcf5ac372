//! The [`Loss`] seam: a contrastive objective over one batch of query and passage vectors.
//!
//! The trainer calls [`Loss::loss`] once per optimiser step with the whole batch's
//! embeddings. Under GradCache those embeddings are leaf variables cut from the encoder, so
//! a loss must be a function of its inputs alone (no hidden state that changes between the
//! two calls GradCache makes); the trainer then back-propagates the returned scalar. New
//! objectives (CLPL, Matryoshka) implement this trait and plug into the same trainer.

use candle_core::{DType, Tensor, D};

use crate::error::Result;

/// The vectors of one batch, laid out as the trainer builds them.
#[derive(Debug, Clone, Copy)]
pub struct LossInput<'a> {
    /// `[B, dim]`, one row per query.
    pub queries: &'a Tensor,
    /// `[B·group, dim]`: query i's positive is row `i·group`, its hard negatives the
    /// `group - 1` rows after it.
    pub passages: &'a Tensor,
    /// Passages per query (1 + hard negatives).
    pub group: usize,
    /// `[M, dim]` extra negatives shared by every query (a cross-batch memory); no gradient
    /// flows into them.
    pub extra_negatives: Option<&'a Tensor>,
}

/// A training objective. Called by the trainer once per step (twice under GradCache: never
/// with different inputs); the result is a scalar tensor whose gradient trains the encoder.
pub trait Loss: Send {
    /// A short name for logs and metrics.
    fn name(&self) -> &str;

    /// The scalar loss of the batch; must be differentiable in `input.queries` and
    /// `input.passages`.
    fn loss(&self, input: &LossInput) -> Result<Tensor>;
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

    fn loss(&self, input: &LossInput) -> Result<Tensor> {
        let q = input.queries;
        let mut scores = q.matmul(&input.passages.t()?)?;
        if let Some(extra) = input.extra_negatives {
            let extra = extra.detach().to_dtype(q.dtype())?;
            scores = Tensor::cat(&[&scores, &q.matmul(&extra.t()?)?], 1)?;
        }
        let scores = (scores / self.temperature)?;
        let (b, cols) = scores.dims2()?;
        // The row maximum only shifts the log-sum-exp for stability; it carries no gradient.
        let max = scores.max_keepdim(D::Minus1)?.detach();
        let lse = (scores
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + &max)?;
        let mut onehot = vec![0f32; b * cols];
        for i in 0..b {
            onehot[i * cols + i * input.group] = 1.0;
        }
        let onehot =
            Tensor::from_vec(onehot, (b, cols), scores.device())?.to_dtype(scores.dtype())?;
        let positive = (&scores * onehot)?.sum_keepdim(D::Minus1)?;
        Ok((lse - positive)?.mean_all()?)
    }
}

/// A loss value as f64, whatever the tensor's dtype.
pub fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn infonce_matches_a_hand_computed_softmax() {
        let q = Tensor::new(&[[1f64, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        // group 2: rows 0,1 belong to query 0 (positive, negative), rows 2,3 to query 1.
        let p = Tensor::new(
            &[[1f64, 0.0], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6]],
            &Device::Cpu,
        )
        .unwrap();
        let l = InfoNce { temperature: 0.5 };
        let got = scalar(
            &l.loss(&LossInput {
                queries: &q,
                passages: &p,
                group: 2,
                extra_negatives: None,
            })
            .unwrap(),
        )
        .unwrap();
        let ce = |row: [f64; 4], target: usize| {
            let z: f64 = row.iter().map(|s| (s / 0.5).exp()).sum();
            z.ln() - row[target] / 0.5
        };
        let want = (ce([1.0, 0.6, 0.0, 0.8], 0) + ce([0.0, 0.8, 1.0, 0.6], 2)) / 2.0;
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");

        // An extra negative identical to query 0's positive doubles its competition.
        let extra = Tensor::new(&[[1f64, 0.0]], &Device::Cpu).unwrap();
        let with = scalar(
            &l.loss(&LossInput {
                queries: &q,
                passages: &p,
                group: 2,
                extra_negatives: Some(&extra),
            })
            .unwrap(),
        )
        .unwrap();
        let ce5 = |row: [f64; 5], target: usize| {
            let z: f64 = row.iter().map(|s| (s / 0.5).exp()).sum();
            z.ln() - row[target] / 0.5
        };
        let want = (ce5([1.0, 0.6, 0.0, 0.8, 1.0], 0) + ce5([0.0, 0.8, 1.0, 0.6, 0.0], 2)) / 2.0;
        assert!((with - want).abs() < 1e-12, "{with} vs {want}");
    }
}
