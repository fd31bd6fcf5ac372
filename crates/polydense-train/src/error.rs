//! The errors of training, typed so the CLI can print one readable line for each.

use std::path::PathBuf;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor op failed (shape mismatch, device, out of memory).
    #[error("tensor op: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The encoder could not be loaded, run or saved.
    #[error(transparent)]
    Model(#[from] polydense_model::ModelError),
    /// Training or evaluation data was missing or malformed (names file, line and field).
    #[error(transparent)]
    Data(#[from] polydense_data::DataError),
    /// Dev evaluation failed.
    #[error("dev evaluation: {0}")]
    Eval(#[from] polydense_eval::EvalError),
    /// Dev search failed.
    #[error("dev search: {0}")]
    Index(#[from] polydense_index::IndexError),
    /// A file of the run directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A setting is missing or out of range; `field` is the config key (and flag name).
    #[error("config `{field}`: {message}")]
    Config {
        /// The config key.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A config or state file could not be parsed.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column for TOML).
        message: String,
    },
    /// The loss or the gradient norm became NaN or infinite; the weights were not updated.
    #[error(
        "the {what} became {value} at step {step}; training stopped before updating the weights. \
         {} (hint: lower the learning rate, raise the temperature, or clip gradients)",
        match checkpoint {
            Some(p) => format!("The last good checkpoint is {}.", p.display()),
            None => "No checkpoint was written yet.".to_string(),
        }
    )]
    NonFinite {
        /// "loss" or "gradient norm".
        what: &'static str,
        /// The offending value.
        value: f64,
        /// The 1-based step at which it happened.
        step: u64,
        /// The newest checkpoint on disk, which is kept.
        checkpoint: Option<PathBuf>,
    },
}

impl TrainError {
    /// An I/O error naming its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// A config error naming its key.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        TrainError::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;
