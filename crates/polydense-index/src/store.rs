//! The embedding store: a directory holding `embeddings.safetensors` (one f32 tensor
//! `embeddings` of shape `[n, dim]`, row i for input item i) and `ids.jsonl` (line i is
//! `{"id": ..., "lang": ...}` for row i). Readers memory-map the tensor, so opening a store of
//! any size costs only its ids.
//!
//! The writer streams: it reserves a fixed-size safetensors header up front, appends rows as
//! they are encoded, and rewrites the header with the final row count at the end. The header
//! is JSON padded with spaces (as the safetensors format allows, and as its own writer pads
//! for alignment), so the size prefix never changes and no row is copied twice. Rows and ids
//! go to hidden `.partial` files that are renamed into place only when complete.

use crate::error::{IndexError, Result};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name of the row tensor inside a store directory.
pub const EMBEDDINGS_FILE: &str = "embeddings.safetensors";
/// File name of the id sidecar inside a store directory.
pub const IDS_FILE: &str = "ids.jsonl";
/// Plain one-id-per-line sidecar, accepted when reading stores written by other tools.
pub const IDS_TXT_FILE: &str = "ids.txt";
/// Name of the tensor that holds the rows.
pub const TENSOR_NAME: &str = "embeddings";
/// Value of the `format` metadata key, so a future layout change can be detected.
pub const FORMAT_VERSION: &str = "polydense.embeddings.v1";

const PARTIAL_EMB: &str = ".embeddings.safetensors.partial";
const PARTIAL_IDS: &str = ".ids.jsonl.partial";
/// The data section starts on this boundary so the mapped rows can be read as `&[f32]`
/// (and by SIMD loads) without a copy.
const DATA_ALIGN: usize = 64;

/// The id of one row and, when known, its language, so search results and per-language
/// filters need nothing but the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowId {
    /// The document or query id, as in the corpus.
    pub id: String,
    /// ISO language tag of the text the row encodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl RowId {
    /// A row id without a language.
    pub fn new(id: impl Into<String>) -> Self {
        RowId {
            id: id.into(),
            lang: None,
        }
    }
}

/// Free-form string metadata kept in the safetensors header (model, text kind, ...), so a
/// cache can tell whether it was made by the same encoder.
pub type StoreMetadata = BTreeMap<String, String>;

fn header_json(rows: u64, dim: u64, metadata: &StoreMetadata) -> String {
    let mut meta = metadata.clone();
    meta.insert("format".into(), FORMAT_VERSION.into());
    let bytes = rows.saturating_mul(dim).saturating_mul(4);
    serde_json::json!({
        "__metadata__": meta,
        TENSOR_NAME: {
            "dtype": "F32",
            "shape": [rows, dim],
            "data_offsets": [0u64, bytes],
        }
    })
    .to_string()
}

/// Header length (JSON plus padding) that fits any row count, chosen so that the data
/// section starts on a [`DATA_ALIGN`] boundary.
fn reserved_header_len(dim: u64, metadata: &StoreMetadata) -> usize {
    let widest = header_json(u64::MAX, dim, metadata).len() + 40;
    (8 + widest).div_ceil(DATA_ALIGN) * DATA_ALIGN - 8
}

fn padded_header(rows: u64, dim: u64, metadata: &StoreMetadata, len: usize) -> Vec<u8> {
    let mut h = header_json(rows, dim, metadata).into_bytes();
    debug_assert!(h.len() <= len);
    h.resize(len, b' ');
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out
}

/// Appends rows to a store directory in bounded memory; nothing appears under the final
/// names until [`StoreWriter::finish`]. Dropping a writer keeps its partial files, which
/// [`StoreWriter::resume`] continues.
pub struct StoreWriter {
    dir: PathBuf,
    dim: usize,
    rows: u64,
    header_len: usize,
    metadata: StoreMetadata,
    data: BufWriter<File>,
    ids: BufWriter<File>,
    scratch: Vec<u8>,
}

