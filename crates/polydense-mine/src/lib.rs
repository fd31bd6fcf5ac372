//! polydense-mine: hard-negative pipelines built from stages.
//!
//! A [`Miner`] proposes scored candidates, a [`Filter`] keeps or drops them, and a
//! [`Generator`] writes new ones; a [`Pipeline`] runs them in order (from a TOML
//! [`MineConfig`]) and writes a Tevatron training file whose negatives carry their `score`
//! and `source`, plus a stats file ([`MineStats`]).
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

pub mod bm25;
pub mod config;
pub mod dedup;
pub mod dense;
pub mod error;
pub mod false_negative;
pub mod negative_queries;
pub mod pipeline;
pub mod sample;
pub mod stage;
pub mod stats;

pub use bm25::{Bm25Miner, RankWindow};
pub use config::{Bm25MinerConfig, DenseMinerConfig, FilterConfig, MineConfig, MinerConfig};
pub use dedup::DedupFilter;
pub use dense::DenseMiner;
pub use error::{MineError, Result};
pub use false_negative::{FalseNegativeFilter, MarginMode, Reference};
pub use negative_queries::{attach_from_qrels, NegativeQueryCounts};
pub use pipeline::{mine_queries, run_config, MinerStage, Pipeline, Progress, Silent};
pub use sample::Sampling;
pub use stage::{
    Candidate, DropLog, Filter, Generator, MineQuery, Mined, Miner, PassageLookup, QueryContext,
};
pub use stats::{Histogram, MineStats, PerQuery};
