//! TREC qrels (`qid 0 docid rel`) and run (`qid Q0 docid rank score tag`) files, read the way
//! trec_eval reads them, so a file that trec_eval refuses is refused here with a line number.
//!
//! Choices, each matching trec_eval 9.x:
//! - Fields are separated by any run of spaces or tabs; a qrels line has exactly 4 fields and
//!   a run line exactly 6.
//! - The run's `Q0`, `rank` and `tag` columns do not affect evaluation (trec_eval re-ranks by
//!   score), but `rank` must be an integer: a non-integer there almost always means the score
//!   and rank columns were swapped.
//! - A document listed twice for one query is an error in both files. trec_eval stops with
//!   "duplicate docs"; pytrec_eval cannot see duplicates because it takes Python dicts (where
//!   the last value silently wins). Refusing is the only choice that never changes a score
//!   without saying so.
//! - A NaN score is an error (trec_eval's ordering is undefined for it); `inf` is accepted.
//! - The BEIR qrels TSV (`query-id corpus-id score`, 3 columns) is a different format and is
//!   refused with a hint to read it with [`crate::beir`].

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::lines::Lines;
use crate::types::{Qrels, Run};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;

const QRELS_COLUMNS: &str = "qid 0 docid rel";
const RUN_COLUMNS: &str = "qid Q0 docid rank score tag";

/// Reads a TREC qrels file (plain or gzip) into `qid -> docid -> grade`.
pub fn read_qrels(path: impl AsRef<Path>) -> Result<Qrels> {
    let path = path.as_ref();
    let mut qrels = Qrels::new();
    for item in Lines::open(path)?.non_empty() {
        let (n, line) = item?;
        let mut fields = [""; 4];
        let count = split_fields(&line, &mut fields);
        if count != 4 {
            return Err(qrels_shape_error(path, n, &line, count));
        }
        let [qid, _, docid, rel] = fields;
        let grade: i32 = rel.parse().map_err(|_| {
            DataError::invalid(path, format!("`{rel}` is not an integer relevance grade"))
                .at_line(n)
                .field("rel")
                .hint(format!(
                    "a qrels line is `{QRELS_COLUMNS}`, e.g. `q1 0 d7 2`"
                ))
        })?;
        let judged = qrels.entry(qid.to_owned()).or_default();
        if judged.insert(docid.to_owned(), grade).is_some() {
            return Err(DataError::invalid(
                path,
                format!("query `{qid}` judges document `{docid}` twice"),
            )
            .at_line(n)
            .field("docid")
            .hint("trec_eval refuses duplicate judgements; keep one line per (qid, docid)"));
        }
    }
    Ok(qrels)
}

fn qrels_shape_error(path: &Path, n: usize, line: &str, count: usize) -> DataError {
    let beir_header =
        line.split_whitespace().collect::<Vec<_>>() == ["query-id", "corpus-id", "score"];
    let err = DataError::invalid(
        path,
        format!("expected 4 columns ({QRELS_COLUMNS}), found {count}"),
    )
    .at_line(n);
    if beir_header || count == 3 {
        err.hint(
            "this looks like a BEIR qrels TSV (`query-id corpus-id score`); read it with \
             polydense_data::beir, or convert it to TREC with \
             `awk 'NR>1{print $1, 0, $2, $3}' FILE`",
        )
    } else if count == 6 {
        err.hint("this looks like a TREC run (`qid Q0 docid rank score tag`); pass it as the run")
    } else {
        err.hint(format!(
            "a qrels line is `{QRELS_COLUMNS}`, e.g. `q1 0 d7 2`"
        ))
    }
}

/// Writes qrels as `qid 0 docid rel` lines in id order, atomically.
pub fn write_qrels(path: impl AsRef<Path>, qrels: &Qrels) -> Result<()> {
    let path = path.as_ref();
    for (qid, docs) in qrels {
        check_id(path, qid, "qid")?;
        for docid in docs.keys() {
            check_id(path, docid, "docid")?;
        }
    }
    write_atomic(path, |w| {
        for (qid, docs) in qrels {
            for (docid, grade) in docs {
                writeln!(w, "{qid} 0 {docid} {grade}")?;
            }
        }
        Ok(())
    })
}

/// How [`read_run_with`] validates a run beyond its syntax.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// When set, a query id outside this set is an error; catches a run made for another
    /// dataset or split before it silently evaluates to nothing.
    pub known_qids: Option<BTreeSet<String>>,
    /// What `known_qids` came from (for example "qrels" or "queries"), named in the error.
    pub known_from: String,
}