impl StoreWriter {
    /// Starts an empty store in `dir` (created if missing), discarding any partial one.
    pub fn create(dir: impl AsRef<Path>, dim: usize, metadata: StoreMetadata) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if dim == 0 {
            return Err(IndexError::InvalidArgument(
                "embedding dimension must be > 0".into(),
            ));
        }
        std::fs::create_dir_all(&dir).map_err(|e| IndexError::io(&dir, e))?;
        let header_len = reserved_header_len(dim as u64, &metadata);
        let emb_path = dir.join(PARTIAL_EMB);
        let mut data = File::create(&emb_path).map_err(|e| IndexError::io(&emb_path, e))?;
        data.write_all(&padded_header(0, dim as u64, &metadata, header_len))
            .map_err(|e| IndexError::io(&emb_path, e))?;
        let ids_path = dir.join(PARTIAL_IDS);
        let ids = File::create(&ids_path).map_err(|e| IndexError::io(&ids_path, e))?;
        Ok(StoreWriter {
            dir,
            dim,
            rows: 0,
            header_len,
            metadata,
            data: BufWriter::with_capacity(1 << 20, data),
            ids: BufWriter::with_capacity(1 << 16, ids),
            scratch: Vec::new(),
        })
    }

    /// Continues the partial store in `dir` when it was started with the same `dim` and
    /// `metadata`, keeping its complete rows ([`StoreWriter::len`] says how many, so the
    /// caller skips that many inputs); otherwise starts afresh like [`StoreWriter::create`].
    pub fn resume(dir: impl AsRef<Path>, dim: usize, metadata: StoreMetadata) -> Result<Self> {
        let dir = dir.as_ref();
        match Self::reopen(dir, dim, &metadata)? {
            Some(w) => Ok(w),
            None => Self::create(dir, dim, metadata),
        }
    }

    fn reopen(dir: &Path, dim: usize, metadata: &StoreMetadata) -> Result<Option<Self>> {
        let emb_path = dir.join(PARTIAL_EMB);
        let ids_path = dir.join(PARTIAL_IDS);
        if !emb_path.is_file() || !ids_path.is_file() || dim == 0 {
            return Ok(None);
        }
        let header_len = reserved_header_len(dim as u64, metadata);
        let mut data = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&emb_path)
            .map_err(|e| IndexError::io(&emb_path, e))?;
        let mut head = vec![0u8; 8 + header_len];
        if data.read_exact(&mut head).is_err()
            || head != padded_header(0, dim as u64, metadata, header_len)
        {
            // Another model, dimension or a torn header: the rows cannot be reused.
            return Ok(None);
        }
        let len = data
            .metadata()
            .map_err(|e| IndexError::io(&emb_path, e))?
            .len();
        let row_bytes = (dim * 4) as u64;
        let data_rows = (len - (8 + header_len) as u64) / row_bytes;
        let (id_rows, id_bytes) = complete_lines(&ids_path)?;
        let rows = data_rows.min(id_rows as u64);
        data.set_len((8 + header_len) as u64 + rows * row_bytes)
            .map_err(|e| IndexError::io(&emb_path, e))?;
        data.seek(SeekFrom::End(0))
            .map_err(|e| IndexError::io(&emb_path, e))?;
        let ids_keep = if (id_rows as u64) == rows {
            id_bytes
        } else {
            line_offset(&ids_path, rows as usize)?
        };
        let ids = OpenOptions::new()
            .write(true)
            .open(&ids_path)
            .map_err(|e| IndexError::io(&ids_path, e))?;
        ids.set_len(ids_keep)
            .map_err(|e| IndexError::io(&ids_path, e))?;
        let mut ids = ids;
        ids.seek(SeekFrom::End(0))
            .map_err(|e| IndexError::io(&ids_path, e))?;
        Ok(Some(StoreWriter {
            dir: dir.to_path_buf(),
            dim,
            rows,
            header_len,
            metadata: metadata.clone(),
            data: BufWriter::with_capacity(1 << 20, data),
            ids: BufWriter::with_capacity(1 << 16, ids),
            scratch: Vec::new(),
        }))
    }

    /// Rows written so far (after a resume, the rows kept from the earlier run).
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    /// Whether no row has been written yet.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Width of every row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Appends `ids.len()` rows, given row-major in `rows`, and flushes them to the partial
    /// files so an interrupted run can resume after them.
    pub fn append(&mut self, ids: &[RowId], rows: &[f32]) -> Result<()> {
        if rows.len() != ids.len() * self.dim {
            return Err(IndexError::InvalidArgument(format!(
                "append: {} ids need {} values of dimension {}, got {}",
                ids.len(),
                ids.len() * self.dim,
                self.dim,
                rows.len()
            )));
        }
        let emb_path = self.dir.join(PARTIAL_EMB);
        self.scratch.clear();
        self.scratch.reserve(rows.len() * 4);
        for v in rows {
            self.scratch.extend_from_slice(&v.to_le_bytes());
        }
        self.data
            .write_all(&self.scratch)
            .and_then(|_| self.data.flush())
            .map_err(|e| IndexError::io(&emb_path, e))?;
        let ids_path = self.dir.join(PARTIAL_IDS);
        for id in ids {
            if id.id.contains('\n') {
                return Err(IndexError::InvalidArgument(format!(
                    "id {:?} contains a line break",
                    id.id
                )));
            }
            serde_json::to_writer(&mut self.ids, id)
                .map_err(|e| IndexError::io(&ids_path, e.into()))?;
            self.ids
                .write_all(b"\n")
                .map_err(|e| IndexError::io(&ids_path, e))?;
        }
        self.ids.flush().map_err(|e| IndexError::io(&ids_path, e))?;
        self.rows += ids.len() as u64;
        Ok(())
    }

    /// Writes the final header, syncs, and renames both files into place. The old
    /// `embeddings.safetensors` is removed first, so a crash in between leaves no store
    /// (never old rows beside new ids). Returns the store directory.
    pub fn finish(self) -> Result<PathBuf> {
        let StoreWriter {
            dir,
            dim,
            rows,
            header_len,
            metadata,
            data,
            ids,
            ..
        } = self;
        let emb_path = dir.join(PARTIAL_EMB);
        let ids_path = dir.join(PARTIAL_IDS);
        let mut data = data
            .into_inner()
            .map_err(|e| IndexError::io(&emb_path, e.into_error()))?;
        data.seek(SeekFrom::Start(0))
            .and_then(|_| data.write_all(&padded_header(rows, dim as u64, &metadata, header_len)))
            .and_then(|_| data.sync_all())
            .map_err(|e| IndexError::io(&emb_path, e))?;
        let ids = ids
            .into_inner()
            .map_err(|e| IndexError::io(&ids_path, e.into_error()))?;
        ids.sync_all().map_err(|e| IndexError::io(&ids_path, e))?;
        let final_emb = dir.join(EMBEDDINGS_FILE);
        let final_ids = dir.join(IDS_FILE);
        match std::fs::remove_file(&final_emb) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(IndexError::io(&final_emb, e)),
        }
        std::fs::rename(&ids_path, &final_ids).map_err(|e| IndexError::io(&final_ids, e))?;
        std::fs::rename(&emb_path, &final_emb).map_err(|e| IndexError::io(&final_emb, e))?;
        Ok(dir)
    }
}

