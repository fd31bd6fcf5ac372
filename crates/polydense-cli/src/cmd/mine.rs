//! `polydense mine --config FILE.toml`: run a negative-mining pipeline.

use super::bm25::progress;
use anyhow::Context;
use indicatif::ProgressBar;
use polydense_mine::{run_config, MineConfig, Progress};
use std::path::PathBuf;
use std::sync::Mutex;

/// Flags of `polydense mine`; each override replaces the config's key of the same name.
#[derive(clap::Args)]
pub struct Args {
    /// TOML config: dataset, split, output, [[miner]] and [[filter]] stages (see configs/mine-*.toml).
    #[arg(long)]
    config: PathBuf,
    /// Override `dataset` (a BEIR directory).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// Override `split`.
    #[arg(long)]
    split: Option<String>,
    /// Override `output` (Tevatron jsonl).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Override `stats`.
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Override `seed`.
    #[arg(long)]
    seed: Option<u64>,
}

/// Draws one bar per pipeline stage.
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        let pb = progress(Some(total), "queries");
        pb.set_message(stage.to_string());
        *self.0.lock().expect("bar lock") = Some(pb);
    }
    fn inc(&self, n: u64) {
        if let Some(pb) = self.0.lock().expect("bar lock").as_ref() {
            pb.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(pb) = self.0.lock().expect("bar lock").take() {
            pb.finish_and_clear();
        }
    }
}

/// Runs `polydense mine`.
pub fn run(c: Args) -> anyhow::Result<()> {
    let mut cfg = MineConfig::load(&c.config)?;
    cfg.dataset = c.dataset.unwrap_or(cfg.dataset);
    cfg.split = c.split.unwrap_or(cfg.split);
    cfg.output = c.output.unwrap_or(cfg.output);
    cfg.stats = c.stats.or(cfg.stats);
    cfg.seed = c.seed.unwrap_or(cfg.seed);
    let start = std::time::Instant::now();
    let stats = run_config(&cfg, &Bars(Mutex::new(None)))
        .with_context(|| format!("mining with {}", c.config.display()))?;
    let dropped: Vec<String> = stats
        .dropped
        .iter()
        .flat_map(|(f, r)| r.iter().map(move |(why, n)| format!("{f}: {n} ({why})")))
        .collect();
    tracing::info!(
        "{} examples from {} queries in {:.1} s ({} without a positive, {} with too few negatives); \
         {:.2} negatives per example (asked {}); dropped: {}; written {} and {}",
        stats.examples,
        stats.queries,
        start.elapsed().as_secs_f64(),
        stats.skipped_no_positive,
        stats.skipped_too_few_negatives,
        stats.negatives_per_query.mean,
        stats.requested_per_query,
        if dropped.is_empty() { "none".into() } else { dropped.join(", ") },
        cfg.output.display(),
        cfg.stats_path().display()
    );
    Ok(())
}
