//! MS MARCO passage TSV files: `collection.tsv` (`pid<TAB>text`) and `queries.*.tsv`
//! (`qid<TAB>text`), the layout MS MARCO and many of its derivatives (mMARCO) ship in.

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::jsonl::check_id;
use crate::lines::Lines;
use crate::types::{Document, Query};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Streams `(line, id, text)` from a two-column TSV, checking the columns, the id and
/// uniqueness; `what` names the id column in messages (`pid` or `qid`).
fn read_pairs(
    path: &Path,
    what: &'static str,
) -> Result<impl Iterator<Item = Result<(String, String)>> + Send + 'static> {
    let lines = Lines::open(path)?;
    let path: PathBuf = lines.path().to_path_buf();
    let mut seen: HashMap<String, usize> = HashMap::new();
    Ok(lines.non_empty().map(move |item| {
        let (line_no, line) = item?;
        let err = |msg: String| DataError::invalid(&path, msg).at_line(line_no);
        let Some((id, text)) = line.split_once('\t') else {
            let hint = if line.split_whitespace().count() > 1 {
                "columns must be separated by a tab, not spaces"
            } else {
                "each line is `id<TAB>text`"
            };
            return Err(err("expected 2 tab-separated columns, found 1".into()).hint(hint));
        };
        if text.contains('\t') {
            let n = line.split('\t').count();
            return Err(err(format!("expected 2 tab-separated columns, found {n}"))
                .hint("each line is `id<TAB>text`; replace tabs inside the text with spaces"));
        }
        if let Err(why) = check_id(id) {
            return Err(err(why.to_string()).field(what));
        }
        if let Some(first) = seen.get(id) {
            return Err(err(format!("duplicate id `{id}` (first on line {first})"))
                .field(what)
                .hint("ids must be unique within a file; remove or rename one of the two lines"));
        }
        seen.insert(id.to_string(), line_no);
        Ok((id.to_string(), text.to_string()))
    }))
}

/// Streams an MS MARCO `collection.tsv` (plain or gzip) as documents without titles.
pub fn read_collection(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<Document>> + Send + 'static> {
    Ok(read_pairs(path.as_ref(), "pid")?.map(|r| {
        r.map(|(id, text)| Document {
            id,
            title: String::new(),
            text,
            lang: None,
        })
    }))
}

/// Streams an MS MARCO queries TSV (plain or gzip).
pub fn read_queries(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<Query>> + Send + 'static> {
    Ok(read_pairs(path.as_ref(), "qid")?.map(|r| {
        r.map(|(id, text)| Query {
            id,
            text,
            lang: None,
        })
    }))
}

/// Writes `id<TAB>text` lines atomically; a row the caller refused (`Err`) or that would not
/// read back the same (a tab or line break in its text, a bad id) stops the write and leaves
/// the target untouched.
fn write_pairs<'a>(
    path: &Path,
    what: &'static str,
    rows: impl IntoIterator<Item = Result<(&'a str, &'a str)>>,
) -> Result<()> {
    let mut refused = None;
    let written = write_atomic(path, |w| {
        for (i, row) in rows.into_iter().enumerate() {
            let (id, text) = match row {
                Ok(r) => r,
                Err(e) => {
                    refused = Some(e);
                    return Err(std::io::Error::other("record refused"));
                }
            };
            let problem = match check_id(id) {
                Err(why) => Some((what, why)),
                Ok(()) if text.contains(['\t', '\n', '\r']) => {
                    Some(("text", "the text contains a tab or a line break"))
                }
                Ok(()) => None,
            };
            if let Some((field, why)) = problem {
                refused = Some(
                    DataError::invalid(path, format!("record {} (`{id}`): {why}", i + 1))
                        .field(field)
                        .hint("the TSV layout cannot hold it; replace tabs and line breaks with spaces, or write BEIR jsonl"),
                );
                return Err(std::io::Error::other("record refused"));
            }
            writeln!(w, "{id}\t{text}")?;
        }
        Ok(())
    });
    match refused {
        Some(e) => Err(e),
        None => written,
    }
}

/// Writes an MS MARCO `collection.tsv`. The layout has no title column, so a document with a
/// title is refused rather than silently losing it; `lang` is not stored.
pub fn write_collection<'a>(
    path: &Path,
    docs: impl IntoIterator<Item = &'a Document>,
) -> Result<()> {
    let rows = docs.into_iter().enumerate().map(|(i, d)| {
        if d.title.is_empty() {
            Ok((d.id.as_str(), d.text.as_str()))
        } else {
            Err(
                DataError::invalid(path, format!("record {} (`{}`) has a title", i + 1, d.id))
                    .field("title")
                    .hint("collection.tsv has no title column; join the title into the text first, or write BEIR jsonl"),
            )
        }
    });
    write_pairs(path, "pid", rows)
}

/// Writes an MS MARCO queries TSV; `lang` is not stored.
pub fn write_queries<'a>(path: &Path, qs: impl IntoIterator<Item = &'a Query>) -> Result<()> {
    write_pairs(
        path,
        "qid",
        qs.into_iter().map(|q| Ok((q.id.as_str(), q.text.as_str()))),
    )
}
