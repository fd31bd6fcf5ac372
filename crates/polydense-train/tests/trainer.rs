//! The trainer's contracts on tiny random models: GradCache gives the plain step's
//! gradients, a resumed run ends with the same weights as a straight one, a NaN stops the
//! run with the last good checkpoint, and dev evaluation keeps the best model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Device, Tensor};
use polydense_data::beir::BeirDataset;
use polydense_data::{Document, Query, TrainExample, TrainPassage};
use polydense_model::{Encoder, EncoderConfig};
use polydense_train::checkpoint;
use polydense_train::{
    CrossBatchMemory, DualEncoder, FifoMemory, HashTokenize, InfoNce, InfoNceConfig, Loss,
    LossConfig, LossInput, LossOutput, MemoryEntries, Progress, Quiet, StepContext, TrainBatch,
    TrainConfig, TrainError, Trainer,
};

mod common;
use common::text;

/// Examples whose query and positive share words, with two negatives from other examples.
fn examples(n: usize) -> Vec<TrainExample> {
    let passage = |i: usize| TrainPassage {
        docid: format!("d{i}"),
        title: String::new(),
        text: format!("{} {}", text(i, 3), text(i + 1, 2 + i % 4)),
        ..TrainPassage::default()
    };
    (0..n)
        .map(|i| TrainExample {
            query_id: format!("q{i}"),
            query: text(i, 2 + i % 3),
            lang: Some(if i % 2 == 0 { "en" } else { "de" }.into()),
            positive_passages: vec![passage(i)],
            negative_passages: vec![passage((i + 1) % n), passage((i + 5) % n)],
        })
        .collect()
}

fn tok() -> HashTokenize {
    HashTokenize {
        vocab: EncoderConfig::tiny_bert().vocab_size as u32,
        max_len: 12,
    }
}

fn config(out: &Path) -> TrainConfig {
    TrainConfig {
        out_dir: out.to_path_buf(),
        batch_size: 4,
        negatives: 1,
        max_steps: 6,
        lr: 1e-3,
        warmup_steps: 2,
        weight_decay: 0.01,
        checkpoint_every: 3,
        loss: LossConfig::Infonce(InfoNceConfig { temperature: 0.1 }),
        seed: 11,
        ..TrainConfig::default()
    }
}

fn trainer(cfg: TrainConfig, model_seed: u64, separate: bool) -> Trainer {
    let enc = |s| Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, s).unwrap();
    let model = match separate {
        true => DualEncoder::separate(enc(model_seed), enc(model_seed + 100)),
        false => DualEncoder::shared(enc(model_seed)),
    };
    Trainer::new(cfg, model, Box::new(tok()), examples(24)).unwrap()
}

fn weights(t: &Trainer) -> BTreeMap<String, Vec<f32>> {
    t.model()
        .params()
        .into_iter()
        .map(|(n, v)| {
            let w = v.as_tensor().to_dtype(DType::F32).unwrap();
            (n, w.flatten_all().unwrap().to_vec1().unwrap())
        })
        .collect()
}

