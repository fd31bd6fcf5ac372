//! Mining end to end on tests/fixtures/mine (made by scripts/make-bm25-mine-fixtures.py):
//! the training file loads back through polydense-data, negatives carry score and source,
//! and each filter drops what it should and says so in the stats.

use polydense_data::beir::BeirDataset;
use polydense_data::TrainExample;
use polydense_mine::{
    mine_queries, run_config, AdversarialFilter, AdversarialRule, Bm25MinerConfig, Candidate,
    DropLog, FilterConfig, Generator, GeneratorConfig, MarginMode, MineConfig, MineStats,
    MinerConfig, PerturbConfig, Pipeline, Progress, QueryCandidates, Reference, Sampling, Silent,
};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/mine"
    ))
}

fn config(out: &std::path::Path, filters: Vec<FilterConfig>) -> MineConfig {
    MineConfig {
        dataset: fixture(),
        split: "train".into(),
        output: out.join("train.jsonl"),
        stats: None,
        seed: 1,
        min_negatives: 1,
        miners: vec![MinerConfig::Bm25(Bm25MinerConfig {
            depth: 20,
            n: 20,
            sampling: Sampling::Top,
            ..Bm25MinerConfig::default()
        })],
        filters,
        generators: vec![],
        llm: None,
        max_queries: None,
        checkpoint_every: 100,
        negative_queries: Default::default(),
    }
}

fn negatives(ex: &TrainExample) -> Vec<&str> {
    ex.negative_passages
        .iter()
        .map(|p| p.docid.as_str())
        .collect()
}

fn run(filters: Vec<FilterConfig>) -> (Vec<TrainExample>, MineStats, MineStats) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), filters);
    let stats = run_config(&cfg, &Silent).unwrap();
    let examples = polydense_data::tevatron::load_train(&cfg.output).unwrap();
    let on_disk: MineStats =
        serde_json::from_str(&std::fs::read_to_string(cfg.stats_path()).unwrap()).unwrap();
    (examples, stats, on_disk)
}

#[test]
fn without_filters_the_copy_and_the_false_negative_are_proposed() {
    let (ex, stats, on_disk) = run(vec![]);
    assert_eq!(stats, on_disk);
    assert_eq!(stats.queries, 3);
    assert_eq!(stats.skipped_no_positive, 1, "q3 has only grade 0");
    assert_eq!(ex.len(), 2);
    let q1 = &ex[0];
    assert_eq!(q1.query_id, "q1");
    assert_eq!(q1.positive_passages[0].docid, "d1");
    let negs = negatives(q1);
    assert!(!negs.contains(&"d1"), "the positive is never a negative");
    assert!(negs.contains(&"d2") && negs.contains(&"d3"), "{negs:?}");
    for n in &q1.negative_passages {
        assert_eq!(n.source.as_deref(), Some("bm25"));
        assert!(n.score.unwrap() > 0.0);
        assert!(!n.text.is_empty());
    }
    let scores: Vec<f64> = q1
        .negative_passages
        .iter()
        .map(|n| n.score.unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "top sampling keeps rank order"
    );
    assert_eq!(
        stats.kept["bm25"],
        (negs.len() + ex[1].negative_passages.len()) as u64
    );
    assert!(stats.dropped.is_empty());
    assert_eq!(stats.negative_scores["bm25"].count, stats.kept["bm25"]);
}

#[test]
fn dedup_drops_the_normalised_copy_of_the_positive() {
    let (ex, stats, _) = run(vec![FilterConfig::Dedup {
        by_id: true,
        by_text: true,
    }]);
    assert!(!negatives(&ex[0]).contains(&"d2"));
    assert!(negatives(&ex[0]).contains(&"d3"));
    assert_eq!(stats.dropped["dedup"]["same text as a positive"], 1);
}

#[test]
fn false_negative_filter_drops_what_outscores_the_positive() {
    let (ex, stats, _) = run(vec![FilterConfig::FalseNegative {
        margin: 1.0,
        mode: MarginMode::Relative,
        reference: Reference::Max,
    }]);
    let pos = stats.positive_scores["bm25"].max as f64;
    for e in &ex {
        for n in &e.negative_passages {
            assert!(n.score.unwrap() <= pos + 1e-6);
        }
    }
    assert!(
        !negatives(&ex[0]).contains(&"d3"),
        "d3 outscores the positive"
    );
    assert!(stats.dropped["false_negative"].values().sum::<u64>() >= 1);
    // A tighter margin drops at least as many.
    let (_, tight, _) = run(vec![FilterConfig::FalseNegative {
        margin: 0.3,
        mode: MarginMode::Relative,
        reference: Reference::Max,
    }]);
    let n = |s: &MineStats| {
        s.dropped
            .get("false_negative")
            .map_or(0, |r| r.values().sum::<u64>())
    };
    assert!(n(&tight) > n(&stats), "{} vs {}", n(&tight), n(&stats));
}

#[test]
fn window_and_quota_pick_the_right_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![]);
    let full = run_config(&cfg, &Silent).unwrap();
    let all = polydense_data::tevatron::load_train(&cfg.output).unwrap();
    cfg.miners = vec![MinerConfig::Bm25(Bm25MinerConfig {
        depth: 20,
        from: 1,
        to: Some(4),
        n: 2,
        sampling: Sampling::Top,
        ..Bm25MinerConfig::default()
    })];
    let stats = run_config(&cfg, &Silent).unwrap();
    let cut = polydense_data::tevatron::load_train(&cfg.output).unwrap();
    assert_eq!(negatives(&cut[0]), negatives(&all[0])[1..3].to_vec());
    assert_eq!(stats.requested_per_query, 2);
    assert_eq!(stats.not_sampled["bm25"], 2, "one left out of 3 per query");
    assert!(full.kept["bm25"] > stats.kept["bm25"]);
}

