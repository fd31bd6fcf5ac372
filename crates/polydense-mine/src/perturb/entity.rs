//! Entity substitution: a named span of the answer sentence is swapped, everywhere in the
//! passage, for a span of the same shape taken from another passage of the corpus in the same
//! language ("Warsaw" → "Lisbon"), so the passage keeps its topic and form but states a fact
//! about something else.
//!
//! What counts as a name depends on the script, and no NER model is used, so "the same kind"
//! means the same shape, not the same entity type:
//! - scripts with case (en, es, el, ru, tr, vi, de, …): runs of capitalised words that do not
//!   start a sentence, swapped for a run of as many words; in German, where every noun is
//!   capitalised, the run must also hold a rare word;
//! - scripts without case (ar, hi, th, zh, …): rare words, as the BM25 analyser segments
//!   them (ICU word breaks for Thai and Chinese) and the corpus counts them (document
//!   frequency at most `rare_df`), swapped for a rare word of the same length in characters.

use crate::perturb::sentence::sentences;
use polydense_lexical::analysis::Analyzers;
use polydense_lexical::AnalysisOptions;
use rand::seq::IndexedRandom;
use rand::Rng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// A candidate span of one passage: its byte range and its shape (words, or characters in a
/// caseless script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Byte range in the text.
    pub range: Range<usize>,
    /// Words (cased scripts) or characters (caseless ones).
    pub shape: usize,
}

/// Whether most letters of `text` have case (Latin, Greek, Cyrillic, Armenian).
pub fn has_case(text: &str) -> bool {
    let (mut cased, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        cased += usize::from(c.is_uppercase() || c.is_lowercase());
    }
    letters > 0 && cased * 2 > letters
}

/// The spans of a text, and the corpus statistics that decide which words are rare.
pub struct EntityPool {
    /// `lang -> shape -> spans` found in the corpus, as (text, docid).
    spans: HashMap<String, BTreeMap<usize, Vec<(String, String)>>>,
    /// `lang -> term -> document frequency`.
    df: HashMap<String, HashMap<String, u32>>,
    /// Document frequency at or below which a word is rare, per language.
    rare: HashMap<String, u32>,
    /// The analyser (no stemming, stopwords removed) that segments caseless scripts.
    analyzers: Analyzers,
}

impl EntityPool {
    /// Counts document frequencies over `docs` (`(docid, text, lang)`) and collects every
    /// passage's spans. `rare_df` of `None` means max(5, √N) for a language of N passages.
    pub fn build<'a>(
        docs: impl IntoIterator<Item = (&'a str, &'a str, Option<&'a str>)>,
        rare_df: Option<u32>,
    ) -> Self {
        let mut pool = EntityPool {
            spans: HashMap::new(),
            df: HashMap::new(),
            rare: HashMap::new(),
            analyzers: Analyzers::new(AnalysisOptions {
                stem: false,
                stopwords: true,
            }),
        };
        let docs: Vec<(&str, &str, String)> = docs
            .into_iter()
            .map(|(id, text, lang)| (id, text, lang.unwrap_or_default().to_string()))
            .collect();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for (_, text, lang) in &docs {
            let terms: HashSet<String> =
                pool.analyzers.terms(text, Some(lang)).into_iter().collect();
            let df = pool.df.entry(lang.clone()).or_default();
            for t in terms {
                *df.entry(t).or_default() += 1;
            }
            *counts.entry(lang.clone()).or_default() += 1;
        }
        for (lang, n) in counts {
            let r = rare_df.unwrap_or_else(|| ((n as f64).sqrt().ceil() as u32).max(5));
            pool.rare.insert(lang, r);
        }
        for (id, text, lang) in &docs {
            let found = pool.spans_of(text, lang, 0..text.len());
            let by_shape = pool.spans.entry(lang.clone()).or_default();
            for s in found {
                by_shape
                    .entry(s.shape)
                    .or_default()
                    .push((text[s.range].to_string(), id.to_string()));
            }
        }
        for by_shape in pool.spans.values_mut() {
            for list in by_shape.values_mut() {
                list.sort();
                list.dedup_by(|a, b| a.0 == b.0);
            }
        }
        pool
    }

