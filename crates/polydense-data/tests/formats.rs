//! Every file format round-trips, reads the quirks of public files, and reports bad input with
//! the file, the line, the field and a message.

use polydense_data::error::Invalid;
use polydense_data::{beir, flag, jsonl, msmarco, tevatron, DataError, Document, Qrels, Query};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/data");

fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

fn put(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The structured error, after checking it renders the same facts in its one-line message.
fn invalid(err: DataError) -> Invalid {
    let text = err.to_string();
    let inv = err
        .as_invalid()
        .unwrap_or_else(|| panic!("not an input error: {text}"))
        .clone();
    assert!(text.starts_with(&inv.path.display().to_string()), "{text}");
    if let Some(line) = inv.line {
        assert!(text.contains(&format!(":{line}: ")), "{text}");
    }
    if let Some(field) = &inv.field {
        assert!(text.contains(&format!("field `{field}`")), "{text}");
    }
    inv
}

fn first_err<T>(it: impl IntoIterator<Item = polydense_data::Result<T>>) -> Invalid {
    match it.into_iter().find_map(|r| r.err()) {
        Some(e) => invalid(e),
        None => panic!("expected an error"),
    }
}

fn doc(id: &str, title: &str, text: &str) -> Document {
    Document {
        id: id.into(),
        title: title.into(),
        text: text.into(),
        lang: None,
    }
}

// ---------------------------------------------------------------- BEIR: reading and writing

#[test]
fn beir_fixture_reads_public_quirks_and_keeps_only_the_splits_queries() {
    let ds = beir::BeirDataset::load(&fixture("beir"), "test").unwrap();
    let ids: Vec<&str> = ds.corpus.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d1", "d2", "3", "d4"]);
    assert_eq!(ds.corpus[0].lang.as_deref(), Some("en"));
    assert_eq!(ds.corpus[1].title, "Zürich");
    assert_eq!(
        (ds.corpus[2].title.as_str(), ds.corpus[2].lang.as_deref()),
        ("", None)
    );
    assert_eq!(ds.corpus[3].text, "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย");
    let qids: Vec<&str> = ds.queries.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(qids, ["q1", "q2", "7"], "q4 is judged only in dev");
    let mut want = Qrels::new();
    want.entry("q1".into())
        .or_default()
        .extend([("d1".to_string(), 1), ("3".to_string(), 0)]);
    want.entry("q2".into()).or_default().insert("d2".into(), 2);
    want.entry("7".into()).or_default().insert("d4".into(), 1);
    assert_eq!(ds.qrels, want);

    let dev = beir::BeirDataset::load(&fixture("beir"), "dev").unwrap();
    assert_eq!(dev.queries.len(), 1);
    assert_eq!(
        dev.qrels["q4"]["d1"], 1,
        "a qrels file without header reads the same"
    );
}

#[test]
fn beir_dataset_round_trips_and_always_writes_a_title() {
    let ds = beir::BeirDataset::load(&fixture("beir"), "test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    ds.write(tmp.path(), "test").unwrap();
    assert_eq!(beir::BeirDataset::load(tmp.path(), "test").unwrap(), ds);
    // BEIR's loader maps a missing title to None, which its models cannot concatenate.
    let corpus = std::fs::read_to_string(tmp.path().join("corpus.jsonl")).unwrap();
    assert!(corpus.lines().all(|l| l.contains("\"title\":")), "{corpus}");
    let qrels = std::fs::read_to_string(tmp.path().join("qrels/test.tsv")).unwrap();
    assert!(qrels.starts_with("query-id\tcorpus-id\tscore\n"), "{qrels}");
}

#[test]
fn beir_reads_gzip_and_writes_gzip() {
    let ds = beir::BeirDataset::load(&fixture("beir"), "test").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    beir::write_corpus(&tmp.path().join("corpus.jsonl.gz"), &ds.corpus).unwrap();
    beir::write_queries(&tmp.path().join("queries.jsonl.gz"), &ds.queries).unwrap();
    beir::write_qrels(&tmp.path().join("qrels/test.tsv.gz"), &ds.qrels).unwrap();
    let raw = std::fs::read(tmp.path().join("corpus.jsonl.gz")).unwrap();
    assert_eq!(&raw[..2], &[0x1f, 0x8b], "a .gz target is compressed");
    assert_eq!(beir::BeirDataset::load(tmp.path(), "test").unwrap(), ds);
}

#[test]
fn corpus_streams_lazily_and_stops_at_the_first_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..200_000 {
        body.push_str(&format!(
            "{{\"_id\": \"d{i}\", \"title\": \"\", \"text\": \"passage {i}\"}}\n"
        ));
    }
    body.push_str("{\"_id\": \"broken\"\n");
    let path = put(tmp.path(), "corpus.jsonl.gz", gzip(body.as_bytes()));
    // Ten documents come out without the reader reaching the broken last line.
    let first: Vec<Document> = beir::read_corpus(&path)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first[9].id, "d9");
    let err = first_err(beir::read_corpus(&path).unwrap());
    assert_eq!(err.line, Some(200_001));
}

