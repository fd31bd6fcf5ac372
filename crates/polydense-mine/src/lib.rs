//! polydense-mine: hard-negative pipelines built from stages.
//!
//! A [`Miner`] proposes scored candidates, a [`Generator`] writes new ones, and a [`Filter`]
//! keeps or drops them; a [`Pipeline`] runs them in order (from a TOML [`MineConfig`]) over
//! batches of queries, checkpointing after each so that a stopped run resumes
//! ([`run_config`]), and writes a Tevatron training file whose negatives carry their `score`,
//! `source` and later stages' scores, plus a stats file ([`MineStats`]). The LLM stages
//! ([`LlmJudge`], [`LlmGenerate`], [`RagSelect`]) ask a `polydense_llm` backend.
//!
//! ```
//! use polydense_mine::{DedupFilter, FalseNegativeFilter, MarginMode, Reference};
//!
//! // Keep a negative only if BM25 scores it at most 95% of the positive.
//! let f = FalseNegativeFilter { margin: 0.95, mode: MarginMode::Relative, reference: Reference::Max };
//! assert_eq!(f.threshold(10.0), 9.5);
//! let f = FalseNegativeFilter { margin: 0.5, mode: MarginMode::Absolute, reference: Reference::Max };
//! assert_eq!(f.threshold(10.0), 9.5);
//! let _dedup = DedupFilter { by_id: true, by_text: true };
//! ```

pub mod adversarial;
pub mod bm25;
pub mod checkpoint;
pub mod config;
pub mod dedup;
pub mod dense;
pub mod embedder;
pub mod error;
pub mod false_negative;
pub mod llm_generate;
pub mod llm_judge;
pub mod llm_perturb;
pub mod llm_stage;
pub mod negative_queries;
pub mod perturb;
pub mod pipeline;
pub mod progress;
pub mod rag_select;
pub mod sample;
pub mod stage;
pub mod stats;
pub mod totals;

pub use adversarial::{AdversarialFilter, AdversarialMode, AdversarialRule, Scored, Verdict};
pub use bm25::{Bm25Miner, RankWindow};
pub use checkpoint::run_config;
pub use config::{
    Bm25MinerConfig, DenseMinerConfig, FilterConfig, GeneratorConfig, MineConfig, MinerConfig,
};
pub use dedup::DedupFilter;
pub use dense::DenseMiner;
pub use embedder::{Embedder, EncoderEmbedder};
pub use error::{MineError, Result};
pub use false_negative::{FalseNegativeFilter, MarginMode, Reference};
pub use llm_generate::{LlmGenerate, LlmGenerateConfig};
pub use llm_judge::{LlmJudge, LlmJudgeConfig, Unjudged};
pub use llm_perturb::{LlmPerturb, LlmPerturbConfig};
pub use negative_queries::{
    attach_from_llm, attach_from_qrels, NegativeQueriesConfig, NegativeQueryCounts,
};
pub use perturb::{Perturb, PerturbConfig, PerturbKind};
pub use pipeline::{mine_queries, MinerStage, Pipeline};
pub use progress::{Progress, Silent};
pub use rag_select::{RagSelect, RagSelectConfig};
pub use sample::Sampling;
pub use stage::{
    each_query, Candidate, DropLog, Filter, Generator, MineQuery, Mined, Miner, PassageLookup,
    QueryCandidates, QueryContext, QueryFilter,
};
pub use stats::{Histogram, MineStats, PerQuery};
