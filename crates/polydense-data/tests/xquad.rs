//! XQuAD-R on the real shared data: the published counts, id uniqueness, and article splits
//! that never leak across train, dev and test.

use polydense_data::splits::Split;
use polydense_data::xquad::{prepare, PrepareOptions, Relevance, Task};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// The shared XQuAD-R files; missing ones fail under `scripts/test` and CI.
fn xquad_dir() -> Option<PathBuf> {
    polydense_data::paths::test_data("xquad-r/en.json").map(|f| f.with_file_name(""))
}

/// Candidate sentences per language, from the dataset's README (13,014 in all).
const SENTENCES: [(&str, usize); 11] = [
    ("ar", 1222),
    ("de", 1276),
    ("el", 1234),
    ("en", 1180),
    ("es", 1215),
    ("hi", 1244),
    ("ru", 1219),
    ("th", 852),
    ("tr", 1167),
    ("vi", 1209),
    ("zh", 1196),
];

#[test]
fn paragraph_task_reproduces_published_counts() {
    let Some(src) = xquad_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let summary = prepare(&src, out.path(), &PrepareOptions::default()).unwrap();
    assert_eq!(summary.variants.len(), 12);
    for v in summary.variants.iter().filter(|v| v.name != "all") {
        assert_eq!(v.queries, 1190, "{}", v.name);
        assert_eq!(v.documents, 240, "{}", v.name);
    }
    let all = summary.variants.iter().find(|v| v.name == "all").unwrap();
    assert_eq!(all.documents, 2640);
    assert_eq!(all.queries, 13090);
    assert_eq!(all.split_queries.values().sum::<usize>(), 13090);

    let ds = polydense_data::beir::BeirDataset::load(&out.path().join("all"), "test").unwrap();
    assert!(ds.corpus.iter().all(|d| d.lang.is_some()));
    assert!(ds.queries.iter().all(|q| q.lang.is_some()));
    assert!(!ds.qrels.is_empty());
    for rel in ds.qrels.values() {
        assert_eq!(rel.len(), 11, "all 11 parallel paragraphs are relevant");
    }
}

#[test]
fn lareqa_pool_reproduces_candidate_counts_and_11_relevant() {
    let Some(src) = xquad_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let opts = PrepareOptions {
        task: Task::Lareqa,
        ..Default::default()
    };
    let summary = prepare(&src, out.path(), &opts).unwrap();
    let all = summary.variants.iter().find(|v| v.name == "all").unwrap();
    assert_eq!(all.documents, 13014);
    let expected: BTreeMap<String, usize> =
        SENTENCES.iter().map(|(l, n)| (l.to_string(), *n)).collect();
    assert_eq!(all.documents_per_lang, expected);
    for (lang, n) in SENTENCES {
        let v = summary.variants.iter().find(|v| v.name == lang).unwrap();
        assert_eq!((v.documents, v.queries), (n, 1190), "{lang}");
    }
    let ds = polydense_data::beir::BeirDataset::load(&out.path().join("all"), "train").unwrap();
    let ids: HashSet<_> = ds.corpus.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), 13014, "ids are unique across languages");
    assert!(!ds.qrels.is_empty());
    for (qid, rel) in &ds.qrels {
        assert_eq!(rel.len(), 11, "{qid}");
        let langs: HashSet<_> = rel.keys().map(|d| &d[2..4]).collect();
        assert_eq!(
            langs.len(),
            11,
            "one answer sentence per language for {qid}"
        );
        assert!(rel.keys().all(|d| ids.contains(d.as_str())));
    }
}

#[test]
fn splits_are_by_article_and_same_language_option_keeps_one() {
    let Some(src) = xquad_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    let opts = PrepareOptions {
        langs: vec!["en".into(), "zh".into()],
        per_language: false,
        pooled_relevance: Relevance::SameLanguage,
        seed: 7,
        ..Default::default()
    };
    let summary = prepare(&src, out.path(), &opts).unwrap();
    let mut seen = HashSet::new();
    for titles in summary.articles.values() {
        for t in titles {
            assert!(seen.insert(t.clone()), "article {t} in two splits");
        }
    }
    assert_eq!(seen.len(), 48);
    let dir = out.path().join("all");
    let mut article_split: BTreeMap<String, Split> = BTreeMap::new();
    for split in Split::ALL {
        let ds = polydense_data::beir::BeirDataset::load(&dir, split.name()).unwrap();
        assert!(!ds.qrels.is_empty(), "{split:?} has queries");
        for (qid, rel) in &ds.qrels {
            assert_eq!(rel.len(), 1, "same-language relevance");
            let doc = rel.keys().next().unwrap();
            assert_eq!(&doc[2..4], &qid[qid.len() - 2..], "{qid} -> {doc}");
            let article = doc[5..7].to_string();
            let prev = article_split.insert(article.clone(), split);
            assert!(
                prev.is_none() || prev == Some(split),
                "article {article} leaks across splits"
            );
        }
    }
    let again = prepare(&src, tempfile::tempdir().unwrap().path(), &opts).unwrap();
    assert_eq!(again.articles, summary.articles, "same seed, same split");
}
