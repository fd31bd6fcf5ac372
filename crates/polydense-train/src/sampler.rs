//! The [`BatchSampler`] seam: which training examples make up each batch of an epoch, with
//! an [`EpochContext`] through which a sampler can see the model (clustered samplers embed
//! the training data with the current weights).

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use serde::{Deserialize, Serialize};

use candle_core::{DType, Device, Tensor};
use polydense_data::TrainExample;
use polydense_model::TextKind;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::{ClusterTarget, ClusteredConfig, ClusteredSampler, IctConfig};
use crate::dual_encoder::DualEncoder;
use crate::error::Result;
use crate::tokenize::Tokenize;

/// Embeds texts with the model as it is now, for samplers that look at the model; the
/// trainer passes one in every [`EpochContext`].
pub trait Embedder {
    /// Row-major, L2-normalised vectors of `texts` embedded as `kind`, without an autograd
    /// graph.
    fn embed(&mut self, texts: &[String], kind: TextKind) -> Result<Vec<f32>>;
    /// The vector dimension.
    fn dim(&self) -> usize;
    /// Where the model runs (k-means runs there too).
    fn device(&self) -> Device;
}

/// The trainer's [`Embedder`]: the dual encoder's current weights, in batches of
/// `batch` texts sorted by length so little padding is computed.
pub struct ModelEmbedder<'a> {
    /// The model being trained.
    pub model: &'a DualEncoder,
    /// Its tokenizer.
    pub tokenize: &'a dyn Tokenize,
    /// Texts per forward pass (the run's `encode_batch_size`).
    pub batch: usize,
}

impl Embedder for ModelEmbedder<'_> {
    fn embed(&mut self, texts: &[String], kind: TextKind) -> Result<Vec<f32>> {
        let device = self.device();
        let dim = self.model.tower(kind).dim();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![0f32; texts.len() * dim];
        for group in order.chunks(self.batch.max(1)) {
            let refs: Vec<&str> = group.iter().map(|&i| texts[i].as_str()).collect();
            let v: Tensor = self
                .model
                .encode(kind, &self.tokenize.batch(&refs, kind, &device)?)?
                .to_dtype(DType::F32)?;
            let norm = v.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            let v: Vec<f32> = v.broadcast_div(&norm)?.flatten_all()?.to_vec1()?;
            for (k, &i) in group.iter().enumerate() {
                out[i * dim..(i + 1) * dim].copy_from_slice(&v[k * dim..(k + 1) * dim]);
            }
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.model.tower(TextKind::Query).dim()
    }

    fn device(&self) -> Device {
        self.model
            .tower(TextKind::Query)
            .transformer()
            .device()
            .clone()
    }
}

/// What a sampler may look at when it plans an epoch.
pub struct EpochContext<'a> {
    /// The epoch to plan (0-based).
    pub epoch: u64,
    /// Optimiser steps completed before it.
    pub step: u64,
    /// The mean training loss of each completed epoch, oldest first.
    pub epoch_losses: &'a [f64],
    /// Embeds texts with the current weights.
    pub embedder: &'a mut dyn Embedder,
    /// The run directory, for samplers that log (None in tests that need no files).
    pub run_dir: Option<&'a Path>,
}

/// Counters a sampler reports into every `metrics.jsonl` step record.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SamplerStats {
    /// Clustering runs so far.
    pub clusterings: u64,
    /// Wall seconds spent encoding and clustering so far.
    pub cluster_seconds: f64,
    /// The number of clusters in use.
    pub k: usize,
}

/// Plans the batches of an epoch. The trainer calls [`BatchSampler::epoch_batches`] at the
/// start of every epoch, then saves [`BatchSampler::state`] with the run's state. When a run
/// resumes, the trainer calls [`BatchSampler::restore`] and then `epoch_batches` once more for
/// the interrupted epoch: a sampler restored from a state taken after planning epoch e must
/// return the same plan for e, without looking at the (since trained) model again. That is
/// what makes `--resume` continue exactly. Clustered samplers (ICT, SIGIR'24) re-encode and
/// re-cluster here when their refresh policy says so.
pub trait BatchSampler: Send {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// The batches of `ctx.epoch` as lists of example indices, each of at most
    /// `batch_size`; the trainer runs them in order.
    fn epoch_batches(
        &mut self,
        ctx: &mut EpochContext,
        examples: &[TrainExample],
        batch_size: usize,
    ) -> Result<Vec<Vec<usize>>>;

