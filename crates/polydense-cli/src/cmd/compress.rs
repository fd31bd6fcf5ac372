//! `polydense compress train`: fit a compression head (truncate, pca, mrl, smec) on a frozen
//! backbone's vectors of a BEIR split's (query, positive) pairs, and write the backbone with
//! the head as a model directory that `encode`, `search` and `retrieve` use with `--dim`.
//! `polydense compress quantize`: store an encoded index as f16 or int8, which `search`
//! opens like any other.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polydense_data::atomic::write_atomic;
use polydense_data::beir::{load_corpus, load_queries, locate, locate_qrels, read_qrels};
use polydense_index::{
    write_store, DenseIndex, EmbeddingStore, QuantizedStore, RowId, StoreMetadata, VectorDtype,
};
use polydense_model::{TextEncoder, TextKind};
use polydense_train::compress::{fit_head, save_head_model, CompressConfig, Pairs};

use super::encode::{fingerprint, passage_text, progress_bar, EncoderArgs};

/// Subcommands of `polydense compress`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Train a compression head on a frozen encoder and save the model with it.
    Train(TrainArgs),
    /// Store an embedding index as f16 or int8 (a scale per dim) for `search`.
    Quantize(QuantizeArgs),
}

/// Flags of `polydense compress quantize`.
#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// An embedding store written by `polydense encode --corpus` (any --dim).
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,
    /// How to store each value: f16, or int8 with a scale per dimension.
    #[arg(long, default_value = "int8")]
    pub dtype: VectorDtype,
    /// The directory to write the compressed store to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Flags of `polydense compress train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The config (TOML): model, data, split, out, cache, max_length and a [head] table.
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// Write the model here instead of the config's `out`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Texts per forward pass when encoding the pairs.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

/// Runs `polydense compress`.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => train(a),
        Command::Quantize(a) => quantize(a),
    }
}

fn quantize(args: QuantizeArgs) -> Result<()> {
    let source = EmbeddingStore::open(&args.index)
        .with_context(|| format!("opening the embedding index in {}", args.index.display()))?;
    QuantizedStore::write(&source, &args.out, args.dtype)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let before = DenseIndex::F32(source);
    let after = DenseIndex::open(&args.out)?;
    let mib = |b: f64| b / (1u64 << 20) as f64;
    println!(
        "{} rows × {} dims: f32 {:.2} MiB on disk, {:.2} MiB of vectors → {} {:.2} MiB on \
         disk, {:.2} MiB in memory ({:.1}× smaller); wrote {}",
        after.len(),
        after.dim(),
        mib(before.disk_bytes()? as f64),
        mib(before.vector_bytes() as f64),
        after.dtype(),
        mib(after.disk_bytes()? as f64),
        mib(after.vector_bytes() as f64),
        before.vector_bytes() as f64 / after.vector_bytes().max(1) as f64,
        args.out.display()
    );
    Ok(())
}

fn train(args: TrainArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let mut config: CompressConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", args.config.display()))?;
    if let Some(out) = args.out {
        config.out = out;
    }
    let encoder_args = EncoderArgs {
        batch_size: args.batch_size,
        max_length: config.max_length,
        block: 4096,
        cuda: false,
        dim: None,
    };
    let (backbone, encoder) = encoder_args.load(&config.model)?;
    if encoder.encoder().head().is_some() {
        bail!(
            "{} already has a head; train compression heads on a backbone without one",
            backbone.display()
        );
    }
    config.head.validate(encoder.dim())?;
    let (queries, passages, qids, ids) = pair_vectors(&config, &backbone, &encoder)?;
    let pairs = Pairs {
        queries: &queries,
        passages: &passages,
        query_ids: &qids,
        passage_ids: &ids,
        dim: encoder.dim(),
    };
    tracing::info!(
        "fitting a {} head on {} pairs of {}-dim vectors",
        config.head.kind(),
        pairs.len(),
        pairs.dim
    );
    let head = fit_head(&config.head, &pairs, &mut |_, _| {})?;
    save_head_model(&backbone, &head, &config.out)?;
    let report = serde_json::json!({
        "kind": head.kind,
        "backbone": backbone.display().to_string(),
        "data": config.data.display().to_string(),
        "split": config.split,
        "pairs": pairs.len(),
        "dims": head.dims,
        "seconds": head.seconds,
        "stages": head.stages,
        "config": config.head,
    });
    let json = serde_json::to_string_pretty(&report)?;
    write_atomic(config.out.join("compress.json"), |w| writeln!(w, "{json}"))?;
    println!(
        "{} head fitted in {:.1} s on {} pairs; model written to {} (use --dim N)",
        head.kind,
        head.seconds,
        pairs.len(),
        config.out.display()
    );
    for s in &head.stages {
        println!(
            "  stage at {} dims: {} steps, loss {:.4} -> {:.4}",
            s.dim, s.steps, s.first_loss, s.last_loss
        );
    }
    Ok(())
}