/// Number of `\n`-terminated lines and the byte length they span (a torn last line is not
/// counted, since its row may be missing).
fn complete_lines(path: &Path) -> Result<(usize, u64)> {
    let mut r = BufReader::new(File::open(path).map_err(|e| IndexError::io(path, e))?);
    let (mut n, mut bytes) = (0usize, 0u64);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let got = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| IndexError::io(path, e))?;
        if got == 0 || buf.last() != Some(&b'\n') {
            return Ok((n, bytes));
        }
        n += 1;
        bytes += got as u64;
    }
}

/// Byte offset just after the `n`-th line.
fn line_offset(path: &Path, n: usize) -> Result<u64> {
    let mut r = BufReader::new(File::open(path).map_err(|e| IndexError::io(path, e))?);
    let mut bytes = 0u64;
    let mut buf = Vec::new();
    for _ in 0..n {
        buf.clear();
        bytes += r
            .read_until(b'\n', &mut buf)
            .map_err(|e| IndexError::io(path, e))? as u64;
    }
    Ok(bytes)
}

/// Writes a whole store at once (for small matrices and tests).
pub fn write_store(
    dir: impl AsRef<Path>,
    ids: &[RowId],
    rows: &[f32],
    dim: usize,
    metadata: StoreMetadata,
) -> Result<PathBuf> {
    let mut w = StoreWriter::create(dir, dim, metadata)?;
    w.append(ids, rows)?;
    w.finish()
}

