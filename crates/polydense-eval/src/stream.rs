//! Evaluation straight from a run file, one query block at a time: a 10,000 x 1,000 run is
//! scored while it is read, in memory for a few queries instead of the whole file.

use crate::error::EvalError;
use crate::evaluate::{
    evaluate, score_query, Docids, EvalOptions, MissingQueries, PerQuery, Scratch,
};
use crate::metric::Metric;
use polydense_data::trec::{read_run, RunBlock, RunBlocks, RunLines};
use polydense_data::Qrels;
use rayon::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The scores of a run file, with the query ids it held (to report what was left out).
#[derive(Debug, Clone, PartialEq)]
pub struct FileScores {
    pub scores: PerQuery,
    /// Every query id of the run, judged or not.
    pub run_qids: BTreeSet<String>,
}

/// A query id with its scores, or `None` when the qrels do not judge it.
type Scored = (String, Option<Vec<f64>>);

/// Parses one query's lines and scores them (on a worker thread).
fn score_block(
    qrels: &Qrels,
    lines: Result<RunLines, polydense_data::DataError>,
    metrics: &[Metric],
) -> Result<Scored, EvalError> {
    // Unjudged queries are parsed too, so that a bad line is an error wherever it is.
    let RunBlock { qid, docs } = lines?.parse()?;
    let Some(judged) = qrels.get(&qid) else {
        return Ok((qid, None));
    };
    let mut out = vec![0.0; metrics.len()];
    SCRATCH
        .with_borrow_mut(|scratch| {
            // The reader has already refused repeated docids within a block.
            score_query(judged, &docs, Docids::Unique, metrics, scratch, &mut out)
        })
        .map_err(|e| e.at(&qid))?;
    Ok((qid, Some(out)))
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Reads and scores a TREC run file (plain or gzip) in one pass, with the same results as
/// [`polydense_data::trec::read_run`] followed by [`evaluate`].
///
/// One thread at a time cuts the file into query blocks; the blocks are parsed and scored on
/// all threads. Errors are reported as a sequential reader would meet them first. A run that lists a
/// query in two separate places is rare; it is then read whole and scored again.
pub fn evaluate_run_file(
    qrels: &Qrels,
    path: impl AsRef<Path>,
    metrics: &[Metric],
    opts: &EvalOptions,
) -> Result<FileScores, EvalError> {
    let path = path.as_ref();
    let results: Vec<(usize, Result<Scored, EvalError>)> = RunBlocks::open(path)?
        .enumerate()
        .par_bridge()
        .map(|(i, lines)| (i, score_block(qrels, lines, metrics)))
        .collect();
    // Report the error a sequential reader would have met first.
    let mut scored = Vec::with_capacity(results.len());
    let mut first_error: Option<(usize, EvalError)> = None;
    for (i, result) in results {
        match result {
            Ok(s) => scored.push(s),
            Err(e) if first_error.as_ref().is_none_or(|(j, _)| i < *j) => {
                first_error = Some((i, e))
            }
            Err(_) => {}
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }

    let mut run_qids = BTreeSet::new();
    let mut values = BTreeMap::new();
    for (qid, row) in scored {
        if !run_qids.insert(qid.clone()) {
            // The query came in separate blocks: score the merged lists instead.
            let run = read_run(path)?;
            let scores = evaluate(qrels, &run, metrics, opts)?;
            return Ok(FileScores {
                scores,
                run_qids: run.into_keys().collect(),
            });
        }
        if let Some(row) = row {
            values.insert(qid, row);
        }
    }
    if opts.missing == MissingQueries::Zero {
        for qid in qrels.keys() {
            values
                .entry(qid.clone())
                .or_insert_with(|| vec![0.0; metrics.len()]);
        }
    }
    Ok(FileScores {
        scores: PerQuery {
            metrics: metrics.to_vec(),
            values,
        },
        run_qids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::parse_metrics;
    use polydense_data::trec::read_qrels;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn streaming_equals_whole_file_evaluation_even_with_split_queries() {
        let qrels = read_qrels(file("q1 0 a 1\nq1 0 c 2\nq2 0 b 1\nq3 0 z 1\n").path()).unwrap();
        let metrics = parse_metrics("ndcg@2,map,mrr").unwrap();
        for text in [
            "q1 Q0 a 1 0.5 t\nq1 Q0 c 2 0.9 t\nq2 Q0 x 1 2 t\nq2 Q0 b 2 1 t\nq9 Q0 b 1 1 t\n",
            // q1 split in two blocks: the fallback must merge them.
            "q1 Q0 a 1 0.5 t\nq2 Q0 x 1 2 t\nq2 Q0 b 2 1 t\nq1 Q0 c 2 0.9 t\n",
        ] {
            let f = file(text);
            for missing in [MissingQueries::Skip, MissingQueries::Zero] {
                let opts = EvalOptions { missing };
                let streamed = evaluate_run_file(&qrels, f.path(), &metrics, &opts).unwrap();
                let run = read_run(f.path()).unwrap();
                let whole = evaluate(&qrels, &run, &metrics, &opts).unwrap();
                assert_eq!(streamed.scores, whole, "{text}");
                let qids: BTreeSet<String> = run.keys().cloned().collect();
                assert_eq!(streamed.run_qids, qids);
            }
        }
    }

    #[test]
    fn the_first_bad_line_in_the_file_is_reported() {
        let qrels = read_qrels(file("q1 0 a 1\n").path()).unwrap();
        let metrics = parse_metrics("map").unwrap();
        let mut text = String::new();
        for q in 0..400 {
            for d in 0..5 {
                // Lines 101 and 1501 are bad; the earlier one must be named every time.
                let score = if d == 0 && (q == 20 || q == 300) {
                    "x"
                } else {
                    "1.5"
                };
                text.push_str(&format!("q{q} Q0 d{d} {d} {score} t\n"));
            }
        }
        let f = file(&text);
        for _ in 0..5 {
            let e = evaluate_run_file(&qrels, f.path(), &metrics, &EvalOptions::default());
            let e = e.unwrap_err().to_string();
            assert!(e.contains(":101:"), "{e}");
        }
    }

    #[test]
    fn file_errors_pass_through() {
        let qrels = read_qrels(file("q1 0 a 1\n").path()).unwrap();
        let metrics = parse_metrics("map").unwrap();
        let f = file("q1 Q0 a 1 0.5 t\nq1 Q0 a 2 0.4 t\n");
        let e = evaluate_run_file(&qrels, f.path(), &metrics, &EvalOptions::default());
        assert!(e.unwrap_err().to_string().contains("twice"));
    }
}
