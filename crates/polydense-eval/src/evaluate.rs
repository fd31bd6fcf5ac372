//! Per-query scores, computed exactly as trec_eval 9.x (and so pytrec_eval) computes them.
//!
//! Only the ranks of the relevant documents matter to every supported metric, so instead of
//! sorting each ranking, a query looks up which retrieved documents are relevant, sorts those
//! few, and counts how many documents precede each of them: O(n log r) for n retrieved and r
//! relevant, with no allocation per query beyond reused scratch space.

use crate::error::EvalError;
use crate::metric::{Measure, Metric};
use polydense_data::{Qrels, Run};
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// trec_eval's default relevance level (also pytrec_eval's and BEIR's): a grade of at least 1
/// is relevant.
pub const RELEVANCE_LEVEL: i32 = 1;

/// What happens to a query that the qrels judge but the run does not mention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingQueries {
    /// Leave it out of every mean, as pytrec_eval (and BEIR, which uses it) does.
    #[default]
    Skip,
    /// Score it 0 on every metric and count it, as `trec_eval -c` does.
    Zero,
}

/// Choices that change which queries are evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvalOptions {
    pub missing: MissingQueries,
}

/// Every metric of every evaluated query; the input of aggregation and significance tests.
#[derive(Debug, Clone, PartialEq)]
pub struct PerQuery {
    /// The metrics, in the order their values are stored.
    pub metrics: Vec<Metric>,
    /// `qid -> [value per metric]` for each evaluated query.
    pub values: BTreeMap<String, Vec<f64>>,
}

impl PerQuery {
    /// The value of `metric` for `qid`, if both were evaluated.
    pub fn get(&self, qid: &str, metric: &Metric) -> Option<f64> {
        let i = self.metrics.iter().position(|m| m == metric)?;
        self.values.get(qid).map(|v| v[i])
    }

    /// The mean of each metric over all evaluated queries (0 when none was evaluated).
    pub fn means(&self) -> Vec<f64> {
        mean_of(self.metrics.len(), self.values.values())
    }
}

/// Averages rows of per-metric values in the given order; 0 for no rows.
pub(crate) fn mean_of<'a>(width: usize, rows: impl Iterator<Item = &'a Vec<f64>>) -> Vec<f64> {
    let mut sum = vec![0.0; width];
    let mut n = 0usize;
    for row in rows {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v;
        }
        n += 1;
    }
    if n > 0 {
        sum.iter_mut().for_each(|s| *s /= n as f64);
    }
    sum
}

/// One judged query of the run: its id, judgements and ranking.
type QueryWork<'a> = (&'a String, &'a BTreeMap<String, i32>, &'a [(String, f64)]);

/// Scores `run` against `qrels` on `metrics`, in parallel over queries.
///
/// Queries of the run that the qrels do not judge are ignored; judged queries missing from
/// the run follow `opts.missing`. A query present in the run with an empty list scores 0.
pub fn evaluate(
    qrels: &Qrels,
    run: &Run,
    metrics: &[Metric],
    opts: &EvalOptions,
) -> Result<PerQuery, EvalError> {
    let work: Vec<QueryWork> = run
        .iter()
        .filter_map(|(qid, docs)| qrels.get(qid).map(|j| (qid, j, docs.as_slice())))
        .collect();
    let scored: Vec<(String, Vec<f64>)> = work
        .par_iter()
        .map_init(Scratch::default, |scratch, &(qid, judged, docs)| {
            let mut out = vec![0.0; metrics.len()];
            score_query(judged, docs, Docids::Check, metrics, scratch, &mut out)
                .map_err(|e| e.at(qid))?;
            Ok((qid.clone(), out))
        })
        .collect::<Result<_, EvalError>>()?;
    let mut values: BTreeMap<String, Vec<f64>> = scored.into_iter().collect();
    if opts.missing == MissingQueries::Zero {
        for qid in qrels.keys() {
            values
                .entry(qid.clone())
                .or_insert_with(|| vec![0.0; metrics.len()]);
        }
    }
    Ok(PerQuery {
        metrics: metrics.to_vec(),
        values,
    })
}

