//! [`TrainConfig`]: every setting of a run, read from TOML, overridden by CLI flags, and
//! saved resolved into the run directory so a run can be repeated and resumed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::{AcrRule, RefreshPolicy, SacSchedule};
use crate::error::{Result, TrainError};

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
/// and `out_dir`; the TOML keys and the `polydense train` flags have the same names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The starting model: an HF directory or an installed name (e5-small, minilm-l6).
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
    /// The loss: "infonce" (in-batch plus hard negatives).
    pub loss: String,
    /// Softmax temperature τ of InfoNCE: scores are cos/τ (0.05 as sentence-transformers' scale 20).
    pub temperature: f64,
    /// Hard negatives per query, drawn from the example's negative_passages.
    pub negatives: usize,
    /// How batches are drawn: "random" (a seeded shuffle per epoch), "sequential" (the
    /// file's order), "ict-p" (k-means clusters of the positive passages' embeddings,
    /// SIGIR'24) or "ict-q" (of the queries').
    pub sampler: String,
    /// Clusters k of the clustered samplers under `refresh = "fixed"` or `"acr"`; 0 picks
    /// N / batch_size, so a cluster averages one batch.
    pub clusters: usize,
    /// When the clustered samplers re-cluster: "fixed" (every `refresh_every` epochs),
    /// "sac" (k from the SAC-ICT schedule, whenever it changes), "acr" (ACR-ICT's loss-drop,
    /// drift and gap rules) or "sac+acr" (SAC's k at ACR's times).
    pub refresh: String,
    /// Epochs between clusterings under `refresh = "fixed"` (the paper uses 10).
    pub refresh_every: u64,
    /// The unit of the refresh schedules; only "epoch".
    pub refresh_unit: String,
    /// Defaults of the SAC keys: "paper" (start 200, +50 per epoch after epoch 3, at most
    /// 500, at least 50, as the public SAC-ICT code) or "none" (every `sac_*` key given).
    pub sac_preset: String,
    /// SAC: k of the first epochs (overrides the preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sac_k_start: Option<usize>,
    /// SAC: k added per epoch after the warm-up (overrides the preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sac_k_step: Option<usize>,
    /// SAC: the last epoch (0-based) at `sac_k_start` (overrides the preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sac_warmup_epochs: Option<u64>,
    /// SAC: the largest k (overrides the preset); k also never exceeds N/10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sac_k_max: Option<usize>,
    /// SAC: the smallest k (overrides the preset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sac_k_min: Option<usize>,
    /// ACR: re-cluster when the epoch mean loss fell by more than this fraction over the
    /// window (public ACR-ICT code: 0.05).
    pub acr_loss_drop: f64,
    /// ACR: epochs over which the loss drop is measured (4).
    pub acr_window: usize,
    /// ACR: re-cluster when the probe passages' mean cosine change since the last
    /// clustering exceeds this.
    pub acr_drift: f64,
    /// ACR: probe passages whose drift is measured at epoch starts.
    pub acr_probe: usize,
    /// ACR: fewest epochs between clusterings (2).
    pub acr_min_gap: u64,
    /// ACR: most epochs between clusterings; a refresh is forced then (5).
    pub acr_max_gap: u64,
    /// Most Lloyd iterations of each k-means run.
    pub kmeans_iters: usize,
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
            loss: "infonce".into(),
            temperature: 0.05,
            negatives: 1,
            sampler: "random".into(),
            clusters: 0,
            refresh: "fixed".into(),
            refresh_every: 1,
            refresh_unit: "epoch".into(),
            sac_preset: "paper".into(),
            sac_k_start: None,
            sac_k_step: None,
            sac_warmup_epochs: None,
            sac_k_max: None,
            sac_k_min: None,
            acr_loss_drop: 0.05,
            acr_window: 4,
            acr_drift: 0.02,
            acr_probe: 256,
            acr_min_gap: 2,
            acr_max_gap: 5,
            kmeans_iters: 20,
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
        }
    }
}

