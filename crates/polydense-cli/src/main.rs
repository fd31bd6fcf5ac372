//! The `polydense` command-line program: parses arguments and calls the library crates.

use clap::{Parser, Subcommand};

mod alloc;
mod cmd;
mod demo;
mod report;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train, evaluate and serve multilingual dense retrievers.
#[derive(Parser)]
#[command(name = "polydense", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Prepare or download datasets (XQuAD-R).
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Score a TREC run against qrels, overall and per language, or compare two runs.
    Eval(cmd::eval::Args),
    /// Build and query multilingual BM25 indexes.
    #[command(subcommand)]
    Bm25(cmd::bm25::Command),
    /// Mine hard negatives into a training file.
    Mine(cmd::mine::Args),
    /// Check an LLM backend, or ask it a prompt by hand.
    #[command(subcommand)]
    Llm(cmd::llm::Command),
    /// Import and inspect encoder models.
    #[command(subcommand)]
    Model(cmd::model::Command),
    /// Embed a corpus or queries with an encoder.
    Encode(cmd::encode::Args),
    /// Exact inner-product search of queries over an embedding index.
    Search(cmd::search::Args),
    /// Encode, search and evaluate a BEIR directory in one go.
    Retrieve(cmd::retrieve::Args),
    /// Fine-tune a dual encoder with contrastive losses and hard negatives.
    Train(cmd::train::Args),
    /// Train compression heads (PCA, Matryoshka adaptor, SMEC) on a frozen encoder.
    #[command(subcommand)]
    Compress(cmd::compress::Command),
    /// Write a run directory's self-contained HTML report with its plots.
    Report(cmd::report::Args),
    /// Run the whole pipeline on XQuAD-R and e5-small: baselines, mining, fine-tune, report.
    Demo(cmd::demo::Args),
}

fn main() {
    alloc::keep_freed_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POLYDENSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
    if let Err(e) = dispatch(Cli::parse().command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Runs one subcommand; the demo calls it for each of its stages.
pub(crate) fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Data(c) => cmd::data::run(c),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Bm25(c) => cmd::bm25::run(c),
        Command::Mine(a) => cmd::mine::run(a),
        Command::Llm(c) => cmd::llm::run(c),
        Command::Model(c) => cmd::model::run(c),
        Command::Encode(a) => cmd::encode::run(a),
        Command::Search(a) => cmd::search::run(a),
        Command::Retrieve(a) => cmd::retrieve::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Compress(c) => cmd::compress::run(c),
        Command::Report(a) => cmd::report::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    }
}