/// Reusable buffers, one set per worker thread.
#[derive(Default)]
pub struct Scratch {
    relevant: Vec<Hit>,
    before: Vec<u32>,
    ideal: Vec<i32>,
    ranked: Vec<(u32, i32)>,
}

/// A retrieved relevant document: trec_eval sort key, position in the run list, grade.
#[derive(Clone, Copy)]
struct Hit {
    key: u32,
    idx: u32,
    grade: i32,
}

/// Whether [`score_query`] must look for repeated docids itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Docids {
    /// The caller guarantees each docid appears once (e.g. it came from a run reader).
    Unique,
    /// Check, and fail on a repeat as trec_eval does.
    Check,
}

/// A per-query failure, before the query id is attached.
#[derive(Debug, PartialEq)]
pub enum QueryError {
    Duplicate(String),
    Nan(String),
}

impl QueryError {
    pub(crate) fn at(self, qid: &str) -> EvalError {
        match self {
            QueryError::Duplicate(docid) => EvalError::DuplicateDocument {
                qid: qid.to_string(),
                docid,
            },
            QueryError::Nan(docid) => EvalError::NanScore {
                qid: qid.to_string(),
                docid,
            },
        }
    }
}

/// trec_eval stores scores as C `float` and compares them as numbers: this maps the f32 to
/// an integer with the same order, where -0.0 and 0.0 are equal (they tie in C too).
pub(crate) fn sort_key(score: f64) -> u32 {
    let bits = ((score as f32) + 0.0).to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// trec_eval's order: higher score first; equal scores by docid in descending byte order.
pub(crate) fn precedes(a_key: u32, a_doc: &str, b_key: u32, b_doc: &str) -> bool {
    match a_key.cmp(&b_key) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => a_doc.as_bytes() > b_doc.as_bytes(),
    }
}

/// Scores one query into `out` (one value per metric).
pub fn score_query(
    judged: &BTreeMap<String, i32>,
    docs: &[(String, f64)],
    docids: Docids,
    metrics: &[Metric],
    scratch: &mut Scratch,
    out: &mut [f64],
) -> Result<(), QueryError> {
    out.iter_mut().for_each(|v| *v = 0.0);
    if docids == Docids::Check {
        // trec_eval refuses the whole evaluation on a duplicate document, relevant or not.
        let mut seen = FxHashSet::with_capacity_and_hasher(docs.len(), Default::default());
        if let Some((d, _)) = docs.iter().find(|(d, _)| !seen.insert(d.as_str())) {
            return Err(QueryError::Duplicate(d.clone()));
        }
    }
    scratch.relevant.clear();
    for (i, (docid, score)) in docs.iter().enumerate() {
        if score.is_nan() {
            return Err(QueryError::Nan(docid.clone()));
        }
        if let Some(&grade) = judged.get(docid.as_str()) {
            if grade >= RELEVANCE_LEVEL {
                scratch.relevant.push(Hit {
                    key: sort_key(*score),
                    idx: i as u32,
                    grade,
                });
            }
        }
    }
    let num_rel = judged.values().filter(|&&g| g >= RELEVANCE_LEVEL).count();
    if scratch.relevant.is_empty() {
        // No relevant document retrieved: every supported metric is 0.
        return Ok(());
    }
    ranks_of_relevant(docs, scratch);

    scratch.ideal.clear();
    scratch
        .ideal
        .extend(judged.values().copied().filter(|&g| g >= RELEVANCE_LEVEL));
    scratch.ideal.sort_unstable_by(|a, b| b.cmp(a));

    for (metric, value) in metrics.iter().zip(out.iter_mut()) {
        *value = metric_value(metric, &scratch.ranked, num_rel, &scratch.ideal);
    }
    Ok(())
}

