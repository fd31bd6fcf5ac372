//! Streaming JSON Lines input and atomic JSON Lines output, shared by the BEIR, Tevatron and
//! FlagEmbedding formats so that all of them report a bad line the same way: the file, the
//! line, the field and what the line should have looked like.

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::lines::{Lines, NonEmptyLines};
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Opens a JSONL file (plain or gzip) and yields `(line_number, record)` one line at a time,
/// so a corpus larger than memory can be read. Blank lines are skipped; a file without any
/// record is an error.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use polydense_data::jsonl::read_jsonl;
/// #[derive(Debug, serde::Deserialize)]
/// struct Row { name: String }
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("rows.jsonl");
/// std::fs::write(&path, "{\"name\": \"a\"}\n\n{\"name\": \"b\"}\n{\"nom\": \"c\"}\n")?;
///
/// let mut rows = read_jsonl::<Row>(&path)?;
/// let (line, row) = rows.next().unwrap()?;
/// assert_eq!((line, row.name.as_str()), (1, "a"));
/// assert_eq!(rows.next().unwrap()?.0, 3);
/// let err = rows.next().unwrap().unwrap_err();
/// assert!(err.to_string().ends_with("rows.jsonl:4: field `name`: missing field `name`"));
/// # Ok(()) }
/// ```
pub fn read_jsonl<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<JsonlReader<T>> {
    let lines = Lines::open(path.as_ref())?;
    Ok(JsonlReader {
        path: lines.path().to_path_buf(),
        lines: lines.non_empty(),
        layout: None,
        _record: PhantomData,
    })
}

/// The iterator [`read_jsonl`] returns; it parses each line only when asked for it.
pub struct JsonlReader<T> {
    path: PathBuf,
    lines: NonEmptyLines,
    layout: Option<&'static str>,
    _record: PhantomData<fn() -> T>,
}

impl<T> JsonlReader<T> {
    /// Sets an example line shown in the hint of a schema error, so a user sees the layout the
    /// format expects next to what their file holds.
    pub fn layout(mut self, example: &'static str) -> Self {
        self.layout = Some(example);
        self
    }

    /// The file being read, for the caller's own error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<T: DeserializeOwned> Iterator for JsonlReader<T> {
    type Item = Result<(usize, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        let (line_no, line) = match self.lines.next()? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        Some(parse_line(&self.path, line_no, &line, self.layout).map(|t| (line_no, t)))
    }
}

/// Parses one JSONL line, which must hold a JSON object, into `T`, turning a serde error into
/// a [`DataError`] that names the line, the field path (e.g. `positive_passages[1].docid`) and
/// the column.
pub fn parse_line<T: DeserializeOwned>(
    path: &Path,
    line_no: usize,
    line: &str,
    layout: Option<&str>,
) -> Result<T> {
    // serde's derive also accepts a struct written as an array of its fields in order, which
    // would read `["d1", "t", "x"]` as a document; every record layout here is an object.
    let first = line.trim_start().chars().next();
    if first != Some('{') {
        let found = match first {
            Some('[') => "an array",
            Some('"') => "a string",
            Some('t' | 'f') => "a boolean",
            Some('n') => "null",
            Some('0'..='9' | '-') => "a number",
            _ => "text that is not JSON",
        };
        let hint = match (first, layout) {
            (Some('['), _) => {
                "a JSONL file holds one JSON object per line, not a JSON array".to_string()
            }
            (_, Some(example)) => format!("lines look like {example}"),
            (_, None) => "each line must be one JSON object".to_string(),
        };
        return Err(
            DataError::invalid(path, format!("expected a JSON object, found {found}"))
                .at_line(line_no)
                .hint(hint),
        );
    }
    match serde_json::from_str::<T>(line) {
        Ok(t) => Ok(t),
        Err(err) => Err(describe::<T>(path, line_no, line, err, layout)),
    }
}

