//! The TOML config of `polydense mine`: the dataset, the output, and the stages in order.
//!
//! ```toml
//! dataset = "data/xquad-r/paragraph/en"
//! split = "train"
//! output = "runs/mine/en.train.jsonl"
//!
//! [[miner]]
//! kind = "bm25"
//! depth = 100
//! from = 3
//! n = 8
//!
//! [[filter]]
//! kind = "dedup"
//!
//! [[filter]]
//! kind = "false_negative"
//! margin = 0.95
//! ```

use crate::error::{MineError, Result};
use crate::false_negative::{MarginMode, Reference};
use crate::sample::Sampling;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole mining run. Relative paths are relative to the working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineConfig {
    /// BEIR directory with corpus.jsonl, queries.jsonl and qrels/<split>.tsv.
    pub dataset: PathBuf,
    /// The qrels split whose queries are mined, with their positives.
    #[serde(default = "default_split")]
    pub split: String,
    /// Training file to write, Tevatron jsonl (`.gz` compresses).
    pub output: PathBuf,
    /// Stats JSON; by default the output path with `.stats.json` appended.
    #[serde(default)]
    pub stats: Option<PathBuf>,
    /// Seed of the random sampling; the same seed gives the same file.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Leave out examples with fewer negatives than this.
    #[serde(default = "default_min_negatives")]
    pub min_negatives: usize,
    /// Miners, run in order; their candidates are merged in this order.
    #[serde(default, rename = "miner")]
    pub miners: Vec<MinerConfig>,
    /// Filters, applied in order.
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterConfig>,
}

fn default_split() -> String {
    "train".into()
}
fn default_seed() -> u64 {
    13
}
fn default_min_negatives() -> usize {
    1
}

/// One miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MinerConfig {
    /// BM25 over the dataset's corpus.
    Bm25(Bm25MinerConfig),
}

/// The BM25 miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25MinerConfig {
    /// Source tag written on its negatives.
    pub name: String,
    /// Index from `polydense bm25 index`; when absent the dataset's corpus is indexed into a
    /// temporary directory with `lang`, `stem` and `stopwords`.
    pub index: Option<PathBuf>,
    /// N: how many documents, positives excluded, are ranked.
    pub depth: usize,
    /// First rank of the window, 0-based.
    pub from: usize,
    /// End of the window (exclusive); defaults to `depth`.
    pub to: Option<usize>,
    /// Negatives kept per query from this miner.
    pub n: usize,
    /// How the `n` are chosen from the survivors of the window.
    pub sampling: Sampling,
    /// BM25 k1 (pyserini's default).
    pub k1: f32,
    /// BM25 b (pyserini's default).
    pub b: f32,
    /// Analyse queries (and documents, when indexing here) as this language.
    pub lang: Option<String>,
    /// Stem when indexing here.
    pub stem: bool,
    /// Remove stopwords when indexing here.
    pub stopwords: bool,
}

impl Default for Bm25MinerConfig {
    fn default() -> Self {
        Bm25MinerConfig {
            name: "bm25".into(),
            index: None,
            depth: 100,
            from: 0,
            to: None,
            n: 8,
            sampling: Sampling::Random,
            k1: 0.9,
            b: 0.4,
            lang: None,
            stem: true,
            stopwords: false,
        }
    }
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterConfig {
    /// Drop candidates scored too close to the positive.
    FalseNegative {
        /// Factor (relative) or difference (absolute).
        #[serde(default = "default_margin")]
        margin: f32,
        /// `relative` or `absolute`.
        #[serde(default)]
        mode: MarginMode,
        /// `max` or `min` over the positives' scores.
        #[serde(default)]
        reference: Reference,
    },
    /// Drop positives and repeats.
    Dedup {
        /// Compare ids.
        #[serde(default = "yes")]
        by_id: bool,
        /// Compare normalised texts.
        #[serde(default = "yes")]
        by_text: bool,
    },
}

fn default_margin() -> f32 {
    0.95
}
fn yes() -> bool {
    true
}

impl MineConfig {
    /// Reads a config file; an error names the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| MineError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let cfg: MineConfig = toml::from_str(&text).map_err(|e| MineError::Config {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks what serde cannot: at least one miner, unique source names, sane windows.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| MineError::Config {
            path: path.to_path_buf(),
            message,
        };
        if self.miners.is_empty() {
            return Err(bad("no [[miner]]: nothing would propose negatives".into()));
        }
        let mut names = std::collections::HashSet::new();
        for m in &self.miners {
            let MinerConfig::Bm25(b) = m;
            if !names.insert(b.name.clone()) {
                return Err(bad(format!(
                    "two miners are named `{}`; give each a `name`",
                    b.name
                )));
            }
            let to = b.to.unwrap_or(b.depth);
            if b.from >= to || to > b.depth {
                return Err(bad(format!(
                    "miner `{}`: window from={} to={to} depth={} needs from < to <= depth",
                    b.name, b.from, b.depth
                )));
            }
            if b.n == 0 {
                return Err(bad(format!("miner `{}`: n must be at least 1", b.name)));
            }
        }
        for f in &self.filters {
            if let FilterConfig::FalseNegative { margin, .. } = f {
                if !margin.is_finite() || *margin < 0.0 {
                    return Err(bad(format!(
                        "false_negative margin must be ≥ 0, got {margin}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Where the stats go.
    pub fn stats_path(&self) -> PathBuf {
        self.stats.clone().unwrap_or_else(|| {
            let mut s = self.output.clone().into_os_string();
            s.push(".stats.json");
            PathBuf::from(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_minimal_config() {
        let cfg: MineConfig = toml::from_str(
            "dataset = 'd'\noutput = 'o.jsonl'\n[[miner]]\nkind = 'bm25'\n[[filter]]\nkind = 'false_negative'\nmode = 'absolute'\nmargin = 0.5\n",
        )
        .unwrap();
        cfg.validate(Path::new("c.toml")).unwrap();
        assert_eq!(cfg.split, "train");
        let MinerConfig::Bm25(b) = &cfg.miners[0];
        assert_eq!((b.depth, b.n, b.k1, b.b), (100, 8, 0.9, 0.4));
        assert_eq!(
            cfg.filters[0],
            FilterConfig::FalseNegative {
                margin: 0.5,
                mode: MarginMode::Absolute,
                reference: Reference::Max
            }
        );
        assert_eq!(cfg.stats_path(), PathBuf::from("o.jsonl.stats.json"));
    }

    #[test]
    fn unknown_keys_and_bad_windows_are_errors() {
        let typo = toml::from_str::<MineConfig>(
            "dataset='d'\noutput='o'\n[[miner]]\nkind='bm25'\ndepht=5\n",
        );
        assert!(typo.unwrap_err().to_string().contains("depht"));
        let cfg: MineConfig =
            toml::from_str("dataset='d'\noutput='o'\n[[miner]]\nkind='bm25'\nfrom=50\nto=20\n")
                .unwrap();
        let err = cfg.validate(Path::new("c.toml")).unwrap_err().to_string();
        assert!(err.starts_with("c.toml: miner `bm25`: window"), "{err}");
        let none: MineConfig = toml::from_str("dataset='d'\noutput='o'\n").unwrap();
        assert!(none.validate(Path::new("c.toml")).is_err());
    }
}