/// Fills `scratch.ranked` with `(rank, grade)` of each retrieved relevant document, ranks
/// ascending. A document's rank is 1 + the number of documents trec_eval puts before it.
fn ranks_of_relevant(docs: &[(String, f64)], scratch: &mut Scratch) {
    let doc = |h: &Hit| docs[h.idx as usize].0.as_str();
    let rel = &mut scratch.relevant;
    rel.sort_unstable_by(|a, b| {
        b.key
            .cmp(&a.key)
            .then_with(|| doc(b).as_bytes().cmp(doc(a).as_bytes()))
    });
    // before[p] counts documents that exactly p relevant documents precede; the rank of the
    // j-th relevant document is then the number of documents with p <= j (itself included).
    scratch.before.clear();
    scratch.before.resize(rel.len() + 1, 0);
    if let [only] = rel.as_slice() {
        for (docid, score) in docs {
            let p = precedes(only.key, doc(only), sort_key(*score), docid) as usize;
            scratch.before[p] += 1;
        }
    } else {
        for (docid, score) in docs {
            let key = sort_key(*score);
            let p = rel.partition_point(|h| precedes(h.key, doc(h), key, docid));
            scratch.before[p] += 1;
        }
    }
    scratch.ranked.clear();
    let mut rank = 0u32;
    for (hit, count) in rel.iter().zip(&scratch.before) {
        rank += count;
        scratch.ranked.push((rank, hit.grade));
    }
}

