//! Fused CPU kernels with their backward passes, and the choice between them and plain candle ops.
//!
//! Each op computes in one pass what a chain of candle ops would compute in several, each
//! allocating a full tensor; on CPU the encoder spends most of its non-matmul time there. Each
//! op's backward pass is hand-written and checked against finite differences in f64 beside it.
//! The ops only have CPU kernels; on other devices the encoder runs the plain composition
//! (see [`Kernels`]), which is also kept as the reference the fused ops are tested against.

/// Runs a kernel written once, generic over the float type, on f32 or f64 storages: each
/// `storage, layout => name` binds `name` to the contiguous slice, then `body` runs and its
/// `Vec<T>` becomes the output storage. Any other dtype (or a mix) is an error naming the op.
macro_rules! float_kernel {
    ($op:expr, [$($s:ident, $l:ident => $v:ident),+], $body:expr) => {{
        let first = [$($s),+][0];
        match ($($s,)+) {
            ($(candle_core::CpuStorage::F32($v),)+) => {
                $(let $v = $crate::ops::slice($v, $l, $op)?;)+
                $crate::ops::IntoStorage::into_storage($body)
            }
            ($(candle_core::CpuStorage::F64($v),)+) => {
                $(let $v = $crate::ops::slice($v, $l, $op)?;)+
                $crate::ops::IntoStorage::into_storage($body)
            }
            _ => return Err($crate::ops::unsupported($op, first)),
        }
    }};
}

pub mod attention;
pub mod gelu;
pub mod layer;
pub mod layer_norm;
mod linear;
mod scratch;
pub mod softmax;

#[cfg(test)]
pub(crate) mod gradcheck;

use candle_core::{CpuStorage, Device, Layout, Result};

/// How the encoder computes layer norm, GELU and attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The fused CPU kernels in this module.
    Fused,
    /// Plain candle ops (runs on every device; the reference for checks).
    Composed,
}

impl Kernels {
    /// The fast choice for a device: fused kernels exist only for the CPU.
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Kernels::Fused
        } else {
            Kernels::Composed
        }
    }
}

/// The float arithmetic the kernels need, for f32 (the models) and f64 (the gradient checks).
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn erf(self) -> Self;
    fn max(self, o: Self) -> Self;
    fn neg_infinity() -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn exp(self) -> Self {
        fast_exp_f32(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn erf(self) -> Self {
        fast_erf_f32(self)
    }
    fn max(self, o: Self) -> Self {
        f32::max(self, o)
    }
    fn neg_infinity() -> Self {
        f32::NEG_INFINITY
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    fn max(self, o: Self) -> Self {
        f64::max(self, o)
    }
    fn neg_infinity() -> Self {
        f64::NEG_INFINITY
    }
}

/// erf for f32 as a branch-free rational function, so loops over it vectorise; libm's erff
/// is a scalar call with branches and took a fifth of encode time in GELU. The coefficients
/// are those of the f32 erf approximation in Eigen and XLA (minimax on [-4, 4], where erf
/// reaches ±1 in f32); in f32 arithmetic the absolute error stays below 5e-7, a few ulps
/// of 1.0 (tested below against libm).
#[inline(always)]
pub(crate) fn fast_erf_f32(x: f32) -> f32 {
    const A: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    const B: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329e-3,
        -1.426_473_9e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = A[0];
    for c in &A[1..] {
        p = p * x2 + c;
    }
    let mut q = B[0];
    for c in &B[1..] {
        q = q * x2 + c;
    }
    x * p / q
}

/// exp for f32 without a libm call, so the softmax and GELU loops vectorise: the argument
/// is split as `n·ln2 + r` with |r| ≤ ln2/2 (ln2 in two parts, as Cephes' `expf` does) and
/// `e^r` is Cephes' degree-7 polynomial for `expf`; `2^n` is built in the exponent bits. The
/// input is clamped to [-87.3, 88], where the result stays a normal float (the callers only
/// pass values ≤ 0, where the clamp gives e^-87.3 ≈ 1e-38 instead of 0). Relative error
/// below 3e-7 (tested below against f64).
#[inline(always)]
pub(crate) fn fast_exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        0.166_666_65,
        0.5,
    ];
    let x = x.clamp(-87.3, 88.0);
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let er = p * r * r + r + 1.0;
    let bits = (k.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23;
    er * f32::from_bits(bits as u32)
}

/// Runs `f` compiled for AVX2 and FMA when the CPU has them, else as built (SSE2 on
/// x86-64): the workspace builds for the baseline CPU, so without this the elementwise loops
/// of the kernels run four floats wide. Mark `f` `#[inline(always)]`: LLVM otherwise may keep
/// a large closure out of line, compiled for the baseline CPU, and call it from the
/// feature-enabled function (the GELU and layer-norm backward loops ran four wide that way).
/// Call this inside each rayon task, around the task's loop.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features just checked.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Lanes of the reductions below: float sums are not reassociated by the compiler, so a
/// plain loop runs one scalar add at a time; eight independent partial sums vectorise.
const LANES: usize = 8;

/// Σ f(x_i) over a slice, in eight interleaved partial sums.
#[inline(always)]
pub(crate) fn sum_by<T: Real>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += f(c[l]);
        }
    }
    let mut s = T::ZERO;
    for &v in tail {
        s += f(v);
    }
    acc.iter().fold(s, |a, &b| a + b)
}

