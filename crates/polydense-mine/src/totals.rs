//! The running totals of a mining run, batch after batch: what the stats file will say,
//! kept in a form that the progress file can carry across a resume.

use crate::stage::DropLog;
use crate::stats::{Histogram, MineStats, PerQuery};
use polydense_data::TrainExample;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bins of the score histograms in the stats file.
const HISTOGRAM_BINS: usize = 20;

/// What one query came to, before the example is kept or left out.
pub struct QueryOutcome {
    /// The example, with every surviving negative.
    pub example: TrainExample,
    /// Candidates proposed, per source.
    pub proposed: BTreeMap<String, u64>,
    /// Survivors left out by the quota, per source.
    pub not_sampled: BTreeMap<String, u64>,
    /// Each source's scores of the positives.
    pub positive_scores: Vec<(String, Vec<Option<f32>>)>,
    /// Scores of what the false-negative filter dropped, per source.
    pub dropped_scores: BTreeMap<String, Vec<f32>>,
}

/// Totals so far; serialisable so a resumed run continues them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunTotals {
    /// Queries processed.
    pub queries_done: usize,
    /// Examples written.
    pub examples: usize,
    /// Examples left out with too few negatives.
    pub skipped_too_few_negatives: usize,
    /// Examples with fewer negatives than asked for.
    pub short_examples: usize,
    /// Negatives of each written example.
    pub negative_counts: Vec<usize>,
    /// Per source.
    pub proposed: BTreeMap<String, u64>,
    /// Per source.
    pub not_sampled: BTreeMap<String, u64>,
    /// Per source.
    pub kept: BTreeMap<String, u64>,
    /// Per filter and reason.
    pub dropped: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per stage and counter.
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
    /// Scores of written negatives, per source.
    pub negative_scores: BTreeMap<String, Vec<f32>>,
    /// Scores of positives, per source.
    pub positive_scores: BTreeMap<String, Vec<f32>>,
    /// Scores of false-negative drops, per source.
    pub dropped_scores: BTreeMap<String, Vec<f32>>,
    /// Later stages' scores of written negatives, per `stage.field`.
    pub stage_scores: BTreeMap<String, Vec<f32>>,
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, n) in from {
        *into.entry(k).or_default() += n;
    }
}

fn histograms(m: BTreeMap<String, Vec<f32>>) -> BTreeMap<String, Histogram> {
    m.into_iter()
        .filter_map(|(s, v)| Histogram::of(&v, HISTOGRAM_BINS).map(|h| (s, h)))
        .collect()
}

impl RunTotals {
    /// Adds a batch's drop log.
    pub fn add_log(&mut self, log: DropLog) {
        let mut merged = DropLog {
            counts: std::mem::take(&mut self.dropped),
            counters: std::mem::take(&mut self.counters),
        };
        merged.merge(log);
        self.dropped = merged.counts;
        self.counters = merged.counters;
    }

    /// Adds one query's outcome; returns its example unless it has fewer than
    /// `min_negatives` negatives.
    pub fn add(
        &mut self,
        o: QueryOutcome,
        min_negatives: usize,
        requested: usize,
    ) -> Option<TrainExample> {
        self.queries_done += 1;
        add_counts(&mut self.proposed, o.proposed);
        add_counts(&mut self.not_sampled, o.not_sampled);
        for (s, v) in o.dropped_scores {
            self.dropped_scores.entry(s).or_default().extend(v);
        }
        for (s, v) in o.positive_scores {
            self.positive_scores
                .entry(s)
                .or_default()
                .extend(v.into_iter().flatten());
        }
        let ex = o.example;
        if ex.negative_passages.len() < min_negatives {
            self.skipped_too_few_negatives += 1;
            return None;
        }
        if ex.negative_passages.len() < requested {
            self.short_examples += 1;
        }
        for n in &ex.negative_passages {
            let src = n.source.clone().unwrap_or_default();
            *self.kept.entry(src.clone()).or_default() += 1;
            self.negative_scores
                .entry(src)
                .or_default()
                .push(n.score.unwrap_or(0.0) as f32);
            for (k, v) in &n.stage_scores {
                self.stage_scores
                    .entry(k.clone())
                    .or_default()
                    .push(*v as f32);
            }
        }
        self.negative_counts.push(ex.negative_passages.len());
        self.examples += 1;
        Some(ex)
    }

    /// The stats file's contents (`queries`/`skipped_no_positive` are left for the caller).
    pub fn stats(&self, requested: usize) -> MineStats {
        MineStats {
            requested_per_query: requested,
            examples: self.examples,
            skipped_too_few_negatives: self.skipped_too_few_negatives,
            short_examples: self.short_examples,
            negatives_per_query: PerQuery::of(&self.negative_counts),
            proposed: self.proposed.clone(),
            dropped: self.dropped.clone(),
            not_sampled: self.not_sampled.clone(),
            kept: self.kept.clone(),
            negative_scores: histograms(self.negative_scores.clone()),
            positive_scores: histograms(self.positive_scores.clone()),
            dropped_scores: histograms(self.dropped_scores.clone()),
            stage_scores: histograms(self.stage_scores.clone()),
            counters: self.counters.clone(),
            ..MineStats::default()
        }
    }
}
