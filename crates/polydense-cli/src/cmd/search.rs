//! `polydense search`: encode queries and find their exact inner-product top-k in an
//! embedding store (f32, or f16/int8 from `compress quantize`), written as a TREC run.

use super::encode::{progress_bar, EncoderArgs};
use anyhow::{bail, Context, Result};
use polydense_data::beir::read_queries;
use polydense_data::{Query, Run};
use polydense_index::{DenseIndex, ExactSearch};
use polydense_model::{TextEncoder, TextKind};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Flags of `polydense search`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, or a name installed under $POLYDENSE_HOME/models. Use the one
    /// that encoded the index.
    #[arg(long, value_name = "DIR|NAME")]
    pub model: String,
    /// An embedding store written by `polydense encode --corpus` or `compress quantize`.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// A BEIR queries.jsonl (plain or .gz).
    #[arg(long, value_name = "FILE.jsonl")]
    pub queries: PathBuf,
    /// The TREC run to write (`qid Q0 docid rank score tag`), atomically.
    #[arg(long, value_name = "RUN")]
    pub out: PathBuf,
    /// Hits per query.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// The run's tag column.
    #[arg(long, default_value = "polydense")]
    pub tag: String,
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// How long the two halves of a search took, for logs and reports.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SearchStats {
    /// Queries searched.
    pub queries: usize,
    /// Seconds spent encoding them.
    pub encode_seconds: f64,
    /// Seconds spent in the exact top-k.
    pub search_seconds: f64,
}

