//! The records every stage exchanges: documents, queries, relevance judgements, runs and
//! training examples.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A passage of a corpus; `lang` lets every stage analyse, encode and report per language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// A search request; `lang` drives per-language evaluation and analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    #[serde(rename = "_id")]
    pub id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// Graded relevance judgements, `qid -> docid -> grade`, ordered so output is deterministic.
pub type Qrels = BTreeMap<String, BTreeMap<String, i32>>;

/// A retrieval result, `qid -> [(docid, score)]`; evaluation re-sorts it as trec_eval does.
pub type Run = BTreeMap<String, Vec<(String, f64)>>;

/// A passage inside a training example; `score` and `source` record which miner or generator
/// proposed a negative, and `query` carries a query whose positive it is (for CLPL).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainPassage {
    pub docid: String,
    #[serde(default)]
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// ISO language of the passage, when the corpus gave one, so training can choose which
    /// language's copy of a multilingual positive to draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Scores later mining stages gave a negative, by `stage.field` (an LLM judge's
    /// `llm_judge.hardness`, `rag_select.score`), kept for the report.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_scores: BTreeMap<String, f64>,
    /// How a generated negative was written from its positive (`numeric 1889→1893`), so the
    /// report and the adversarial filter can tell the perturbations apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturbation: Option<String>,
}

impl TrainPassage {
    /// The text a passage is read as: `title text`, as BEIR's dense models join them (the
    /// one place for it; the trainer and the encode command join the same way).
    pub fn full_text(&self) -> String {
        match self.title.is_empty() {
            true => self.text.clone(),
            false => format!("{} {}", self.title, self.text),
        }
    }
}

/// One query with its positives and negatives, in the Tevatron layout that training reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainExample {
    pub query_id: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    pub positive_passages: Vec<TrainPassage>,
    #[serde(default)]
    pub negative_passages: Vec<TrainPassage>,
}
