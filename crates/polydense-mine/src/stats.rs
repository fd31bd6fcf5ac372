//! The stats file of a mining run: how many negatives each query got, how their scores are
//! spread, and what each filter dropped and why.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Equal-width histogram of scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Mean value.
    pub mean: f32,
    /// `counts.len() + 1` bin edges, from `min` to `max`.
    pub edges: Vec<f32>,
    /// Values per bin; the last bin includes `max`.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Bins `values` into `bins` equal-width bins; `None` when there are no values.
    pub fn of(values: &[f32], bins: usize) -> Option<Self> {
        let bins = bins.max(1);
        let (min, max) = values
            .iter()
            .fold(None, |acc: Option<(f32, f32)>, &v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            })?;
        let width = (max - min) / bins as f32;
        let edges = (0..=bins).map(|i| min + width * i as f32).collect();
        let mut counts = vec![0u64; bins];
        for &v in values {
            let i = if width > 0.0 {
                (((v - min) / width) as usize).min(bins - 1)
            } else {
                0
            };
            counts[i] += 1;
        }
        let mean = (values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64) as f32;
        Some(Histogram {
            count: values.len() as u64,
            min,
            max,
            mean,
            edges,
            counts,
        })
    }
}

/// How many negatives the examples got.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PerQuery {
    /// Fewest negatives of an example.
    pub min: usize,
    /// Most negatives of an example.
    pub max: usize,
    /// Mean negatives per example.
    pub mean: f64,
    /// `negatives -> number of examples with that many`.
    pub counts: BTreeMap<usize, usize>,
}

impl PerQuery {
    /// Summarises the negative count of each example.
    pub fn of(ns: &[usize]) -> Self {
        let mut counts = BTreeMap::new();
        for &n in ns {
            *counts.entry(n).or_default() += 1;
        }
        PerQuery {
            min: ns.iter().copied().min().unwrap_or(0),
            max: ns.iter().copied().max().unwrap_or(0),
            mean: ns.iter().sum::<usize>() as f64 / ns.len().max(1) as f64,
            counts,
        }
    }
}

/// Everything a mining run reports, written as JSON beside the training file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MineStats {
    /// Queries of the split.
    pub queries: usize,
    /// Training examples written.
    pub examples: usize,
    /// Queries left out because no judged document has grade ≥ 1.
    pub skipped_no_positive: usize,
    /// Queries left out because fewer than `min_negatives` negatives survived.
    pub skipped_too_few_negatives: usize,
    /// Negatives asked for per query (the sum of the miners' `n`).
    pub requested_per_query: usize,
    /// Examples that got fewer negatives than requested.
    pub short_examples: usize,
    /// Distribution of negatives per written example.
    pub negatives_per_query: PerQuery,
    /// Candidates proposed, per source.
    pub proposed: BTreeMap<String, u64>,
    /// Candidates dropped, per filter and reason.
    pub dropped: BTreeMap<String, BTreeMap<String, u64>>,
    /// Survivors of the filters left out by the per-source quota, per source.
    pub not_sampled: BTreeMap<String, u64>,
    /// Negatives written, per source.
    pub kept: BTreeMap<String, u64>,
    /// Scores of the written negatives, per source.
    pub negative_scores: BTreeMap<String, Histogram>,
    /// Scores each source gave the positives, for comparison with the negatives'.
    pub positive_scores: BTreeMap<String, Histogram>,
    /// Scores of the candidates the false-negative filter dropped, per source: set against
    /// `negative_scores` they show where the margin cut. Absent from files written before it
    /// existed, which then load with it empty.
    #[serde(default)]
    pub dropped_scores: BTreeMap<String, Histogram>,
    /// Negatives written with their own query (for CLPL), by where the query came from.
    #[serde(default)]
    pub negative_queries: crate::negative_queries::NegativeQueryCounts,
    /// Scores later stages gave the written negatives, per `stage.field`
    /// (`llm_judge.hardness`, `rag_select.score`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_scores: BTreeMap<String, Histogram>,
    /// What stages counted besides drops, per stage: an LLM stage's items, requests, cache
    /// hits, retries, parse failures, skipped items, tokens and wall time (ms).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_include_both_ends() {
        let h = Histogram::of(&[0.0, 1.0, 2.0, 3.0, 4.0], 4).unwrap();
        assert_eq!(h.counts, vec![1, 1, 1, 2]);
        assert_eq!(h.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.mean, 2.0);
        assert!(Histogram::of(&[], 4).is_none());
        assert_eq!(Histogram::of(&[5.0, 5.0], 3).unwrap().counts, vec![2, 0, 0]);
    }

    #[test]
    fn stats_without_dropped_scores_still_load() {
        let mut json = serde_json::to_value(MineStats::default()).unwrap();
        json.as_object_mut().unwrap().remove("dropped_scores");
        let back: MineStats = serde_json::from_value(json).unwrap();
        assert!(back.dropped_scores.is_empty());
        assert_eq!(back, MineStats::default());
    }

    #[test]
    fn per_query_summary() {
        let p = PerQuery::of(&[2, 4, 4]);
        assert_eq!((p.min, p.max), (2, 4));
        assert!((p.mean - 10.0 / 3.0).abs() < 1e-9);
        assert_eq!(p.counts[&4], 2);
    }
}