#[test]
fn duplicate_corpus_id_names_both_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\", \"text\": \"y\"}\n\n{\"_id\": \"a\", \"text\": \"z\"}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!(e.path, p);
    assert_eq!(e.line, Some(4));
    assert_eq!(e.field.as_deref(), Some("_id"));
    assert_eq!(e.message, "duplicate id `a` (first on line 1)");
}

#[test]
fn duplicate_numeric_and_string_query_ids_collide() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "queries.jsonl",
        "{\"_id\": 5, \"text\": \"x\"}\n{\"_id\": \"5\", \"text\": \"y\"}\n",
    );
    let e = first_err(beir::read_queries(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("_id")));
    assert_eq!(e.message, "duplicate id `5` (first on line 1)");
}

#[test]
fn missing_id_is_named_with_a_layout_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        "{\"_id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\", \"text\": \"y\"}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("_id")));
    assert_eq!(e.message, "missing field `_id`");
    assert!(e
        .hint
        .unwrap()
        .starts_with("lines look like {\"_id\": \"d1\""));
}

#[test]
fn empty_id_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "queries.jsonl",
        "{\"_id\": \"\", \"text\": \"x\"}\n",
    );
    let e = first_err(beir::read_queries(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("_id")));
    assert!(
        e.message
            .starts_with("invalid value: string \"\", expected a non-empty string or integer id"),
        "{}",
        e.message
    );
}

#[test]
fn wrong_type_names_the_field_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        "{\"_id\": \"a\", \"text\": [\"x\"]}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("text")));
    assert_eq!(
        e.message,
        "invalid type: sequence, expected a string (column 21)"
    );
}

#[test]
fn malformed_json_gives_the_column() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        "{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\" \"text\": \"y\"}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(2), None));
    assert_eq!(
        e.message,
        "malformed JSON: expected `,` or `}` at column 13"
    );
}

#[test]
fn pretty_printed_json_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        "{\n  \"_id\": \"a\",\n  \"text\": \"x\"\n}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!(e.line, Some(1));
    assert!(
        e.message
            .starts_with("malformed JSON: EOF while parsing an object"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap().contains("no pretty-printing"));
}

#[test]
fn non_utf8_names_the_line_and_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "corpus.jsonl",
        b"{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": \"b\", \"text\": \"Z\xfcrich\"}\n",
    );
    let e = first_err(beir::read_corpus(&p).unwrap());
    assert_eq!((e.path, e.line, e.field), (p, Some(2), None));
    assert_eq!(e.message, "byte 24 is not valid UTF-8 (0xfc)");
}

#[test]
fn empty_files_are_errors_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(tmp.path(), "empty", "\n \n");
    let msg = |e: Invalid| {
        assert_eq!((e.line, e.field.as_deref()), (None, None));
        e.message
    };
    assert_eq!(
        msg(first_err(beir::read_corpus(&p).unwrap())),
        "the file is empty"
    );
    assert_eq!(
        msg(first_err(beir::read_queries(&p).unwrap())),
        "the file is empty"
    );
    assert_eq!(
        msg(invalid(beir::read_qrels(&p).unwrap_err())),
        "the file is empty"
    );
    assert_eq!(
        msg(first_err(tevatron::read_train(&p).unwrap())),
        "the file is empty"
    );
    assert_eq!(
        msg(first_err(flag::read_flag(&p).unwrap())),
        "the file is empty"
    );
    assert_eq!(
        msg(first_err(msmarco::read_collection(&p).unwrap())),
        "the file is empty"
    );
    let header_only = put(tmp.path(), "h.tsv", "query-id\tcorpus-id\tscore\n");
    assert_eq!(
        msg(invalid(beir::read_qrels(&header_only).unwrap_err())),
        "the file has a header but no judgements"
    );
}

