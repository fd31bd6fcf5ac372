//! Training examples in the Tevatron jsonl layout, which Mr.TyDi and MIRACL also publish their
//! training data in: `query_id, query, positive_passages[{docid,title,text}],
//! negative_passages[...]`, plus polydense's optional `lang`, and a `score`, `source`,
//! `query` and `lang` on a passage.

use crate::error::{DataError, Result};
use crate::jsonl::{de_id, de_null_as_empty, read_jsonl, write_jsonl_checked};
use crate::types::{TrainExample, TrainPassage};
use serde::{Deserialize, Deserializer};
use std::path::Path;

const LAYOUT: &str = r#"{"query_id": "q1", "query": "...", "positive_passages": [{"docid": "d1", "title": "...", "text": "..."}], "negative_passages": [...]}"#;

/// An example as the public files write it: ids may be numbers, a title may be null, and a
/// missing or null `negative_passages` (Mr.TyDi keeps topics without negatives) is empty.
#[derive(Deserialize)]
struct ExampleLine {
    #[serde(deserialize_with = "de_id")]
    query_id: String,
    query: String,
    #[serde(default)]
    lang: Option<String>,
    positive_passages: Vec<PassageLine>,
    #[serde(default, deserialize_with = "de_null_as_default")]
    negative_passages: Vec<PassageLine>,
}

#[derive(Deserialize)]
struct PassageLine {
    #[serde(deserialize_with = "de_id")]
    docid: String,
    #[serde(default, deserialize_with = "de_null_as_empty")]
    title: String,
    text: String,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    stage_scores: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    perturbation: Option<String>,
}

fn de_null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl From<PassageLine> for TrainPassage {
    fn from(p: PassageLine) -> Self {
        TrainPassage {
            docid: p.docid,
            title: p.title,
            text: p.text,
            score: p.score,
            source: p.source,
            query: p.query,
            lang: p.lang,
            stage_scores: p.stage_scores,
            perturbation: p.perturbation,
        }
    }
}

/// Streams a Tevatron, Mr.TyDi or MIRACL training file (plain or gzip) one example at a
/// time; an example without a positive passage, or with an empty query, is an error naming
/// its line, since it cannot be trained on.
pub fn read_train(
    path: impl AsRef<Path>,
) -> Result<impl Iterator<Item = Result<TrainExample>> + Send + 'static> {
    let reader = read_jsonl::<ExampleLine>(path.as_ref())?.layout(LAYOUT);
    let path = reader.path().to_path_buf();
    Ok(reader.map(move |r| {
        let (line, ex) = r?;
        if ex.positive_passages.is_empty() {
            return Err(DataError::invalid(
                &path,
                format!("example `{}` has no positive passage", ex.query_id),
            )
            .at_line(line)
            .field("positive_passages")
            .hint("drop the example, or give it at least one relevant passage"));
        }
        if ex.query.trim().is_empty() {
            return Err(DataError::invalid(
                &path,
                format!("example `{}` has an empty query", ex.query_id),
            )
            .at_line(line)
            .field("query"));
        }
        Ok(TrainExample {
            query_id: ex.query_id,
            query: ex.query,
            lang: ex.lang,
            positive_passages: ex.positive_passages.into_iter().map(Into::into).collect(),
            negative_passages: ex.negative_passages.into_iter().map(Into::into).collect(),
        })
    }))
}

/// Reads a whole training file into memory.
pub fn load_train(path: impl AsRef<Path>) -> Result<Vec<TrainExample>> {
    read_train(path)?.collect()
}

/// Writes training examples atomically (gzip for a `.gz` path), refusing what [`read_train`]
/// would reject, so a written file is always trainable.
pub fn write_train<'a>(
    path: &Path,
    examples: impl IntoIterator<Item = &'a TrainExample>,
) -> Result<usize> {
    write_jsonl_checked(path, examples, |i, ex| {
        let refuse = |field: &str, msg: String| {
            DataError::invalid(
                path,
                format!("example {} (`{}`): {msg}", i + 1, ex.query_id),
            )
            .field(field)
        };
        if let Err(why) = crate::jsonl::check_id(&ex.query_id) {
            return Err(refuse("query_id", why.to_string()));
        }
        if ex.positive_passages.is_empty() {
            return Err(refuse("positive_passages", "no positive passage".into())
                .hint("drop the example, or give it at least one relevant passage"));
        }
        if ex.query.trim().is_empty() {
            return Err(refuse("query", "the query is empty".into()));
        }
        let passages = [
            ("positive_passages", &ex.positive_passages),
            ("negative_passages", &ex.negative_passages),
        ];
        for (field, list) in passages {
            for (j, p) in list.iter().enumerate() {
                if let Err(why) = crate::jsonl::check_id(&p.docid) {
                    return Err(refuse(&format!("{field}[{j}].docid"), why.to_string()));
                }
            }
        }
        Ok(ex)
    })
}
