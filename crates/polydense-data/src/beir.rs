//! BEIR datasets: `corpus.jsonl`, `queries.jsonl` and `qrels/{split}.tsv`, the layout every
//! public retrieval benchmark ships in and the one polydense writes its own datasets in.

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::jsonl::{check_id, de_id, de_null_as_empty, read_jsonl, write_jsonl_checked};
use crate::lines::Lines;
use crate::types::{Document, Qrels, Query};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

const CORPUS_LAYOUT: &str = r#"{"_id": "d1", "title": "...", "text": "...", "lang": "en"}"#;
const QUERIES_LAYOUT: &str = r#"{"_id": "q1", "text": "...", "lang": "en"}"#;
const QRELS_HEADER: &str = "query-id\tcorpus-id\tscore";

/// A BEIR dataset for one split, held in memory: what evaluation and training read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BeirDataset {
    pub corpus: Vec<Document>,
    /// Only the queries judged in the split's qrels, as BEIR's `GenericDataLoader` keeps them,
    /// so a metric never averages over queries that belong to another split.
    pub queries: Vec<Query>,
    pub qrels: Qrels,
}

impl BeirDataset {
    /// Reads `dir/corpus.jsonl`, `dir/queries.jsonl` and `dir/qrels/{split}.tsv` (each may
    /// also be gzipped with a `.gz` suffix) and checks that every judgement names a known
    /// query and document.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use polydense_data::beir::BeirDataset;
    /// let dir = tempfile::tempdir()?;
    /// std::fs::write(dir.path().join("corpus.jsonl"),
    ///     "{\"_id\": \"d1\", \"title\": \"Rust\", \"text\": \"A language.\"}\n\
    ///      {\"_id\": 2, \"title\": \"\", \"text\": \"Numeric ids are read as strings.\"}\n")?;
    /// std::fs::write(dir.path().join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"what is rust\"}\n")?;
    /// std::fs::create_dir(dir.path().join("qrels"))?;
    /// std::fs::write(dir.path().join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t1\n")?;
    ///
    /// let ds = BeirDataset::load(dir.path(), "test")?;
    /// assert_eq!(ds.corpus[1].id, "2");
    /// assert_eq!(ds.qrels["q1"]["d1"], 1);
    ///
    /// std::fs::write(dir.path().join("qrels/dev.tsv"), "q1\td9\t1\n")?;
    /// let err = BeirDataset::load(dir.path(), "dev").unwrap_err().to_string();
    /// assert!(err.ends_with("dev.tsv:1: field `corpus-id`: document `d9` is not in corpus.jsonl \
    ///     (hint: the qrels and the corpus come from different datasets or versions)"), "{err}");
    /// # Ok(()) }
    /// ```
    pub fn load(dir: &Path, split: &str) -> Result<Self> {
        let corpus_path = locate(dir, "corpus.jsonl")?;
        let queries_path = locate(dir, "queries.jsonl")?;
        let qrels_path = locate_qrels(dir, split)?;
        let corpus = load_corpus(&corpus_path)?;
        let queries = load_queries(&queries_path)?;
        let qrels = {
            let query_ids: HashSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
            let doc_ids: HashSet<&str> = corpus.iter().map(|d| d.id.as_str()).collect();
            read_qrels_checked(&qrels_path, Some(&query_ids), Some(&doc_ids))?
        };
        let queries = queries
            .into_iter()
            .filter(|q| qrels.contains_key(&q.id))
            .collect();
        Ok(BeirDataset {
            corpus,
            queries,
            qrels,
        })
    }

    /// Writes the dataset as a BEIR directory; each file is replaced atomically.
    pub fn write(&self, dir: &Path, split: &str) -> Result<()> {
        write_corpus(&dir.join("corpus.jsonl"), &self.corpus)?;
        write_queries(&dir.join("queries.jsonl"), &self.queries)?;
        write_qrels(&dir.join("qrels").join(format!("{split}.tsv")), &self.qrels)
    }
}

/// `dir/name`, or `dir/name.gz` when only the compressed file exists; the error says what a
/// BEIR directory must hold.
pub fn locate(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else if !dir.is_dir() {
        Err(
            DataError::invalid(dir, "the dataset directory does not exist")
                .hint("pass a BEIR directory holding corpus.jsonl, queries.jsonl and qrels/"),
        )
    } else {
        Err(DataError::invalid(plain, "the file does not exist")
            .hint("a BEIR directory holds corpus.jsonl, queries.jsonl and qrels/{split}.tsv"))
    }
}

