//! Encode throughput of polydense on all-MiniLM-L6-v2: XQuAD-R English contexts, seq ≤ 128,
//! batch 32. Prints one JSON line; `bench/encode_vs_pytorch.sh` compares it with
//! sentence-transformers on the same texts.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use polydense_model::{resolve, TextEncoder, TextKind};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The XQuAD-R English contexts, deduplicated, in file order.
fn contexts() -> Vec<String> {
    let data = std::env::var_os("POLYDENSE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    let path = data.join("xquad-r/en.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("XQuAD-R en.json")).unwrap();
    let mut out: Vec<String> = Vec::new();
    for article in v["data"].as_array().unwrap() {
        for p in article["paragraphs"].as_array().unwrap() {
            let c = p["context"].as_str().unwrap().to_string();
            if out.last() != Some(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn main() {
    let dir =
        resolve(&std::env::var("MODEL").unwrap_or_else(|_| "minilm-l6".into())).expect("model");
    let texts = contexts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let enc = TextEncoder::load(&dir, &Device::Cpu)
        .unwrap()
        .with_batch_size(32)
        .with_max_length(128);
    enc.encode(&refs[..32], TextKind::Passage).unwrap(); // warm-up
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let out = enc.encode(&refs, TextKind::Passage).unwrap();
        assert_eq!(out.dims(), &[refs.len(), enc.dim()]);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{{\"system\":\"polydense\",\"passages\":{},\"seconds\":{best:.3},\"passages_per_s\":{:.2},\"threads\":{}}}",
        refs.len(),
        refs.len() as f64 / best,
        rayon::current_num_threads()
    );
}
