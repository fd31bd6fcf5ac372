//! Iterative clustered training through the trainer, on tiny random models: clustered
//! batches hold no shared positive and use every example once per epoch, clustering runs are
//! logged with a projection, SAC's k grows, and `--resume` continues exactly across a
//! refresh.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device};
use polydense_data::{TrainExample, TrainPassage};
use polydense_mine::AdversarialRule;
use polydense_model::{Encoder, EncoderConfig};
use polydense_train::{
    BatchSampler, DualEncoder, EpochContext, HashTokenize, IctConfig, InfoNceConfig, LossConfig,
    Quiet, SamplerConfig, SamplerStats, TrainConfig, Trainer,
};

mod common;
use common::text;

/// `n` examples in four languages; examples i and i + n/2 share their positive passage (two
/// questions on one paragraph), so a batch could hold a false in-batch negative.
fn examples(n: usize) -> Vec<TrainExample> {
    let half = n / 2;
    let passage = |i: usize| TrainPassage {
        docid: format!("d{}", i % half),
        text: format!("{} {}", text(i % half, 3), text(i % half + 1, 2 + i % 4)),
        ..TrainPassage::default()
    };
    (0..n)
        .map(|i| TrainExample {
            query_id: format!("q{i}"),
            query: text(i, 2 + i % 3),
            lang: Some(["en", "de", "zh", "ar"][i % 4].into()),
            positive_passages: vec![passage(i)],
            negative_passages: vec![passage(i + 1), passage(i + 5)],
        })
        .collect()
}

fn tok() -> HashTokenize {
    HashTokenize {
        vocab: EncoderConfig::tiny_bert().vocab_size as u32,
        max_len: 12,
    }
}

/// A clustered run, `ict` changing the clustered sampler's keys from refresh `refresh` and
/// 4 clusters.
fn config(
    out: &Path,
    sampler: &str,
    refresh: &str,
    ict: impl FnOnce(&mut IctConfig),
) -> TrainConfig {
    let mut keys = IctConfig {
        refresh: refresh.into(),
        clusters: 4,
        ..IctConfig::default()
    };
    ict(&mut keys);
    TrainConfig {
        out_dir: out.to_path_buf(),
        sampler: match sampler {
            "ict-p" => SamplerConfig::IctP(keys),
            "ict-q" => SamplerConfig::IctQ(keys),
            other => panic!("not a clustered sampler: {other}"),
        },
        batch_size: 4,
        negatives: 1,
        epochs: 3,
        lr: 1e-3,
        warmup_steps: 2,
        loss: LossConfig::Infonce(InfoNceConfig { temperature: 0.1 }),
        seed: 11,
        encode_batch_size: 7,
        ..TrainConfig::default()
    }
}

/// Every epoch's plan, as the trainer received it.
type Plans = Arc<Mutex<Vec<(u64, Vec<Vec<usize>>)>>>;

/// Wraps a sampler and records the plans it hands out.
struct Recording {
    inner: Box<dyn BatchSampler>,
    plans: Plans,
}

impl BatchSampler for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn epoch_batches(
        &mut self,
        ctx: &mut EpochContext,
        examples: &[TrainExample],
        batch_size: usize,
    ) -> polydense_train::Result<Vec<Vec<usize>>> {
        let plan = self.inner.epoch_batches(ctx, examples, batch_size)?;
        self.plans.lock().unwrap().push((ctx.epoch, plan.clone()));
        Ok(plan)
    }
    fn state(&self) -> serde_json::Value {
        self.inner.state()
    }
    fn restore(&mut self, state: &serde_json::Value) -> polydense_train::Result<()> {
        self.inner.restore(state)
    }
    fn stats(&self) -> Option<SamplerStats> {
        self.inner.stats()
    }
}

/// [`examples`], with three generated negatives each (`source = "perturb"`) when the run
/// has an adversarial rule.
fn examples_for(cfg: &TrainConfig, n: usize) -> Vec<TrainExample> {
    let mut ex = examples(n);
    if cfg.adversarial.is_some() {
        for (i, e) in ex.iter_mut().enumerate() {
            for (k, kind) in ["numeric", "entity", "negation"].iter().enumerate() {
                e.negative_passages.push(TrainPassage {
                    docid: format!("q{i}:perturb:{kind}:0"),
                    text: format!("{} {}", e.positive_passages[0].text, text(i + k, 1 + k)),
                    source: Some("perturb".into()),
                    perturbation: Some(format!("{kind} edit{i}")),
                    ..TrainPassage::default()
                });
            }
        }
    }
    ex
}

