//! BM25 search on a tantivy index with Lucene's BM25 and configurable k1 and b.
//!
//! tantivy 0.27 hard-codes k1 = 1.2 and b = 0.75 in its `Bm25Weight`, so this module scores
//! tantivy's postings itself, term at a time into a dense accumulator. The formula is
//! Lucene's `BM25Similarity` (Lucene ≥ 8, which pyserini runs):
//!
//! ```text
//! score(q, d) = Σ_{t ∈ q} qtf(t) · idf(t) · tf(t,d) / (tf(t,d) + k1 · (1 − b + b · |d| / avgdl))
//! idf(t)      = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))
//! ```
//!
//! with N the number of documents, n(t) the number of documents containing t, |d| the
//! exact number of analysed tokens of d and avgdl their mean. Lucene's (k1 + 1) numerator
//! factor was dropped in Lucene 8 since it does not change the ranking; it is dropped here
//! too, so scores equal Lucene's up to its one-byte length quantisation, which we do not copy.

use crate::analysis::{primary_language, Analyzers};
use crate::error::{LexicalError, Result};
use crate::index::{fields, schema};
use crate::meta::IndexMeta;
use polydense_data::{Query, Run};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::fastfield::AliveBitSet;
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Index, InvertedIndexReader, Term, TERMINATED};

/// BM25's free parameters; the defaults are pyserini's (Anserini's) BEIR defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25Params {
    /// Term-frequency saturation: larger values let repeated terms count longer.
    pub k1: f32,
    /// Length normalisation, from 0 (none) to 1 (full).
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

impl Bm25Params {
    /// Rejects values for which the formula is meaningless (negative k1, b outside [0, 1]).
    pub fn validate(&self) -> Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(LexicalError::Params(format!(
                "k1 must be ≥ 0, got {}",
                self.k1
            )));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(LexicalError::Params(format!(
                "b must be in [0, 1], got {}",
                self.b
            )));
        }
        Ok(())
    }
}

/// One retrieved document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The corpus id of the document.
    pub docid: String,
    /// Its BM25 score.
    pub score: f32,
}

struct Segment {
    inverted: Arc<InvertedIndexReader>,
    base: u32,
    alive: Option<AliveBitSet>,
}

/// An open index, ready to answer queries from many threads at once.
pub struct Bm25Searcher {
    dir: PathBuf,
    meta: IndexMeta,
    params: Bm25Params,
    body: Field,
    segments: Vec<Segment>,
    /// Corpus id per global document number (segment base + segment doc id).
    ids: Vec<String>,
    /// Global document number per corpus id.
    by_id: HashMap<String, u32>,
    /// `k1 · (1 − b + b · |d| / avgdl)` per global document, computed once at open.
    norms: Vec<f32>,
    analyzers: Analyzers,
}

/// Per-thread scratch space for scoring, reused across queries to avoid allocation.
pub struct Scratch {
    acc: Vec<f32>,
    touched: Vec<u32>,
}

