//! The LLM perturbation generator (AXL-ICT): an instruct LLM rewrites the positive, in the
//! query's language, by one perturbation per prompt — entity substitution, numerical
//! perturbation, logical negation — instead of the public code's one generic prompt. An
//! output is rejected (and counted) when it copies the positive, still holds the answer
//! sentence unchanged (the BEIR files keep no answer span, so the sentence that best matches
//! the query stands in for it), or shares more of its words with the positive than the cap.

use crate::dedup::normalise;
use crate::error::Result;
use crate::llm_generate::overlap;
use crate::llm_stage::{ask, clip, language_name};
use crate::perturb::sentence::answer_sentence;
use crate::perturb::{positive_in_language, PerturbKind};
use crate::progress::Progress;
use crate::stage::{Candidate, DropLog, Generator, QueryCandidates};
use polydense_data::TrainPassage;
use polydense_lexical::analysis::{primary_language, Analyzers};
use polydense_lexical::AnalysisOptions;
use polydense_llm::answer::extract_json;
use polydense_llm::{Answer, LlmClient, Message};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The `[[generator]] kind = "llm_perturb"` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmPerturbConfig {
    /// Source tag of the generated negatives.
    pub name: String,
    /// One prompt per kind and example.
    pub kinds: Vec<PerturbKind>,
    /// Reject a rewrite sharing more than this share of its distinct words with the
    /// positive (a faithful rewrite that changes one fact shares most of them).
    pub max_overlap: f32,
    /// Most tokens of an answer.
    pub max_tokens: u32,
    /// Longest positive text shown to the LLM, in characters.
    pub max_chars: usize,
    /// Only examples whose query is in one of these languages (the LLM must write it);
    /// empty means all.
    pub langs: Vec<String>,
}

impl Default for LlmPerturbConfig {
    fn default() -> Self {
        LlmPerturbConfig {
            name: "llm_perturb".into(),
            kinds: PerturbKind::ALL.to_vec(),
            max_overlap: 0.9,
            max_tokens: 384,
            max_chars: 1200,
            langs: Vec::new(),
        }
    }
}

/// A rewritten passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite(pub String);

impl Answer for Rewrite {
    fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {"passage": {"type": "string"}},
            "required": ["passage"],
            "additionalProperties": false
        })
    }

    /// `{"passage": "…"}`, or the answer's text itself when it does not try to be JSON (a
    /// broken JSON fragment is unreadable, not a passage).
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let t = text.trim();
        let looks_json = t.starts_with(['{', '[', '`']) || t.contains("\"passage\"");
        let found = match extract_json(text) {
            Some(v) => v
                .get("passage")
                .or_else(|| v.get("text"))
                .and_then(Value::as_str)
                .map(str::to_string),
            None if looks_json => None,
            None => Some(t.to_string()),
        };
        found
            .filter(|t| t.split_whitespace().count() >= 3 || t.chars().count() >= 12)
            .map(Rewrite)
            .ok_or_else(|| "no passage".into())
    }
}

/// What each kind asks for.
fn instruction(kind: PerturbKind) -> &'static str {
    match kind {
        PerturbKind::Entity => "Replace the named entity (a person, place, organisation or work) that answers the query with a different, plausible one of the same type, everywhere it appears.",
        PerturbKind::Numeric => "Change the numbers, years, dates or quantities that answer the query to different, plausible values.",
        PerturbKind::Negation => "Negate the statement that answers the query, so that it claims the opposite.",
    }
}

/// The generator.
pub struct LlmPerturb {
    /// Kinds and caps.
    pub config: LlmPerturbConfig,
    /// The LLM behind its cache.
    pub client: Arc<LlmClient>,
}

