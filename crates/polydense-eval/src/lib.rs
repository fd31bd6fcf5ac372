//! polydense-eval: retrieval metrics that agree with trec_eval to the last bit, averaged
//! overall and per language, and a paired significance test between two runs.
//!
//! ```
//! use polydense_data::{Qrels, Run};
//! use polydense_eval::{evaluate, parse_metrics, EvalOptions, Report};
//!
//! let mut qrels = Qrels::new();
//! qrels.entry("q1".into()).or_default().insert("d2".into(), 1);
//! let mut run = Run::new();
//! run.insert("q1".into(), vec![("d1".into(), 0.9), ("d2".into(), 0.8)]);
//!
//! let metrics = parse_metrics("mrr@10,recall@1")?;
//! let scores = evaluate(&qrels, &run, &metrics, &EvalOptions::default())?;
//! let report = Report::new(&scores, None);
//! assert_eq!(report.overall.get("mrr@10"), Some(0.5));
//! assert_eq!(report.overall.get("recall@1"), Some(0.0));
//! # Ok::<(), polydense_eval::EvalError>(())
//! ```
//!
//! For large files, [`evaluate_run_file`] scores a run while reading it: one thread cuts the
//! file into query blocks and every core parses and scores them, in memory for a few queries
//! (10,000 queries x 1,000 documents: ~30 MB instead of ~500 MB for the whole run).
//!
//! # Exactly as trec_eval
//!
//! Every per-query value equals what pytrec_eval (trec_eval 9.x inside) returns; the
//! integration tests check this on fixtures generated with pytrec_eval. The choices that
//! make it so:
//!
//! - **Ranking.** The run's rank column is ignored. Documents are ordered by score,
//!   descending, where the score is first rounded to a 32-bit float (trec_eval stores scores
//!   as C `float`, so scores that differ only beyond float precision tie). Ties are broken
//!   by docid in *descending* byte order (trec_eval's `comp_sim_docno`), and -0.0 ties with
//!   0.0.
//! - **Relevance.** A document is relevant when its grade is at least 1 (trec_eval's default
//!   relevance level, which BEIR uses). Grades 0 and negative grades are never relevant and
//!   have no gain; trec_eval treats a negative grade as "judged but unassessed".
//! - **nDCG@k** is trec_eval's `ndcg_cut`: gain = the grade, discount log2(rank + 1), ideal
//!   ranking = all positive grades judged for the query, sorted descending, cut at k.
//! - **MRR@k** is `recip_rank` over the ranking truncated to its top k (as BEIR computes it
//!   with pytrec_eval); `mrr` without a cutoff is plain `recip_rank`.
//! - **MAP** divides by the number of relevant documents in the qrels, retrieved or not;
//!   **MAP@k** (`map_cut`) keeps that denominator and sums precision only at relevant ranks
//!   up to k.
//! - **P@k** divides by k even when fewer than k documents were retrieved; **Recall@k**
//!   divides by the relevant documents judged; **Success@k** is 1 if any relevant document is
//!   in the top k.
//! - **Queries.** Queries of the run that the qrels do not judge are ignored. A judged query
//!   with no relevant document scores 0 on every metric and counts. A judged query absent from
//!   the run is left out of the means, as pytrec_eval does
//!   ([`MissingQueries::Skip`], the default); [`MissingQueries::Zero`] scores it 0 and counts
//!   it, as `trec_eval -c` does. A query present in a [`polydense_data::Run`] with an empty
//!   list is evaluated and scores 0 (pytrec_eval given an empty dict does the same).
//! - **Duplicates.** A document listed twice for one query is an error, as in trec_eval
//!   (pytrec_eval takes dicts and cannot express it). NaN scores are errors too.
//! - **Means** are arithmetic means over the evaluated queries, as trec_eval prints them.

pub mod error;
pub mod evaluate;
pub mod first_hit;
pub mod langs;
pub mod metric;
pub mod report;
pub mod significance;
pub mod stream;

pub use error::EvalError;
pub use evaluate::{evaluate, EvalOptions, MissingQueries, PerQuery};
pub use first_hit::{first_hit_table, first_hits, FirstHitCounts, FirstHits};
pub use langs::read_query_langs;
pub use metric::{parse_metrics, Measure, Metric, DEFAULT_METRICS};
pub use report::{MetricValues, QueryCounts, Report};
pub use significance::{
    comparison_table, randomization_test, randomization_test_per_lang, Comparison, TestOptions,
};
pub use stream::{evaluate_run_file, FileScores};
