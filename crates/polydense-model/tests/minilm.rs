//! Checks on the real all-MiniLM-L6-v2 ($POLYDENSE_HOME/models/minilm-l6): parity with
//! sentence-transformers, gradients on every weight, training, and save/load.

use std::path::PathBuf;

use candle_core::{Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use polydense_model::{Encoder, Kernels, TextEncoder, TextKind};
use serde::Deserialize;

/// The model directory; a missing one fails under `scripts/test` and CI.
fn minilm() -> Option<PathBuf> {
    polydense_data::paths::test_model("minilm-l6")
}

#[derive(Deserialize)]
struct Reference {
    max_seq_length: usize,
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/minilm/reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn matches_sentence_transformers() {
    let Some(dir) = minilm() else { return };
    let r = reference();
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let enc = TextEncoder::load(&dir, &Device::Cpu)
        .unwrap()
        .with_batch_size(8);
    assert_eq!(enc.tokenizer().max_length(), r.max_seq_length);
    assert_eq!(
        enc.tokenizer().tokenize(&texts, TextKind::Passage).unwrap(),
        r.token_ids
    );
    let got: Vec<Vec<f32>> = enc
        .encode(&texts, TextKind::Passage)
        .unwrap()
        .to_vec2()
        .unwrap();
    let min = got
        .iter()
        .zip(&r.embeddings)
        .map(|(a, b)| cosine(a, b))
        .fold(f32::MAX, f32::min);
    eprintln!("min cosine vs sentence-transformers: {min}");
    assert!(min > 0.9999, "min cosine {min}");
    // Unit length, since the model's modules.json has a Normalize step.
    for v in &got {
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "{n}");
    }
}

#[test]
fn composed_kernels_match_too_and_batches_return_input_order() {
    let Some(dir) = minilm() else { return };
    let r = reference();
    let texts: Vec<&str> = r.sentences.iter().map(String::as_str).take(12).collect();
    let mut enc = Encoder::load(&dir, &Device::Cpu).unwrap();
    enc.set_kernels(Kernels::Composed);
    let composed: Vec<Vec<f32>> = enc
        .text_encoder()
        .unwrap()
        .encode(&texts, TextKind::Passage)
        .unwrap()
        .to_vec2()
        .unwrap();
    for (a, b) in composed.iter().zip(&r.embeddings) {
        assert!(cosine(a, b) > 0.9999);
    }
    let fused = TextEncoder::load(&dir, &Device::Cpu)
        .unwrap()
        .with_batch_size(5);
    let mut seen = Vec::new();
    let out: Vec<Vec<f32>> = fused
        .encode_with_progress(&texts, TextKind::Passage, &mut |n| seen.push(n))
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(seen, vec![5, 10, 12]);
    for (a, b) in out.iter().zip(&composed) {
        assert!(cosine(a, b) > 0.99999);
    }
}

/// In-batch-negative InfoNCE (temperature 0.05): row i of `q` should pick row i of `p`.
fn info_nce(q: &Tensor, p: &Tensor) -> Tensor {
    let logits = (q.matmul(&p.t().unwrap()).unwrap() / 0.05).unwrap();
    let max = logits.max_keepdim(D::Minus1).unwrap().detach();
    let lse = (logits
        .broadcast_sub(&max)
        .unwrap()
        .exp()
        .unwrap()
        .sum_keepdim(D::Minus1)
        .unwrap()
        .log()
        .unwrap()
        + &max)
        .unwrap();
    let n = logits.dim(0).unwrap();
    let eye = Tensor::eye(n, logits.dtype(), logits.device()).unwrap();
    let diag = (logits * eye).unwrap().sum_keepdim(D::Minus1).unwrap();
    (lse - diag).unwrap().mean_all().unwrap()
}

const PAIRS: [(&str, &str); 6] = [
    (
        "when was the first dam on the river built",
        "Engineers built the first dam on the river in 1952 to control floods.",
    ),
    (
        "when was the second dam built",
        "The second dam followed twenty years later to supply electricity to the coast.",
    ),
    (
        "who won super bowl 50",
        "The Denver Broncos defeated the Carolina Panthers to win Super Bowl 50.",
    ),
    (
        "who lost super bowl 50",
        "The Carolina Panthers lost Super Bowl 50 after a strong regular season.",
    ),
    (
        "capital of germany",
        "Berlin is the capital and largest city of Germany.",
    ),
    (
        "largest city in germany by area",
        "By area, Berlin is also Germany's largest city, ahead of Hamburg.",
    ),
];

#[test]
fn every_weight_gets_a_gradient_from_a_contrastive_loss() {
    let Some(dir) = minilm() else { return };
    let enc = Encoder::load(&dir, &Device::Cpu).unwrap();
    let (qs, ps): (Vec<&str>, Vec<&str>) = PAIRS.iter().copied().unzip();
    let loss = info_nce(
        &enc.forward_texts(&qs, TextKind::Query).unwrap(),
        &enc.forward_texts(&ps, TextKind::Passage).unwrap(),
    );
    let grads = loss.backward().unwrap();
    let data = enc.varmap().data().lock().unwrap();
    assert_eq!(
        data.len(),
        5 + 16 * 6,
        "every BertModel weight except the unused pooler"
    );
    let mut zero = Vec::new();
    for (name, var) in data.iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let max: f32 = g.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(max.is_finite(), "{name}");
        // The key bias shifts every score of a query equally, which softmax ignores: its true
        // gradient is zero and only rounding is left (PyTorch shows the same).
        if max == 0.0 && !name.ends_with("attention.self.key.bias") {
            zero.push(name.clone());
        }
    }
    assert!(
        zero.is_empty(),
        "weights with an all-zero gradient: {zero:?}"
    );
}

