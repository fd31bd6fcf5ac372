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

use crate::adversarial::AdversarialRule;
use crate::bm25::RankWindow;
use crate::error::{MineError, Result};
use crate::false_negative::{MarginMode, Reference};
use crate::llm_generate::LlmGenerateConfig;
use crate::llm_judge::LlmJudgeConfig;
use crate::llm_perturb::LlmPerturbConfig;
use crate::perturb::PerturbConfig;
use crate::rag_select::RagSelectConfig;
use crate::sample::Sampling;
use polydense_llm::LlmConfig;
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
    /// Generators, run after the miners; what they write goes through the filters too.
    #[serde(default, rename = "generator")]
    pub generators: Vec<GeneratorConfig>,
    /// The LLM the `llm_*` and `rag_select` stages ask; the offline SmolLM2 by default.
    #[serde(default)]
    pub llm: Option<LlmConfig>,
    /// Each negative's own query (CLPL's neg_q): from the qrels always, from the LLM when
    /// `llm = true`.
    #[serde(default)]
    pub negative_queries: crate::negative_queries::NegativeQueriesConfig,
    /// Mine only the first N queries (with a positive) of the split: a slice to try a
    /// pipeline on. A later run with a larger N resumes where this one stopped.
    #[serde(default)]
    pub max_queries: Option<usize>,
    /// Queries per checkpoint: the output so far and a progress file are written after each
    /// batch of this many, and a rerun continues after the last one.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
}

fn default_checkpoint_every() -> usize {
    100
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
    /// Nearest passages under a dense model (ANCE-style), from `polydense encode` stores.
    Dense(DenseMinerConfig),
}

/// The dense miner: exact inner-product search of the query store over the corpus store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseMinerConfig {
    /// Source tag written on its negatives.
    #[serde(default = "default_dense_name")]
    pub name: String,
    /// Query embeddings: `polydense encode --model M --queries queries.jsonl --out DIR`.
    pub queries: PathBuf,
    /// Corpus embeddings: `polydense encode --model M --corpus corpus.jsonl --out DIR`.
    pub corpus: PathBuf,
    /// N: how many documents, positives excluded, are ranked.
    #[serde(default = "default_depth")]
    pub depth: usize,
    /// First rank of the window, 0-based.
    #[serde(default)]
    pub from: usize,
    /// End of the window (exclusive); defaults to `depth`.
    #[serde(default)]
    pub to: Option<usize>,
    /// Negatives kept per query from this miner.
    #[serde(default = "default_n")]
    pub n: usize,
    /// How the `n` are chosen from the survivors of the window.
    #[serde(default)]
    pub sampling: Sampling,
}

fn default_dense_name() -> String {
    "dense".into()
}
fn default_depth() -> usize {
    100
}
fn default_n() -> usize {
    8
}

impl MinerConfig {
    /// The source tag of the negatives this miner proposes.
    pub fn name(&self) -> &str {
        match self {
            MinerConfig::Bm25(b) => &b.name,
            MinerConfig::Dense(d) => &d.name,
        }
    }

    /// The ranks this miner proposes: depth, and the window `[from, to)`.
    pub fn window(&self) -> RankWindow {
        let (depth, from, to) = match self {
            MinerConfig::Bm25(b) => (b.depth, b.from, b.to),
            MinerConfig::Dense(d) => (d.depth, d.from, d.to),
        };
        RankWindow {
            depth,
            from,
            to: to.unwrap_or(depth),
        }
    }

    /// How many negatives this miner contributes per query, and how they are picked.
    pub fn quota(&self) -> (usize, Sampling) {
        match self {
            MinerConfig::Bm25(b) => (b.n, b.sampling),
            MinerConfig::Dense(d) => (d.n, d.sampling),
        }
    }
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

/// One generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GeneratorConfig {
    /// Query-conditioned hard negatives written by the LLM.
    LlmGenerate(LlmGenerateConfig),
    /// The positive rewritten by rules: numbers, names, negation (AXL-ICT, offline).
    Perturb(PerturbConfig),
    /// The positive rewritten by the LLM, one prompt per perturbation (AXL-ICT).
    LlmPerturb(LlmPerturbConfig),
}

