//! Each negative's own query (CLPL's `neg_q`, arXiv 2412.17364), taken from the qrels: when a
//! mined negative is another query's positive (in XQuAD-R a paragraph answers several
//! questions, in 11 languages), that query is written on the negative (`query`), so CLPL can
//! pull the negative towards the question it does answer.

use std::collections::HashMap;

use polydense_data::TrainExample;
use serde::{Deserialize, Serialize};

use crate::stage::MineQuery;

/// How many negatives got a query, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NegativeQueryCounts {
    /// Negatives that are another query's positive, with that query written on them.
    pub from_qrels: u64,
    /// Negatives no query of the split has as a positive (an LLM can write one).
    pub without: u64,
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