/// Query vectors, passage vectors (row-major), query ids and passage ids, row for row.
type PairVectors = (Vec<f32>, Vec<f32>, Vec<String>, Vec<String>);

/// The backbone's vectors of every judged (query, relevant passage) pair of the split, row
/// for row, with the query and passage ids; the query and passage vectors are cached in the config's
/// cache directory and reused when model, texts and split match.
fn pair_vectors(
    config: &CompressConfig,
    backbone: &Path,
    encoder: &TextEncoder,
) -> Result<PairVectors> {
    let qrels = read_qrels(locate_qrels(&config.data, &config.split)?)?;
    let queries_path = locate(&config.data, "queries.jsonl")?;
    let corpus_path = locate(&config.data, "corpus.jsonl")?;
    let queries: BTreeMap<String, String> = load_queries(&queries_path)?
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .map(|q| (q.id, q.text))
        .collect();
    let wanted: std::collections::BTreeSet<&str> = qrels
        .values()
        .flat_map(|docs| docs.iter().filter(|(_, &r)| r > 0).map(|(d, _)| d.as_str()))
        .collect();
    let docs: BTreeMap<String, String> = load_corpus(&corpus_path)?
        .into_iter()
        .filter(|d| wanted.contains(d.id.as_str()))
        .map(|d| (d.id.clone(), passage_text(&d)))
        .collect();
    let cache = config.cache_dir();
    let meta = |kind: &str, input: &Path| -> Result<StoreMetadata> {
        let mut m = StoreMetadata::new();
        let weights = backbone.join("model.safetensors");
        m.insert("model_weights".into(), fingerprint(&weights)?);
        m.insert("kind".into(), kind.into());
        m.insert("split".into(), config.split.clone());
        m.insert("source_fingerprint".into(), fingerprint(input)?);
        m.insert(
            "max_length".into(),
            config.max_length.map_or("model".into(), |n| n.to_string()),
        );
        Ok(m)
    };
    let qvec = cached(
        encoder,
        &cache.join(format!("queries-{}", config.split)),
        meta("query", &queries_path)?,
        &queries,
        TextKind::Query,
    )?;
    let pvec = cached(
        encoder,
        &cache.join(format!("passages-{}", config.split)),
        meta("passage", &corpus_path)?,
        &docs,
        TextKind::Passage,
    )?;
    let d = encoder.dim();
    let (mut q, mut p, mut qids, mut ids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (qid, judged) in &qrels {
        let Some(qv) = qvec.get(qid.as_str()) else {
            continue;
        };
        for (doc, &rel) in judged {
            if let (true, Some(pv)) = (rel > 0, pvec.get(doc.as_str())) {
                q.extend_from_slice(&qv[..d]);
                p.extend_from_slice(&pv[..d]);
                qids.push(qid.clone());
                ids.push(doc.clone());
            }
        }
    }
    if ids.is_empty() {
        bail!(
            "no (query, relevant passage) pair of split `{}` in {}",
            config.split,
            config.data.display()
        );
    }
    Ok((q, p, qids, ids))
}

/// Vectors of `texts` (id → text), from the store in `dir` when it matches `meta` and the
/// ids, else encoded and stored there.
fn cached<'a>(
    encoder: &TextEncoder,
    dir: &Path,
    meta: StoreMetadata,
    texts: &'a BTreeMap<String, String>,
    kind: TextKind,
) -> Result<HashMap<&'a str, Vec<f32>>> {
    let ids: Vec<RowId> = texts.keys().map(|k| RowId::new(k.clone())).collect();
    let d = encoder.dim();
    let rows: Vec<f32> = match EmbeddingStore::open(dir) {
        Ok(s)
            if s.ids() == ids.as_slice()
                && meta.iter().all(|(k, v)| s.metadata().get(k) == Some(v)) =>
        {
            tracing::info!("reusing {}", dir.display());
            s.embeddings().to_vec()
        }
        _ => {
            let refs: Vec<&str> = texts.values().map(String::as_str).collect();
            let pb = progress_bar(Some(refs.len() as u64), "texts");
            pb.set_message(format!("encoding {} {:?} texts", refs.len(), kind));
            let v = encoder
                .encode_with_progress(&refs, kind, &mut |n| pb.set_position(n as u64))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            pb.finish_and_clear();
            write_store(dir, &ids, &v, d, meta)?;
            v
        }
    };
    Ok(texts
        .keys()
        .zip(rows.chunks(d))
        .map(|(k, r)| (k.as_str(), r.to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/index/tiny-beir"
    );

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Parser)]
    struct Retrieve {
        #[command(flatten)]
        args: super::super::retrieve::Args,
    }

    /// Trains two heads on the fixture and evaluates them at several dims; the second head
    /// reuses the backbone vectors the first one cached. Needs the installed MiniLM.
    #[test]
    fn heads_train_save_and_retrieve_at_every_dim_from_one_cache() {
        let Some(model) = polydense_data::paths::test_model("minilm-l6") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let head = |name: &str, body: &str| {
            let config = dir.path().join(format!("{name}.toml"));
            std::fs::write(
                &config,
                format!(
                    "model = {model:?}\ndata = {FIXTURE:?}\nsplit = \"test\"\nout = {:?}\n\n[head]\n{body}\n",
                    dir.path().join(name).join("model")
                ),
            )
            .unwrap();
            let cli =
                Cli::try_parse_from(["compress", "train", "--config", config.to_str().unwrap()])
                    .unwrap();
            run(cli.command).unwrap();
            dir.path().join(name).join("model")
        };
        let mrl = head(
            "mrl",
            "kind = \"mrl\"\ndims = [96, 24]\nbatch_size = 2\nepochs = 1",
        );
        let truncate = head("truncate", "kind = \"truncate\"");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(mrl.join("compress.json")).unwrap())
                .unwrap();
        assert_eq!(report["pairs"], 3);
        assert_eq!(report["dims"], serde_json::json!([96, 24]));
        // The pair vectors are cached beside the model (the default cache).
        assert!(EmbeddingStore::exists(
            dir.path().join("mrl/embeddings/queries-test")
        ));

        let cache = dir.path().join("cache");
        let retrieve = |m: &Path, out: &str, extra: &[&str]| {
            let mut argv = vec![
                "retrieve",
                "--model",
                m.to_str().unwrap(),
                "--data",
                FIXTURE,
                "--k",
                "3",
                "--cache",
                cache.to_str().unwrap(),
                "--out",
            ];
            let out = dir.path().join(out);
            argv.push(out.to_str().unwrap());
            argv.extend_from_slice(extra);
            run_retrieve(&argv);
            out
        };
        let a = retrieve(&truncate, "eval-truncate", &["--dims", "384,96,24"]);
        let b = retrieve(
            &mrl,
            "eval-mrl",
            &["--dims", "384,96,24", "--dtype", "int8"],
        );
        let dims = |out: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(out.join("dims.json")).unwrap()).unwrap()
        };
        let (da, db) = (dims(&a), dims(&b));
        assert_eq!(da.as_array().unwrap().len(), 3);
        assert_eq!(db[2]["dim"], 24);
        assert_eq!(db[2]["dtype"], "int8");
        assert_eq!(db[2]["index_bytes"], 6 * 24 + 24 * 4);
        assert_eq!(da[1]["index_bytes"], 6 * 96 * 4);
        // The second head encoded nothing: the backbone's vectors were in the shared cache.
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(b.join("dim-96/summary.json")).unwrap())
                .unwrap();
        assert!(summary["corpus_encoding"].is_null(), "{summary}");
        assert_eq!(summary["search"]["encode_seconds"], 0.0);
        // The identity head at full width is the plain model.
        let plain = retrieve(&model, "eval-plain", &[]);
        let run = |p: PathBuf| polydense_data::trec::read_run(p).unwrap();
        let (x, y) = (run(plain.join("run.trec")), run(a.join("dim-384/run.trec")));
        for (q, hits) in &x {
            let ids = |h: &Vec<(String, f64)>| h.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>();
            assert_eq!(ids(hits), ids(&y[q]));
        }
    }

    fn run_retrieve(argv: &[&str]) {
        let args = Retrieve::try_parse_from(argv).unwrap().args;
        super::super::retrieve::run(args).unwrap();
    }
}
