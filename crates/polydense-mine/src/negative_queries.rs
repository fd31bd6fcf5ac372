//! Each negative's own query (CLPL's `neg_q`, arXiv 2412.17364), taken from the qrels: when a
//! mined negative is another query's positive (in XQuAD-R a paragraph answers several
//! questions, in 11 languages), that query is written on the negative (`query`), so CLPL can
//! pull the negative towards the question it does answer. A negative that answers no query
//! of the split can get one written by an LLM (doc2query in the passage's language,
//! `[negative_queries] llm = true`), asked once per passage, through the cached client.

use std::collections::{BTreeMap, HashMap};

use polydense_data::TrainExample;
use polydense_llm::answer::extract_json;
use polydense_llm::{Answer, LlmClient, Message};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{MineError, Result};
use crate::llm_stage::{ask, clip, language_name};
use crate::progress::Progress;
use crate::stage::{DropLog, MineQuery};

/// How many negatives got a query, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NegativeQueryCounts {
    /// Negatives that are another query's positive, with that query written on them.
    pub from_qrels: u64,
    /// Negatives whose query an LLM wrote (none of the split's queries had them).
    #[serde(default)]
    pub from_llm: u64,
    /// Negatives left without a query.
    pub without: u64,
}

/// The `[negative_queries]` table of a mining config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegativeQueriesConfig {
    /// Ask the LLM (`[llm]`) to write a query for each negative the qrels leave without one.
    pub llm: bool,
    /// Most tokens of an answer (one question).
    pub max_tokens: u32,
    /// Longest passage text shown to the LLM, in characters.
    pub max_chars: usize,
    /// Passages per request batch; the cache is saved after each, so a stopped run resumes.
    pub batch: usize,
}

impl Default for NegativeQueriesConfig {
    fn default() -> Self {
        NegativeQueriesConfig {
            llm: false,
            max_tokens: 96,
            max_chars: 1200,
            batch: 64,
        }
    }
}

/// One question, from `{"question": ...}` or a line of prose ending in a question mark.
#[derive(Debug, Clone, PartialEq)]
pub struct Question(pub String);

impl Answer for Question {
    fn schema() -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
            "additionalProperties": false
        })
    }

    fn parse(text: &str) -> std::result::Result<Self, String> {
        let from_json = extract_json(text).and_then(|v| {
            v.get("question")?
                .as_str()
                .map(str::trim)
                .map(str::to_string)
        });
        let found = from_json.or_else(|| {
            text.lines()
                .map(str::trim)
                .find(|l| l.ends_with(['?', '？', '؟']) && l.split_whitespace().count() <= 40)
                .map(str::to_string)
        });
        match found {
            Some(q) if !q.is_empty() => Ok(Question(q)),
            _ => Err("no question".into()),
        }
    }
}

/// The conversation asking for a question that `passage` answers, in `lang`.
pub fn doc2query_prompt(passage: &str, lang: Option<&str>, max_chars: usize) -> Vec<Message> {
    let language = language_name(lang);
    vec![
        Message::system(format!(
            "You write search queries. Given a passage, write one question in {language} that the passage answers, as a user would type it. Reply with JSON only: {{\"question\": string}}."
        )),
        Message::user(format!("Passage: {}\n\nJSON:", clip(passage, max_chars))),
    ]
}