impl Bm25Searcher {
    /// Opens the index in `dir` and precomputes the length normalisation for `params`.
    pub fn open(dir: &Path, params: Bm25Params) -> Result<Self> {
        params.validate()?;
        let meta = IndexMeta::load(dir)?;
        let err = |e| LexicalError::index(dir, e);
        let index = Index::open_in_dir(dir).map_err(err)?;
        let (_, _, body, _) = schema();
        let reader = index.reader().map_err(err)?;
        let searcher = reader.searcher();
        let mut segments = Vec::new();
        let mut ids = Vec::new();
        let mut lens = Vec::new();
        for sr in searcher.segment_readers() {
            let base = ids.len() as u32;
            let ff = sr.fast_fields();
            let id_col = ff
                .str(fields::ID)
                .map_err(err)?
                .ok_or_else(|| LexicalError::Meta {
                    path: dir.to_path_buf(),
                    message: "the index has no id column".into(),
                })?;
            let len_col = ff.u64(fields::LEN).map_err(err)?;
            let mut buf = String::new();
            for doc in 0..sr.max_doc() {
                buf.clear();
                if let Some(ord) = id_col.term_ords(doc).next() {
                    id_col
                        .ord_to_str(ord, &mut buf)
                        .map_err(|e| LexicalError::io(dir, e))?;
                }
                ids.push(buf.clone());
                lens.push(len_col.first(doc).unwrap_or(0));
            }
            segments.push(Segment {
                inverted: sr.inverted_index(body).map_err(err)?,
                base,
                alive: sr.alive_bitset().cloned(),
            });
        }
        let n = lens.len().max(1) as f64;
        let avgdl = (lens.iter().sum::<u64>() as f64 / n).max(f64::MIN_POSITIVE);
        let (k1, b) = (params.k1 as f64, params.b as f64);
        let norms = lens
            .iter()
            .map(|&l| (k1 * (1.0 - b + b * l as f64 / avgdl)) as f32)
            .collect();
        let analyzers = Analyzers::new(meta.analysis);
        let by_id = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect();
        Ok(Bm25Searcher {
            dir: dir.to_path_buf(),
            meta,
            params,
            body,
            segments,
            ids,
            by_id,
            norms,
            analyzers,
        })
    }

    /// What the index was built with.
    pub fn meta(&self) -> &IndexMeta {
        &self.meta
    }

