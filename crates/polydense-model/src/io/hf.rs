//! HF model directories in and out, in the layout sentence-transformers reads and writes:
//! `config.json`, `model.safetensors`, the tokenizer files, `modules.json`,
//! `1_Pooling/config.json`, `2_Normalize/` (when normalising), `sentence_bert_config.json`
//! and `config_sentence_transformers.json` (whose `prompts` hold the query/passage prefixes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value};

use crate::config::EncoderConfig;
use crate::error::{ModelError, Result};
use crate::heads::ProjectionConfig;
use crate::pooling::{Pooling, PoolingMode};
use crate::text_encoder::is_two_tower;
use crate::tokenize::Prompts;

/// Tokenizer files copied through on save, so the saved directory loads in transformers too.
const TOKENIZER_FILES: [&str; 5] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
];

/// Checkpoint name prefixes of the task-head wrappers (`BertForMaskedLM` stores `bert.…`).
const WRAPPER_PREFIXES: [&str; 3] = ["bert.", "roberta.", "model."];

/// Everything in an HF directory except the weights.
#[derive(Debug, Clone)]
pub struct HfMeta {
    /// The architecture.
    pub config: EncoderConfig,
    /// config.json as read; fields we do not model are written back unchanged.
    pub raw_config: Value,
    /// Pooling mode and normalisation (from modules.json and 1_Pooling/config.json).
    pub pooling: Pooling,
    /// Query/passage prefixes (from config_sentence_transformers.json `prompts`).
    pub prompts: Prompts,
    /// `max_seq_length` from sentence_bert_config.json, when present.
    pub max_seq_length: Option<usize>,
    /// A dense head on the pooled vector (a sentence-transformers Dense module) and the
    /// module's directory, relative to the model directory.
    pub head: Option<(String, ProjectionConfig)>,
    /// The tokenizer files present, by name, with their bytes.
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
}

/// Where assets live (one definition for every crate: `$POLYDENSE_HOME`, else
/// `$HOME/.cache/polydense`).
pub use polydense_data::paths::polydense_home;

/// Turns a model argument into a directory: a path to an HF directory (or to the `query/` and
/// `passage/` towers of a separate-tower model), or a short name (`e5-small`, `minilm-l6`)
/// installed under `$POLYDENSE_HOME/models/<name>`.
pub fn resolve(name_or_path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(name_or_path);
    if p.join("config.json").is_file() || is_two_tower(&p) {
        return Ok(p);
    }
    if p.is_dir() {
        return Err(ModelError::MissingFile {
            path: p.join("config.json"),
            hint: "not an HF model directory (nor a two-tower one with query/ and passage/)".into(),
        });
    }
    let installed = polydense_home().join("models").join(name_or_path);
    if installed.join("config.json").is_file() || is_two_tower(&installed) {
        return Ok(installed);
    }
    Err(ModelError::UnknownModel {
        name: name_or_path.to_string(),
        path: installed,
    })
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| ModelError::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelError::io(path, e)),
    }
}