#[test]
fn adamw_steps_on_info_nce_lower_the_loss() {
    let Some(dir) = minilm() else { return };
    let enc = Encoder::load(&dir, &Device::Cpu).unwrap();
    let (qs, ps): (Vec<&str>, Vec<&str>) = PAIRS.iter().copied().unzip();
    let (qb, pb) = (
        enc.tokenize(&qs, TextKind::Query).unwrap(),
        enc.tokenize(&ps, TextKind::Passage).unwrap(),
    );
    let mut opt = AdamW::new(
        enc.varmap().all_vars(),
        ParamsAdamW {
            lr: 5e-5,
            weight_decay: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..4 {
        let loss = info_nce(&enc.forward(&qb).unwrap(), &enc.forward(&pb).unwrap());
        losses.push(loss.to_scalar::<f32>().unwrap());
        opt.backward_step(&loss).unwrap();
    }
    losses.push(
        info_nce(&enc.forward(&qb).unwrap(), &enc.forward(&pb).unwrap())
            .to_scalar::<f32>()
            .unwrap(),
    );
    eprintln!("InfoNCE over AdamW steps: {losses:?}");
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert!(losses[4] < 0.8 * losses[0], "{losses:?}");
}

#[test]
fn save_then_load_gives_identical_embeddings() {
    let Some(dir) = minilm() else { return };
    let texts = [
        "A short one.",
        "Berlin is the capital of Germany and its largest city by population.",
    ];
    let before: Vec<Vec<f32>> = TextEncoder::load(&dir, &Device::Cpu)
        .unwrap()
        .encode(&texts, TextKind::Query)
        .unwrap()
        .to_vec2()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("minilm-copy");
    Encoder::load(&dir, &Device::Cpu)
        .unwrap()
        .save(&saved)
        .unwrap();
    let enc = TextEncoder::load(&saved, &Device::Cpu).unwrap();
    let after: Vec<Vec<f32>> = enc
        .encode(&texts, TextKind::Query)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(
        enc.pooling(),
        TextEncoder::load(&dir, &Device::Cpu).unwrap().pooling()
    );
}