fn max_diff(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

fn gradcache_matches_plain(separate: bool) {
    gradcache_matches_plain_for(separate, &InfoNce { temperature: 0.05 }, examples(24));
}

fn gradcache_matches_plain_for(separate: bool, loss: &dyn Loss, examples: Vec<TrainExample>) {
    let enc = |s| {
        Encoder::random_with_dtype(&EncoderConfig::tiny_bert(), DType::F64, &Device::Cpu, s)
            .unwrap()
    };
    let model = match separate {
        true => DualEncoder::separate(enc(1), enc(2)),
        false => DualEncoder::shared(enc(1)),
    };
    let params = model.params();
    let mut cfg = config(Path::new("unused"));
    cfg.negatives = 2;
    cfg.batch_size = 8;
    let enc1 = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 1).unwrap();
    let t = Trainer::new(cfg, DualEncoder::shared(enc1), Box::new(tok()), examples).unwrap();
    let batch = t.collate(&[0, 3, 5, 7, 9, 11, 13, 20], 0);
    assert_eq!((batch.queries.len(), batch.passages.len()), (8, 24));
    let tokenize = tok();
    let ctx = StepContext {
        model: &model,
        tokenize: &tokenize,
        loss,
        params: &params,
        progress: Progress::default(),
        seed: 1,
        balance: 0.0,
    };
    let plain = ctx.plain(&batch, &mut |_, _| Ok(None)).unwrap();
    // 3 does not divide 8 or 24: the last chunks are short.
    let cached = ctx.cached(&batch, 3, &mut |_, _| Ok(None)).unwrap();
    // What a cross-batch memory receives carries no autograd graph on either path.
    assert!(!plain.passages.track_op() && !cached.passages.track_op());
    assert!(
        (plain.loss - cached.loss).abs() < 1e-12,
        "{} vs {}",
        plain.loss,
        cached.loss
    );
    let mut nonzero = 0;
    for (((name, _), a), b) in params.iter().zip(&plain.grads).zip(&cached.grads) {
        let scale: f64 = a.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        let diff: f64 = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(
            diff <= 1e-10 * (1.0 + scale),
            "{name}: differs by {diff} (scale {scale})"
        );
        nonzero += usize::from(scale > 1e-8);
    }
    // Every weight but the attention key biases (a softmax shift) is trained.
    let layers = EncoderConfig::tiny_bert().num_hidden_layers * if separate { 2 } else { 1 };
    assert_eq!(nonzero, params.len() - layers);
}

#[test]
fn gradcache_gives_the_plain_gradients_shared_towers() {
    gradcache_matches_plain(false);
}

#[test]
fn gradcache_gives_the_plain_gradients_separate_towers() {
    gradcache_matches_plain(true);
}

#[test]
fn clpl_under_gradcache_gives_the_plain_loss_and_gradients() {
    // Every other negative knows its own query, so some queries fall back to InfoNCE.
    let mut ex = examples(24);
    for (i, e) in ex.iter_mut().enumerate() {
        e.negative_passages[i % 2].query = Some(format!("who asks about {i}"));
    }
    let clpl = polydense_train::ClplLoss {
        lambda: 0.3,
        temperature: 0.05,
    };
    gradcache_matches_plain_for(false, &clpl, ex.clone());
    gradcache_matches_plain_for(true, &clpl, ex);
}

#[test]
fn training_with_gradcache_follows_the_plain_trajectory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut plain = trainer(config(&tmp.path().join("plain")), 3, false);
    plain.train(&mut Quiet).unwrap();
    let mut cfg = config(&tmp.path().join("cached"));
    cfg.grad_cache_chunk = 3;
    let mut cached = trainer(cfg, 3, false);
    cached.train(&mut Quiet).unwrap();
    // The attention key biases have a zero gradient in exact arithmetic (softmax ignores a
    // shift shared by all keys), so Adam's m/√v turns their f32 rounding noise into full-size
    // steps in both runs; every other weight must follow the same path.
    let trained = |t: &Trainer| {
        let mut w = weights(t);
        w.retain(|k, _| !k.ends_with("attention.self.key.bias"));
        w
    };
    let d = max_diff(&trained(&plain), &trained(&cached));
    assert!(d < 1e-5, "weights differ by {d}");
}

