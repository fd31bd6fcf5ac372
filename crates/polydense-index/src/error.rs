//! One error type for the store and the search, so callers learn which file or which
//! argument is wrong without knowing the module that found it.

use std::path::{Path, PathBuf};

/// Why an embedding store could not be read, written or searched.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The operating system refused an open, read, write, map or rename.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A store file exists but does not hold what the format requires.
    #[error("{}: {message}", path.display())]
    Format {
        /// The malformed file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A search was asked of a store (or matrix) with no rows.
    #[error("the embedding store is empty: nothing to search")]
    EmptyStore,
    /// Two matrices that must share a width do not.
    #[error("dimension mismatch: expected {expected}, got {got}")]
    DimMismatch {
        /// The width the store or the first matrix has.
        expected: usize,
        /// The width that was supplied.
        got: usize,
    },
    /// An argument is outside what the operation accepts (k = 0, ragged rows, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// k-means was asked for more clusters than there are rows to put in them; samplers that
    /// derive k from a schedule (SAC-ICT) match on this to clamp k.
    #[error(
        "k-means: k = {k} clusters requested but the data has only {rows} rows (k must be <= rows)"
    )]
    TooManyClusters {
        /// The requested number of clusters.
        k: usize,
        /// The number of rows supplied.
        rows: usize,
    },
    /// A tensor operation on a candle device (CUDA k-means) failed.
    #[error("tensor backend: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl IndexError {
    /// Wraps an I/O failure with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A malformed store file, named.
    pub fn format(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        IndexError::Format {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
