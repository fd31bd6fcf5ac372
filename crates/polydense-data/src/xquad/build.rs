//! Turning the aligned XQuAD-R source into BEIR variants: per language, all languages pooled,
//! and cross-lingual (queries in X, corpus in Y).

use super::source::Source;
use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::splits::{assign_groups, Split, SplitRatios};
use crate::{beir, Document, Qrels, Query};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What is retrieved for a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Paragraphs; the question's paragraph is relevant.
    Paragraph,
    /// Sentences (the LAReQA pool); the answer sentence is relevant.
    Lareqa,
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "paragraph" => Ok(Task::Paragraph),
            "lareqa" => Ok(Task::Lareqa),
            _ => Err(format!("unknown task `{s}`: expected paragraph or lareqa")),
        }
    }
}

/// Which translations of the answer count as relevant when the corpus holds several languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relevance {
    /// Every parallel paragraph or sentence in the corpus is relevant (LAReQA's setting).
    AllParallel,
    /// Only the one in the question's own language is relevant.
    SameLanguage,
}

/// One BEIR dataset to build: which languages the queries and the corpus are in.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSpec {
    /// Directory name under the output: `en`, `all`, or `en-de`.
    pub name: String,
    pub query_langs: Vec<String>,
    pub corpus_langs: Vec<String>,
    pub relevance: Relevance,
}

/// What `prepare` builds; the defaults give every language alone plus the pooled set.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub task: Task,
    /// Languages to use; empty means all 11.
    pub langs: Vec<String>,
    /// One dataset per language.
    pub per_language: bool,
    /// One dataset with all selected languages pooled.
    pub pooled: bool,
    /// Cross-lingual pairs `(query language, corpus language)`.
    pub cross: Vec<(String, String)>,
    /// Relevance in the pooled dataset.
    pub pooled_relevance: Relevance,
    pub ratios: SplitRatios,
    pub seed: u64,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            task: Task::Paragraph,
            langs: Vec::new(),
            per_language: true,
            pooled: true,
            cross: Vec::new(),
            pooled_relevance: Relevance::AllParallel,
            ratios: SplitRatios::default(),
            seed: 13,
        }
    }
}

impl PrepareOptions {
    /// The variants these options ask for, checked against the languages of XQuAD-R.
    pub fn variants(&self) -> Result<Vec<VariantSpec>> {
        let langs = self.languages();
        let known = |l: &String| super::LANGUAGES.contains(&l.as_str());
        for l in langs
            .iter()
            .chain(self.cross.iter().flat_map(|(x, y)| [x, y]))
        {
            if !known(l) {
                return Err(
                    DataError::invalid("xquad-r", format!("unknown language `{l}`"))
                        .hint(format!("XQuAD-R has {}", super::LANGUAGES.join(" "))),
                );
            }
        }
        let mut out = Vec::new();
        if self.per_language {
            for l in &langs {
                out.push(VariantSpec {
                    name: l.clone(),
                    query_langs: vec![l.clone()],
                    corpus_langs: vec![l.clone()],
                    relevance: Relevance::SameLanguage,
                });
            }
        }
        if self.pooled {
            out.push(VariantSpec {
                name: "all".into(),
                query_langs: langs.clone(),
                corpus_langs: langs.clone(),
                relevance: self.pooled_relevance,
            });
        }
        for (x, y) in &self.cross {
            out.push(VariantSpec {
                name: format!("{x}-{y}"),
                query_langs: vec![x.clone()],
                corpus_langs: vec![y.clone()],
                relevance: Relevance::AllParallel,
            });
        }
        Ok(out)
    }

    /// The selected languages, or all 11.
    pub fn languages(&self) -> Vec<String> {
        if self.langs.is_empty() {
            super::LANGUAGES.iter().map(|s| s.to_string()).collect()
        } else {
            self.langs.clone()
        }
    }
}

/// A built BEIR dataset, in memory.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub corpus: Vec<Document>,
    pub queries: Vec<Query>,
    pub qrels: BTreeMap<Split, Qrels>,
}

/// A regex whose first group is the article of a paragraph or sentence id of [`doc_id`]'s
/// form, for analyses that group documents by article (`eval --first-hit --group`).
pub const ARTICLE_OF_ID: &str = r"^[ps]-[a-z]+-(\d+)-";

/// Ids are unique across languages and say where a passage comes from: `p-de-03-02` is
/// paragraph 2 of article 3 in German, `s-de-03-02-1` its sentence 1.
fn doc_id(task: Task, lang: &str, a: usize, p: usize, sentence: usize) -> String {
    match task {
        Task::Paragraph => format!("p-{lang}-{a:02}-{p:02}"),
        Task::Lareqa => format!("s-{lang}-{a:02}-{p:02}-{sentence}"),
    }
}

