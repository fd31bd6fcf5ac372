//! Iterative clustered training (ICT, Rajapakse, Yates and de Rijke, SIGIR'24; not the
//! inverse cloze task): batches cut from k-means clusters of the model's own embeddings, so
//! in-batch negatives are hard, with SAC-ICT's coarse-to-fine k and ACR-ICT's
//! progress-driven refreshes.
//!
//! - [`batches`]: clusters to batches (cut, merge, no shared positive in a batch);
//! - [`config`]: the `[sampler]` keys of the clustered kinds;
//! - [`policy`]: when to re-cluster and with which k (fixed, SAC, ACR, SAC+ACR);
//! - [`language`]: how multilingual the clusters are;
//! - [`record`]: `clusters.jsonl` and `projection.json` in the run directory;
//! - [`sampler`]: [`ClusteredSampler`], the [`crate::BatchSampler`] tying them together.
//!
//! Batch construction is a pure function of the assignments:
//!
//! ```
//! use polydense_train::cluster::cluster_batches;
//! use rand::SeedableRng;
//!
//! // Two clusters of 5 and 3 examples, batches of 4: a full chunk of cluster 0, then its
//! // remaining example merged with cluster 1.
//! let assignments = [0, 0, 0, 0, 0, 1, 1, 1];
//! let names: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
//! let positives: Vec<Vec<&str>> = names.iter().map(|n| vec![n.as_str()]).collect();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! let plan = cluster_batches(&assignments, &positives, 4, &mut rng);
//! assert_eq!(plan.batches.len(), 2);
//! assert!(plan.batches.iter().all(|b| b.len() == 4));
//! ```

pub mod batches;
pub mod config;
pub mod language;
pub mod policy;
pub mod record;
pub mod sampler;

pub use batches::{cluster_batches, BatchPlan};
pub use config::IctConfig;
pub use language::mean_language_entropy;
pub use policy::{AcrRule, PolicyInput, RefreshPolicy, RefreshReason, SacSchedule};
pub use record::ClusteringRecord;
pub use sampler::{ClusterTarget, ClusteredConfig, ClusteredSampler};