#[test]
fn qrels_naming_an_unknown_query_or_document_fail_on_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "q.tsv",
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td1\t1\nq1\td9\t1\n",
    );
    let queries: HashSet<&str> = ["q1"].into();
    let docs: HashSet<&str> = ["d1"].into();
    let e = invalid(beir::read_qrels_checked(&p, Some(&queries), Some(&docs)).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("query-id")));
    assert_eq!(e.message, "query `q2` is not in queries.jsonl");
    let queries: HashSet<&str> = ["q1", "q2"].into();
    let e = invalid(beir::read_qrels_checked(&p, Some(&queries), Some(&docs)).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (Some(4), Some("corpus-id")));
    assert_eq!(e.message, "document `d9` is not in corpus.jsonl");
    assert_eq!(
        beir::read_qrels(&p).unwrap()["q1"].len(),
        2,
        "unchecked reading accepts it"
    );
}

#[test]
fn dataset_load_checks_qrels_against_corpus_and_queries() {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["corpus.jsonl", "queries.jsonl"] {
        std::fs::copy(fixture("beir").join(f), tmp.path().join(f)).unwrap();
    }
    let qrels = put(tmp.path(), "qrels/test.tsv", "q1\td1\t1\nq404\td1\t1\n");
    let e = invalid(beir::BeirDataset::load(tmp.path(), "test").unwrap_err());
    assert_eq!(
        (e.path, e.line, e.field.as_deref()),
        (qrels, Some(2), Some("query-id"))
    );
    assert_eq!(e.message, "query `q404` is not in queries.jsonl");
}

#[test]
fn qrels_score_must_be_an_integer() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(tmp.path(), "q.tsv", "q1\td1\t1\nq1\td2\t0.5\n");
    let e = invalid(beir::read_qrels(&p).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("score")));
    assert_eq!(e.message, "score \"0.5\" is not an integer");
    // A first line that is not a header is judged like any other line.
    let p = put(tmp.path(), "r.tsv", "q1\td1\thigh\n");
    let e = invalid(beir::read_qrels(&p).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("score")));
}

#[test]
fn qrels_column_count_and_conflicting_grades_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(tmp.path(), "trec.tsv", "q1\t0\td1\t1\n");
    let e = invalid(beir::read_qrels(&p).unwrap_err());
    assert_eq!(
        (e.line, e.message.as_str()),
        (Some(1), "expected 3 tab-separated columns, found 4")
    );
    assert!(e.hint.unwrap().contains("TREC qrels"));
    let p = put(tmp.path(), "spaces.tsv", "q1 d1 1\n");
    assert!(invalid(beir::read_qrels(&p).unwrap_err())
        .hint
        .unwrap()
        .contains("tabs, not spaces"));
    let p = put(tmp.path(), "dup.tsv", "q1\td1\t1\nq1\td1\t1\nq1\td1\t2\n");
    let e = invalid(beir::read_qrels(&p).unwrap_err());
    assert_eq!((e.line, e.field.as_deref()), (Some(3), Some("score")));
    assert_eq!(e.message, "`q1` / `d1` is judged 2 here but 1 on line 1");
}

#[test]
fn a_missing_split_lists_the_splits_that_exist() {
    let e = invalid(beir::BeirDataset::load(&fixture("beir"), "train").unwrap_err());
    assert_eq!(e.path, fixture("beir").join("qrels/train.tsv"));
    assert_eq!(e.message, "no qrels for split `train`");
    assert_eq!(e.hint.as_deref(), Some("the splits here are: dev, test"));
    let e = invalid(beir::BeirDataset::load(&fixture("nowhere"), "test").unwrap_err());
    assert_eq!(e.message, "the dataset directory does not exist");
}

#[test]
fn writers_refuse_unreadable_ids_and_keep_the_old_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("corpus.jsonl");
    beir::write_corpus(&path, &[doc("a", "", "x")]).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = invalid(beir::write_corpus(&path, &[doc("b", "", "y"), doc("", "", "z")]).unwrap_err());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("_id"), "record 2 has id \"\": the id is empty")
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "no temporary file left behind"
    );
    let mut qrels = Qrels::new();
    qrels
        .entry("q1".into())
        .or_default()
        .insert("d\t1".into(), 1);
    let e = invalid(beir::write_qrels(&tmp.path().join("q.tsv"), &qrels).unwrap_err());
    assert_eq!(e.field.as_deref(), Some("corpus-id"));
    assert!(!tmp.path().join("q.tsv").exists());
}