    /// State to store in a checkpoint (stateless samplers keep the default, `null`).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores what [`BatchSampler::state`] returned, before the resumed epoch is planned.
    fn restore(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// Counters logged with every step (clustering runs and their cost); None logs none.
    fn stats(&self) -> Option<SamplerStats> {
        None
    }
}

/// A seeded shuffle per epoch, cut into full batches, where no two examples of a batch share
/// a positive passage: a shared positive would be a false in-batch negative (as
/// sentence-transformers' NoDuplicatesBatchSampler avoids). The last short batch is dropped,
/// unless it is the only one.
#[derive(Debug, Clone)]
pub struct RandomSampler {
    /// The run's seed; epoch e uses ChaCha8 stream e of it.
    pub seed: u64,
}

impl BatchSampler for RandomSampler {
    fn name(&self) -> &str {
        "random"
    }

    fn epoch_batches(
        &mut self,
        ctx: &mut EpochContext,
        examples: &[TrainExample],
        batch_size: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(ctx.epoch);
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut rng);
        let mut pending: VecDeque<usize> = order.into();
        let mut batches = Vec::new();
        while !pending.is_empty() {
            let mut batch = Vec::with_capacity(batch_size);
            let mut seen: HashSet<&str> = HashSet::new();
            let mut deferred = VecDeque::new();
            while batch.len() < batch_size {
                let Some(i) = pending.pop_front() else { break };
                let ids = &examples[i].positive_passages;
                if ids.iter().any(|p| seen.contains(p.docid.as_str())) {
                    deferred.push_back(i);
                } else {
                    seen.extend(ids.iter().map(|p| p.docid.as_str()));
                    batch.push(i);
                }
            }
            // Deferred examples go first in the next batch, keeping the shuffle's order.
            deferred.extend(pending);
            pending = deferred;
            if batch.len() < batch_size && !batches.is_empty() {
                break;
            }
            batches.push(batch);
        }
        Ok(batches)
    }
}

/// The training file's own order every epoch, cut into full batches (the last short one
/// dropped unless it is the only one). For data already arranged into batches (a curriculum,
/// batches clustered elsewhere), and for comparing step by step with another trainer that
/// reads the same file in order. Shared positives within a batch are not moved.
#[derive(Debug, Clone, Default)]
pub struct SequentialSampler;

impl BatchSampler for SequentialSampler {
    fn name(&self) -> &str {
        "sequential"
    }

    fn epoch_batches(
        &mut self,
        _ctx: &mut EpochContext,
        examples: &[TrainExample],
        batch_size: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let order: Vec<usize> = (0..examples.len()).collect();
        let mut batches: Vec<Vec<usize>> =
            order.chunks(batch_size.max(1)).map(<[_]>::to_vec).collect();
        if batches.len() > 1 && batches.last().is_some_and(|b| b.len() < batch_size) {
            batches.pop();
        }
        Ok(batches)
    }
}

/// The `[sampler]` table of a training config: how batches are drawn, with the clustered
/// samplers' own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum SamplerConfig {
    /// A seeded shuffle per epoch ([`RandomSampler`]).
    #[serde(rename = "random")]
    Random(NoKeys),
    /// The file's order ([`SequentialSampler`]).
    #[serde(rename = "sequential")]
    Sequential(NoKeys),
    /// k-means clusters of the positive passages' embeddings (ICT-P, SIGIR'24).
    #[serde(rename = "ict-p")]
    IctP(IctConfig),
    /// k-means clusters of the queries' embeddings (ICT-Q).
    #[serde(rename = "ict-q")]
    IctQ(IctConfig),
}

/// The keys of a table kind that takes none: any key given is refused by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoKeys {}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig::Random(NoKeys {})
    }
}