impl TrainConfig {
    /// Reads a TOML config; unknown keys are errors, so a typo cannot be silently ignored.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Parses TOML text; `path` only names the source in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| TrainError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The config as TOML, as saved in the run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrainConfig always serialises")
    }

    /// Checks ranges that would otherwise fail deep inside a run.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &str, ok: bool| match ok {
            true => Ok(()),
            false => Err(TrainError::config(field, "must be greater than 0")),
        };
        positive("batch_size", self.batch_size > 0)?;
        positive("temperature", self.temperature > 0.0)?;
        positive("lr", self.lr > 0.0)?;
        positive("keep_checkpoints", self.keep_checkpoints > 0)?;
        positive("encode_batch_size", self.encode_batch_size > 0)?;
        if self.max_steps == 0 && self.epochs == 0 {
            return Err(TrainError::config(
                "epochs",
                "set epochs or max_steps above 0",
            ));
        }
        if !(0.0..1.0).contains(&self.beta1) || !(0.0..1.0).contains(&self.beta2) {
            return Err(TrainError::config("beta1", "β1 and β2 must lie in [0, 1)"));
        }
        if self.loss != "infonce" {
            return Err(TrainError::config(
                "loss",
                format!("unknown loss `{}` (known: infonce)", self.loss),
            ));
        }
        if !["random", "sequential", "ict-p", "ict-q"].contains(&self.sampler.as_str()) {
            return Err(TrainError::config(
                "sampler",
                format!(
                    "unknown sampler `{}` (known: random, sequential, ict-p, ict-q)",
                    self.sampler
                ),
            ));
        }
        if self.refresh_unit != "epoch" {
            return Err(TrainError::config(
                "refresh_unit",
                format!("unknown unit `{}` (known: epoch)", self.refresh_unit),
            ));
        }
        positive("refresh_every", self.refresh_every > 0)?;
        positive("kmeans_iters", self.kmeans_iters > 0)?;
        positive("acr_probe", self.acr_probe > 0)?;
        positive("acr_max_gap", self.acr_max_gap > 0)?;
        if self.acr_window < 2 {
            return Err(TrainError::config(
                "acr_window",
                "must be at least 2 epochs",
            ));
        }
        if self.acr_min_gap > self.acr_max_gap {
            return Err(TrainError::config(
                "acr_min_gap",
                "must not exceed acr_max_gap",
            ));
        }
        self.refresh_policy(1)?;
        Ok(())
    }

    /// SAC's schedule: the preset, then every `sac_*` key that is set.
    pub fn sac_schedule(&self) -> Result<SacSchedule> {
        let preset = match self.sac_preset.as_str() {
            "paper" => Some(SacSchedule::PAPER),
            "none" => None,
            other => {
                return Err(TrainError::config(
                    "sac_preset",
                    format!("unknown preset `{other}` (known: paper, none)"),
                ))
            }
        };
        let pick = |field: &str, key: Option<usize>, preset: Option<usize>| {
            key.or(preset)
                .ok_or_else(|| TrainError::config(field, "is required when sac_preset = \"none\""))
        };
        let s = SacSchedule {
            k_start: pick("sac_k_start", self.sac_k_start, preset.map(|p| p.k_start))?,
            k_step: pick("sac_k_step", self.sac_k_step, preset.map(|p| p.k_step))?,
            warmup_epochs: pick(
                "sac_warmup_epochs",
                self.sac_warmup_epochs.map(|e| e as usize),
                preset.map(|p| p.warmup_epochs as usize),
            )? as u64,
            k_max: pick("sac_k_max", self.sac_k_max, preset.map(|p| p.k_max))?,
            k_min: pick("sac_k_min", self.sac_k_min, preset.map(|p| p.k_min))?,
        };
        if s.k_min > s.k_max {
            return Err(TrainError::config("sac_k_min", "must not exceed sac_k_max"));
        }
        Ok(s)
    }

    /// ACR's triggers.
    pub fn acr_rule(&self) -> AcrRule {
        AcrRule {
            loss_drop: self.acr_loss_drop,
            window: self.acr_window,
            drift: self.acr_drift,
            min_gap: self.acr_min_gap,
            max_gap: self.acr_max_gap,
        }
    }

    /// The refresh policy of the clustered samplers over `n` training examples.
    pub fn refresh_policy(&self, n: usize) -> Result<RefreshPolicy> {
        let k = match self.clusters {
            0 => (n / self.batch_size.max(1)).max(1),
            k => k,
        };
        Ok(match self.refresh.as_str() {
            "fixed" => RefreshPolicy::Fixed {
                every: self.refresh_every,
                k,
            },
            "sac" => RefreshPolicy::Sac(self.sac_schedule()?),
            "acr" => RefreshPolicy::Acr {
                rule: self.acr_rule(),
                k,
            },
            "sac+acr" => RefreshPolicy::SacAcr {
                schedule: self.sac_schedule()?,
                rule: self.acr_rule(),
            },
            other => {
                return Err(TrainError::config(
                    "refresh",
                    format!("unknown refresh `{other}` (known: fixed, sac, acr, sac+acr)"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_defaults() {
        let c = TrainConfig::from_toml_str(
            "model = \"m\"\nbatch_size = 8\ntowers = \"separate\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.batch_size, 8);
        assert_eq!(c.towers, Towers::Separate);
        assert_eq!(c.temperature, 0.05);
        let back = TrainConfig::from_toml_str(&c.to_toml(), Path::new("y.toml")).unwrap();
        assert_eq!(back, c);
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
        let c = TrainConfig {
            temperature: 0.0,
            ..TrainConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert_eq!(err, "config `temperature`: must be greater than 0");
        let c = TrainConfig {
            refresh: "sometimes".into(),
            ..TrainConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("config `refresh`"));
    }

    #[test]
    fn the_sac_preset_and_explicit_keys() {
        let c = TrainConfig::from_toml_str(
            "sampler = \"ict-p\"\nrefresh = \"sac\"\nsac_k_start = 8\nsac_k_max = 16\nsac_k_min = 2\n",
            Path::new("x.toml"),
        )
        .unwrap();
        c.validate().unwrap();
        let s = c.sac_schedule().unwrap();
        assert_eq!(
            (s.k_start, s.k_step, s.warmup_epochs, s.k_max, s.k_min),
            (8, 50, 3, 16, 2)
        );
        assert_eq!(
            TrainConfig::default().sac_schedule().unwrap(),
            SacSchedule::PAPER
        );
        let back = TrainConfig::from_toml_str(&c.to_toml(), Path::new("y.toml")).unwrap();
        assert_eq!(back, c);
        let none = TrainConfig {
            sac_preset: "none".into(),
            refresh: "sac".into(),
            sac_k_start: Some(4),
            ..TrainConfig::default()
        };
        let err = none.validate().unwrap_err().to_string();
        assert!(err.starts_with("config `sac_k_step`"), "{err}");
        // Fixed k: `clusters`, or N / batch_size when 0.
        let fixed = TrainConfig {
            batch_size: 16,
            ..TrainConfig::default()
        };
        assert_eq!(
            fixed.refresh_policy(320).unwrap(),
            RefreshPolicy::Fixed { every: 1, k: 20 }
        );
    }
}