// ------------------------------------------------------------ Tevatron, Mr.TyDi and MIRACL

#[test]
fn tevatron_round_trips_with_scores_sources_and_negative_queries() {
    let examples = tevatron::load_train(fixture("tevatron/train.jsonl")).unwrap();
    assert_eq!(examples.len(), 2);
    let neg = &examples[0].negative_passages[1];
    assert_eq!(
        (neg.score, neg.source.as_deref()),
        (Some(0.71), Some("dense"))
    );
    assert_eq!(
        neg.query.as_deref(),
        Some("which language has a garbage collector")
    );
    assert_eq!(examples[1].lang.as_deref(), Some("de"));
    let tmp = tempfile::tempdir().unwrap();
    for name in ["t.jsonl", "t.jsonl.gz"] {
        let out = tmp.path().join(name);
        assert_eq!(tevatron::write_train(&out, &examples).unwrap(), 2);
        assert_eq!(tevatron::load_train(&out).unwrap(), examples);
    }
}

#[test]
fn mrtydi_training_file_parses() {
    let ex = tevatron::load_train(fixture("mrtydi/train.jsonl")).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].query_id, "1");
    assert_eq!(ex[0].positive_passages[0].docid, "1001#0");
    assert_eq!(ex[0].negative_passages.len(), 2);
    assert!(ex[1].negative_passages.is_empty());
}

#[test]
fn miracl_training_file_parses_numeric_ids() {
    let ex = tevatron::load_train(fixture("miracl/train.jsonl")).unwrap();
    assert_eq!(ex[0].query_id, "42");
    assert_eq!(ex[0].positive_passages[0].title, "القاهرة");
    let neg = &ex[0].negative_passages[0];
    assert_eq!((neg.docid.as_str(), neg.title.as_str()), ("8", ""));
}

#[test]
fn example_without_positives_fails_on_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("mrtydi/train.jsonl")).unwrap();
    let p = put(
        tmp.path(),
        "t.jsonl",
        format!("{good}{{\"query_id\": \"9\", \"query\": \"q\", \"positive_passages\": [], \"negative_passages\": []}}\n"),
    );
    let e = first_err(tevatron::read_train(&p).unwrap());
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(3), Some("positive_passages"))
    );
    assert_eq!(e.message, "example `9` has no positive passage");
}

#[test]
fn nested_passage_errors_name_the_passage() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "t.jsonl",
        "{\"query_id\": \"1\", \"query\": \"q\", \"positive_passages\": [{\"docid\": \"a\", \"text\": \"x\"}], \
         \"negative_passages\": [{\"docid\": \"b\", \"text\": \"y\"}, {\"docid\": false, \"text\": \"z\"}]}\n",
    );
    let e = first_err(tevatron::read_train(&p).unwrap());
    assert_eq!(e.field.as_deref(), Some("negative_passages[1].docid"));
    assert!(
        e.message.starts_with("invalid type: boolean `false`"),
        "{}",
        e.message
    );
    let p = put(
        tmp.path(),
        "u.jsonl",
        "{\"query_id\": \"1\", \"query\": \"q\", \"positive_passages\": [{\"docid\": \"a\"}]}\n",
    );
    let e = first_err(tevatron::read_train(&p).unwrap());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("positive_passages[0].text"), "missing field `text`")
    );
}

#[test]
fn write_train_refuses_an_example_without_positives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut examples = tevatron::load_train(fixture("tevatron/train.jsonl")).unwrap();
    examples[1].positive_passages.clear();
    let out = tmp.path().join("t.jsonl");
    let e = invalid(tevatron::write_train(&out, &examples).unwrap_err());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (
            Some("positive_passages"),
            "example 2 (`q2`): no positive passage"
        )
    );
    assert!(!out.exists());
}

// ------------------------------------------------------------------- FlagEmbedding and CLPL

