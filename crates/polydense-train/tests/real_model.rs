//! `Trainer::from_config` on the real all-MiniLM-L6-v2 directory: the config path a CLI run
//! takes (HF tokenizer, Tevatron file, BEIR dev split) ends in a model directory that loads
//! for inference and differs from the starting weights. Needs `$POLYDENSE_HOME/models/minilm-l6`.

use std::path::Path;

use candle_core::Device;
use polydense_model::{TextEncoder, TextKind};
use polydense_train::{
    InfoNceConfig, LossConfig, NoKeys, Quiet, SamplerConfig, TrainConfig, Trainer,
};

fn model_dir() -> Option<std::path::PathBuf> {
    polydense_data::paths::test_model("minilm-l6")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_config_run_on_minilm_writes_a_loadable_changed_model() {
    let Some(model) = model_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let topics = [
        ("rivers", "Rivers carry water from mountains to the sea."),
        ("bread", "Bread is baked from flour, water and yeast."),
        ("stars", "Stars are balls of hot gas that shine by fusion."),
        ("chess", "Chess is a board game for two players."),
        ("bees", "Bees collect nectar and make honey."),
        ("trains", "Trains run on rails between stations."),
    ];
    let mut train = String::new();
    let (mut corpus, mut queries, mut qrels) = (
        String::new(),
        String::new(),
        String::from("query-id\tcorpus-id\tscore\n"),
    );
    for (i, (topic, text)) in topics.iter().enumerate() {
        let neg = topics[(i + 1) % topics.len()].1;
        train += &serde_json::json!({
            "query_id": format!("q{i}"), "query": format!("what about {topic}?"), "lang": "en",
            "positive_passages": [{"docid": format!("d{i}"), "text": text}],
            "negative_passages": [{"docid": format!("d{}", (i + 1) % topics.len()), "text": neg}],
        })
        .to_string();
        train.push('\n');
        corpus += &format!(
            "{}\n",
            serde_json::json!({"_id": format!("d{i}"), "text": text})
        );
        queries += &format!(
            "{}\n",
            serde_json::json!({"_id": format!("q{i}"), "text": format!("tell me about {topic}"), "lang": "en"})
        );
        qrels += &format!("q{i}\td{i}\t1\n");
    }
    write(&tmp.path().join("train.jsonl"), &train);
    write(&tmp.path().join("dev/corpus.jsonl"), &corpus);
    write(&tmp.path().join("dev/queries.jsonl"), &queries);
    write(&tmp.path().join("dev/qrels/dev.tsv"), &qrels);
    let config = TrainConfig {
        model: model.display().to_string(),
        train_file: tmp.path().join("train.jsonl"),
        out_dir: tmp.path().join("run"),
        dev_dir: tmp.path().join("dev"),
        batch_size: 3,
        max_steps: 2,
        lr: 1e-4,
        eval_every: 2,
        max_passage_length: 32,
        max_query_length: 16,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::from_config(config).unwrap();
    let summary = trainer.train(&mut Quiet).unwrap();
    assert_eq!(summary.steps, 2);
    let best = summary.best.unwrap();
    assert!((0.0..=1.0).contains(&best.1) && best.0 == 2);
    let out = summary.model_dir.unwrap();
    let texts = ["what about bees?"];
    let trained = TextEncoder::load(&out, &Device::Cpu)
        .unwrap()
        .encode(&texts, TextKind::Query)
        .unwrap();
    let base = TextEncoder::load(&model, &Device::Cpu)
        .unwrap()
        .encode(&texts, TextKind::Query)
        .unwrap();
    let cos: f32 = (trained * base)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!(
        cos < 0.999_999 && cos > 0.9,
        "cosine to the starting model: {cos}"
    );
    assert!(tmp.path().join("run/eval/dev-step-00000002.json").is_file());
    assert!(tmp.path().join("run/best_model/tokenizer.json").is_file());
}

/// What `scripts/make_loss_parity_fixture.py` recorded from PyTorch + sentence-transformers.
#[derive(serde::Deserialize)]
struct Parity {
    settings: ParitySettings,
    pairs: Vec<ParityPair>,
    losses: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct ParitySettings {
    batch_size: usize,
    steps: u64,
    lr: f64,
    temperature: f64,
    weight_decay: f64,
    max_grad_norm: f64,
    max_length: usize,
    warmup_steps: u64,
}

#[derive(serde::Deserialize)]
struct ParityPair {
    query: String,
    positive: String,
}

#[test]
fn ten_adamw_steps_on_minilm_give_pytorchs_losses() {
    let Some(model) = model_dir() else { return };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/loss_parity/reference.json"
    );
    let r: Parity = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut train = String::new();
    for (i, p) in r.pairs.iter().enumerate() {
        train += &serde_json::json!({
            "query_id": format!("q{i}"), "query": p.query,
            "positive_passages": [{"docid": format!("d{i}"), "text": p.positive}],
        })
        .to_string();
        train.push('\n');
    }
    write(&tmp.path().join("train.jsonl"), &train);
    let s = &r.settings;
    let config = TrainConfig {
        model: model.display().to_string(),
        train_file: tmp.path().join("train.jsonl"),
        out_dir: tmp.path().join("run"),
        sampler: SamplerConfig::Sequential(NoKeys {}),
        negatives: 0,
        batch_size: s.batch_size,
        max_steps: s.steps,
        lr: s.lr,
        warmup_steps: s.warmup_steps,
        weight_decay: s.weight_decay,
        max_grad_norm: s.max_grad_norm,
        max_query_length: s.max_length,
        max_passage_length: s.max_length,
        loss: LossConfig::Infonce(InfoNceConfig {
            temperature: s.temperature,
        }),
        ..TrainConfig::default()
    };
    Trainer::from_config(config)
        .unwrap()
        .train(&mut Quiet)
        .unwrap();
    let ours: Vec<f64> = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["loss"].as_f64())
        .collect();
    assert_eq!(ours.len(), r.losses.len());
    for (step, (a, b)) in ours.iter().zip(&r.losses).enumerate() {
        assert!(
            (a - b).abs() < 1e-4,
            "step {}: polydense {a:.6}, PyTorch {b:.6}",
            step + 1
        );
    }
    // The losses moved: the comparison covers ten real updates, not ten copies of step one.
    assert!((r.losses[0] - r.losses[9]).abs() > 1e-3, "{:?}", r.losses);
}
