//! [`QuantizedMatrix`]: a corpus matrix stored as f32, f16 or int8 with a scale per
//! dimension, searched exactly by dequantising a block of rows at a time, so a compressed
//! index costs its stored size in memory plus one block.

use std::collections::HashMap;
use std::path::Path;

use half::f16;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::error::{IndexError, Result};
use crate::exact::{ExactSearch, Hit};
use crate::store::StoreMetadata;

/// How each value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorDtype {
    /// 4 bytes: the vectors as encoded.
    F32,
    /// 2 bytes: IEEE half precision (about 3 significant digits).
    F16,
    /// 1 byte: symmetric linear quantisation with a scale per dimension (`max |x| / 127`).
    Int8,
}

impl std::str::FromStr for VectorDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(VectorDtype::F32),
            "f16" => Ok(VectorDtype::F16),
            "int8" => Ok(VectorDtype::Int8),
            _ => Err(format!("`{s}` is not a vector dtype (f32, f16, int8)")),
        }
    }
}

impl std::fmt::Display for VectorDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VectorDtype::F32 => "f32",
            VectorDtype::F16 => "f16",
            VectorDtype::Int8 => "int8",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Int8 { values: Vec<i8>, scales: Vec<f32> },
}

/// Rows of width `dim` in a chosen dtype.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    dim: usize,
    rows: usize,
    values: Values,
}

/// Rows dequantised per block of a search.
const BLOCK_ROWS: usize = 4096;
const VALUES: &str = "embeddings";
const SCALES: &str = "scales";

impl QuantizedMatrix {
    /// Stores row-major `data` of width `dim` as `dtype`.
    pub fn quantize(data: &[f32], dim: usize, dtype: VectorDtype) -> Result<Self> {
        if dim == 0 || data.len() % dim != 0 {
            return Err(IndexError::InvalidArgument(format!(
                "{} values are not rows of dimension {dim}",
                data.len()
            )));
        }
        let values = match dtype {
            VectorDtype::F32 => Values::F32(data.to_vec()),
            VectorDtype::F16 => Values::F16(data.iter().map(|&x| f16::from_f32(x)).collect()),
            VectorDtype::Int8 => {
                let mut scales = vec![0f32; dim];
                for row in data.chunks(dim) {
                    for (s, x) in scales.iter_mut().zip(row) {
                        *s = s.max(x.abs());
                    }
                }
                scales
                    .iter_mut()
                    .for_each(|s| *s = if *s > 0.0 { *s / 127.0 } else { 1.0 });
                let values = data
                    .chunks(dim)
                    .flat_map(|row| {
                        row.iter()
                            .zip(&scales)
                            .map(|(x, s)| (x / s).round().clamp(-127.0, 127.0) as i8)
                    })
                    .collect();
                Values::Int8 { values, scales }
            }
        };
        Ok(QuantizedMatrix {
            dim,
            rows: data.len() / dim,
            values,
        })
    }

