//! From token states to one vector per text: the first token ([CLS]) or the masked mean,
//! optionally L2-normalised, as sentence-transformers' Pooling and Normalize modules do.

use candle_core::{Result, Tensor, D};
use serde::{Deserialize, Serialize};

/// Which token states make up the text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolingMode {
    /// The first token's state (DPR, mBERT retrievers).
    Cls,
    /// The mean over real (unpadded) tokens (sentence-transformers, E5).
    Mean,
}

/// Pooling and normalisation of a model; read from and written to the HF directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pooling {
    /// cls or mean.
    pub mode: PoolingMode,
    /// Whether vectors are scaled to unit length (so inner product is cosine).
    pub normalize: bool,
}

impl Default for Pooling {
    fn default() -> Self {
        Pooling {
            mode: PoolingMode::Mean,
            normalize: true,
        }
    }
}

impl Pooling {
    /// Pools `[batch·seq, hidden]` states of sequences with the given valid lengths to `[batch, hidden]`.
    pub fn pool(&self, hidden: &Tensor, lengths: &[usize], seq: usize) -> Result<Tensor> {
        let b = lengths.len();
        let h = hidden.dim(D::Minus1)?;
        let states = hidden.reshape((b, seq, h))?;
        let pooled = match self.mode {
            PoolingMode::Cls => states.narrow(1, 0, 1)?.squeeze(1)?,
            PoolingMode::Mean => {
                // Weights 1/len on real tokens and 0 on padding: the masked mean in one product.
                let w: Vec<f32> = lengths
                    .iter()
                    .flat_map(|&len| {
                        (0..seq).map(move |j| {
                            if j < len {
                                1.0 / len.max(1) as f32
                            } else {
                                0.0
                            }
                        })
                    })
                    .collect();
                let w =
                    Tensor::from_vec(w, (b, 1, seq), hidden.device())?.to_dtype(hidden.dtype())?;
                w.matmul(&states)?.squeeze(1)?
            }
        };
        if self.normalize {
            l2_normalize(&pooled)
        } else {
            Ok(pooled)
        }
    }
}

/// Rows scaled to unit L2 norm; norms below 1e-12 are clamped as in torch's `F.normalize`.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_skips_padding_and_cls_takes_first() {
        // two sequences of seq 3, hidden 2; the second has one padded position holding 100s.
        let h = Tensor::new(
            &[
                [1f32, 2.],
                [3., 4.],
                [5., 6.],
                [7., 8.],
                [9., 10.],
                [100., 100.],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let mean = Pooling {
            mode: PoolingMode::Mean,
            normalize: false,
        };
        let got: Vec<Vec<f32>> = mean.pool(&h, &[3, 2], 3).unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![vec![3., 4.], vec![8., 9.]]);
        let cls = Pooling {
            mode: PoolingMode::Cls,
            normalize: true,
        };
        let got: Vec<Vec<f32>> = cls.pool(&h, &[3, 2], 3).unwrap().to_vec2().unwrap();
        let n = (1f32 + 4.).sqrt();
        assert!((got[0][0] - 1. / n).abs() < 1e-6 && (got[0][1] - 2. / n).abs() < 1e-6);
        let n = (49f32 + 64.).sqrt();
        assert!((got[1][0] - 7. / n).abs() < 1e-6);
    }
}
