//! [`QuantizedStore`]: an embedding store kept on disk as f16 or int8 (a scale per
//! dimension), so a compressed index costs half or a quarter of the f32 store on disk and
//! in memory, and is searched exactly by [`QuantizedMatrix::search`].
//!
//! A directory holds `quantized.safetensors` (the matrix, its scales and the source store's
//! metadata plus `dtype`) and `ids.jsonl`, the source store's id sidecar. The ids are
//! written last, so a directory with both files is complete.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{IndexError, Result};
use crate::exact::{ExactSearch, Hit};
use crate::quantized::{QuantizedMatrix, VectorDtype};
use crate::store::{id_ranks, read_ids, EmbeddingStore, RowId, StoreMetadata, IDS_FILE};

/// File name of the quantized matrix inside a store directory.
pub const QUANTIZED_FILE: &str = "quantized.safetensors";

/// A read-only embedding store held in memory in its compressed dtype.
#[derive(Debug)]
pub struct QuantizedStore {
    dir: PathBuf,
    matrix: QuantizedMatrix,
    ids: Vec<RowId>,
    metadata: StoreMetadata,
    id_ranks: OnceLock<Vec<u32>>,
}

impl QuantizedStore {
    /// Whether `dir` holds a complete quantized store.
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        let dir = dir.as_ref();
        dir.join(QUANTIZED_FILE).is_file() && dir.join(IDS_FILE).is_file()
    }

    /// Quantizes `source` into `dir` as `dtype`. A store already in `dir` is replaced: its
    /// ids go first, so a crash midway leaves an incomplete directory that
    /// [`QuantizedStore::exists`] rejects, never a matrix beside another store's ids.
    pub fn write(
        source: &EmbeddingStore,
        dir: impl AsRef<Path>,
        dtype: VectorDtype,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let ids_path = dir.join(IDS_FILE);
        if ids_path.exists() {
            std::fs::remove_file(&ids_path).map_err(|e| IndexError::io(&ids_path, e))?;
        }
        let matrix = QuantizedMatrix::quantize(source.embeddings(), source.dim(), dtype)?;
        let mut metadata = source.metadata().clone();
        metadata.insert("dtype".into(), dtype.to_string());
        matrix.save(&dir.join(QUANTIZED_FILE), &metadata)?;
        let mut lines = String::new();
        for id in source.ids() {
            lines.push_str(&serde_json::to_string(id).expect("a RowId serializes"));
            lines.push('\n');
        }
        let tmp = dir.join(".ids.jsonl.tmp");
        std::fs::write(&tmp, lines).map_err(|e| IndexError::io(&tmp, e))?;
        std::fs::rename(&tmp, &ids_path).map_err(|e| IndexError::io(&ids_path, e))?;
        Ok(QuantizedStore {
            dir: dir.to_path_buf(),
            matrix,
            ids: source.ids().to_vec(),
            metadata,
            id_ranks: OnceLock::new(),
        })
    }

    /// Reads `dir/quantized.safetensors` and its ids, checking that both agree.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(QUANTIZED_FILE);
        let (matrix, metadata) = QuantizedMatrix::load(&path)?;
        let ids = read_ids(&dir)?;
        if ids.len() != matrix.len() {
            return Err(IndexError::format(
                &path,
                format!(
                    "{} rows but {} ids in the sidecar; the store is incomplete, re-create it",
                    matrix.len(),
                    ids.len()
                ),
            ));
        }
        Ok(QuantizedStore {
            dir,
            matrix,
            ids,
            metadata,
            id_ranks: OnceLock::new(),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compressed rows.
    pub fn matrix(&self) -> &QuantizedMatrix {
        &self.matrix
    }

    /// Id and language of every row, in row order.
    pub fn ids(&self) -> &[RowId] {
        &self.ids
    }

    /// The source store's header metadata, plus `dtype`.
    pub fn metadata(&self) -> &StoreMetadata {
        &self.metadata
    }

    /// Top-k rows for each query, ties broken by doc id as [`ExactSearch::search_store`].
    pub fn search(&self, search: &ExactSearch, queries: &[f32]) -> Result<Vec<Vec<Hit>>> {
        let ranks = self.id_ranks.get_or_init(|| id_ranks(&self.ids));
        self.matrix.search(search, queries, Some(ranks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::write_store;

    #[test]
    fn a_quantized_store_round_trips_and_searches_like_its_dequantised_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let (n, dim) = (50, 6);
        let rows: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        // Unit rows, so a row's best match is itself; row 7 twice under two ids: ties must
        // go to the smaller id, as in the f32 store.
        let mut rows: Vec<f32> = rows
            .chunks(dim)
            .flat_map(|r| {
                let norm = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter().map(move |x| x / norm).collect::<Vec<_>>()
            })
            .collect();
        let twin = rows[7 * dim..8 * dim].to_vec();
        rows[9 * dim..10 * dim].copy_from_slice(&twin);
        let ids: Vec<RowId> = (0..n)
            .map(|i| RowId {
                id: format!("d{:02}", n - i),
                lang: Some("en".into()),
            })
            .collect();
        let meta = StoreMetadata::from([("model".to_string(), "m".to_string())]);
        write_store(tmp.path().join("f32"), &ids, &rows, dim, meta).unwrap();
        let source = EmbeddingStore::open(tmp.path().join("f32")).unwrap();
        let search = ExactSearch::new(5);
        for dtype in [VectorDtype::F32, VectorDtype::F16, VectorDtype::Int8] {
            let dir = tmp.path().join(dtype.to_string());
            let written = QuantizedStore::write(&source, &dir, dtype).unwrap();
            assert!(QuantizedStore::exists(&dir));
            let store = QuantizedStore::open(&dir).unwrap();
            assert_eq!(store.ids(), source.ids());
            assert_eq!(store.matrix(), written.matrix());
            assert_eq!(store.metadata()["model"], "m");
            assert_eq!(store.metadata()["dtype"], dtype.to_string());
            let deq = store.matrix().dequantize(0, n);
            let want = search
                .search(&twin, &deq, dim, Some(source.id_ranks()))
                .unwrap();
            assert_eq!(store.search(&search, &twin).unwrap(), want, "{dtype}");
        }
        let f32_hits = QuantizedStore::open(tmp.path().join("f32"))
            .unwrap()
            .search(&search, &twin)
            .unwrap();
        assert_eq!(f32_hits, search.search_store(&twin, &source).unwrap());
        // Rows 7 and 9 tie; row 9's id ("d41") sorts before row 7's ("d43").
        assert_eq!((f32_hits[0][0].row, f32_hits[0][1].row), (9, 7));
        assert_eq!(
            QuantizedStore::open(tmp.path().join("int8"))
                .unwrap()
                .matrix()
                .bytes(),
            n * dim + dim * 4
        );
    }

    #[test]
    fn ids_that_disagree_with_the_rows_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ids = [RowId::new("a"), RowId::new("b")];
        write_store(
            tmp.path().join("s"),
            &ids,
            &[1.0, 0.0, 0.0, 1.0],
            2,
            Default::default(),
        )
        .unwrap();
        let source = EmbeddingStore::open(tmp.path().join("s")).unwrap();
        let dir = tmp.path().join("q");
        QuantizedStore::write(&source, &dir, VectorDtype::Int8).unwrap();
        std::fs::write(dir.join(IDS_FILE), "{\"id\":\"a\"}\n").unwrap();
        let err = QuantizedStore::open(&dir).unwrap_err().to_string();
        assert!(err.contains("2 rows but 1 ids"), "{err}");
    }
}