/// Σ x_i·y_i, in eight interleaved partial sums.
#[inline(always)]
pub(crate) fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let n = x.len().min(y.len());
    let full = n - n % LANES;
    for (cx, cy) in x[..full]
        .chunks_exact(LANES)
        .zip(y[..full].chunks_exact(LANES))
    {
        for l in 0..LANES {
            acc[l] += cx[l] * cy[l];
        }
    }
    let mut s = T::ZERO;
    for i in full..n {
        s += x[i] * y[i];
    }
    acc.iter().fold(s, |a, &b| a + b)
}

/// The largest entry, in eight interleaved partial maxima.
#[inline(always)]
pub(crate) fn max_of<T: Real>(x: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    let m = tail.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
    acc.iter().fold(m, |a, &b| a.max(b))
}

/// The contiguous data of a kernel input; the wrappers make inputs contiguous before calling.
pub(crate) fn slice<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// Error for a dtype the kernels do not cover.
pub(crate) fn unsupported(op: &str, storage: &CpuStorage) -> candle_core::Error {
    use candle_core::backend::BackendStorage;
    let dtype = storage.dtype();
    candle_core::Error::Msg(format!(
        "{op}: dtype {dtype:?} not supported (f32 and f64 only)"
    ))
}

/// Rows per rayon task: big enough that scheduling stays negligible next to the row work.
pub(crate) fn rows_per_task(rows: usize, width: usize) -> usize {
    let target = 16 * 1024 / width.max(1);
    target.clamp(1, rows.max(1))
}

/// Builds CPU storage from a kernel result of either float type.
pub(crate) trait IntoStorage {
    fn into_storage(self) -> CpuStorage;
}

impl IntoStorage for Vec<f32> {
    fn into_storage(self) -> CpuStorage {
        CpuStorage::F32(self)
    }
}

impl IntoStorage for Vec<f64> {
    fn into_storage(self) -> CpuStorage {
        CpuStorage::F64(self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_is_within_3e7_relative() {
        let mut worst = 0f64;
        for i in -873_000..=880_000 {
            let x = i as f64 / 10_000.0;
            let want = (x as f32 as f64).exp();
            let err = (super::fast_exp_f32(x as f32) as f64 - want).abs() / want;
            worst = worst.max(err);
        }
        assert!(worst < 3e-7, "{worst}");
        assert_eq!(super::fast_exp_f32(0.0), 1.0);
        assert!(super::fast_exp_f32(-1e4) < 1e-37);
    }

    #[test]
    fn fast_erf_is_within_5e7_of_libm() {
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f64 / 10_000.0;
            let err =
                (super::fast_erf_f32(x as f32) as f64 - candle_core::cpu::erf::erf_f64(x)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "{worst}");
    }
}