/// Reads config, pooling, prompts and tokenizer files of an HF directory.
pub fn read_meta(dir: &Path) -> Result<HfMeta> {
    let config_path = dir.join("config.json");
    let raw_config = read_json(&config_path)?.ok_or_else(|| ModelError::MissingFile {
        path: config_path.clone(),
        hint: "an HF model directory needs config.json".into(),
    })?;
    let config = EncoderConfig::from_json(&raw_config, &config_path)?;
    let (pooling, head) = read_modules(dir)?;
    let prompts = match read_json(&dir.join("config_sentence_transformers.json"))? {
        Some(v) => {
            let p = |k: &str| {
                v.pointer(&format!("/prompts/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            Prompts {
                query: p("query"),
                passage: p("passage"),
            }
        }
        None => Prompts::default(),
    };
    let max_seq_length = read_json(&dir.join("sentence_bert_config.json"))?
        .and_then(|v| v.get("max_seq_length").and_then(Value::as_u64))
        .map(|n| n as usize);
    let mut tokenizer_files = Vec::new();
    for name in TOKENIZER_FILES {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => tokenizer_files.push((name.to_string(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ModelError::io(path, e)),
        }
    }
    Ok(HfMeta {
        config,
        raw_config,
        pooling,
        prompts,
        max_seq_length,
        head,
        tokenizer_files,
    })
}

/// sentence-transformers' pipeline: a Pooling module's config gives the mode, a Dense module
/// is a head on the pooled vector, a Normalize module turns on normalisation (after the head,
/// as sentence-transformers runs them in order). Without modules.json (a bare HF checkpoint)
/// we use mean pooling without normalisation, which is what sentence-transformers assumes then.
fn read_modules(dir: &Path) -> Result<(Pooling, Option<(String, ProjectionConfig)>)> {
    let Some(modules) = read_json(&dir.join("modules.json"))? else {
        return Ok((
            Pooling {
                mode: PoolingMode::Mean,
                normalize: false,
            },
            None,
        ));
    };
    let list = modules.as_array().cloned().unwrap_or_default();
    let of_type = |suffix: &str| {
        list.iter().find(|m| {
            m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(suffix))
        })
    };
    let normalize = of_type(".Normalize").is_some();
    let modules_path = dir.join("modules.json");
    let dense: Vec<&Value> = list
        .iter()
        .filter(|m| {
            m.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(".Dense"))
        })
        .collect();
    if dense.len() > 1 {
        return Err(ModelError::Config {
            path: modules_path,
            field: "type".into(),
            message: format!("{} Dense modules (one head is supported)", dense.len()),
        });
    }
    let head = match dense.first() {
        None => None,
        Some(m) => {
            let sub = m.get("path").and_then(Value::as_str).unwrap_or("2_Dense");
            let path = dir.join(sub).join("config.json");
            let c = read_json(&path)?.ok_or_else(|| ModelError::MissingFile {
                path: path.clone(),
                hint: "modules.json lists a Dense module".into(),
            })?;
            let config =
                ProjectionConfig::from_json(&c).map_err(|(field, message)| ModelError::Config {
                    path,
                    field,
                    message,
                })?;
            Some((sub.to_string(), config))
        }
    };
    let mut mode = PoolingMode::Mean;
    if let Some(m) = of_type(".Pooling") {
        let sub = m.get("path").and_then(Value::as_str).unwrap_or("1_Pooling");
        let path = dir.join(sub).join("config.json");
        if let Some(c) = read_json(&path)? {
            let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
            let named = c.get("pooling_mode").and_then(Value::as_str);
            mode = if flag("pooling_mode_cls_token") || named == Some("cls") {
                PoolingMode::Cls
            } else if flag("pooling_mode_mean_tokens") || named == Some("mean") {
                PoolingMode::Mean
            } else {
                return Err(ModelError::Config {
                    path,
                    field: "pooling_mode".into(),
                    message: "only cls and mean pooling are supported".into(),
                });
            };
        }
    }
    Ok((Pooling { mode, normalize }, head))
}

/// Loads `model.safetensors` as f32 tensors under unprefixed HF names (`bert.` and `roberta.`
/// prefixes stripped, old `gamma`/`beta` LayerNorm names renamed).
pub fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let path = dir.join("model.safetensors");
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            path,
            hint: "the encoder weights must be in safetensors format".into(),
        });
    }
    let raw = candle_core::safetensors::load(&path, device)?;
    let mut out = HashMap::with_capacity(raw.len());
    for (name, t) in raw {
        let mut n = name.as_str();
        for p in WRAPPER_PREFIXES {
            if let Some(rest) = n.strip_prefix(p) {
                n = rest;
                break;
            }
        }
        let n = n
            .replace("LayerNorm.gamma", "LayerNorm.weight")
            .replace("LayerNorm.beta", "LayerNorm.bias");
        let t = if t.dtype() == DType::F32 {
            t
        } else {
            t.to_dtype(DType::F32)?
        };
        out.insert(n, t);
    }
    Ok(out)
}

