//! `polydense retrieve`: encode a BEIR corpus (cached), search its queries exactly, and
//! evaluate the run overall and per query language, at one or several dims (prefixes of the
//! vectors, for Matryoshka models and compression heads) and in a chosen index dtype.
//!
//! A model whose head is linear (a compression head) is split: the backbone's vectors are
//! cached and the head is applied to them in memory, so heads trained on one backbone share
//! one cache (`--cache`) and evaluating another head encodes nothing.

use super::encode::{encode_file, progress_bar, store_metadata, EncodeStats, EncoderArgs};
use super::first_hit::{Evaluation, FirstHitArgs};
use super::search::SearchStats;
use anyhow::{bail, Context, Result};
use polydense_data::atomic::write_atomic;
use polydense_data::beir::{load_queries, locate, locate_qrels, read_qrels_checked};
use polydense_data::{Query, Run};
use polydense_eval::{
    evaluate, first_hit_table, parse_metrics, EvalOptions, FirstHits, Report, DEFAULT_METRICS,
};
use polydense_index::{
    search_within_lang, write_store, EmbeddingStore, ExactSearch, QuantizedMatrix, RowId,
    StoreMetadata, VectorDtype,
};
use polydense_model::{TextEncoder, TextKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Flags of `polydense retrieve`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: an HF directory, or a name installed under $POLYDENSE_HOME/models (e5-small).
    #[arg(long, value_name = "DIR|NAME")]
    pub model: String,
    /// A BEIR directory: corpus.jsonl, queries.jsonl and qrels/{split}.tsv (.gz is fine).
    #[arg(long, value_name = "BEIR_DIR")]
    pub data: PathBuf,
    /// The qrels split to evaluate; only the queries it judges are searched.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Hits per query.
    #[arg(long, default_value_t = 100)]
    pub k: usize,
    /// Output directory: run.trec, metrics.json, summary.json, and the corpus embeddings
    /// (reused by the next run with the same model and corpus). Default:
    /// runs/retrieve/<dataset>-<model>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Comma-separated metrics (see `polydense eval --help`).
    #[arg(long, default_value = DEFAULT_METRICS)]
    pub metrics: String,
    /// Re-encode the corpus even when cached embeddings match.
    #[arg(long)]
    pub restart: bool,
    /// Evaluate at each of these dims (comma-separated prefixes, e.g. 384,192,96,48,24):
    /// one table each, and run files under <out>/dim-N/. Default: --dim, or all dims.
    #[arg(long, value_delimiter = ',', value_name = "N,N,..")]
    pub dims: Vec<usize>,
    /// How the corpus vectors are stored for the search: f32, f16 or int8 (a scale per
    /// dim); the index size is reported.
    #[arg(long, default_value = "f32")]
    pub dtype: VectorDtype,
    /// Where the corpus and query embeddings are cached (default: the output directory);
    /// runs of heads on the same backbone can share one.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Search each query only among the documents in its language: the monolingual task on
    /// a pooled corpus (give it qrels that judge only same-language documents), reusing the
    /// pooled corpus's cached vectors.
    #[arg(long)]
    pub same_lang: bool,
    #[command(flatten)]
    pub first_hit: FirstHitArgs,
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// What `summary.json` records about a retrieve run.
#[derive(Serialize)]
struct Summary<'a> {
    model: String,
    data: String,
    split: &'a str,
    k: usize,
    corpus_rows: usize,
    /// None when the cached corpus embeddings were reused.
    corpus_encoding: Option<EncodeStats>,
    search: SearchStats,
    dim: usize,
    dtype: VectorDtype,
    /// Bytes of the searched corpus vectors in that dtype.
    index_bytes: usize,
    report: &'a Report,
    /// What each query's first hit is (with --first-hit).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_hit: Option<&'a FirstHits>,
}

/// One dim's line in `dims.json`.
#[derive(Serialize)]
struct DimResult<'a> {
    dim: usize,
    dtype: VectorDtype,
    index_bytes: usize,
    report: &'a Report,
}

fn default_out(data: &Path, model: &str) -> PathBuf {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let data = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let parent = data.parent().map(name).unwrap_or_default();
    let dataset = if parent.is_empty() {
        name(&data)
    } else {
        format!("{parent}-{}", name(&data))
    };
    PathBuf::from("runs/retrieve").join(format!("{dataset}-{}", name(Path::new(model))))
}

/// Whether the cached store was made from the same model, settings and corpus.
fn cache_matches(store: &EmbeddingStore, wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(k, v)| store.metadata().get(k) == Some(v))
}

