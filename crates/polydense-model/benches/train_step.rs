//! Seconds per training step of polydense on all-MiniLM-L6-v2: 32 XQuAD-R English questions
//! and their 32 contexts (seq ≤ 128), in-batch InfoNCE (τ = 0.05), backward and an AdamW
//! step. Prints one JSON line; `bench/train_step_vs_pytorch.sh` compares with PyTorch.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use polydense_model::{resolve, Encoder, TextKind};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The first 32 (question, context) pairs of XQuAD-R English, one question per context.
fn pairs() -> (Vec<String>, Vec<String>) {
    let data = std::env::var_os("POLYDENSE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
        });
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("xquad-r/en.json")).expect("XQuAD-R en.json"),
    )
    .unwrap();
    let (mut qs, mut ps) = (Vec::new(), Vec::new());
    for article in v["data"].as_array().unwrap() {
        for p in article["paragraphs"].as_array().unwrap() {
            if qs.len() < 32 {
                qs.push(p["qas"][0]["question"].as_str().unwrap().to_string());
                ps.push(p["context"].as_str().unwrap().to_string());
            }
        }
    }
    (qs, ps)
}

fn info_nce(q: &Tensor, p: &Tensor) -> candle_core::Result<Tensor> {
    let logits = (q.matmul(&p.t()?)? / 0.05)?;
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let lse = (logits
        .broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(D::Minus1)?
        .log()?
        + &max)?;
    let eye = Tensor::eye(logits.dim(0)?, logits.dtype(), logits.device())?;
    (lse - (logits * eye)?.sum_keepdim(D::Minus1)?)?.mean_all()
}

fn main() {
    let dir = resolve("minilm-l6").expect("model");
    let enc = Encoder::load(&dir, &Device::Cpu).unwrap();
    let (qs, ps) = pairs();
    let tok = enc.tokenizer().unwrap().with_max_length(128).unwrap();
    let q: Vec<&str> = qs.iter().map(String::as_str).collect();
    let p: Vec<&str> = ps.iter().map(String::as_str).collect();
    let (qb, pb) = (
        tok.batch(&q, TextKind::Query, &Device::Cpu).unwrap(),
        tok.batch(&p, TextKind::Passage, &Device::Cpu).unwrap(),
    );
    let mut opt = AdamW::new(
        enc.varmap().all_vars(),
        ParamsAdamW {
            lr: 1e-5,
            ..Default::default()
        },
    )
    .unwrap();
    let steps: usize = std::env::var("STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut times = Vec::new();
    for i in 0..=steps {
        let t = Instant::now();
        let loss = info_nce(&enc.forward(&qb).unwrap(), &enc.forward(&pb).unwrap()).unwrap();
        opt.backward_step(&loss).unwrap();
        if i > 0 {
            times.push(t.elapsed().as_secs_f64()); // step 0 is warm-up
        }
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let best = times.iter().cloned().fold(f64::MAX, f64::min);
    println!("{{\"system\":\"polydense\",\"seq\":{},\"mean_step_s\":{mean:.3},\"best_step_s\":{best:.3}}}", pb.seq_len());
}
