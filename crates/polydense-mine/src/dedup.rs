//! Deduplication: a negative must be neither a positive (by id or by text) nor a repeat of
//! another negative of the same query.

use crate::stage::{Candidate, DropLog, QueryContext, QueryFilter};
use std::collections::HashSet;

/// Text as compared for duplicates: lowercased letters and digits separated by single
/// spaces, so that a corpus copy differing only in case, punctuation or spacing still matches.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Drops candidates equal to a positive, by id and (optionally) by normalised text, and any
/// later duplicate of an earlier candidate (the first miner in the config wins).
pub struct DedupFilter {
    /// Compare ids.
    pub by_id: bool,
    /// Compare normalised title + text.
    pub by_text: bool,
}

fn passage_key(title: &str, text: &str) -> String {
    normalise(&format!("{title} {text}"))
}

impl QueryFilter for DedupFilter {
    fn name(&self) -> &str {
        "dedup"
    }

    /// The candidates of one query that are neither a positive nor a repeat.
    fn keep(
        &self,
        ctx: &QueryContext<'_>,
        candidates: Vec<Candidate>,
        log: &mut DropLog,
    ) -> Vec<Candidate> {
        let pos_ids: HashSet<&str> = ctx.query.positives.iter().map(String::as_str).collect();
        let pos_texts: HashSet<String> = if self.by_text {
            ctx.positives
                .iter()
                .map(|p| passage_key(&p.title, &p.text))
                .collect()
        } else {
            HashSet::new()
        };
        let mut seen_ids: HashSet<String> = HashSet::new();
        let mut seen_texts: HashSet<String> = HashSet::new();
        let mut kept = Vec::with_capacity(candidates.len());
        for c in candidates {
            if self.by_id && pos_ids.contains(c.docid.as_str()) {
                log.drop("dedup", "same id as a positive");
                continue;
            }
            if !seen_ids.insert(c.docid.clone()) {
                log.drop("dedup", "repeated id");
                continue;
            }
            if self.by_text {
                let key = ctx
                    .passage(&c)
                    .map(|p| passage_key(&p.title, &p.text))
                    .unwrap_or_default();
                if !key.is_empty() {
                    if pos_texts.contains(&key) {
                        log.drop("dedup", "same text as a positive");
                        continue;
                    }
                    if !seen_texts.insert(key) {
                        log.drop("dedup", "repeated text");
                        continue;
                    }
                }
            }
            kept.push(c);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_spacing() {
        assert_eq!(normalise("  Hello,   World!\n"), "hello world");
        assert_eq!(normalise("Hello world"), normalise("hello-world."));
        assert_ne!(normalise("hello world"), normalise("hello word"));
        assert_eq!(normalise("北京，首都"), "北京 首都");
    }
}
