//! Index and search end to end: BM25 scores follow Lucene's formula with the given k1 and b,
//! the per-document language drives analysis, and rebuilding replaces an index atomically.

use polydense_data::{Document, Query};
use polydense_lexical::{
    build_index, AnalysisOptions, Bm25Params, Bm25Searcher, IndexOptions, LexicalError,
};

fn doc(id: &str, text: &str, lang: &str) -> Document {
    Document {
        id: id.into(),
        title: String::new(),
        text: text.into(),
        lang: Some(lang.into()),
    }
}

fn build(docs: Vec<Document>, opts: &IndexOptions) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx");
    build_index(&path, docs.into_iter().map(Ok), opts, &|_| {}).unwrap();
    (dir, path)
}

/// Lucene's BM25 written out for a bag of words, as the reference the index must match.
fn reference(docs: &[Vec<&str>], query: &[&str], k1: f64, b: f64) -> Vec<f64> {
    let n = docs.len() as f64;
    let avgdl = docs.iter().map(|d| d.len()).sum::<usize>() as f64 / n;
    docs.iter()
        .map(|d| {
            query
                .iter()
                .map(|t| {
                    let df = docs.iter().filter(|x| x.contains(t)).count() as f64;
                    let tf = d.iter().filter(|x| *x == t).count() as f64;
                    if tf == 0.0 {
                        return 0.0;
                    }
                    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                    idf * tf / (tf + k1 * (1.0 - b + b * d.len() as f64 / avgdl))
                })
                .sum()
        })
        .collect()
}

#[test]
fn scores_equal_lucene_bm25_for_several_k1_and_b() {
    let texts = [
        "apple banana apple cherry",
        "banana banana banana",
        "cherry date elder fig grape apple",
        "fig",
        "grape grape apple banana cherry date",
    ];
    let docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| doc(&format!("d{i}"), t, "xx"))
        .collect();
    let (_tmp, path) = build(docs, &IndexOptions::default());
    let bags: Vec<Vec<&str>> = texts.iter().map(|t| t.split(' ').collect()).collect();
    let query = ["apple", "banana", "fig", "apple"];
    for (k1, b) in [(0.9, 0.4), (1.2, 0.75), (0.0, 0.0), (2.0, 1.0)] {
        let s = Bm25Searcher::open(&path, Bm25Params { k1, b }).unwrap();
        let hits = s.search("apple banana fig apple", None, 10).unwrap();
        let want = reference(&bags, &query, k1 as f64, b as f64);
        for h in &hits {
            let i: usize = h.docid[1..].parse().unwrap();
            assert!(
                (h.score as f64 - want[i]).abs() < 1e-4,
                "k1={k1} b={b} {}: {} vs {}",
                h.docid,
                h.score,
                want[i]
            );
        }
        let matching = want.iter().filter(|w| **w > 0.0).count();
        assert_eq!(hits.len(), matching);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

#[test]
fn top_k_truncates_and_breaks_ties_like_trec_eval() {
    let docs = vec![
        doc("a", "same words", "en"),
        doc("b", "same words", "en"),
        doc("c", "other", "en"),
    ];
    let (_tmp, path) = build(docs, &IndexOptions::default());
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    let hits = s.search("same", Some("en"), 1).unwrap();
    assert_eq!(hits.len(), 1);
    // trec_eval ranks equal scores by docid descending.
    assert_eq!(hits[0].docid, "b");
    assert!(s.search("absent", Some("en"), 5).unwrap().is_empty());
}

#[test]
fn each_document_is_analysed_in_its_own_language() {
    let docs = vec![
        doc("en1", "The universities of London", "en"),
        doc("th1", "มหาวิทยาลัยอยู่ในกรุงเทพ", "th"),
        doc("zh1", "北京是中国的首都", "zh"),
    ];
    let (_tmp, path) = build(docs, &IndexOptions::default());
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    assert_eq!(s.meta().langs.len(), 3);
    // Stemming on both sides: "university" meets "universities".
    assert_eq!(
        s.search("university", Some("en"), 3).unwrap()[0].docid,
        "en1"
    );
    // A Thai word inside an unspaced sentence is found as a term.
    assert_eq!(
        s.search("มหาวิทยาลัย", Some("th"), 3).unwrap()[0].docid,
        "th1"
    );
    assert_eq!(
        s.search("首都在哪里", Some("zh"), 3).unwrap()[0].docid,
        "zh1"
    );
}

#[test]
fn fixed_language_overrides_the_documents() {
    let docs = vec![doc("1", "universities", "xx")];
    let opts = IndexOptions {
        lang: Some("en".into()),
        ..IndexOptions::default()
    };
    let (_tmp, path) = build(docs, &opts);
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    assert_eq!(s.meta().lang.as_deref(), Some("en"));
    // The query has no language: the index's is used, so it is stemmed too.
    assert_eq!(s.search("university", None, 1).unwrap().len(), 1);
}

#[test]
fn batch_search_matches_single_queries_in_order() {
    let docs: Vec<Document> = (0..50)
        .map(|i| {
            doc(
                &format!("d{i}"),
                &format!("word{} word{} common", i % 7, i % 11),
                "en",
            )
        })
        .collect();
    let (_tmp, path) = build(docs, &IndexOptions::default());
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    let queries: Vec<Query> = (0..20)
        .map(|i| Query {
            id: format!("q{i}"),
            text: format!("word{} word{}", i % 7, i % 5),
            lang: Some("en".into()),
        })
        .collect();
    let batch = s.search_queries(&queries, None, 5, &|_| {}).unwrap();
    for (q, hits) in queries.iter().zip(&batch) {
        assert_eq!(hits, &s.search(&q.text, Some("en"), 5).unwrap());
    }
    let run = s.search_run(&queries, None, 5, &|_| {}).unwrap();
    assert_eq!(run.len(), 20);
    assert_eq!(run["q3"][0].0, batch[3][0].docid);
}

#[test]
fn stopword_setting_is_stored_and_reused_for_queries() {
    let docs = vec![doc("1", "the cat", "en"), doc("2", "the dog", "en")];
    let opts = IndexOptions {
        analysis: AnalysisOptions {
            stem: true,
            stopwords: true,
        },
        ..IndexOptions::default()
    };
    let (_tmp, path) = build(docs, &opts);
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    assert!(s.meta().analysis.stopwords);
    assert!(s.search("the", Some("en"), 5).unwrap().is_empty());
}

#[test]
fn duplicate_ids_are_refused_and_old_index_survives() {
    let (_tmp, path) = build(vec![doc("1", "first", "en")], &IndexOptions::default());
    let bad = vec![doc("x", "a", "en"), doc("x", "b", "en")];
    let err = build_index(
        &path,
        bad.into_iter().map(Ok),
        &IndexOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, LexicalError::DuplicateId { ref id } if id == "x"),
        "{err}"
    );
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    assert_eq!(s.num_docs(), 1);
}

