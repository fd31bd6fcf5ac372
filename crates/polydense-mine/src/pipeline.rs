//! Runs the stages in order over a batch of queries; [`crate::checkpoint`] cuts a run into
//! batches and writes the training file and its stats.

use crate::adversarial::AdversarialFilter;
use crate::bm25::Bm25Miner;
use crate::config::{FilterConfig, GeneratorConfig, MineConfig, MinerConfig};
use crate::dedup::DedupFilter;
use crate::dense::DenseMiner;
use crate::embedder::EncoderEmbedder;
use crate::error::{MineError, Result};
use crate::false_negative::FalseNegativeFilter;
use crate::llm_generate::LlmGenerate;
use crate::llm_judge::LlmJudge;
use crate::llm_perturb::LlmPerturb;
use crate::perturb::Perturb;
use crate::progress::Progress;
use crate::rag_select::RagSelect;
use crate::sample::{select, Sampling};
use crate::stage::{
    Candidate, DropLog, Filter, Generator, MineQuery, Mined, Miner, QueryCandidates, QueryContext,
};
use crate::stats::MineStats;
use crate::totals::{QueryOutcome, RunTotals};
use polydense_data::beir::BeirDataset;
use polydense_data::{Document, TrainExample, TrainPassage};
use polydense_lexical::{build_index, AnalysisOptions, Bm25Params, Bm25Searcher, IndexOptions};
use polydense_llm::LlmClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The name [`FalseNegativeFilter`] reports: the filter whose drops are scored in the stats
/// (what dedup drops is a copy, not a false negative, so its scores say nothing).
const FALSE_NEGATIVE: &str = "false_negative";

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
    /// Filters, applied in this order to mined and generated candidates.
    pub filters: Vec<Box<dyn Filter>>,
    /// Generators, run after the miners; their output is filtered too and kept without quota.
    pub generators: Vec<Box<dyn Generator>>,
    /// Seed of the sampling.
    pub seed: u64,
    /// Examples with fewer negatives are left out.
    pub min_negatives: usize,
    /// The LLM client the stages share, synced to disk at each checkpoint.
    pub llm: Option<Arc<LlmClient>>,
}

