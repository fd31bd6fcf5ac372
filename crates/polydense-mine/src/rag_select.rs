//! RAG selection (LLM-enhanced hard negatives, Rajapakse et al., the last step): every
//! candidate negative is embedded with a given encoder into an inner-product index; for
//! each candidate, its nearest other negatives of the same query (top 3) are shown to the
//! LLM as context, the LLM scores the candidate against them, and the best half of each
//! query's candidates (the fraction is configurable) is kept.
//!
//! The index spans the batch it is given: since a candidate's context is drawn from its own
//! query's negatives only, what is kept does not depend on how the run was cut into
//! batches, and a resumed run keeps what an uninterrupted one kept.

use crate::embedder::Embedder;
use crate::error::Result;
use crate::llm_judge::positive_text;
use crate::llm_stage::{ask, clip};
use crate::progress::Progress;
use crate::stage::{DropLog, Filter, QueryCandidates};
use polydense_index::ExactSearch;
use polydense_llm::answer::{extract_json, lenient_score, number_field, score_after_key};
use polydense_llm::{Answer, LlmClient, Message};
use polydense_model::TextKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `[[filter]] kind = "rag_select"` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RagSelectConfig {
    /// The encoder of the index: an HF directory or an installed name.
    pub encoder: String,
    /// Nearest other negatives shown as context.
    pub context: usize,
    /// Share of each query's scored candidates kept, best first.
    pub keep_fraction: f32,
    /// Most tokens of an answer (the JSON is ~8).
    pub max_tokens: u32,
    /// Longest passage text shown to the LLM, in characters (context passages get half).
    pub max_chars: usize,
}

impl Default for RagSelectConfig {
    fn default() -> Self {
        RagSelectConfig {
            encoder: "e5-small".into(),
            context: 3,
            keep_fraction: 0.5,
            max_tokens: 24,
            max_chars: 1200,
        }
    }
}

/// A score 0-100 given with context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextScore(pub f64);

impl Answer for ContextScore {
    fn schema() -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 100}},
            "required": ["score"],
            "additionalProperties": false
        })
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        extract_json(text)
            .and_then(|v| number_field(&v, "score", 100.0))
            .or_else(|| score_after_key(text, "score", 100.0))
            .or_else(|| lenient_score(text, 100.0))
            .map(ContextScore)
            .ok_or_else(|| "no score 0-100".into())
    }
}

const SYSTEM: &str = "You select negative passages for training a search engine. Given a query, its answer passage (the positive), some other negatives found for the query, and a candidate negative, score 0 to 100 how good the candidate is as a hard negative compared with the others: high if it is close to the query's topic and could be mistaken for the answer without answering it, low if it is off topic or if it actually answers the query. Reply with JSON only: {\"score\": 0-100}.";

/// The RAG selection filter.
pub struct RagSelect {
    /// Context size and kept fraction.
    pub config: RagSelectConfig,
    /// The encoder of the index.
    pub embedder: Box<dyn Embedder>,
    /// The LLM behind its cache.
    pub client: Arc<LlmClient>,
}

impl RagSelect {
    /// The conversation that scores one candidate with its context.
    pub fn prompt(
        &self,
        query: &str,
        positive: &str,
        context: &[String],
        candidate: &str,
    ) -> Vec<Message> {
        let n = self.config.max_chars;
        let others: String = context
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{}. {}\n", i + 1, clip(t, n / 2)))
            .collect();
        vec![
            Message::system(SYSTEM),
            Message::user(format!(
                "Query: {query}\n\nPositive passage: {}\n\nOther negatives:\n{others}\nCandidate passage: {}\n\nJSON:",
                clip(positive, n),
                clip(candidate, n)
            )),
        ]
    }

    /// For each candidate of a query (rows of `vectors`), the rows of its `context`
    /// nearest other candidates by inner product, nearest first.
    fn neighbours(&self, vectors: &[Vec<f32>]) -> Result<Vec<Vec<usize>>> {
        let n = vectors.len();
        if n < 2 || self.config.context == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let dim = vectors[0].len();
        let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
        let hits =
            ExactSearch::new((self.config.context + 1).min(n)).search(&flat, &flat, dim, None)?;
        Ok(hits
            .into_iter()
            .enumerate()
            .map(|(row, h)| {
                h.into_iter()
                    .map(|hit| hit.row)
                    .filter(|&r| r != row)
                    .take(self.config.context)
                    .collect()
            })
            .collect())
    }
}

impl Filter for RagSelect {
    fn name(&self) -> &str {
        "rag_select"
    }

    fn apply(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<()> {
        let texts: Vec<Vec<String>> = batch.iter().map(QueryCandidates::texts).collect();
        // One encoder pass over every candidate of the batch.
        let flat: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
        let mut vectors = if flat.is_empty() {
            Vec::new()
        } else {
            self.embedder.embed(&flat, TextKind::Passage)?
        }
        .into_iter();
        let mut prompts = Vec::new();
        for (q, texts) in batch.iter().zip(&texts) {
            let vecs: Vec<Vec<f32>> = vectors.by_ref().take(texts.len()).collect();
            let positive = positive_text(q);
            for (i, near) in self.neighbours(&vecs)?.into_iter().enumerate() {
                let context: Vec<String> = near.into_iter().map(|r| texts[r].clone()).collect();
                prompts.push(self.prompt(&q.ctx.query.query.text, &positive, &context, &texts[i]));
            }
        }
        let mut answers = ask::<ContextScore>(
            &self.client,
            self.name(),
            prompts,
            self.config.max_tokens,
            log,
            progress,
        )?
        .into_iter();
        for q in batch.iter_mut() {
            let scores: Vec<Option<f64>> = answers
                .by_ref()
                .take(q.candidates.len())
                .map(|a| a.map(|s| s.0))
                .collect();
            let mut scored: Vec<(usize, f64)> = scores
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s)))
                .collect();
            // Best first; equal scores keep the miners' order.
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let keep_n = (scored.len() as f32 * self.config.keep_fraction).ceil() as usize;
            let mut keep = vec![false; scores.len()];
            for &(i, _) in scored.iter().take(keep_n) {
                keep[i] = true;
            }
            let cands = std::mem::take(&mut q.candidates);
            for (i, mut c) in cands.into_iter().enumerate() {
                match scores[i] {
                    // Unscored candidates (no readable answer) are kept unranked.
                    None => q.candidates.push(c),
                    Some(s) if keep[i] => {
                        c.stage_scores.insert("rag_select.score".into(), s as f32);
                        q.candidates.push(c);
                    }
                    Some(_) => log.drop(self.name(), "below the kept fraction"),
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
    fn scores_are_read_leniently() {
        assert_eq!(ContextScore::parse("{\"score\": 64}").unwrap().0, 64.0);
        assert_eq!(ContextScore::parse("Score: 7/10").unwrap().0, 70.0);
        assert!(ContextScore::parse("good one").is_err());
        assert!(ContextScore::parse("{\"score\": 0-100}").is_err());
    }
}