fn trainer(cfg: TrainConfig, model_seed: u64, n: usize) -> (Trainer, Plans) {
    let enc = Encoder::random(&EncoderConfig::tiny_bert(), &Device::Cpu, model_seed).unwrap();
    let plans = Plans::default();
    let inner = cfg.sampler.build(cfg.seed, n, cfg.batch_size).unwrap();
    let ex = examples_for(&cfg, n);
    let t = Trainer::new(cfg, DualEncoder::shared(enc), Box::new(tok()), ex)
        .unwrap()
        .with_sampler(Box::new(Recording {
            inner,
            plans: plans.clone(),
        }));
    (t, plans)
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
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
    a.iter()
        .flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn ict_p_batches_use_every_example_once_without_shared_positives_and_log_each_clustering() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "ict-p", "fixed", |c| c.refresh_every = 2);
    let n = 24;
    let ex = examples(n);
    let (mut t, plans) = trainer(cfg, 3, n);
    let s = t.train(&mut Quiet).unwrap();
    assert!(s.model_dir.is_some());
    let plans = plans.lock().unwrap();
    assert_eq!(plans.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    for (epoch, plan) in plans.iter() {
        let mut all: Vec<usize> = plan.concat();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>(), "epoch {epoch}");
        for batch in plan {
            assert!(batch.len() <= 4);
            let ids: HashSet<&str> = batch
                .iter()
                .map(|&i| ex[i].positive_passages[0].docid.as_str())
                .collect();
            assert_eq!(
                ids.len(),
                batch.len(),
                "epoch {epoch}: shared positive in {batch:?}"
            );
        }
    }
    // Epoch 1 reuses epoch 0's clusters in a new order.
    assert_ne!(plans[0].1, plans[1].1);

    // Clusterings at epochs 0 and 2 (every 2 epochs).
    let runs = lines(&tmp.path().join("clusters.jsonl"));
    let got: Vec<(u64, &str)> = runs
        .iter()
        .map(|r| (r["epoch"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![(0, "initial"), (2, "schedule")]);
    for r in &runs {
        assert_eq!((r["k"].as_u64(), r["n"].as_u64()), (Some(4), Some(24)));
        for key in [
            "encode_seconds",
            "kmeans_seconds",
            "inertia",
            "lang_entropy",
        ] {
            assert!(r[key].is_number(), "{key} in {r}");
        }
        // Four languages: at most 2 bits per cluster.
        let h = r["lang_entropy"].as_f64().unwrap();
        assert!((0.0..=2.0).contains(&h), "{h}");
        assert_eq!(
            r["batches"].as_u64().unwrap() as usize,
            plans[r["epoch"].as_u64().unwrap() as usize].1.len()
        );
    }
    assert!(runs[1]["step"].as_u64().unwrap() > 0);

    // The projection of the last clustering: every example, with its cluster and language.
    let proj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("projection.json")).unwrap())
            .unwrap();
    assert_eq!(proj["k"], 4);
    assert_eq!(proj["step"], runs[1]["step"]);
    let points = proj["points"].as_array().unwrap();
    assert_eq!(points.len(), n);
    for p in points {
        let p = p.as_array().unwrap();
        assert!(p[0].is_number() && p[1].is_number());
        assert!(p[2].as_u64().unwrap() < 4);
        assert!(["en", "de", "zh", "ar"].contains(&p[3].as_str().unwrap()));
    }

    // Each step record carries the clustering count, its cost and k.
    let steps: Vec<serde_json::Value> = lines(&tmp.path().join("metrics.jsonl"))
        .into_iter()
        .filter(|v| v.get("loss").is_some())
        .collect();
    assert_eq!(steps.len() as u64, s.steps);
    for v in &steps {
        let want = if v["epoch"].as_u64().unwrap() < 2 {
            1
        } else {
            2
        };
        assert_eq!(v["clusterings"].as_u64(), Some(want), "{v}");
        assert!(v["cluster_seconds"].as_f64().unwrap() > 0.0);
        assert_eq!(v["k"].as_u64(), Some(4));
    }
}