enum Rows {
    /// Zero-copy view of the mapped file: `offset` bytes in, `len` floats.
    Mapped {
        map: Mmap,
        offset: usize,
        len: usize,
    },
    /// A copy, for files whose data section is not 4-byte aligned or on big-endian hosts.
    Owned(Vec<f32>),
}

/// A read-only, memory-mapped embedding store.
pub struct EmbeddingStore {
    dir: PathBuf,
    rows: Rows,
    n: usize,
    dim: usize,
    ids: Vec<RowId>,
    metadata: StoreMetadata,
    id_ranks: OnceLock<Vec<u32>>,
}

impl std::fmt::Debug for EmbeddingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingStore")
            .field("dir", &self.dir)
            .field("len", &self.n)
            .field("dim", &self.dim)
            .finish()
    }
}

impl EmbeddingStore {
    /// Whether `dir` holds a complete store (both files under their final names).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        let dir = dir.as_ref();
        dir.join(EMBEDDINGS_FILE).is_file()
            && (dir.join(IDS_FILE).is_file() || dir.join(IDS_TXT_FILE).is_file())
    }

    /// Maps `dir/embeddings.safetensors` and reads its ids, checking that both agree.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(EMBEDDINGS_FILE);
        let file = File::open(&path).map_err(|e| IndexError::io(&path, e))?;
        // SAFETY: the store is written once and renamed into place; it is not modified
        // while mapped (a rewrite replaces the file, leaving this mapping on the old inode).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| IndexError::io(&path, e))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map)
            .map_err(|e| IndexError::format(&path, format!("not a safetensors file: {e}")))?;
        let info = meta
            .info(TENSOR_NAME)
            .ok_or_else(|| IndexError::format(&path, format!("no tensor named `{TENSOR_NAME}`")))?;
        if info.dtype != Dtype::F32 || info.shape.len() != 2 {
            return Err(IndexError::format(
                &path,
                format!(
                    "`{TENSOR_NAME}` must be F32 [n, dim], found {:?} {:?}",
                    info.dtype, info.shape
                ),
            ));
        }
        let (n, dim) = (info.shape[0], info.shape[1]);
        let offset = 8 + header_len + info.data_offsets.0;
        let len = n * dim;
        let metadata: StoreMetadata = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let bytes = &map[offset..offset + len * 4];
        let rows = if cfg!(target_endian = "little") && (bytes.as_ptr() as usize) % 4 == 0 {
            Rows::Mapped { map, offset, len }
        } else {
            Rows::Owned(
                bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        };
        let ids = read_ids(&dir)?;
        if ids.len() != n {
            return Err(IndexError::format(
                &path,
                format!(
                    "{n} rows but {} ids in the sidecar; the store is incomplete, re-create it",
                    ids.len()
                ),
            ));
        }
        Ok(EmbeddingStore {
            dir,
            rows,
            n,
            dim,
            ids,
            metadata,
            id_ranks: OnceLock::new(),
        })
    }

    /// The directory the store was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the store holds no row.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Width of every row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All rows, row-major `[len, dim]`.
    pub fn embeddings(&self) -> &[f32] {
        match &self.rows {
            Rows::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + *len * 4];
                // SAFETY: alignment was checked in `open`, every bit pattern is a valid f32,
                // and the host is little-endian like the file.
                let (pre, floats, _) = unsafe { bytes.align_to::<f32>() };
                debug_assert!(pre.is_empty());
                floats
            }
            Rows::Owned(v) => v,
        }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.embeddings()[i * self.dim..(i + 1) * self.dim]
    }

    /// Id and language of every row, in row order.
    pub fn ids(&self) -> &[RowId] {
        &self.ids
    }

    /// The header metadata (always includes `format`).
    pub fn metadata(&self) -> &StoreMetadata {
        &self.metadata
    }

    /// For each row, the rank of its id in byte-wise ascending id order, so the search can
    /// break score ties by id without comparing strings in its inner loop.
    pub fn id_ranks(&self) -> &[u32] {
        self.id_ranks.get_or_init(|| id_ranks(&self.ids))
    }
}

