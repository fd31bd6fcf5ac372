//! [`Trainer`]: the training loop. Batches from a [`BatchSampler`], gradients of a [`Loss`]
//! (with GradCache when asked), AdamW under a linear schedule, dev evaluation, checkpoints,
//! and the run directory's files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polydense_data::beir::BeirDataset;
use polydense_data::TrainExample;
use polydense_eval::Report;
use polydense_model::{Encoder, TextKind};

use crate::batch::{Collator, TrainBatch};
use crate::checkpoint::{self, Checkpoint, TrainState};
use crate::config::{Towers, TrainConfig};
use crate::dev_eval::{DevSet, DEV_METRICS};
use crate::dual_encoder::DualEncoder;
use crate::error::{Result, TrainError};
use crate::grad_cache::StepContext;
use crate::loss::{Loss, Progress};
use crate::memory::CrossBatchMemory;
use crate::metrics_log::{MetricsLog, StepRecord};
use crate::optimizer::{clip_scale, linear_lr, AdamW, AdamWConfig, HostGrads};
use crate::sampler::{BatchSampler, EpochContext, ModelEmbedder};
use crate::tokenize::{HfTokenize, Tokenize};

/// Told what the trainer does, for progress bars and logs; every method defaults to nothing.
pub trait TrainObserver {
    /// Called once before the first step with the planned total and the steps already done
    /// (non-zero after a resume).
    fn started(&mut self, _total_steps: u64, _done: u64) {}
    /// Called after every optimiser step.
    fn step(&mut self, _record: &StepRecord) {}
    /// Called after every dev evaluation; `improved` when it is the best so far.
    fn evaluated(&mut self, _step: u64, _report: &Report, _improved: bool) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl TrainObserver for Quiet {}

/// How a call to [`Trainer::train`] ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSummary {
    /// Steps completed in all.
    pub steps: u64,
    /// The loss of the last step (NaN if no step ran in this call).
    pub last_loss: f64,
    /// The best dev score and its step.
    pub best: Option<(u64, f64)>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// The final model directory, when the run finished (not when paused by a step limit).
    pub model_dir: Option<PathBuf>,
}

/// A training run: the model, its optimiser, data and plug-ins, and where it stands.
pub struct Trainer {
    config: TrainConfig,
    model: DualEncoder,
    tokenize: Box<dyn Tokenize>,
    loss: Box<dyn Loss>,
    sampler: Box<dyn BatchSampler>,
    memory: Option<Box<dyn CrossBatchMemory>>,
    optimizer: AdamW,
    examples: Vec<TrainExample>,
    dev: Option<DevSet>,
    state: TrainState,
    last_checkpoint: Option<PathBuf>,
}

impl Trainer {
    /// A run over `examples` with the loss, sampler and memory the config's tables name,
    /// training the weights its `freeze` / `only_train` patterns leave; swap the plug-ins with
    /// [`Trainer::with_loss`], [`Trainer::with_sampler`] and [`Trainer::with_memory`].
    pub fn new(
        config: TrainConfig,
        mut model: DualEncoder,
        tokenize: Box<dyn Tokenize>,
        examples: Vec<TrainExample>,
    ) -> Result<Self> {
        config.validate()?;
        if examples.is_empty() {
            return Err(TrainError::config("train_file", "has no training examples"));
        }
        if let Some(e) = examples.iter().find(|e| e.positive_passages.is_empty()) {
            return Err(TrainError::config(
                "train_file",
                format!("example `{}` has no positive passage", e.query_id),
            ));
        }
        let trainable = config.trainable();
        let all = model.params();
        trainable.check(all.iter().map(|(n, _)| n.as_str()))?;
        if !trainable.is_everything() {
            model.freeze(&trainable)?;
        }
        let optimizer = AdamW::new(
            all.into_iter()
                .filter(|(n, _)| trainable.trains(n))
                .collect(),
            AdamWConfig {
                beta1: config.beta1,
                beta2: config.beta2,
                eps: config.adam_eps,
                weight_decay: config.weight_decay,
            },
        )?;
        let sampler = config
            .sampler
            .build(config.seed, examples.len(), config.batch_size)?;
        Ok(Trainer {
            loss: config.loss.build(),
            sampler,
            memory: config.memory.build(),
            state: TrainState {
                seed: config.seed,
                ..TrainState::default()
            },
            config,
            model,
            tokenize,
            optimizer,
            examples,
            dev: None,
            last_checkpoint: None,
        })
    }

