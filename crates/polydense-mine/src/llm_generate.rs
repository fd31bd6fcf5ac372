//! The LLM generator (LLM-enhanced hard negatives, Rajapakse et al.): per example, an LLM
//! writes passages in the query's language that are about the positive's topic and share
//! its keywords but do not answer the query. The source system's public code keeps them
//! unchecked; here a passage that mostly copies the positive is rejected (token overlap cap,
//! 60% as in the AXL-ICT code), and the rest go through every filter, the judge included.

use crate::dedup::normalise;
use crate::error::Result;
use crate::llm_judge::positive_text;
use crate::llm_stage::{ask, clip, language_name};
use crate::progress::Progress;
use crate::stage::{Candidate, DropLog, Generator, QueryCandidates};
use polydense_data::TrainPassage;
use polydense_llm::answer::extract_json;
use polydense_llm::{Answer, LlmClient, Message};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The `[[generator]] kind = "llm_generate"` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmGenerateConfig {
    /// Source tag of the generated negatives.
    pub name: String,
    /// Passages asked for per example.
    pub n: usize,
    /// Reject a passage when more than this share of its distinct words are the positive's.
    pub max_overlap: f32,
    /// Reject a passage shorter than this many words.
    pub min_words: usize,
    /// Most tokens of an answer (three passages).
    pub max_tokens: u32,
    /// Longest positive text shown to the LLM, in characters.
    pub max_chars: usize,
}

impl Default for LlmGenerateConfig {
    fn default() -> Self {
        LlmGenerateConfig {
            name: "llm_generate".into(),
            n: 3,
            max_overlap: 0.6,
            min_words: 5,
            max_tokens: 512,
            max_chars: 1200,
        }
    }
}

/// The passages of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Passages(pub Vec<String>);

impl Answer for Passages {
    fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {"passages": {"type": "array", "items": {"type": "string"}}},
            "required": ["passages"],
            "additionalProperties": false
        })
    }

    /// `{"passages": [...]}`, a bare array, or numbered lines ("1. …").
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let strings = |v: &Value| -> Option<Vec<String>> {
            let a = v.get("passages").unwrap_or(v).as_array()?;
            Some(
                a.iter()
                    .filter_map(|x| x.as_str().or_else(|| x.get("text")?.as_str()))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        };
        let from_json = extract_json(text).as_ref().and_then(strings);
        let found = from_json.unwrap_or_else(|| {
            text.lines()
                .map(str::trim)
                .filter_map(|l| {
                    let rest = l.trim_start_matches(|c: char| c.is_ascii_digit());
                    (rest.len() < l.len())
                        .then(|| rest.trim_start_matches(['.', ')', ':']).trim())
                        .filter(|r| !r.is_empty())
                        .map(str::to_string)
                })
                .collect()
        });
        if found.is_empty() {
            Err("no passages".into())
        } else {
            Ok(Passages(found))
        }
    }
}

/// Share of the distinct words of `text` that also occur in `reference`.
pub fn overlap(text: &str, reference: &str) -> f32 {
    let words: HashSet<String> = normalise(text).split(' ').map(str::to_string).collect();
    let reference: HashSet<String> = normalise(reference)
        .split(' ')
        .map(str::to_string)
        .collect();
    let words: HashSet<&String> = words.iter().filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return 1.0;
    }
    words.iter().filter(|w| reference.contains(**w)).count() as f32 / words.len() as f32
}

/// The generator.
pub struct LlmGenerate {
    /// Counts and caps.
    pub config: LlmGenerateConfig,
    /// The LLM behind its cache.
    pub client: Arc<LlmClient>,
}

impl LlmGenerate {
    /// The conversation that asks for one example's passages.
    pub fn prompt(&self, query: &str, positive: &str, lang: Option<&str>) -> Vec<Message> {
        let n = self.config.n;
        let language = language_name(lang);
        vec![
            Message::system(format!(
                "You write hard negative passages for training a search engine: passages a reader could mistake for the answer to a query. Each is about the same topic as the given positive passage and uses similar keywords, but does not answer the query: it states different facts, or facts about a related entity. Do not copy sentences of the positive. Write in {language}. Reply with JSON only: {{\"passages\": [{n} strings]}}."
            )),
            Message::user(format!(
                "Query: {query}\n\nPositive passage: {}\n\nWrite {n} passages of about the positive's length. JSON:",
                clip(positive, self.config.max_chars)
            )),
        ]
    }
}

impl Generator for LlmGenerate {
    fn source(&self) -> &str {
        &self.config.name
    }

    fn generate(
        &self,
        batch: &[QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Candidate>>> {
        let prompts = batch
            .iter()
            .map(|q| {
                let query = &q.ctx.query.query;
                self.prompt(&query.text, &positive_text(q), query.lang.as_deref())
            })
            .collect();
        let answers = ask::<Passages>(
            &self.client,
            &self.config.name,
            prompts,
            self.config.max_tokens,
            log,
            progress,
        )?;
        let mut out = Vec::with_capacity(batch.len());
        for (q, answer) in batch.iter().zip(answers) {
            let positive = positive_text(q);
            let mut new = Vec::new();
            for text in answer
                .map(|p| p.0)
                .unwrap_or_default()
                .into_iter()
                .take(self.config.n)
            {
                if text.split_whitespace().count() < self.config.min_words {
                    log.drop(&self.config.name, "too short");
                    continue;
                }
                if overlap(&text, &positive) > self.config.max_overlap {
                    log.drop(
                        &self.config.name,
                        "copies the positive (word overlap above the cap)",
                    );
                    continue;
                }
                let rank = new.len();
                let docid = format!("{}:{}:{rank}", q.ctx.query.query.id, self.config.name);
                let passage = TrainPassage {
                    docid,
                    text,
                    ..TrainPassage::default()
                };
                new.push(Candidate::generated(&self.config.name, rank, passage));
            }
            out.push(new);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_are_read_from_json_arrays_or_numbered_lines() {
        let p = Passages::parse(r#"{"passages": ["a b", "c d", "e f"]}"#).unwrap();
        assert_eq!(p.0, vec!["a b", "c d", "e f"]);
        let p = Passages::parse("```json\n[\"x y\", {\"text\": \"z w\"}]\n```").unwrap();
        assert_eq!(p.0, vec!["x y", "z w"]);
        let p = Passages::parse("Here:\n1. First one.\n2) Second one.\n3: Third.").unwrap();
        assert_eq!(p.0, vec!["First one.", "Second one.", "Third."]);
        assert!(Passages::parse("I cannot help with that.").is_err());
        assert!(Passages::parse(r#"{"passages": []}"#).is_err());
    }

    #[test]
    fn overlap_is_the_share_of_words_taken_from_the_positive() {
        let pos = "The Eiffel Tower is in Paris and was built in 1889.";
        assert_eq!(overlap(pos, pos), 1.0);
        assert!(overlap("The Eiffel tower, in Paris, was built in 1889!", pos) > 0.99);
        let related = "The Statue of Liberty was dedicated in New York in 1886.";
        assert!(overlap(related, pos) < 0.6, "{}", overlap(related, pos));
    }
}
