//! `polydense bm25`: build a multilingual BM25 index of a BEIR corpus and search it.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use polydense_data::beir::{load_queries, read_corpus};
use polydense_lexical::{build_index, AnalysisOptions, Bm25Params, Bm25Searcher, IndexOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Subcommands of `polydense bm25`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Index a corpus.jsonl; each line is analysed in its own `lang` unless --lang is given.
    Index(IndexArgs),
    /// Search an index with a queries.jsonl and write the top K of each query as a TREC run.
    Search(SearchArgs),
}

/// Flags of `polydense bm25 index`.
#[derive(clap::Args)]
pub struct IndexArgs {
    /// BEIR corpus.jsonl (plain or gzip).
    #[arg(long)]
    corpus: PathBuf,
    /// Index directory to create (a previous polydense index there is replaced).
    #[arg(long)]
    index: PathBuf,
    /// Analyse every document as this language (ISO 639-1), ignoring the `lang` fields.
    #[arg(long)]
    lang: Option<String>,
    /// Remove stopwords (languages with a Snowball list, and Lucene's English list).
    #[arg(long)]
    stopwords: bool,
    /// Do not stem (by default a Snowball stemmer runs where the language has one).
    #[arg(long)]
    no_stem: bool,
    /// Indexing threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Flags of `polydense bm25 search`.
#[derive(clap::Args)]
pub struct SearchArgs {
    /// Index directory made by `polydense bm25 index`.
    #[arg(long)]
    index: PathBuf,
    /// BEIR queries.jsonl (plain or gzip).
    #[arg(long)]
    queries: PathBuf,
    /// TREC run file to write.
    #[arg(long)]
    out: PathBuf,
    /// Documents kept per query.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Analyse every query as this language (default: the query's `lang`, else the index's).
    #[arg(long)]
    lang: Option<String>,
    /// BM25 term-frequency saturation (pyserini's default).
    #[arg(long, default_value_t = 0.9)]
    k1: f32,
    /// BM25 length normalisation (pyserini's default).
    #[arg(long, default_value_t = 0.4)]
    b: f32,
    /// Run tag written in the last column.
    #[arg(long, default_value = "polydense-bm25")]
    tag: String,
}

/// Runs `polydense bm25`.
pub fn run(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Index(a) => index(a),
        Command::Search(a) => search(a),
    }
}

/// A bar with a rate and an ETA; a spinner with a rate when the total is unknown.
pub(crate) fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    let (pb, template) = match total {
        Some(n) => (
            ProgressBar::new(n),
            format!("{{elapsed_precise}} {{wide_bar}} {{human_pos}}/{{human_len}} {what} ({{per_sec}}, ETA {{eta}})"),
        ),
        None => (
            ProgressBar::new_spinner(),
            format!("{{spinner}} {{elapsed_precise}} {{human_pos}} {what} ({{per_sec}})"),
        ),
    };
    pb.set_style(ProgressStyle::with_template(&template).expect("static template"));
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

fn index(a: IndexArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let docs = read_corpus(&a.corpus)?;
    let opts = IndexOptions {
        lang: a.lang,
        analysis: AnalysisOptions {
            stem: !a.no_stem,
            stopwords: a.stopwords,
        },
        threads: a.threads,
    };
    let pb = progress(None, "docs");
    let summary = build_index(&a.index, docs, &opts, &|n| pb.inc(n))
        .with_context(|| format!("indexing {}", a.corpus.display()))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let m = &summary.meta;
    tracing::info!(
        "indexed {} documents ({} tokens, {:.1} per document) into {} in {secs:.2} s ({:.0} docs/s); languages: {}",
        m.docs,
        m.tokens,
        m.tokens as f64 / m.docs.max(1) as f64,
        a.index.display(),
        m.docs as f64 / secs.max(1e-9),
        m.langs
            .iter()
            .map(|(l, n)| format!("{}={n}", if l.is_empty() { "none" } else { l }))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

fn search(a: SearchArgs) -> anyhow::Result<()> {
    let searcher = Bm25Searcher::open(&a.index, Bm25Params { k1: a.k1, b: a.b })?;
    let queries = load_queries(&a.queries)?;
    let start = Instant::now();
    let pb = progress(Some(queries.len() as u64), "queries");
    let run = searcher.search_run(&queries, a.lang.as_deref(), a.k, &|n| pb.inc(n))?;
    pb.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let empty = run.values().filter(|h| h.is_empty()).count();
    polydense_data::trec::write_run(&a.out, &run, &a.tag)?;
    tracing::info!(
        "searched {} queries over {} documents in {secs:.2} s ({:.0} queries/s, k1={} b={}); {} without any hit; run in {}",
        queries.len(),
        searcher.num_docs(),
        queries.len() as f64 / secs.max(1e-9),
        a.k1,
        a.b,
        empty,
        a.out.display()
    );
    Ok(())
}