fn resume_matches_straight(cfg: impl Fn(&Path) -> TrainConfig, separate: bool, memory: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let build = |dir: &str, seed: u64| {
        let t = trainer(cfg(&tmp.path().join(dir)), seed, separate);
        match memory {
            true => t.with_memory(Box::new(FifoMemory::new(6))),
            false => t,
        }
    };
    let mut straight = build("straight", 5);
    let s = straight.train(&mut Quiet).unwrap();
    assert_eq!(s.steps, 6);

    let mut first = build("resumed", 5);
    let paused = first.train_until(&mut Quiet, Some(3)).unwrap();
    assert_eq!((paused.steps, paused.model_dir.clone()), (3, None));
    drop(first);
    // Different initial weights: only the checkpoint can make the result match.
    let mut second = build("resumed", 99);
    assert_eq!(second.resume().unwrap(), Some(3));
    let r = second.train(&mut Quiet).unwrap();
    assert_eq!(r.steps, 6);
    let d = max_diff(&weights(&straight), &weights(&second));
    assert!(d < 1e-6, "resumed weights differ by {d}");
    assert!(max_diff(&weights(&straight), &weights(&build("fresh", 5))) > 1e-3);

    // metrics.jsonl of the resumed run holds each step once, with the straight run's losses.
    let losses = |dir: &str| -> Vec<(u64, f64)> {
        std::fs::read_to_string(tmp.path().join(dir).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("loss").is_some())
            .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
            .collect()
    };
    let (a, b) = (losses("straight"), losses("resumed"));
    assert_eq!(
        a.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(
        b.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    for (x, y) in a.iter().zip(&b) {
        assert!((x.1 - y.1).abs() < 1e-5, "{x:?} vs {y:?}");
    }
    let saved = TrainConfig::from_toml_file(&tmp.path().join("resumed/config.toml")).unwrap();
    assert_eq!(saved, cfg(&tmp.path().join("resumed")));
}

#[test]
fn resume_after_n_steps_equals_2n_straight() {
    resume_matches_straight(config, false, false);
}

#[test]
fn resume_is_exact_across_an_epoch_boundary_with_gradcache_memory_and_two_towers() {
    // 24 examples in batches of 5 make 4 batches per epoch: step 3 is mid-epoch, steps 5 and 6
    // run in the second epoch.
    let cfg = |p: &Path| TrainConfig {
        batch_size: 5,
        grad_cache_chunk: 4,
        ..config(p)
    };
    resume_matches_straight(cfg, true, true);
}

/// InfoNCE that returns NaN from its `at`-th call on.
struct NanFrom {
    at: usize,
    calls: AtomicUsize,
}

impl Loss for NanFrom {
    fn name(&self) -> &str {
        "nan-from"
    }
    fn loss(&self, input: &LossInput) -> polydense_train::Result<LossOutput> {
        let l = InfoNce { temperature: 0.1 }.nll(input)?;
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(LossOutput::single(if n >= self.at {
            (l * f64::NAN)?
        } else {
            l
        }))
    }
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 2;
    let mut t = trainer(cfg, 7, false).with_loss(Box::new(NanFrom {
        at: 3,
        calls: AtomicUsize::new(0),
    }));
    let err = t.train(&mut Quiet).unwrap_err();
    let good = checkpoint::checkpoint_dir(tmp.path(), 2);
    match &err {
        TrainError::NonFinite {
            what,
            step,
            checkpoint,
            ..
        } => {
            assert_eq!((*what, *step), ("loss", 3));
            assert_eq!(checkpoint.as_deref(), Some(good.as_path()));
        }
        other => panic!("expected NonFinite, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("the loss became NaN at step 3"), "{msg}");
    assert!(msg.contains(&good.display().to_string()), "{msg}");
    assert_eq!(checkpoint::latest(tmp.path()).unwrap(), Some(good.clone()));
    // The weights were not touched by the bad step: they equal the checkpoint's.
    let ck = checkpoint::load(&good, &Device::Cpu).unwrap();
    assert_eq!(ck.state.step, 2);
    for (name, var) in t.model().params() {
        let a: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = ck.model[&name].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b, "{name}");
    }
    assert!(!tmp.path().join("model").exists());
}

/// A dev split over the examples' positives, queries tagged en/de by parity.
fn dev_set() -> BeirDataset {
    let ex = examples(24);
    let mut ds = BeirDataset::default();
    for e in &ex {
        let p = &e.positive_passages[0];
        ds.corpus.push(Document {
            id: p.docid.clone(),
            title: String::new(),
            text: p.text.clone(),
            lang: None,
        });
        ds.queries.push(Query {
            id: e.query_id.clone(),
            text: e.query.clone(),
            lang: e.lang.clone(),
        });
        ds.qrels
            .entry(e.query_id.clone())
            .or_default()
            .insert(p.docid.clone(), 1);
    }
    ds
}

#[test]
fn dev_evaluation_logs_per_language_metrics_and_keeps_the_best_model() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.eval_every = 2;
    cfg.max_steps = 5;
    let mut t = trainer(cfg, 8, false).with_dev(dev_set()).unwrap();
    let s = t.train(&mut Quiet).unwrap();
    assert_eq!(s.steps, 5);
    let (best_step, best) = s.best.unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(tmp.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dev: Vec<&serde_json::Value> = lines.iter().filter(|v| v.get("dev").is_some()).collect();
    // Evaluations at steps 2 and 4, and at the end (step 5).
    let steps: Vec<u64> = dev.iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![2, 4, 5]);
    let scores: Vec<f64> = dev
        .iter()
        .map(|v| v["dev"]["overall"]["ndcg@10"].as_f64().unwrap())
        .collect();
    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(best, max);
    assert_eq!(
        best_step,
        steps[scores.iter().position(|&x| x == max).unwrap()]
    );
    for v in &dev {
        let per_lang = v["dev"]["per_lang"].as_object().unwrap();
        assert_eq!(per_lang.keys().collect::<Vec<_>>(), vec!["de", "en"]);
        assert_eq!(v["dev"]["num_queries"]["per_lang"]["en"], 12);
    }
    let step_lines: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v.get("loss").is_some()).collect();
    assert_eq!(step_lines.len(), 5);
    for v in step_lines {
        for key in ["lr", "grad_norm", "examples_per_s", "epoch"] {
            assert!(v[key].is_number(), "{key} missing in {v}");
        }
    }
    assert!(tmp.path().join("eval/dev-step-00000004.json").is_file());
    // best_model holds the weights of the best evaluation: its dev score is the best one.
    let best_model = Encoder::load(&tmp.path().join("best_model"), &Device::Cpu).unwrap();
    let report = polydense_train::DevSet::new(dev_set(), 0)
        .evaluate(&DualEncoder::shared(best_model), &tok(), 8)
        .unwrap();
    assert!((report.overall.get("ndcg@10").unwrap() - best).abs() < 1e-6);
    assert!(tmp.path().join("model/config.json").is_file());
}

#[test]
fn early_stopping_ends_the_run_when_dev_stops_improving() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.eval_every = 2;
    cfg.max_steps = 20;
    cfg.early_stopping_patience = 1;
    // Updates far below f32 resolution leave the weights, hence the dev score, unchanged.
    cfg.lr = 1e-15;
    let mut t = trainer(cfg, 9, false).with_dev(dev_set()).unwrap();
    let s = t.train(&mut Quiet).unwrap();
    assert!(s.stopped_early);
    assert_eq!(s.steps, 4);
    assert_eq!(s.best.unwrap().0, 2);
    assert_eq!(
        checkpoint::latest(tmp.path()).unwrap(),
        Some(checkpoint::checkpoint_dir(tmp.path(), 4))
    );
}

