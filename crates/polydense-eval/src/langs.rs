//! The `qid -> lang` map for per-language tables, read from a BEIR `queries.jsonl`.
//!
//! Only `_id` and `lang` are read, so any queries file with those fields works, whatever else
//! its lines hold.

use polydense_data::lines::Lines;
use polydense_data::DataError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct QueryLang {
    #[serde(rename = "_id")]
    id: Id,
    #[serde(default)]
    lang: Option<String>,
}

/// BEIR ids are strings, but some exports write numeric ids.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(serde_json::Number),
}

/// Reads `qid -> lang` from a queries.jsonl (plain or gzip); queries without a `lang` field
/// are left out (they report under "und").
pub fn read_query_langs(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>, DataError> {
    let path = path.as_ref();
    let mut langs = BTreeMap::new();
    for item in Lines::open(path)?.non_empty() {
        let (n, line) = item?;
        let q: QueryLang = serde_json::from_str(&line).map_err(|e| {
            let msg = e.to_string();
            let err = DataError::invalid(path, format!("not a query object: {msg}")).at_line(n);
            if msg.contains("`_id`") {
                err.field("_id")
                    .hint("each line of queries.jsonl needs a string `_id`")
            } else if msg.contains("invalid type") && !msg.contains("_id") {
                err.field("lang")
                    .hint("`lang` must be a string such as \"de\"")
            } else {
                err.hint(
                    "each line must be one JSON object like {\"_id\": \"q1\", \"lang\": \"de\"}",
                )
            }
        })?;
        let id = match q.id {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        };
        if let Some(lang) = q.lang.filter(|l| !l.is_empty()) {
            langs.insert(id, lang);
        }
    }
    Ok(langs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_ids_and_langs() {
        let f = file(
            "{\"_id\": \"q1\", \"text\": \"a\", \"lang\": \"de\"}\n{\"_id\": 7, \"text\": \"b\", \"lang\": \"th\"}\n{\"_id\": \"q3\", \"text\": \"c\"}\n",
        );
        let l = read_query_langs(f.path()).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["q1"], "de");
        assert_eq!(l["7"], "th");
    }

    #[test]
    fn errors_name_line_and_field() {
        let e =
            read_query_langs(file("{\"_id\": \"q1\"}\n{\"text\": \"x\"}\n").path()).unwrap_err();
        let inv = e.as_invalid().unwrap();
        assert_eq!((inv.line, inv.field.as_deref()), (Some(2), Some("_id")));
        let e = read_query_langs(file("{\"_id\": \"q1\", \"lang\": 3}\n").path()).unwrap_err();
        assert_eq!(e.as_invalid().unwrap().field.as_deref(), Some("lang"));
        let e = read_query_langs(file("not json\n").path()).unwrap_err();
        assert_eq!(e.as_invalid().unwrap().line, Some(1));
    }
}