impl RunOptions {
    /// Requires every query of the run to be one of `qids`, which came from `from`.
    pub fn known_qids(qids: impl IntoIterator<Item = String>, from: impl Into<String>) -> Self {
        RunOptions {
            known_qids: Some(qids.into_iter().collect()),
            known_from: from.into(),
        }
    }
}

/// Reads a TREC run file (plain or gzip) into `qid -> [(docid, score)]`, in file order.
pub fn read_run(path: impl AsRef<Path>) -> Result<Run> {
    read_run_with(path, &RunOptions::default())
}

/// Reads a TREC run file, applying the checks in `opts`.
pub fn read_run_with(path: impl AsRef<Path>, opts: &RunOptions) -> Result<Run> {
    let path = path.as_ref();
    let mut run = Run::new();
    // Runs list one query's documents together, so remembering the last query avoids a map
    // lookup (and a key allocation) per line.
    let mut current: Option<(String, Vec<(String, f64)>)> = None;
    for item in Lines::open(path)?.non_empty() {
        let (n, line) = item?;
        let mut fields = [""; 6];
        let count = split_fields(&line, &mut fields);
        if count != 6 {
            return Err(run_shape_error(path, n, count));
        }
        let [qid, _, docid, rank, score, _] = fields;
        if rank.parse::<i64>().is_err() {
            return Err(
                DataError::invalid(path, format!("`{rank}` is not an integer rank"))
                    .at_line(n)
                    .field("rank")
                    .hint(format!(
                        "a run line is `{RUN_COLUMNS}`; are the rank and score columns swapped?"
                    )),
            );
        }
        let score = parse_score(path, n, score)?;
        if current.as_ref().is_none_or(|(q, _)| q != qid) {
            if let Some(known) = &opts.known_qids {
                if !known.contains(qid) {
                    return Err(unknown_query(path, n, qid, &opts.known_from));
                }
            }
            if let Some((q, docs)) = current.take() {
                run.insert(q, docs);
            }
            // A query seen earlier in a separate block continues its list.
            let docs = run.remove(qid).unwrap_or_default();
            current = Some((qid.to_owned(), docs));
        }
        let (_, docs) = current.as_mut().expect("set above");
        docs.push((docid.to_owned(), score));
    }
    if let Some((q, docs)) = current {
        run.insert(q, docs);
    }
    check_unique_docs(path, &run)?;
    Ok(run)
}

fn run_shape_error(path: &Path, n: usize, count: usize) -> DataError {
    let err = DataError::invalid(
        path,
        format!("expected 6 columns ({RUN_COLUMNS}), found {count}"),
    )
    .at_line(n);
    match count {
        4 => err.hint("this looks like TREC qrels (`qid 0 docid rel`); pass it as the qrels"),
        3 => {
            err.hint("this looks like a BEIR qrels TSV; a run needs `qid Q0 docid rank score tag`")
        }
        _ => err.hint(format!(
            "a run line is `{RUN_COLUMNS}`, e.g. `q1 Q0 d7 1 12.5 bm25`"
        )),
    }
}

fn parse_score(path: &Path, n: usize, text: &str) -> Result<f64> {
    let bad = |msg: String| {
        DataError::invalid(path, msg)
            .at_line(n)
            .field("score")
            .hint(format!(
                "a run line is `{RUN_COLUMNS}`; the score is a decimal number"
            ))
    };
    let score: f64 = text
        .parse()
        .map_err(|_| bad(format!("`{text}` is not a number")))?;
    if score.is_nan() {
        return Err(bad("the score is NaN, which cannot be ranked".into()));
    }
    Ok(score)
}

fn unknown_query(path: &Path, n: usize, qid: &str, from: &str) -> DataError {
    let from = if from.is_empty() {
        "known queries"
    } else {
        from
    };
    DataError::invalid(path, format!("query `{qid}` is not in the {from}"))
        .at_line(n)
        .field("qid")
        .hint(format!(
            "the run and the {from} must come from the same dataset and split"
        ))
}

