//! Gumbel top-k: a differentiable choice of k of n items (Kool et al. 2019; Jang et al.
//! 2017's Gumbel-softmax), used by SMEC's adaptive dimension selection to learn which
//! dimensions to keep.

use candle_core::{Tensor, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};

/// One draw of a Gumbel top-k over a set of candidates.
#[derive(Debug, Clone)]
pub struct GumbelTopK {
    /// The k chosen candidates (indices into the candidate list), by perturbed score
    /// descending.
    pub chosen: Vec<usize>,
    /// `[n]` straight-through mask: exactly 1 on the chosen candidates and 0 elsewhere in
    /// value, with the gradient of `softmax((logits + g) / τ)`, so the scores learn from the
    /// loss of the hard choice.
    pub mask: Tensor,
}

/// Draws k of the `logits.len()` candidates: adds Gumbel(0, 1) noise from `rng` to each
/// logit and keeps the k largest (an exact sample of k without replacement from
/// `softmax(logits)`). The same `rng` state gives the same choice.
pub fn gumbel_top_k(
    logits: &Tensor,
    k: usize,
    temperature: f64,
    rng: &mut ChaCha8Rng,
) -> Result<GumbelTopK> {
    let n = logits.dim(0)?;
    if k == 0 || k > n {
        return Err(TrainError::config(
            "head.dims",
            format!("cannot keep {k} of {n} dimensions"),
        ));
    }
    let noise: Vec<f32> = (0..n)
        .map(|_| {
            // u in (0, 1): -ln(-ln u) is Gumbel(0, 1).
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            -(-u.ln()).ln() as f32
        })
        .collect();
    let noise = Tensor::from_vec(noise, n, logits.device())?.to_dtype(logits.dtype())?;
    let perturbed = (logits.detach() + &noise)?;
    let values: Vec<f32> = perturbed.to_dtype(candle_core::DType::F32)?.to_vec1()?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let chosen: Vec<usize> = order[..k].to_vec();
    let mut hard = vec![0f32; n];
    for &c in &chosen {
        hard[c] = 1.0;
    }
    let hard = Tensor::from_vec(hard, n, logits.device())?.to_dtype(logits.dtype())?;
    let soft = softmax(&((logits + &noise)? / temperature)?)?;
    // soft − soft is exactly 0 in value, so the mask is exactly the hard choice.
    let mask = (hard + (&soft - soft.detach())?)?;
    Ok(GumbelTopK { chosen, mask })
}

/// Softmax along the last axis, differentiable (candle-nn's fused one has no backward pass).
pub(crate) fn softmax(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;

    #[test]
    fn keeps_exactly_k_distinct_and_repeats_from_the_seed() {
        let logits =
            Tensor::new(&[0.3f32, -1.0, 2.0, 0.0, 0.5, 1.5, -0.2, 0.1], &Device::Cpu).unwrap();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            gumbel_top_k(&logits, 3, 0.5, &mut rng).unwrap()
        };
        let a = draw(7);
        let mut distinct = a.chosen.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
        let mask: Vec<f32> = a.mask.to_vec1().unwrap();
        assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), 3);
        assert_eq!(mask.iter().filter(|&&m| m == 0.0).count(), 5);
        for &c in &a.chosen {
            assert_eq!(mask[c], 1.0);
        }
        assert_eq!(draw(7).chosen, a.chosen);
        // Other seeds choose differently at least once.
        assert!((0..20).any(|s| draw(s).chosen != a.chosen));
        // The largest logit is kept most often.
        let kept = (0..200).filter(|&s| draw(s).chosen.contains(&2)).count();
        assert!(kept > 150, "{kept}");
    }

    #[test]
    fn the_scores_get_the_gradient_of_the_soft_choice() {
        let logits = Var::new(&[0.0f64, 0.0, 0.0, 0.0], &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = gumbel_top_k(logits.as_tensor(), 2, 1.0, &mut rng).unwrap();
        // A loss that rewards keeping candidate 3.
        let w = Tensor::new(&[0.0f64, 0.0, 0.0, -1.0], &Device::Cpu).unwrap();
        let loss = (&t.mask * w).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let g: Vec<f64> = g.get(logits.as_tensor()).unwrap().to_vec1().unwrap();
        // Descending the gradient raises logit 3 and lowers the others.
        assert!(g[3] < 0.0 && g[0] > 0.0, "{g:?}");
        assert!(gumbel_top_k(logits.as_tensor(), 5, 1.0, &mut rng).is_err());
    }
}
