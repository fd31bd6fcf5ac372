//! `polydense train`: fine-tune a dual encoder from a TOML config, every key of which a flag
//! of the same name overrides (`batch_size` ↔ `--batch-size`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use polydense_eval::Report;
use polydense_train::{StepRecord, Towers, TrainConfig, TrainObserver, Trainer};

/// Declares the override flags once: each becomes `--key VALUE` and replaces the config's key.
/// Keys listed after `; optional:` are `Option`s in the config (unset means "from a preset"),
/// so a given flag sets `Some(value)`.
macro_rules! overrides {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),* ;
     optional: $( $(#[$odoc:meta])* $ofield:ident : $oty:ty ),* $(,)?) => {
        /// One optional flag per config key; given flags win over the config file.
        #[derive(clap::Args, Default, Debug)]
        pub struct Overrides {
            $( $(#[$doc])* #[arg(long, help_heading = "Config overrides")] pub $field: Option<$ty>, )*
            $( $(#[$odoc])* #[arg(long, help_heading = "Config overrides")] pub $ofield: Option<$oty>, )*
        }

        impl Overrides {
            /// Writes every given flag into `config`.
            pub fn apply(self, config: &mut TrainConfig) {
                $( if let Some(v) = self.$field { config.$field = v; } )*
                $( if let Some(v) = self.$ofield { config.$ofield = Some(v); } )*
            }
        }
    };
}

overrides! {
    /// Starting model: an HF directory or an installed name (e5-small, minilm-l6).
    model: String,
    /// Training examples, Tevatron jsonl.
    train_file: PathBuf,
    /// Run directory.
    out_dir: PathBuf,
    /// BEIR directory for dev evaluation.
    dev_dir: PathBuf,
    /// Qrels split of the dev directory.
    dev_split: String,
    /// shared or separate query/passage towers.
    towers: Towers,
    /// Loss (infonce).
    loss: String,
    /// InfoNCE temperature.
    temperature: f64,
    /// Hard negatives per query.
    negatives: usize,
    /// Batch sampler: random, sequential (file order), ict-p (clusters of positive passages)
    /// or ict-q (of queries).
    sampler: String,
    /// Clusters k for refresh fixed / acr; 0 picks N / batch size.
    clusters: usize,
    /// When clustered samplers re-cluster: fixed, sac, acr or sac+acr.
    refresh: String,
    /// Epochs between clusterings under refresh = fixed.
    refresh_every: u64,
    /// Unit of the refresh schedules (epoch).
    refresh_unit: String,
    /// Defaults of the sac_* keys: paper or none.
    sac_preset: String,
    /// ACR: relative drop of the epoch mean loss that re-clusters.
    acr_loss_drop: f64,
    /// ACR: epochs over which the loss drop is measured.
    acr_window: usize,
    /// ACR: mean cosine drift of the probe passages that re-clusters.
    acr_drift: f64,
    /// ACR: probe passages measured for drift.
    acr_probe: usize,
    /// ACR: fewest epochs between clusterings.
    acr_min_gap: u64,
    /// ACR: most epochs between clusterings.
    acr_max_gap: u64,
    /// Most Lloyd iterations per k-means run.
    kmeans_iters: usize,
    /// Queries per batch.
    batch_size: usize,
    /// GradCache chunk size; 0 off.
    grad_cache_chunk: usize,
    /// Query truncation in tokens; 0 the model's limit.
    max_query_length: usize,
    /// Passage truncation in tokens; 0 the model's limit.
    max_passage_length: usize,
    /// Passes over the training file.
    epochs: usize,
    /// Total optimiser steps; 0 from epochs.
    max_steps: u64,
    /// Peak learning rate.
    lr: f64,
    /// Linear warm-up steps.
    warmup_steps: u64,
    /// AdamW weight decay.
    weight_decay: f64,
    /// AdamW β1.
    beta1: f64,
    /// AdamW β2.
    beta2: f64,
    /// AdamW ε.
    adam_eps: f64,
    /// Gradient-norm clip; 0 off.
    max_grad_norm: f64,
    /// Seed of data order and negative sampling.
    seed: u64,
    /// Dev evaluation every N steps; 0 never.
    eval_every: u64,
    /// Dev metric choosing the best model (ndcg@10, mrr@10, recall@100).
    eval_metric: String,
    /// Dev queries evaluated at most; 0 all.
    eval_max_queries: usize,
    /// Dev evaluations without improvement before stopping; 0 never.
    early_stopping_patience: usize,
    /// Checkpoint every N steps; 0 only at the end.
    checkpoint_every: u64,
    /// Checkpoints kept.
    keep_checkpoints: usize,
    /// Texts per forward pass when encoding the dev corpus.
    encode_batch_size: usize,
    /// Run on the first CUDA GPU (true/false).
    cuda: bool;
    optional:
    /// SAC: k of the first epochs (overrides the preset).
    sac_k_start: usize,
    /// SAC: k added per epoch after the warm-up.
    sac_k_step: usize,
    /// SAC: last epoch (0-based) at the starting k.
    sac_warmup_epochs: u64,
    /// SAC: largest k (k also stays at most N/10).
    sac_k_max: usize,
    /// SAC: smallest k.
    sac_k_min: usize,
}

/// Flags of `polydense train`.
#[derive(clap::Args)]
pub struct Args {
    /// The experiment config (TOML; keys as the flags below, with underscores).
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Continue from the run directory's latest checkpoint (without --config, the run's own
    /// config.toml is used).
    #[arg(long)]
    pub resume: bool,
    /// Boxed: the 50 optional flags would make `train` the largest subcommand variant by far.
    #[command(flatten)]
    pub overrides: Box<Overrides>,
}

/// Runs `polydense train`.
pub fn run(args: Args) -> Result<()> {
    let config = resolve_config(args.config.as_deref(), args.resume, *args.overrides)?;
    let out = config.out_dir.clone();
    if out.as_os_str().is_empty() {
        bail!("config `out_dir` is required (set it in the config or pass --out-dir)");
    }
    let has_checkpoint = polydense_train::checkpoint::latest(&out)?.is_some();
    if has_checkpoint && !args.resume {
        bail!(
            "{} already holds a checkpoint; pass --resume to continue it, or choose another --out-dir",
            out.display()
        );
    }
    let mut trainer = Trainer::from_config(config)?;
    if args.resume {
        match trainer.resume()? {
            Some(step) => tracing::info!("resuming {} after step {step}", out.display()),
            None => tracing::info!("no checkpoint in {}: starting afresh", out.display()),
        }
    }
    let mut bar = Bar::default();
    let summary = trainer.train(&mut bar)?;
    if let Some(pb) = &bar.pb {
        pb.finish_and_clear();
    }
    eprintln!(
        "trained {} steps, last loss {:.4}{}",
        summary.steps,
        summary.last_loss,
        if summary.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    if let Some((step, score)) = summary.best {
        eprintln!(
            "best dev {} = {score:.4} at step {step}: {}",
            trainer.config().eval_metric,
            out.join("best_model").display()
        );
    }
    if let Some(dir) = summary.model_dir {
        println!("{}", dir.display());
    }
    Ok(())
}

/// The config file (or, resuming without one, the run's saved config), then the flags.
fn resolve_config(
    config: Option<&Path>,
    resume: bool,
    overrides: Overrides,
) -> Result<TrainConfig> {
    let mut resolved = match (config, &overrides.out_dir) {
        (Some(path), _) => TrainConfig::from_toml_file(path)?,
        (None, Some(out)) if resume && out.join("config.toml").is_file() => {
            TrainConfig::from_toml_file(&out.join("config.toml"))
                .with_context(|| format!("reading the saved config of {}", out.display()))?
        }
        _ => TrainConfig::default(),
    };
    overrides.apply(&mut resolved);
    Ok(resolved)
}

/// The progress bar: steps with an ETA, and the loss, learning rate and rate of the last step.
#[derive(Default)]
struct Bar {
    pb: Option<ProgressBar>,
}

impl TrainObserver for Bar {
    fn started(&mut self, total: u64, done: u64) {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "train [{bar:30}] {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
            )
            .expect("static template")
            .progress_chars("=> "),
        );
        pb.set_position(done);
        pb.enable_steady_tick(Duration::from_millis(500));
        self.pb = Some(pb);
    }

    fn step(&mut self, r: &StepRecord) {
        if let Some(pb) = &self.pb {
            pb.set_position(r.step);
            let clusters = match (r.k, r.clusterings) {
                (Some(k), Some(n)) => format!(" k {k} ({n} clusterings)"),
                _ => String::new(),
            };
            pb.set_message(format!(
                "loss {:.4} lr {:.2e} {:.1} ex/s{clusters}",
                r.loss, r.lr, r.examples_per_s
            ));
        }
    }

    fn evaluated(&mut self, step: u64, report: &Report, improved: bool) {
        let text = format!(
            "dev at step {step}{}:\n{}",
            if improved { " (best so far)" } else { "" },
            report.to_table()
        );
        match &self.pb {
            Some(pb) => pb.println(text),
            None => eprintln!("{text}"),
        }
    }
}
