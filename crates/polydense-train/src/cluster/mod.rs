//! Iterative clustered training (ICT, Rajapakse, Yates and de Rijke, SIGIR'24; not the
//! inverse cloze task): batches cut from k-means clusters of the model's own embeddings, so
//! in-batch negatives are hard, with SAC-ICT's coarse-to-fine k and ACR-ICT's
//! progress-driven refreshes.
//!
//! - [`batches`]: clusters to batches (cut, merge, no shared positive in a batch);
//! - [`policy`]: when to re-cluster and with which k (fixed, SAC, ACR, SAC+ACR);
//! - [`language`]: how multilingual the clusters are;
//! - [`record`]: `clusters.jsonl` and `projection.json` in the run directory;
//! - [`sampler`]: [`ClusteredSampler`], the [`crate::BatchSampler`] tying them together.

pub mod batches;
pub mod language;
pub mod policy;
pub mod record;
pub mod sampler;

pub use batches::{cluster_batches, BatchPlan};
pub use language::mean_language_entropy;
pub use policy::{AcrRule, PolicyInput, RefreshPolicy, RefreshReason, SacSchedule};
pub use record::ClusteringRecord;
pub use sampler::{ClusterTarget, ClusteredConfig, ClusteredSampler};