/// Builds the error for a line that failed to parse. A schema error is parsed a second time
/// with field-path tracking; that costs nothing on good input, where it never runs.
fn describe<T: DeserializeOwned>(
    path: &Path,
    line_no: usize,
    line: &str,
    err: serde_json::Error,
    layout: Option<&str>,
) -> DataError {
    let (err, field_path) = if err.classify() == serde_json::error::Category::Data {
        let mut de = serde_json::Deserializer::from_str(line);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Err(e) => {
                let field = e.path().to_string();
                (e.into_inner(), Some(field))
            }
            Ok(_) => (err, None),
        }
    } else {
        (err, None)
    };
    let (column, class) = (err.column(), err.classify());
    let raw = err.to_string();
    let message = raw
        .strip_suffix(&format!(" at line {} column {}", err.line(), column))
        .unwrap_or(&raw)
        .to_string();
    match class {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            let hint = if class == serde_json::error::Category::Eof {
                "the JSON value is cut off at the end of the line; JSONL needs each record on \
                 one line (no pretty-printing), and the file may be truncated"
                    .to_string()
            } else {
                "each line must be one complete JSON object".to_string()
            };
            DataError::invalid(
                path,
                format!("malformed JSON: {message} at column {column}"),
            )
            .at_line(line_no)
            .hint(hint)
        }
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            let field = field_path.and_then(|p| field_name(&p, &message));
            let message = if message.starts_with("missing field") {
                message
            } else {
                format!("{message} (column {column})")
            };
            let mut e = DataError::invalid(path, message).at_line(line_no);
            if let Some(f) = field {
                e = e.field(f);
            }
            match layout {
                Some(example) => e.hint(format!("lines look like {example}")),
                None => e,
            }
        }
    }
}

/// The field a schema error is about: serde_path_to_error gives the path of the value that
/// failed, which for a missing field is the object that lacks it.
fn field_name(path: &str, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { None } else { Some(path) };
    match (parent, missing) {
        (Some(p), Some(m)) => Some(format!("{p}.{m}")),
        (None, Some(m)) => Some(m.to_string()),
        (Some(p), None) => Some(p.to_string()),
        (None, None) => None,
    }
}

/// Writes `records` as JSONL to `path` atomically (gzip when the name ends in `.gz`) and
/// returns how many were written; a crash leaves any previous file intact.
pub fn write_jsonl<T: Serialize>(
    path: impl AsRef<Path>,
    records: impl IntoIterator<Item = T>,
) -> Result<usize> {
    write_jsonl_checked(path, records, |_, r| Ok(r))
}

/// Like [`write_jsonl`], but passes each record (with its 0-based position) through `check`
/// first; the first refusal is returned and the target is left as it was, so a writer never
/// produces a file its own reader would reject.
pub fn write_jsonl_checked<T, R: Serialize>(
    path: impl AsRef<Path>,
    records: impl IntoIterator<Item = T>,
    mut check: impl FnMut(usize, T) -> Result<R>,
) -> Result<usize> {
    let mut refused = None;
    let mut n = 0;
    let written = write_atomic(path.as_ref(), |w| {
        for (i, record) in records.into_iter().enumerate() {
            let row = match check(i, record) {
                Ok(row) => row,
                Err(e) => {
                    refused = Some(e);
                    return Err(std::io::Error::other("record refused"));
                }
            };
            serde_json::to_writer(&mut *w, &row).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
            n += 1;
        }
        Ok(())
    });
    match refused {
        Some(e) => Err(e),
        None => written.map(|()| n),
    }
}

/// Deserializes an identifier that public files write either as a string or as a number
/// (BEIR corpora sometimes have `"_id": 123`); rejects empty ids and ids with a tab or a line
/// break, which could not be written back to a TSV qrels or TREC run file.
pub fn de_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    d.deserialize_any(IdVisitor)
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-empty string or integer id without tabs or line breaks")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<String, E> {
        check_id(v).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))?;
        Ok(v.to_string())
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<String, E> {
        check_id(&v).map_err(|_| E::invalid_value(Unexpected::Str(&v), &self))?;
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<String, E> {
        Ok(v.to_string())
    }
}