impl GeneratorConfig {
    /// The `source` tag of what it writes.
    pub fn name(&self) -> &str {
        match self {
            GeneratorConfig::LlmGenerate(g) => &g.name,
            GeneratorConfig::Perturb(p) => &p.name,
            GeneratorConfig::LlmPerturb(p) => &p.name,
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
    /// An LLM scores hardness and says whether the candidate answers the query.
    LlmJudge(LlmJudgeConfig),
    /// An LLM scores each candidate with its nearest other negatives as context; the best
    /// fraction per query is kept.
    RagSelect(RagSelectConfig),
    /// A retriever keeps the hardest generated negatives (AXL-ICT).
    Adversarial(AdversarialRule),
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
            let name = m.name();
            if !names.insert(name.to_string()) {
                return Err(bad(format!(
                    "two miners are named `{name}`; give each a `name`"
                )));
            }
            let RankWindow { depth, from, to } = m.window();
            if from >= to || to > depth {
                return Err(bad(format!(
                    "miner `{name}`: window from={from} to={to} depth={depth} needs from < to <= depth"
                )));
            }
            if m.quota().0 == 0 {
                return Err(bad(format!("miner `{name}`: n must be at least 1")));
            }
        }
        for f in &self.filters {
            match f {
                FilterConfig::FalseNegative { margin, .. }
                    if !margin.is_finite() || *margin < 0.0 =>
                {
                    return Err(bad(format!(
                        "false_negative margin must be ≥ 0, got {margin}"
                    )));
                }
                FilterConfig::LlmJudge(j) if !(0.0..=100.0).contains(&j.min_hardness) => {
                    return Err(bad(format!(
                        "llm_judge min_hardness must be within 0-100, got {}",
                        j.min_hardness
                    )));
                }
                FilterConfig::Adversarial(a) => {
                    a.validate().map_err(|e| bad(format!("adversarial: {e}")))?;
                }
                FilterConfig::RagSelect(r)
                    if !(r.keep_fraction > 0.0 && r.keep_fraction <= 1.0) =>
                {
                    return Err(bad(format!(
                        "rag_select keep_fraction must be within (0, 1], got {}",
                        r.keep_fraction
                    )));
                }
                _ => {}
            }
        }
        for g in &self.generators {
            match g {
                GeneratorConfig::LlmGenerate(g)
                    if g.n == 0 || !(0.0..=1.0).contains(&g.max_overlap) =>
                {
                    return Err(bad(format!(
                        "generator `{}`: n must be ≥ 1 and max_overlap within 0-1",
                        g.name
                    )));
                }
                GeneratorConfig::LlmPerturb(p)
                    if p.kinds.is_empty() || !(0.0..=1.0).contains(&p.max_overlap) =>
                {
                    return Err(bad(format!(
                        "generator `{}`: needs at least one kind and max_overlap within 0-1",
                        p.name
                    )));
                }
                GeneratorConfig::Perturb(p) if p.kinds.is_empty() || p.per_kind == 0 => {
                    return Err(bad(format!(
                        "generator `{}`: needs at least one kind and per_kind ≥ 1",
                        p.name
                    )));
                }
                _ => {}
            }
            if self.miners.iter().any(|m| m.name() == g.name()) {
                return Err(bad(format!("generator `{}` has a miner's name", g.name())));
            }
        }
        if self.checkpoint_every == 0 {
            return Err(bad("checkpoint_every must be at least 1".into()));
        }
        Ok(())
    }

    /// Whether a stage asks the LLM (so `[llm]` is opened).
    pub fn uses_llm(&self) -> bool {
        self.negative_queries.llm
            || self
                .generators
                .iter()
                .any(|g| !matches!(g, GeneratorConfig::Perturb(_)))
            || self
                .filters
                .iter()
                .any(|f| matches!(f, FilterConfig::LlmJudge(_) | FilterConfig::RagSelect(_)))
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
    fn dense_miner_config_needs_its_stores_and_shares_the_window_checks() {
        let cfg: MineConfig = toml::from_str(
            "dataset='d'\noutput='o'\n[[miner]]\nkind='dense'\nqueries='q'\ncorpus='c'\nn=4\n",
        )
        .unwrap();
        cfg.validate(Path::new("c.toml")).unwrap();
        assert_eq!(cfg.miners[0].name(), "dense");
        assert_eq!(
            cfg.miners[0].window(),
            RankWindow {
                depth: 100,
                from: 0,
                to: 100
            }
        );
        assert_eq!(cfg.miners[0].quota().0, 4);
        let missing = toml::from_str::<MineConfig>(
            "dataset='d'\noutput='o'\n[[miner]]\nkind='dense'\nqueries='q'\n",
        );
        assert!(missing.unwrap_err().to_string().contains("corpus"));
        let cfg: MineConfig = toml::from_str(
            "dataset='d'\noutput='o'\n[[miner]]\nkind='dense'\nqueries='q'\ncorpus='c'\nfrom=10\nto=5\n",
        )
        .unwrap();
        let err = cfg.validate(Path::new("c.toml")).unwrap_err().to_string();
        assert!(err.contains("miner `dense`: window from=10 to=5"), "{err}");
    }

    #[test]
    fn defaults_fill_a_minimal_config() {
        let cfg: MineConfig = toml::from_str(
            "dataset = 'd'\noutput = 'o.jsonl'\n[[miner]]\nkind = 'bm25'\n[[filter]]\nkind = 'false_negative'\nmode = 'absolute'\nmargin = 0.5\n",
        )
        .unwrap();
        cfg.validate(Path::new("c.toml")).unwrap();
        assert_eq!(cfg.split, "train");
        let MinerConfig::Bm25(b) = &cfg.miners[0] else {
            panic!("a bm25 miner")
        };
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
