//! The LLM judge (LLM-enhanced hard negatives, Rajapakse et al.): for each candidate, given
//! the query, the positive and the candidate, an LLM gives a hardness score 0-100 (HARD
//! 70-100: on topic but factually different; EASY 0-30: unrelated) and, separately, whether
//! the candidate answers the query. One that answers is an unlabelled positive and is
//! dropped as a false negative; one below the threshold is dropped as easy. The source
//! system's public code only thresholds the same score (`score > 50`) and calls that false-
//! negative detection; here the verdict is its own question.

use crate::error::Result;
use crate::llm_stage::{ask, clip};
use crate::progress::Progress;
use crate::stage::{DropLog, Filter, QueryCandidates};
use polydense_llm::answer::{
    bool_after_key, bool_field, extract_json, number_field, score_after_key,
};
use polydense_llm::{Answer, LlmClient, Message};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What to do with a candidate the LLM gave no readable judgement for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unjudged {
    /// Keep it as its miner proposed it: the run is then never worse than without the judge.
    #[default]
    Keep,
    /// Drop it: only judged negatives are trained on.
    Drop,
}

/// The `[[filter]] kind = "llm_judge"` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmJudgeConfig {
    /// Drop candidates scored below this hardness (the method's EASY band ends at 30).
    pub min_hardness: f32,
    /// Drop candidates the LLM says answer the query.
    pub drop_false_negatives: bool,
    /// What to do when no judgement could be read.
    pub unjudged: Unjudged,
    /// Most tokens of an answer (the JSON is ~15).
    pub max_tokens: u32,
    /// Longest passage text shown to the LLM, in characters.
    pub max_chars: usize,
}

impl Default for LlmJudgeConfig {
    fn default() -> Self {
        LlmJudgeConfig {
            min_hardness: 30.0,
            drop_false_negatives: true,
            unjudged: Unjudged::Keep,
            max_tokens: 48,
            max_chars: 1200,
        }
    }
}

/// One judgement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// Whether the candidate answers the query (then it is a false negative).
    pub answers_query: bool,
    /// How hard a negative it is, 0-100.
    pub hardness: f64,
}

impl Answer for Judgement {
    fn schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                "answers_query": {"type": "boolean"},
                "hardness": {"type": "integer", "minimum": 0, "maximum": 100}
            },
            "required": ["answers_query", "hardness"],
            "additionalProperties": false
        })
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        let json = extract_json(text);
        let answers = json
            .as_ref()
            .and_then(|v| bool_field(v, "answers_query"))
            .or_else(|| bool_after_key(text, "answers_query"));
        let hardness = json
            .as_ref()
            .and_then(|v| number_field(v, "hardness", 100.0))
            .or_else(|| score_after_key(text, "hardness", 100.0));
        match (answers, hardness) {
            (Some(answers_query), Some(hardness)) => Ok(Judgement {
                answers_query,
                hardness,
            }),
            (None, _) => Err("no `answers_query` yes/no".into()),
            (_, None) => Err("no `hardness` 0-100".into()),
        }
    }
}

const SYSTEM: &str = "You rate negative passages for training a search engine. A query, a passage that answers it (the positive) and a candidate passage are given. Decide two things separately. answers_query: true if the candidate itself answers the query, even partly or in other words; false otherwise. hardness, 0 to 100: how easily the candidate could be mistaken for the answer. 70-100: same topic and similar words, but the facts differ. 31-69: related topic. 0-30: unrelated. Reply with JSON only: {\"answers_query\": true or false, \"hardness\": 0-100}.";

/// The judge filter.
pub struct LlmJudge {
    /// Thresholds and policies.
    pub config: LlmJudgeConfig,
    /// The LLM behind its cache.
    pub client: Arc<LlmClient>,
}

impl LlmJudge {
    /// The conversation that asks about one candidate; the query and positive come first so
    /// that the prompts of one query share their beginning.
    pub fn prompt(&self, query: &str, positive: &str, candidate: &str) -> Vec<Message> {
        let n = self.config.max_chars;
        vec![
            Message::system(SYSTEM),
            Message::user(format!(
                "Query: {query}\n\nPositive passage: {}\n\nCandidate passage: {}\n\nJSON:",
                clip(positive, n),
                clip(candidate, n)
            )),
        ]
    }
}

/// The positive shown to the LLM: the first one (queries of our datasets have one).
pub fn positive_text(q: &QueryCandidates<'_>) -> String {
    q.ctx
        .positives
        .first()
        .map(|p| p.full_text())
        .unwrap_or_default()
}

impl Filter for LlmJudge {
    fn name(&self) -> &str {
        "llm_judge"
    }

    fn apply(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut prompts = Vec::new();
        for q in batch.iter() {
            let positive = positive_text(q);
            for text in q.texts() {
                prompts.push(self.prompt(&q.ctx.query.query.text, &positive, &text));
            }
        }
        let mut answers = ask::<Judgement>(
            &self.client,
            self.name(),
            prompts,
            self.config.max_tokens,
            log,
            progress,
        )?
        .into_iter();
        for q in batch.iter_mut() {
            let cands = std::mem::take(&mut q.candidates);
            for mut c in cands {
                match answers.next().flatten() {
                    None if self.config.unjudged == Unjudged::Drop => {
                        log.drop(self.name(), "no readable judgement");
                    }
                    None => q.candidates.push(c),
                    Some(j) if j.answers_query && self.config.drop_false_negatives => {
                        log.drop(self.name(), "answers the query (false negative)");
                    }
                    Some(j) if (j.hardness as f32) < self.config.min_hardness => {
                        log.drop(self.name(), "easy (hardness below the threshold)");
                    }
                    Some(j) => {
                        c.stage_scores
                            .insert("llm_judge.hardness".into(), j.hardness as f32);
                        c.stage_scores.insert(
                            "llm_judge.answers_query".into(),
                            if j.answers_query { 1.0 } else { 0.0 },
                        );
                        q.candidates.push(c);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgements_are_read_from_json_or_near_json_and_never_guessed() {
        let j = Judgement::parse(r#"{"answers_query": false, "hardness": 85}"#).unwrap();
        assert_eq!((j.answers_query, j.hardness), (false, 85.0));
        let j = Judgement::parse(
            "```json\n{\"hardness\": \"70/100\", \"answers_query\": \"yes\"}\n```",
        )
        .unwrap();
        assert_eq!((j.answers_query, j.hardness), (true, 70.0));
        let j = Judgement::parse("answers_query: no\nhardness: 40").unwrap();
        assert_eq!((j.answers_query, j.hardness), (false, 40.0));
        assert!(
            Judgement::parse("85").is_err(),
            "a score without a verdict is not a judgement"
        );
        assert!(Judgement::parse("The passage is about dogs.").is_err());
        assert!(Judgement::parse(r#"{"answers_query": false, "hardness": 140}"#).is_err());
        // SmolLM2 often echoes the instructions: that is no judgement.
        assert!(
            Judgement::parse(r#"{"answers_query": true or false, "hardness": 0-100}"#).is_err()
        );
    }
}