/// The qrels file of `split`; when it is missing the error lists the splits that exist.
pub fn locate_qrels(dir: &Path, split: &str) -> Result<PathBuf> {
    let qrels_dir = dir.join("qrels");
    let name = format!("{split}.tsv");
    if qrels_dir.join(&name).is_file() || qrels_dir.join(format!("{name}.gz")).is_file() {
        return locate(&qrels_dir, &name);
    }
    let mut splits: Vec<String> = std::fs::read_dir(&qrels_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".tsv.gz")
                        .or_else(|| n.strip_suffix(".tsv"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    splits.sort();
    splits.dedup();
    let hint = if splits.is_empty() {
        "the dataset has no qrels/ directory with a {split}.tsv file".to_string()
    } else {
        format!("the splits here are: {}", splits.join(", "))
    };
    Err(DataError::invalid(
        qrels_dir.join(name),
        format!("no qrels for split `{split}`"),
    )
    .hint(hint))
}

/// A corpus line as public files write it: the id may be a number, the title may be null or
/// absent, and fields such as `metadata` are ignored.
#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id", deserialize_with = "de_id")]
    id: String,
    #[serde(default, deserialize_with = "de_null_as_empty")]
    title: String,
    text: String,
    #[serde(default)]
    lang: Option<String>,
}

/// A queries line as public files write it; `metadata` and other fields are ignored.
#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id", deserialize_with = "de_id")]
    id: String,
    text: String,
    #[serde(default)]
    lang: Option<String>,
}

/// Fails on the second occurrence of an id, naming the line of the first.
struct Unique {
    seen: HashMap<String, usize>,
}

impl Unique {
    fn new() -> Self {
        Unique {
            seen: HashMap::new(),
        }
    }

    fn check(&mut self, path: &Path, line: usize, id: &str) -> Result<()> {
        if let Some(first) = self.seen.get(id) {
            return Err(DataError::invalid(
                path,
                format!("duplicate id `{id}` (first on line {first})"),
            )
            .at_line(line)
            .field("_id")
            .hint("ids must be unique within a file; remove or rename one of the two lines"));
        }
        self.seen.insert(id.to_string(), line);
        Ok(())
    }
}

/// Streams a corpus.jsonl (plain or gzip) one document at a time, for corpora too large to
/// hold; duplicate ids are still detected (the reader keeps the ids, not the texts).
pub fn read_corpus(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<Document>> + Send + 'static> {
    let reader = read_jsonl::<CorpusLine>(path.as_ref())?.layout(CORPUS_LAYOUT);
    let path = reader.path().to_path_buf();
    let mut unique = Unique::new();
    Ok(reader.map(move |r| {
        let (line, d) = r?;
        unique.check(&path, line, &d.id)?;
        Ok(Document {
            id: d.id,
            title: d.title,
            text: d.text,
            lang: d.lang,
        })
    }))
}

/// Reads a whole corpus.jsonl into memory.
pub fn load_corpus(path: impl AsRef<Path>) -> Result<Vec<Document>> {
    read_corpus(path)?.collect()
}

/// Streams a queries.jsonl (plain or gzip) one query at a time, rejecting duplicate ids.
pub fn read_queries(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<Query>> + Send + 'static> {
    let reader = read_jsonl::<QueryLine>(path.as_ref())?.layout(QUERIES_LAYOUT);
    let path = reader.path().to_path_buf();
    let mut unique = Unique::new();
    Ok(reader.map(move |r| {
        let (line, q) = r?;
        unique.check(&path, line, &q.id)?;
        Ok(Query {
            id: q.id,
            text: q.text,
            lang: q.lang,
        })
    }))
}

/// Reads a whole queries.jsonl into memory.
pub fn load_queries(path: impl AsRef<Path>) -> Result<Vec<Query>> {
    read_queries(path)?.collect()
}

/// How a corpus line is written. Unlike `Document`'s own serialisation it always writes
/// `title`: BEIR's `GenericDataLoader` turns a missing title into `None`, and its
/// sentence-transformers model then fails concatenating `None` with the text.
#[derive(Serialize)]
struct CorpusOut<'a> {
    #[serde(rename = "_id")]
    id: &'a str,
    title: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'a str>,
}

/// Writes a corpus.jsonl atomically (gzip for a `.gz` path); an id that could not be read
/// back is an error naming the document's position, and leaves the target untouched.
pub fn write_corpus<'a>(path: &Path, docs: impl IntoIterator<Item = &'a Document>) -> Result<()> {
    write_jsonl_checked(path, docs, |i, d| {
        check_id(&d.id).map_err(|why| bad_output_id(path, i, why, &d.id))?;
        Ok(CorpusOut {
            id: &d.id,
            title: &d.title,
            text: &d.text,
            lang: d.lang.as_deref(),
        })
    })
    .map(drop)
}

/// Writes a queries.jsonl atomically (gzip for a `.gz` path).
pub fn write_queries<'a>(path: &Path, qs: impl IntoIterator<Item = &'a Query>) -> Result<()> {
    write_jsonl_checked(path, qs, |i, q| {
        check_id(&q.id).map_err(|why| bad_output_id(path, i, why, &q.id))?;
        Ok(q)
    })
    .map(drop)
}

fn bad_output_id(path: &Path, index: usize, why: &str, id: &str) -> DataError {
    DataError::invalid(path, format!("record {} has id {id:?}: {why}", index + 1))
        .field("_id")
        .hint("give every record a non-empty id without tabs or line breaks")
}

