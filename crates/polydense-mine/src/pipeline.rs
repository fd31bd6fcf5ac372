//! Runs the stages in order over a BEIR split and writes the training file and its stats.

use crate::bm25::Bm25Miner;
use crate::config::{FilterConfig, MineConfig, MinerConfig};
use crate::dedup::DedupFilter;
use crate::dense::DenseMiner;
use crate::error::{MineError, Result};
use crate::false_negative::FalseNegativeFilter;
use crate::sample::{select, Sampling};
use crate::stage::{Candidate, DropLog, Filter, Generator, MineQuery, Mined, Miner, QueryContext};
use crate::stats::{Histogram, MineStats, PerQuery};
use polydense_data::beir::BeirDataset;
use polydense_data::{Document, TrainExample, TrainPassage};
use polydense_lexical::{build_index, AnalysisOptions, Bm25Params, Bm25Searcher, IndexOptions};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Bins of the score histograms in the stats file.
const HISTOGRAM_BINS: usize = 20;

/// The name [`FalseNegativeFilter`] reports: the filter whose drops are scored in the stats
/// (what dedup drops is a copy, not a false negative, so its scores say nothing).
const FALSE_NEGATIVE: &str = "false_negative";

/// Receives progress from a long run; the CLI draws bars with it.
pub trait Progress: Sync {
    /// A stage starts with `total` units of work.
    fn start(&self, stage: &str, total: u64);
    /// `n` more units are done.
    fn inc(&self, n: u64);
    /// The stage is over.
    fn finish(&self);
}

/// A [`Progress`] that shows nothing, for tests and libraries.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

/// A miner with its quota.
pub struct MinerStage {
    /// The miner.
    pub miner: Box<dyn Miner>,
    /// Negatives kept per query from it.
    pub n: usize,
    /// How the `n` are chosen among the survivors of the filters.
    pub sampling: Sampling,
}

/// The stages of a run, in order.
pub struct Pipeline {
    /// Miners, whose candidates are merged in this order.
    pub miners: Vec<MinerStage>,
    /// Filters, applied in this order.
    pub filters: Vec<Box<dyn Filter>>,
    /// Generators, run after the filters; their output is filtered too.
    pub generators: Vec<Box<dyn Generator>>,
    /// Seed of the sampling.
    pub seed: u64,
    /// Examples with fewer negatives are left out.
    pub min_negatives: usize,
}

/// A corpus document as the training file shows it.
fn passage(d: &Document) -> TrainPassage {
    TrainPassage {
        docid: d.id.clone(),
        title: d.title.clone(),
        text: d.text.clone(),
        ..TrainPassage::default()
    }
}

/// The queries of a dataset with their positives (grade ≥ 1), and how many had none.
pub fn mine_queries(ds: &BeirDataset) -> (Vec<MineQuery>, usize) {
    let mut skipped = 0;
    let mut out = Vec::new();
    for q in &ds.queries {
        let positives: Vec<String> = ds
            .qrels
            .get(&q.id)
            .map(|j| {
                j.iter()
                    .filter(|(_, g)| **g >= 1)
                    .map(|(d, _)| d.clone())
                    .collect()
            })
            .unwrap_or_default();
        if positives.is_empty() {
            skipped += 1;
        } else {
            out.push(MineQuery {
                query: q.clone(),
                positives,
            });
        }
    }
    (out, skipped)
}

impl Pipeline {
    /// Builds the stages a config names; BM25 miners without an index get one built from
    /// `corpus` in `scratch` (a directory the caller removes afterwards).
    pub fn from_config(
        cfg: &MineConfig,
        corpus: &[Document],
        scratch: &std::path::Path,
    ) -> Result<Self> {
        let mut miners = Vec::new();
        for m in &cfg.miners {
            let window = m.window();
            let (n, sampling) = m.quota();
            let b = match m {
                MinerConfig::Bm25(b) => b,
                MinerConfig::Dense(d) => {
                    let miner = DenseMiner::open(&d.name, &d.queries, &d.corpus, window)?;
                    miners.push(MinerStage {
                        miner: Box::new(miner),
                        n,
                        sampling,
                    });
                    continue;
                }
            };
            let index = match &b.index {
                Some(dir) => dir.clone(),
                None => {
                    let dir = scratch.join(format!("bm25-{}", b.name));
                    let opts = IndexOptions {
                        lang: b.lang.clone(),
                        analysis: AnalysisOptions {
                            stem: b.stem,
                            stopwords: b.stopwords,
                        },
                        threads: 0,
                    };
                    build_index(&dir, corpus.iter().cloned().map(Ok), &opts, &|_| {})?;
                    dir
                }
            };
            let searcher = Bm25Searcher::open(&index, Bm25Params { k1: b.k1, b: b.b })?;
            miners.push(MinerStage {
                miner: Box::new(Bm25Miner::new(&b.name, searcher, window, b.lang.clone())?),
                n,
                sampling,
            });
        }
        let filters = cfg
            .filters
            .iter()
            .map(|f| -> Box<dyn Filter> {
                match *f {
                    FilterConfig::FalseNegative {
                        margin,
                        mode,
                        reference,
                    } => Box::new(FalseNegativeFilter {
                        margin,
                        mode,
                        reference,
                    }),
                    FilterConfig::Dedup { by_id, by_text } => {
                        Box::new(DedupFilter { by_id, by_text })
                    }
                }
            })
            .collect();
        Ok(Pipeline {
            miners,
            filters,
            generators: Vec::new(),
            seed: cfg.seed,
            min_negatives: cfg.min_negatives,
        })
    }

