//! The AXL-ICT feedback loop: at every clustering refresh the trainer re-scores the pool of
//! generated negatives in the training file (their `source` is one of the rule's sources)
//! with the model as it is now, and re-applies the adversarial rule of polydense-mine, so
//! the negatives a step may draw are the ones the current model finds hardest. Mined
//! negatives are always drawable; a generated one only while the last refresh kept it.
//!
//! With a clustered sampler (`ict-p`, `ict-q`) the pool is re-filtered whenever the sampler
//! re-clusters; with any other sampler, once before the first epoch. What was kept lives in
//! the checkpoint, so a resumed run draws exactly what an uninterrupted one draws.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use polydense_data::TrainExample;
use polydense_mine::adversarial::{AdversarialRule, Scored, Verdict};
use polydense_mine::llm_generate::overlap;
use polydense_mine::perturb::positive_in_language;
use polydense_model::TextKind;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sampler::Embedder;

/// What the last refresh left drawable, saved in every checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdversarialState {
    /// Per example (by index), the generated negatives (indices into its
    /// `negative_passages`) that the last refresh did not keep.
    pub dropped: BTreeMap<usize, Vec<u32>>,
    /// Refreshes so far.
    pub refreshes: u64,
}

impl AdversarialState {
    /// The negatives of example `i` a step may draw, in file order.
    pub fn drawable(&self, i: usize, n: usize) -> Vec<usize> {
        match self.dropped.get(&i) {
            Some(d) => (0..n).filter(|k| !d.contains(&(*k as u32))).collect(),
            None => (0..n).collect(),
        }
    }
}

/// One refresh, as metrics.jsonl and the report show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Steps done when it ran.
    pub step: u64,
    /// The epoch it was planned for.
    pub epoch: u64,
    /// Generated negatives judged.
    pub judged: u64,
    /// Kept, by perturbation kind (`numeric`, `entity`, `negation`, or the source).
    pub kept: BTreeMap<String, u64>,
    /// Dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// The kept fraction and the margin at this point of training.
    pub keep_fraction: f32,
    /// The false-negative margin at this point.
    pub margin: f32,
    /// Mean m = sim(q, neg) − sim(q, pos) of the kept negatives.
    pub mean_kept_margin: Option<f64>,
    /// Seconds spent embedding and judging.
    pub seconds: f64,
    /// A few kept negatives per kind: (kind, query, edit, m).
    pub examples: Vec<(String, String, String, f32)>,
}

/// The kind of a generated negative: the first word of its `perturbation` (`numeric`),
/// prefixed by its source when that is not the rule generator's (`llm_perturb:numeric`), so
/// the counts tell rules from LLM rewrites; else its source.
fn kind_of(p: &polydense_data::TrainPassage) -> String {
    let source = p.source.as_deref().unwrap_or_default();
    match p
        .perturbation
        .as_deref()
        .and_then(|e| e.split_whitespace().next())
    {
        Some(kind) if source == "perturb" || source.is_empty() => kind.to_string(),
        Some(kind) => format!("{source}:{kind}"),
        None => source.to_string(),
    }
}

/// Re-scores every generated negative with `embedder` and applies `rule` at `progress`
/// (steps done / total); returns the new state and what it did.
pub fn refresh(
    rule: &AdversarialRule,
    examples: &[TrainExample],
    embedder: &mut dyn Embedder,
    progress: f64,
    previous: &AdversarialState,
) -> Result<(AdversarialState, RefreshRecord)> {
    let started = Instant::now();
    let sources: HashSet<&str> = rule.sources.iter().map(String::as_str).collect();
    let generated = |e: &TrainExample| -> Vec<usize> {
        (0..e.negative_passages.len())
            .filter(|&k| {
                e.negative_passages[k]
                    .source
                    .as_deref()
                    .is_some_and(|s| sources.contains(s))
            })
            .collect()
    };
    let (mut queries, mut positives, mut negatives) = (Vec::new(), Vec::new(), Vec::new());
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        let g = generated(e);
        if g.is_empty() {
            continue;
        }
        let pos = positive_in_language(&e.positive_passages, e.lang.as_deref())
            .expect("examples have a positive");
        queries.push(e.query.clone());
        positives.push(pos.full_text());
        negatives.extend(g.iter().map(|&k| e.negative_passages[k].full_text()));
        rows.push((i, g));
    }
    let dim = embedder.dim();
    let qv = embedder.embed(&queries, TextKind::Query)?;
    let pv = embedder.embed(&positives, TextKind::Passage)?;
    let nv = embedder.embed(&negatives, TextKind::Passage)?;
    let row = |v: &[f32], i: usize| v[i * dim..(i + 1) * dim].to_vec();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut state = AdversarialState {
        dropped: BTreeMap::new(),
        refreshes: previous.refreshes + 1,
    };
    let mut record = RefreshRecord {
        keep_fraction: rule.keep_fraction_at(progress),
        margin: rule.margin_at(progress),
        ..RefreshRecord::default()
    };
    let (mut kept_sum, mut kept_n) = (0f64, 0u64);
    let mut next = 0;
    for (r, (i, g)) in rows.iter().enumerate() {
        let e = &examples[*i];
        let q = row(&qv, r);
        let pos = dot(&q, &row(&pv, r));
        let scored: Vec<Scored> = g
            .iter()
            .map(|&k| {
                let s = Scored {
                    neg: dot(&q, &row(&nv, next)),
                    pos,
                    overlap: overlap(&e.negative_passages[k].text, &positives[r]),
                };
                next += 1;
                s
            })
            .collect();
        let verdicts = rule.judge(&scored, progress);
        for ((&k, v), s) in g.iter().zip(&verdicts).zip(&scored) {
            record.judged += 1;
            let neg = &e.negative_passages[k];
            if *v == Verdict::Keep {
                let kind = kind_of(neg);
                *record.kept.entry(kind.clone()).or_default() += 1;
                kept_sum += s.margin() as f64;
                kept_n += 1;
                if record.examples.iter().filter(|x| x.0 == kind).count() < 2 {
                    let edit = neg.perturbation.clone().unwrap_or_else(|| neg.text.clone());
                    record
                        .examples
                        .push((kind, e.query.clone(), edit, s.margin()));
                }
            } else {
                *record.dropped.entry(v.as_str().to_string()).or_default() += 1;
                state.dropped.entry(*i).or_default().push(k as u32);
            }
        }
    }
    record.mean_kept_margin = (kept_n > 0).then(|| kept_sum / kept_n as f64);
    record.seconds = started.elapsed().as_secs_f64();
    Ok((state, record))
}