#[test]
fn flag_round_trips_and_ignores_unknown_fields() {
    let ex: Vec<_> = flag::read_flag(fixture("flag/train.jsonl"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].neg_scores, Some(vec![0.31, 0.12]));
    assert!(ex[0].prompt.as_deref().unwrap().starts_with("Represent"));
    assert!(ex[1].neg.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f.jsonl.gz");
    assert_eq!(flag::write_flag(&out, &ex).unwrap(), 2);
    let back: Vec<_> = flag::read_flag(&out).unwrap().map(Result::unwrap).collect();
    assert_eq!(back, ex);
}

#[test]
fn clpl_round_trips_through_the_training_layout() {
    let ex: Vec<_> = flag::read_clpl(fixture("flag/clpl.jsonl"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let train = ex[0].to_train();
    assert_eq!(train.query_id, flag::stable_id('q', &ex[0].query));
    assert_eq!(
        train.negative_passages[0].query.as_deref(),
        Some("which language gives direct control of memory")
    );
    assert_eq!(
        train.negative_passages[0].docid,
        flag::stable_id('d', "C gives the programmer direct control of memory.")
    );
    assert_eq!(flag::FlagExample::from_train(&train), ex[0]);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.jsonl");
    tevatron::write_train(&path, std::slice::from_ref(&train)).unwrap();
    assert_eq!(tevatron::load_train(&path).unwrap(), vec![train]);
}

#[test]
fn tevatron_to_flag_joins_titles_and_keeps_aligned_scores() {
    let examples = tevatron::load_train(fixture("tevatron/train.jsonl")).unwrap();
    let f = flag::FlagExample::from_train(&examples[0]);
    assert_eq!(f.pos, ["Rust (programming language) Rust is a systems programming language focused on memory safety."]);
    assert_eq!(f.neg[1], "Go has a garbage collector.");
    assert_eq!((f.pos_scores, f.neg_scores), (None, Some(vec![12.5, 0.71])));
    assert_eq!(f.neg_q, None, "only one of two negatives has a query");
}

#[test]
fn clpl_neg_q_must_align_with_neg() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "c.jsonl",
        "{\"query\": \"q\", \"pos\": [\"p\"], \"neg\": [\"a\", \"b\"], \"neg_q\": [\"qa\"]}\n",
    );
    let e = first_err(flag::read_clpl(&p).unwrap());
    assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("neg_q")));
    assert_eq!(e.message, "`neg_q` has 1 entries but `neg` has 2");
    let e = first_err(flag::read_flag(&p).unwrap());
    assert_eq!(
        e.field.as_deref(),
        Some("neg_q"),
        "a FlagEmbedding file with neg_q is held to it too"
    );
    let p = put(
        tmp.path(),
        "d.jsonl",
        "{\"query\": \"q\", \"pos\": [\"p\"], \"neg\": [\"a\"]}\n",
    );
    let e = first_err(flag::read_clpl(&p).unwrap());
    assert_eq!(
        (e.line, e.field.as_deref(), e.message.as_str()),
        (Some(1), Some("neg_q"), "missing field `neg_q`")
    );
    assert!(flag::read_flag(&p).unwrap().all(|r| r.is_ok()));
}

#[test]
fn flag_errors_for_missing_positives_and_misaligned_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let p = put(
        tmp.path(),
        "f.jsonl",
        "{\"query\": \"q\", \"pos\": [\"p\"]}\n{\"query\": \"q\", \"pos\": [], \"neg\": [\"n\"]}\n",
    );
    let e = first_err(flag::read_flag(&p).unwrap());
    assert_eq!(
        (e.line, e.field.as_deref(), e.message.as_str()),
        (Some(2), Some("pos"), "the example has no positive passage")
    );
    let p = put(
        tmp.path(),
        "g.jsonl",
        "{\"query\": \"q\", \"pos\": [\"p\"], \"pos_scores\": [1, 2]}\n",
    );
    let e = first_err(flag::read_flag(&p).unwrap());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (
            Some("pos_scores"),
            "`pos_scores` has 2 entries but `pos` has 1"
        )
    );
    let p = put(
        tmp.path(),
        "h.jsonl",
        "{\"query\": \"q\", \"pos\": \"p\"}\n",
    );
    let e = first_err(flag::read_flag(&p).unwrap());
    assert_eq!(e.field.as_deref(), Some("pos"));
    assert!(
        e.message
            .starts_with("invalid type: string \"p\", expected a sequence"),
        "{}",
        e.message
    );
    let bad = flag::FlagExample {
        query: "q".into(),
        pos: vec!["p".into()],
        neg: vec!["n".into()],
        ..Default::default()
    };
    let e = invalid(flag::write_clpl(&tmp.path().join("out.jsonl"), &[bad]).unwrap_err());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("neg_q"), "example 1: missing field `neg_q`")
    );
}

