//! The metadata file beside a tantivy index: how its documents were analysed, so that
//! search analyses queries the same way, and what it holds.

use crate::analysis::AnalysisOptions;
use crate::error::{LexicalError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the metadata inside an index directory.
pub const META_FILE: &str = "polydense-bm25.json";

/// Version of the index layout; bumped when the schema or the meaning of a field changes.
pub const FORMAT_VERSION: u32 = 1;

/// What an index was built with and from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Layout version, checked on open.
    pub format: u32,
    /// The language every document was analysed as; `None` means each document's `lang`.
    pub lang: Option<String>,
    /// Stemming and stopword choices, reused for queries.
    pub analysis: AnalysisOptions,
    /// Number of documents.
    pub docs: u64,
    /// Number of tokens over all documents, after analysis.
    pub tokens: u64,
    /// Documents per analysis language (`""` for none).
    pub langs: BTreeMap<String, u64>,
}

impl IndexMeta {
    /// Reads the metadata of the index in `dir`, refusing another layout version.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| LexicalError::Meta {
            path: path.clone(),
            message: format!("cannot read ({e}); is this a `polydense bm25 index` directory?"),
        })?;
        let meta: IndexMeta = serde_json::from_str(&text).map_err(|e| LexicalError::Meta {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if meta.format != FORMAT_VERSION {
            return Err(LexicalError::Meta {
                path,
                message: format!(
                    "index format {} but this build reads {FORMAT_VERSION}; rebuild the index",
                    meta.format
                ),
            });
        }
        Ok(meta)
    }

    /// Writes the metadata into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(META_FILE);
        let text = serde_json::to_string_pretty(self).expect("metadata serialises");
        std::fs::write(&path, text).map_err(|e| LexicalError::io(path, e))
    }
}