impl LlmPerturb {
    /// The conversation that asks for one rewrite.
    pub fn prompt(
        &self,
        kind: PerturbKind,
        query: &str,
        positive: &str,
        lang: Option<&str>,
    ) -> Vec<Message> {
        let language = language_name(lang);
        vec![
            Message::system(format!(
                "You write adversarial negative passages for training a search engine. Rewrite the given passage with one small change so that it no longer answers the query, and keep everything else as it is. {} Write in {language}. Reply with JSON only: {{\"passage\": \"the rewritten passage\"}}.",
                instruction(kind)
            )),
            Message::user(format!(
                "Query: {query}\n\nPassage: {}\n\nJSON:",
                clip(positive, self.config.max_chars)
            )),
        ]
    }
}

impl Generator for LlmPerturb {
    fn source(&self) -> &str {
        &self.config.name
    }

    fn generate(
        &self,
        batch: &[QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Candidate>>> {
        let mut prompts = Vec::new();
        let mut asked: Vec<(usize, PerturbKind)> = Vec::new();
        for (qi, q) in batch.iter().enumerate() {
            let query = &q.ctx.query.query;
            let lang = query.lang.as_deref().map(primary_language);
            if !self.config.langs.is_empty()
                && !lang.as_ref().is_some_and(|l| self.config.langs.contains(l))
            {
                continue;
            }
            let Some(pos) = positive_in_language(q.ctx.positives, query.lang.as_deref()) else {
                continue;
            };
            for &kind in &self.config.kinds {
                prompts.push(self.prompt(kind, &query.text, &pos.text, lang.as_deref()));
                asked.push((qi, kind));
            }
        }
        let answers = ask::<Rewrite>(
            &self.client,
            &self.config.name,
            prompts,
            self.config.max_tokens,
            log,
            progress,
        )?;
        let mut analyzers = Analyzers::new(AnalysisOptions {
            stem: true,
            stopwords: true,
        });
        let mut out = vec![Vec::new(); batch.len()];
        for ((qi, kind), answer) in asked.into_iter().zip(answers) {
            let Some(Rewrite(text)) = answer else {
                continue;
            };
            let q = &batch[qi];
            let query = &q.ctx.query.query;
            let pos = positive_in_language(q.ctx.positives, query.lang.as_deref())
                .expect("asked only with a positive");
            let lang = query.lang.as_deref().map(primary_language);
            let reject = |log: &mut DropLog, why: &str| log.drop(&self.config.name, why);
            if normalise(&text) == normalise(&pos.text) {
                reject(log, "copies the positive");
                continue;
            }
            let answer = answer_sentence(&mut analyzers, &pos.text, &query.text, lang.as_deref())
                .map(|r| pos.text[r].to_string())
                .filter(|s| !s.is_empty());
            if answer.is_some_and(|a| normalise(&text).contains(&normalise(&a))) {
                reject(log, "keeps the answer sentence unchanged");
                continue;
            }
            if overlap(&text, &pos.text) > self.config.max_overlap {
                reject(log, "copies the positive (word overlap above the cap)");
                continue;
            }
            let rank = out[qi].len();
            let passage = TrainPassage {
                docid: format!("{}:{}:{}", query.id, self.config.name, kind.as_str()),
                title: pos.title.clone(),
                text,
                lang: pos.lang.clone(),
                perturbation: Some(format!("{} (llm)", kind.as_str())),
                ..TrainPassage::default()
            };
            out[qi].push(Candidate::generated(&self.config.name, rank, passage));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_are_read_from_json_or_plain_text() {
        let r = Rewrite::parse(r#"{"passage": "The tower was built in 1901 by Eiffel."}"#).unwrap();
        assert_eq!(r.0, "The tower was built in 1901 by Eiffel.");
        let r =
            Rewrite::parse("```json\n{\"text\": \"Der Turm wurde 1901 gebaut.\"}\n```").unwrap();
        assert_eq!(r.0, "Der Turm wurde 1901 gebaut.");
        assert_eq!(
            Rewrite::parse("The tower is short.").unwrap().0,
            "The tower is short."
        );
        assert!(Rewrite::parse(r#"{"passage": ""}"#).is_err());
        // A broken fragment is not taken as the passage.
        assert!(Rewrite::parse(r#"{ "passage": "}  This is a great example of JSON"#).is_err());
    }
}
