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
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

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
    let mut split = Vec::new();
    for lines in RunBlocks::open_with(path, opts.clone())? {
        let RunBlock { qid, docs } = lines?.parse()?;
        match run.get_mut(&qid) {
            // A query seen earlier in a separate block continues its list.
            Some(earlier) => {
                earlier.extend(docs);
                split.push(qid);
            }
            None => {
                run.insert(qid, docs);
            }
        }
    }
    let mut seen = SeenDocs::default();
    for qid in split {
        if let Some(docid) = first_duplicate(&run[&qid], &mut seen) {
            return Err(duplicate_doc(path, &qid, docid));
        }
    }
    Ok(run)
}

/// The documents of one query, as they appear together in a run file.
#[derive(Debug, Clone, PartialEq)]
pub struct RunBlock {
    pub qid: String,
    /// `(docid, score)` in file order; no docid repeats within a block.
    pub docs: Vec<(String, f64)>,
}

/// One query's lines, cut from the file but not yet parsed, so that callers can parse many
/// blocks in parallel while one thread reads the file.
#[derive(Debug, Clone)]
pub struct RunLines {
    path: Arc<Path>,
    qid: String,
    /// `(line number, text)` in file order.
    lines: Vec<(usize, String)>,
}

thread_local! {
    static SEEN: RefCell<SeenDocs> = RefCell::new(SeenDocs::default());
}

impl RunLines {
    /// The query these lines belong to.
    pub fn qid(&self) -> &str {
        &self.qid
    }

    /// The 1-based line number of the block's first line, which orders blocks as in the file.
    pub fn first_line(&self) -> usize {
        self.lines.first().map_or(0, |(n, _)| *n)
    }

    /// Parses and checks every line (columns, rank, score, repeated docids).
    pub fn parse(self) -> Result<RunBlock> {
        let path = &*self.path;
        let mut docs = Vec::with_capacity(self.lines.len());
        for (n, line) in &self.lines {
            let (_, docid, score) = parse_run_line(path, *n, line)?;
            docs.push((docid.to_owned(), score));
        }
        if let Some(docid) = SEEN.with_borrow_mut(|seen| first_duplicate(&docs, seen)) {
            return Err(duplicate_doc(path, &self.qid, docid));
        }
        Ok(RunBlock {
            qid: self.qid,
            docs,
        })
    }
}

/// Streams a run one query at a time, so that evaluating a large run needs memory for a few
/// queries rather than for the whole file.
///
/// Only the query id of each line is read here; [`RunLines::parse`] does the rest. Run files
/// normally list each query's documents together; if a query reappears later, it comes out as
/// a second block with the same query id (callers that need whole queries merge them, as
/// [`read_run_with`] does, which also checks repeated docids across the blocks).
pub struct RunBlocks {
    lines: crate::lines::NonEmptyLines,
    path: Arc<Path>,
    opts: RunOptions,
    /// The first line of the next block and its query id, read while ending the previous one.
    pending: Option<(String, (usize, String))>,
    failed: bool,
}

impl RunBlocks {
    /// Opens `path` (gzip or plain) for block-wise reading without extra checks.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, RunOptions::default())
    }

    /// Opens `path`, applying the checks in `opts` as blocks are read.
    pub fn open_with(path: impl AsRef<Path>, opts: RunOptions) -> Result<Self> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        Ok(RunBlocks {
            lines: Lines::open(&path)?.non_empty(),
            path,
            opts,
            pending: None,
            failed: false,
        })
    }

    fn next_block(&mut self) -> Option<Result<RunLines>> {
        let (qid, first) = match self.pending.take() {
            Some(pending) => pending,
            None => match self.lines.next()? {
                Ok((n, line)) => {
                    let qid = first_field(&line).to_owned();
                    if let Err(e) = check_known(&self.opts, &self.path, n, &qid) {
                        return Some(Err(e));
                    }
                    (qid, (n, line))
                }
                Err(e) => return Some(Err(e)),
            },
        };
        let mut lines = vec![first];
        for item in self.lines.by_ref() {
            let (n, line) = match item {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let q = first_field(&line);
            if q != qid {
                if let Err(e) = check_known(&self.opts, &self.path, n, q) {
                    return Some(Err(e));
                }
                self.pending = Some((q.to_owned(), (n, line)));
                break;
            }
            lines.push((n, line));
        }
        Some(Ok(RunLines {
            path: self.path.clone(),
            qid,
            lines,
        }))
    }
}

impl Iterator for RunBlocks {
    type Item = Result<RunLines>;

    /// The next query's lines; after the first error, iteration ends.
    fn next(&mut self) -> Option<Result<RunLines>> {
        if self.failed {
            return None;
        }
        let item = self.next_block();
        self.failed = matches!(item, Some(Err(_)));
        item
    }
}