    /// Builds the run a config describes: loads the model (one or two towers), its
    /// tokenizer, the training file and the dev split.
    pub fn from_config(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        if config.model.is_empty() {
            return Err(TrainError::config("model", "is required"));
        }
        let device = polydense_model::device(config.cuda)?;
        let dir = polydense_model::resolve(&config.model)?;
        let two_tower = polydense_model::is_two_tower(&dir);
        if two_tower && config.towers == Towers::Shared {
            return Err(TrainError::config(
                "towers",
                format!(
                    "{} holds separate query and passage towers; set towers = \"separate\" to continue training them",
                    dir.display()
                ),
            ));
        }
        let load = |kind| Encoder::load(&polydense_model::tower_dir(&dir, kind), &device);
        let encoder = load(TextKind::Query)?;
        let tokenize =
            HfTokenize::from_encoder(&encoder, config.max_query_length, config.max_passage_length)?;
        let mut model = match config.towers {
            Towers::Shared => DualEncoder::shared(encoder),
            Towers::Separate => DualEncoder::separate(encoder, load(TextKind::Passage)?),
        };
        if let Some(moe) = config.moe.upgrade() {
            model.upgrade_to_moe(&moe, config.moe.noise, config.seed)?;
        }
        if config.train_file.as_os_str().is_empty() {
            return Err(TrainError::config("train_file", "is required"));
        }
        let examples = polydense_data::tevatron::load_train(&config.train_file)?;
        let dev = match config.dev_dir.as_os_str().is_empty() {
            true => None,
            false => Some(BeirDataset::load(&config.dev_dir, &config.dev_split)?),
        };
        let mut t = Trainer::new(config, model, Box::new(tokenize), examples)?;
        if let Some(ds) = dev {
            t = t.with_dev(ds)?;
        }
        Ok(t)
    }

    /// Replaces the loss.
    pub fn with_loss(mut self, loss: Box<dyn Loss>) -> Self {
        self.loss = loss;
        self
    }

    /// Replaces the batch sampler.
    pub fn with_sampler(mut self, sampler: Box<dyn BatchSampler>) -> Self {
        self.sampler = sampler;
        self
    }

    /// Adds a cross-batch memory of extra negatives.
    pub fn with_memory(mut self, memory: Box<dyn CrossBatchMemory>) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Evaluates on this dev split every `eval_every` steps.
    pub fn with_dev(mut self, dev: BeirDataset) -> Result<Self> {
        let known: Vec<&str> = DEV_METRICS.split(',').collect();
        if !known.contains(&self.config.eval_metric.as_str()) {
            return Err(TrainError::config(
                "eval_metric",
                format!("`{}` is not one of {DEV_METRICS}", self.config.eval_metric),
            ));
        }
        self.dev = Some(DevSet::new(dev, self.config.eval_max_queries));
        Ok(self)
    }

    /// The model being trained.
    pub fn model(&self) -> &DualEncoder {
        &self.model
    }

    /// The settings of the run.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Where the run stands.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// Optimiser steps of the whole run: `max_steps`, or `epochs` times the full batches
    /// of one epoch; the learning-rate schedule spans them.
    pub fn total_steps(&self) -> u64 {
        match self.config.max_steps {
            0 => {
                let per_epoch = (self.examples.len() / self.config.batch_size).max(1);
                (self.config.epochs * per_epoch) as u64
            }
            n => n,
        }
    }

