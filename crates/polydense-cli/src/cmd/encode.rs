//! `polydense encode`: embed a BEIR corpus or queries file into an embedding store.
//!
//! Input is read and encoded in blocks, each appended to the store as soon as it is encoded,
//! so memory stays bounded whatever the corpus size, and an interrupted run resumes after the
//! last complete block (the store's partial files say how far it got).

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use polydense_data::beir::{read_corpus, read_queries};
use polydense_data::lines::Lines;
use polydense_data::Document;
use polydense_index::{RowId, StoreMetadata, StoreWriter};
use polydense_model::{TextEncoder, TextKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags of `polydense encode`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["corpus", "queries"])))]
pub struct Args {
    /// Model: an HF directory, or a name installed under $POLYDENSE_HOME/models (e5-small).
    #[arg(long, value_name = "DIR|NAME")]
    pub model: String,
    /// A BEIR corpus.jsonl (plain or .gz) to encode as passages (`title text`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub corpus: Option<PathBuf>,
    /// A BEIR queries.jsonl to encode as queries (with the model's query prefix).
    #[arg(long, value_name = "FILE.jsonl")]
    pub queries: Option<PathBuf>,
    /// Output directory: embeddings.safetensors and ids.jsonl, rows in input order.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Discard a partial store left by an interrupted run instead of resuming it.
    #[arg(long)]
    pub restart: bool,
}

