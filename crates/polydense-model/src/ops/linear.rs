//! The three matmuls of a linear layer on host slices (forward, weight gradient, input
//! gradient), in HF's `[out, in]` weight layout, for the fused layer kernel.
//!
//! Each is one `gemm` call reading transposes through strides, so no transposed copy is
//! made, and the forward and input-gradient products accumulate into their output, which
//! lets the caller pre-fill it with a bias, a residual or a gradient from another path.

use gemm::{gemm, Parallelism};

use super::Real;

/// All of rayon's threads for the big projections (candle's own matmuls do the same).
fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst[n × out] += x[n × k] · wᵀ` with `w` as `[out, k]` (HF's weight layout).
pub(crate) fn linear_acc<T: Real>(x: &[T], w: &[T], k: usize, out: usize, dst: &mut [T]) {
    let n = x.len() / k;
    debug_assert!(w.len() == out * k && dst.len() == n * out);
    // SAFETY: the sizes are checked above; the strides describe row-major x, dst and wᵀ.
    unsafe {
        gemm(
            n,
            out,
            k,
            dst.as_mut_ptr(),
            1,
            out as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism(),
        )
    }
}

/// `dw[out × inp] = dyᵀ · x`, the weight gradient of a linear layer.
pub(crate) fn grad_weight<T: Real>(dy: &[T], x: &[T], out: usize, inp: usize, dw: &mut [T]) {
    let n = dy.len() / out;
    debug_assert!(x.len() == n * inp && dw.len() == out * inp);
    // SAFETY: as in `linear_acc`; dyᵀ is read through strides.
    unsafe {
        gemm(
            out,
            inp,
            n,
            dw.as_mut_ptr(),
            1,
            inp as isize,
            false,
            dy.as_ptr(),
            out as isize,
            1,
            x.as_ptr(),
            1,
            inp as isize,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            parallelism(),
        )
    }
}

/// `dx[n × inp] (+)= dy · w`, the input gradient of a linear layer (`acc` adds to `dx`).
pub(crate) fn grad_input<T: Real>(
    dy: &[T],
    w: &[T],
    out: usize,
    inp: usize,
    dx: &mut [T],
    acc: bool,
) {
    let n = dy.len() / out;
    debug_assert!(w.len() == out * inp && dx.len() == n * inp);
    // SAFETY: as in `linear_acc`.
    unsafe {
        gemm(
            n,
            inp,
            out,
            dx.as_mut_ptr(),
            1,
            inp as isize,
            acc,
            dy.as_ptr(),
            1,
            out as isize,
            w.as_ptr(),
            1,
            inp as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism(),
        )
    }
}