    /// Applies the filters in order; the scores of what the false-negative filter drops go
    /// to `dropped`, per source.
    fn filter(
        &self,
        ctx: &QueryContext<'_>,
        mut c: Vec<Candidate>,
        log: &mut DropLog,
        dropped: &mut BTreeMap<String, Vec<f32>>,
    ) -> Vec<Candidate> {
        for f in &self.filters {
            if f.name() != FALSE_NEGATIVE {
                c = f.apply(ctx, c, log);
                continue;
            }
            // The Filter trait returns survivors only, so what was dropped is the difference.
            let before: Vec<(String, String, f32)> = c
                .iter()
                .map(|x| (x.source.clone(), x.docid.clone(), x.score))
                .collect();
            c = f.apply(ctx, c, log);
            let mut left: HashMap<(&str, &str), usize> = HashMap::new();
            for x in &c {
                *left.entry((&x.source, &x.docid)).or_default() += 1;
            }
            for (source, docid, score) in &before {
                match left.get_mut(&(source.as_str(), docid.as_str())) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => dropped.entry(source.clone()).or_default().push(*score),
                }
            }
        }
        c
    }

    /// Mines negatives for `queries` over `corpus` and returns the examples, in query order,
    /// with the run's stats (`queries`/`skipped_no_positive` are left for the caller).
    pub fn run(
        &self,
        queries: &[MineQuery],
        corpus: &[Document],
        progress: &dyn Progress,
    ) -> Result<(Vec<TrainExample>, MineStats)> {
        let passages: HashMap<&str, TrainPassage> =
            corpus.iter().map(|d| (d.id.as_str(), passage(d))).collect();
        let mut mined: Vec<Vec<Mined>> = Vec::new();
        for m in &self.miners {
            progress.start(
                &format!("mining ({})", m.miner.source()),
                queries.len() as u64,
            );
            let out = m.miner.mine(queries, &|n| progress.inc(n))?;
            progress.finish();
            if out.len() != queries.len() {
                return Err(MineError::Stage {
                    stage: m.miner.source().into(),
                    message: format!(
                        "returned {} results for {} queries",
                        out.len(),
                        queries.len()
                    ),
                });
            }
            mined.push(out);
        }
        let quotas: HashMap<&str, (usize, Sampling)> = self
            .miners
            .iter()
            .map(|m| (m.miner.source(), (m.n, m.sampling)))
            .collect();
        progress.start("filtering", queries.len() as u64);
        let per_query: Vec<Result<QueryOutcome>> = queries
            .par_iter()
            .enumerate()
            .map(|(qi, q)| {
                let r = self.one_query(q, qi, &mined, &quotas, &passages);
                progress.inc(1);
                r
            })
            .collect();
        progress.finish();
        let mut stats = MineStats {
            requested_per_query: self.miners.iter().map(|m| m.n).sum(),
            ..MineStats::default()
        };
        let mut log = DropLog::default();
        let mut examples = Vec::new();
        let mut counts = Vec::new();
        let mut neg_scores: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        let mut pos_scores: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        let mut dropped_scores: BTreeMap<String, Vec<f32>> = BTreeMap::new();
        for o in per_query {
            let o = o?;
            log.merge(o.log);
            for (s, n) in o.proposed {
                *stats.proposed.entry(s).or_default() += n;
            }
            for (s, n) in o.not_sampled {
                *stats.not_sampled.entry(s).or_default() += n;
            }
            for (s, v) in o.dropped_scores {
                dropped_scores.entry(s).or_default().extend(v);
            }
            for (s, v) in o.positive_scores {
                pos_scores
                    .entry(s)
                    .or_default()
                    .extend(v.into_iter().flatten());
            }
            let ex = o.example;
            if ex.negative_passages.len() < self.min_negatives {
                stats.skipped_too_few_negatives += 1;
                continue;
            }
            if ex.negative_passages.len() < stats.requested_per_query {
                stats.short_examples += 1;
            }
            for n in &ex.negative_passages {
                let src = n.source.clone().unwrap_or_default();
                *stats.kept.entry(src.clone()).or_default() += 1;
                neg_scores
                    .entry(src)
                    .or_default()
                    .push(n.score.unwrap_or(0.0) as f32);
            }
            counts.push(ex.negative_passages.len());
            examples.push(ex);
        }
        stats.examples = examples.len();
        stats.negatives_per_query = PerQuery::of(&counts);
        stats.dropped = log.counts;
        stats.negative_scores = neg_scores
            .into_iter()
            .filter_map(|(s, v)| Histogram::of(&v, HISTOGRAM_BINS).map(|h| (s, h)))
            .collect();
        stats.positive_scores = pos_scores
            .into_iter()
            .filter_map(|(s, v)| Histogram::of(&v, HISTOGRAM_BINS).map(|h| (s, h)))
            .collect();
        stats.dropped_scores = dropped_scores
            .into_iter()
            .filter_map(|(s, v)| Histogram::of(&v, HISTOGRAM_BINS).map(|h| (s, h)))
            .collect();
        Ok((examples, stats))
    }

    fn one_query(
        &self,
        q: &MineQuery,
        qi: usize,
        mined: &[Vec<Mined>],
        quotas: &HashMap<&str, (usize, Sampling)>,
        passages: &HashMap<&str, TrainPassage>,
    ) -> Result<QueryOutcome> {
        let positives: Vec<TrainPassage> = q
            .positives
            .iter()
            .filter_map(|p| passages.get(p.as_str()).cloned())
            .collect();
        let mut positive_scores = BTreeMap::new();
        let mut proposed: BTreeMap<String, u64> = BTreeMap::new();
        let mut cands = Vec::new();
        for (m, per_query) in self.miners.iter().zip(mined) {
            let got = &per_query[qi];
            positive_scores.insert(m.miner.source().to_string(), got.positive_scores.clone());
            *proposed.entry(m.miner.source().to_string()).or_default() +=
                got.candidates.len() as u64;
            cands.extend(got.candidates.iter().cloned());
        }
        let ctx = QueryContext {
            query: q,
            positives: &positives,
            positive_scores: &positive_scores,
            corpus: passages,
        };
        let mut log = DropLog::default();
        let mut dropped_scores = BTreeMap::new();
        let survivors = self.filter(&ctx, cands, &mut log, &mut dropped_scores);
        // Quota per source, in miner order, each source's survivors kept in rank order.
        let mut not_sampled: BTreeMap<String, u64> = BTreeMap::new();
        let mut kept = Vec::new();
        for m in &self.miners {
            let src = m.miner.source();
            let mine: Vec<Candidate> = survivors
                .iter()
                .filter(|c| c.source == src)
                .cloned()
                .collect();
            let (n, how) = quotas[src];
            let total = mine.len();
            let chosen = select(mine, n, how, self.seed, &q.query.id, src);
            *not_sampled.entry(src.to_string()).or_default() += (total - chosen.len()) as u64;
            kept.extend(chosen);
        }
        for g in &self.generators {
            let new = g.generate(&ctx, &kept)?;
            *proposed.entry(g.source().to_string()).or_default() += new.len() as u64;
            // Generated negatives pass the same filters, judged together with the kept ones
            // so dedup also catches a generated copy of a mined negative.
            let mut all = kept.clone();
            all.extend(new);
            kept = self.filter(&ctx, all, &mut log, &mut dropped_scores);
        }
        let negative_passages = kept
            .iter()
            .filter_map(|c| {
                let mut p = ctx.passage(c)?.clone();
                p.score = Some(c.score as f64);
                p.source = Some(c.source.clone());
                Some(p)
            })
            .collect();
        Ok(QueryOutcome {
            example: TrainExample {
                query_id: q.query.id.clone(),
                query: q.query.text.clone(),
                lang: q.query.lang.clone(),
                positive_passages: positives,
                negative_passages,
            },
            log,
            proposed,
            not_sampled,
            positive_scores: positive_scores.into_iter().collect(),
            dropped_scores,
        })
    }
}

