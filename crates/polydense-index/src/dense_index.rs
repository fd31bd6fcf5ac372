//! [`DenseIndex`]: the dense indexes `search` can open, whatever their storage, so callers
//! open a directory and search it without knowing how it was written.

use std::path::Path;

use crate::error::{IndexError, Result};
use crate::exact::{ExactSearch, Hit};
use crate::quantized::VectorDtype;
use crate::quantized_store::{QuantizedStore, QUANTIZED_FILE};
use crate::store::{EmbeddingStore, RowId, StoreMetadata, EMBEDDINGS_FILE, IDS_FILE};

/// An opened dense index: the f32 store (memory-mapped) or a quantized one (in memory).
#[derive(Debug)]
pub enum DenseIndex {
    /// Written by `encode`.
    F32(EmbeddingStore),
    /// Written by `compress quantize`.
    Quantized(QuantizedStore),
}

impl DenseIndex {
    /// Opens the store in `dir`, a quantized one when the directory holds one.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if QuantizedStore::exists(dir) {
            Ok(DenseIndex::Quantized(QuantizedStore::open(dir)?))
        } else if EmbeddingStore::exists(dir) {
            Ok(DenseIndex::F32(EmbeddingStore::open(dir)?))
        } else {
            Err(IndexError::format(
                dir,
                format!(
                    "no embedding index here (neither {EMBEDDINGS_FILE} nor {QUANTIZED_FILE} \
                     with ids.jsonl); write one with `polydense encode --corpus`"
                ),
            ))
        }
    }

    /// The directory it was opened from.
    pub fn dir(&self) -> &Path {
        match self {
            DenseIndex::F32(s) => s.dir(),
            DenseIndex::Quantized(s) => s.dir(),
        }
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        match self {
            DenseIndex::F32(s) => s.dim(),
            DenseIndex::Quantized(s) => s.matrix().dim(),
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.ids().len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id and language of every row.
    pub fn ids(&self) -> &[RowId] {
        match self {
            DenseIndex::F32(s) => s.ids(),
            DenseIndex::Quantized(s) => s.ids(),
        }
    }

    /// Header metadata (the encoding model, ...).
    pub fn metadata(&self) -> &StoreMetadata {
        match self {
            DenseIndex::F32(s) => s.metadata(),
            DenseIndex::Quantized(s) => s.metadata(),
        }
    }

    /// How values are stored.
    pub fn dtype(&self) -> VectorDtype {
        match self {
            DenseIndex::F32(_) => VectorDtype::F32,
            DenseIndex::Quantized(s) => s.matrix().dtype(),
        }
    }

    /// Bytes the vectors take in memory (for the f32 store, its mapped rows).
    pub fn vector_bytes(&self) -> usize {
        match self {
            DenseIndex::F32(s) => s.embeddings().len() * 4,
            DenseIndex::Quantized(s) => s.matrix().bytes(),
        }
    }

    /// Bytes of the index's files on disk.
    pub fn disk_bytes(&self) -> Result<u64> {
        let dir = self.dir();
        let files: &[&str] = match self {
            DenseIndex::F32(_) => &[EMBEDDINGS_FILE, IDS_FILE],
            DenseIndex::Quantized(_) => &[QUANTIZED_FILE, IDS_FILE],
        };
        let mut total = 0;
        for f in files {
            let p = dir.join(f);
            if p.is_file() {
                total += std::fs::metadata(&p)
                    .map_err(|e| IndexError::io(&p, e))?
                    .len();
            }
        }
        Ok(total)
    }

    /// Exact top-k for each query, ties broken by doc id ascending.
    pub fn search(&self, search: &ExactSearch, queries: &[f32]) -> Result<Vec<Vec<Hit>>> {
        match self {
            DenseIndex::F32(s) => search.search_store(queries, s),
            DenseIndex::Quantized(s) => s.search(search, queries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::write_store;

    #[test]
    fn open_finds_either_kind_and_reports_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let ids: Vec<RowId> = (0..8).map(|i| RowId::new(format!("d{i}"))).collect();
        let rows: Vec<f32> = (0..32).map(|i| (i as f32).sin()).collect();
        write_store(tmp.path().join("f32"), &ids, &rows, 4, Default::default()).unwrap();
        let f32s = DenseIndex::open(tmp.path().join("f32")).unwrap();
        assert_eq!(
            (f32s.dtype(), f32s.dim(), f32s.len()),
            (VectorDtype::F32, 4, 8)
        );
        assert_eq!(f32s.vector_bytes(), 128);
        let DenseIndex::F32(source) = &f32s else {
            panic!("an f32 store opens as one")
        };
        QuantizedStore::write(source, tmp.path().join("q"), VectorDtype::Int8).unwrap();
        let q = DenseIndex::open(tmp.path().join("q")).unwrap();
        assert_eq!((q.dtype(), q.dim(), q.len()), (VectorDtype::Int8, 4, 8));
        assert_eq!(q.vector_bytes(), 32 + 16);
        assert!(q.disk_bytes().unwrap() < f32s.disk_bytes().unwrap());
        let query = &rows[12..16];
        let hits = |ix: &DenseIndex| ix.search(&ExactSearch::new(1), query).unwrap()[0][0].row;
        assert_eq!((hits(&f32s), hits(&q)), (3, 3));
        let err = DenseIndex::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("no embedding index here"), "{err}");
    }
}