#[test]
fn config_errors_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.eval_metric = "map@3".into();
    let err = trainer(cfg, 1, false)
        .with_dev(dev_set())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("config `eval_metric`: `map@3` is not one of"),
        "{err}"
    );
}

/// InfoNCE plus a penalty weighted by a number drawn from the step's random stream, reported
/// as two parts: a stochastic composite loss, to pin parts logging and resumable randomness.
struct RandomPenalty;

impl Loss for RandomPenalty {
    fn name(&self) -> &str {
        "random-penalty"
    }
    fn loss(&self, input: &LossInput) -> polydense_train::Result<LossOutput> {
        use rand::Rng;
        let nce = InfoNce { temperature: 0.1 }.nll(input)?;
        let w: f64 = input.rng().random_range(0.0..0.5);
        let penalty = input.passages.sqr()?.mean_all()?;
        Ok(LossOutput {
            total: (&nce + (&penalty * w)?)?,
            parts: vec![("infonce".into(), nce), ("penalty".into(), penalty)],
            stats: Vec::new(),
        })
    }
}

#[test]
fn loss_parts_reach_metrics_jsonl_and_a_stochastic_loss_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |dir: &str, pause: Option<u64>, seed: u64| {
        let mut t =
            trainer(config(&tmp.path().join(dir)), seed, false).with_loss(Box::new(RandomPenalty));
        t.resume().unwrap();
        t.train_until(&mut Quiet, pause).unwrap();
        t
    };
    let straight = run("straight", None, 5);
    run("resumed", Some(3), 5);
    let resumed = run("resumed", None, 77);
    assert!(max_diff(&weights(&straight), &weights(&resumed)) < 1e-6);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(tmp.path().join("straight/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 6);
    for v in &lines {
        let parts = v["loss_parts"].as_object().unwrap();
        assert_eq!(parts.keys().collect::<Vec<_>>(), ["infonce", "penalty"]);
        // The total lies between InfoNCE alone and InfoNCE plus half the penalty.
        let (nce, pen) = (
            parts["infonce"].as_f64().unwrap(),
            parts["penalty"].as_f64().unwrap(),
        );
        let loss = v["loss"].as_f64().unwrap();
        assert!(loss >= nce - 1e-6 && loss <= nce + 0.5 * pen + 1e-6, "{v}");
    }
    // A plain InfoNCE run writes no parts, as before.
    let plain = tmp.path().join("plain");
    trainer(config(&plain), 5, false).train(&mut Quiet).unwrap();
    let text = std::fs::read_to_string(plain.join("metrics.jsonl")).unwrap();
    assert!(!text.contains("loss_parts"), "{text}");
}

#[test]
fn frozen_weights_stay_bit_identical_and_resume_still_equals_a_straight_run() {
    let frozen = |p: &Path| TrainConfig {
        only_train: vec!["encoder.layer.1.*".into()],
        ..config(p)
    };
    let tmp = tempfile::tempdir().unwrap();
    let before = weights(&trainer(frozen(tmp.path()), 5, false));
    let mut t = trainer(frozen(tmp.path()), 5, false);
    t.train(&mut Quiet).unwrap();
    let after = weights(&t);
    let mut moved = 0;
    for (name, w) in &after {
        match name.starts_with("encoder.layer.1.") {
            true => moved += usize::from(w != &before[name]),
            false => assert_eq!(w, &before[name], "{name} is frozen but changed"),
        }
    }
    assert!(moved >= 14, "only {moved} weights of layer 1 trained");
    // The checkpoint holds the whole model, and optimiser state only for what trains.
    let ck = checkpoint::load(
        &checkpoint::latest(tmp.path()).unwrap().unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(ck.model.len(), after.len());
    assert!(ck.optimizer.keys().all(|k| k.contains("encoder.layer.1.")));
    resume_matches_straight(frozen, false, false);
}

#[test]
fn a_resume_that_unfreezes_weights_starts_their_optimiser_afresh() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = |only: &str| TrainConfig {
        only_train: vec![only.into()],
        ..config(tmp.path())
    };
    let mut first = trainer(stage("encoder.layer.1.*"), 5, false);
    first.train_until(&mut Quiet, Some(3)).unwrap();
    let mut second = trainer(stage("encoder.layer.*"), 5, false);
    assert_eq!(second.resume().unwrap(), Some(3));
    second.train(&mut Quiet).unwrap();
    let ck = checkpoint::load(
        &checkpoint::latest(tmp.path()).unwrap().unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    let t = |name: &str| {
        ck.optimizer[&format!("t.encoder.layer.{name}")]
            .to_scalar::<i64>()
            .unwrap()
    };
    // Layer 1 trained all six steps; layer 0 only the three after the resume.
    assert_eq!(
        (t("1.output.dense.weight"), t("0.output.dense.weight")),
        (6, 3)
    );
    // Layer 0's weights moved away from the first stage's values.
    let w0 = |t: &Trainer| weights(t)["encoder.layer.0.output.dense.weight"].clone();
    assert_ne!(w0(&first), w0(&second));
}

#[test]
fn freeze_patterns_that_match_nothing_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        freeze: vec!["embedings.*".into()],
        ..config(tmp.path())
    };
    let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 1).unwrap();
    let err = Trainer::new(cfg, DualEncoder::shared(enc), Box::new(tok()), examples(8))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`embedings.*` matches no weight"), "{err}");
}