impl SamplerConfig {
    /// The `kind` values this build knows.
    pub const KINDS: &'static [&'static str] = &["random", "sequential", "ict-p", "ict-q"];

    /// The clustered samplers' keys, when the sampler is clustered.
    pub fn ict(&self) -> Option<&IctConfig> {
        match self {
            SamplerConfig::IctP(c) | SamplerConfig::IctQ(c) => Some(c),
            _ => None,
        }
    }

    /// Checks the keys' ranges; errors name the key as `sampler.<key>`.
    pub fn validate(&self) -> Result<()> {
        self.ict().map_or(Ok(()), IctConfig::validate)
    }

    /// The sampler over `n` examples in batches of `batch_size`, seeded by the run's seed.
    pub fn build(&self, seed: u64, n: usize, batch_size: usize) -> Result<Box<dyn BatchSampler>> {
        let target = match self {
            SamplerConfig::Random(_) => return Ok(Box::new(RandomSampler { seed })),
            SamplerConfig::Sequential(_) => return Ok(Box::new(SequentialSampler)),
            SamplerConfig::IctP(_) => ClusterTarget::Passages,
            SamplerConfig::IctQ(_) => ClusterTarget::Queries,
        };
        let c = self.ict().expect("clustered kinds carry keys");
        Ok(Box::new(ClusteredSampler::new(ClusteredConfig {
            target,
            policy: c.refresh_policy(n, batch_size)?,
            seed,
            kmeans_iters: c.kmeans_iters,
            probe: c.acr_probe,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_data::TrainPassage;

    #[test]
    fn sequential_batches_follow_the_file_and_drop_a_short_tail() {
        let examples: Vec<TrainExample> = (0..10).map(|i| ex(&format!("d{i}"))).collect();
        let mut ctx = EpochContext {
            epoch: 3,
            step: 0,
            epoch_losses: &[],
            embedder: &mut Blind,
            run_dir: None,
        };
        let mut s = SequentialSampler;
        let b = s.epoch_batches(&mut ctx, &examples, 4).unwrap();
        assert_eq!(b, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        let one = s.epoch_batches(&mut ctx, &examples[..3], 4).unwrap();
        assert_eq!(one, vec![vec![0, 1, 2]]);
    }

    fn ex(pos: &str) -> TrainExample {
        TrainExample {
            query_id: pos.into(),
            query: "q".into(),
            positive_passages: vec![TrainPassage {
                docid: pos.into(),
                ..TrainPassage::default()
            }],
            ..TrainExample::default()
        }
    }

    /// An embedder the random sampler must never call.
    struct Blind;

    impl Embedder for Blind {
        fn embed(&mut self, _: &[String], _: TextKind) -> Result<Vec<f32>> {
            Err(crate::TrainError::config(
                "sampler",
                "the random sampler embedded text",
            ))
        }
        fn dim(&self) -> usize {
            0
        }
        fn device(&self) -> Device {
            Device::Cpu
        }
    }

    fn plan(s: &mut RandomSampler, epoch: u64, ex: &[TrainExample], b: usize) -> Vec<Vec<usize>> {
        let mut ctx = EpochContext {
            epoch,
            step: 0,
            epoch_losses: &[],
            embedder: &mut Blind,
            run_dir: None,
        };
        s.epoch_batches(&mut ctx, ex, b).unwrap()
    }

    #[test]
    fn seeded_epochs_differ_and_batches_hold_no_shared_positive() {
        let examples: Vec<TrainExample> = (0..40).map(|i| ex(&format!("d{}", i % 10))).collect();
        let mut s = RandomSampler { seed: 5 };
        let a = plan(&mut s, 0, &examples, 8);
        assert_eq!(a, plan(&mut s, 0, &examples, 8));
        assert_ne!(a, plan(&mut s, 1, &examples, 8));
        // Greedy filling may strand a few examples that share positives at the end.
        assert!((4..=5).contains(&a.len()), "{}", a.len());
        let mut all: Vec<usize> = Vec::new();
        for b in &a {
            assert_eq!(b.len(), 8);
            let ids: HashSet<&str> = b
                .iter()
                .map(|&i| examples[i].positive_passages[0].docid.as_str())
                .collect();
            assert_eq!(ids.len(), 8, "a positive repeats in {b:?}");
            all.extend(b);
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "an example appears twice");

        // With distinct positives every example is used.
        let distinct: Vec<TrainExample> = (0..40).map(|i| ex(&format!("d{i}"))).collect();
        let b = plan(&mut s, 0, &distinct, 8);
        let mut all: Vec<usize> = b.concat();
        all.sort();
        assert_eq!(all, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn a_small_dataset_still_gives_one_batch() {
        let examples: Vec<TrainExample> = (0..3).map(|i| ex(&format!("d{i}"))).collect();
        let b = plan(&mut RandomSampler { seed: 1 }, 0, &examples, 8);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].len(), 3);
    }
}
