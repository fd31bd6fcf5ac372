//! The BM25 miner: the top of a BM25 ranking with the positives removed, cut to a rank window.

use crate::error::{MineError, Result};
use crate::stage::{Candidate, MineQuery, Mined, Miner};
use polydense_lexical::{Analyzers, Bm25Searcher, Scratch};
use rayon::prelude::*;

/// Which ranks of the BM25 list (positives removed) a [`Bm25Miner`] proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankWindow {
    /// Depth N of the search: how many non-positive documents are ranked.
    pub depth: usize,
    /// First rank kept, 0-based (skipping the very top avoids most false negatives).
    pub from: usize,
    /// One past the last rank kept, at most `depth`.
    pub to: usize,
}

/// Proposes BM25's hard negatives from an index of the corpus.
pub struct Bm25Miner {
    source: String,
    searcher: Bm25Searcher,
    window: RankWindow,
    lang: Option<String>,
}

impl Bm25Miner {
    /// A miner over an open index; `lang` overrides each query's language for analysis.
    pub fn new(
        source: impl Into<String>,
        searcher: Bm25Searcher,
        window: RankWindow,
        lang: Option<String>,
    ) -> Result<Self> {
        let source = source.into();
        if window.from >= window.to || window.to > window.depth {
            return Err(MineError::Stage {
                stage: source,
                message: format!(
                    "rank window from={} to={} depth={} needs from < to <= depth",
                    window.from, window.to, window.depth
                ),
            });
        }
        Ok(Bm25Miner {
            source,
            searcher,
            window,
            lang,
        })
    }

    fn mine_one(&self, q: &MineQuery, an: &mut Analyzers, scratch: &mut Scratch) -> Result<Mined> {
        let s = &self.searcher;
        let lang = s.query_language(self.lang.as_deref(), q.query.lang.as_deref());
        let terms = an.terms(&q.query.text, lang);
        let pos: Vec<Option<u32>> = q.positives.iter().map(|p| s.doc_number(p)).collect();
        let known: Vec<u32> = pos.iter().flatten().copied().collect();
        // Positives may occupy ranks of the list; ask for enough that `depth` others remain.
        let k = self.window.depth + known.len();
        let (hits, scores) = s.search_terms_and_score(&terms, k, &known, scratch)?;
        let mut known_scores = scores.into_iter();
        let positive_scores = pos
            .iter()
            .map(|p| p.map(|_| known_scores.next().expect("one score per known positive")))
            .collect();
        let candidates = hits
            .into_iter()
            .filter(|h| !q.positives.contains(&h.docid))
            .take(self.window.depth)
            .enumerate()
            .skip(self.window.from)
            .take(self.window.to - self.window.from)
            .map(|(rank, h)| Candidate {
                docid: h.docid,
                score: h.score,
                source: self.source.clone(),
                rank,
                passage: None,
                stage_scores: Default::default(),
            })
            .collect();
        Ok(Mined {
            candidates,
            positive_scores,
        })
    }
}

impl Miner for Bm25Miner {
    fn source(&self) -> &str {
        &self.source
    }

    fn mine(&self, queries: &[MineQuery], progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<Mined>> {
        queries
            .par_iter()
            .map_init(
                || (self.searcher.analyzers(), self.searcher.scratch()),
                |(an, scratch), q| {
                    let m = self.mine_one(q, an, scratch);
                    progress(1);
                    m
                },
            )
            .collect()
    }
}
