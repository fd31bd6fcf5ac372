//! polydense-train: contrastive fine-tuning of dual encoders.
//!
//! A [`Trainer`] draws batches with a [`BatchSampler`], the [`Collator`] turns them into a
//! [`TrainBatch`] (texts, ids, languages, and each negative's own query where the training
//! file gives one), a [`DualEncoder`] embeds them, a [`Loss`] scores them (InfoNCE over
//! in-batch and hard negatives by default; a composite loss reports named parts), and
//! [`AdamW`] updates the weights that train (the config's `freeze` / `only_train` patterns,
//! [`Trainable`]) under a linear warm-up and decay. GradCache ([`grad_cache`]) bounds memory
//! for large batches; a [`CrossBatchMemory`] adds negatives from earlier batches, never a
//! query's own positive. Checkpoints hold the whole model and make `--resume` continue
//! exactly; a NaN stops the run with the last good checkpoint kept; dev evaluation keeps the
//! best model.
//!
//! The config's `[loss]`, `[sampler]` and `[memory]` tables pick the plug-ins by `kind`
//! ([`LossConfig`], [`SamplerConfig`], [`MemoryConfig`]). Batches come from `"random"` (a
//! seeded shuffle), `"sequential"` (the file's order) or iterative clustered training
//! ([`cluster`], ICT, SIGIR'24): `"ict-p"` / `"ict-q"` run k-means over the current model's
//! embeddings of each example's positive passage / query (through the [`EpochContext`] the
//! trainer hands every [`BatchSampler`]) and cut the clusters into batches, so in-batch
//! negatives are hard. Their `refresh` key picks when to re-cluster: `"fixed"`, `"sac"`
//! (SAC-ICT's coarse-to-fine k), `"acr"` (ACR-ICT: on loss drop, embedding drift or the
//! longest gap) or `"sac+acr"`. Each clustering appends a line to `clusters.jsonl` and
//! rewrites `projection.json` (a 2-D PCA) in the run directory; step records carry
//! `clusterings`, `cluster_seconds` and `k`.
//!
//! ```
//! use candle_core::Device;
//! use polydense_data::{TrainExample, TrainPassage};
//! use polydense_model::{Encoder, EncoderConfig};
//! use polydense_train::{DualEncoder, HashTokenize, Quiet, TrainConfig, Trainer};
//!
//! let passage = |id: &str, text: &str| TrainPassage { docid: id.into(), text: text.into(), ..Default::default() };
//! let examples: Vec<TrainExample> = (0..8)
//!     .map(|i| TrainExample {
//!         query_id: format!("q{i}"),
//!         query: format!("question {i}"),
//!         positive_passages: vec![passage(&format!("d{i}"), &format!("answer {i}"))],
//!         ..Default::default()
//!     })
//!     .collect();
//! let dir = tempfile::tempdir()?;
//! let config = TrainConfig { batch_size: 4, max_steps: 2, out_dir: dir.path().into(), ..Default::default() };
//! let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 1)?;
//! let tok = HashTokenize { vocab: 50, max_len: 16 };
//! let mut trainer = Trainer::new(config, DualEncoder::shared(enc), Box::new(tok), examples)?;
//! let summary = trainer.train(&mut Quiet)?;
//! assert_eq!(summary.steps, 2);
//! assert!(dir.path().join("model/model.safetensors").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod adversarial;
pub mod batch;
pub mod checkpoint;
pub mod cluster;
pub mod compress;
pub mod config;
pub mod dev_eval;
pub mod dual_encoder;
pub mod error;
pub mod freeze;
pub mod grad_cache;
pub mod loss;
pub mod memory;
pub mod metrics_log;
pub mod moe;
pub mod optimizer;
pub mod sampler;
pub mod tokenize;
pub mod trainer;

pub use batch::{Collator, NegativeQuery, TrainBatch};
pub use checkpoint::TrainState;
pub use cluster::{ClusterTarget, ClusteredConfig, ClusteredSampler, IctConfig, RefreshPolicy};
pub use config::{Towers, TrainConfig};
pub use dev_eval::DevSet;
pub use dual_encoder::DualEncoder;
pub use error::{Result, TrainError};
pub use freeze::Trainable;
pub use grad_cache::{Gradients, MemoryLookup, StepContext};
pub use loss::{
    ClplConfig, ClplLoss, ExtraNegatives, InfoNce, InfoNceConfig, Loss, LossConfig, LossInput,
    LossOutput, Progress,
};
pub use memory::{CrossBatchMemory, FifoMemory, MemoryConfig, MemoryEntries};
pub use metrics_log::{MetricsLog, StepRecord};
pub use moe::MoeSettings;
pub use optimizer::{AdamW, AdamWConfig, HostGrads};
pub use sampler::{
    BatchSampler, Embedder, EpochContext, ModelEmbedder, NoKeys, RandomSampler, SamplerConfig,
    SamplerStats, SequentialSampler,
};
pub use tokenize::{HashTokenize, HfTokenize, Tokenize};
pub use trainer::{Quiet, TrainObserver, TrainSummary, Trainer};