/// Finds a document listed twice for one query. Hashes are sorted rather than strings, so
/// the check costs a few nanoseconds per line; only a hash collision compares strings.
fn check_unique_docs(path: &Path, run: &Run) -> Result<()> {
    let hasher = std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default();
    let mut hashes: Vec<(u64, u32)> = Vec::new();
    for (qid, docs) in run {
        hashes.clear();
        hashes.extend(
            docs.iter()
                .enumerate()
                .map(|(i, (d, _))| (hasher.hash_one(d.as_str()), i as u32)),
        );
        hashes.sort_unstable();
        for pair in hashes.windows(2) {
            let (a, b) = (&docs[pair[0].1 as usize].0, &docs[pair[1].1 as usize].0);
            if pair[0].0 == pair[1].0 && a == b {
                return Err(duplicate_doc(path, qid, a));
            }
        }
    }
    Ok(())
}

/// Builds the duplicate-document error; re-reads the file (only on this error path) to name
/// both lines.
fn duplicate_doc(path: &Path, qid: &str, docid: &str) -> DataError {
    let mut lines = Vec::new();
    if let Ok(reader) = Lines::open(path) {
        for (n, line) in reader.flatten() {
            let mut fields = line.split_whitespace();
            if fields.next() == Some(qid) && fields.nth(1) == Some(docid) {
                lines.push(n);
                if lines.len() == 2 {
                    break;
                }
            }
        }
    }
    let err = DataError::invalid(
        path,
        format!(
            "query `{qid}` lists document `{docid}` twice{}",
            lines
                .first()
                .map(|l| format!(" (first on line {l})"))
                .unwrap_or_default()
        ),
    )
    .field("docid")
    .hint("trec_eval refuses duplicate documents in a run; keep one line per (qid, docid)");
    match lines.get(1) {
        Some(&second) => err.at_line(second),
        None => err,
    }
}

/// Writes a run as `qid Q0 docid rank score tag`, atomically. Documents are written in the
/// order trec_eval ranks them (score descending, then docid descending), with ranks 1..n, so
/// the rank column agrees with what any evaluator will compute.
pub fn write_run(path: impl AsRef<Path>, run: &Run, tag: &str) -> Result<()> {
    let path = path.as_ref();
    check_id(path, tag, "tag")?;
    let mut ranked: BTreeMap<&str, Vec<&(String, f64)>> = BTreeMap::new();
    for (qid, docs) in run {
        check_id(path, qid, "qid")?;
        for (docid, score) in docs {
            check_id(path, docid, "docid")?;
            if score.is_nan() {
                return Err(DataError::invalid(
                    path,
                    format!("query `{qid}` document `{docid}` has a NaN score"),
                )
                .field("score"));
            }
        }
        let mut order: Vec<&(String, f64)> = docs.iter().collect();
        order.sort_by(|a, b| {
            b.1.partial_cmp(&a.1)
                .expect("NaN rejected above")
                .then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
        });
        ranked.insert(qid, order);
    }
    write_atomic(path, |w| {
        for (qid, docs) in &ranked {
            for (rank, (docid, score)) in docs.iter().enumerate() {
                // `{}` prints the shortest text that parses back to the same f64.
                writeln!(w, "{qid} Q0 {docid} {} {score} {tag}", rank + 1)?;
            }
        }
        Ok(())
    })
}

/// Splits on spaces and tabs into `out`, returning how many fields the line has (which may
/// exceed `out.len()`; the extra fields are counted, not stored).
fn split_fields<'a>(line: &'a str, out: &mut [&'a str]) -> usize {
    let mut count = 0;
    for field in line.split_ascii_whitespace() {
        if let Some(slot) = out.get_mut(count) {
            *slot = field;
        }
        count += 1;
    }
    count
}

