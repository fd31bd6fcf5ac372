//! The dense miner (ANCE-style): the nearest passages to each query under the current model,
//! positives removed, cut to a rank window.
//!
//! It reads the two embedding stores `polydense encode` writes (queries with the query prefix,
//! the corpus with the passage prefix) rather than running the encoder itself, so mining
//! never depends on the model crate and a store encoded once serves every mining run.

use crate::bm25::RankWindow;
use crate::error::{MineError, Result};
use crate::stage::{Candidate, MineQuery, Mined, Miner};
use polydense_index::{EmbeddingStore, ExactSearch};
use std::collections::HashMap;
use std::path::Path;

/// Proposes the passages a dense model ranks highest that are not positives.
pub struct DenseMiner {
    source: String,
    queries: EmbeddingStore,
    corpus: EmbeddingStore,
    query_rows: HashMap<String, usize>,
    doc_rows: HashMap<String, usize>,
    window: RankWindow,
}

impl DenseMiner {
    /// Opens the query and corpus stores; they must have the same dimension.
    pub fn open(
        source: impl Into<String>,
        queries: &Path,
        corpus: &Path,
        window: RankWindow,
    ) -> Result<Self> {
        let source = source.into();
        let stage_error = |message: String| MineError::Stage {
            stage: source.clone(),
            message,
        };
        if window.from >= window.to || window.to > window.depth {
            return Err(stage_error(format!(
                "rank window from={} to={} depth={} needs from < to <= depth",
                window.from, window.to, window.depth
            )));
        }
        let queries = EmbeddingStore::open(queries)?;
        let corpus = EmbeddingStore::open(corpus)?;
        if queries.dim() != corpus.dim() {
            return Err(stage_error(format!(
                "query embeddings have dimension {} but corpus embeddings {}: encode both with the same model",
                queries.dim(),
                corpus.dim()
            )));
        }
        let rows = |s: &EmbeddingStore| -> HashMap<String, usize> {
            s.ids()
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.clone(), i))
                .collect()
        };
        Ok(DenseMiner {
            query_rows: rows(&queries),
            doc_rows: rows(&corpus),
            source,
            queries,
            corpus,
            window,
        })
    }

    fn query_row(&self, q: &MineQuery) -> Result<usize> {
        self.query_rows
            .get(&q.query.id)
            .copied()
            .ok_or_else(|| MineError::Stage {
                stage: self.source.clone(),
                message: format!(
                    "query `{}` is not in the query embeddings {}; encode the same queries.jsonl with `polydense encode --queries`",
                    q.query.id,
                    self.queries.dir().display()
                ),
            })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Miner for DenseMiner {
    fn source(&self) -> &str {
        &self.source
    }

    fn mine(&self, queries: &[MineQuery], progress: &(dyn Fn(u64) + Sync)) -> Result<Vec<Mined>> {
        let dim = self.queries.dim();
        let rows: Vec<usize> = queries
            .iter()
            .map(|q| self.query_row(q))
            .collect::<Result<_>>()?;
        let mut vectors = Vec::with_capacity(rows.len() * dim);
        for &r in &rows {
            vectors.extend_from_slice(self.queries.row(r));
        }
        // Positives may hold top ranks; ask for enough that `depth` others remain.
        let most_positives = queries.iter().map(|q| q.positives.len()).max().unwrap_or(0);
        let k = (self.window.depth + most_positives).min(self.corpus.len());
        let hits = ExactSearch::new(k).search_store(&vectors, &self.corpus)?;
        let ids = self.corpus.ids();
        let mined = queries
            .iter()
            .zip(&rows)
            .zip(hits)
            .map(|((q, &row), hits)| {
                let qv = self.queries.row(row);
                let positive_scores = q
                    .positives
                    .iter()
                    .map(|p| self.doc_rows.get(p).map(|&d| dot(qv, self.corpus.row(d))))
                    .collect();
                let candidates = hits
                    .into_iter()
                    .map(|h| (ids[h.row].id.clone(), h.score))
                    .filter(|(id, _)| !q.positives.contains(id))
                    .take(self.window.depth)
                    .enumerate()
                    .skip(self.window.from)
                    .take(self.window.to - self.window.from)
                    .map(|(rank, (docid, score))| Candidate {
                        docid,
                        score,
                        source: self.source.clone(),
                        rank,
                        passage: None,
                        stage_scores: Default::default(),
                    })
                    .collect();
                progress(1);
                Mined {
                    candidates,
                    positive_scores,
                }
            })
            .collect();
        Ok(mined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_data::Query;
    use polydense_index::{write_store, RowId, StoreMetadata};

    fn row(id: &str) -> RowId {
        RowId {
            id: id.into(),
            lang: None,
        }
    }

    fn query(id: &str, positives: &[&str]) -> MineQuery {
        MineQuery {
            query: Query {
                id: id.into(),
                text: String::new(),
                lang: None,
            },
            positives: positives.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Two queries and five 2-d passages whose inner products are easy to rank by hand.
    fn stores(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let q = write_store(
            dir.join("q"),
            &[row("q1"), row("q2")],
            &[1.0, 0.0, 0.0, 1.0],
            2,
            StoreMetadata::new(),
        )
        .unwrap();
        let docs = ["d1", "d2", "d3", "d4", "d5"].map(row);
        let c = write_store(
            dir.join("c"),
            &docs,
            &[0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.1, 0.9, 0.2, 0.8],
            2,
            StoreMetadata::new(),
        )
        .unwrap();
        (q, c)
    }

    #[test]
    fn ranks_by_inner_product_without_positives_inside_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let (q, c) = stores(dir.path());
        let window = RankWindow {
            depth: 3,
            from: 1,
            to: 3,
        };
        let miner = DenseMiner::open("dense", &q, &c, window).unwrap();
        let out = miner
            .mine(&[query("q1", &["d1"]), query("q2", &["d4"])], &|_| {})
            .unwrap();
        let ids = |m: &Mined| {
            m.candidates
                .iter()
                .map(|c| c.docid.clone())
                .collect::<Vec<_>>()
        };
        // q1 ranks d1 (positive, removed), d2, d3, d5, d4: the window keeps ranks 1..3.
        assert_eq!(ids(&out[0]), vec!["d3", "d5"]);
        // q2 ranks d4 (positive), d5, d3, d2, d1.
        assert_eq!(ids(&out[1]), vec!["d3", "d2"]);
        assert_eq!(out[0].candidates[0].rank, 1);
        assert!((out[0].candidates[0].score - 0.7).abs() < 1e-6);
        assert!((out[0].positive_scores[0].unwrap() - 0.9).abs() < 1e-6);
        assert_eq!(out[0].candidates[0].source, "dense");
    }

    #[test]
    fn unknown_query_and_mismatched_stores_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (q, c) = stores(dir.path());
        let window = RankWindow {
            depth: 2,
            from: 0,
            to: 2,
        };
        let miner = DenseMiner::open("dense", &q, &c, window).unwrap();
        let err = miner.mine(&[query("q9", &[])], &|_| {}).unwrap_err();
        assert!(
            err.to_string()
                .contains("query `q9` is not in the query embeddings"),
            "{err}"
        );
        let wide = write_store(
            dir.path().join("w"),
            &[row("x")],
            &[1.0, 0.0, 0.0],
            3,
            StoreMetadata::new(),
        )
        .unwrap();
        let err = DenseMiner::open("dense", &q, &wide, window).err().unwrap();
        assert!(
            err.to_string()
                .contains("dimension 2 but corpus embeddings 3"),
            "{err}"
        );
    }
}