/// Runs `polydense retrieve`.
pub fn run(args: Args) -> Result<()> {
    let metrics = parse_metrics(&args.metrics)?;
    let corpus_path = locate(&args.data, "corpus.jsonl")?;
    let queries_path = locate(&args.data, "queries.jsonl")?;
    let qrels_path = locate_qrels(&args.data, &args.split)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.data, &args.model));
    let cache = args.cache.clone().unwrap_or_else(|| out.clone());
    let mut encoder_args = args.encoder.clone();
    encoder_args.dim = None;
    let (model_dir, mut encoder) = encoder_args.load(&args.model)?;
    let head = encoder.take_linear_head();
    let full = match &head {
        Some(h) => h.out_features(),
        None => encoder.dim(),
    };
    let dims = match (args.dims.is_empty(), args.encoder.dim) {
        (false, _) => args.dims.clone(),
        (true, Some(d)) => vec![d],
        (true, None) => vec![full],
    };
    if let Some(&d) = dims.iter().find(|&&d| d == 0 || d > full) {
        bail!("--dims {d}: the model's vectors have {full} dims (choose 1..={full})");
    }
    let normalize = encoder.pooling().normalize;
    let key = |kind, input: &Path| -> Result<StoreMetadata> {
        let mut m = store_metadata(&model_dir, kind, args.encoder.max_length, input)?;
        if head.is_some() {
            // The backbone's vectors: any head on the same weights may reuse them.
            m.remove("model");
            m.remove("head_weights");
            m.insert("vectors".into(), "backbone".into());
        }
        Ok(m)
    };

    let emb_dir = cache.join("corpus-embeddings");
    let meta = key(TextKind::Passage, &corpus_path)?;
    let cached = !args.restart
        && EmbeddingStore::exists(&emb_dir)
        && EmbeddingStore::open(&emb_dir).is_ok_and(|s| cache_matches(&s, &meta));
    let corpus_encoding = if cached {
        tracing::info!("reusing the corpus embeddings in {}", emb_dir.display());
        None
    } else {
        Some(encode_file(
            &encoder,
            TextKind::Passage,
            &corpus_path,
            &emb_dir,
            meta,
            args.encoder.block,
            args.restart,
        )?)
    };
    let store = EmbeddingStore::open(&emb_dir)?;

    let queries = load_queries(&queries_path)?;
    let qrels = {
        let qids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
        let dids: HashSet<&str> = store.ids().iter().map(|r| r.id.as_str()).collect();
        read_qrels_checked(&qrels_path, Some(&qids), Some(&dids))?
    };
    // Only judged queries, as BEIR's loader keeps them: the others cannot be scored.
    let queries: Vec<Query> = queries
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    if queries.is_empty() {
        bail!(
            "{} judges no query of {}",
            qrels_path.display(),
            queries_path.display()
        );
    }
    let mut qmeta = key(TextKind::Query, &queries_path)?;
    qmeta.insert("split".into(), args.split.clone());
    let (query_vecs, encode_seconds) = query_vectors(
        &encoder,
        &queries,
        &cache.join(format!("query-embeddings-{}", args.split)),
        qmeta,
        args.restart,
    )?;
    let (mut queries_m, mut corpus_m) = (query_vecs, store.embeddings().to_vec());
    if let Some(w) = &head {
        queries_m = w.forward_rows(&queries_m)?;
        corpus_m = w.forward_rows(&corpus_m)?;
    }
    let langs: BTreeMap<String, String> = queries
        .iter()
        .filter_map(|q| q.lang.clone().map(|l| (q.id.clone(), l)))
        .collect();
    let doc_langs: BTreeMap<String, String> = store
        .ids()
        .iter()
        .filter_map(|r| r.lang.clone().map(|l| (r.id.clone(), l)))
        .collect();
    if args.same_lang && (langs.len() < queries.len() || doc_langs.len() < store.len()) {
        bail!(
            "--same-lang needs a `lang` on every query and document; {} of {} queries and {} \
             of {} documents have one",
            langs.len(),
            queries.len(),
            doc_langs.len(),
            store.len()
        );
    }
    let several = !args.dims.is_empty();
    let mut results = Vec::new();
    for &d in &dims {
        let qd = prefix(&queries_m, full, d, normalize);
        let corpus_d = prefix(&corpus_m, full, d, normalize);
        let index = QuantizedMatrix::quantize(&corpus_d, d, args.dtype)?;
        let t = std::time::Instant::now();
        let search = ExactSearch::new(args.k);
        let hits = match args.same_lang {
            false => index.search(&search, &qd, Some(store.id_ranks()))?,
            true => {
                let row_langs: Vec<Option<&str>> =
                    store.ids().iter().map(|r| r.lang.as_deref()).collect();
                let query_langs: Vec<Option<&str>> =
                    queries.iter().map(|q| q.lang.as_deref()).collect();
                search_within_lang(
                    &search,
                    &corpus_d,
                    &row_langs,
                    store.id_ranks(),
                    &qd,
                    &query_langs,
                    d,
                    args.dtype,
                )?
            }
        };
        let search_seconds = t.elapsed().as_secs_f64();
        let mut run = Run::new();
        for (q, hits) in queries.iter().zip(hits) {
            let ranked = hits
                .into_iter()
                .map(|h| (store.ids()[h.row].id.clone(), f64::from(h.score)))
                .collect();
            run.insert(q.id.clone(), ranked);
        }
        let dir = match several {
            true => out.join(format!("dim-{d}")),
            false => out.clone(),
        };
        let run_path = dir.join("run.trec");
        polydense_data::trec::write_run(&run_path, &run, "polydense")?;
        let scores = evaluate(&qrels, &run, &metrics, &EvalOptions::default())
            .with_context(|| format!("evaluating {}", run_path.display()))?;
        let report = Report::new(&scores, (!langs.is_empty()).then_some(&langs));
        let first_hit = args.first_hit.analyse(&qrels, &run, &langs, &doc_langs);
        let evaluation = Evaluation {
            report: &report,
            first_hit: first_hit.as_ref(),
        };
        let json = serde_json::to_string_pretty(&evaluation)?;
        write_atomic(dir.join("metrics.json"), |w| writeln!(w, "{json}"))?;
        let summary = Summary {
            model: model_dir.display().to_string(),
            data: args.data.display().to_string(),
            split: &args.split,
            k: args.k,
            corpus_rows: store.len(),
            corpus_encoding,
            search: SearchStats {
                queries: queries.len(),
                encode_seconds,
                search_seconds,
            },
            dim: d,
            dtype: args.dtype,
            index_bytes: index.bytes(),
            report: &report,
            first_hit: first_hit.as_ref(),
        };
        let json = serde_json::to_string_pretty(&summary)?;
        write_atomic(dir.join("summary.json"), |w| writeln!(w, "{json}"))?;
        if several || d != full || args.dtype != VectorDtype::F32 {
            println!(
                "== {d} dims, {} index: {:.1} MiB ==",
                args.dtype,
                index.bytes() as f64 / (1 << 20) as f64
            );
        }
        print!("{}", report.to_table());
        if let Some(f) = &first_hit {
            print!("{}", first_hit_table(f));
        }
        tracing::info!("wrote {} and metrics.json", run_path.display());
        results.push((d, index.bytes(), report));
    }
    if several {
        let lines: Vec<DimResult> = results
            .iter()
            .map(|(dim, bytes, report)| DimResult {
                dim: *dim,
                dtype: args.dtype,
                index_bytes: *bytes,
                report,
            })
            .collect();
        let json = serde_json::to_string_pretty(&lines)?;
        write_atomic(out.join("dims.json"), |w| writeln!(w, "{json}"))?;
    }
    Ok(())
}

