//! Layer normalisation over the last dimension, fused, with its backward pass.
//!
//! candle-nn's fused `LayerNorm` has no backward pass (huggingface/candle #2977), and the
//! composition of mean, variance and affine ops makes six full-size temporaries; this kernel
//! makes one, and its backward computes dx, dγ and dβ in one pass over the rows.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::{dot, rows_per_task, sum_by, wide, Kernels, Real};

/// `LN(x)·γ + β` over the last dimension of `x`, differentiable in all three inputs.
pub fn layer_norm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    kernels: Kernels,
) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => {
            x.contiguous()?
                .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, LayerNorm { eps })
        }
        Kernels::Composed => layer_norm_composed(x, gamma, beta, eps),
    }
}

/// The same function from plain candle ops: the reference, and the path off the CPU.
pub fn layer_norm_composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(gamma)?.broadcast_add(beta)
}

struct LayerNorm {
    eps: f64,
}

fn forward<T: Real>(x: &[T], g: &[T], b: &[T], eps: f64) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    forward_into(x, g, b, eps, &mut y);
    y
}

/// The row kernel: `y = LN(x)·γ + β` over rows of width `γ.len()`, written into `y`.
pub(crate) fn forward_into<T: Real>(x: &[T], g: &[T], b: &[T], eps: f64, y: &mut [T]) {
    let h = g.len();
    let chunk = rows_per_task(x.len() / h, h) * h;
    let inv_h = T::from_f64(1.0 / h as f64);
    let eps = T::from_f64(eps);
    y.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(yc, xc)| {
            wide(
                #[inline(always)]
                || {
                    for (yr, xr) in yc.chunks_exact_mut(h).zip(xc.chunks_exact(h)) {
                        let mean = sum_by(xr, |v| v) * inv_h;
                        let ss = sum_by(xr, |v| (v - mean) * (v - mean));
                        let rstd = T::ONE / (ss * inv_h + eps).sqrt();
                        for i in 0..h {
                            yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
                        }
                    }
                },
            )
        });
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = self.name();
        let h = l1.dims().last().copied().unwrap_or(0);
        if l2.shape().elem_count() != h || l3.shape().elem_count() != h {
            candle_core::bail!("{n}: γ and β must have {h} entries");
        }
        let out =
            float_kernel!(n, [s1, l1 => x, s2, l2 => g, s3, l3 => b], forward(x, g, b, self.eps));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = gamma.elem_count();
        let rows = x.elem_count() / h;
        let packed = x.reshape((rows, h))?.apply_op3_no_bwd(
            gamma,
            &grad.contiguous()?.reshape((rows, h))?,
            &LayerNormBackward { eps: self.eps },
        )?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dgamma = packed.get(rows)?.reshape(gamma.shape())?;
        let dbeta = packed.get(rows + 1)?.reshape(gamma.shape())?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// Computes `[dx; dγ; dβ]` stacked as `rows + 2` rows, since a custom op has one output.
struct LayerNormBackward {
    eps: f64,
}

fn backward<T: Real>(x: &[T], g: &[T], dy: &[T], eps: f64) -> Vec<T> {
    let h = g.len();
    let rows = x.len() / h;
    let mut out = vec![T::ZERO; (rows + 2) * h];
    let grads = backward_into(x, g, dy, eps, &mut out[..rows * h]);
    out[rows * h..(rows + 1) * h].copy_from_slice(&grads.gamma);
    out[(rows + 1) * h..].copy_from_slice(&grads.beta);
    out
}

/// The parameter gradients of one layer-norm backward pass, and the column sums of `dx`
/// (the gradient of a bias added just before the norm, which the fused layer needs).
pub(crate) struct NormGrads<T> {
    /// dγ.
    pub gamma: Vec<T>,
    /// dβ.
    pub beta: Vec<T>,
    /// Σ over rows of dx.
    pub dx_sum: Vec<T>,
}

