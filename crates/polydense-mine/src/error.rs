//! Why a mining run failed: bad input data, a bad config, or a failing stage.

use std::path::PathBuf;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum MineError {
    /// Corpus, queries, qrels or output files.
    #[error(transparent)]
    Data(#[from] polydense_data::DataError),
    /// The BM25 index could not be built, opened or searched.
    #[error(transparent)]
    Lexical(#[from] polydense_lexical::LexicalError),
    /// The embedding store could not be opened or searched.
    #[error(transparent)]
    Index(#[from] polydense_index::IndexError),
    /// The config is malformed or inconsistent; names the file and the stage.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    /// A stage failed while running.
    #[error("stage `{stage}`: {message}")]
    Stage { stage: String, message: String },
}

/// Result alias for this crate.
pub type Result<T, E = MineError> = std::result::Result<T, E>;
