//! Qrels in either layout users bring: TREC (`qid 0 docid rel`) or BEIR TSV
//! (`query-id corpus-id score`, usually with that header). Sniffing the first line saves
//! users from converting BEIR's `qrels/test.tsv` before `polydense eval`.

use crate::error::Result;
use crate::lines::Lines;
use crate::{beir, trec, Qrels};
use std::path::Path;

/// The two qrels layouts polydense reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrelsFormat {
    /// Four whitespace-separated columns: `qid iter docid rel`.
    Trec,
    /// Three tab-separated columns, optionally under a `query-id corpus-id score` header.
    Beir,
}

/// Tells the layout from the first non-blank line: a BEIR header or three columns mean BEIR,
/// anything else is read as TREC (whose reader then reports what is wrong).
pub fn sniff(path: impl AsRef<Path>) -> Result<QrelsFormat> {
    for item in Lines::open(path.as_ref())? {
        let (_, line) = item?;
        if line.trim().is_empty() {
            continue;
        }
        let columns = line.split_whitespace().count();
        let header = line.trim_start().starts_with("query-id");
        return Ok(if header || columns == 3 {
            QrelsFormat::Beir
        } else {
            QrelsFormat::Trec
        });
    }
    Ok(QrelsFormat::Trec)
}

/// Reads TREC or BEIR qrels, whichever the file holds.
pub fn read_any(path: impl AsRef<Path>) -> Result<Qrels> {
    let path = path.as_ref();
    match sniff(path)? {
        QrelsFormat::Trec => trec::read_qrels(path),
        QrelsFormat::Beir => beir::read_qrels(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_both_layouts_to_the_same_qrels() {
        let dir = tempfile::tempdir().unwrap();
        let t = write(dir.path(), "q.trec", "q1 0 d1 1\nq1 0 d2 2\n");
        let b = write(
            dir.path(),
            "q.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n",
        );
        let nb = write(dir.path(), "nh.tsv", "q1\td1\t1\nq1\td2\t2\n");
        assert_eq!(sniff(&t).unwrap(), QrelsFormat::Trec);
        assert_eq!(sniff(&b).unwrap(), QrelsFormat::Beir);
        assert_eq!(sniff(&nb).unwrap(), QrelsFormat::Beir);
        let q = read_any(&t).unwrap();
        assert_eq!(q["q1"]["d2"], 2);
        assert_eq!(read_any(&b).unwrap(), q);
        assert_eq!(read_any(&nb).unwrap(), q);
    }

    #[test]
    fn malformed_lines_still_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.trec", "q1 0 d1 1\nq1 0 d2\n");
        let err = read_any(&bad).unwrap_err();
        assert_eq!(err.as_invalid().unwrap().line, Some(2), "{err}");
    }
}
