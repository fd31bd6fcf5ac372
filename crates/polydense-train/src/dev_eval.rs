//! Dev evaluation during training: encode the dev corpus and queries with the current
//! weights, search exactly, and score per language with trec_eval-exact metrics.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use polydense_data::beir::BeirDataset;
use polydense_data::{Qrels, Run};
use polydense_eval::{evaluate, parse_metrics, EvalOptions, Report};
use polydense_index::ExactSearch;
use polydense_model::TextKind;

use crate::dual_encoder::DualEncoder;
use crate::error::Result;
use crate::tokenize::Tokenize;

/// The metrics every dev evaluation reports; the run's `eval_metric` must be one of them.
pub const DEV_METRICS: &str = "ndcg@10,mrr@10,recall@100";

/// Documents retrieved per dev query (the deepest cutoff of [`DEV_METRICS`]).
const DEPTH: usize = 100;

/// A dev split held in memory, its texts prepared once.
#[derive(Debug, Clone)]
pub struct DevSet {
    doc_ids: Vec<String>,
    doc_texts: Vec<String>,
    query_ids: Vec<String>,
    query_texts: Vec<String>,
    qrels: Qrels,
    langs: BTreeMap<String, String>,
}

impl DevSet {
    /// From a BEIR split; keeps the first `max_queries` judged queries by id (0: all).
    /// Passages are encoded as `title text`, as BEIR's dense models join them.
    pub fn new(ds: BeirDataset, max_queries: usize) -> Self {
        let mut queries = ds.queries;
        queries.sort_by(|a, b| a.id.cmp(&b.id));
        if max_queries > 0 {
            queries.truncate(max_queries);
        }
        let mut qrels = ds.qrels;
        qrels.retain(|q, _| queries.iter().any(|x| &x.id == q));
        let langs = queries
            .iter()
            .filter_map(|q| q.lang.clone().map(|l| (q.id.clone(), l)))
            .collect();
        DevSet {
            doc_ids: ds.corpus.iter().map(|d| d.id.clone()).collect(),
            doc_texts: ds
                .corpus
                .iter()
                .map(|d| match d.title.is_empty() {
                    true => d.text.clone(),
                    false => format!("{} {}", d.title, d.text),
                })
                .collect(),
            query_ids: queries.iter().map(|q| q.id.clone()).collect(),
            query_texts: queries.into_iter().map(|q| q.text).collect(),
            qrels,
            langs,
        }
    }

    /// Queries evaluated.
    pub fn num_queries(&self) -> usize {
        self.query_ids.len()
    }

    /// Scores the model: overall and per-language means of [`DEV_METRICS`].
    pub fn evaluate(
        &self,
        model: &DualEncoder,
        tok: &dyn Tokenize,
        batch: usize,
    ) -> Result<Report> {
        let docs = encode(model, tok, &self.doc_texts, TextKind::Passage, batch)?;
        let queries = encode(model, tok, &self.query_texts, TextKind::Query, batch)?;
        let dim = model.tower(TextKind::Query).dim();
        let hits = ExactSearch::new(DEPTH).search(&queries, &docs, dim, None)?;
        let mut run = Run::new();
        for (qid, hs) in self.query_ids.iter().zip(hits) {
            run.insert(
                qid.clone(),
                hs.iter()
                    .map(|h| (self.doc_ids[h.row].clone(), h.score as f64))
                    .collect(),
            );
        }
        let metrics = parse_metrics(DEV_METRICS)?;
        let scores = evaluate(&self.qrels, &run, &metrics, &EvalOptions::default())?;
        let langs = (!self.langs.is_empty()).then_some(&self.langs);
        Ok(Report::new(&scores, langs))
    }
}

/// Row-major f32 vectors of `texts`, encoded without a graph in batches of similar length
/// (by characters, a cheap proxy for tokens) so little padding is computed.
fn encode(
    model: &DualEncoder,
    tok: &dyn Tokenize,
    texts: &[String],
    kind: TextKind,
    batch: usize,
) -> Result<Vec<f32>> {
    let device: Device = model.tower(kind).transformer().device().clone();
    let dim = model.tower(kind).dim();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
    let mut out = vec![0f32; texts.len() * dim];
    for group in order.chunks(batch.max(1)) {
        let refs: Vec<&str> = group.iter().map(|&i| texts[i].as_str()).collect();
        let vecs: Tensor = model.encode(kind, &tok.batch(&refs, kind, &device)?)?;
        let vecs: Vec<f32> = vecs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        for (k, &i) in group.iter().enumerate() {
            out[i * dim..(i + 1) * dim].copy_from_slice(&vecs[k * dim..(k + 1) * dim]);
        }
    }
    Ok(out)
}