/// What [`write_dir`] writes.
pub struct HfOutput<'a> {
    /// Architecture and the config.json it came from.
    pub meta: &'a HfMeta,
    /// Tensors under HF names, written to model.safetensors.
    pub tensors: &'a [(String, Tensor)],
    /// The head's tensors (`linear.weight`, `linear.bias`), written to its module's
    /// model.safetensors; required when `meta.head` is set.
    pub head: &'a [(String, Tensor)],
}

/// Writes a complete HF + sentence-transformers directory at `dir`, atomically: everything
/// goes to a sibling temporary directory that then replaces `dir`.
pub fn write_dir(dir: &Path, out: &HfOutput) -> Result<()> {
    let meta = out.meta;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("model");
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(tmp.join("1_Pooling")).map_err(|e| ModelError::io(&tmp, e))?;
    let write = |rel: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.join(rel);
        std::fs::write(&p, bytes).map_err(|e| ModelError::io(p, e))
    };
    let pretty = |v: &Value| serde_json::to_vec_pretty(v).expect("JSON values serialise");

    write(
        "config.json",
        &pretty(&meta.config.to_json(Some(&meta.raw_config))),
    )?;
    let save = |tensors: &[(String, Tensor)], path: PathBuf| -> Result<()> {
        let tensors: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.to_dtype(DType::F32)?.contiguous()?)))
            .collect::<Result<_>>()?;
        Ok(candle_core::safetensors::save(&tensors, path)?)
    };
    save(out.tensors, tmp.join("model.safetensors"))?;
    for (name, bytes) in &meta.tokenizer_files {
        write(name, bytes)?;
    }

    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if let Some((_, head)) = &meta.head {
        let sub = format!("{}_Dense", modules.len());
        std::fs::create_dir_all(tmp.join(&sub)).map_err(|e| ModelError::io(&tmp, e))?;
        write(&format!("{sub}/config.json"), &pretty(&head.to_json()))?;
        save(out.head, tmp.join(&sub).join("model.safetensors"))?;
        let i = modules.len();
        modules.push(json!({"idx": i, "name": i.to_string(), "path": sub, "type": "sentence_transformers.models.Dense"}));
    }
    if meta.pooling.normalize {
        let sub = format!("{}_Normalize", modules.len());
        std::fs::create_dir_all(tmp.join(&sub)).map_err(|e| ModelError::io(&tmp, e))?;
        let i = modules.len();
        modules.push(json!({"idx": i, "name": i.to_string(), "path": sub, "type": "sentence_transformers.models.Normalize"}));
    }
    write("modules.json", &pretty(&Value::from(modules)))?;
    let cls = meta.pooling.mode == PoolingMode::Cls;
    write(
        "1_Pooling/config.json",
        &pretty(&json!({
            "word_embedding_dimension": meta.config.hidden_size,
            "pooling_mode_cls_token": cls,
            "pooling_mode_mean_tokens": !cls,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
            "pooling_mode_weightedmean_tokens": false,
            "pooling_mode_lasttoken": false,
            "include_prompt": true
        })),
    )?;
    let max_seq = meta
        .max_seq_length
        .unwrap_or(meta.config.max_tokens().min(512));
    write(
        "sentence_bert_config.json",
        &pretty(&json!({"max_seq_length": max_seq, "do_lower_case": false})),
    )?;
    write(
        "config_sentence_transformers.json",
        &pretty(&json!({
            "__version__": {"polydense": env!("CARGO_PKG_VERSION")},
            "prompts": {"query": meta.prompts.query, "passage": meta.prompts.passage},
            "default_prompt_name": null,
            "similarity_fn_name": if meta.pooling.normalize { "cosine" } else { "dot" }
        })),
    )?;

    // Swap in: move any old directory aside first, so a crash leaves either the old or the new one.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| ModelError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| ModelError::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| ModelError::io(&old, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_explains_a_missing_model() {
        let e = resolve("no-such-model-xyz").unwrap_err().to_string();
        assert!(e.contains("scripts/setup"), "{e}");
        let tmp = tempfile::tempdir().unwrap();
        let e = resolve(tmp.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn missing_weights_name_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_weights(tmp.path(), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.safetensors"), "{e}");
    }
}