    /// Whether `word` is rare in `lang`'s passages.
    fn is_rare(&mut self, word: &str, lang: &str) -> bool {
        let terms = self.analyzers.terms(word, Some(lang));
        let limit = self.rare.get(lang).copied().unwrap_or(5);
        let df = self.df.get(lang);
        !terms.is_empty()
            && terms
                .iter()
                .any(|t| df.and_then(|d| d.get(t)).copied().unwrap_or(0) <= limit)
    }

    /// The name-like spans of `text` inside `within`.
    pub fn spans_of(&mut self, text: &str, lang: &str, within: Range<usize>) -> Vec<Span> {
        if has_case(&text[within.clone()]) {
            let mut out = Vec::new();
            for s in sentences(text)
                .into_iter()
                .filter(|s| s.start < within.end && s.end > within.start)
            {
                for run in capitalised_runs(text, s) {
                    if run.range.start >= within.start && run.range.end <= within.end {
                        out.push(run);
                    }
                }
            }
            if lang == "de" {
                out.retain(|s| {
                    text[s.range.clone()]
                        .split_whitespace()
                        .any(|w| self.is_rare(w, lang))
                });
            }
            return out;
        }
        let limit = self.rare.get(lang).copied().unwrap_or(5);
        let tokens = self.analyzers.tokens(&text[within.clone()], Some(lang));
        let df = self.df.get(lang);
        tokens
            .into_iter()
            .filter(|t| {
                let chars = t.text.chars().count();
                chars >= 2
                    && t.text.chars().all(char::is_alphabetic)
                    && df.and_then(|d| d.get(&t.text)).copied().unwrap_or(0) <= limit
            })
            .map(|t| Span {
                range: within.start + t.offset_from..within.start + t.offset_to,
                shape: t.text.chars().count(),
            })
            .collect()
    }

    /// `text` (passage `docid` in `lang`) with one name-like span of `within` swapped for a
    /// span of the same shape from another passage, and the edit (`"Warsaw→Lisbon"`); `None`
    /// when the sentence has no such span or the corpus no replacement.
    pub fn substitute(
        &mut self,
        text: &str,
        docid: &str,
        lang: &str,
        within: Range<usize>,
        rng: &mut impl Rng,
    ) -> Option<(String, String)> {
        let spans = self.spans_of(text, lang, within);
        let target = spans.choose(rng)?.clone();
        let old = &text[target.range.clone()];
        let pool = self.spans.get(lang)?.get(&target.shape)?;
        let options: Vec<&(String, String)> = pool
            .iter()
            .filter(|(t, id)| id != docid && t != old && !text.contains(t.as_str()))
            .collect();
        let (new, _) = options.choose(rng)?;
        Some((replace_word(text, old, new), format!("{old}→{new}")))
    }
}

/// `text` with every occurrence of `old` that is not part of a longer word replaced by `new`.
pub fn replace_word(text: &str, old: &str, new: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (i, _) in text.match_indices(old) {
        let before = text[..i].chars().next_back();
        let after = text[i + old.len()..].chars().next();
        // In caseless scripts words are not spaced: only cased text checks word edges.
        let edge = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() || !has_case(old));
        if i >= at && edge(before) && edge(after) {
            out.push_str(&text[at..i]);
            out.push_str(new);
            at = i + old.len();
        }
    }
    out.push_str(&text[at..]);
    out
}

/// Runs of capitalised words of one sentence, the sentence's first word excluded.
fn capitalised_runs(text: &str, sentence: Range<usize>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut open: Option<Span> = None;
    let mut first = true;
    let s = &text[sentence.clone()];
    for (offset, word) in words(s) {
        let core = word.trim_matches(|c: char| !c.is_alphanumeric());
        let lead = word.len()
            - word
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let start = sentence.start + offset + lead;
        let capital = core.chars().next().is_some_and(char::is_uppercase)
            && core
                .chars()
                .all(|c| c.is_alphabetic() || c == '-' || c == '\'');
        let breaks = word.ends_with(|c: char| !c.is_alphanumeric());
        if capital && !first && lead == 0 {
            match &mut open {
                Some(run) => {
                    run.range.end = start + core.len();
                    run.shape += 1;
                }
                None => {
                    open = Some(Span {
                        range: start..start + core.len(),
                        shape: 1,
                    })
                }
            }
        } else if let Some(run) = open.take() {
            out.push(run);
        }
        if breaks {
            out.extend(open.take());
        }
        first = false;
    }
    out.extend(open);
    out
}