/// Encoder flags shared by `encode`, `search` and `retrieve`.
#[derive(clap::Args, Clone)]
pub struct EncoderArgs {
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Truncate texts to this many tokens (default: the model's limit).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Texts read, encoded and written per block; bounds memory and the work lost on a crash.
    #[arg(long, default_value_t = 4096)]
    pub block: usize,
    /// Run the encoder on the first CUDA GPU (needs a build with the `cuda` feature).
    #[arg(long)]
    pub cuda: bool,
    /// Keep the first N dims of each vector, re-normalised (a Matryoshka-trained model or a
    /// compression head from `polydense compress train`; default: all).
    #[arg(long, value_name = "N")]
    pub dim: Option<usize>,
}

impl EncoderArgs {
    /// Resolves and loads the model with these settings.
    pub fn load(&self, model: &str) -> Result<(PathBuf, TextEncoder)> {
        let dir = polydense_model::resolve(model)?;
        let device = polydense_model::device(self.cuda)?;
        let mut enc = TextEncoder::load(&dir, &device)
            .with_context(|| format!("loading the model in {}", dir.display()))?
            .with_batch_size(self.batch_size);
        if let Some(n) = self.max_length {
            enc = enc.with_max_length(n);
        }
        if let Some(d) = self.dim {
            enc = enc.with_dim(d)?;
        }
        Ok((dir, enc))
    }
}

/// The text a passage is encoded from: `title text`, as BEIR's dense retrieval models join
/// them, or the text alone when there is no title.
pub fn passage_text(doc: &Document) -> String {
    if doc.title.is_empty() {
        doc.text.clone()
    } else {
        format!("{} {}", doc.title, doc.text)
    }
}

/// A progress bar with a rate and an ETA, the style every long polydense step uses.
pub fn progress_bar(total: Option<u64>, what: &str) -> ProgressBar {
    let pb = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = format!(
        "{{msg}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {what} \
         ({{per_sec}}, ETA {{eta}})"
    );
    pb.set_style(
        ProgressStyle::with_template(&template)
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

/// Size and modification time: cheap enough to check on every run, and they change whenever
/// a file is rewritten.
pub fn fingerprint(path: &Path) -> Result<String> {
    let m = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(format!("{}:{mtime}", m.len()))
}

/// What identifies an embedding store: the model (and its weights file), the text kind, the
/// length limit and the input. A partial or cached store is reused only when all match.
pub fn store_metadata(
    model_dir: &Path,
    kind: TextKind,
    max_length: Option<usize>,
    input: &Path,
) -> Result<StoreMetadata> {
    let canon = |p: &Path| {
        p.canonicalize()
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let mut m = StoreMetadata::new();
    m.insert("model".into(), canon(model_dir));
    let tower = polydense_model::tower_dir(model_dir, kind);
    let weights = tower.join("model.safetensors");
    if weights.is_file() {
        m.insert("model_weights".into(), fingerprint(&weights)?);
    }
    // A head on the pooled vector (a sentence-transformers Dense module) changes the vectors too.
    for entry in std::fs::read_dir(&tower).into_iter().flatten().flatten() {
        let head = entry.path().join("model.safetensors");
        if entry.file_name().to_string_lossy().ends_with("_Dense") && head.is_file() {
            m.insert("head_weights".into(), fingerprint(&head)?);
        }
    }
    let kind = match kind {
        TextKind::Query => "query",
        TextKind::Passage => "passage",
    };
    m.insert("kind".into(), kind.into());
    m.insert(
        "max_length".into(),
        max_length.map_or("model".into(), |n| n.to_string()),
    );
    m.insert("source".into(), canon(input));
    m.insert("source_fingerprint".into(), fingerprint(input)?);
    Ok(m)
}

/// How much an encoding run did, for logs and reports.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct EncodeStats {
    /// Rows in the finished store.
    pub rows: usize,
    /// Rows encoded by this run (the rest were resumed).
    pub encoded: usize,
    /// Wall time of this run's encoding.
    pub seconds: f64,
}

impl EncodeStats {
    /// Texts per second encoded by this run.
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.encoded as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A stream of `(id, text)` rows, in file order.
pub type TextRows = Box<dyn Iterator<Item = Result<(RowId, String)>>>;

/// The rows of a BEIR corpus or queries file as `(id, text)`, in file order.
pub fn read_texts(path: &Path, kind: TextKind) -> Result<TextRows> {
    Ok(match kind {
        TextKind::Passage => Box::new(read_corpus(path)?.map(|d| {
            let d = d?;
            let text = passage_text(&d);
            Ok((
                RowId {
                    id: d.id,
                    lang: d.lang,
                },
                text,
            ))
        })),
        TextKind::Query => Box::new(read_queries(path)?.map(|q| {
            let q = q?;
            Ok((
                RowId {
                    id: q.id,
                    lang: q.lang,
                },
                q.text,
            ))
        })),
    })
}

/// Encodes every text of `input` into a store in `out`, block by block, resuming a partial
/// store with the same metadata unless `restart`.
pub fn encode_file(
    encoder: &TextEncoder,
    kind: TextKind,
    input: &Path,
    out: &Path,
    metadata: StoreMetadata,
    block: usize,
    restart: bool,
) -> Result<EncodeStats> {
    let block = block.max(1);
    let total = Lines::open(input)?
        .filter(|l| l.as_ref().map_or(true, |(_, s)| !s.trim().is_empty()))
        .count();
    let mut writer = if restart {
        StoreWriter::create(out, encoder.dim(), metadata)?
    } else {
        StoreWriter::resume(out, encoder.dim(), metadata)?
    };
    let resumed = writer.len();
    if resumed > 0 {
        tracing::info!(
            "resuming {}: {resumed} of {total} rows already encoded",
            out.display()
        );
    }
    let what = match kind {
        TextKind::Query => "queries",
        TextKind::Passage => "passages",
    };
    let pb = progress_bar(Some(total as u64), what);
    pb.set_message("encoding");
    pb.set_position(resumed as u64);
    pb.reset_eta();
    let mut texts = read_texts(input, kind)?.skip(resumed);
    let start = Instant::now();
    let mut encoded = 0usize;
    loop {
        let mut ids = Vec::with_capacity(block);
        let mut strs = Vec::with_capacity(block);
        for item in texts.by_ref().take(block) {
            let (id, text) = item?;
            ids.push(id);
            strs.push(text);
        }
        if ids.is_empty() {
            break;
        }
        let refs: Vec<&str> = strs.iter().map(String::as_str).collect();
        let base = (resumed + encoded) as u64;
        let vecs = encoder
            .encode_with_progress(&refs, kind, &mut |done| pb.set_position(base + done as u64))?
            .flatten_all()?
            .to_vec1::<f32>()?;
        writer.append(&ids, &vecs)?;
        encoded += ids.len();
        if pb.is_hidden() {
            // No terminal to draw on (a log file, CI): say how far it got once per block.
            let secs = start.elapsed().as_secs_f64();
            tracing::info!(
                "encoded {}/{total} {what} ({:.1}/s)",
                resumed + encoded,
                encoded as f64 / secs.max(1e-9)
            );
        }
    }
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let rows = writer.len();
    writer.finish()?;
    let stats = EncodeStats {
        rows,
        encoded,
        seconds,
    };
    tracing::info!(
        "encoded {encoded} {what} in {seconds:.1}s ({:.1}/s) into {}",
        stats.per_second(),
        out.display()
    );
    Ok(stats)
}

/// Runs `polydense encode`.
pub fn run(args: Args) -> Result<()> {
    let (input, kind) = match (&args.corpus, &args.queries) {
        (Some(c), None) => (c.clone(), TextKind::Passage),
        (None, Some(q)) => (q.clone(), TextKind::Query),
        _ => unreachable!("clap makes --corpus and --queries exclusive and required"),
    };
    let (model_dir, encoder) = args.encoder.load(&args.model)?;
    let meta = store_metadata(&model_dir, kind, args.encoder.max_length, &input)?;
    encode_file(
        &encoder,
        kind,
        &input,
        &args.out,
        meta,
        args.encoder.block,
        args.restart,
    )?;
    Ok(())
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

    #[test]
    fn needs_exactly_one_input() {
        let ok = Cli::try_parse_from(["x", "--model", "m", "--corpus", "c", "--out", "o"]);
        assert_eq!(ok.unwrap().args.encoder.block, 4096);
        assert!(Cli::try_parse_from(["x", "--model", "m", "--out", "o"]).is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--model",
            "m",
            "--corpus",
            "c",
            "--queries",
            "q",
            "--out",
            "o"
        ])
        .is_err());
    }

    #[test]
    fn passage_text_joins_title_and_text() {
        let mut d = Document {
            id: "1".into(),
            title: "Rust".into(),
            text: "A language.".into(),
            lang: None,
        };
        assert_eq!(passage_text(&d), "Rust A language.");
        d.title.clear();
        assert_eq!(passage_text(&d), "A language.");
    }
}
