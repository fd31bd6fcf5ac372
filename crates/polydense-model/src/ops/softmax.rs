//! Softmax over the last dimension, fused, with its backward pass; also the row kernels the
//! fused attention uses for its masked, scaled softmax.
//!
//! candle-nn's `softmax_last_dim` has no backward pass (huggingface/candle #3011); the
//! composition (max, sub, exp, sum, div) makes five full-size temporaries.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::{dot, max_of, rows_per_task, sum_by, Kernels, Real};

/// Softmax over the last dimension, differentiable.
pub fn softmax_last_dim(x: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => x.contiguous()?.apply_op1(Softmax),
        Kernels::Composed => softmax_composed(x),
    }
}

/// The same function from plain candle ops: the reference, and the path off the CPU.
pub fn softmax_composed(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// In place: `row[..valid]` becomes softmax(scale · row[..valid]); the rest (masked keys) 0.
#[inline(always)]
pub(crate) fn softmax_row<T: Real>(row: &mut [T], valid: usize, scale: T) {
    let max = max_of(&row[..valid]);
    for v in &mut row[..valid] {
        *v = ((*v - max) * scale).exp();
    }
    let sum = sum_by(&row[..valid], |v| v);
    let inv = if valid > 0 { T::ONE / sum } else { T::ZERO };
    for v in &mut row[..valid] {
        *v = *v * inv;
    }
    for v in &mut row[valid..] {
        *v = T::ZERO;
    }
}

/// In place: `dy` becomes the gradient wrt the softmax input, `y ∘ (dy − ⟨dy, y⟩)`.
#[inline(always)]
pub(crate) fn softmax_row_backward<T: Real>(y: &[T], dy: &mut [T]) {
    let dot = dot(y, dy);
    for (a, b) in y.iter().zip(dy.iter_mut()) {
        *b = *a * (*b - dot);
    }
}

struct Softmax;

fn forward<T: Real>(x: &[T], n: usize) -> Vec<T> {
    let mut y = x.to_vec();
    let chunk = rows_per_task(x.len() / n.max(1), n) * n;
    y.par_chunks_mut(chunk.max(1)).for_each(|c| {
        for r in c.chunks_exact_mut(n) {
            softmax_row(r, n, T::ONE);
        }
    });
    y
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let n = l.dims().last().copied().unwrap_or(1);
        let out = float_kernel!(name, [s, l => x], forward(x, n));
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxBackward)?,
        ))
    }
}

struct SoftmaxBackward;

fn backward<T: Real>(y: &[T], dy: &[T], n: usize) -> Vec<T> {
    let mut dx = dy.to_vec();
    let chunk = rows_per_task(y.len() / n.max(1), n) * n;
    dx.par_chunks_mut(chunk.max(1))
        .zip(y.par_chunks(chunk.max(1)))
        .for_each(|(dc, yc)| {
            for (d, r) in dc.chunks_exact_mut(n).zip(yc.chunks_exact(n)) {
                softmax_row_backward(r, d);
            }
        });
    dx
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "fused-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let n = l1.dims().last().copied().unwrap_or(1);
        let out = float_kernel!(name, [s1, l1 => y, s2, l2 => d], backward(y, d, n));
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gradcheck::{check, max_abs_diff, randn};

    #[test]
    fn fused_matches_composed() {
        let x = randn(&[4, 3, 9], 1, 10.0);
        let a = softmax_last_dim(&x, Kernels::Fused).unwrap();
        let c = softmax_composed(&x).unwrap();
        let diff = max_abs_diff(&a, &c);
        assert!(diff < 1e-14, "{diff}");
    }

    #[test]
    fn other_dtypes_are_an_error_naming_the_op() {
        let x = randn(&[2, 4], 1, 1.0)
            .to_dtype(candle_core::DType::BF16)
            .unwrap();
        let err = softmax_last_dim(&x, Kernels::Fused)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("fused-softmax") && err.contains("BF16"),
            "{err}"
        );
    }

    #[test]
    fn finite_differences() {
        check(
            &[randn(&[3, 7], 2, 3.0)],
            |t| softmax_last_dim(&t[0], Kernels::Fused),
            1e-7,
        );
    }

    #[test]
    fn masked_row_ignores_padding() {
        let mut row = [1.0f64, 2.0, 1e9, -1e9];
        softmax_row(&mut row, 2, 0.5);
        let e = (0.5f64).exp();
        assert!((row[0] - 1.0 / (1.0 + e)).abs() < 1e-15);
        assert!((row[1] - e / (1.0 + e)).abs() < 1e-15);
        assert_eq!(&row[2..], &[0.0, 0.0]);
    }
}
