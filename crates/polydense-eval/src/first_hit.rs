//! What each judged query's first-ranked document is: relevant or not, in the query's
//! language or another, and, when wrong, from the same group (an article, a site) as one of
//! the query's relevant documents or not. Mean metrics hide a model that trades its top hit
//! for recall, or that ranks another language's wrong paragraph first; this count shows it.

use std::collections::BTreeMap;

use polydense_data::{Qrels, Run};
use serde::{Deserialize, Serialize};

use crate::evaluate::{precedes, sort_key, RELEVANCE_LEVEL};

/// The first hits of a set of queries, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstHitCounts {
    /// Judged queries counted.
    pub queries: usize,
    /// First hit relevant and in the query's language.
    pub relevant_same_lang: usize,
    /// First hit relevant, in another language.
    pub relevant_other_lang: usize,
    /// First hit not relevant, in the query's language.
    pub wrong_same_lang: usize,
    /// First hit not relevant, in another language.
    pub wrong_other_lang: usize,
    /// Of the wrong first hits, those in the group of one of the query's relevant documents
    /// (counted only when groups are known).
    pub wrong_same_group: usize,
    /// Of the wrong first hits, those in no relevant document's group.
    pub wrong_other_group: usize,
    /// Queries the run retrieved nothing for.
    pub empty: usize,
}

impl FirstHitCounts {
    /// First hits that are not relevant (empty rankings not included).
    pub fn wrong(&self) -> usize {
        self.wrong_same_lang + self.wrong_other_lang
    }
}

/// First-hit counts overall and per query language.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirstHits {
    /// All judged queries of the run.
    pub overall: FirstHitCounts,
    /// By query language ("und" for queries without one).
    pub per_lang: BTreeMap<String, FirstHitCounts>,
}

/// Counts the first hit of every query that `qrels` judges, with trec_eval's ranking (score
/// as f32 descending, ties by docid descending). A document or query without a language is
/// "und"; `doc_group` names a document's group, or None when unknown.
pub fn first_hits(
    qrels: &Qrels,
    run: &Run,
    query_lang: impl Fn(&str) -> Option<String>,
    doc_lang: impl Fn(&str) -> Option<String>,
    doc_group: impl Fn(&str) -> Option<String>,
) -> FirstHits {
    let und = || "und".to_string();
    let mut out = FirstHits::default();
    for (qid, judged) in qrels {
        let Some(docs) = run.get(qid) else { continue };
        let qlang = query_lang(qid).unwrap_or_else(und);
        let mut counts = FirstHitCounts {
            queries: 1,
            ..Default::default()
        };
        let first = docs
            .iter()
            .map(|(d, s)| (sort_key(*s), d.as_str()))
            .reduce(|a, b| if precedes(b.0, b.1, a.0, a.1) { b } else { a });
        match first {
            None => counts.empty = 1,
            Some((_, doc)) => {
                let same_lang = doc_lang(doc).unwrap_or_else(und) == qlang;
                let relevant = judged.get(doc).is_some_and(|&g| g >= RELEVANCE_LEVEL);
                match (relevant, same_lang) {
                    (true, true) => counts.relevant_same_lang = 1,
                    (true, false) => counts.relevant_other_lang = 1,
                    (false, true) => counts.wrong_same_lang = 1,
                    (false, false) => counts.wrong_other_lang = 1,
                }
                if !relevant {
                    if let Some(group) = doc_group(doc) {
                        let shared = judged.iter().any(|(d, &g)| {
                            g >= RELEVANCE_LEVEL && doc_group(d).as_ref() == Some(&group)
                        });
                        match shared {
                            true => counts.wrong_same_group = 1,
                            false => counts.wrong_other_group = 1,
                        }
                    }
                }
            }
        }
        add(&mut out.overall, &counts);
        add(out.per_lang.entry(qlang).or_default(), &counts);
    }
    out
}

fn add(into: &mut FirstHitCounts, c: &FirstHitCounts) {
    into.queries += c.queries;
    into.relevant_same_lang += c.relevant_same_lang;
    into.relevant_other_lang += c.relevant_other_lang;
    into.wrong_same_lang += c.wrong_same_lang;
    into.wrong_other_lang += c.wrong_other_lang;
    into.wrong_same_group += c.wrong_same_group;
    into.wrong_other_group += c.wrong_other_group;
    into.empty += c.empty;
}

