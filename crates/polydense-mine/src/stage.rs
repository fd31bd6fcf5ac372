//! The three kinds of pipeline stage and the values they exchange.
//!
//! Execution model (push, one pass per batch): the [`crate::Pipeline`] cuts the queries into
//! batches (the checkpoint unit, 100 queries by default). For each batch it calls every
//! [`Miner`] with the batch's queries, merges their candidates per query, asks every
//! [`Generator`] for new negatives (added after the mined ones), passes everything through
//! every [`Filter`] in config order, and keeps each miner's quota of the survivors plus every
//! surviving generated negative. A query's result depends only on the query, never on the
//! batch it was in, so a resumed run writes what an uninterrupted one writes.

use crate::error::Result;
use crate::progress::Progress;
use polydense_data::{Query, TrainPassage};
use rayon::prelude::*;
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
    /// Scores later stages gave it, by `stage.field` (`llm_judge.hardness`,
    /// `rag_select.score`): written on the negative in the training file.
    pub stage_scores: BTreeMap<String, f32>,
}

impl Candidate {
    /// A generated negative: its own passage (id `docid`), proposed by `source` at `rank`,
    /// unscored (generators have no score comparable with a miner's).
    pub fn generated(source: &str, rank: usize, passage: TrainPassage) -> Self {
        Candidate {
            docid: passage.docid.clone(),
            score: 0.0,
            source: source.to_string(),
            rank,
            passage: Some(passage),
            stage_scores: BTreeMap::new(),
        }
    }
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

/// One query's candidates as a batch-wise [`Filter`] or [`Generator`] sees them.
pub struct QueryCandidates<'a> {
    /// The query, its positives and the corpus.
    pub ctx: QueryContext<'a>,
    /// Its candidates so far, mined ones first in miner order, each source's in rank order.
    pub candidates: Vec<Candidate>,
}

/// Counts of dropped candidates, by filter and by reason, and of what stages did besides
/// (an LLM stage's requests, cache hits and parse failures), for the stats file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DropLog {
    /// `filter -> reason -> count`.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// `stage -> counter -> value`, added up over batches.
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
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

    /// Adds `counters` (e.g. an LLM tally) to what `stage` reported so far.
    pub fn count(&mut self, stage: &str, counters: BTreeMap<String, u64>) {
        let mine = self.counters.entry(stage.to_string()).or_default();
        for (k, n) in counters {
            *mine.entry(k).or_default() += n;
        }
    }

    /// Adds another log's counts to this one.
    pub fn merge(&mut self, other: DropLog) {
        for (into, from) in [
            (&mut self.counts, other.counts),
            (&mut self.counters, other.counters),
        ] {
            for (f, reasons) in from {
                let mine = into.entry(f).or_default();
                for (r, n) in reasons {
                    *mine.entry(r).or_default() += n;
                }
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

/// Keeps or drops candidates: false negatives, duplicates, easy negatives, the weaker half.
///
/// Called once per batch of queries by the pipeline, after the miners and generators, in
/// config order; each filter sees what the previous one kept. It edits each query's
/// `candidates` in place, keeping the survivors in their order (the quota sampling after
/// the filters relies on rank order), records each drop and its reason in `log`, and may
/// annotate survivors ([`Candidate::stage_scores`]). Seeing the whole batch lets a filter
/// that calls an LLM keep the backend's number of requests in flight, and one that compares
/// candidates (RAG selection) embed them in one pass. Filters that judge queries one at a
/// time implement [`QueryFilter`] instead.
///
/// An `Err` stops the run; the batches checkpointed before it are kept, and a rerun resumes
/// after them.
pub trait Filter: Send + Sync {
    /// The name the stats file reports its drops under.
    fn name(&self) -> &str;

    /// Filters every query of `batch` in place.
    fn apply(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<()>;
}

/// A filter that judges each query on its own (dedup, the margin filter): it is a
/// [`Filter`] that runs [`QueryFilter::keep`] over a batch's queries on rayon's threads.
pub trait QueryFilter: Send + Sync {
    /// The name the stats file reports its drops under.
    fn name(&self) -> &str;

    /// The survivors among one query's candidates, in order; drops go to `log`.
    fn keep(
        &self,
        ctx: &QueryContext<'_>,
        candidates: Vec<Candidate>,
        log: &mut DropLog,
    ) -> Vec<Candidate>;
}

impl<T: QueryFilter> Filter for T {
    fn name(&self) -> &str {
        QueryFilter::name(self)
    }

    fn apply(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        _: &dyn Progress,
    ) -> Result<()> {
        each_query(batch, log, |ctx, c, log| self.keep(ctx, c, log));
        Ok(())
    }
}

impl QueryCandidates<'_> {
    /// The text of each candidate (`title text`), in order; empty where it has none.
    pub fn texts(&self) -> Vec<String> {
        self.candidates
            .iter()
            .map(|c| {
                self.ctx
                    .passage(c)
                    .map(|p| p.full_text())
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// Runs a per-query filter over a batch on rayon's threads: `keep` gets one query's context
/// and candidates and returns the survivors.
pub fn each_query(
    batch: &mut [QueryCandidates<'_>],
    log: &mut DropLog,
    keep: impl Fn(&QueryContext<'_>, Vec<Candidate>, &mut DropLog) -> Vec<Candidate> + Sync,
) {
    let logs: Vec<DropLog> = batch
        .par_iter_mut()
        .map(|q| {
            let mut l = DropLog::default();
            let c = std::mem::take(&mut q.candidates);
            q.candidates = keep(&q.ctx, c, &mut l);
            l
        })
        .collect();
    for l in logs {
        log.merge(l);
    }
}

/// Writes new negatives (entity substitution, an LLM's query-conditioned passages).
///
/// Called once per batch by the pipeline, after the miners and before the filters, with
/// each query's mined candidates. It returns, per query of `batch` and in its order, new
/// candidates carrying their own text ([`Candidate::passage`]); the pipeline adds them after
/// the mined ones and sends them through every filter, so a generated copy of a mined
/// negative is caught by dedup and an LLM judge rates both alike. Survivors are all kept
/// (no quota). What the generator itself rejects (a copy of the positive) goes in `log`
/// under its source. An `Err` stops the run, as for [`Filter::apply`].
pub trait Generator: Send + Sync {
    /// The `source` tag of what it generates.
    fn source(&self) -> &str;

    /// Returns new candidates for each query of the batch.
    fn generate(
        &self,
        batch: &[QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Candidate>>>;
}