/// One call of the loss as the probe saw it: the batch, the negative-query vectors and the
/// memory's mask.
type Seen = (TrainBatch, Option<Vec<Vec<f64>>>, Option<Vec<Vec<u8>>>);

/// Records what the trainer hands the loss, then computes InfoNCE.
#[derive(Default)]
struct Probe {
    seen: std::sync::Mutex<Vec<Seen>>,
}

impl Loss for &'static Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn needs_negative_queries(&self) -> bool {
        true
    }
    fn loss(&self, input: &LossInput) -> polydense_train::Result<LossOutput> {
        let nq = input
            .negative_queries
            .map(|t| t.to_dtype(DType::F64).unwrap().to_vec2().unwrap());
        let mask = input.extra_negatives.map(|e| e.allowed.to_vec2().unwrap());
        self.seen
            .lock()
            .unwrap()
            .push((input.batch.clone(), nq, mask));
        Ok(LossOutput::single(InfoNce { temperature: 0.1 }.nll(input)?))
    }
}

/// A memory holding, after each push, the batch's positives under their ids.
struct Positives(FifoMemory);

impl CrossBatchMemory for Positives {
    fn name(&self) -> &str {
        "positives"
    }
    fn negatives(
        &mut self,
        q: &Tensor,
        b: &TrainBatch,
    ) -> polydense_train::Result<Option<MemoryEntries>> {
        assert!(
            !q.track_op(),
            "the memory was handed query vectors with a graph"
        );
        self.0.negatives(q, b)
    }
    fn push(&mut self, passages: &Tensor, ids: &[String]) -> polydense_train::Result<()> {
        assert!(
            !passages.track_op(),
            "the memory was handed passages with a graph"
        );
        self.0.push(passages, ids)
    }
    fn state(&self) -> Option<MemoryEntries> {
        self.0.state()
    }
    fn restore(&mut self, s: Option<MemoryEntries>) -> polydense_train::Result<()> {
        self.0.restore(s)
    }
}

