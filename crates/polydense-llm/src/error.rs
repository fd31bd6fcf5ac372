//! Why an LLM call or a backend failed, split by what the caller should do about it: stop
//! with one line (a bad key, an unknown model, a quota), or look at the input (a config, a
//! model file, the cache).

use std::path::PathBuf;

/// Errors of this crate. Transient faults (timeouts, 429, 5xx, a dropped connection) never
/// reach the caller as such: the backends retry them, and only what is left after the
/// retries arrives here, as [`LlmError::GaveUp`].
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The server refused the request for a reason a retry cannot fix (400, 401, 403, 404,
    /// an OpenAI `insufficient_quota`): the message is the server's own, trimmed to one line.
    #[error("{backend} answered HTTP {status}: {message}")]
    Refused {
        /// `ollama` or `openai`, with the URL.
        backend: String,
        /// The HTTP status.
        status: u16,
        /// The server's error message, or the start of its body.
        message: String,
    },
    /// Retries were exhausted on transient faults; the last one is named.
    #[error("{backend}: gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        /// `ollama` or `openai`, with the URL.
        backend: String,
        /// Requests sent, the first included.
        attempts: u32,
        /// The last fault (a status, a timeout, a connection error, a malformed body).
        last: String,
    },
    /// A config value is missing or inconsistent; names the field.
    #[error("llm config: `{field}`: {message}")]
    Config {
        /// The key in the `[llm]` table.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file could not be read or written (the model, the cache).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model file is missing or unusable; the hint says what to run.
    #[error("{}: {message}{}", path.display(), hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Model {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// How to get a usable file.
        hint: Option<String>,
    },
    /// The cache file has a bad line that is not the torn last one; names file and line.
    #[error("{}:{line}: {message}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The in-process model failed while running (a candle error).
    #[error("in-process model: {0}")]
    Inference(String),
}

impl LlmError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LlmError::Io {
            path: path.into(),
            source,
        }
    }

    /// A config error on `field`.
    pub fn config(field: &str, message: impl Into<String>) -> Self {
        LlmError::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<candle_core::Error> for LlmError {
    fn from(e: candle_core::Error) -> Self {
        LlmError::Inference(e.to_string())
    }
}

/// Result alias for this crate.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;