    /// The parameters scores are computed with.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.ids.len()
    }

    /// Fresh scratch space for [`Bm25Searcher::search_terms`].
    pub fn scratch(&self) -> Scratch {
        Scratch {
            acc: vec![0.0; self.ids.len()],
            touched: Vec::new(),
        }
    }

    /// A clone of the analysers queries go through, for callers that analyse themselves.
    pub fn analyzers(&self) -> Analyzers {
        self.analyzers.clone()
    }

    /// The language a query is analysed as: `lang_override`, else the query's own, else the
    /// index's; an index built with one language therefore needs no query language.
    pub fn query_language<'a>(
        &'a self,
        lang_override: Option<&'a str>,
        query_lang: Option<&'a str>,
    ) -> Option<&'a str> {
        lang_override.or(query_lang).or(self.meta.lang.as_deref())
    }

    /// Scores analysed query `terms` (repeats count as query-term frequency, as in a Lucene
    /// BooleanQuery of SHOULD clauses) and returns the best `k`, by score and then by id
    /// descending, trec_eval's tie order, so a cut at `k` keeps what an evaluator would rank.
    pub fn search_terms(
        &self,
        terms: &[String],
        k: usize,
        scratch: &mut Scratch,
    ) -> Result<Vec<Hit>> {
        Ok(self.search_terms_and_score(terms, k, &[], scratch)?.0)
    }

    /// [`Bm25Searcher::search_terms`], plus the score of each document in `also` (by
    /// [`Bm25Searcher::doc_number`]; 0 when it matches no term), ranked or not: a negative
    /// miner needs its positives' scores to spot false negatives.
    pub fn search_terms_and_score(
        &self,
        terms: &[String],
        k: usize,
        also: &[u32],
        scratch: &mut Scratch,
    ) -> Result<(Vec<Hit>, Vec<f32>)> {
        let mut uniq: Vec<&str> = terms.iter().map(String::as_str).collect();
        uniq.sort_unstable();
        let n_docs = self.ids.len() as f64;
        let mut i = 0;
        while i < uniq.len() {
            let t = uniq[i];
            let mut qtf = 0u32;
            while i < uniq.len() && uniq[i] == t {
                qtf += 1;
                i += 1;
            }
            if let Err(e) = self.accumulate(t, qtf as f32, n_docs, scratch) {
                self.reset(scratch);
                return Err(e);
            }
        }
        let extra = also.iter().map(|&d| scratch.acc[d as usize]).collect();
        Ok((self.top_k(k, scratch), extra))
    }

    /// The internal number of the document with corpus id `docid`.
    pub fn doc_number(&self, docid: &str) -> Option<u32> {
        self.by_id.get(docid).copied()
    }

    fn reset(&self, s: &mut Scratch) {
        for &d in s.touched.iter() {
            s.acc[d as usize] = 0.0;
        }
        s.touched.clear();
    }

    fn accumulate(&self, term: &str, qtf: f32, n_docs: f64, s: &mut Scratch) -> Result<()> {
        let term = Term::from_field_text(self.body, term);
        let io = |e| LexicalError::io(&self.dir, e);
        let mut infos = Vec::with_capacity(self.segments.len());
        let mut df = 0u64;
        for seg in &self.segments {
            let ti = seg.inverted.get_term_info(&term).map_err(io)?;
            if let Some(ti) = &ti {
                df += ti.doc_freq as u64;
            }
            infos.push(ti);
        }
        if df == 0 {
            return Ok(());
        }
        let idf = (1.0 + (n_docs - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
        let w = qtf * idf as f32;
        for (seg, ti) in self.segments.iter().zip(infos) {
            let Some(ti) = ti else { continue };
            let mut postings = seg
                .inverted
                .read_postings_from_terminfo(&ti, IndexRecordOption::WithFreqs)
                .map_err(io)?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if seg.alive.as_ref().is_none_or(|a| a.is_alive(doc)) {
                    let g = (seg.base + doc) as usize;
                    let tf = postings.term_freq() as f32;
                    let slot = &mut s.acc[g];
                    if *slot == 0.0 {
                        s.touched.push(g as u32);
                    }
                    *slot += w * tf / (tf + self.norms[g]);
                }
                doc = postings.advance();
            }
        }
        Ok(())
    }

    fn top_k(&self, k: usize, s: &mut Scratch) -> Vec<Hit> {
        let acc = &s.acc;
        let ids = &self.ids;
        let order = |a: &u32, b: &u32| {
            acc[*b as usize]
                .total_cmp(&acc[*a as usize])
                .then_with(|| ids[*b as usize].cmp(&ids[*a as usize]))
        };
        let cand = &mut s.touched;
        let k = k.min(cand.len());
        if k < cand.len() {
            cand.select_nth_unstable_by(k, order);
        }
        cand[..k].sort_unstable_by(order);
        let hits = cand[..k]
            .iter()
            .map(|&d| Hit {
                docid: ids[d as usize].clone(),
                score: acc[d as usize],
            })
            .collect();
        // Reset everything this query touched, selected or not; the next query starts from zeros.
        self.reset(s);
        hits
    }

    /// Analyses `text` as `lang` (see [`Bm25Searcher::query_language`]) and returns the top `k`.
    pub fn search(&self, text: &str, lang: Option<&str>, k: usize) -> Result<Vec<Hit>> {
        let mut an = self.analyzers.clone();
        let terms = an.terms(text, self.query_language(None, lang));
        self.search_terms(&terms, k, &mut self.scratch())
    }

    /// Searches every query in parallel, in input order; `lang` overrides each query's own
    /// language, and `progress` is called with the number of queries just finished.
    pub fn search_queries(
        &self,
        queries: &[Query],
        lang: Option<&str>,
        k: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Vec<Hit>>> {
        let lang = lang.map(primary_language);
        queries
            .par_iter()
            .map_init(
                || (self.analyzers.clone(), self.scratch()),
                |(an, scratch), q| {
                    let ql = self.query_language(lang.as_deref(), q.lang.as_deref());
                    let terms = an.terms(&q.text, ql);
                    let hits = self.search_terms(&terms, k, scratch);
                    progress(1);
                    hits
                },
            )
            .collect()
    }

    /// [`Bm25Searcher::search_queries`] as a [`Run`], ready to be written as a TREC run.
    pub fn search_run(
        &self,
        queries: &[Query],
        lang: Option<&str>,
        k: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Run> {
        let hits = self.search_queries(queries, lang, k, progress)?;
        Ok(queries
            .iter()
            .zip(hits)
            .map(|(q, h)| {
                let ranked = h.into_iter().map(|h| (h.docid, h.score as f64)).collect();
                (q.id.clone(), ranked)
            })
            .collect())
    }
}