#[test]
fn negative_queries_and_masked_memory_reach_the_loss_on_both_paths() {
    // Examples whose negatives carry their own query (`query` on the negative).
    let mut ex = examples(12);
    for e in &mut ex {
        for n in &mut e.negative_passages {
            n.query = Some(format!("query of {}", n.docid));
        }
    }
    for chunk in [0, 3] {
        let probe: &'static Probe = Box::leak(Box::default());
        let tmp = tempfile::tempdir().unwrap();
        let cfg = TrainConfig {
            grad_cache_chunk: chunk,
            max_steps: 3,
            ..config(tmp.path())
        };
        let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, 2).unwrap();
        let mut t = Trainer::new(cfg, DualEncoder::shared(enc), Box::new(tok()), ex.clone())
            .unwrap()
            .with_loss(Box::new(probe))
            .with_memory(Box::new(Positives(FifoMemory::new(64))));
        t.train(&mut Quiet).unwrap();
        let seen = probe.seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        let mut zeros = 0;
        for (step, (batch, nq, mask)) in seen.iter().enumerate() {
            // One negative per query, each with its query, and a vector for each.
            assert_eq!(batch.negative_queries.len(), batch.len());
            let nq = nq.as_ref().unwrap();
            assert_eq!(nq.len(), batch.len());
            for (n, v) in batch.negative_queries.iter().zip(nq) {
                assert_eq!(n.text, format!("query of {}", batch.passage_ids[n.row]));
                assert_eq!(v.len(), EncoderConfig::tiny_bert().hidden_size);
            }
            // The memory is empty at the first step; then every entry that is one of a
            // query's positives is masked for that query, and only then.
            match step {
                0 => assert!(mask.is_none()),
                _ => {
                    let mask = mask.as_ref().unwrap();
                    let ids: Vec<&String> =
                        seen[..step].iter().flat_map(|s| &s.0.passage_ids).collect();
                    assert_eq!(mask[0].len(), ids.len());
                    for (i, row) in mask.iter().enumerate() {
                        for (m, &allowed) in row.iter().enumerate() {
                            let own = batch.positive_ids[i].contains(ids[m]);
                            assert_eq!(allowed == 0, own, "step {step} query {i} entry {m}");
                            zeros += usize::from(own);
                        }
                    }
                }
            }
        }
        assert!(zeros > 0, "no query met its own positive in the memory");
    }
}