/// Why an id cannot be used, if it cannot; shared by the JSON and the TSV readers.
pub fn check_id(id: &str) -> std::result::Result<(), &'static str> {
    if id.trim().is_empty() {
        Err("the id is empty")
    } else if id.contains(['\t', '\n', '\r']) {
        Err("the id contains a tab or a line break")
    } else {
        Ok(())
    }
}

/// Deserializes a string that some public files write as `null` (e.g. a missing title) as "".
pub fn de_null_as_empty<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Rec {
        #[serde(rename = "_id", deserialize_with = "de_id")]
        id: String,
        #[serde(default, deserialize_with = "de_null_as_empty")]
        title: String,
        tags: Vec<Tag>,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Tag {
        #[serde(deserialize_with = "de_id")]
        name: String,
    }

    fn parse(line: &str) -> Result<Rec> {
        parse_line(Path::new("f.jsonl"), 3, line, Some("{\"_id\": \"x\"}"))
    }

    #[test]
    fn numeric_ids_become_strings_and_null_title_is_empty() {
        let r = parse(r#"{"_id": 123, "title": null, "tags": [{"name": -4}]}"#).unwrap();
        assert_eq!(r.id, "123");
        assert_eq!(r.title, "");
        assert_eq!(r.tags[0].name, "-4");
    }

    #[test]
    fn nested_type_error_names_the_field_path_and_column() {
        let e = parse(r#"{"_id": "a", "tags": [{"name": "x"}, {"name": true}]}"#).unwrap_err();
        let inv = e.as_invalid().unwrap();
        assert_eq!(inv.line, Some(3));
        assert_eq!(inv.field.as_deref(), Some("tags[1].name"));
        assert!(
            inv.message.starts_with(
                "invalid type: boolean `true`, expected a non-empty string or integer id"
            ),
            "{}",
            inv.message
        );
        assert!(inv.message.ends_with("(column 50)"), "{}", inv.message);
        assert_eq!(
            inv.hint.as_deref(),
            Some("lines look like {\"_id\": \"x\"}")
        );
    }

    #[test]
    fn missing_nested_field_is_named_with_its_parent() {
        let e = parse(r#"{"_id": "a", "tags": [{"nom": "x"}]}"#).unwrap_err();
        let inv = e.as_invalid().unwrap();
        assert_eq!(inv.field.as_deref(), Some("tags[0].name"));
        assert_eq!(inv.message, "missing field `name`");
    }

    #[test]
    fn empty_and_tabbed_ids_are_rejected() {
        let e = parse(r#"{"_id": "", "tags": []}"#).unwrap_err();
        let inv = e.as_invalid().unwrap();
        assert_eq!(inv.field.as_deref(), Some("_id"));
        assert!(
            inv.message.starts_with("invalid value: string \"\""),
            "{}",
            inv.message
        );
        let e = parse(r#"{"_id": "a\tb", "tags": []}"#).unwrap_err();
        assert_eq!(e.as_invalid().unwrap().field.as_deref(), Some("_id"));
        assert!(parse(r#"{"_id": 1.5, "tags": []}"#).is_err());
    }

    #[test]
    fn syntax_errors_say_malformed_and_hint_at_the_cause() {
        let inv = |l: &str| parse(l).unwrap_err().as_invalid().unwrap().clone();
        let e = inv(r#"{"_id": "a" "tags": []}"#);
        assert_eq!(
            e.message,
            "malformed JSON: expected `,` or `}` at column 13"
        );
        assert_eq!(e.field, None);
        assert!(inv("{").hint.unwrap().contains("no pretty-printing"));
        assert!(inv(r#"[{"_id": "a"}]"#)
            .hint
            .unwrap()
            .contains("not a JSON array"));
        let trailing = inv(r#"{"_id": "a", "tags": []} x"#);
        assert!(
            trailing.message.contains("trailing characters"),
            "{}",
            trailing.message
        );
    }
}