/// The row kernel of the backward pass: writes dx into `dx` and returns dγ, dβ and Σ dx.
pub(crate) fn backward_into<T: Real>(
    x: &[T],
    g: &[T],
    dy: &[T],
    eps: f64,
    dx: &mut [T],
) -> NormGrads<T> {
    let h = g.len();
    let rows = x.len() / h;
    let chunk = rows_per_task(rows, h) * h;
    let inv_h = T::from_f64(1.0 / h as f64);
    let eps = T::from_f64(eps);
    let zeros = || (vec![T::ZERO; h], vec![T::ZERO; h], vec![T::ZERO; h]);
    let (dg, db, ds) = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .map(|(dxc, (xc, dyc))| {
            wide(
                #[inline(always)]
                || {
                    let (mut dg, mut db, mut ds) = zeros();
                    let (mut xhat, mut gy) = (vec![T::ZERO; h], vec![T::ZERO; h]);
                    for ((dxr, xr), dyr) in dxc
                        .chunks_exact_mut(h)
                        .zip(xc.chunks_exact(h))
                        .zip(dyc.chunks_exact(h))
                    {
                        let mean = sum_by(xr, |v| v) * inv_h;
                        let ss = sum_by(xr, |v| (v - mean) * (v - mean));
                        let rstd = T::ONE / (ss * inv_h + eps).sqrt();
                        // Elementwise first and the two row sums apart, so every loop vectorises.
                        for i in 0..h {
                            xhat[i] = (xr[i] - mean) * rstd;
                            gy[i] = dyr[i] * g[i];
                            dg[i] += dyr[i] * xhat[i];
                            db[i] += dyr[i];
                        }
                        let m_gy = sum_by(&gy, |v| v) * inv_h;
                        let m_gyx = dot(&gy, &xhat) * inv_h;
                        for i in 0..h {
                            dxr[i] = rstd * (gy[i] - m_gy - xhat[i] * m_gyx);
                            ds[i] += dxr[i];
                        }
                    }
                    (dg, db, ds)
                },
            )
        })
        .reduce(zeros, |(mut a, mut b, mut c), (d, e, f)| {
            for i in 0..h {
                a[i] += d[i];
                b[i] += e[i];
                c[i] += f[i];
            }
            (a, b, c)
        });
    NormGrads {
        gamma: dg,
        beta: db,
        dx_sum: ds,
    }
}

impl CustomOp3 for LayerNormBackward {
    fn name(&self) -> &'static str {
        "fused-layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let n = self.name();
        let (rows, h) = l1.shape().dims2()?;
        let out =
            float_kernel!(n, [s1, l1 => x, s2, l2 => g, s3, l3 => d], backward(x, g, d, self.eps));
        Ok((out, Shape::from((rows + 2, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gradcheck::{check, max_abs_diff, randn};

    #[test]
    fn fused_matches_composed() {
        let x = randn(&[3, 5, 8], 1, 3.0);
        let g = randn(&[8], 2, 1.0);
        let b = randn(&[8], 3, 1.0);
        let a = layer_norm(&x, &g, &b, 1e-5, Kernels::Fused).unwrap();
        let c = layer_norm_composed(&x, &g, &b, 1e-5).unwrap();
        let diff = max_abs_diff(&a, &c);
        assert!(diff < 1e-12, "{diff}");
    }

    #[test]
    fn finite_differences() {
        let inputs = [
            randn(&[4, 6], 4, 2.0),
            randn(&[6], 5, 1.0),
            randn(&[6], 6, 1.0),
        ];
        check(
            &inputs,
            |t| layer_norm(&t[0], &t[1], &t[2], 1e-5, Kernels::Fused),
            1e-6,
        );
    }

    #[test]
    fn f32_runs_and_normalises() {
        let x = randn(&[2, 16], 7, 5.0)
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        let g = Tensor::ones(16, candle_core::DType::F32, x.device()).unwrap();
        let b = Tensor::zeros(16, candle_core::DType::F32, x.device()).unwrap();
        let y = layer_norm(&x, &g, &b, 1e-12, Kernels::Fused).unwrap();
        let var: Vec<f32> = y.sqr().unwrap().mean(1).unwrap().to_vec1().unwrap();
        for v in var {
            assert!((v - 1.0).abs() < 1e-4, "{v}");
        }
    }
}
