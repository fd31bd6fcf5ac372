//! Why building or opening a BM25 index failed, with the path or the record involved.

use std::path::PathBuf;

/// Errors of this crate; a data input error keeps its file, line and field.
#[derive(Debug, thiserror::Error)]
pub enum LexicalError {
    /// The corpus or query input is malformed.
    #[error(transparent)]
    Data(#[from] polydense_data::DataError),
    /// tantivy could not create, write or read the index.
    #[error("BM25 index {}: {source}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },
    /// A file operation on the index directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The index directory is missing its metadata, or it is of another format.
    #[error("{}: {message}", path.display())]
    Meta { path: PathBuf, message: String },
    /// Two corpus records share one id, which would make runs ambiguous.
    #[error("document id `{id}` occurs twice in the corpus")]
    DuplicateId { id: String },
    /// BM25 parameters outside their meaningful range.
    #[error("invalid BM25 parameters: {0}")]
    Params(String),
}

impl LexicalError {
    /// Wraps a tantivy error with the index directory it concerns.
    pub fn index(path: impl Into<PathBuf>, source: tantivy::TantivyError) -> Self {
        LexicalError::Index {
            path: path.into(),
            source,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LexicalError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = LexicalError> = std::result::Result<T, E>;