#[test]
fn refuses_to_overwrite_a_foreign_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep").unwrap();
    let err = build_index(
        dir.path(),
        std::iter::empty(),
        &IndexOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("refusing"), "{err}");
    assert!(dir.path().join("precious.txt").exists());
}

#[test]
fn bad_parameters_are_rejected() {
    let (_tmp, path) = build(vec![doc("1", "a", "en")], &IndexOptions::default());
    assert!(Bm25Searcher::open(&path, Bm25Params { k1: -1.0, b: 0.4 }).is_err());
    assert!(Bm25Searcher::open(&path, Bm25Params { k1: 0.9, b: 1.5 }).is_err());
}

#[test]
fn scores_of_named_documents_come_back_even_outside_the_top_k() {
    let docs = vec![
        doc("1", "apple apple apple", "en"),
        doc("2", "apple pie", "en"),
        doc("3", "pear", "en"),
    ];
    let (_tmp, path) = build(docs, &IndexOptions::default());
    let s = Bm25Searcher::open(&path, Bm25Params::default()).unwrap();
    let terms = s.analyzers().terms("apple", Some("en"));
    let full = s.search("apple", Some("en"), 10).unwrap();
    let also = [s.doc_number("2").unwrap(), s.doc_number("3").unwrap()];
    let mut scratch = s.scratch();
    let (hits, extra) = s
        .search_terms_and_score(&terms, 1, &also, &mut scratch)
        .unwrap();
    assert_eq!(hits, full[..1].to_vec());
    assert_eq!(extra, vec![full[1].score, 0.0]);
    assert_eq!(s.doc_number("missing"), None);
    // The scratch space is clean afterwards: the same query gives the same answer.
    let (again, _) = s
        .search_terms_and_score(&terms, 1, &also, &mut scratch)
        .unwrap();
    assert_eq!(again, hits);
}
