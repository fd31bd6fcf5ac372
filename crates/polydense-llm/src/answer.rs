//! Structured answers: every LLM stage asks for JSON matching a schema, and reads what comes
//! back leniently, since a model without schema support (or a small one with it) writes a
//! fenced block, a bare number or "85/100" instead. What cannot be read is an error for the
//! caller to count, never a made-up value.

use serde_json::Value;

/// A value an LLM stage asks for: its JSON schema, and how to read it from an answer.
pub trait Answer: Sized + Send {
    /// The JSON schema sent to backends that enforce one, and stated in the reminder.
    fn schema() -> Value;

    /// Reads the answer text; `Err` says what was missing, for the log.
    fn parse(text: &str) -> Result<Self, String>;
}

/// The JSON value in `text`: the whole text, else the inside of a ``` fence, else the first
/// balanced `{…}` or `[…]` in it.
pub fn extract_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    if let Some(inner) = fenced(t) {
        if let Ok(v) = serde_json::from_str::<Value>(inner.trim()) {
            return Some(v);
        }
    }
    for (i, c) in t.char_indices() {
        if c == '{' || c == '[' {
            if let Some(end) = balanced_end(&t[i..]) {
                if let Ok(v) = serde_json::from_str::<Value>(&t[i..i + end]) {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// The text between the first ``` fence (after its language tag) and the next one.
fn fenced(t: &str) -> Option<&str> {
    let open = t.find("```")?;
    let rest = &t[open + 3..];
    let body_start = rest.find('\n').map(|i| i + 1).unwrap_or(0);
    let rest = &rest[body_start..];
    let close = rest.find("```").unwrap_or(rest.len());
    Some(&rest[..close])
}

/// Length of the balanced bracket expression at the start of `s`, skipping strings.
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// A score on a 0-`scale` range from an answer that is only a score: a bare number ("85"),
/// a fraction rescaled to the range ("85/100", "8/10") or a percentage ("85%"), optionally
/// after a label ("Score: 85"). Anything else is `None`: a number picked out of prose (or out
/// of an echoed "0-100") would be a guess.
pub fn lenient_score(text: &str, scale: f64) -> Option<f64> {
    let t = text.trim().trim_end_matches('.');
    let t = match t.rsplit_once(':') {
        Some((label, rest))
            if label
                .chars()
                .all(|c| c.is_alphabetic() || c == ' ' || c == '_') =>
        {
            rest
        }
        _ => t,
    };
    let (v, rest) = score_at_start(t.trim_start(), scale)?;
    rest.trim().is_empty().then_some(v)
}

/// The score right after `key` in near-JSON text (`hardness: 85`, `"hardness" = 7/10`).
pub fn score_after_key(text: &str, key: &str, scale: f64) -> Option<f64> {
    let rest = after_key(text, key)?;
    let (v, tail) = score_at_start(rest, scale)?;
    // A range ("0-100" echoed from the instructions) is not an answer.
    match tail.chars().next() {
        None => Some(v),
        Some(c) if c.is_whitespace() || matches!(c, ',' | '}' | '"' | '\'' | '.' | ';') => Some(v),
        _ => None,
    }
}

/// The text after `key` and the `"':= ` between it and its value.
fn after_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.to_lowercase().find(&key.to_lowercase())?;
    Some(text[at + key.len()..].trim_start_matches(|c: char| {
        c == '"' || c == '\'' || c == ':' || c == '=' || c.is_whitespace()
    }))
}

/// A number, fraction or percentage at the start of `s`, within 0-`scale`, and what follows.
fn score_at_start(s: &str, scale: f64) -> Option<(f64, &str)> {
    let (value, rest) = first_number_at_start(s)?;
    let (v, rest) = if let Some(after) = rest.strip_prefix('/') {
        let (den, rest) = first_number_at_start(after.trim_start())?;
        if den <= 0.0 {
            return None;
        }
        (value / den * scale, rest)
    } else if let Some(rest) = rest.strip_prefix('%') {
        (value, rest)
    } else {
        (value, rest)
    };
    (0.0..=scale).contains(&v).then_some((v, rest))
}

/// A number field of a JSON object, or a string holding a score ("85/100").
pub fn number_field(v: &Value, key: &str, scale: f64) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64().filter(|x| (0.0..=scale).contains(x)),
        Value::String(s) => lenient_score(s, scale),
        _ => None,
    }
}

/// A yes/no field of a JSON object: a boolean, or a string saying yes/no/true/false.
pub fn bool_field(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => word_bool(s),
        Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        _ => None,
    }
}

