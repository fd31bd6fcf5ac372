//! GELU of a biased input, `gelu(x + b)`, fused, with its backward pass.
//!
//! The FFN's inner layer is the largest activation in the encoder (4× the width). Fusing the
//! bias add into the activation saves a full pass over it, and the hand-written derivative
//! uses the exact constant 1/√(2π): candle's own `gelu_erf` backward rounds it to 0.398942,
//! which a finite-difference check in f64 notices.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{rows_per_task, Kernels, Real};
use crate::config::Activation;

/// `act(x + b)` with `b` broadcast over the rows of `x` (last dimension), differentiable in both.
pub fn bias_gelu(x: &Tensor, bias: &Tensor, act: Activation, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => x
            .contiguous()?
            .apply_op2(&bias.contiguous()?, BiasGelu { act }),
        Kernels::Composed => bias_gelu_composed(x, bias, act),
    }
}

/// The same function from plain candle ops: the reference, and the path off the CPU.
pub fn bias_gelu_composed(x: &Tensor, bias: &Tensor, act: Activation) -> Result<Tensor> {
    let u = x.broadcast_add(bias)?;
    match act {
        Activation::GeluErf => {
            (&u * 0.5)? * ((&u * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)?
        }
        Activation::GeluTanh => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let inner = ((&u + (u.powf(3.0)? * 0.044715)?)? * k)?;
            (&u * 0.5)? * (inner.tanh()? + 1.0)?
        }
    }
}

const TANH_C: f64 = 0.044715;

/// GELU and its derivative at `u`.
#[inline(always)]
pub(crate) fn gelu_and_grad<T: Real>(u: T, act: Activation) -> (T, T) {
    let half = T::from_f64(0.5);
    match act {
        Activation::GeluErf => {
            let cdf = half * (T::ONE + (u * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf());
            let pdf =
                (-(u * u) * half).exp() * T::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt());
            (u * cdf, cdf + u * pdf)
        }
        Activation::GeluTanh => {
            let k = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
            let c = T::from_f64(TANH_C);
            let t = (k * (u + c * u * u * u)).tanh();
            let d = half * (T::ONE + t)
                + half * u * (T::ONE - t * t) * k * (T::ONE + T::from_f64(3.0) * c * u * u);
            (half * u * (T::ONE + t), d)
        }
    }
}

struct BiasGelu {
    act: Activation,
}

fn forward<T: Real>(x: &[T], b: &[T], act: Activation) -> Vec<T> {
    let n = b.len();
    let mut y = vec![T::ZERO; x.len()];
    let chunk = rows_per_task(x.len() / n, n) * n;
    y.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(yc, xc)| {
            for (yr, xr) in yc.chunks_exact_mut(n).zip(xc.chunks_exact(n)) {
                for i in 0..n {
                    yr[i] = gelu_and_grad(xr[i] + b[i], act).0;
                }
            }
        });
    y
}

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "fused-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let n = l1.dims().last().copied().unwrap_or(0);
        if l2.shape().elem_count() != n {
            candle_core::bail!("{name}: bias must have {n} entries");
        }
        let out = float_kernel!(name, [s1, l1 => x, s2, l2 => b], forward(x, b, self.act));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = bias.elem_count();
        let rows = x.elem_count() / n;
        let packed = x.reshape((rows, n))?.apply_op3_no_bwd(
            bias,
            &grad.contiguous()?.reshape((rows, n))?,
            &BiasGeluBackward { act: self.act },
        )?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let db = packed.get(rows)?.reshape(bias.shape())?;
        Ok((Some(dx), Some(db)))
    }
}

/// Computes `[dx; db]` stacked as `rows + 1` rows, since a custom op has one output.
struct BiasGeluBackward {
    act: Activation,
}

fn backward<T: Real>(x: &[T], b: &[T], dy: &[T], act: Activation) -> Vec<T> {
    let n = b.len();
    let rows = x.len() / n;
    let mut out = vec![T::ZERO; (rows + 1) * n];
    let chunk = rows_per_task(rows, n) * n;
    let (dx, _) = out.split_at_mut(rows * n);
    let db = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .map(|(dxc, (xc, dyc))| {
            let mut db = vec![T::ZERO; n];
            for ((dxr, xr), dyr) in dxc
                .chunks_exact_mut(n)
                .zip(xc.chunks_exact(n))
                .zip(dyc.chunks_exact(n))
            {
                for i in 0..n {
                    let g = dyr[i] * gelu_and_grad(xr[i] + b[i], act).1;
                    dxr[i] = g;
                    db[i] += g;
                }
            }
            db
        })
        .reduce(
            || vec![T::ZERO; n],
            |mut a, c| {
                for i in 0..n {
                    a[i] += c[i];
                }
                a
            },
        );
    out[rows * n..].copy_from_slice(&db);
    out
}

impl CustomOp3 for BiasGeluBackward {
    fn name(&self) -> &'static str {
        "fused-bias-gelu-backward"
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
        let name = self.name();
        let (rows, n) = l1.shape().dims2()?;
        let out = float_kernel!(
            name,
            [s1, l1 => x, s2, l2 => b, s3, l3 => d],
            backward(x, b, d, self.act)
        );
        Ok((out, Shape::from((rows + 1, n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gradcheck::{check, max_abs_diff, randn};

    #[test]
    fn fused_matches_composed() {
        for act in [Activation::GeluErf, Activation::GeluTanh] {
            let x = randn(&[5, 7], 1, 4.0);
            let b = randn(&[7], 2, 1.0);
            let a = bias_gelu(&x, &b, act, Kernels::Fused).unwrap();
            let c = bias_gelu_composed(&x, &b, act).unwrap();
            let diff = max_abs_diff(&a, &c);
            assert!(diff < 1e-12, "{act:?}: {diff}");
        }
    }

    #[test]
    fn finite_differences() {
        for act in [Activation::GeluErf, Activation::GeluTanh] {
            let inputs = [randn(&[3, 2, 5], 3, 3.0), randn(&[5], 4, 1.0)];
            check(
                &inputs,
                |t| bias_gelu(&t[0], &t[1], act, Kernels::Fused),
                1e-7,
            );
        }
    }

    #[test]
    fn known_values() {
        let x = Tensor::new(&[[-1.0f32, 0.0, 1.0, 3.0]], &candle_core::Device::Cpu).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, x.device()).unwrap();
        let y: Vec<f32> = bias_gelu(&x, &b, Activation::GeluErf, Kernels::Fused)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // x·Φ(x) from the normal CDF table.
        for (got, want) in y.iter().zip([-0.158_655_25, 0.0, 0.841_344_7, 2.995_950_3]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