/// The whitespace-separated words of `s` with their byte offsets.
fn words(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split_whitespace()
        .map(move |w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn pool(docs: &[(&str, &str, &str)]) -> EntityPool {
        EntityPool::build(docs.iter().map(|(i, t, l)| (*i, *t, Some(*l))), Some(1))
    }

    #[test]
    fn capitalised_runs_skip_the_sentence_start() {
        let t =
            "The city of Warsaw hosts the Polish Academy of Sciences. Paris, however, does not.";
        let runs: Vec<&str> = capitalised_runs(t, 0..56)
            .into_iter()
            .map(|s| &t[s.range])
            .collect();
        assert_eq!(runs, ["Warsaw", "Polish Academy", "Sciences"]);
        let t = "В 1596 году Сигизмунд III перенёс столицу в Варшаву.";
        let runs: Vec<&str> = capitalised_runs(t, 0..t.len())
            .into_iter()
            .map(|s| &t[s.range])
            .collect();
        assert_eq!(runs, ["Сигизмунд III", "Варшаву"]);
    }

    #[test]
    fn a_span_is_swapped_for_one_of_the_same_shape_from_another_passage() {
        let mut p = pool(&[
            (
                "a",
                "The tower stands in Paris. It was built by Gustave Eiffel.",
                "en",
            ),
            (
                "b",
                "The castle stands in Warsaw. It was rebuilt by Marie Curie.",
                "en",
            ),
            ("c", "Η πόλη της Αθήνας είναι παλιά.", "el"),
            ("d", "Η πόλη της Σπάρτης ήταν ισχυρή.", "el"),
        ]);
        let text = "The tower stands in Paris. It was built by Gustave Eiffel.";
        let (out, edit) = p
            .substitute(text, "a", "en", 0..26, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            out,
            "The tower stands in Warsaw. It was built by Gustave Eiffel."
        );
        assert_eq!(edit, "Paris→Warsaw");
        let (out, _) = p
            .substitute(
                text,
                "a",
                "en",
                27..text.len(),
                &mut ChaCha8Rng::seed_from_u64(1),
            )
            .unwrap();
        // A two-word name is swapped for a two-word name.
        assert_eq!(
            out,
            "The tower stands in Paris. It was built by Marie Curie."
        );
        let el = "Η πόλη της Αθήνας είναι παλιά.";
        let (out, _) = p
            .substitute(
                el,
                "c",
                "el",
                0..el.len(),
                &mut ChaCha8Rng::seed_from_u64(1),
            )
            .unwrap();
        assert_eq!(out, "Η πόλη της Σπάρτης είναι παλιά.");
    }

    #[test]
    fn caseless_scripts_swap_rare_words_of_the_same_length() {
        // Every passage shares the common words; each has one name of its own.
        let mut p = pool(&[
            ("a", "埃菲尔铁塔 位于 巴黎 市中心", "zh"),
            ("b", "华沙 城堡 位于 市中心", "zh"),
            ("c", "铁塔 位于 市中心", "zh"),
        ]);
        let text = "埃菲尔铁塔 位于 巴黎 市中心";
        let spans: Vec<String> = p
            .spans_of(text, "zh", 0..text.len())
            .into_iter()
            .map(|s| text[s.range].to_string())
            .collect();
        assert!(spans.contains(&"巴黎".to_string()), "{spans:?}");
        assert!(!spans.contains(&"位于".to_string()), "{spans:?}");
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let got: HashSet<String> = (0..20)
            .filter_map(|_| p.substitute(text, "a", "zh", 0..text.len(), &mut rng))
            .map(|(o, _)| o)
            .collect();
        assert!(got.contains("埃菲尔铁塔 位于 华沙 市中心"), "{got:?}");
        assert!(got.iter().all(|o| o != text));
    }

    #[test]
    fn replacement_respects_word_edges_in_cased_text() {
        assert_eq!(
            replace_word("Paris and Parisians", "Paris", "Rome"),
            "Rome and Parisians"
        );
        assert_eq!(replace_word("巴黎的巴黎人", "巴黎", "华沙"), "华沙的华沙人");
    }
}