/// One metric from the ranks of the retrieved relevant documents, summing in rank order as
/// trec_eval does so that the floating-point results are identical.
fn metric_value(metric: &Metric, ranked: &[(u32, i32)], num_rel: usize, ideal: &[i32]) -> f64 {
    let depth = metric.depth();
    let within = |r: u32| (r as usize) <= depth;
    let hits = ranked.iter().take_while(|(r, _)| within(*r)).count();
    match metric.measure {
        Measure::Precision => hits as f64 / depth as f64,
        Measure::Recall => {
            if num_rel == 0 {
                0.0
            } else {
                hits as f64 / num_rel as f64
            }
        }
        Measure::Success => (hits > 0) as u8 as f64,
        Measure::Mrr => match ranked.first() {
            Some(&(r, _)) if within(r) => 1.0 / r as f64,
            _ => 0.0,
        },
        Measure::Map => {
            if num_rel == 0 {
                return 0.0;
            }
            let mut sum = 0.0;
            for (j, &(r, _)) in ranked[..hits].iter().enumerate() {
                sum += (j + 1) as f64 / r as f64;
            }
            sum / num_rel as f64
        }
        Measure::Ndcg => {
            let mut dcg = 0.0;
            for &(r, g) in &ranked[..hits] {
                dcg += g as f64 / ((r + 1) as f64).log2();
            }
            let mut idcg = 0.0;
            for (i, &g) in ideal.iter().take(depth).enumerate() {
                idcg += g as f64 / ((i + 2) as f64).log2();
            }
            // trec_eval leaves the sum undivided when the ideal is 0 (it is 0 then too).
            if idcg > 0.0 {
                dcg / idcg
            } else {
                dcg
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    fn docs(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(d, s)| (d.to_string(), *s)).collect()
    }

    fn score(j: &BTreeMap<String, i32>, d: &[(String, f64)], metrics: &str) -> Vec<f64> {
        let metrics = crate::metric::parse_metrics(metrics).unwrap();
        let mut out = vec![f64::NAN; metrics.len()];
        score_query(
            j,
            d,
            Docids::Check,
            &metrics,
            &mut Scratch::default(),
            &mut out,
        )
        .unwrap();
        out
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn binary_case_by_hand() {
        // Ranking: d1(0.9, rel) d2(0.8) d3(0.7, rel) d4(0.6); d5 relevant, not retrieved.
        let j = judged(&[("d1", 1), ("d3", 1), ("d5", 1), ("d2", 0)]);
        let d = docs(&[("d4", 0.6), ("d2", 0.8), ("d3", 0.7), ("d1", 0.9)]);
        let got = score(
            &j,
            &d,
            "p@1,p@3,p@10,recall@3,success@1,mrr,mrr@1,map,map@1",
        );
        let map = (1.0 + 2.0 / 3.0) / 3.0;
        close(
            &got,
            &[
                1.0,
                2.0 / 3.0,
                0.2,
                2.0 / 3.0,
                1.0,
                1.0,
                1.0,
                map,
                1.0 / 3.0,
            ],
        );
    }

    #[test]
    fn graded_ndcg_by_hand() {
        // Ranking: a(g=1) b(g=0) c(g=3); ideal: 3, 2 (d not retrieved), 1.
        let j = judged(&[("a", 1), ("b", 0), ("c", 3), ("d", 2)]);
        let d = docs(&[("a", 3.0), ("b", 2.0), ("c", 1.0)]);
        let dcg3 = 1.0 + 3.0 / 4f64.log2();
        let idcg3 = 3.0 + 2.0 / 3f64.log2() + 1.0 / 2.0;
        let got = score(&j, &d, "ndcg@1,ndcg@3");
        close(&got, &[1.0 / 3.0, dcg3 / idcg3]);
    }

    #[test]
    fn ties_break_by_docid_descending_and_scores_compare_as_f32() {
        // All tie: trec_eval ranks z, y, x. 1.0 and 1.0 + 1e-12 are one f32.
        let j = judged(&[("x", 1)]);
        let d = docs(&[("x", 1.0 + 1e-12), ("y", 1.0), ("z", 1.0)]);
        close(&score(&j, &d, "mrr"), &[1.0 / 3.0]);
        // -0.0 ties with 0.0 (C compares them equal), so docid decides.
        let d = docs(&[("x", 0.0), ("y", -0.0)]);
        close(&score(&j, &d, "mrr"), &[0.5]);
        // A clearly higher score wins over the docid.
        let d = docs(&[("x", 1.5), ("y", 1.0), ("z", 1.0)]);
        close(&score(&j, &d, "mrr"), &[1.0]);
    }

    #[test]
    fn negative_and_zero_grades_are_not_relevant() {
        let j = judged(&[("a", -1), ("b", 0), ("c", 2)]);
        let d = docs(&[("a", 3.0), ("b", 2.0), ("c", 1.0)]);
        let got = score(&j, &d, "ndcg@10,mrr,recall@2,map");
        close(&got, &[2.0 / 4f64.log2() / 2.0, 1.0 / 3.0, 0.0, 1.0 / 3.0]);
    }

    #[test]
    fn no_relevant_judged_or_empty_ranking_scores_zero() {
        let j = judged(&[("a", 0), ("b", -2)]);
        close(
            &score(&j, &docs(&[("a", 1.0)]), "ndcg@5,map,recall@5"),
            &[0.0; 3],
        );
        let j = judged(&[("a", 1)]);
        close(&score(&j, &[], "ndcg@5,map,p@5,mrr"), &[0.0; 4]);
    }

    #[test]
    fn duplicates_and_nan_are_refused() {
        let j = judged(&[("a", 1)]);
        let mut out = [0.0];
        let m = [Metric::new(Measure::Map, None).unwrap()];
        let d = docs(&[("b", 1.0), ("c", 0.5), ("b", 0.2)]);
        let e =
            score_query(&j, &d, Docids::Check, &m, &mut Scratch::default(), &mut out).unwrap_err();
        assert_eq!(e, QueryError::Duplicate("b".into()));
        let d = docs(&[("a", f64::NAN)]);
        let e =
            score_query(&j, &d, Docids::Check, &m, &mut Scratch::default(), &mut out).unwrap_err();
        assert_eq!(e, QueryError::Nan("a".into()));
    }

    #[test]
    fn missing_queries_follow_the_policy() {
        let mut qrels = Qrels::new();
        qrels.insert("q1".into(), judged(&[("a", 1)]));
        qrels.insert("q2".into(), judged(&[("b", 1)]));
        let mut run = Run::new();
        run.insert("q1".into(), docs(&[("a", 1.0)]));
        run.insert("q9".into(), docs(&[("a", 1.0)]));
        let m = crate::metric::parse_metrics("mrr@10").unwrap();
        let skip = evaluate(&qrels, &run, &m, &EvalOptions::default()).unwrap();
        assert_eq!(skip.values.keys().collect::<Vec<_>>(), ["q1"]);
        assert_eq!(skip.means(), [1.0]);
        let zero = EvalOptions {
            missing: MissingQueries::Zero,
        };
        let zero = evaluate(&qrels, &run, &m, &zero).unwrap();
        assert_eq!(zero.values.keys().collect::<Vec<_>>(), ["q1", "q2"]);
        assert_eq!(zero.means(), [0.5]);
        assert_eq!(zero.get("q2", &m[0]), Some(0.0));
    }
}
