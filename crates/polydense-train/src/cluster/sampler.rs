//! [`ClusteredSampler`]: ICT-P and ICT-Q batches (SIGIR'24). At the epochs its
//! [`RefreshPolicy`] chooses, it embeds every example's positive passage (ICT-P) or query
//! (ICT-Q) with the current model, runs k-means, and logs the run; every epoch it cuts the
//! current clusters into batches with a fresh seeded order.

use std::collections::HashMap;
use std::time::Instant;

use polydense_data::{TrainExample, TrainPassage};
use polydense_index::kmeans::{kmeans_on, KMeansConfig};
use polydense_model::TextKind;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cluster::batches::cluster_batches;
use crate::cluster::language::mean_language_entropy;
use crate::cluster::policy::{PolicyInput, RefreshPolicy, RefreshReason};
use crate::cluster::record::{append_record, write_projection, ClusteringRecord};
use crate::error::{Result, TrainError};
use crate::sampler::{BatchSampler, Embedder, EpochContext, SamplerStats};

/// What is embedded and clustered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterTarget {
    /// ICT-P: each example's positive passage (the normalised mean of several).
    Passages,
    /// ICT-Q: each example's query.
    Queries,
}

/// The settings of a [`ClusteredSampler`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClusteredConfig {
    /// ICT-P or ICT-Q.
    pub target: ClusterTarget,
    /// When to re-cluster, and k.
    pub policy: RefreshPolicy,
    /// Seeds k-means, the probe set and the batch order.
    pub seed: u64,
    /// Most Lloyd iterations per clustering.
    pub kmeans_iters: usize,
    /// ACR's probe passages (their embedding drift can trigger a refresh).
    pub probe: usize,
}

/// Everything that must survive a checkpoint for `--resume` to continue exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ClusterState {
    /// The cluster of each example, from the last clustering.
    assignments: Vec<u32>,
    /// k of the last clustering.
    k: usize,
    /// The epoch of the last clustering.
    last_refresh: Option<u64>,
    /// Clustering runs so far (also the number of `clusters.jsonl` lines that are valid).
    clusterings: u64,
    /// Seconds spent encoding, clustering, probing and projecting so far.
    seconds: f64,
    /// The probe passages' embeddings at the last clustering (ACR only).
    probe_vecs: Vec<f32>,
    /// The epoch whose plan `plan` is.
    plan_epoch: Option<u64>,
    /// The batches of `plan_epoch`.
    plan: Vec<Vec<usize>>,
}

/// Clustered batches (ICT-P / ICT-Q, Rajapakse, Yates and de Rijke, SIGIR'24): every batch
/// is one cluster of the model's own embeddings where sizes allow, so in-batch negatives are
/// hard. Re-clusters only when its [`RefreshPolicy`] says so (fixed period, SAC schedule,
/// ACR triggers) and reuses the assignments in between.
#[derive(Debug, Clone)]
pub struct ClusteredSampler {
    config: ClusteredConfig,
    state: ClusterState,
}

impl ClusteredSampler {
    /// A sampler that has not clustered yet.
    pub fn new(config: ClusteredConfig) -> Self {
        ClusteredSampler {
            config,
            state: ClusterState::default(),
        }
    }

    /// The cluster of each example from the last clustering (empty before the first).
    pub fn assignments(&self) -> &[u32] {
        &self.state.assignments
    }

