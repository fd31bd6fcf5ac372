//! Device choice in one place, so the rest of the code never branches on CUDA.

use candle_core::Device;

use crate::error::Result;

/// The first CUDA GPU when `cuda` is set (needs the `cuda` feature), else the CPU.
pub fn device(cuda: bool) -> Result<Device> {
    if cuda {
        Ok(Device::new_cuda(0)?)
    } else {
        Ok(Device::Cpu)
    }
}
