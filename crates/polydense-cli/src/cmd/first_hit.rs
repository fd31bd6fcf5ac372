//! `--first-hit` on `eval` and `retrieve`: what each judged query's first-ranked document is
//! (relevant or not, which language, which group), beside the mean metrics.

use std::collections::BTreeMap;

use polydense_data::{Qrels, Run};
use polydense_eval::{first_hits, FirstHits, Report};
use serde::Serialize;

/// Flags that add the first-hit breakdown to an evaluation.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FirstHitArgs {
    /// Also break the first-ranked document of each judged query down by relevance, by
    /// language (the query's or another) and, with --group, by group.
    #[arg(long)]
    pub first_hit: bool,
    /// A regex whose first capture group names a document's group from its id, so wrong
    /// first hits split into "same group as a relevant document" and "another": for
    /// XQuAD-R paragraphs and sentences (p-LANG-ARTICLE-PARAGRAPH), '^[ps]-[a-z]+-(\d+)-'
    /// groups by article.
    #[arg(long, value_name = "REGEX", requires = "first_hit")]
    pub group: Option<regex::Regex>,
}

impl FirstHitArgs {
    /// The breakdown when asked for; languages come from the query and document maps.
    pub fn analyse(
        &self,
        qrels: &Qrels,
        run: &Run,
        query_langs: &BTreeMap<String, String>,
        doc_langs: &BTreeMap<String, String>,
    ) -> Option<FirstHits> {
        self.first_hit.then(|| {
            first_hits(
                qrels,
                run,
                |q| query_langs.get(q).cloned(),
                |d| doc_langs.get(d).cloned(),
                |d| {
                    let re = self.group.as_ref()?;
                    Some(re.captures(d)?.get(1)?.as_str().to_string())
                },
            )
        })
    }
}

/// An evaluation's JSON: the report, and the first-hit breakdown when asked for.
#[derive(Serialize)]
pub struct Evaluation<'a> {
    /// Overall and per-language means.
    #[serde(flatten)]
    pub report: &'a Report,
    /// What each query's first hit is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_hit: Option<&'a FirstHits>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_data::xquad::ARTICLE_OF_ID;

    #[test]
    fn the_xquad_article_pattern_groups_wrong_first_hits_by_article() {
        let args = FirstHitArgs {
            first_hit: true,
            group: Some(regex::Regex::new(ARTICLE_OF_ID).unwrap()),
        };
        let mut qrels = Qrels::new();
        for q in ["q1-en", "q2-en", "q3-de"] {
            let j = qrels.entry(q.into()).or_default();
            j.insert("p-en-03-01".into(), 1);
            j.insert("p-de-03-01".into(), 1);
        }
        let mut run = Run::new();
        run.insert("q1-en".into(), vec![("p-de-03-02".into(), 0.9)]); // same article
        run.insert("q2-en".into(), vec![("p-en-17-00".into(), 0.9)]); // another article
        run.insert("q3-de".into(), vec![("p-en-03-01".into(), 0.9)]); // relevant, other lang
        let lang = |id: &str| id.split('-').nth(1).unwrap().to_string();
        let docs: BTreeMap<String, String> = ["p-de-03-02", "p-en-17-00", "p-en-03-01"]
            .iter()
            .map(|d| (d.to_string(), lang(d)))
            .collect();
        let queries: BTreeMap<String, String> = [("q1-en", "en"), ("q2-en", "en"), ("q3-de", "de")]
            .iter()
            .map(|(q, l)| (q.to_string(), l.to_string()))
            .collect();
        let hits = args.analyse(&qrels, &run, &queries, &docs).unwrap();
        let o = hits.overall;
        assert_eq!((o.wrong_other_lang, o.wrong_same_lang), (1, 1));
        assert_eq!((o.wrong_same_group, o.wrong_other_group), (1, 1));
        assert_eq!(o.relevant_other_lang, 1);
        let off = FirstHitArgs::default();
        assert!(off.analyse(&qrels, &run, &queries, &docs).is_none());
    }
}