    /// Examples whose embeddings ACR compares between clusterings: a seeded sample.
    fn probe_rows(&self, n: usize) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..n).collect();
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(
            self.config.seed ^ 0x7072_6f62,
        ));
        rows.truncate(self.config.probe.min(n));
        rows
    }

    /// The mean cosine change of the probe passages since the last clustering.
    fn drift(&self, embedder: &mut dyn Embedder, examples: &[TrainExample]) -> Result<f64> {
        let rows = self.probe_rows(examples.len());
        let now = embed_rows(embedder, examples, &rows, ClusterTarget::Passages)?;
        let dim = embedder.dim();
        if now.len() != self.state.probe_vecs.len() || rows.is_empty() {
            return Err(TrainError::config(
                "acr_probe",
                "the saved probe embeddings do not match the probe set",
            ));
        }
        let change: f64 = now
            .chunks(dim)
            .zip(self.state.probe_vecs.chunks(dim))
            .map(|(a, b)| 1.0 - a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>())
            .sum();
        Ok(change / rows.len() as f64)
    }

    /// Encodes, clusters and logs; returns the record, still to be completed with the plan.
    fn cluster(
        &mut self,
        ctx: &mut EpochContext,
        examples: &[TrainExample],
        reason: RefreshReason,
    ) -> Result<ClusteringRecord> {
        let n = examples.len();
        let started = Instant::now();
        let rows: Vec<usize> = (0..n).collect();
        let data = embed_rows(ctx.embedder, examples, &rows, self.config.target)?;
        let encode_seconds = started.elapsed().as_secs_f64();
        let dim = ctx.embedder.dim();
        let distinct = distinct_rows(&data, dim);
        let k = self.config.policy.k(ctx.epoch, n).min(distinct).max(1);
        let km = kmeans_on(
            &data,
            dim,
            &KMeansConfig {
                k,
                max_iters: self.config.kmeans_iters,
                seed: self.config.seed ^ ctx.epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                spherical: true,
                ..KMeansConfig::default()
            },
            &ctx.embedder.device(),
        )?;
        if self.config.policy.acr().is_some() {
            self.state.probe_vecs = match self.config.target {
                ClusterTarget::Passages => self
                    .probe_rows(n)
                    .iter()
                    .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
                    .collect(),
                ClusterTarget::Queries => embed_rows(
                    ctx.embedder,
                    examples,
                    &self.probe_rows(n),
                    ClusterTarget::Passages,
                )?,
            };
        }
        let langs: Vec<Option<&str>> = examples.iter().map(|e| e.lang.as_deref()).collect();
        let projected = Instant::now();
        if let Some(dir) = ctx.run_dir {
            write_projection(
                dir,
                ctx.step,
                ctx.epoch,
                k,
                &data,
                dim,
                &km.assignments,
                &langs,
                self.config.seed,
            )?;
        }
        let projection_seconds = projected.elapsed().as_secs_f64();
        tracing::info!(
            "epoch {}: clustered {n} examples into {k} clusters ({}) in {:.2}s",
            ctx.epoch,
            reason.as_str(),
            started.elapsed().as_secs_f64()
        );
        self.state.seconds += started.elapsed().as_secs_f64();
        self.state.k = k;
        self.state.last_refresh = Some(ctx.epoch);
        let record = ClusteringRecord {
            step: ctx.step,
            epoch: ctx.epoch,
            k,
            n,
            reason,
            encode_seconds,
            kmeans_seconds: km.seconds,
            projection_seconds,
            inertia: km.inertia,
            iterations: km.iterations,
            batches: 0,
            short_batches: 0,
            lang_entropy: mean_language_entropy(&km.assignments, &langs),
            drift: None,
            loss_drop: None,
        };
        self.state.assignments = km.assignments;
        Ok(record)
    }
}

impl BatchSampler for ClusteredSampler {
    fn name(&self) -> &str {
        match self.config.target {
            ClusterTarget::Passages => "ict-p",
            ClusterTarget::Queries => "ict-q",
        }
    }