/// Writes an LLM's question on every negative of `examples` still without a query, asking
/// once per distinct passage (in its language, from `langs`) in batches of `config.batch`,
/// saving the client's cache after each batch. Returns how many negatives got one; an
/// unreadable answer leaves the negative without (counted in `log`).
pub fn attach_from_llm(
    examples: &mut [TrainExample],
    client: &LlmClient,
    config: &NegativeQueriesConfig,
    langs: &HashMap<&str, &str>,
    log: &mut DropLog,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for ex in examples.iter() {
        for neg in ex.negative_passages.iter().filter(|n| n.query.is_none()) {
            texts
                .entry(neg.docid.clone())
                .or_insert_with(|| neg.full_text());
        }
    }
    let ids: Vec<&String> = texts.keys().collect();
    let mut written: HashMap<&str, String> = HashMap::new();
    progress.start("negative queries (LLM)", ids.len() as u64);
    for chunk in ids.chunks(config.batch.max(1)) {
        let prompts = chunk
            .iter()
            .map(|id| {
                let lang = langs.get(id.as_str()).copied();
                doc2query_prompt(&texts[*id], lang, config.max_chars)
            })
            .collect();
        let answers = ask::<Question>(
            client,
            "negative_queries",
            prompts,
            config.max_tokens,
            log,
            progress,
        )?;
        for (id, a) in chunk.iter().zip(answers) {
            if let Some(Question(q)) = a {
                written.insert(id.as_str(), q);
            }
        }
        client.sync().map_err(|e| MineError::Stage {
            stage: "negative_queries".into(),
            message: e.to_string(),
        })?;
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    let mut n = 0;
    for ex in examples.iter_mut() {
        for neg in ex
            .negative_passages
            .iter_mut()
            .filter(|n| n.query.is_none())
        {
            if let Some(q) = written.get(neg.docid.as_str()) {
                neg.query = Some(q.clone());
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Writes on every negative of `examples` that has none the text of a query for which it is
/// a positive, chosen among `queries` deterministically: a query in the negative's language
/// when there is one (`langs`, by document id), else the first by query id. A query's own
/// example is never the source (its positives are not its negatives).
pub fn attach_from_qrels(
    examples: &mut [TrainExample],
    queries: &[MineQuery],
    langs: &HashMap<&str, &str>,
) -> NegativeQueryCounts {
    let mut askers: HashMap<&str, Vec<&MineQuery>> = HashMap::new();
    for q in queries {
        for d in &q.positives {
            askers.entry(d.as_str()).or_default().push(q);
        }
    }
    for list in askers.values_mut() {
        list.sort_by(|a, b| a.query.id.cmp(&b.query.id));
    }
    let mut counts = NegativeQueryCounts::default();
    for ex in examples.iter_mut() {
        for neg in ex.negative_passages.iter_mut() {
            if neg.query.is_some() {
                continue;
            }
            let found = askers.get(neg.docid.as_str()).and_then(|list| {
                let others = list.iter().filter(|q| q.query.id != ex.query_id);
                let lang = langs.get(neg.docid.as_str()).copied();
                others
                    .clone()
                    .find(|q| lang.is_some() && q.query.lang.as_deref() == lang)
                    .or_else(|| others.clone().next())
            });
            match found {
                Some(q) => {
                    neg.query = Some(q.query.text.clone());
                    counts.from_qrels += 1;
                }
                None => counts.without += 1,
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_data::{Query, TrainPassage};

    fn q(id: &str, lang: &str, positives: &[&str]) -> MineQuery {
        MineQuery {
            query: Query {
                id: id.into(),
                text: format!("text of {id}"),
                lang: Some(lang.into()),
            },
            positives: positives.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn questions_are_read_from_json_or_a_line_ending_in_a_question_mark() {
        assert_eq!(
            Question::parse(r#"{"question": " Wann wurde es gebaut? "}"#)
                .unwrap()
                .0,
            "Wann wurde es gebaut?"
        );
        assert_eq!(
            Question::parse("Sure!\nWhen was the tower built?\n")
                .unwrap()
                .0,
            "When was the tower built?"
        );
        assert!(Question::parse("I cannot help with that.").is_err());
        let p = doc2query_prompt("Der Turm steht in Paris.", Some("de"), 100);
        assert!(p[0].content.contains("in German"));
    }

    #[test]
    fn a_negative_gets_a_query_of_its_language_from_the_qrels() {
        // Paragraph p1 in German answers q1 (en) and q2 (de); p9 answers nothing.
        let queries = [
            q("q0", "en", &["p0"]),
            q("q1", "en", &["p1"]),
            q("q2", "de", &["p1"]),
        ];
        let neg = |id: &str| TrainPassage {
            docid: id.into(),
            ..TrainPassage::default()
        };
        let mut examples = vec![TrainExample {
            query_id: "q0".into(),
            negative_passages: vec![neg("p1"), neg("p9")],
            ..TrainExample::default()
        }];
        let langs = HashMap::from([("p1", "de"), ("p9", "en")]);
        let counts = attach_from_qrels(&mut examples, &queries, &langs);
        assert_eq!(
            counts,
            NegativeQueryCounts {
                from_qrels: 1,
                from_llm: 0,
                without: 1
            }
        );
        assert_eq!(
            examples[0].negative_passages[0].query.as_deref(),
            Some("text of q2")
        );
        assert_eq!(examples[0].negative_passages[1].query, None);
        // Without a language match, the first query by id.
        let mut again = vec![TrainExample {
            query_id: "q0".into(),
            negative_passages: vec![neg("p1")],
            ..TrainExample::default()
        }];
        attach_from_qrels(&mut again, &queries, &HashMap::new());
        assert_eq!(
            again[0].negative_passages[0].query.as_deref(),
            Some("text of q1")
        );
    }
}