    /// The storage dtype.
    pub fn dtype(&self) -> VectorDtype {
        match self.values {
            Values::F32(_) => VectorDtype::F32,
            Values::F16(_) => VectorDtype::F16,
            Values::Int8 { .. } => VectorDtype::Int8,
        }
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes the values (and scales) take, in memory and in the saved file's payload.
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len() * 4,
            Values::F16(v) => v.len() * 2,
            Values::Int8 { values, scales } => values.len() + scales.len() * 4,
        }
    }

    /// Rows `start..end` as f32.
    pub fn dequantize(&self, start: usize, end: usize) -> Vec<f32> {
        let (a, b) = (start * self.dim, end * self.dim);
        match &self.values {
            Values::F32(v) => v[a..b].to_vec(),
            Values::F16(v) => v[a..b].iter().map(|x| x.to_f32()).collect(),
            Values::Int8 { values, scales } => values[a..b]
                .chunks(self.dim)
                .flat_map(|row| row.iter().zip(scales).map(|(&q, s)| f32::from(q) * s))
                .collect(),
        }
    }

    /// The `search.k` rows with the largest inner product for each query, ties broken by
    /// `ties` ascending (the row index without it), exactly as [`ExactSearch::search`] on
    /// the dequantised rows.
    pub fn search(
        &self,
        search: &ExactSearch,
        queries: &[f32],
        ties: Option<&[u32]>,
    ) -> Result<Vec<Vec<Hit>>> {
        if self.rows == 0 {
            return Err(IndexError::EmptyStore);
        }
        let m = queries.len() / self.dim;
        let k = search.k();
        let mut best: Vec<Vec<(Hit, u32)>> = vec![Vec::new(); m];
        for start in (0..self.rows).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(self.rows);
            let block = self.dequantize(start, end);
            let block_ties: Option<Vec<u32>> = ties.map(|t| t[start..end].to_vec());
            let hits = search.search(queries, &block, self.dim, block_ties.as_deref())?;
            for (acc, hits) in best.iter_mut().zip(hits) {
                acc.extend(hits.into_iter().map(|h| {
                    let row = start + h.row;
                    let tie = ties.map_or(row as u32, |t| t[row]);
                    (
                        Hit {
                            row,
                            score: h.score,
                        },
                        tie,
                    )
                }));
                acc.sort_by(|a, b| b.0.score.total_cmp(&a.0.score).then(a.1.cmp(&b.1)));
                acc.truncate(k);
            }
        }
        Ok(best
            .into_iter()
            .map(|v| v.into_iter().map(|(h, _)| h).collect())
            .collect())
    }

    /// Writes the matrix as safetensors (`embeddings` in its dtype, `scales` for int8, and
    /// `metadata` in the header), atomically.
    pub fn save(&self, path: &Path, metadata: &StoreMetadata) -> Result<()> {
        let shape = vec![self.rows, self.dim];
        let (dtype, bytes): (Dtype, Vec<u8>) = match &self.values {
            Values::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Values::F16(v) => (Dtype::F16, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            Values::Int8 { values, .. } => (Dtype::I8, values.iter().map(|&x| x as u8).collect()),
        };
        let scales: Vec<u8> = match &self.values {
            Values::Int8 { scales, .. } => scales.iter().flat_map(|x| x.to_le_bytes()).collect(),
            _ => Vec::new(),
        };
        let fmt = |e: safetensors::SafeTensorError| IndexError::format(path, e.to_string());
        let mut views = vec![(VALUES, TensorView::new(dtype, shape, &bytes).map_err(fmt)?)];
        if !scales.is_empty() {
            let view = TensorView::new(Dtype::F32, vec![self.dim], &scales).map_err(fmt)?;
            views.push((SCALES, view));
        }
        let tmp = path.with_extension("tmp");
        let header: HashMap<String, String> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        safetensors::serialize_to_file(views, Some(header), &tmp).map_err(fmt)?;
        std::fs::rename(&tmp, path).map_err(|e| IndexError::io(path, e))?;
        Ok(())
    }

    /// Reads a matrix written by [`QuantizedMatrix::save`], with its header metadata.
    pub fn load(path: &Path) -> Result<(Self, StoreMetadata)> {
        let bytes = std::fs::read(path).map_err(|e| IndexError::io(path, e))?;
        let fmt = |e: safetensors::SafeTensorError| IndexError::format(path, e.to_string());
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(fmt)?;
        let metadata: StoreMetadata = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(fmt)?;
        let t = st.tensor(VALUES).map_err(fmt)?;
        let [rows, dim] = t.shape() else {
            return Err(IndexError::InvalidArgument(format!(
                "{}: `{VALUES}` is not a matrix",
                path.display()
            )));
        };
        let (rows, dim) = (*rows, *dim);
        let data = t.data();
        let values = match t.dtype() {
            Dtype::F32 => Values::F32(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Dtype::F16 => Values::F16(
                data.chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]))
                    .collect(),
            ),
            Dtype::I8 => Values::Int8 {
                values: data.iter().map(|&b| b as i8).collect(),
                scales: st
                    .tensor(SCALES)
                    .map_err(fmt)?
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            },
            other => {
                return Err(IndexError::InvalidArgument(format!(
                    "{}: `{VALUES}` is {other:?}, not f32, f16 or i8",
                    path.display()
                )))
            }
        };
        if let Values::Int8 { scales, .. } = &values {
            if scales.len() != dim {
                return Err(IndexError::format(
                    path,
                    format!("{} scales for {dim} dimensions", scales.len()),
                ));
            }
        }
        Ok((QuantizedMatrix { dim, rows, values }, metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    #[test]
    fn int8_search_equals_f32_search_on_the_dequantised_rows() {
        let (n, dim) = (9000, 24);
        let corpus = rows(n, dim, 1);
        let queries = rows(20, dim, 2);
        let q8 = QuantizedMatrix::quantize(&corpus, dim, VectorDtype::Int8).unwrap();
        let deq = q8.dequantize(0, n);
        let search = ExactSearch::new(10);
        let got = q8.search(&search, &queries, None).unwrap();
        let want = search.search(&queries, &deq, dim, None).unwrap();
        assert_eq!(got, want);
        // Quantisation error is bounded by half a step of each dimension's scale.
        let Values::Int8 { scales, .. } = &q8.values else {
            panic!()
        };
        for (i, (a, b)) in corpus.iter().zip(&deq).enumerate() {
            assert!((a - b).abs() <= scales[i % dim] / 2.0 + 1e-6);
        }
        assert_eq!(q8.bytes(), n * dim + dim * 4);
    }

    #[test]
    fn every_dtype_round_trips_through_a_file_and_ties_follow_the_keys() {
        let dim = 8;
        let corpus = rows(300, dim, 3);
        let dir = tempfile::tempdir().unwrap();
        for dtype in [VectorDtype::F32, VectorDtype::F16, VectorDtype::Int8] {
            let m = QuantizedMatrix::quantize(&corpus, dim, dtype).unwrap();
            let path = dir.path().join(format!("{dtype}.safetensors"));
            let meta = StoreMetadata::from([("model".to_string(), "e5".to_string())]);
            m.save(&path, &meta).unwrap();
            assert_eq!(QuantizedMatrix::load(&path).unwrap(), (m.clone(), meta));
            assert_eq!(m.dtype(), dtype);
        }
        let f32m = QuantizedMatrix::quantize(&corpus, dim, VectorDtype::F32).unwrap();
        let q = &corpus[..dim];
        assert_eq!(
            f32m.search(&ExactSearch::new(1), q, None).unwrap()[0][0].row,
            0
        );
        // Two identical rows: the smaller tie key wins.
        let twin: Vec<f32> = [q, q].concat();
        let m = QuantizedMatrix::quantize(&twin, dim, VectorDtype::F16).unwrap();
        let hits = m.search(&ExactSearch::new(2), q, Some(&[5, 3])).unwrap();
        assert_eq!(hits[0][0].row, 1);
        assert!("int4".parse::<VectorDtype>().is_err());
    }
}