/// The first whitespace-separated field (the query id in both TREC formats).
fn first_field(line: &str) -> &str {
    line.split_ascii_whitespace().next().unwrap_or("")
}

/// Parses one run line into `(qid, docid, score)`, borrowing from the line.
fn parse_run_line<'l>(path: &Path, n: usize, line: &'l str) -> Result<(&'l str, &'l str, f64)> {
    let mut fields = [""; 6];
    let count = split_fields(line, &mut fields);
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
    Ok((qid, docid, parse_score(path, n, score)?))
}

/// Refuses a query id outside the known set, when one is given.
fn check_known(opts: &RunOptions, path: &Path, n: usize, qid: &str) -> Result<()> {
    match &opts.known_qids {
        Some(known) if !known.contains(qid) => Err(unknown_query(path, n, qid, &opts.known_from)),
        _ => Ok(()),
    }
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

/// Docids seen in a block, keyed by their FNV-1a hash: the key is already a hash, so the
/// table uses it as is.
type SeenDocs = std::collections::HashMap<u64, u32, BuildHasherDefault<PreHashed>>;

/// A hasher that passes a precomputed 64-bit hash through.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h;
    }
}

/// A docid listed twice in `docs`, if any: one table probe per document, and strings are
/// compared only when hashes are equal.
fn first_duplicate<'d>(docs: &'d [(String, f64)], seen: &mut SeenDocs) -> Option<&'d str> {
    seen.clear();
    for (i, (docid, _)) in docs.iter().enumerate() {
        if let Some(&j) = seen.get(&fnv1a(docid.as_bytes())) {
            if docs[j as usize].0 == *docid {
                return Some(docid);
            }
            // Two different ids with one 64-bit hash: settle this block exactly.
            let mut exact = BTreeSet::new();
            return docs
                .iter()
                .map(|(d, _)| d.as_str())
                .find(|d| !exact.insert(*d));
        }
        seen.insert(fnv1a(docid.as_bytes()), i as u32);
    }
    None
}

/// FNV-1a, 64-bit. Written out because std offers only SipHash, which is several times
/// slower on short ids, and a hash that only pre-filters (every match is confirmed by
/// comparing strings) needs no protection against adversarial input.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
///
/// A byte loop rather than `split_ascii_whitespace`, which costs about twice as much on the
/// ten million lines of a large run; splitting only at ASCII bytes keeps every field valid
/// UTF-8.
fn split_fields<'a>(line: &'a str, out: &mut [&'a str]) -> usize {
    let bytes = line.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if let Some(slot) = out.get_mut(count) {
            *slot = &line[start..i];
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
    fn blocks_stream_queries_in_file_order() {
        let f = file("q1 Q0 a 1 3 t\nq1 Q0 b 2 2 t\n\nq2 Q0 a 1 1 t\nq1 Q0 c 1 0.5 t\n");
        let blocks: Vec<RunBlock> = RunBlocks::open(f.path())
            .unwrap()
            .map(|b| b.unwrap().parse().unwrap())
            .collect();
        let summary: Vec<(&str, usize)> = blocks
            .iter()
            .map(|b| (b.qid.as_str(), b.docs.len()))
            .collect();
        assert_eq!(summary, [("q1", 2), ("q2", 1), ("q1", 1)]);
        // The whole-run reader merges the split query.
        assert_eq!(read_run(f.path()).unwrap()["q1"].len(), 3);
    }

    #[test]
    fn duplicate_across_split_blocks_is_found() {
        let f = file("q1 Q0 a 1 3 t\nq2 Q0 a 1 1 t\nq1 Q0 a 2 0.5 t\n");
        let e = invalid(read_run(f.path()).unwrap_err());
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("first on line 1"), "{}", e.message);
    }

    #[test]
    fn blocks_stop_after_an_error_and_parse_reports_bad_lines() {
        let f = file("q1 Q0 a 1 3 t\nq1 Q0 a x 1 t\nq3 Q0 a 1 1 t\n");
        let blocks: Vec<_> = RunBlocks::open(f.path()).unwrap().collect();
        assert_eq!(blocks.len(), 2);
        let first = blocks.into_iter().next().unwrap().unwrap();
        assert_eq!((first.qid(), first.first_line()), ("q1", 1));
        let e = invalid(first.parse().unwrap_err());
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some("rank")));

        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"q1 Q0 a 1 3 t\nq2 Q0 \xff 1 3 t\nq3 Q0 a 1 1 t\n")
            .unwrap();
        let items: Vec<_> = RunBlocks::open(f.path()).unwrap().collect();
        assert_eq!(items.len(), 1, "reading stops at the undecodable line");
        assert_eq!(
            invalid(items.into_iter().next().unwrap().unwrap_err()).line,
            Some(2)
        );
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
