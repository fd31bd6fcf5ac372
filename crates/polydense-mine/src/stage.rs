//! The three kinds of pipeline stage and the values they exchange.
//!
//! Execution model (push, one pass): the [`crate::Pipeline`] calls every [`Miner`] once with
//! all queries; then, query by query, it passes the merged candidates through every
//! [`Filter`] in config order, keeps each miner's quota of survivors, asks every
//! [`Generator`] for new negatives, and sends those through the same filters.

use crate::error::Result;
use polydense_data::{Query, TrainPassage};
use std::collections::BTreeMap;

/// A query to mine for, with the ids of its relevant documents (grade ≥ 1 in the qrels).
#[derive(Debug, Clone, PartialEq)]
pub struct MineQuery {
    /// The query as read from queries.jsonl.
    pub query: Query,
    /// Relevant document ids, never to be proposed as negatives.
    pub positives: Vec<String>,
}

/// A negative proposed for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Corpus id, or a fresh id for a generated passage.
    pub docid: String,
    /// The proposer's score: comparable only with scores of the same `source`.
    pub score: f32,
    /// The stage that proposed it, written as `source` in the training file.
    pub source: String,
    /// 0-based rank in the proposer's list, after positives were removed.
    pub rank: usize,
    /// Title and text of a generated passage; `None` means "look it up in the corpus".
    pub passage: Option<TrainPassage>,
}

/// What one miner found for one query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mined {
    /// Candidates, best first, positives already excluded.
    pub candidates: Vec<Candidate>,
    /// The miner's score for each positive of the query, aligned with
    /// [`MineQuery::positives`]; `None` where it cannot score one (e.g. not in its index).
    pub positive_scores: Vec<Option<f32>>,
}

/// Everything a filter or a generator may look at for one query.
pub struct QueryContext<'a> {
    /// The query and its positive ids.
    pub query: &'a MineQuery,
    /// The positive passages with their text.
    pub positives: &'a [TrainPassage],
    /// Per source, the source's scores of the positives (see [`Mined::positive_scores`]).
    pub positive_scores: &'a BTreeMap<String, Vec<Option<f32>>>,
    /// Title and text of corpus documents, for filters that compare texts.
    pub corpus: &'a dyn PassageLookup,
}

/// Finds a corpus passage by id; the pipeline holds the corpus in memory.
pub trait PassageLookup: Sync {
    /// The passage with id `docid`, if the corpus has it.
    fn passage(&self, docid: &str) -> Option<&TrainPassage>;
}

impl<S: std::hash::BuildHasher + Sync> PassageLookup
    for std::collections::HashMap<&str, TrainPassage, S>
{
    fn passage(&self, docid: &str) -> Option<&TrainPassage> {
        self.get(docid)
    }
}

impl QueryContext<'_> {
    /// The text of a candidate: its own for a generated passage, else the corpus's.
    pub fn passage<'b>(&'b self, c: &'b Candidate) -> Option<&'b TrainPassage> {
        c.passage.as_ref().or_else(|| self.corpus.passage(&c.docid))
    }
}

/// Counts of dropped candidates, by filter and by reason, for the stats file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DropLog {
    /// `filter -> reason -> count`.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

impl DropLog {
    /// Records that `filter` dropped one candidate for `reason`.
    pub fn drop(&mut self, filter: &str, reason: &str) {
        *self
            .counts
            .entry(filter.to_string())
            .or_default()
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// Adds another log's counts to this one.
    pub fn merge(&mut self, other: DropLog) {
        for (f, reasons) in other.counts {
            let mine = self.counts.entry(f).or_default();
            for (r, n) in reasons {
                *mine.entry(r).or_default() += n;
            }
        }
    }

    /// Total candidates dropped.
    pub fn total(&self) -> u64 {
        self.counts.values().flat_map(|r| r.values()).sum()
    }
}

/// Proposes scored negatives for every query: BM25, a dense index, clusters.
///
/// Called once per run by the pipeline, before any filter, with all queries at once so it
/// can batch and parallelise. It should return more candidates than the final quota (a rank
/// window), since filters drop some and the pipeline samples the quota from the survivors.
pub trait Miner: Send + Sync {
    /// The `source` tag of its candidates, unique within a pipeline.
    fn source(&self) -> &str;

    /// Returns one [`Mined`] per query, in the order of `queries`; `progress` is called with
    /// the number of queries just finished.
    fn mine(&self, queries: &[MineQuery], progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<Mined>>;
}

/// Keeps or drops candidates of one query: false negatives, duplicates, easy negatives.
///
/// Called once per query by the pipeline, after the miners (and again on generated
/// negatives), in config order; each filter sees what the previous one kept. What it
/// returns is kept, in order; it records each drop and its reason in `log`.
pub trait Filter: Send + Sync {
    /// The name the stats file reports its drops under.
    fn name(&self) -> &str;

    /// Returns the candidates to keep.
    fn apply(
        &self,
        ctx: &QueryContext<'_>,
        candidates: Vec<Candidate>,
        log: &mut DropLog,
    ) -> Vec<Candidate>;
}

/// Writes new negatives for a query (entity substitution, an LLM rewrite of the positive).
///
/// Called once per query by the pipeline after the filters, with the negatives kept so
/// far. What it returns carries its own text ([`Candidate::passage`]) and goes through the
/// same filters before it is kept.
pub trait Generator: Send + Sync {
    /// The `source` tag of what it generates.
    fn source(&self) -> &str;

    /// Returns new candidates for the query.
    fn generate(&self, ctx: &QueryContext<'_>, kept: &[Candidate]) -> Result<Vec<Candidate>>;
}
