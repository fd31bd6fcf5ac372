//! FlagEmbedding training jsonl (`query, pos[], neg[]`, optional `pos_scores`, `neg_scores`,
//! `prompt`) and its CLPL extension (`neg_q[]`, the query each negative is a positive for,
//! aligned to `neg`; arXiv 2412.17364), with conversion to and from [`TrainExample`].
//!
//! FlagEmbedding passages are bare strings without ids. Converting them to a
//! [`TrainExample`] gives each passage the id [`stable_id`] of its text (and the query the id
//! of the query text), so the same text gets the same id in every file, on every machine and
//! in every version of polydense.

use crate::error::{DataError, Result};
use crate::jsonl::{read_jsonl, write_jsonl_checked};
use crate::types::{TrainExample, TrainPassage};
use serde::{Deserialize, Serialize};
use std::path::Path;

const FLAG_LAYOUT: &str = r#"{"query": "...", "pos": ["..."], "neg": ["...", "..."]}"#;
const CLPL_LAYOUT: &str = r#"{"query": "...", "pos": ["..."], "neg": ["n1", "n2"], "neg_q": ["query of n1", "query of n2"]}"#;

/// One FlagEmbedding (or CLPL, when `neg_q` is set) training line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FlagExample {
    pub query: String,
    pub pos: Vec<String>,
    #[serde(default)]
    pub neg: Vec<String>,
    /// Teacher scores aligned to `pos`, for distillation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_scores: Option<Vec<f64>>,
    /// Teacher scores aligned to `neg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg_scores: Option<Vec<f64>>,
    /// An instruction prepended to the query by FlagEmbedding's trainer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// CLPL: `neg_q[j]` is a query whose positive is `neg[j]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg_q: Option<Vec<String>>,
}

/// Which of the two layouts a file is read or written as.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Flag,
    Clpl,
}

impl FlagExample {
    /// Converts to the Tevatron layout that training reads: ids come from [`stable_id`],
    /// scores go to each passage's `score`, `neg_q` to each negative's `query`. The `prompt`
    /// has no place in a [`TrainExample`] and is dropped.
    pub fn to_train(&self) -> TrainExample {
        let passage = |text: &String, score: Option<f64>, query: Option<&String>| TrainPassage {
            docid: stable_id('d', text),
            title: String::new(),
            text: text.clone(),
            score,
            source: None,
            query: query.cloned(),
            lang: None,
            stage_scores: Default::default(),
            perturbation: None,
        };
        let at = |v: &Option<Vec<f64>>, i: usize| v.as_ref().and_then(|s| s.get(i).copied());
        TrainExample {
            query_id: stable_id('q', &self.query),
            query: self.query.clone(),
            lang: None,
            positive_passages: (self.pos.iter().enumerate())
                .map(|(i, t)| passage(t, at(&self.pos_scores, i), None))
                .collect(),
            negative_passages: (self.neg.iter().enumerate())
                .map(|(i, t)| {
                    let q = self.neg_q.as_ref().and_then(|q| q.get(i));
                    passage(t, at(&self.neg_scores, i), q)
                })
                .collect(),
        }
    }

    /// Converts from the Tevatron layout. A title is joined to its text with a space, the way
    /// Tevatron builds a passage's input, since FlagEmbedding passages are single strings.
    /// Scores and `neg_q` are kept only when every passage in the list has one, so they stay
    /// aligned.
    pub fn from_train(ex: &TrainExample) -> FlagExample {
        let text = |p: &TrainPassage| {
            if p.title.is_empty() {
                p.text.clone()
            } else {
                format!("{} {}", p.title, p.text)
            }
        };
        let scores = |ps: &[TrainPassage]| -> Option<Vec<f64>> {
            if ps.is_empty() {
                return None;
            }
            ps.iter().map(|p| p.score).collect()
        };
        let neg_q = if ex.negative_passages.is_empty() {
            None
        } else {
            ex.negative_passages
                .iter()
                .map(|p| p.query.clone())
                .collect()
        };
        FlagExample {
            query: ex.query.clone(),
            pos: ex.positive_passages.iter().map(text).collect(),
            neg: ex.negative_passages.iter().map(text).collect(),
            pos_scores: scores(&ex.positive_passages),
            neg_scores: scores(&ex.negative_passages),
            prompt: None,
            neg_q,
        }
    }

    /// The first way this example breaks its layout, as `(field, message, hint)`.
    fn problem(&self, layout: Layout) -> Option<(&'static str, String, &'static str)> {
        let aligned = |field: &'static str, len: Option<usize>, to: &'static str, n: usize| {
            len.filter(|&l| l != n).map(|l| {
                (
                    field,
                    format!("`{field}` has {l} entries but `{to}` has {n}"),
                    "",
                )
            })
        };
        if self.query.trim().is_empty() {
            return Some(("query", "the query is empty".into(), ""));
        }
        if self.pos.is_empty() {
            return Some((
                "pos",
                "the example has no positive passage".into(),
                "drop the example, or give it at least one relevant passage",
            ));
        }
        if layout == Layout::Clpl && self.neg_q.is_none() {
            return Some((
                "neg_q",
                "missing field `neg_q`".into(),
                "CLPL lines need `neg_q`, one query per negative",
            ));
        }
        aligned(
            "pos_scores",
            self.pos_scores.as_ref().map(Vec::len),
            "pos",
            self.pos.len(),
        )
        .or_else(|| {
            aligned(
                "neg_scores",
                self.neg_scores.as_ref().map(Vec::len),
                "neg",
                self.neg.len(),
            )
        })
        .or_else(|| {
            aligned(
                "neg_q",
                self.neg_q.as_ref().map(Vec::len),
                "neg",
                self.neg.len(),
            )
            .map(|(f, m, _)| {
                (
                    f,
                    m,
                    "neg_q[j] is a query whose positive is neg[j]; give one per negative",
                )
            })
        })
    }
}