// ------------------------------------------------------------------------------- MS MARCO

#[test]
fn msmarco_round_trips() {
    let docs: Vec<Document> = msmarco::read_collection(fixture("msmarco/collection.tsv"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!((docs[2].id.as_str(), docs[2].text.as_str()), ("2", ""));
    let queries: Vec<Query> = msmarco::read_queries(fixture("msmarco/queries.tsv"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(queries[1].text, "größte Stadt der Schweiz");
    let tmp = tempfile::tempdir().unwrap();
    let (c, q) = (
        tmp.path().join("collection.tsv.gz"),
        tmp.path().join("queries.tsv"),
    );
    msmarco::write_collection(&c, &docs).unwrap();
    msmarco::write_queries(&q, &queries).unwrap();
    let docs2: Vec<_> = msmarco::read_collection(&c)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let queries2: Vec<_> = msmarco::read_queries(&q)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!((docs2, queries2), (docs, queries));
    assert_eq!(
        std::fs::read_to_string(&q).unwrap(),
        std::fs::read_to_string(fixture("msmarco/queries.tsv")).unwrap()
    );
}

#[test]
fn msmarco_column_count_and_id_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let check = |body: &str, line, field: Option<&str>, message: &str| {
        let p = put(tmp.path(), "c.tsv", body);
        let e = first_err(msmarco::read_collection(&p).unwrap());
        assert_eq!(
            (e.path, e.line, e.field.as_deref(), e.message.as_str()),
            (p, Some(line), field, message)
        );
    };
    check(
        "1\ta\n2\tb\tc\n",
        2,
        None,
        "expected 2 tab-separated columns, found 3",
    );
    check(
        "1\ta\njustonecolumn\n",
        2,
        None,
        "expected 2 tab-separated columns, found 1",
    );
    check(
        "1\ta\n1\tb\n",
        2,
        Some("pid"),
        "duplicate id `1` (first on line 1)",
    );
    check("\ta\n", 1, Some("pid"), "the id is empty");
    let p = put(tmp.path(), "q.tsv", "7 what is rust\n");
    let e = first_err(msmarco::read_queries(&p).unwrap());
    assert_eq!(
        e.hint.as_deref(),
        Some("columns must be separated by a tab, not spaces")
    );
}

#[test]
fn msmarco_writers_refuse_what_the_layout_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("collection.tsv");
    let e = invalid(
        msmarco::write_collection(&out, &[doc("1", "", "a"), doc("2", "T", "b")]).unwrap_err(),
    );
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (Some("title"), "record 2 (`2`) has a title")
    );
    let e = invalid(msmarco::write_collection(&out, &[doc("1", "", "a\tb")]).unwrap_err());
    assert_eq!(
        (e.field.as_deref(), e.message.as_str()),
        (
            Some("text"),
            "record 1 (`1`): the text contains a tab or a line break"
        )
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------------- the generic reader

#[test]
fn generic_jsonl_round_trips_through_gzip() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        k: String,
        v: BTreeMap<String, f64>,
    }
    let rows: Vec<Row> = (0..3)
        .map(|i| Row {
            k: format!("r{i}"),
            v: [("x".to_string(), i as f64)].into(),
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rows.jsonl.gz");
    assert_eq!(jsonl::write_jsonl(&path, &rows).unwrap(), 3);
    let back: Vec<(usize, Row)> = jsonl::read_jsonl(&path)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(back.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(back.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), rows);
}

#[test]
fn readers_outlive_the_path_they_were_opened_with_and_move_across_threads() {
    let docs = {
        let path = fixture("beir/corpus.jsonl");
        beir::read_corpus(&path).unwrap()
    };
    let examples = {
        let path = fixture("mrtydi/train.jsonl");
        tevatron::read_train(&path).unwrap()
    };
    let handle = std::thread::spawn(move || (docs.count(), examples.count()));
    assert_eq!(handle.join().unwrap(), (4, 2));
}
