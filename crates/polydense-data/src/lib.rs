//! polydense-data: the records the pipeline exchanges and the files they live in.
//!
//! Every reader names the file, the line and the field when input is bad, and every
//! writer replaces its target atomically, so a crash never leaves a half-written file.

pub mod atomic;
pub mod beir;
pub mod error;
pub mod flag;
pub mod jsonl;
pub mod lines;
pub mod msmarco;
pub mod paths;
pub mod qrels;
pub mod splits;
pub mod tevatron;
pub mod trec;
pub mod types;
pub mod xquad;

pub use error::{DataError, Result};
pub use types::{Document, Qrels, Query, Run, TrainExample, TrainPassage};
