//! `polydense data`: build the BEIR datasets the rest of the pipeline reads.

use anyhow::Context;
use polydense_data::splits::{Split, SplitRatios};
use polydense_data::xquad::{self, PrepareOptions, Relevance, Task};
use std::path::PathBuf;

/// Subcommands of `polydense data`.
#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Write a dataset as BEIR directories (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv).
    #[command(subcommand)]
    Prepare(Prepare),
    /// Download a dataset's public files (needs the network and curl).
    #[command(subcommand)]
    Fetch(Fetch),
}

/// Datasets `polydense data prepare` knows.
#[derive(clap::Subcommand)]
pub enum Prepare {
    /// XQuAD-R (LAReQA): 11 parallel languages. Writes DIR/<lang>/ for each language, DIR/all/
    /// with every language pooled, and DIR/<x>-<y>/ for each --cross pair, plus manifest.json.
    #[command(name = "xquad-r")]
    XquadR(PrepareXquad),
}

/// Flags of `polydense data prepare xquad-r`.
#[derive(clap::Args)]
pub struct PrepareXquad {
    /// paragraph: the question's paragraph is relevant. lareqa: the pool is every sentence of
    /// every language and the answer sentence (with its translations, when pooled) is relevant.
    #[arg(long, default_value = "paragraph", value_parser = parse_task)]
    task: Task,
    /// Output directory; one BEIR directory per variant is written under it.
    #[arg(long)]
    out: PathBuf,
    /// Folder holding xquad-r/*.json. Default: $POLYDENSE_DATA, else ../shared/data.
    #[arg(long, env = "POLYDENSE_DATA")]
    data: Option<PathBuf>,
    /// Comma-separated languages to use (default: all 11: ar,de,el,en,es,hi,ru,th,tr,vi,zh).
    #[arg(long, value_delimiter = ',')]
    langs: Vec<String>,
    /// Skip the one-language-only datasets.
    #[arg(long)]
    no_per_language: bool,
    /// Skip the all-languages pooled dataset.
    #[arg(long)]
    no_pooled: bool,
    /// In the pooled dataset, count only the same-language paragraph or sentence as relevant
    /// (default: all 11 parallel ones, as in LAReQA).
    #[arg(long)]
    same_lang_only: bool,
    /// Cross-lingual pairs QUERY_LANG-CORPUS_LANG, comma-separated (e.g. en-de,de-en), or `all`
    /// for every ordered pair of the selected languages.
    #[arg(long, value_delimiter = ',')]
    cross: Vec<String>,
    /// Fractions of articles for train,dev,test. Articles never straddle two splits.
    #[arg(long, default_value = "0.7,0.1,0.2")]
    split: SplitRatios,
    /// Seed of the article shuffle; the same seed gives the same splits.
    #[arg(long, default_value_t = 13)]
    seed: u64,
}

/// Datasets `polydense data fetch` knows.
#[derive(clap::Subcommand)]
pub enum Fetch {
    /// Download the 11 XQuAD-R JSON files and the licence from the LAReQA repository.
    #[command(name = "xquad-r")]
    XquadR {
        /// Where to put them (default: $POLYDENSE_DATA/xquad-r, else ../shared/data/xquad-r).
        #[arg(long)]
        to: Option<PathBuf>,
    },
}

fn parse_task(s: &str) -> Result<Task, String> {
    s.parse()
}

/// Runs `polydense data`.
pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {
        DataCommand::Prepare(Prepare::XquadR(args)) => prepare_xquad(args),
        DataCommand::Fetch(Fetch::XquadR { to }) => {
            let dest = match to {
                Some(d) => d,
                None => default_data_dir()?.join("xquad-r"),
            };
            let written = xquad::fetch(&dest)?;
            println!(
                "{} file(s) downloaded into {}",
                written.len(),
                dest.display()
            );
            Ok(())
        }
    }
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    Ok(polydense_data::paths::data_dir()?)
}

fn prepare_xquad(args: PrepareXquad) -> anyhow::Result<()> {
    let data = match args.data {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let langs = if args.langs.is_empty() {
        xquad::LANGUAGES.iter().map(|s| s.to_string()).collect()
    } else {
        args.langs.clone()
    };
    let cross = parse_cross(&args.cross, &langs)?;
    let opts = PrepareOptions {
        task: args.task,
        langs,
        per_language: !args.no_per_language,
        pooled: !args.no_pooled,
        cross,
        pooled_relevance: if args.same_lang_only {
            Relevance::SameLanguage
        } else {
            Relevance::AllParallel
        },
        ratios: args.split,
        seed: args.seed,
    };
    let summary = xquad::prepare(&data.join("xquad-r"), &args.out, &opts)
        .with_context(|| format!("preparing XQuAD-R into {}", args.out.display()))?;
    let articles = |s: Split| summary.articles.get(&s).map_or(0, Vec::len);
    println!(
        "XQuAD-R {:?} task, seed {}: articles train {} / dev {} / test {}",
        summary.task,
        summary.seed,
        articles(Split::Train),
        articles(Split::Dev),
        articles(Split::Test),
    );
    println!(
        "{:<8} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "variant", "documents", "queries", "train", "dev", "test"
    );
    for v in &summary.variants {
        let q = |s: Split| v.split_queries.get(&s).copied().unwrap_or(0);
        println!(
            "{:<8} {:>9} {:>9} {:>7} {:>7} {:>7}",
            v.name,
            v.documents,
            v.queries,
            q(Split::Train),
            q(Split::Dev),
            q(Split::Test)
        );
    }
    println!("written under {}", args.out.display());
    Ok(())
}

fn parse_cross(pairs: &[String], langs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    if pairs.iter().any(|p| p == "all") {
        return Ok(langs
            .iter()
            .flat_map(|x| {
                langs
                    .iter()
                    .filter(move |y| *y != x)
                    .map(move |y| (x.clone(), y.clone()))
            })
            .collect());
    }
    pairs
        .iter()
        .map(|p| {
            p.split_once('-')
                .map(|(x, y)| (x.to_string(), y.to_string()))
                .with_context(|| {
                    format!("--cross `{p}`: expected QUERY_LANG-CORPUS_LANG, e.g. en-de")
                })
        })
        .collect()
}