/// Encodes `queries` block by block and searches each block exactly, so memory is bounded
/// by one block of query vectors and its hits.
pub fn search_queries(
    encoder: &TextEncoder,
    queries: &[Query],
    store: &DenseIndex,
    k: usize,
    block: usize,
) -> Result<(Run, SearchStats)> {
    if encoder.dim() != store.dim() {
        bail!(
            "the model makes {}-dim vectors but the index in {} holds {}-dim ones \
             (hint: search with the model that encoded the index)",
            encoder.dim(),
            store.dir().display(),
            store.dim()
        );
    }
    let search = ExactSearch::new(k);
    let mut run = Run::new();
    let mut stats = SearchStats {
        queries: queries.len(),
        encode_seconds: 0.0,
        search_seconds: 0.0,
    };
    let pb = progress_bar(Some(queries.len() as u64), "queries");
    pb.set_message("searching");
    for chunk in queries.chunks(block.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|q| q.text.as_str()).collect();
        let t = Instant::now();
        let vecs = encoder
            .encode(&texts, TextKind::Query)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        stats.encode_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits = store.search(&search, &vecs)?;
        stats.search_seconds += t.elapsed().as_secs_f64();
        for (q, hits) in chunk.iter().zip(hits) {
            let ranked = hits
                .into_iter()
                .map(|h| (store.ids()[h.row].id.clone(), f64::from(h.score)))
                .collect();
            run.insert(q.id.clone(), ranked);
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    tracing::info!(
        "{} queries: encoded in {:.2}s, searched {} rows in {:.2}s ({:.0} queries/s)",
        stats.queries,
        stats.encode_seconds,
        store.len(),
        stats.search_seconds,
        stats.queries as f64 / stats.search_seconds.max(1e-9)
    );
    Ok((run, stats))
}

/// Opens a store of any dtype, logging its size and warning when it was encoded by another
/// model than `model_dir`.
pub fn open_store(dir: &Path, model_dir: &Path) -> Result<DenseIndex> {
    let store = DenseIndex::open(dir)
        .with_context(|| format!("opening the embedding index in {}", dir.display()))?;
    let ours = model_dir
        .canonicalize()
        .unwrap_or_else(|_| model_dir.to_path_buf());
    if let Some(theirs) = store.metadata().get("model") {
        if Path::new(theirs) != ours {
            tracing::warn!(
                "the index was encoded with {theirs}, the queries with {}",
                ours.display()
            );
        }
    }
    tracing::info!(
        "index {}: {} rows × {} dims, {}, {:.2} MiB on disk, {:.2} MiB of vectors in memory",
        dir.display(),
        store.len(),
        store.dim(),
        store.dtype(),
        store.disk_bytes()? as f64 / (1u64 << 20) as f64,
        store.vector_bytes() as f64 / (1u64 << 20) as f64
    );
    Ok(store)
}

/// Runs `polydense search`.
pub fn run(args: Args) -> Result<()> {
    let (model_dir, encoder) = args.encoder.load(&args.model)?;
    let store = open_store(&args.index, &model_dir)?;
    let queries: Vec<Query> = read_queries(&args.queries)?.collect::<Result<_, _>>()?;
    let (run, _) = search_queries(&encoder, &queries, &store, args.k, args.encoder.block)?;
    polydense_data::trec::write_run(&args.out, &run, &args.tag)?;
    tracing::info!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Encode(super::super::encode::Args),
        Search(Args),
        #[command(subcommand)]
        Compress(super::super::compress::Command),
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/index/tiny-beir"
    );

    #[test]
    fn encode_then_search_writes_a_ranked_trec_run() {
        let Some(model) = polydense_data::paths::test_model("minilm-l6") else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("polydense-search-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (m, idx, run_path) = (
            model.to_str().unwrap(),
            dir.join("index"),
            dir.join("run.trec"),
        );
        let corpus = format!("{FIXTURE}/corpus.jsonl");
        let queries = format!("{FIXTURE}/queries.jsonl");
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).unwrap().cmd;
        let i = idx.to_str().unwrap();
        if let Cmd::Encode(a) =
            parse(&["x", "encode", "--model", m, "--corpus", &corpus, "--out", i])
        {
            super::super::encode::run(a).unwrap();
        }
        let store = polydense_index::EmbeddingStore::open(&idx).unwrap();
        assert_eq!(store.len(), 6);
        assert_eq!(store.ids()[3].lang.as_deref(), Some("de"));
        let r = run_path.to_str().unwrap();
        if let Cmd::Search(a) = parse(&[
            "x",
            "search",
            "--model",
            m,
            "--index",
            i,
            "--queries",
            &queries,
            "--out",
            r,
            "--k",
            "2",
        ]) {
            run(a).unwrap();
        }
        // The same index in int8: `search` opens it like the f32 one and ranks alike.
        let q8 = dir.join("index-int8");
        if let Cmd::Compress(c) = parse(&[
            "x",
            "compress",
            "quantize",
            "--index",
            i,
            "--dtype",
            "int8",
            "--out",
            q8.to_str().unwrap(),
        ]) {
            super::super::compress::run(c).unwrap();
        }
        let q8_store = DenseIndex::open(&q8).unwrap();
        assert_eq!(q8_store.dtype(), polydense_index::VectorDtype::Int8);
        assert_eq!(q8_store.vector_bytes(), 6 * store.dim() + 4 * store.dim());
        let q8_run = dir.join("run-int8.trec");
        if let Cmd::Search(a) = parse(&[
            "x",
            "search",
            "--model",
            m,
            "--index",
            q8.to_str().unwrap(),
            "--queries",
            &queries,
            "--out",
            q8_run.to_str().unwrap(),
            "--k",
            "2",
        ]) {
            run(a).unwrap();
        }
        for path in [&run_path, &q8_run] {
            let written = polydense_data::trec::read_run(path).unwrap();
            assert_eq!(written.len(), 4, "every query, judged or not, is searched");
            for (q, d) in [("q1", "d1"), ("q2", "d2"), ("q3", "d4"), ("q4", "d6")] {
                let hits = &written[q];
                assert_eq!(hits.len(), 2);
                let best = hits
                    .iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|h| h.0.as_str());
                assert_eq!(best, Some(d), "{}: {q}: {hits:?}", path.display());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