/// A short id for a text that never changes: 64-bit FNV-1a of its UTF-8 bytes in hex, after a
/// one-letter kind (`d` for passages, `q` for queries). FNV-1a is written out here because
/// std's `DefaultHasher` may change between Rust releases, which would change the ids.
pub fn stable_id(kind: char, text: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = text
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{kind}{hash:016x}")
}

fn read(
    path: &Path,
    layout: Layout,
) -> Result<impl Iterator<Item = Result<FlagExample>> + Send + 'static> {
    let example = if layout == Layout::Clpl {
        CLPL_LAYOUT
    } else {
        FLAG_LAYOUT
    };
    let reader = read_jsonl::<FlagExample>(path)?.layout(example);
    let path = reader.path().to_path_buf();
    Ok(reader.map(move |r| {
        let (line, ex) = r?;
        match ex.problem(layout) {
            None => Ok(ex),
            Some((field, message, hint)) => {
                let e = DataError::invalid(&path, message)
                    .at_line(line)
                    .field(field);
                Err(if hint.is_empty() { e } else { e.hint(hint) })
            }
        }
    }))
}

/// Streams a FlagEmbedding jsonl file (plain or gzip); an optional `neg_q` must still align
/// with `neg`, and an example without a positive is an error naming its line.
pub fn read_flag(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<FlagExample>> + Send + 'static> {
    read(path.as_ref(), Layout::Flag)
}

/// Streams a CLPL jsonl file: a FlagEmbedding file in which every line has `neg_q` with one
/// query per negative.
pub fn read_clpl(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<FlagExample>> + Send + 'static> {
    read(path.as_ref(), Layout::Clpl)
}

fn write<'a>(
    path: &Path,
    examples: impl IntoIterator<Item = &'a FlagExample>,
    layout: Layout,
) -> Result<usize> {
    write_jsonl_checked(path, examples, |i, ex| match ex.problem(layout) {
        None => Ok(ex),
        Some((field, message, hint)) => {
            let e = DataError::invalid(path, format!("example {}: {message}", i + 1)).field(field);
            Err(if hint.is_empty() { e } else { e.hint(hint) })
        }
    })
}

/// Writes FlagEmbedding jsonl atomically, refusing examples [`read_flag`] would reject.
pub fn write_flag<'a>(
    path: &Path,
    examples: impl IntoIterator<Item = &'a FlagExample>,
) -> Result<usize> {
    write(path, examples, Layout::Flag)
}

/// Writes CLPL jsonl atomically, refusing examples without an aligned `neg_q`.
pub fn write_clpl<'a>(
    path: &Path,
    examples: impl IntoIterator<Item = &'a FlagExample>,
) -> Result<usize> {
    write(path, examples, Layout::Clpl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_id_is_fnv1a_and_fixed() {
        // FNV-1a 64 test vectors from the reference description (Fowler, Noll, Vo).
        assert_eq!(stable_id('d', ""), "dcbf29ce484222325");
        assert_eq!(stable_id('d', "a"), "daf63dc4c8601ec8c");
        assert_ne!(stable_id('d', "ab"), stable_id('d', "ba"));
    }

    #[test]
    fn train_round_trip_keeps_scores_and_neg_queries_aligned() {
        let ex = FlagExample {
            query: "q".into(),
            pos: vec!["p".into()],
            neg: vec!["n1".into(), "n2".into()],
            pos_scores: Some(vec![0.9]),
            neg_scores: Some(vec![0.2, 0.1]),
            prompt: None,
            neg_q: Some(vec!["a".into(), "b".into()]),
        };
        let t = ex.to_train();
        assert_eq!(t.negative_passages[1].query.as_deref(), Some("b"));
        assert_eq!(t.negative_passages[1].score, Some(0.1));
        assert_eq!(t.positive_passages[0].docid, stable_id('d', "p"));
        assert_eq!(FlagExample::from_train(&t), ex);
    }

    #[test]
    fn partial_scores_are_dropped_rather_than_misaligned() {
        let mut t = FlagExample {
            query: "q".into(),
            pos: vec!["p".into()],
            neg: vec!["n1".into(), "n2".into()],
            ..Default::default()
        }
        .to_train();
        t.negative_passages[0].score = Some(0.5);
        t.positive_passages[0].title = "T".into();
        let f = FlagExample::from_train(&t);
        assert_eq!(f.neg_scores, None);
        assert_eq!(f.neg_q, None);
        assert_eq!(f.pos, vec!["T p".to_string()]);
    }
}
