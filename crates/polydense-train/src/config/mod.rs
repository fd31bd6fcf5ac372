//! [`TrainConfig`]: every setting of a run, read from TOML, overridden by CLI flags, and
//! saved resolved into the run directory so a run can be repeated and resumed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::freeze::Trainable;
use crate::loss::LossConfig;
use crate::memory::MemoryConfig;
use crate::moe::MoeSettings;
use crate::sampler::SamplerConfig;

mod legacy;
mod overrides;

/// Whether queries and passages share one encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Towers {
    /// One encoder for both (E5, sentence-transformers MNRL, most multilingual recipes).
    #[default]
    Shared,
    /// A query tower and a passage tower, both started from the same model (DPR).
    Separate,
}

impl std::str::FromStr for Towers {
    type Err = String;

    /// Parses `shared` or `separate`, as in the TOML file and on the command line.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "shared" => Ok(Towers::Shared),
            "separate" => Ok(Towers::Separate),
            other => Err(format!("`{other}` is neither shared nor separate")),
        }
    }
}

/// The settings of one training run. Every key has a default except `model`, `train_file`
/// and `out_dir`; the TOML keys and the `polydense train` flags have the same names, the keys
/// of the `[loss]`, `[sampler]` and `[memory]` tables as `--loss.temperature` and the like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The starting model: an HF directory (or a two-tower one) or an installed name
    /// (e5-small, minilm-l6).
    pub model: String,
    /// Training examples, Tevatron jsonl (query, positive_passages, negative_passages).
    pub train_file: PathBuf,
    /// The run directory: config.toml, metrics.jsonl, checkpoints/, model/, best_model/, eval/.
    pub out_dir: PathBuf,
    /// A BEIR directory evaluated every `eval_every` steps; empty for no dev evaluation.
    pub dev_dir: PathBuf,
    /// The qrels split of `dev_dir` used for dev evaluation.
    pub dev_split: String,
    /// Shared or separate query and passage towers.
    pub towers: Towers,
    /// Hard negatives per query, drawn from the example's negative_passages.
    pub negatives: usize,
    /// Probability that a step draws the positive in the query's language (the passage's
    /// `lang` in the training file) when an example has one among several, as multilingual
    /// pooled data has (a paragraph in 11 languages); otherwise a positive in another
    /// language. Unset: uniform over the positives (the query's language 1 time in 11 there),
    /// which with same-language BM25 negatives teaches that the query's own language is
    /// probably wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_lang_positive: Option<f64>,
    /// Queries per batch; each brings one positive and `negatives` hard negatives.
    pub batch_size: usize,
    /// GradCache chunk size (texts per forward pass with a graph); 0 encodes the whole
    /// batch in one graph.
    pub grad_cache_chunk: usize,
    /// Query truncation in tokens; 0 keeps the model's limit.
    pub max_query_length: usize,
    /// Passage truncation in tokens; 0 keeps the model's limit.
    pub max_passage_length: usize,
    /// Passes over the training file (ignored when `max_steps` is set).
    pub epochs: usize,
    /// Optimiser steps in all; 0 derives them from `epochs`.
    pub max_steps: u64,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// Steps of linear warm-up from 0 to `lr`; linear decay to 0 follows.
    pub warmup_steps: u64,
    /// Decoupled weight decay, not applied to biases and LayerNorms.
    pub weight_decay: f64,
    /// AdamW β1.
    pub beta1: f64,
    /// AdamW β2.
    pub beta2: f64,
    /// AdamW ε.
    pub adam_eps: f64,
    /// Clip the global gradient L2 norm to this; 0 disables clipping.
    pub max_grad_norm: f64,
    /// Seeds data order and negative sampling.
    pub seed: u64,
    /// Evaluate on the dev split every this many steps (and at the end); 0 never.
    pub eval_every: u64,
    /// The dev metric that picks the best model (overall mean).
    pub eval_metric: String,
    /// Dev queries evaluated at most (the first ones by id); 0 for all.
    pub eval_max_queries: usize,
    /// Stop after this many dev evaluations without improvement; 0 never stops early.
    pub early_stopping_patience: usize,
    /// Write a checkpoint every this many steps; 0 only at the end.
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (oldest removed first).
    pub keep_checkpoints: usize,
    /// Texts per forward pass when encoding the dev corpus.
    pub encode_batch_size: usize,
    /// Run on the first CUDA GPU (needs the `cuda` build).
    pub cuda: bool,
    /// Weights that are not trained, by name pattern (`*` any run of characters, `?` one):
    /// `["embeddings.*"]` freezes the embedding tables. They get no update and no weight
    /// decay, and no gradient is computed for them; checkpoints still hold them. Names are the
    /// HF ones (`encoder.layer.3.output.dense.weight`), prefixed `query.` / `passage.` with
    /// separate towers.
    pub freeze: Vec<String>,
    /// When not empty, only the weights matching one of these patterns train (`freeze` then
    /// removes more). Two words name groups: "experts" (the expert copies and the gates of a
    /// mixture-of-experts model, CLPL's experts-only training) and "intermediate" (every
    /// intermediate dense, experts included, and the gates).
    pub only_train: Vec<String>,
    /// The objective (`[loss] kind = "infonce"`, with its keys).
    pub loss: LossConfig,
    /// How batches are drawn (`[sampler] kind = "random" | "sequential" | "ict-p" | "ict-q"`,
    /// with the clustered samplers' keys).
    pub sampler: SamplerConfig,
    /// Extra negatives from earlier batches (`[memory] kind = "none" | "fifo"`).
    pub memory: MemoryConfig,
    /// Mixture-of-experts feed-forward blocks made from the starting model's dense ones, and
    /// the weight of their load-balancing term (`[moe] experts = 2`).
    pub moe: MoeSettings,
    /// AXL-ICT: re-apply the adversarial rule to the training file's generated negatives at
    /// every clustering refresh (`[adversarial] keep_fraction = 0.25`); unset draws every
    /// negative of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adversarial: Option<polydense_mine::AdversarialRule>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: String::new(),
            train_file: PathBuf::new(),
            out_dir: PathBuf::new(),
            dev_dir: PathBuf::new(),
            dev_split: "dev".into(),
            towers: Towers::Shared,
            negatives: 1,
            same_lang_positive: None,
            batch_size: 32,
            grad_cache_chunk: 0,
            max_query_length: 64,
            max_passage_length: 256,
            epochs: 1,
            max_steps: 0,
            lr: 2e-5,
            warmup_steps: 0,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            max_grad_norm: 1.0,
            seed: 42,
            eval_every: 0,
            eval_metric: "ndcg@10".into(),
            eval_max_queries: 0,
            early_stopping_patience: 0,
            checkpoint_every: 0,
            keep_checkpoints: 2,
            encode_batch_size: 64,
            cuda: false,
            freeze: Vec::new(),
            only_train: Vec::new(),
            loss: LossConfig::default(),
            sampler: SamplerConfig::default(),
            memory: MemoryConfig::default(),
            moe: MoeSettings::default(),
            adversarial: None,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML config; unknown keys are errors, so a typo cannot be silently ignored.
    /// Flat keys of earlier versions (`loss = "infonce"`, `temperature`, `sampler = "ict-p"`,
    /// `refresh`, ...) are read into their tables with a warning that shows what to write.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text; `path` only names the source in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let parse_error = |message: String| TrainError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        let moved = legacy::migrate(&mut table);
        let config = Self::from_table(table).map_err(parse_error)?;
        if !moved.is_empty() {
            tracing::warn!(
                "{}: read the flat keys {} into tables; write them as\n{}",
                path.display(),
                moved.join(", "),
                config.tables_toml()
            );
        }
        Ok(config)
    }

    /// A config from an already-parsed table (no migration); the message is the parser's.
    pub(crate) fn from_table(table: toml::Table) -> std::result::Result<Self, String> {
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())
    }

    /// The config as TOML, as saved in the run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// The `[loss]`, `[sampler]` and `[memory]` tables alone, as TOML.
    fn tables_toml(&self) -> String {
        let text = self.to_toml();
        match text.find("\n[") {
            Some(at) => text[at + 1..].to_string(),
            None => String::new(),
        }
    }

    /// Checks ranges that would otherwise fail deep inside a run.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &str, ok: bool| match ok {
            true => Ok(()),
            false => Err(TrainError::config(field, "must be greater than 0")),
        };
        positive("batch_size", self.batch_size > 0)?;
        positive("lr", self.lr > 0.0)?;
        positive("keep_checkpoints", self.keep_checkpoints > 0)?;
        positive("encode_batch_size", self.encode_batch_size > 0)?;
        if self.max_steps == 0 && self.epochs == 0 {
            return Err(TrainError::config(
                "epochs",
                "set epochs or max_steps above 0",
            ));
        }
        if let Some(p) = self.same_lang_positive {
            if !(0.0..=1.0).contains(&p) {
                return Err(TrainError::config(
                    "same_lang_positive",
                    format!("{p} is not a probability (0 to 1)"),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return Err(TrainError::config("beta1", "β1 and β2 must lie in [0, 1)"));
        }
        if let Some(a) = &self.adversarial {
            a.validate()
                .map_err(|e| TrainError::config("adversarial", e))?;
        }
        self.loss.validate()?;
        self.sampler.validate()?;
        self.memory.validate()?;
        self.moe.validate()?;
        for (field, patterns) in [("freeze", &self.freeze), ("only_train", &self.only_train)] {
            if let Some(p) = patterns.iter().find(|p| p.trim().is_empty()) {
                return Err(TrainError::config(
                    field,
                    format!("the pattern `{p}` is empty"),
                ));
            }
        }
        Ok(())
    }

    /// Which weights train, by the `freeze` and `only_train` patterns.
    pub fn trainable(&self) -> Trainable {
        Trainable::new(self.freeze.clone(), self.only_train.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::IctConfig;
    use crate::loss::InfoNceConfig;

    #[test]
    fn toml_round_trip_and_defaults() {
        let c = TrainConfig::from_toml_str(
            "model = \"m\"\nbatch_size = 8\ntowers = \"separate\"\nfreeze = [\"embeddings.*\"]\n\n[sampler]\nkind = \"ict-q\"\nrefresh = \"sac\"\nsac_k_start = 4\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.batch_size, 8);
        assert_eq!(c.towers, Towers::Separate);
        assert_eq!(
            c.loss,
            LossConfig::Infonce(InfoNceConfig { temperature: 0.05 })
        );
        assert_eq!(c.freeze, ["embeddings.*"]);
        let ict = c.sampler.ict().unwrap();
        assert_eq!((ict.refresh.as_str(), ict.sac_k_start), ("sac", Some(4)));
        let back = TrainConfig::from_toml_str(&c.to_toml(), Path::new("y.toml")).unwrap();
        assert_eq!(back, c);
        let text = TrainConfig::default().to_toml();
        assert!(
            text.contains("[loss]\nkind = \"infonce\"\ntemperature = 0.05\n"),
            "{text}"
        );
        assert!(text.contains("[sampler]\nkind = \"random\"\n"), "{text}");
        assert!(text.contains("[memory]\nkind = \"none\"\n"), "{text}");
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_named() {
        let err = TrainConfig::from_toml_str("batchsize = 8\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml: ") && err.contains("batchsize"),
            "{err}"
        );
        let err = TrainConfig::from_toml_str("[loss]\nkind = \"triplet\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("triplet") && err.contains("infonce"), "{err}");
        let err = TrainConfig::from_toml_str(
            "[sampler]\nkind = \"random\"\nrefresh = \"acr\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("refresh"), "{err}");
        let c = TrainConfig {
            loss: LossConfig::Infonce(InfoNceConfig { temperature: 0.0 }),
            ..TrainConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert_eq!(err, "config `loss.temperature`: must be greater than 0");
        let c = TrainConfig {
            sampler: SamplerConfig::IctP(IctConfig {
                refresh: "sometimes".into(),
                ..IctConfig::default()
            }),
            ..TrainConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("config `sampler.refresh`"));
    }

    #[test]
    fn configs_of_earlier_versions_still_read() {
        // What a run directory of an earlier version holds: every key flat.
        let old = "model = \"m\"\nloss = \"infonce\"\ntemperature = 0.02\nnegatives = 1\nsampler = \"ict-p\"\nclusters = 0\nrefresh = \"acr\"\nrefresh_every = 1\nrefresh_unit = \"epoch\"\nsac_preset = \"paper\"\nacr_loss_drop = 0.05\nacr_window = 4\nacr_drift = 0.02\nacr_probe = 256\nacr_min_gap = 2\nacr_max_gap = 5\nkmeans_iters = 20\nbatch_size = 32\n";
        let c = TrainConfig::from_toml_str(old, Path::new("old.toml")).unwrap();
        assert_eq!(
            c.loss,
            LossConfig::Infonce(InfoNceConfig { temperature: 0.02 })
        );
        assert_eq!(
            c.sampler,
            SamplerConfig::IctP(IctConfig {
                refresh: "acr".into(),
                ..IctConfig::default()
            })
        );
        let random = old.replace("sampler = \"ict-p\"", "sampler = \"random\"");
        let c = TrainConfig::from_toml_str(&random, Path::new("old.toml")).unwrap();
        assert_eq!(c.sampler, SamplerConfig::default());
    }
}