/// A generator that rewrites the positive twice: once verbatim (a copy dedup must catch)
/// and once with a changed word (a new negative).
struct Rewriter;

impl Generator for Rewriter {
    fn source(&self) -> &str {
        "rewrite"
    }

    fn generate(
        &self,
        batch: &[QueryCandidates<'_>],
        _: &mut DropLog,
        _: &dyn Progress,
    ) -> polydense_mine::Result<Vec<Vec<Candidate>>> {
        Ok(batch.iter().map(|q| rewrite(&q.ctx.positives[0])).collect())
    }
}

fn rewrite(pos: &polydense_data::TrainPassage) -> Vec<Candidate> {
    let mut copy = pos.clone();
    copy.docid = format!("{}-copy", pos.docid);
    let mut changed = pos.clone();
    changed.docid = format!("{}-gen", pos.docid);
    changed.text = format!("{} Not.", pos.text);
    [copy, changed]
        .into_iter()
        .enumerate()
        .map(|(rank, p)| Candidate {
            docid: p.docid.clone(),
            score: 0.0,
            source: "rewrite".into(),
            rank,
            passage: Some(p),
            stage_scores: Default::default(),
        })
        .collect()
}

#[test]
fn generated_negatives_pass_through_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        vec![FilterConfig::Dedup {
            by_id: true,
            by_text: true,
        }],
    );
    let ds = BeirDataset::load(&cfg.dataset, &cfg.split).unwrap();
    let (queries, _) = mine_queries(&ds);
    let mut p = Pipeline::from_config(&cfg, &ds.corpus, &dir.path().join("scratch")).unwrap();
    p.generators.push(Box::new(Rewriter));
    let (ex, stats) = p.run(&queries, &ds.corpus, &Silent).unwrap();
    let gen: Vec<&str> = ex[0]
        .negative_passages
        .iter()
        .filter(|n| n.source.as_deref() == Some("rewrite"))
        .map(|n| n.docid.as_str())
        .collect();
    assert_eq!(gen, vec!["d1-gen"]);
    assert_eq!(stats.proposed["rewrite"], 4, "two per query");
    assert!(stats.dropped["dedup"]["same text as a positive"] >= 2);
}

#[test]
fn a_bad_config_file_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        "dataset = 'x'\noutput = 'y'\n[[miner]]\nkind = 'bm26'\n",
    )
    .unwrap();
    let err = MineConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("mine.toml") && err.contains("bm26"), "{err}");
}

#[test]
fn rule_perturbations_carry_their_edit_and_the_adversarial_filter_keeps_the_hardest() {
    // The real e5-small scores the perturbations (an integration test: the asset is needed).
    if polydense_data::paths::test_model("e5-small").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        dir.path(),
        vec![FilterConfig::Dedup {
            by_id: true,
            by_text: true,
        }],
    );
    cfg.generators = vec![GeneratorConfig::Perturb(PerturbConfig::default())];
    let ds = BeirDataset::load(&cfg.dataset, &cfg.split).unwrap();
    let (queries, _) = mine_queries(&ds);
    let mut p = Pipeline::from_config(&cfg, &ds.corpus, &dir.path().join("scratch")).unwrap();
    let (all, _) = p.run(&queries, &ds.corpus, &Silent).unwrap();
    let rule = AdversarialRule {
        keep_fraction: 0.34,
        margin: 1.0,
        ..AdversarialRule::default()
    };
    p.filters
        .push(Box::new(AdversarialFilter::from_rule(&rule).unwrap()));
    let (kept, stats) = p.run(&queries, &ds.corpus, &Silent).unwrap();
    let generated = |ex: &[TrainExample]| -> Vec<Vec<(String, String)>> {
        ex.iter()
            .map(|e| {
                e.negative_passages
                    .iter()
                    .filter(|n| n.source.as_deref() == Some("perturb"))
                    .map(|n| (n.text.clone(), n.perturbation.clone().unwrap()))
                    .collect()
            })
            .collect()
    };
    let (before, after) = (generated(&all), generated(&kept));
    // q1's positive, "Paris is the capital of France.", gets a name swapped and a negation.
    let q1: Vec<&str> = before[0].iter().map(|(_, p)| p.as_str()).collect();
    assert!(q1.contains(&"negation is→is not"), "{q1:?}");
    assert!(q1.iter().any(|p| p.starts_with("entity France→")), "{q1:?}");
    assert!(before[0]
        .iter()
        .any(|(t, _)| t == "Paris is not the capital of France."));
    // The filter keeps ceil(34%) of each query's perturbations, the rest are counted.
    let mut dropped = 0;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            a.len(),
            (b.len() as f32 * 0.34).ceil() as usize,
            "{b:?} -> {a:?}"
        );
        assert!(a.iter().all(|x| b.contains(x)));
        dropped += b.len() - a.len();
    }
    assert!(dropped > 0);
    assert_eq!(
        stats.dropped["adversarial"]["easy (below the kept fraction)"],
        dropped as u64
    );
    let m = kept[0]
        .negative_passages
        .iter()
        .find(|n| n.source.as_deref() == Some("perturb"))
        .map(|n| n.stage_scores["adversarial.m"]);
    assert!(m.is_some_and(f64::is_finite));
}
