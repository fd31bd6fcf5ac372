//! Re-encoding weights whose block format candle 0.11 multiplies with scalar code.
//!
//! candle's CPU `vec_dot` for Q4_1, Q5_0 and Q5_1 is the generic loop (k_quants.rs: "Generic
//! implementation"), while Q8_0 has AVX kernels and, on CPUs with AVX-512 VNNI, repacked
//! tiles that also batch the prompt's rows. SmolLM2's file is Q4_1: measured here, prompt
//! and generation both ran at ~12 tokens/s on one core. Re-encoding those tensors as Q8_0
//! when the file is loaded costs about a second and ~50% more memory for the weights; each
//! weight then differs from the file's by at most half a Q8_0 step (1/254 of its 32-weight
//! block's largest magnitude), far below the 4-bit step already in the file.

use crate::error::Result;
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use std::io::{Cursor, Read, Seek};

/// Formats re-encoded, because candle has no SIMD kernel for them.
const SCALAR: [GgmlDType; 3] = [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1];

/// Whether any tensor of `content` is in a scalar-only format.
pub fn needed(content: &gguf_file::Content) -> bool {
    content
        .tensor_infos
        .values()
        .any(|t| SCALAR.contains(&t.ggml_dtype))
}

/// The file rewritten in memory with its scalar-only tensors as Q8_0, and its new header.
pub fn to_q8_0<R: Read + Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
) -> Result<(gguf_file::Content, Cursor<Vec<u8>>)> {
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let t = content.tensor(reader, name, &Device::Cpu)?;
        let row = t.shape().dims().last().copied().unwrap_or(0);
        let t = if SCALAR.contains(&t.dtype()) && row % 32 == 0 {
            QTensor::quantize(&t.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &metadata, &refs)?;
    drop(tensors);
    buf.set_position(0);
    let header = gguf_file::Content::read(&mut buf)?;
    Ok((header, buf))
}
