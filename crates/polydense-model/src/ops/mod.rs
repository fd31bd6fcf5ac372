//! Fused CPU kernels with their backward passes, and the choice between them and plain candle ops.
//!
//! Each op computes in one pass what a chain of candle ops would compute in several, each
//! allocating a full tensor; on CPU the encoder spends most of its non-matmul time there. Each
//! op's backward pass is hand-written and checked against finite differences in f64 beside it.
//! The ops only have CPU kernels; on other devices the encoder runs the plain composition
//! (see [`Kernels`]), which is also kept as the reference the fused ops are tested against.

pub mod attention;
pub mod gelu;
pub mod layer_norm;
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
        f32::exp(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f32(self)
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
