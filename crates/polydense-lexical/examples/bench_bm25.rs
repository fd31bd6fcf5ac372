//! Speed and agreement benchmark driver, run by `bench/bm25.sh`: indexes a BEIR corpus,
//! searches its queries for the top 100, and writes the analysed tokens and the top 10 so
//! that Python peers (bm25s, rank_bm25) can be timed and compared on identical tokens.
//!
//! Usage: bench_bm25 CORPUS.jsonl QUERIES.jsonl WORKDIR [K]

use polydense_data::beir::{load_corpus, load_queries};
use polydense_lexical::index::indexed_text;
use polydense_lexical::{build_index, Analyzers, Bm25Params, Bm25Searcher, IndexOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: bench_bm25 CORPUS.jsonl QUERIES.jsonl WORKDIR [K]".into());
    }
    let work = PathBuf::from(&args[3]);
    let k: usize = args.get(4).map_or(Ok(100), |s| s.parse())?;
    let corpus = load_corpus(&args[1])?;
    let queries = load_queries(&args[2])?;
    let opts = IndexOptions::default();

    // The tokens every system sees: our analysis, per document language.
    let mut an = Analyzers::new(opts.analysis);
    let mut f = std::io::BufWriter::new(std::fs::File::create(work.join("corpus.tok"))?);
    for d in &corpus {
        writeln!(
            f,
            "{}\t{}",
            d.id,
            an.terms(&indexed_text(d), d.lang.as_deref()).join(" ")
        )?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(work.join("queries.tok"))?);
    for q in &queries {
        writeln!(
            f,
            "{}\t{}",
            q.id,
            an.terms(&q.text, q.lang.as_deref()).join(" ")
        )?;
    }
    drop(f);

    // Best of three, like the Python side.
    let index = work.join("index");
    let mut index_s = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        build_index(&index, corpus.iter().cloned().map(Ok), &opts, &|_| {})?;
        index_s = index_s.min(t.elapsed().as_secs_f64());
    }
    let searcher = Bm25Searcher::open(&index, Bm25Params::default())?;
    let mut search_s = f64::INFINITY;
    let mut hits = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        hits = searcher.search_queries(&queries, None, k, &|_| {})?;
        search_s = search_s.min(t.elapsed().as_secs_f64());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(work.join("top10.polydense"))?);
    for (q, h) in queries.iter().zip(&hits) {
        let ids: Vec<&str> = h.iter().take(10).map(|h| h.docid.as_str()).collect();
        writeln!(f, "{}\t{}", q.id, ids.join(" "))?;
    }
    println!(
        "polydense: {} threads: index {} docs in {index_s:.3}s = {:.0} docs/s (analysis included); \
         search {} queries top-{k} in {search_s:.3}s = {:.0} queries/s",
        rayon::current_num_threads(),
        corpus.len(),
        corpus.len() as f64 / index_s,
        queries.len(),
        queries.len() as f64 / search_s
    );
    Ok(())
}