/// For each row, the rank of its id in byte-wise ascending id order.
pub(crate) fn id_ranks(ids: &[RowId]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    order.sort_by(|&a, &b| ids[a as usize].id.cmp(&ids[b as usize].id));
    let mut ranks = vec![0u32; ids.len()];
    for (rank, &row) in order.iter().enumerate() {
        ranks[row as usize] = rank as u32;
    }
    ranks
}

pub(crate) fn read_ids(dir: &Path) -> Result<Vec<RowId>> {
    let jsonl = dir.join(IDS_FILE);
    let (path, is_json) = if jsonl.is_file() {
        (jsonl, true)
    } else {
        (dir.join(IDS_TXT_FILE), false)
    };
    let r = BufReader::with_capacity(
        1 << 16,
        File::open(&path).map_err(|e| IndexError::io(&path, e))?,
    );
    let mut ids = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.map_err(|e| IndexError::io(&path, e))?;
        if is_json {
            let id: RowId = serde_json::from_str(&line)
                .map_err(|e| IndexError::format(&path, format!("line {}: {e}", i + 1)))?;
            ids.push(id);
        } else {
            ids.push(RowId::new(line));
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<RowId> {
        (0..n)
            .map(|i| RowId {
                id: format!("d{i}"),
                lang: (i % 2 == 0).then(|| "de".to_string()),
            })
            .collect()
    }

    fn rows(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|i| i as f32 * 0.5 - 3.0).collect()
    }

    #[test]
    fn streamed_chunks_round_trip_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let (n, dim) = (10, 3);
        let (all_ids, all_rows) = (ids(n), rows(n, dim));
        let mut meta = StoreMetadata::new();
        meta.insert("model".into(), "m".into());
        let mut w = StoreWriter::create(dir.path(), dim, meta).unwrap();
        for (ic, rc) in all_ids.chunks(4).zip(all_rows.chunks(4 * dim)) {
            w.append(ic, rc).unwrap();
        }
        assert!(!EmbeddingStore::exists(dir.path()));
        w.finish().unwrap();
        let s = EmbeddingStore::open(dir.path()).unwrap();
        assert_eq!((s.len(), s.dim()), (n, dim));
        assert_eq!(s.embeddings(), &all_rows[..]);
        assert_eq!(s.row(7), &all_rows[21..24]);
        assert_eq!(s.ids(), &all_ids[..]);
        assert_eq!(s.metadata()["model"], "m");
        assert_eq!(s.metadata()["format"], FORMAT_VERSION);
        assert!(matches!(s.rows, Rows::Mapped { .. }));
        // No partial file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn file_is_valid_safetensors_for_other_readers() {
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), &ids(5), &rows(5, 4), 4, StoreMetadata::new()).unwrap();
        let bytes = std::fs::read(dir.path().join(EMBEDDINGS_FILE)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor(TENSOR_NAME).unwrap();
        assert_eq!(t.shape(), &[5, 4]);
        assert_eq!(t.data().len(), 5 * 4 * 4);
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + header) % DATA_ALIGN, 0);
    }

    #[test]
    fn resume_keeps_complete_rows_and_drops_torn_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dim = 2;
        let (all_ids, all_rows) = (ids(6), rows(6, dim));
        let mut w = StoreWriter::create(dir.path(), dim, StoreMetadata::new()).unwrap();
        w.append(&all_ids[..4], &all_rows[..4 * dim]).unwrap();
        drop(w);
        // Simulate a crash mid-block: half a row and a torn id line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(PARTIAL_EMB))
            .unwrap();
        f.write_all(&[0u8; 5]).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(PARTIAL_IDS))
            .unwrap();
        f.write_all(b"{\"id\":\"d4\"").unwrap();

        let mut w = StoreWriter::resume(dir.path(), dim, StoreMetadata::new()).unwrap();
        assert_eq!(w.len(), 4);
        w.append(&all_ids[4..], &all_rows[4 * dim..]).unwrap();
        w.finish().unwrap();
        let s = EmbeddingStore::open(dir.path()).unwrap();
        assert_eq!(s.embeddings(), &all_rows[..]);
        assert_eq!(s.ids(), &all_ids[..]);
    }

    #[test]
    fn resume_with_other_metadata_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(dir.path(), 2, StoreMetadata::new()).unwrap();
        w.append(&ids(1), &[1.0, 2.0]).unwrap();
        drop(w);
        let mut meta = StoreMetadata::new();
        meta.insert("model".into(), "other".into());
        let w = StoreWriter::resume(dir.path(), 2, meta).unwrap();
        assert_eq!(w.len(), 0);
        let w = StoreWriter::resume(dir.path(), 3, StoreMetadata::new()).unwrap();
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn rejects_ragged_append_and_mismatched_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create(dir.path(), 3, StoreMetadata::new()).unwrap();
        assert!(w.append(&ids(2), &[0.0; 5]).is_err());
        w.append(&ids(2), &[0.0; 6]).unwrap();
        w.finish().unwrap();
        std::fs::write(dir.path().join(IDS_FILE), "{\"id\":\"only\"}\n").unwrap();
        let err = EmbeddingStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("2 rows but 1 ids"), "{err}");
        std::fs::write(dir.path().join(IDS_FILE), "{\"id\":\"a\"}\nnot json\n").unwrap();
        let err = EmbeddingStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn plain_id_sidecar_and_empty_store_open() {
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), &[], &[], 4, StoreMetadata::new()).unwrap();
        let s = EmbeddingStore::open(dir.path()).unwrap();
        assert!(s.is_empty());
        let dir = tempfile::tempdir().unwrap();
        write_store(dir.path(), &ids(2), &rows(2, 1), 1, StoreMetadata::new()).unwrap();
        std::fs::remove_file(dir.path().join(IDS_FILE)).unwrap();
        std::fs::write(dir.path().join(IDS_TXT_FILE), "x\ny\n").unwrap();
        let s = EmbeddingStore::open(dir.path()).unwrap();
        assert_eq!(s.ids()[1], RowId::new("y"));
    }

    #[test]
    fn id_ranks_follow_byte_order_of_ids() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<_> = ["b", "a", "c", "aa"]
            .iter()
            .map(|s| RowId::new(*s))
            .collect();
        write_store(dir.path(), &ids, &[0.0; 4], 1, StoreMetadata::new()).unwrap();
        let s = EmbeddingStore::open(dir.path()).unwrap();
        assert_eq!(s.id_ranks(), &[2, 0, 3, 1]);
    }
}