    fn epoch_batches(
        &mut self,
        ctx: &mut EpochContext,
        examples: &[TrainExample],
        batch_size: usize,
    ) -> Result<Vec<Vec<usize>>> {
        if self.state.plan_epoch == Some(ctx.epoch) {
            return Ok(self.state.plan.clone());
        }
        let n = examples.len();
        if !self.state.assignments.is_empty() && self.state.assignments.len() != n {
            return Err(TrainError::config(
                "train_file",
                format!(
                    "the sampler state clusters {} examples but the file has {n}",
                    self.state.assignments.len()
                ),
            ));
        }
        let since = self
            .state
            .last_refresh
            .map_or(ctx.epoch_losses.len(), |e| e as usize)
            .min(ctx.epoch_losses.len());
        let losses = &ctx.epoch_losses[since..];
        let mut input = PolicyInput {
            epoch: ctx.epoch,
            last_refresh: self.state.last_refresh,
            current_k: self.state.k,
            losses,
            drift: None,
            n,
        };
        let policy = self.config.policy;
        let mut decision = policy.decide(&input);
        if decision.is_none() && policy.needs_drift(ctx.epoch, self.state.last_refresh) {
            let started = Instant::now();
            input.drift = Some(self.drift(ctx.embedder, examples)?);
            self.state.seconds += started.elapsed().as_secs_f64();
            tracing::debug!("epoch {}: probe drift {:?}", ctx.epoch, input.drift);
            decision = policy.decide(&input);
        }
        let record = match decision {
            Some(reason) => Some(self.cluster(ctx, examples, reason)?),
            None => None,
        };
        let positives: Vec<Vec<&str>> = examples
            .iter()
            .map(|e| {
                e.positive_passages
                    .iter()
                    .map(|p| p.docid.as_str())
                    .collect()
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ 0x6963_7462);
        rng.set_stream(ctx.epoch);
        let plan = cluster_batches(&self.state.assignments, &positives, batch_size, &mut rng);
        if plan.short_batches > 1 {
            // Every example is still used once; these batches are short because their
            // examples share a positive with every batch that had room.
            tracing::info!(
                "epoch {}: {} of {} batches are short of {batch_size} (shared positives)",
                ctx.epoch,
                plan.short_batches,
                plan.batches.len()
            );
        }
        if let Some(mut record) = record {
            record.batches = plan.batches.len();
            record.short_batches = plan.short_batches;
            record.drift = input.drift;
            record.loss_drop = policy.acr().and_then(|r| r.loss_drop(losses));
            if let Some(dir) = ctx.run_dir {
                append_record(dir, self.state.clusterings, &record)?;
            }
            self.state.clusterings += 1;
        }
        self.state.plan_epoch = Some(ctx.epoch);
        self.state.plan = plan.batches;
        Ok(self.state.plan.clone())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).expect("sampler state serialises")
    }

    fn restore(&mut self, state: &serde_json::Value) -> Result<()> {
        self.state = match state {
            serde_json::Value::Null => ClusterState::default(),
            v => serde_json::from_value(v.clone()).map_err(|e| {
                TrainError::config("sampler", format!("the checkpoint's sampler state: {e}"))
            })?,
        };
        Ok(())
    }

    fn stats(&self) -> Option<SamplerStats> {
        Some(SamplerStats {
            clusterings: self.state.clusterings,
            cluster_seconds: self.state.seconds,
            k: self.state.k,
        })
    }
}

/// The embeddings of `rows`: ICT-Q the query; ICT-P the positive passage, or with several
/// positives (XQuAD-R's pooled task: one paragraph in every language) the normalised mean of
/// their embeddings, so an example's place does not depend on which version sorts first.
/// Each distinct text is encoded once: many questions share a paragraph.
fn embed_rows(
    embedder: &mut dyn Embedder,
    examples: &[TrainExample],
    rows: &[usize],
    target: ClusterTarget,
) -> Result<Vec<f32>> {
    let kind = match target {
        ClusterTarget::Passages => TextKind::Passage,
        ClusterTarget::Queries => TextKind::Query,
    };
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut texts: Vec<String> = Vec::new();
    let which: Vec<Vec<usize>> = rows
        .iter()
        .map(|&i| {
            let ex = &examples[i];
            let own: Vec<String> = match target {
                ClusterTarget::Passages => ex
                    .positive_passages
                    .iter()
                    .map(TrainPassage::full_text)
                    .collect(),
                ClusterTarget::Queries => vec![ex.query.clone()],
            };
            own.into_iter()
                .map(|t| {
                    *slot.entry(t.clone()).or_insert_with(|| {
                        texts.push(t);
                        texts.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let vecs = embedder.embed(&texts, kind)?;
    let dim = embedder.dim();
    let mut out = vec![0f32; rows.len() * dim];
    for (row, js) in out.chunks_mut(dim).zip(&which) {
        for &j in js {
            for (o, v) in row.iter_mut().zip(&vecs[j * dim..(j + 1) * dim]) {
                *o += v;
            }
        }
        if js.len() > 1 {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    Ok(out)
}

/// Distinct rows of `data`, an upper bound on useful k (k-means cannot fill more clusters).
fn distinct_rows(data: &[f32], dim: usize) -> usize {
    let mut rows: Vec<Vec<u32>> = data
        .chunks(dim.max(1))
        .map(|r| r.iter().map(|x| x.to_bits()).collect())
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows.len()
}