struct QueryOutcome {
    example: TrainExample,
    log: DropLog,
    proposed: BTreeMap<String, u64>,
    not_sampled: BTreeMap<String, u64>,
    positive_scores: Vec<(String, Vec<Option<f32>>)>,
    dropped_scores: BTreeMap<String, Vec<f32>>,
}

/// Loads the config's dataset, runs its stages and writes the training file and the stats
/// (both atomically); returns the stats.
pub fn run_config(cfg: &MineConfig, progress: &dyn Progress) -> Result<MineStats> {
    let ds = BeirDataset::load(&cfg.dataset, &cfg.split)?;
    let (queries, skipped) = mine_queries(&ds);
    // Removed on drop, also when a stage fails.
    let scratch = tempfile::Builder::new()
        .prefix("polydense-mine-")
        .tempdir()
        .map_err(|e| polydense_data::DataError::io(std::env::temp_dir(), e))?;
    let pipeline = Pipeline::from_config(cfg, &ds.corpus, scratch.path())?;
    let (mut examples, mut stats) = pipeline.run(&queries, &ds.corpus, progress)?;
    drop(pipeline);
    let langs: HashMap<&str, &str> = ds
        .corpus
        .iter()
        .filter_map(|d| Some((d.id.as_str(), d.lang.as_deref()?)))
        .collect();
    stats.negative_queries =
        crate::negative_queries::attach_from_qrels(&mut examples, &queries, &langs);
    stats.queries = ds.queries.len();
    stats.skipped_no_positive = skipped;
    polydense_data::tevatron::write_train(&cfg.output, &examples)?;
    let stats_path = cfg.stats_path();
    let json = serde_json::to_string_pretty(&stats).expect("stats serialise");
    polydense_data::atomic::write_atomic(&stats_path, |w| {
        use std::io::Write;
        w.write_all(json.as_bytes())
    })?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::false_negative::{MarginMode, Reference};
    use polydense_data::Query;

    /// Proposes d1..d4 scored 9, 7, 5, 3 for every query, and scores its positive `d0` 8.
    struct Fixed;

    impl Miner for Fixed {
        fn source(&self) -> &str {
            "fixed"
        }

        fn mine(&self, queries: &[MineQuery], _: &(dyn Fn(u64) + Sync)) -> Result<Vec<Mined>> {
            let candidates = [9.0, 7.0, 5.0, 3.0]
                .into_iter()
                .enumerate()
                .map(|(rank, score)| Candidate {
                    docid: format!("d{}", rank + 1),
                    score,
                    source: "fixed".into(),
                    rank,
                    passage: None,
                })
                .collect();
            Ok(queries
                .iter()
                .map(|_| Mined {
                    candidates: Vec::clone(&candidates),
                    positive_scores: vec![Some(8.0)],
                })
                .collect())
        }
    }

    #[test]
    fn dropped_false_negatives_get_their_own_histogram() {
        let corpus: Vec<Document> = (0..5)
            .map(|i| Document {
                id: format!("d{i}"),
                title: String::new(),
                text: format!("passage {i}"),
                lang: None,
            })
            .collect();
        let queries: Vec<MineQuery> = ["q1", "q2"]
            .iter()
            .map(|id| MineQuery {
                query: Query {
                    id: id.to_string(),
                    text: "a question".into(),
                    lang: None,
                },
                positives: vec!["d0".into()],
            })
            .collect();
        let pipeline = Pipeline {
            miners: vec![MinerStage {
                miner: Box::new(Fixed),
                n: 4,
                sampling: Sampling::Top,
            }],
            // Threshold 0.8 · 8 = 6.4: d1 (9) and d2 (7) are dropped, d3 and d4 kept.
            filters: vec![Box::new(FalseNegativeFilter {
                margin: 0.8,
                mode: MarginMode::Relative,
                reference: Reference::Max,
            })],
            generators: Vec::new(),
            seed: 0,
            min_negatives: 1,
        };
        let (_, stats) = pipeline.run(&queries, &corpus, &Silent).unwrap();
        let dropped = &stats.dropped_scores["fixed"];
        assert_eq!(dropped.count, 4, "two per query");
        assert_eq!((dropped.min, dropped.max), (7.0, 9.0));
        assert_eq!(dropped.mean, 8.0);
        let kept = &stats.negative_scores["fixed"];
        assert_eq!((kept.count, kept.min, kept.max), (4, 3.0, 5.0));
        assert_eq!(stats.dropped[FALSE_NEGATIVE].values().sum::<u64>(), 4);
    }
}