fn moe_trainer(cfg: TrainConfig, seed: u64) -> Trainer {
    use polydense_model::ffn::{ExpertLayers, MoeConfig, RouterScale};
    let mut enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, seed).unwrap();
    let moe = MoeConfig {
        experts: 2,
        top_k: 1,
        layers: ExpertLayers::Intermediate,
        router_scale: RouterScale::Unit,
    };
    enc.upgrade_to_moe(&moe, 0.1, 3).unwrap();
    Trainer::new(cfg, DualEncoder::shared(enc), Box::new(tok()), examples(24)).unwrap()
}

#[test]
fn experts_only_training_moves_experts_and_gates_logs_routing_and_resumes_exactly() {
    let experts_only = |p: &Path| TrainConfig {
        only_train: vec!["experts".into()],
        ..config(p)
    };
    let tmp = tempfile::tempdir().unwrap();
    let before = weights(&moe_trainer(experts_only(tmp.path()), 5));
    let mut t = moe_trainer(experts_only(&tmp.path().join("run")), 5);
    t.train(&mut Quiet).unwrap();
    let after = weights(&t);
    for (name, w) in &after {
        let trains = name.contains(".experts.") || name.contains(".moe.gate.");
        match trains {
            true => assert_ne!(w, &before[name], "{name} did not train"),
            false => assert_eq!(w, &before[name], "{name} is frozen but changed"),
        }
    }
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(tmp.path().join("run/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    for v in &lines {
        // Two layers of two experts; every token of the step went to one of them.
        let routing = v["routing"].as_array().unwrap();
        assert_eq!(routing.len(), 2);
        let per_layer: Vec<u64> = routing
            .iter()
            .map(|l| {
                l.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .sum()
            })
            .collect();
        assert!(per_layer[0] > 0 && per_layer[0] == per_layer[1], "{v}");
        let balance = v["loss_parts"]["balance"].as_f64().unwrap();
        assert!((1.0..=2.0 + 1e-9).contains(&(balance / 2.0)), "{v}");
    }
    // Resume equals a straight run with experts, and the saved model loads back with them.
    let build = |dir: &Path, seed| moe_trainer(experts_only(dir), seed);
    let mut first = build(&tmp.path().join("resumed"), 5);
    first.train_until(&mut Quiet, Some(3)).unwrap();
    let mut second = build(&tmp.path().join("resumed"), 5);
    second.resume().unwrap();
    second.train(&mut Quiet).unwrap();
    assert!(max_diff(&weights(&t), &weights(&second)) < 1e-6);
    let loaded = Encoder::load(&tmp.path().join("run/model"), &Device::Cpu).unwrap();
    assert!(loaded.config().is_variant());
}