/// Builds one variant from the source; `splits[a]` is the split of article `a`.
pub fn build(source: &Source, spec: &VariantSpec, task: Task, splits: &[Split]) -> Variant {
    let index = |l: &String| {
        source
            .langs
            .iter()
            .position(|x| x == l)
            .expect("variant languages are loaded")
    };
    let corpus_langs: Vec<(usize, &String)> =
        spec.corpus_langs.iter().map(|l| (index(l), l)).collect();
    let query_langs: Vec<(usize, &String)> =
        spec.query_langs.iter().map(|l| (index(l), l)).collect();
    let mut corpus = Vec::new();
    let mut queries = Vec::new();
    let mut qrels: BTreeMap<Split, Qrels> = Split::ALL.iter().map(|&s| (s, Qrels::new())).collect();
    for &(li, lang) in &corpus_langs {
        for (a, article) in source.articles.iter().enumerate() {
            for (p, para) in article.paragraphs.iter().enumerate() {
                let text = &para.per_lang[li];
                match task {
                    Task::Paragraph => {
                        corpus.push(document(doc_id(task, lang, a, p, 0), &text.context, lang))
                    }
                    Task::Lareqa => corpus.extend(
                        text.sentences
                            .iter()
                            .enumerate()
                            .map(|(s, sent)| document(doc_id(task, lang, a, p, s), sent, lang)),
                    ),
                }
            }
        }
    }
    for &(qi, qlang) in &query_langs {
        for (a, article) in source.articles.iter().enumerate() {
            for (p, para) in article.paragraphs.iter().enumerate() {
                for (n, q) in para.per_lang[qi].questions.iter().enumerate() {
                    let qid = format!("{}-{qlang}", q.id);
                    let relevant: BTreeMap<String, i32> = corpus_langs
                        .iter()
                        .filter(|(ci, _)| spec.relevance == Relevance::AllParallel || *ci == qi)
                        .map(|&(ci, clang)| {
                            let sentence = para.per_lang[ci].questions[n].answer_sentence;
                            (doc_id(task, clang, a, p, sentence), 1)
                        })
                        .collect();
                    qrels
                        .get_mut(&splits[a])
                        .expect("all splits")
                        .insert(qid.clone(), relevant);
                    queries.push(Query {
                        id: qid,
                        text: q.text.clone(),
                        lang: Some(qlang.clone()),
                    });
                }
            }
        }
    }
    Variant {
        name: spec.name.clone(),
        corpus,
        queries,
        qrels,
    }
}

fn document(id: String, text: &str, lang: &str) -> Document {
    Document {
        id,
        title: String::new(),
        text: text.to_string(),
        lang: Some(lang.to_string()),
    }
}

/// Counts that `prepare` writes to `manifest.json` and prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub task: Task,
    pub seed: u64,
    pub ratios: SplitRatios,
    /// Article titles per split.
    pub articles: BTreeMap<Split, Vec<String>>,
    pub variants: Vec<VariantSummary>,
    pub license: &'static str,
}

/// The size of one written variant.
#[derive(Debug, Clone, Serialize)]
pub struct VariantSummary {
    pub name: String,
    pub documents: usize,
    pub queries: usize,
    pub documents_per_lang: BTreeMap<String, usize>,
    pub queries_per_lang: BTreeMap<String, usize>,
    /// Judged queries per split.
    pub split_queries: BTreeMap<Split, usize>,
}

const ATTRIBUTION: &str = "XQuAD-R (LAReQA, Roy et al. 2020; google-research-datasets/lareqa), CC BY-SA 4.0; derived data keeps that licence";

/// Reads XQuAD-R from `source_dir` and writes every requested variant as a BEIR directory
/// under `out_dir`, with a manifest, a README naming the licence, and the licence text.
pub fn prepare(source_dir: &Path, out_dir: &Path, opts: &PrepareOptions) -> Result<Summary> {
    let specs = opts.variants()?;
    let langs = opts.languages();
    let lang_refs: Vec<&str> = langs.iter().map(|s| s.as_str()).collect();
    let source = Source::load(source_dir, &lang_refs)?;
    let splits = assign_groups(source.articles.len(), opts.ratios, opts.seed);
    let mut summary = Summary {
        task: opts.task,
        seed: opts.seed,
        ratios: opts.ratios,
        articles: BTreeMap::new(),
        variants: Vec::new(),
        license: ATTRIBUTION,
    };
    for (article, split) in source.articles.iter().zip(&splits) {
        summary
            .articles
            .entry(*split)
            .or_default()
            .push(article.title.clone());
    }
    for spec in &specs {
        let variant = build(&source, spec, opts.task, &splits);
        let dir = out_dir.join(&variant.name);
        beir::write_corpus(&dir.join("corpus.jsonl"), &variant.corpus)?;
        beir::write_queries(&dir.join("queries.jsonl"), &variant.queries)?;
        for (split, qrels) in &variant.qrels {
            beir::write_qrels(
                &dir.join("qrels").join(format!("{}.tsv", split.name())),
                qrels,
            )?;
        }
        summary.variants.push(summarise(&variant));
    }
    let manifest = out_dir.join("manifest.json");
    write_atomic(&manifest, |w| {
        serde_json::to_writer_pretty(&mut *w, &summary)?;
        w.write_all(b"\n")
    })?;
    write_atomic(out_dir.join("README.md"), |w| {
        writeln!(w, "# XQuAD-R, {:?} task, as BEIR directories\n", opts.task)?;
        writeln!(w, "Source: {ATTRIBUTION}. See LICENSE.\n")?;
        writeln!(w, "Made by `polydense data prepare xquad-r`; manifest.json lists the article splits and counts.")
    })?;
    let licence = source_dir.join("LICENSE");
    if licence.exists() {
        let text = std::fs::read(&licence).map_err(|e| DataError::io(&licence, e))?;
        write_atomic(out_dir.join("LICENSE"), |w| w.write_all(&text))?;
    }
    Ok(summary)
}

