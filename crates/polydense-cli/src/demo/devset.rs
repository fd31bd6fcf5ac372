//! The demo's dev set: the dev queries over only the dev articles' paragraphs. Encoding the
//! whole pooled corpus at every dev evaluation would cost more than the training steps on two
//! cores; the smaller pool keeps the dev curve cheap, and it still ranks checkpoints.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use polydense_data::beir::{write_corpus, write_qrels, write_queries, BeirDataset};

/// Writes `to` as a BEIR directory holding the dev split of `from`, its corpus cut to the
/// documents judged for some dev query.
pub fn write(from: &Path, to: &Path) -> Result<()> {
    let ds = BeirDataset::load(from, "dev")
        .with_context(|| format!("reading the dev split of {}", from.display()))?;
    let judged: BTreeSet<&str> = ds
        .qrels
        .values()
        .flat_map(|docs| docs.keys().map(String::as_str))
        .collect();
    let corpus: Vec<_> = ds
        .corpus
        .iter()
        .filter(|d| judged.contains(d.id.as_str()))
        .collect();
    if corpus.is_empty() || ds.queries.is_empty() {
        bail!("{} has no judged dev queries", from.display());
    }
    std::fs::create_dir_all(to.join("qrels"))?;
    write_corpus(&to.join("corpus.jsonl"), corpus)?;
    write_queries(&to.join("queries.jsonl"), &ds.queries)?;
    write_qrels(&to.join("qrels/dev.tsv"), &ds.qrels)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_data::{Document, Query};

    #[test]
    fn keeps_only_the_judged_documents_and_the_dev_queries() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("all");
        std::fs::create_dir_all(from.join("qrels")).unwrap();
        let doc = |id: &str| Document {
            id: id.into(),
            title: String::new(),
            text: format!("text {id}"),
            lang: Some("en".into()),
        };
        let query = |id: &str| Query {
            id: id.into(),
            text: format!("question {id}"),
            lang: Some("en".into()),
        };
        write_corpus(
            &from.join("corpus.jsonl"),
            &[doc("d1"), doc("d2"), doc("d3")],
        )
        .unwrap();
        write_queries(&from.join("queries.jsonl"), &[query("q1"), query("q2")]).unwrap();
        let mut dev = polydense_data::Qrels::new();
        dev.entry("q1".into()).or_default().insert("d2".into(), 1);
        write_qrels(&from.join("qrels/dev.tsv"), &dev).unwrap();

        let to = dir.path().join("dev");
        write(&from, &to).unwrap();
        let out = BeirDataset::load(&to, "dev").unwrap();
        assert_eq!(
            out.corpus.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["d2"]
        );
        assert_eq!(
            out.queries
                .iter()
                .map(|q| q.id.as_str())
                .collect::<Vec<_>>(),
            ["q1"]
        );
        assert_eq!(out.qrels, dev);
    }
}