/// A corpus document as the training file shows it.
pub fn passage(d: &Document) -> TrainPassage {
    TrainPassage {
        docid: d.id.clone(),
        title: d.title.clone(),
        text: d.text.clone(),
        lang: d.lang.clone(),
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

fn stage_error(stage: &str, e: impl std::fmt::Display) -> MineError {
    MineError::Stage {
        stage: stage.to_string(),
        message: e.to_string(),
    }
}

impl Pipeline {
    /// Builds the stages a config names; BM25 miners without an index get one built from
    /// `corpus` in `scratch` (a directory the caller removes afterwards). LLM stages share
    /// one client, opened from `[llm]` (the offline default when absent).
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
        let llm = if cfg.uses_llm() {
            let client = cfg
                .llm
                .clone()
                .unwrap_or_default()
                .client()
                .map_err(|e| stage_error("llm", e))?;
            Some(Arc::new(client))
        } else {
            None
        };
        let client = || llm.clone().expect("opened when an LLM stage is configured");
        let mut filters: Vec<Box<dyn Filter>> = Vec::new();
        for f in &cfg.filters {
            filters.push(match f {
                FilterConfig::FalseNegative {
                    margin,
                    mode,
                    reference,
                } => Box::new(FalseNegativeFilter {
                    margin: *margin,
                    mode: *mode,
                    reference: *reference,
                }),
                FilterConfig::Dedup { by_id, by_text } => Box::new(DedupFilter {
                    by_id: *by_id,
                    by_text: *by_text,
                }),
                FilterConfig::LlmJudge(c) => Box::new(LlmJudge {
                    config: c.clone(),
                    client: client(),
                }),
                FilterConfig::Adversarial(c) => Box::new(AdversarialFilter::from_rule(c)?),
                FilterConfig::RagSelect(c) => Box::new(RagSelect {
                    config: c.clone(),
                    embedder: Box::new(EncoderEmbedder::load(&c.encoder, "rag_select")?),
                    client: client(),
                }),
            });
        }
        let generators = cfg
            .generators
            .iter()
            .map(|g| -> Box<dyn Generator> {
                match g {
                    GeneratorConfig::LlmGenerate(c) => Box::new(LlmGenerate {
                        config: c.clone(),
                        client: client(),
                    }),
                    GeneratorConfig::Perturb(c) => Box::new(Perturb::new(c.clone(), corpus)),
                    GeneratorConfig::LlmPerturb(c) => Box::new(LlmPerturb {
                        config: c.clone(),
                        client: client(),
                    }),
                }
            })
            .collect();
        Ok(Pipeline {
            miners,
            filters,
            generators,
            seed: cfg.seed,
            min_negatives: cfg.min_negatives,
            llm,
        })
    }

    /// Negatives asked for per query: the sum of the miners' quotas.
    pub fn requested(&self) -> usize {
        self.miners.iter().map(|m| m.n).sum()
    }

    /// Applies the filters in order to a batch; the scores of what the false-negative
    /// filter drops go to `dropped`, per query and source.
    fn filter(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        dropped: &mut [BTreeMap<String, Vec<f32>>],
        progress: &dyn Progress,
    ) -> Result<()> {
        for f in &self.filters {
            if f.name() != FALSE_NEGATIVE {
                f.apply(batch, log, progress)?;
                continue;
            }
            // The filter keeps survivors only, so what was dropped is the difference.
            let before: Vec<Vec<(String, String, f32)>> = batch
                .iter()
                .map(|q| {
                    q.candidates
                        .iter()
                        .map(|x| (x.source.clone(), x.docid.clone(), x.score))
                        .collect()
                })
                .collect();
            f.apply(batch, log, progress)?;
            for ((q, before), dropped) in batch.iter().zip(before).zip(dropped.iter_mut()) {
                let mut left: HashMap<(&str, &str), usize> = HashMap::new();
                for x in &q.candidates {
                    *left.entry((&x.source, &x.docid)).or_default() += 1;
                }
                for (source, docid, score) in &before {
                    match left.get_mut(&(source.as_str(), docid.as_str())) {
                        Some(n) if *n > 0 => *n -= 1,
                        _ => dropped.entry(source.clone()).or_default().push(*score),
                    }
                }
            }
        }
        Ok(())
    }

    /// Mines one batch of queries: miners, generators, filters, quotas. Returns one outcome
    /// per query, in order, and the batch's drop log.
    pub fn run_batch(
        &self,
        queries: &[MineQuery],
        passages: &HashMap<&str, TrainPassage>,
        progress: &dyn Progress,
    ) -> Result<(Vec<QueryOutcome>, DropLog)> {
        let mut mined: Vec<Vec<Mined>> = Vec::new();
        for m in &self.miners {
            let out = m.miner.mine(queries, &|_| {})?;
            if out.len() != queries.len() {
                return Err(stage_error(
                    m.miner.source(),
                    format!(
                        "returned {} results for {} queries",
                        out.len(),
                        queries.len()
                    ),
                ));
            }
            mined.push(out);
        }
        let positives: Vec<Vec<TrainPassage>> = queries
            .iter()
            .map(|q| {
                q.positives
                    .iter()
                    .filter_map(|p| passages.get(p.as_str()).cloned())
                    .collect()
            })
            .collect();
        let positive_scores: Vec<BTreeMap<String, Vec<Option<f32>>>> = (0..queries.len())
            .map(|qi| {
                self.miners
                    .iter()
                    .zip(&mined)
                    .map(|(m, per)| {
                        (
                            m.miner.source().to_string(),
                            per[qi].positive_scores.clone(),
                        )
                    })
                    .collect()
            })
            .collect();
        let mut proposed: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); queries.len()];
        let mut batch: Vec<QueryCandidates<'_>> = queries
            .iter()
            .enumerate()
            .map(|(qi, q)| {
                let mut candidates = Vec::new();
                for (m, per) in self.miners.iter().zip(&mined) {
                    let got = &per[qi].candidates;
                    *proposed[qi]
                        .entry(m.miner.source().to_string())
                        .or_default() += got.len() as u64;
                    candidates.extend(got.iter().cloned());
                }
                QueryCandidates {
                    ctx: QueryContext {
                        query: q,
                        positives: &positives[qi],
                        positive_scores: &positive_scores[qi],
                        corpus: passages,
                    },
                    candidates,
                }
            })
            .collect();
        drop(mined);
        let mut log = DropLog::default();
        for g in &self.generators {
            let new = g.generate(&batch, &mut log, progress)?;
            if new.len() != batch.len() {
                return Err(stage_error(
                    g.source(),
                    format!("returned {} results for {} queries", new.len(), batch.len()),
                ));
            }
            for ((q, new), proposed) in batch.iter_mut().zip(new).zip(proposed.iter_mut()) {
                *proposed.entry(g.source().to_string()).or_default() += new.len() as u64;
                q.candidates.extend(new);
            }
        }
        let mut dropped_scores = vec![BTreeMap::new(); queries.len()];
        self.filter(&mut batch, &mut log, &mut dropped_scores, progress)?;
        let outcomes = batch
            .into_iter()
            .zip(proposed)
            .zip(dropped_scores)
            .map(|((q, proposed), dropped_scores)| self.quota(q, proposed, dropped_scores))
            .collect();
        Ok((outcomes, log))
    }

    /// Keeps each miner's quota of a query's survivors (in miner order, each in rank order)
    /// and every surviving generated negative, and writes the example.
    fn quota(
        &self,
        q: QueryCandidates<'_>,
        proposed: BTreeMap<String, u64>,
        dropped_scores: BTreeMap<String, Vec<f32>>,
    ) -> QueryOutcome {
        let ctx = &q.ctx;
        let mut not_sampled: BTreeMap<String, u64> = BTreeMap::new();
        let mut kept: Vec<Candidate> = Vec::new();
        for m in &self.miners {
            let src = m.miner.source();
            let mine: Vec<Candidate> = q
                .candidates
                .iter()
                .filter(|c| c.source == src)
                .cloned()
                .collect();
            let total = mine.len();
            let chosen = select(mine, m.n, m.sampling, self.seed, &ctx.query.query.id, src);
            *not_sampled.entry(src.to_string()).or_default() += (total - chosen.len()) as u64;
            kept.extend(chosen);
        }
        for g in &self.generators {
            kept.extend(
                q.candidates
                    .iter()
                    .filter(|c| c.source == g.source())
                    .cloned(),
            );
        }
        let negative_passages = kept
            .iter()
            .filter_map(|c| {
                let mut p = ctx.passage(c)?.clone();
                p.score = Some(c.score as f64);
                p.source = Some(c.source.clone());
                p.stage_scores = c
                    .stage_scores
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as f64))
                    .collect();
                Some(p)
            })
            .collect();
        QueryOutcome {
            example: TrainExample {
                query_id: ctx.query.query.id.clone(),
                query: ctx.query.query.text.clone(),
                lang: ctx.query.query.lang.clone(),
                positive_passages: ctx.positives.to_vec(),
                negative_passages,
            },
            proposed,
            not_sampled,
            positive_scores: ctx.positive_scores.clone().into_iter().collect(),
            dropped_scores,
        }
    }

    /// Mines negatives for `queries` over `corpus` in one batch, without checkpoints, and
    /// returns the examples in query order with the run's stats (`queries` and
    /// `skipped_no_positive` are left for the caller).
    pub fn run(
        &self,
        queries: &[MineQuery],
        corpus: &[Document],
        progress: &dyn Progress,
    ) -> Result<(Vec<TrainExample>, MineStats)> {
        let passages: HashMap<&str, TrainPassage> =
            corpus.iter().map(|d| (d.id.as_str(), passage(d))).collect();
        progress.start("mining", queries.len() as u64);
        let (outcomes, log) = self.run_batch(queries, &passages, progress)?;
        progress.inc(queries.len() as u64);
        progress.finish();
        let mut totals = RunTotals::default();
        totals.add_log(log);
        let examples = outcomes
            .into_iter()
            .filter_map(|o| totals.add(o, self.min_negatives, self.requested()))
            .collect();
        Ok((examples, totals.stats(self.requested())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::false_negative::{MarginMode, Reference};
    use crate::progress::Silent;
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
                    stage_scores: Default::default(),
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
            llm: None,
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