#[test]
fn sac_grows_k_and_ict_q_clusters_queries() {
    let tmp = tempfile::tempdir().unwrap();
    // A schedule scaled to 40 examples: 2, 3, 4 clusters, capped at N/10 = 4.
    let mut cfg = config(tmp.path(), "ict-q", "sac", |c| {
        c.sac_k_start = Some(2);
        c.sac_k_step = Some(1);
        c.sac_warmup_epochs = Some(0);
        c.sac_k_min = Some(1);
        c.sac_k_max = Some(10);
    });
    cfg.epochs = 4;
    let (mut t, _) = trainer(cfg, 4, 40);
    t.train(&mut Quiet).unwrap();
    let runs = lines(&tmp.path().join("clusters.jsonl"));
    let got: Vec<(u64, u64, &str)> = runs
        .iter()
        .map(|r| {
            let e = r["epoch"].as_u64().unwrap();
            (e, r["k"].as_u64().unwrap(), r["reason"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, 2, "initial"), (1, 3, "schedule"), (2, 4, "schedule")]
    );
}

/// A run paused (and possibly rolled back to an earlier checkpoint, as after a crash) and
/// resumed ends with the weights, losses and clustering log of a straight run.
fn resume_matches_straight(cfg: impl Fn(&Path) -> TrainConfig, pause: u64, rollback: Option<u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let n = 24;
    let (mut straight, _) = trainer(cfg(&tmp.path().join("straight")), 5, n);
    let s = straight.train(&mut Quiet).unwrap();

    let run = tmp.path().join("resumed");
    let (mut first, _) = trainer(cfg(&run), 5, n);
    first.train_until(&mut Quiet, Some(pause)).unwrap();
    drop(first);
    if let Some(step) = rollback {
        // Lose the newest checkpoint: the clustering logged after `step` must be redone
        // once, not logged twice.
        let root = run.join("checkpoints");
        std::fs::remove_dir_all(polydense_train::checkpoint::checkpoint_dir(&run, pause)).unwrap();
        std::fs::write(root.join("latest"), format!("step-{step:08}\n")).unwrap();
    }
    let (mut second, _) = trainer(cfg(&run), 77, n);
    assert_eq!(second.resume().unwrap(), Some(rollback.unwrap_or(pause)));
    let r = second.train(&mut Quiet).unwrap();
    assert_eq!(r.steps, s.steps);
    let d = max_diff(&weights(&straight), &weights(&second));
    assert!(d < 1e-6, "resumed weights differ by {d}");

    let losses = |dir: &Path| -> Vec<(u64, f64, u64)> {
        lines(&dir.join("metrics.jsonl"))
            .iter()
            .filter(|v| v.get("loss").is_some())
            .map(|v| {
                let c = v["clusterings"].as_u64().unwrap();
                (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap(), c)
            })
            .collect()
    };
    let (a, b) = (losses(&tmp.path().join("straight")), losses(&run));
    let adversarial = |dir: &Path| -> Vec<serde_json::Value> {
        lines(&dir.join("metrics.jsonl"))
            .into_iter()
            .filter_map(|mut v| {
                let mut a = v.get_mut("adversarial")?.take();
                a["seconds"] = serde_json::Value::Null;
                Some(a)
            })
            .collect()
    };
    assert_eq!(adversarial(&tmp.path().join("straight")), adversarial(&run));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.0 == y.0 && x.2 == y.2 && (x.1 - y.1).abs() < 1e-5,
            "{x:?} vs {y:?}"
        );
    }
    let runs = |dir: &Path| -> Vec<(u64, u64, String, u64)> {
        lines(&dir.join("clusters.jsonl"))
            .iter()
            .map(|r| {
                (
                    r["step"].as_u64().unwrap(),
                    r["k"].as_u64().unwrap(),
                    r["reason"].as_str().unwrap().to_string(),
                    r["batches"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let straight_runs = runs(&tmp.path().join("straight"));
    assert!(straight_runs.len() >= 2, "{straight_runs:?}");
    assert_eq!(straight_runs, runs(&run));
    // The refresh after the pause really happened after it.
    assert!(straight_runs.last().unwrap().0 >= rollback.unwrap_or(pause));
}

#[test]
fn resume_mid_epoch_is_exact_across_a_refresh() {
    // 24 examples in batches of 4: 6 batches per epoch; the pause at step 8 is mid epoch 1,
    // and the clustering of epoch 2 runs after the resume.
    let cfg = |p: &Path| TrainConfig {
        checkpoint_every: 4,
        ..config(p, "ict-p", "fixed", |c| c.refresh_every = 2)
    };
    resume_matches_straight(cfg, 8, None);
}

#[test]
fn resume_after_a_lost_checkpoint_redoes_an_acr_refresh_once() {
    // ACR on drift alone (the threshold 0 always fires once the minimum gap of one epoch has
    // passed): the probe embeddings travel in the checkpoint. Checkpoints at 6, 12 and the
    // pause at 14; losing 14 resumes at 12, the end of epoch 1, before epoch 2's clustering.
    let cfg = |p: &Path| TrainConfig {
        checkpoint_every: 6,
        keep_checkpoints: 3,
        ..config(p, "ict-p", "acr", |c| {
            c.acr_min_gap = 1;
            c.acr_max_gap = 4;
            c.acr_drift = 0.0;
            c.acr_loss_drop = 10.0;
            c.acr_probe = 8;
        })
    };
    resume_matches_straight(cfg, 14, Some(12));
    let tmp = tempfile::tempdir().unwrap();
    let (mut t, _) = trainer(cfg(tmp.path()), 5, 24);
    t.train(&mut Quiet).unwrap();
    let reasons: Vec<String> = lines(&tmp.path().join("clusters.jsonl"))
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(reasons, vec!["initial", "drift", "drift"]);
}

/// ICT-P with the AXL-ICT loop: keep the hardest half of each query's generated negatives,
/// re-chosen at every clustering (every epoch).
fn axl(p: &Path) -> TrainConfig {
    TrainConfig {
        checkpoint_every: 4,
        adversarial: Some(AdversarialRule {
            keep_fraction: 0.5,
            margin: 10.0,
            ..AdversarialRule::default()
        }),
        ..config(p, "ict-p", "fixed", |c| c.refresh_every = 1)
    }
}

#[test]
fn the_adversarial_loop_refilters_at_each_refresh_and_steps_draw_only_what_it_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 24;
    let (mut t, _) = trainer(axl(tmp.path()), 5, n);
    t.train(&mut Quiet).unwrap();
    let records: Vec<serde_json::Value> = lines(&tmp.path().join("metrics.jsonl"))
        .into_iter()
        .filter_map(|v| v.get("adversarial").cloned())
        .collect();
    let clusterings = lines(&tmp.path().join("clusters.jsonl")).len();
    assert_eq!(records.len(), clusterings, "one refresh per clustering");
    assert_eq!(records.len(), 3);
    for r in &records {
        // 3 generated per example; ceil(half of 3) = 2 kept per query.
        assert_eq!(r["judged"], 72);
        let kept: u64 = r["kept"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(kept, 48, "{r}");
        assert_eq!(r["dropped"]["easy (below the kept fraction)"], 24);
    }
    // What the last refresh dropped is never drawn; mined negatives still are.
    let state = t.state().adversarial.clone();
    assert_eq!(state.refreshes, 3);
    assert_eq!(state.dropped.len(), n);
    let ex = examples_for(t.config(), n);
    let mut drawn_generated = 0;
    for step in 0..20 {
        let batch: Vec<usize> = (0..n).collect();
        let b = t.collate(&batch, step);
        // Groups of 3: the positive, one mined negative, one kept generated negative.
        assert_eq!(b.group, 3);
        for (row, id) in b.passage_ids.iter().enumerate().filter(|(r, _)| r % 3 != 0) {
            let i = row / 3;
            let k = ex[i]
                .negative_passages
                .iter()
                .position(|p| &p.docid == id)
                .unwrap();
            assert!(
                !state.dropped[&i].contains(&(k as u32)),
                "example {i} drew dropped {id}"
            );
            assert_eq!(k >= 2, row % 3 == 2, "row {row}: {id}");
            drawn_generated += usize::from(k >= 2);
        }
    }
    assert!(drawn_generated > 0);
}

#[test]
fn resume_is_exact_across_an_adversarial_refresh() {
    // The pause at step 8 is mid epoch 1; epoch 2's clustering and refresh run after it.
    resume_matches_straight(axl, 8, None);
}
