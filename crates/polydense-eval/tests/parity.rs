//! Parity with pytrec_eval: every metric of every query, and the means, on fixtures made by
//! scripts/make_eval_fixtures.py (ties, float32-only ties, signed zeros, graded and negative
//! relevance, non-ASCII docids, missing queries, a query with no relevant document).

use polydense_data::trec::{read_qrels, read_run, read_run_with, RunOptions};
use polydense_eval::{
    evaluate, evaluate_run_file, parse_metrics, read_query_langs, EvalOptions, MissingQueries,
    Report,
};
use serde_json::Value;
use std::collections::BTreeMap;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/eval");
const TOL: f64 = 1e-9;

fn expected() -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn metric_names(exp: &Value) -> Vec<String> {
    exp["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

fn assert_close(got: f64, want: &Value, what: &str) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no reference"));
    assert!(
        (got - want).abs() <= TOL,
        "{what}: polydense {got} vs pytrec_eval {want}"
    );
}

#[test]
fn every_query_and_metric_matches_pytrec_eval() {
    let exp = expected();
    let names = metric_names(&exp);
    let metrics = parse_metrics(&names.join(",")).unwrap();
    // Canonical names round-trip, so report keys equal the reference keys.
    let canon: Vec<String> = metrics.iter().map(|m| m.to_string()).collect();
    assert_eq!(canon, names);

    let qrels = read_qrels(format!("{DIR}/qrels.txt")).unwrap();
    let run = read_run(format!("{DIR}/run.txt")).unwrap();
    let scores = evaluate(&qrels, &run, &metrics, &EvalOptions::default()).unwrap();

    let want_queries = exp["queries"].as_object().unwrap();
    let got_qids: Vec<&String> = scores.values.keys().collect();
    let want_qids: Vec<&String> = want_queries.keys().collect();
    assert_eq!(got_qids, want_qids, "evaluated query sets differ");
    let mut checked = 0;
    for (qid, row) in &scores.values {
        for (i, name) in names.iter().enumerate() {
            assert_close(row[i], &want_queries[qid][name], &format!("{qid} {name}"));
            checked += 1;
        }
    }
    assert_eq!(checked, 60 * 32);

    // Scoring straight from the file gives the same numbers.
    let streamed = evaluate_run_file(
        &qrels,
        format!("{DIR}/run.txt"),
        &metrics,
        &EvalOptions::default(),
    )
    .unwrap();
    assert_eq!(streamed.scores, scores);

    let report = Report::new(&scores, None);
    assert_eq!(
        report.num_queries.overall as u64,
        exp["num_queries"].as_u64().unwrap()
    );
    for name in &names {
        assert_close(
            report.overall.get(name).unwrap(),
            &exp["means"][name],
            &format!("mean {name}"),
        );
    }
}

#[test]
fn missing_queries_as_zero_match_trec_eval_c() {
    let exp = expected();
    let names = metric_names(&exp);
    let metrics = parse_metrics(&names.join(",")).unwrap();
    let qrels = read_qrels(format!("{DIR}/qrels.txt")).unwrap();
    let run = read_run(format!("{DIR}/run.txt")).unwrap();
    let opts = EvalOptions {
        missing: MissingQueries::Zero,
    };
    let report = Report::new(&evaluate(&qrels, &run, &metrics, &opts).unwrap(), None);
    assert_eq!(
        report.num_queries.overall as u64,
        exp["num_queries_missing_as_zero"].as_u64().unwrap()
    );
    for name in &names {
        assert_close(
            report.overall.get(name).unwrap(),
            &exp["means_missing_as_zero"][name],
            &format!("mean (missing as 0) {name}"),
        );
    }
}

#[test]
fn per_language_means_match() {
    let exp = expected();
    let names = metric_names(&exp);
    let metrics = parse_metrics(&names.join(",")).unwrap();
    let qrels = read_qrels(format!("{DIR}/qrels.txt")).unwrap();
    let run = read_run(format!("{DIR}/run.txt")).unwrap();
    let langs: BTreeMap<String, String> = read_query_langs(format!("{DIR}/queries.jsonl")).unwrap();
    let scores = evaluate(&qrels, &run, &metrics, &EvalOptions::default()).unwrap();
    let report = Report::new(&scores, Some(&langs));
    let want = exp["per_lang"].as_object().unwrap();
    assert_eq!(
        report.per_lang.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (lang, values) in &report.per_lang {
        assert_eq!(
            report.num_queries.per_lang[lang] as u64,
            exp["num_queries_per_lang"][lang].as_u64().unwrap()
        );
        for name in &names {
            assert_close(
                values.get(name).unwrap(),
                &want[lang][name],
                &format!("{lang} {name}"),
            );
        }
    }
}

#[test]
fn run_from_another_split_is_caught_when_reading() {
    let qrels = read_qrels(format!("{DIR}/qrels.txt")).unwrap();
    let opts = RunOptions::known_qids(qrels.keys().cloned(), "qrels");
    let err = read_run_with(format!("{DIR}/run.txt"), &opts).unwrap_err();
    // q950 is in the run but not judged.
    assert!(
        err.to_string().contains("query `q950` is not in the qrels"),
        "{err}"
    );
}