/// `key: yes` (or `"key": false`, `key = true`) in free text, for answers that are almost
/// JSON; `None` when the key is absent or followed by something else.
pub fn bool_after_key(text: &str, key: &str) -> Option<bool> {
    let lower = text.to_lowercase();
    let at = lower.find(&key.to_lowercase())?;
    let rest = lower[at + key.len()..].trim_start_matches(|c: char| {
        c == '"' || c == '\'' || c == ':' || c == '=' || c.is_whitespace()
    });
    let word: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
    word_bool(&word)
}

fn word_bool(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" => Some(true),
        "false" | "no" | "n" => Some(false),
        _ => None,
    }
}

fn first_number_at_start(s: &str) -> Option<(f64, &str)> {
    let mut end = 0;
    let mut seen_dot = false;
    for (i, c) in s.char_indices() {
        let ok = c.is_ascii_digit() || (c == '-' && i == 0) || (c == '.' && !seen_dot);
        if !ok {
            break;
        }
        seen_dot |= c == '.';
        end = i + c.len_utf8();
    }
    let num = s[..end].trim_end_matches('.');
    let v: f64 = num.parse().ok()?;
    Some((v, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_bare_fenced_or_embedded() {
        assert_eq!(extract_json(r#"{"score": 5}"#).unwrap()["score"], 5);
        assert_eq!(
            extract_json("```json\n{\"score\": 7}\n```").unwrap()["score"],
            7
        );
        assert_eq!(
            extract_json("Sure! Here it is: {\"a\": \"}{\", \"score\": 9} Hope that helps.")
                .unwrap()["score"],
            9
        );
        assert_eq!(extract_json("[\"x\", \"y\"] trailing").unwrap()[1], "y");
        assert!(extract_json("no json here").is_none());
        assert!(extract_json("{\"cut\": ").is_none());
    }

    #[test]
    fn scores_are_read_from_numbers_fractions_and_percentages() {
        assert_eq!(lenient_score("85", 100.0), Some(85.0));
        assert_eq!(lenient_score("Score: 85/100", 100.0), Some(85.0));
        assert_eq!(lenient_score(" 8/10.", 100.0), Some(80.0));
        assert_eq!(lenient_score("72.5%", 100.0), Some(72.5));
        assert_eq!(lenient_score("150", 100.0), None, "out of range");
        assert_eq!(lenient_score("-3", 100.0), None);
        assert_eq!(lenient_score("none", 100.0), None);
        assert_eq!(lenient_score("5/0", 100.0), None);
        // Numbers inside prose, or an echoed range, are not scores.
        assert_eq!(
            lenient_score("I give it 85 because of 3 reasons", 100.0),
            None
        );
        assert_eq!(lenient_score("{\"score\": 0-100}", 100.0), None);
        assert_eq!(score_after_key("{\"score\": 0-100}", "score", 100.0), None);
        assert_eq!(
            score_after_key("hardness: 85, answers: no", "hardness", 100.0),
            Some(85.0)
        );
        assert_eq!(
            score_after_key("\"hardness\" = 7/10}", "hardness", 100.0),
            Some(70.0)
        );
    }

    #[test]
    fn fields_accept_strings_and_near_json() {
        let v: Value = serde_json::json!({"score": "90/100", "answers": "No", "n": 3});
        assert_eq!(number_field(&v, "score", 100.0), Some(90.0));
        assert_eq!(bool_field(&v, "answers"), Some(false));
        assert_eq!(number_field(&v, "missing", 100.0), None);
        assert_eq!(
            bool_after_key("answers_query: yes, hardness 40", "answers_query"),
            Some(true)
        );
        assert_eq!(
            bool_after_key("\"answers_query\" = false", "answers_query"),
            Some(false)
        );
        assert_eq!(
            bool_after_key("answers_query: maybe", "answers_query"),
            None
        );
    }
}