/// The vectors of `queries` (cached in `dir` under `meta`) and the seconds spent encoding
/// them (0 when cached).
fn query_vectors(
    encoder: &TextEncoder,
    queries: &[Query],
    dir: &Path,
    meta: StoreMetadata,
    restart: bool,
) -> Result<(Vec<f32>, f64)> {
    let ids: Vec<RowId> = queries.iter().map(|q| RowId::new(q.id.clone())).collect();
    if !restart && EmbeddingStore::exists(dir) {
        if let Ok(s) = EmbeddingStore::open(dir) {
            if cache_matches(&s, &meta) && s.ids() == ids.as_slice() {
                tracing::info!("reusing the query embeddings in {}", dir.display());
                return Ok((s.embeddings().to_vec(), 0.0));
            }
        }
    }
    let t = std::time::Instant::now();
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let pb = progress_bar(Some(texts.len() as u64), "queries");
    pb.set_message("encoding queries");
    let vecs = encoder
        .encode_with_progress(&texts, TextKind::Query, &mut |n| pb.set_position(n as u64))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    pb.finish_and_clear();
    let seconds = t.elapsed().as_secs_f64();
    write_store(dir, &ids, &vecs, encoder.dim(), meta)?;
    Ok((vecs, seconds))
}

/// The first `d` of every `width` values, re-normalised when the model normalises.
fn prefix(x: &[f32], width: usize, d: usize, normalize: bool) -> Vec<f32> {
    x.chunks(width)
        .flat_map(|row| {
            let row = &row[..d];
            let norm = match normalize {
                true => row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12),
                false => 1.0,
            };
            row.iter().map(move |v| v / norm)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/index/tiny-beir"
    );

    /// A directory removed when the test ends, pass or fail.
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The installed all-MiniLM-L6-v2; a missing one fails under `scripts/test` and CI.
    fn minilm() -> Option<PathBuf> {
        polydense_data::paths::test_model("minilm-l6")
    }

    #[test]
    fn retrieves_evaluates_and_reuses_cached_embeddings() {
        let Some(model) = minilm() else { return };
        let out_dir =
            std::env::temp_dir().join(format!("polydense-retrieve-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out_dir);
        let out = TempDir(out_dir);
        let argv = |extra: &[&str]| {
            let mut v = vec![
                "retrieve",
                "--model",
                model.to_str().unwrap(),
                "--data",
                FIXTURE,
                "--k",
                "3",
                "--block",
                "2",
                "--out",
                out.path().to_str().unwrap(),
            ];
            v.extend_from_slice(extra);
            Cli::try_parse_from(v).unwrap().args
        };
        run(argv(&[])).unwrap();
        let report: Report = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("metrics.json")).unwrap(),
        )
        .unwrap();
        // Each query paraphrases exactly one passage; an English sentence encoder must rank
        // it first.
        assert_eq!(report.overall.get("mrr@10"), Some(1.0), "{report:?}");
        assert_eq!(report.num_queries.overall, 3);
        assert_eq!(report.per_lang.keys().collect::<Vec<_>>(), vec!["de", "en"]);
        let written = polydense_data::trec::read_run(out.path().join("run.trec")).unwrap();
        assert!(written.values().all(|hits| hits.len() == 3));

        let emb = out.path().join("corpus-embeddings/embeddings.safetensors");
        let before = std::fs::metadata(&emb).unwrap().modified().unwrap();
        run(argv(&[])).unwrap();
        assert_eq!(std::fs::metadata(&emb).unwrap().modified().unwrap(), before);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        assert!(summary["corpus_encoding"].is_null());

        // The streamed store holds what encoding the texts in one call gives.
        let store = EmbeddingStore::open(out.path().join("corpus-embeddings")).unwrap();
        let (_, enc) = argv(&[]).encoder.load(model.to_str().unwrap()).unwrap();
        let texts: Vec<String> = super::super::encode::read_texts(
            &PathBuf::from(FIXTURE).join("corpus.jsonl"),
            TextKind::Passage,
        )
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let direct = enc
            .encode(&refs, TextKind::Passage)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(store.len(), texts.len());
        for (a, b) in store.embeddings().iter().zip(&direct) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn missing_split_is_a_clear_error() {
        let args = Cli::try_parse_from([
            "retrieve", "--model", "none", "--data", FIXTURE, "--split", "nope",
        ])
        .unwrap()
        .args;
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("no qrels for split `nope`"), "{err}");
        assert!(err.contains("the splits here are: test"), "{err}");
    }

    #[test]
    fn a_two_tower_model_retrieves_with_each_tower_for_its_texts() {
        let Some(model) = minilm() else { return };
        let out_dir =
            std::env::temp_dir().join(format!("polydense-two-tower-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out_dir);
        let out = TempDir(out_dir);
        // Two towers from one checkpoint that embed differently: the passage tower reads a
        // prefix the query tower does not add.
        let dev = polydense_model::device(false).unwrap();
        let query = polydense_model::Encoder::load(&model, &dev).unwrap();
        let passage = polydense_model::Encoder::load(&model, &dev)
            .unwrap()
            .with_prompts(polydense_model::Prompts {
                query: String::new(),
                passage: "document: ".into(),
            })
            .unwrap();
        let two = out.path().join("model");
        polydense_train::DualEncoder::separate(query, passage)
            .save(&two)
            .unwrap();
        assert!(polydense_model::is_two_tower(&two));
        let enc = polydense_model::TextEncoder::load(&two, &dev).unwrap();
        assert!(enc.is_two_tower());
        let texts = ["Rivers run to the sea.", "Bread is baked."];
        let vecs = |e: &polydense_model::TextEncoder, kind| {
            e.encode(&texts, kind)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let tower = |sub: &str| polydense_model::TextEncoder::load(&two.join(sub), &dev).unwrap();
        assert_eq!(
            vecs(&enc, TextKind::Passage),
            vecs(&tower("passage"), TextKind::Passage)
        );
        assert_eq!(
            vecs(&enc, TextKind::Query),
            vecs(&tower("query"), TextKind::Query)
        );
        assert_ne!(
            vecs(&enc, TextKind::Passage),
            vecs(&tower("query"), TextKind::Passage)
        );
        // The whole retrieve command takes the directory as a model.
        let args = Cli::try_parse_from([
            "retrieve",
            "--model",
            two.to_str().unwrap(),
            "--data",
            FIXTURE,
            "--k",
            "3",
            "--out",
            out.path().join("run").to_str().unwrap(),
        ])
        .unwrap()
        .args;
        run(args).unwrap();
        let report: Report = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("run/metrics.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report.num_queries.overall, 3);
        assert!(report.overall.get("mrr@10").unwrap() > 0.5, "{report:?}");
    }
}
