//! The crate's error type, so callers can tell a missing model file from a bad tensor.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or saving an encoder.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file the model directory must hold is not there; names the file.
    #[error("missing model file {path}: {hint}")]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// A short model name that is not installed under `$POLYDENSE_HOME/models`.
    #[error("model '{name}' not found (looked for {path}/config.json); run `scripts/setup --assets` to install it, or pass a path to an HF model directory")]
    UnknownModel {
        /// The name or path as given.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A JSON file in the model directory could not be parsed; names the file.
    #[error("bad JSON in {path}: {source}")]
    Json {
        /// The file being read.
        path: PathBuf,
        /// The parser's message.
        source: serde_json::Error,
    },
    /// A config value we cannot run (an unknown activation, heads not dividing the width...).
    #[error("unsupported model config in {path}: field `{field}`: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The offending field.
        field: String,
        /// Why it is refused.
        message: String,
    },
    /// A weight that the architecture needs is absent from the checkpoint.
    #[error("weight `{name}` missing from {path}")]
    MissingWeight {
        /// HF name of the weight (without prefix).
        name: String,
        /// The checkpoint.
        path: PathBuf,
    },
    /// A weight with the wrong shape for the config.
    #[error("weight `{name}` in {path} has shape {found:?}, expected {expected:?}")]
    WeightShape {
        /// HF name of the weight.
        name: String,
        /// The checkpoint.
        path: PathBuf,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer error ({context}): {message}")]
    Tokenizer {
        /// The file or step.
        context: String,
        /// The tokenizers crate's message.
        message: String,
    },
    /// An operation asked of the model that it cannot do (e.g. encoding text without a tokenizer).
    #[error("{0}")]
    Usage(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A read or write failed; names the path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path being read or written.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}
