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
    /// Override `max_queries`: mine only the first N queries (a slice to try a pipeline on).
    #[arg(long)]
    max_queries: Option<usize>,
    /// Override `checkpoint_every` (queries per checkpoint).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Discard a stopped run's checkpoint and start over.
    #[arg(long)]
    restart: bool,
}

/// Draws one bar per pipeline stage; an LLM stage's rates replace its message.
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        let pb = progress(Some(total), "queries");
        pb.set_message(stage.to_string());
        *self.0.lock().expect("bar lock") = Some(pb);
    }
    fn status(&self, line: &str) {
        if let Some(pb) = self.0.lock().expect("bar lock").as_ref() {
            pb.set_message(line.to_string());
        }
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
    cfg.max_queries = c.max_queries.or(cfg.max_queries);
    cfg.checkpoint_every = c.checkpoint_every.unwrap_or(cfg.checkpoint_every);
    cfg.validate(&c.config)?;
    if c.restart {
        polydense_mine::checkpoint::clear(&cfg)?;
    }
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
         {:.2} negatives per example (asked {}); dropped: {}; negative queries: {} from the qrels, \
         {} from the LLM, {} without; written {} and {}",
        stats.examples,
        stats.queries,
        start.elapsed().as_secs_f64(),
        stats.skipped_no_positive,
        stats.skipped_too_few_negatives,
        stats.negatives_per_query.mean,
        stats.requested_per_query,
        if dropped.is_empty() { "none".into() } else { dropped.join(", ") },
        stats.negative_queries.from_qrels,
        stats.negative_queries.from_llm,
        stats.negative_queries.without,
        cfg.output.display(),
        cfg.stats_path().display()
    );
    // The LLM stages' summary: what they asked, what the cache saved, what failed. Other
    // stages' counters (a rule generator's written / not applicable) are shown as they are.
    for (stage, n) in &stats.counters {
        let get = |k: &str| n.get(k).copied().unwrap_or(0);
        if !n.contains_key("items") {
            let parts: Vec<String> = n.iter().map(|(k, v)| format!("{k} {v}")).collect();
            tracing::info!("{stage}: {}", parts.join(", "));
            continue;
        }
        tracing::info!(
            "{stage}: {} items, {} requests ({} retried), {} from the cache, {} unreadable, {} skipped, {} tokens, {:.1} s",
            get("items"),
            get("requests"),
            get("retries"),
            get("cache_hits"),
            get("parse_failures"),
            get("skipped"),
            get("prompt_tokens") + get("completion_tokens"),
            get("wall_ms") as f64 / 1e3
        );
    }
    Ok(())
}