/// A whitespace-separated format cannot hold an empty id or one containing whitespace.
fn check_id(path: &Path, id: &str, field: &str) -> Result<()> {
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(DataError::invalid(
            path,
            format!("`{id}` cannot be written: TREC files are whitespace-separated"),
        )
        .field(field)
        .hint("use ids without spaces or tabs"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn invalid(err: DataError) -> crate::error::Invalid {
        err.as_invalid().expect("invalid-input error").clone()
    }

    #[test]
    fn reads_qrels_with_tabs_and_negative_grades() {
        let f = file("q1 0 d1 1\nq1\t0\td2\t-1\n\nq2 0 d9 3\n");
        let q = read_qrels(f.path()).unwrap();
        assert_eq!(q["q1"]["d1"], 1);
        assert_eq!(q["q1"]["d2"], -1);
        assert_eq!(q["q2"]["d9"], 3);
    }

    #[test]
    fn qrels_errors_name_line_and_field() {
        let e = invalid(read_qrels(file("q1 0 d1 1\nq1 0 d2 x\n").path()).unwrap_err());
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("rel")));
        let e = invalid(read_qrels(file("q1 0 d1\n").path()).unwrap_err());
        assert!(e.message.contains("found 3"), "{}", e.message);
        let e = invalid(read_qrels(file("q1 0 d1 1\nq1 0 d1 2\n").path()).unwrap_err());
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("twice"));
    }

    #[test]
    fn beir_tsv_is_refused_with_a_hint() {
        let e = invalid(
            read_qrels(file("query-id\tcorpus-id\tscore\nq1\td1\t1\n").path()).unwrap_err(),
        );
        assert_eq!(e.line, Some(1));
        assert!(e.hint.unwrap().contains("BEIR"));
    }

    #[test]
    fn empty_and_non_utf8_files_are_errors() {
        assert!(read_qrels(file("\n\n").path())
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"q1 Q0 d\xff 1 2.0 t\n").unwrap();
        let e = invalid(read_run(f.path()).unwrap_err());
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn reads_runs_and_merges_split_query_blocks() {
        let f = file("q1 Q0 a 1 2.5 t\nq2 Q0 b 1 1 t\nq1 Q0 c 2 -1e3 t\n");
        let run = read_run(f.path()).unwrap();
        assert_eq!(run["q1"], vec![("a".into(), 2.5), ("c".into(), -1000.0)]);
        assert_eq!(run["q2"], vec![("b".into(), 1.0)]);
    }

    #[test]
    fn run_errors_name_line_and_field() {
        let cases = [
            ("q1 Q0 a 1 2.5\n", None, "found 5"),
            ("q1 Q0 a 1 abc t\n", Some("score"), "not a number"),
            ("q1 Q0 a 1 NaN t\n", Some("score"), "NaN"),
            ("q1 Q0 a 2.5 1 t\n", Some("rank"), "integer rank"),
        ];
        for (text, field, msg) in cases {
            let e = invalid(read_run(file(&format!("q0 Q0 z 1 1 t\n{text}")).path()).unwrap_err());
            assert_eq!(e.line, Some(2), "{text}");
            assert_eq!(e.field.as_deref(), field, "{text}");
            assert!(e.message.contains(msg), "{text}: {}", e.message);
        }
    }

    #[test]
    fn duplicate_document_names_both_lines() {
        let f = file("q1 Q0 a 1 3 t\nq1 Q0 b 2 2 t\nq2 Q0 a 1 1 t\nq1 Q0 a 3 1 t\n");
        let e = invalid(read_run(f.path()).unwrap_err());
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("first on line 1"), "{}", e.message);
    }

    #[test]
    fn unknown_query_is_reported_with_its_source() {
        let f = file("q1 Q0 a 1 3 t\nq9 Q0 b 1 2 t\n");
        let opts = RunOptions::known_qids(["q1".to_string()], "qrels");
        let e = invalid(read_run_with(f.path(), &opts).unwrap_err());
        assert_eq!(e.line, Some(2));
        assert_eq!(e.message, "query `q9` is not in the qrels");
        assert!(e.hint.is_some());
    }

    #[test]
    fn writers_round_trip_and_rank_like_trec_eval() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new();
        run.insert(
            "q1".into(),
            vec![
                ("a".into(), 1.0),
                ("b".into(), 0.1 + 0.2),
                ("c".into(), 1.0),
            ],
        );
        let path = dir.path().join("run.trec.gz");
        write_run(&path, &run, "exp").unwrap();
        let text: Vec<String> = Lines::open(&path).unwrap().map(|l| l.unwrap().1).collect();
        assert_eq!(text[0], "q1 Q0 c 1 1 exp");
        assert_eq!(text[1], "q1 Q0 a 2 1 exp");
        assert_eq!(text[2], "q1 Q0 b 3 0.30000000000000004 exp");
        let back = read_run(&path).unwrap();
        assert_eq!(back["q1"][2], ("b".to_string(), 0.1 + 0.2));

        let mut qrels = Qrels::new();
        qrels.entry("q1".into()).or_default().insert("a".into(), 2);
        qrels.entry("q2".into()).or_default().insert("z".into(), -1);
        let qpath = dir.path().join("qrels.txt");
        write_qrels(&qpath, &qrels).unwrap();
        assert_eq!(read_qrels(&qpath).unwrap(), qrels);
    }

    #[test]
    fn writers_refuse_ids_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = Run::new();
        run.insert("q 1".into(), vec![("a".into(), 1.0)]);
        let path = dir.path().join("run.txt");
        assert!(write_run(&path, &run, "t").is_err());
        assert!(!path.exists());
    }
}
