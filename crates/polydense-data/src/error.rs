//! One error type for every reader and writer, so a user always learns the file, the line
//! and the field that went wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a data file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused an open, read, write or rename.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes were read but do not form what the format requires.
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

/// Where and why input is invalid; rendered as `file:line: field `x`: message (hint: ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub path: PathBuf,
    /// 1-based line number, when the problem sits on one line.
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl DataError {
    /// Wraps an I/O failure with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Starts an invalid-input error; chain [`DataError::at_line`], [`DataError::field`] and
    /// [`DataError::hint`] to say where and what to do.
    pub fn invalid(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        DataError::Invalid(Box::new(Invalid {
            path: path.as_ref().to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
            hint: None,
        }))
    }

    /// Names the 1-based line the problem is on.
    pub fn at_line(mut self, line: usize) -> Self {
        if let DataError::Invalid(inv) = &mut self {
            inv.line = Some(line);
        }
        self
    }

    /// Names the field the problem is in.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        if let DataError::Invalid(inv) = &mut self {
            inv.field = Some(field.into());
        }
        self
    }

    /// Tells the user how to fix the input.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        if let DataError::Invalid(inv) = &mut self {
            inv.hint = Some(hint.into());
        }
        self
    }

    /// The structured details of an invalid-input error, for tests and tools.
    pub fn as_invalid(&self) -> Option<&Invalid> {
        match self {
            DataError::Invalid(inv) => Some(inv),
            DataError::Io { .. } => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_field_and_hint() {
        let e = DataError::invalid("a/corpus.jsonl", "missing")
            .at_line(7)
            .field("_id")
            .hint("every line needs an id");
        assert_eq!(
            e.to_string(),
            "a/corpus.jsonl:7: field `_id`: missing (hint: every line needs an id)"
        );
        assert_eq!(e.as_invalid().unwrap().line, Some(7));
    }
}