/// A plain-text table: one row per kind, counts and shares of the judged queries.
pub fn first_hit_table(hits: &FirstHits) -> String {
    let o = &hits.overall;
    let pct = |n: usize| 100.0 * n as f64 / o.queries.max(1) as f64;
    let mut rows = vec![
        ("relevant, query's language", o.relevant_same_lang),
        ("relevant, another language", o.relevant_other_lang),
        ("wrong, query's language", o.wrong_same_lang),
        ("wrong, another language", o.wrong_other_lang),
    ];
    if o.wrong_same_group + o.wrong_other_group > 0 {
        rows.push(("wrong, same group", o.wrong_same_group));
        rows.push(("wrong, another group", o.wrong_other_group));
    }
    if o.empty > 0 {
        rows.push(("nothing retrieved", o.empty));
    }
    let mut s = format!("first hit of {} judged queries\n", o.queries);
    for (name, n) in rows {
        s.push_str(&format!("  {name:<28} {n:>7} {:>6.1}%\n", pct(n)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang_of(id: &str) -> Option<String> {
        id.split('-').nth(1).map(str::to_string)
    }
    fn group_of(id: &str) -> Option<String> {
        id.split('-').nth(2).map(str::to_string)
    }

    #[test]
    fn each_kind_of_first_hit_is_counted_under_its_query_language() {
        let mut qrels = Qrels::new();
        let mut run = Run::new();
        // The relevant documents of every query: its article 1's paragraph in en and de.
        for q in ["q-en-a", "q-en-b", "q-de-c", "q-de-d", "q-en-e", "q-en-f"] {
            let j = qrels.entry(q.into()).or_default();
            j.insert("p-en-1".into(), 1);
            j.insert("p-de-1".into(), 1);
            j.insert("p-de-2".into(), 0); // judged, not relevant
        }
        let mut put = |q: &str, docs: &[(&str, f64)]| {
            run.insert(
                q.into(),
                docs.iter().map(|(d, s)| (d.to_string(), *s)).collect(),
            );
        };
        put("q-en-a", &[("p-de-3", 0.1), ("p-en-1", 0.9)]); // relevant, same lang
        put("q-en-b", &[("p-de-1", 0.8), ("p-en-1", 0.7)]); // relevant, other lang
        put("q-de-c", &[("p-de-2", 0.9), ("p-de-1", 0.2)]); // wrong, same lang, other group
        put("q-de-d", &[("p-en-1", 0.5)]); // relevant, other lang
                                           // A tie at f32 precision: docid descending wins, so p-zh-1 (wrong, other lang, same
                                           // group as the relevant ones) is first.
        put("q-en-e", &[("p-en-1", 0.5), ("p-zh-1", 0.500_000_000_1)]);
        put("q-en-f", &[]);
        put("q-unjudged", &[("p-en-1", 1.0)]);
        let hits = first_hits(&qrels, &run, lang_of, lang_of, group_of);
        let o = hits.overall;
        assert_eq!(o.queries, 6);
        assert_eq!((o.relevant_same_lang, o.relevant_other_lang), (1, 2));
        assert_eq!((o.wrong_same_lang, o.wrong_other_lang, o.empty), (1, 1, 1));
        assert_eq!((o.wrong_same_group, o.wrong_other_group), (1, 1));
        assert_eq!(o.wrong(), 2);
        let de = hits.per_lang["de"];
        assert_eq!(
            (de.queries, de.wrong_same_lang, de.relevant_other_lang),
            (2, 1, 1)
        );
        assert_eq!(hits.per_lang["en"].queries, 4);
        let table = first_hit_table(&hits);
        assert!(table.contains("first hit of 6 judged queries"), "{table}");
        assert!(table.contains("wrong, same group"), "{table}");
        // Without groups, no group rows.
        let plain = first_hits(&qrels, &run, lang_of, lang_of, |_| None);
        assert_eq!(
            plain.overall.wrong_same_group + plain.overall.wrong_other_group,
            0
        );
        assert!(!first_hit_table(&plain).contains("group"));
    }
}
