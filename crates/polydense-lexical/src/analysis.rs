//! Per-language analysis: ICU word segmentation, lowercasing, optional stopwords and a
//! Snowball stemmer where one exists, built as tantivy [`TextAnalyzer`]s.

use crate::segment::IcuWordTokenizer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
};

/// Longest token kept, in bytes; longer ones are base64 blobs or URLs that only bloat the
/// term dictionary (Lucene's StandardAnalyzer caps tokens at 255 characters for the same reason).
const MAX_TOKEN_BYTES: usize = 100;

/// What the analysis chain does beyond segmentation and lowercasing; stored with an index so
/// queries are analysed the way its documents were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisOptions {
    /// Apply the Snowball stemmer of the language when one exists (pyserini stems by default).
    pub stem: bool,
    /// Remove stopwords for languages that have a list (Snowball lists, Lucene's for English).
    pub stopwords: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            stem: true,
            stopwords: false,
        }
    }
}

/// Reduces a language tag to the primary subtag we key analysis on (`zh-Hans` → `zh`,
/// `EN_us` → `en`); an empty tag is treated as unknown.
pub fn primary_language(tag: &str) -> String {
    tag.split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The Snowball stemmer for an ISO 639-1 code, if rust-stemmers has one.
pub fn stemmer_language(lang: &str) -> Option<Language> {
    Some(match primary_language(lang).as_str() {
        "ar" => Language::Arabic,
        "da" => Language::Danish,
        "nl" => Language::Dutch,
        "en" => Language::English,
        "fi" => Language::Finnish,
        "fr" => Language::French,
        "de" => Language::German,
        "el" => Language::Greek,
        "hu" => Language::Hungarian,
        "it" => Language::Italian,
        "no" | "nb" | "nn" => Language::Norwegian,
        "pt" => Language::Portuguese,
        "ro" => Language::Romanian,
        "ru" => Language::Russian,
        "es" => Language::Spanish,
        "sv" => Language::Swedish,
        "ta" => Language::Tamil,
        "tr" => Language::Turkish,
        _ => return None,
    })
}

/// Builds the analysis chain for one language (`None` or an unknown tag: segmentation and
/// lowercasing only, which is the right thing for hi, th, vi and zh, which have no stemmer).
pub fn analyzer_for(lang: Option<&str>, opts: AnalysisOptions) -> TextAnalyzer {
    let stem = lang.and_then(stemmer_language);
    let stop = if opts.stopwords {
        stem.and_then(StopWordFilter::new)
    } else {
        None
    };
    let stem = if opts.stem { stem } else { None };
    // TextAnalyzer's builder changes type with each filter, so each combination is spelled out.
    let base = TextAnalyzer::builder(IcuWordTokenizer::new())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser);
    match (stop, stem) {
        (Some(s), Some(l)) => base.filter(s).filter(Stemmer::new(l)).build(),
        (Some(s), None) => base.filter(s).build(),
        (None, Some(l)) => base.filter(Stemmer::new(l)).build(),
        (None, None) => base.build(),
    }
}

/// A cache of analysers by language, cloned once per worker thread (a tantivy analyser needs
/// `&mut` to run, and building one allocates its stopword set).
#[derive(Clone)]
pub struct Analyzers {
    opts: AnalysisOptions,
    by_lang: HashMap<String, TextAnalyzer>,
}

impl Analyzers {
    /// An empty cache that builds analysers with `opts` on first use of each language.
    pub fn new(opts: AnalysisOptions) -> Self {
        Analyzers {
            opts,
            by_lang: HashMap::new(),
        }
    }

    /// The options every analyser in the cache uses.
    pub fn options(&self) -> AnalysisOptions {
        self.opts
    }

    /// Analyses `text` as language `lang` into tokens with positions and offsets.
    pub fn tokens(&mut self, text: &str, lang: Option<&str>) -> Vec<Token> {
        let key = lang.map(primary_language).unwrap_or_default();
        let opts = self.opts;
        let analyzer = self
            .by_lang
            .entry(key)
            .or_insert_with_key(|k| analyzer_for(Some(k.as_str()).filter(|k| !k.is_empty()), opts));
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        stream.process(&mut |t| out.push(t.clone()));
        out
    }

    /// Analyses `text` as language `lang` into its terms, in order, repeats kept.
    pub fn terms(&mut self, text: &str, lang: Option<&str>) -> Vec<String> {
        self.tokens(text, lang)
            .into_iter()
            .map(|t| t.text)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(lang: &str, text: &str) -> Vec<String> {
        Analyzers::new(AnalysisOptions::default()).terms(text, Some(lang))
    }

    #[test]
    fn primary_subtag() {
        assert_eq!(primary_language("zh-Hans"), "zh");
        assert_eq!(primary_language("EN_us"), "en");
        assert_eq!(primary_language(""), "");
    }

    #[test]
    fn english_is_lowercased_and_stemmed() {
        assert_eq!(terms("en", "Running Dogs"), vec!["run", "dog"]);
    }

    #[test]
    fn stopwords_are_optional() {
        let opts = AnalysisOptions {
            stem: false,
            stopwords: true,
        };
        let got = Analyzers::new(opts).terms("the cat and the hat", Some("en"));
        assert_eq!(got, vec!["cat", "hat"]);
        assert_eq!(terms("en", "the cat").len(), 2);
    }

    #[test]
    fn unknown_language_only_segments_and_lowercases() {
        assert_eq!(terms("xx", "Running Dogs"), vec!["running", "dogs"]);
        let mut a = Analyzers::new(AnalysisOptions::default());
        assert_eq!(a.terms("Running", None), vec!["running"]);
    }

    #[test]
    fn overlong_tokens_are_dropped() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(terms("xx", &format!("ok {long}")), vec!["ok"]);
    }
}
