//! polydense-lexical: multilingual BM25 on tantivy.
//!
//! Documents and queries are analysed per language ([`analysis`]): ICU4X word segmentation
//! (dictionaries for Thai, Chinese and Japanese), lowercasing, optional stopwords and a
//! Snowball stemmer where one exists. Scoring is Lucene's BM25 with configurable k1 and b
//! ([`search`]), so baselines match pyserini's defaults (k1 = 0.9, b = 0.4).
//!
//! ```
//! use polydense_data::Document;
//! use polydense_lexical::{build_index, Bm25Params, Bm25Searcher, IndexOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let docs = vec![
//!     Document { id: "d1".into(), title: String::new(), text: "猫が好きです".into(), lang: Some("ja".into()) },
//!     Document { id: "d2".into(), title: String::new(), text: "Dogs run fast".into(), lang: Some("en".into()) },
//! ];
//! let index = dir.path().join("idx");
//! build_index(&index, docs.into_iter().map(Ok), &IndexOptions::default(), &|_| {}).unwrap();
//! let searcher = Bm25Searcher::open(&index, Bm25Params::default()).unwrap();
//! let hits = searcher.search("running dog", Some("en"), 10).unwrap();
//! assert_eq!(hits[0].docid, "d2");
//! assert_eq!(searcher.search("猫", Some("ja"), 10).unwrap()[0].docid, "d1");
//! ```

pub mod analysis;
pub mod error;
pub mod index;
pub mod meta;
pub mod search;
pub mod segment;

pub use analysis::{AnalysisOptions, Analyzers};
pub use error::{LexicalError, Result};
pub use index::{build_index, IndexOptions, IndexSummary};
pub use meta::IndexMeta;
pub use search::{Bm25Params, Bm25Searcher, Hit, Scratch};
pub use segment::IcuWordTokenizer;