fn summarise(v: &Variant) -> VariantSummary {
    let count = |langs: Vec<&Option<String>>| {
        let mut m = BTreeMap::new();
        for l in langs {
            *m.entry(l.clone().unwrap_or_default()).or_insert(0) += 1;
        }
        m
    };
    VariantSummary {
        name: v.name.clone(),
        documents: v.corpus.len(),
        queries: v.queries.len(),
        documents_per_lang: count(v.corpus.iter().map(|d| &d.lang).collect()),
        queries_per_lang: count(v.queries.iter().map(|q| &q.lang).collect()),
        split_queries: v.qrels.iter().map(|(s, q)| (*s, q.len())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xquad::{Article, Paragraph, ParagraphText, Question};

    /// Two languages, three articles of one paragraph with two sentences and two questions.
    fn tiny() -> Source {
        let text = |lang: &str, a: usize| ParagraphText {
            context: format!("{lang} context {a}"),
            sentences: vec![format!("{lang} s0 {a}"), format!("{lang} s1 {a}")],
            questions: (0..2)
                .map(|n| Question {
                    id: format!("q{a}{n}"),
                    text: format!("{lang} question {a}{n}"),
                    answer_sentence: n,
                })
                .collect(),
        };
        Source {
            langs: vec!["en".into(), "de".into()],
            articles: (0..3)
                .map(|a| Article {
                    title: format!("T{a}"),
                    paragraphs: vec![Paragraph {
                        per_lang: vec![text("en", a), text("de", a)],
                    }],
                })
                .collect(),
        }
    }

    fn spec(name: &str, q: &[&str], c: &[&str], relevance: Relevance) -> VariantSpec {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        VariantSpec {
            name: name.into(),
            query_langs: v(q),
            corpus_langs: v(c),
            relevance,
        }
    }

    const SPLITS: [Split; 3] = [Split::Train, Split::Test, Split::Train];

    #[test]
    fn pooled_lareqa_marks_every_parallel_answer_sentence() {
        let v = build(
            &tiny(),
            &spec("all", &["en", "de"], &["en", "de"], Relevance::AllParallel),
            Task::Lareqa,
            &SPLITS,
        );
        assert_eq!(v.corpus.len(), 2 * 3 * 2);
        assert_eq!(v.queries.len(), 2 * 3 * 2);
        let rel = &v.qrels[&Split::Test]["q11-de"];
        assert_eq!(
            rel.keys().collect::<Vec<_>>(),
            vec!["s-de-01-00-1", "s-en-01-00-1"]
        );
        assert!(v.qrels[&Split::Train].contains_key("q00-en"));
        assert!(
            !v.qrels[&Split::Train].contains_key("q10-en"),
            "article 1 is test only"
        );
    }

    #[test]
    fn same_language_relevance_keeps_only_own_language() {
        let v = build(
            &tiny(),
            &spec("all", &["en", "de"], &["en", "de"], Relevance::SameLanguage),
            Task::Paragraph,
            &SPLITS,
        );
        let rel = &v.qrels[&Split::Train]["q20-de"];
        assert_eq!(rel.keys().collect::<Vec<_>>(), vec!["p-de-02-00"]);
        assert!(v.corpus.iter().all(|d| d.lang.is_some()));
        assert!(v.queries.iter().all(|q| q.lang.is_some()));
    }

    #[test]
    fn cross_lingual_has_queries_in_x_and_corpus_in_y() {
        let v = build(
            &tiny(),
            &spec("en-de", &["en"], &["de"], Relevance::AllParallel),
            Task::Paragraph,
            &SPLITS,
        );
        assert!(v.queries.iter().all(|q| q.lang.as_deref() == Some("en")));
        assert!(v.corpus.iter().all(|d| d.lang.as_deref() == Some("de")));
        assert_eq!(
            v.qrels[&Split::Test]["q10-en"].keys().collect::<Vec<_>>(),
            vec!["p-de-01-00"]
        );
    }

    #[test]
    fn options_expand_to_variants_and_reject_unknown_languages() {
        let opts = PrepareOptions {
            langs: vec!["en".into(), "th".into()],
            cross: vec![("en".into(), "th".into())],
            ..Default::default()
        };
        let names: Vec<_> = opts
            .variants()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, vec!["en", "th", "all", "en-th"]);
        let bad = PrepareOptions {
            langs: vec!["xx".into()],
            ..Default::default()
        };
        assert!(bad
            .variants()
            .unwrap_err()
            .to_string()
            .contains("unknown language `xx`"));
    }
}