    /// Loads the newest checkpoint of the run directory, if there is one, so training
    /// continues exactly where it stopped; returns the step it resumes after.
    pub fn resume(&mut self) -> Result<Option<u64>> {
        let Some(dir) = checkpoint::latest(&self.config.out_dir)? else {
            return Ok(None);
        };
        let device = self
            .model
            .tower(TextKind::Query)
            .transformer()
            .device()
            .clone();
        let ck = checkpoint::load(&dir, &device)?;
        for (name, var) in self.model.params() {
            let t = ck.model.get(&name).ok_or_else(|| {
                TrainError::config("resume", format!("{} lacks weight `{name}`", dir.display()))
            })?;
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        let fresh = self.optimizer.restore(&ck.optimizer, ck.state.step)?;
        if !fresh.is_empty() {
            tracing::info!(
                "{} weights start training at this resume, with fresh optimiser state (they were frozen at step {})",
                fresh.len(),
                ck.state.step
            );
        }
        self.sampler.restore(&ck.state.sampler)?;
        if let Some(m) = &mut self.memory {
            m.restore(ck.memory)?;
        }
        self.state = ck.state;
        self.last_checkpoint = Some(dir);
        Ok(Some(self.state.step))
    }

    /// Trains to the end of the run (or until early stopping), then writes `model/`.
    pub fn train(&mut self, observer: &mut dyn TrainObserver) -> Result<TrainSummary> {
        self.train_until(observer, None)
    }

    /// As [`Trainer::train`], but pauses with a checkpoint once `pause_at` steps are done
    /// (for schedulers with time limits, and for testing resumption).
    pub fn train_until(
        &mut self,
        observer: &mut dyn TrainObserver,
        pause_at: Option<u64>,
    ) -> Result<TrainSummary> {
        let out = self.config.out_dir.clone();
        std::fs::create_dir_all(&out).map_err(|e| TrainError::io(&out, e))?;
        let config_text = self.config.to_toml();
        polydense_data::atomic::write_atomic(out.join("config.toml"), |f| {
            std::io::Write::write_all(f, config_text.as_bytes())
        })?;
        let mut log = MetricsLog::open(&out, self.state.step)?;
        let total = self.total_steps();
        let limit = pause_at.unwrap_or(total).min(total);
        observer.started(total, self.state.step);
        let mut last_loss = f64::NAN;
        let mut stopped_early = false;
        let mut last_eval = None;
        'epochs: while self.state.step < limit
            && (self.config.max_steps > 0 || self.state.epoch < self.config.epochs as u64)
        {
            let mut embedder = ModelEmbedder {
                model: &self.model,
                tokenize: &*self.tokenize,
                batch: self.config.encode_batch_size,
            };
            let mut ctx = EpochContext {
                epoch: self.state.epoch,
                step: self.state.step,
                epoch_losses: &self.state.epoch_losses,
                embedder: &mut embedder,
                run_dir: Some(&out),
            };
            let clusterings = self.sampler.stats().map(|s| s.clusterings);
            let plan =
                self.sampler
                    .epoch_batches(&mut ctx, &self.examples, self.config.batch_size)?;
            // Saved after planning: a resumed sampler returns this plan without looking at
            // the model again (see `BatchSampler`).
            self.state.sampler = self.sampler.state();
            let clustered = self.sampler.stats().map(|s| s.clusterings) != clusterings;
            self.adversarial_refresh(clustered, total, &mut log)?;
            while self.state.batch_in_epoch < plan.len() {
                if self.state.step >= limit {
                    break 'epochs;
                }
                let record = self.step(&plan[self.state.batch_in_epoch], total)?;
                last_loss = record.loss;
                log.write(&record)?;
                observer.step(&record);
                let step = self.state.step;
                if self.config.eval_every > 0 && step % self.config.eval_every == 0 {
                    stopped_early = self.evaluate(&mut log, observer)?;
                    last_eval = Some(step);
                }
                if stopped_early
                    || (self.config.checkpoint_every > 0
                        && step % self.config.checkpoint_every == 0)
                {
                    self.checkpoint()?;
                }
                if stopped_early {
                    break 'epochs;
                }
            }
            if self.state.epoch_loss_steps > 0 {
                let mean = self.state.epoch_loss_sum / self.state.epoch_loss_steps as f64;
                self.state.epoch_losses.push(mean);
            }
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            self.state.epoch_loss_sum = 0.0;
            self.state.epoch_loss_steps = 0;
        }
        let finished = self.state.step >= total
            || stopped_early
            || (self.config.max_steps == 0 && self.state.epoch >= self.config.epochs as u64);
        if finished
            && self.config.eval_every > 0
            && !stopped_early
            && last_eval != Some(self.state.step)
        {
            self.evaluate(&mut log, observer)?;
        }
        let at = checkpoint::checkpoint_dir(&out, self.state.step);
        if self.last_checkpoint.as_deref() != Some(at.as_path()) {
            self.checkpoint()?;
        }
        let model_dir = match finished {
            true => {
                let dir = out.join("model");
                self.model.save(&dir)?;
                Some(dir)
            }
            false => None,
        };
        Ok(TrainSummary {
            steps: self.state.step,
            last_loss,
            best: self.state.best,
            stopped_early,
            model_dir,
        })
    }

    /// AXL-ICT's loop: re-scores the generated negatives with the current model and
    /// re-applies the adversarial rule, when the sampler just re-clustered (or before the
    /// first epoch), and logs what it kept.
    fn adversarial_refresh(
        &mut self,
        clustered: bool,
        total: u64,
        log: &mut MetricsLog,
    ) -> Result<()> {
        let Some(rule) = &self.config.adversarial else {
            return Ok(());
        };
        if !clustered && self.state.adversarial.refreshes > 0 {
            return Ok(());
        }
        let mut embedder = ModelEmbedder {
            model: &self.model,
            tokenize: &*self.tokenize,
            batch: self.config.encode_batch_size,
        };
        let progress = self.state.step as f64 / total.max(1) as f64;
        let (state, mut record) = crate::adversarial::refresh(
            rule,
            &self.examples,
            &mut embedder,
            progress,
            &self.state.adversarial,
        )?;
        record.step = self.state.step;
        record.epoch = self.state.epoch;
        tracing::info!(
            "epoch {}: adversarial filter kept {} of {} generated negatives ({:?}) in {:.1}s",
            record.epoch,
            record.kept.values().sum::<u64>(),
            record.judged,
            record.kept,
            record.seconds
        );
        log.write(&serde_json::json!({"step": record.step, "adversarial": record}))?;
        self.state.adversarial = state;
        Ok(())
    }

    /// One optimiser step on the examples `batch`.
    fn step(&mut self, batch: &[usize], total: u64) -> Result<StepRecord> {
        let started = Instant::now();
        let batch = self.collate(batch, self.state.step);
        let lr = linear_lr(
            self.config.lr,
            self.state.step,
            self.config.warmup_steps,
            total,
        );
        let ctx = StepContext {
            model: &self.model,
            tokenize: &*self.tokenize,
            loss: &*self.loss,
            params: self.optimizer.params(),
            progress: Progress {
                step: self.state.step,
                total_steps: total,
                epoch: self.state.epoch,
            },
            seed: self.state.seed,
            balance: self.config.moe.balance,
        };
        let memory = &mut self.memory;
        let mut lookup = |q: &candle_core::Tensor, b: &TrainBatch| match memory {
            Some(m) => m.negatives(q, b)?.map(|e| e.for_batch(b)).transpose(),
            None => Ok(None),
        };
        let g = match self.config.grad_cache_chunk {
            0 => ctx.plain(&batch, &mut lookup)?,
            chunk => ctx.cached(&batch, chunk, &mut lookup)?,
        };
        let step = self.state.step + 1;
        let non_finite = |what, value| TrainError::NonFinite {
            what,
            value,
            step,
            checkpoint: self.last_checkpoint.clone(),
        };
        if !g.loss.is_finite() {
            return Err(non_finite("loss", g.loss));
        }
        let t_grads = started.elapsed();
        let host = HostGrads::new(&g.grads)?;
        let norm = host.norm();
        if !norm.is_finite() {
            return Err(non_finite("gradient norm", norm));
        }
        let t_clip = started.elapsed();
        self.optimizer
            .step(&host, lr, clip_scale(norm, self.config.max_grad_norm))?;
        tracing::debug!(
            "step {step}: gradients {:.2?}, norm {:.2?}, optimiser {:.2?}",
            t_grads,
            t_clip - t_grads,
            started.elapsed() - t_clip
        );
        if let Some(m) = &mut self.memory {
            m.push(&g.passages, &batch.passage_ids)?;
        }
        self.state.step = step;
        self.state.batch_in_epoch += 1;
        self.state.epoch_loss_sum += g.loss;
        self.state.epoch_loss_steps += 1;
        let stats = self.sampler.stats();
        Ok(StepRecord {
            step,
            epoch: self.state.epoch,
            loss: g.loss,
            loss_parts: g.parts.into_iter().collect(),
            loss_stats: g.stats.into_iter().collect(),
            routing: g.routing,
            lr,
            grad_norm: norm,
            examples_per_s: batch.len() as f64 / started.elapsed().as_secs_f64().max(1e-9),
            clusterings: stats.map(|s| s.clusterings),
            cluster_seconds: stats.map(|s| s.cluster_seconds),
            k: stats.map(|s| s.k),
        })
    }

    /// The batch of examples `batch` at step `step` (see [`Collator`]).
    pub fn collate(&self, batch: &[usize], step: u64) -> TrainBatch {
        Collator {
            negatives: self.config.negatives,
            seed: self.state.seed,
            same_lang_positive: self.config.same_lang_positive,
        }
        .collate_with(
            &self.examples,
            batch,
            step,
            self.config
                .adversarial
                .as_ref()
                .map(|rule| (&self.state.adversarial, rule)),
        )
    }

    /// Scores the dev split, keeps the best model, and says whether to stop early.
    fn evaluate(&mut self, log: &mut MetricsLog, observer: &mut dyn TrainObserver) -> Result<bool> {
        let Some(dev) = &self.dev else {
            return Ok(false);
        };
        let report = dev.evaluate(&self.model, &*self.tokenize, self.config.encode_batch_size)?;
        let step = self.state.step;
        let score = report
            .overall
            .get(&self.config.eval_metric)
            .unwrap_or(f64::NEG_INFINITY);
        let improved = self.state.best.is_none_or(|(_, b)| score > b);
        let out = &self.config.out_dir;
        if improved {
            self.state.best = Some((step, score));
            self.state.evals_without_improvement = 0;
            self.model.save(&out.join("best_model"))?;
        } else {
            self.state.evals_without_improvement += 1;
        }
        let json = serde_json::to_string_pretty(&report).expect("reports serialise");
        polydense_data::atomic::write_atomic(
            out.join("eval").join(format!("dev-step-{step:08}.json")),
            |f| std::io::Write::write_all(f, json.as_bytes()),
        )?;
        log.write(&serde_json::json!({"step": step, "dev": report}))?;
        observer.evaluated(step, &report, improved);
        let patience = self.config.early_stopping_patience;
        Ok(patience > 0 && self.state.evals_without_improvement >= patience)
    }

    /// Writes a checkpoint of the current state.
    fn checkpoint(&mut self) -> Result<()> {
        let ck = Checkpoint {
            model: self
                .model
                .params()
                .into_iter()
                .map(|(n, v)| (n, v.as_tensor().clone()))
                .collect(),
            optimizer: self.optimizer.state()?,
            memory: self.memory.as_ref().and_then(|m| m.state()),
            state: self.state.clone(),
        };
        let dir = checkpoint::save(&self.config.out_dir, &ck, self.config.keep_checkpoints)?;
        tracing::debug!("checkpoint {}", dir.display());
        self.last_checkpoint = Some(dir);
        Ok(())
    }

    /// The run directory.
    pub fn out_dir(&self) -> &Path {
        &self.config.out_dir
    }
}