/// Writes `qrels/{split}.tsv` atomically with BEIR's header; ids with a tab or a line break
/// are refused, since they would shift the columns.
pub fn write_qrels(path: &Path, qrels: &Qrels) -> Result<()> {
    for (qid, docs) in qrels {
        if let Err(why) = check_id(qid) {
            return Err(
                DataError::invalid(path, format!("query id {qid:?}: {why}")).field("query-id")
            );
        }
        if let Some((did, why)) = docs.keys().find_map(|d| check_id(d).err().map(|w| (d, w))) {
            return Err(DataError::invalid(
                path,
                format!("document id {did:?} (query `{qid}`): {why}"),
            )
            .field("corpus-id"));
        }
    }
    write_atomic(path, |w| {
        writeln!(w, "{QRELS_HEADER}")?;
        for (qid, docs) in qrels {
            for (did, grade) in docs {
                writeln!(w, "{qid}\t{did}\t{grade}")?;
            }
        }
        Ok(())
    })
}

/// Reads a BEIR qrels TSV (`query-id`, `corpus-id`, `score`; the header line is optional).
pub fn read_qrels(path: impl AsRef<Path>) -> Result<Qrels> {
    read_qrels_checked(path, None, None)
}

/// Reads a BEIR qrels TSV and, when the id sets are given, fails on the first line that judges
/// a query or document that does not exist; repeating a judgement is allowed only with the
/// same grade.
pub fn read_qrels_checked(
    path: impl AsRef<Path>,
    queries: Option<&HashSet<&str>>,
    docs: Option<&HashSet<&str>>,
) -> Result<Qrels> {
    let path = path.as_ref();
    let mut qrels = Qrels::new();
    let mut first_seen: HashMap<(String, String), usize> = HashMap::new();
    let mut judged = 0usize;
    let mut first_line = true;
    for item in Lines::open(path)?.non_empty() {
        let (line_no, line) = item?;
        let is_first = std::mem::replace(&mut first_line, false);
        let cols: Vec<&str> = line.split('\t').collect();
        if is_first && looks_like_header(&cols) {
            continue;
        }
        let err = |msg: String| DataError::invalid(path, msg).at_line(line_no);
        if cols.len() != 3 {
            let hint = if cols.len() == 4 {
                "this looks like a TREC qrels file (`qid 0 docid grade`); read it with trec::read_qrels"
            } else if cols.len() == 1 && line.split_whitespace().count() >= 3 {
                "columns must be separated by tabs, not spaces"
            } else {
                "BEIR qrels lines are `query-id<TAB>corpus-id<TAB>score`"
            };
            return Err(err(format!(
                "expected 3 tab-separated columns, found {}",
                cols.len()
            ))
            .hint(hint));
        }
        let (qid, did, score) = (cols[0], cols[1], cols[2]);
        if let Err(why) = check_id(qid) {
            return Err(err(why.to_string()).field("query-id"));
        }
        if let Err(why) = check_id(did) {
            return Err(err(why.to_string()).field("corpus-id"));
        }
        let grade: i32 = score.trim().parse().map_err(|_| {
            err(format!("score {score:?} is not an integer"))
                .field("score")
                .hint("BEIR relevance grades are integers such as 0, 1 or 2")
        })?;
        if queries.is_some_and(|known| !known.contains(qid)) {
            return Err(err(format!("query `{qid}` is not in queries.jsonl"))
                .field("query-id")
                .hint("the qrels and the queries come from different datasets or versions"));
        }
        if docs.is_some_and(|known| !known.contains(did)) {
            return Err(err(format!("document `{did}` is not in corpus.jsonl"))
                .field("corpus-id")
                .hint("the qrels and the corpus come from different datasets or versions"));
        }
        let slot = qrels.entry(qid.to_string()).or_default();
        match slot.get(did) {
            Some(&old) if old != grade => {
                let first = first_seen[&(qid.to_string(), did.to_string())];
                return Err(err(format!(
                    "`{qid}` / `{did}` is judged {grade} here but {old} on line {first}"
                ))
                .field("score")
                .hint("keep one judgement per query and document"));
            }
            Some(_) => {}
            None => {
                slot.insert(did.to_string(), grade);
                first_seen.insert((qid.to_string(), did.to_string()), line_no);
                judged += 1;
            }
        }
    }
    if judged == 0 {
        return Err(
            DataError::invalid(path, "the file has a header but no judgements")
                .hint("check that the step that writes it finished"),
        );
    }
    Ok(qrels)
}

/// A first line whose score is not a number and whose first column names the query column
/// (`query-id`, `query_id`, `qid`...), as BEIR and its derivatives write it.
fn looks_like_header(cols: &[&str]) -> bool {
    let first = cols[0].trim().to_ascii_lowercase();
    cols.len() >= 2
        && cols
            .last()
            .is_some_and(|s| s.trim().parse::<f64>().is_err())
        && (first.contains("query") || first == "qid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_detection_needs_a_query_column_and_a_non_numeric_score() {
        assert!(looks_like_header(&["query-id", "corpus-id", "score"]));
        assert!(looks_like_header(&["qid", "docid", "rel"]));
        assert!(!looks_like_header(&["q1", "d1", "1"]));
        assert!(!looks_like_header(&["q1", "d1", "x"]));
        assert!(!looks_like_header(&["query-7", "d1", "1"]));
    }
}
