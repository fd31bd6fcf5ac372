//! `polydense train`: fine-tune a dual encoder from a TOML config, every key of which a flag
//! of the same name overrides (`batch_size` ↔ `--batch-size`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use polydense_eval::Report;
use polydense_train::{StepRecord, Towers, TrainConfig, TrainObserver, Trainer};

/// Declares the override flags once: each becomes `--key VALUE` and, when given, sets the
/// config key of the same name. Top-level keys take their flag from the field
/// (`batch_size` ↔ `--batch-size`); the keys of the `[loss]`, `[sampler]` and `[memory]` tables
/// are dotted (`--loss.temperature`), with the flat flags of earlier versions as aliases.
macro_rules! overrides {
    ($( $(#[$doc:meta])* $field:ident : $ty:ty ),* ;
     tables: $( $(#[$tdoc:meta])* $tfield:ident : $tty:ty = $key:literal $(| $alias:literal)? ),* $(,)?) => {
        /// One optional flag per config key; given flags win over the config file.
        #[derive(clap::Args, Default, Debug)]
        pub struct Overrides {
            $( $(#[$doc])* #[arg(long, help_heading = "Config overrides")] pub $field: Option<$ty>, )*
            $( $(#[$tdoc])* #[arg(long = $key, $(alias = $alias,)? value_name = "VALUE", help_heading = "Config overrides")] pub $tfield: Option<$tty>, )*
        }

        impl Overrides {
            /// The given flags as `(config key, value)` pairs, in declaration order.
            pub fn pairs(self) -> Vec<(String, toml::Value)> {
                let mut out = Vec::new();
                $( if let Some(v) = self.$field { out.push((stringify!($field).to_string(), toml_value(&v))); } )*
                $( if let Some(v) = self.$tfield { out.push(($key.replace('-', "_"), toml_value(&v))); } )*
                out
            }
        }
    };
}

/// A flag's parsed value as the TOML value of its config key.
fn toml_value(v: &impl serde::Serialize) -> toml::Value {
    toml::Value::try_from(v).expect("flag values serialise to TOML")
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
    /// Hard negatives per query.
    negatives: usize,
    /// Probability of the positive in the query's language (0-1); unset uniform.
    same_lang_positive: f64,
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
    cuda: bool,
    /// Weights not to train, by name pattern (`*`, `?`), comma-separated or repeated.
    #[arg(value_delimiter = ',')]
    freeze: Vec<String>,
    /// Train only the weights matching these patterns, comma-separated or repeated.
    #[arg(value_delimiter = ',')]
    only_train: Vec<String>;
    tables:
    /// Loss: infonce, clpl or matryoshka.
    loss_kind: String = "loss.kind" | "loss",
    /// Loss temperature (InfoNCE, CLPL).
    loss_temperature: f64 = "loss.temperature" | "temperature",
    /// CLPL: the penalty's share λ.
    loss_lambda: f64 = "loss.lambda",
    /// Matryoshka: prefix lengths trained, comma-separated (384,192,96,48,24).
    #[arg(value_delimiter = ',')]
    loss_dims: Vec<usize> = "loss.dims",
    /// Matryoshka: weight of each prefix's loss, comma-separated (default all 1).
    #[arg(value_delimiter = ',')]
    loss_weights: Vec<f64> = "loss.weights",
    /// Batch sampler: random, sequential (file order), ict-p (clusters of positive passages)
    /// or ict-q (of queries).
    sampler_kind: String = "sampler.kind" | "sampler",
    /// Clusters k for refresh fixed / acr; 0 picks N / batch size.
    sampler_clusters: usize = "sampler.clusters" | "clusters",
    /// When clustered samplers re-cluster: fixed, sac, acr or sac+acr.
    sampler_refresh: String = "sampler.refresh" | "refresh",
    /// Epochs between clusterings under refresh = fixed.
    sampler_refresh_every: u64 = "sampler.refresh-every" | "refresh-every",
    /// Unit of the refresh schedules (epoch).
    sampler_refresh_unit: String = "sampler.refresh-unit" | "refresh-unit",
    /// Defaults of the sac_* keys: paper or none.
    sampler_sac_preset: String = "sampler.sac-preset" | "sac-preset",
    /// SAC: k of the first epochs (overrides the preset).
    sampler_sac_k_start: usize = "sampler.sac-k-start" | "sac-k-start",
    /// SAC: k added per epoch after the warm-up.
    sampler_sac_k_step: usize = "sampler.sac-k-step" | "sac-k-step",
    /// SAC: last epoch (0-based) at the starting k.
    sampler_sac_warmup_epochs: u64 = "sampler.sac-warmup-epochs" | "sac-warmup-epochs",
    /// SAC: largest k (k also stays at most N/10).
    sampler_sac_k_max: usize = "sampler.sac-k-max" | "sac-k-max",
    /// SAC: smallest k.
    sampler_sac_k_min: usize = "sampler.sac-k-min" | "sac-k-min",
    /// ACR: relative drop of the epoch mean loss that re-clusters.
    sampler_acr_loss_drop: f64 = "sampler.acr-loss-drop" | "acr-loss-drop",
    /// ACR: epochs over which the loss drop is measured.
    sampler_acr_window: usize = "sampler.acr-window" | "acr-window",
    /// ACR: mean cosine drift of the probe passages that re-clusters.
    sampler_acr_drift: f64 = "sampler.acr-drift" | "acr-drift",
    /// ACR: probe passages measured for drift.
    sampler_acr_probe: usize = "sampler.acr-probe" | "acr-probe",
    /// ACR: fewest epochs between clusterings.
    sampler_acr_min_gap: u64 = "sampler.acr-min-gap" | "acr-min-gap",
    /// ACR: most epochs between clusterings.
    sampler_acr_max_gap: u64 = "sampler.acr-max-gap" | "acr-max-gap",
    /// Most Lloyd iterations per k-means run.
    sampler_kmeans_iters: usize = "sampler.kmeans-iters" | "kmeans-iters",
    /// Cross-batch memory: none or fifo.
    memory_kind: String = "memory.kind",
    /// FIFO memory: passage vectors kept.
    memory_capacity: usize = "memory.capacity",
    /// Experts per layer made from the dense feed-forward blocks; 0 none.
    moe_experts: usize = "moe.experts",
    /// Experts each token is routed to.
    moe_top_k: usize = "moe.top-k",
    /// Which dense layers become experts: intermediate, output or both.
    moe_layers: String = "moe.layers",
    /// Weight of a selected expert: unit or probability.
    moe_router_scale: String = "moe.router-scale",
    /// Noise on the expert copies, as a fraction of each weight's standard deviation.
    moe_noise: f64 = "moe.noise",
    /// Weight of the experts' load-balancing term; 0 off.
    moe_balance: f64 = "moe.balance",
    /// AXL-ICT: dynamic (keep the hardest fraction) or fixed (the public code's ratio rule).
    adversarial_mode: String = "adversarial.mode",
    /// AXL-ICT: sources of the generated negatives it judges, comma-separated.
    #[arg(value_delimiter = ',')]
    adversarial_sources: Vec<String> = "adversarial.sources",
    /// AXL-ICT: share of each query's generated negatives kept, hardest first.
    adversarial_keep_fraction: f64 = "adversarial.keep-fraction",
    /// AXL-ICT: the kept share at the end of training (linear schedule).
    adversarial_keep_fraction_end: f64 = "adversarial.keep-fraction-end",
    /// AXL-ICT: drop a negative whose sim(q, neg) − sim(q, pos) exceeds this.
    adversarial_margin: f64 = "adversarial.margin",
    /// AXL-ICT: the margin at the end of training (linear schedule).
    adversarial_margin_end: f64 = "adversarial.margin-end",
    /// AXL-ICT: drop a negative sharing more of its words with the positive (0-1).
    adversarial_max_overlap: f64 = "adversarial.max-overlap",
    /// AXL-ICT, fixed rule: keep when sim(q, neg) ≥ this × sim(q, pos).
    adversarial_fixed_ratio: f64 = "adversarial.fixed-ratio",
    /// AXL-ICT: generated negatives per query and step, on top of the mined ones.
    adversarial_per_query: usize = "adversarial.per-query",
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
    let base = match (config, &overrides.out_dir) {
        (Some(path), _) => TrainConfig::from_toml_file(path)?,
        (None, Some(out)) if resume && out.join("config.toml").is_file() => {
            TrainConfig::from_toml_file(&out.join("config.toml"))
                .with_context(|| format!("reading the saved config of {}", out.display()))?
        }
        _ => TrainConfig::default(),
    };
    Ok(base.with_overrides(&overrides.pairs())?)
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
            let parts: String = r
                .loss_parts
                .iter()
                .map(|(k, v)| format!(" {k} {v:.4}"))
                .collect();
            pb.set_message(format!(
                "loss {:.4}{parts} lr {:.2e} {:.1} ex/s{clusters}",
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args as _, Command};

    fn flags() -> Vec<String> {
        Overrides::augment_args(Command::new("t"))
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect()
    }

    #[test]
    fn every_config_key_has_a_flag_and_every_flag_a_key() {
        let keys: Vec<String> = TrainConfig::keys()
            .into_iter()
            .map(|k| k.replace('_', "-"))
            .collect();
        let flags = flags();
        for k in &keys {
            assert!(flags.contains(k), "config key `{k}` has no flag --{k}");
        }
        for f in &flags {
            assert!(keys.contains(f), "flag --{f} sets no config key");
        }
    }

    #[test]
    fn flags_and_their_old_names_override_the_file() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: Overrides,
        }
        let parse = |argv: &[&str]| {
            let mut v = vec!["t"];
            v.extend_from_slice(argv);
            <Cli as clap::Parser>::try_parse_from(v).unwrap().o
        };
        let c = TrainConfig::default()
            .with_overrides(&parse(&["--loss.temperature", "0.02", "--batch-size", "8"]).pairs())
            .unwrap();
        assert_eq!(c.batch_size, 8);
        assert_eq!(
            c.loss,
            polydense_train::LossConfig::Infonce(polydense_train::InfoNceConfig {
                temperature: 0.02
            })
        );
        let c = TrainConfig::default()
            .with_overrides(
                &parse(&[
                    "--sampler",
                    "ict-q",
                    "--refresh",
                    "acr",
                    "--freeze",
                    "embeddings.*,*.bias",
                ])
                .pairs(),
            )
            .unwrap();
        assert_eq!(c.sampler.ict().unwrap().refresh, "acr");
        assert!(matches!(c.sampler, polydense_train::SamplerConfig::IctQ(_)));
        assert_eq!(c.freeze, ["embeddings.*", "*.bias"]);
    }
}
