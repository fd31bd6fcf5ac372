//! Loads an HF model directory, sets E5-style prompts, saves it with polydense, and encodes
//! texts from a JSON list as queries with the saved copy. `scripts/make_minilm_fixture.py`
//! uses it to check that sentence-transformers loads what polydense writes.
//!
//! Usage: resave SRC_DIR DST_DIR TEXTS_JSON OUT_JSON

use std::path::Path;

use candle_core::Device;
use polydense_model::{Encoder, Prompts, TextEncoder, TextKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: resave SRC_DIR DST_DIR TEXTS_JSON OUT_JSON".into());
    }
    let prompts = Prompts {
        query: "query: ".into(),
        passage: "passage: ".into(),
    };
    Encoder::load(Path::new(&args[1]), &Device::Cpu)?
        .with_prompts(prompts)?
        .save(Path::new(&args[2]))?;
    let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(&args[3])?)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let enc = TextEncoder::load(Path::new(&args[2]), &Device::Cpu)?;
    let vecs: Vec<Vec<f32>> = enc.encode(&refs, TextKind::Query)?.to_vec2()?;
    std::fs::write(&args[4], serde_json::to_string(&vecs)?)?;
    Ok(())
}
