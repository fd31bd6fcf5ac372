//! Word segmentation by ICU4X, as a tantivy [`Tokenizer`].
//!
//! ICU4X's `icu_segmenter` is chosen over per-language segmenters (jieba-rs for Chinese,
//! lindera for Japanese and Korean, a separate Thai dictionary) because one crate, maintained
//! by the Unicode Consortium, implements UAX #29 word boundaries for every script and ships
//! compiled dictionaries for Thai, Lao, Khmer, Burmese, Chinese and Japanese, with no data
//! download at run time. Korean separates words with spaces, which UAX #29 already handles.

use icu_segmenter::options::WordBreakInvariantOptions;
use icu_segmenter::{WordSegmenter, WordSegmenterBorrowed};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Splits text into word-like segments (letters, ideographs, numbers), dropping spaces and
/// punctuation, so that unspaced scripts become words rather than sentences or characters.
#[derive(Clone, Copy)]
pub struct IcuWordTokenizer {
    segmenter: WordSegmenterBorrowed<'static>,
}

impl Default for IcuWordTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl IcuWordTokenizer {
    /// Builds the tokenizer over the dictionary model for complex scripts: the issue asks for
    /// dictionary segmentation of th/zh/ja, and it is several times faster than ICU's LSTM.
    pub fn new() -> Self {
        IcuWordTokenizer {
            segmenter: WordSegmenter::new_dictionary(WordBreakInvariantOptions::default()),
        }
    }

    /// Calls `sink(from, to)` with the byte range of every word-like segment of `text`.
    pub fn for_each_word(&self, text: &str, mut sink: impl FnMut(usize, usize)) {
        let mut it = self.segmenter.segment_str(text);
        let mut start = match it.next() {
            Some(s) => s,
            None => return,
        };
        // ICU4X's `is_word_like` is not used: it reports `WordType::None` for a word that
        // ends in a combining mark (most Devanagari words, e.g. "की"), which would drop them.
        // A segment is a word when it holds a letter or a digit.
        for end in it {
            if text[start..end].chars().any(char::is_alphanumeric) {
                sink(start, end);
            }
            start = end;
        }
    }
}

/// The token stream of [`IcuWordTokenizer`]: segmentation is done up front, because ICU's
/// iterator borrows the text and the word type of a segment is known only after its end.
pub struct IcuTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokenizer for IcuWordTokenizer {
    type TokenStream<'a> = IcuTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> IcuTokenStream {
        let mut tokens = Vec::new();
        self.for_each_word(text, |from, to| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position: tokens.len(),
                text: text[from..to].to_string(),
                position_length: 1,
            })
        });
        IcuTokenStream { tokens, next: 0 }
    }
}

impl TokenStream for IcuTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut t = IcuWordTokenizer::new();
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while s.advance() {
            out.push(s.token().text.clone());
        }
        out
    }

    #[test]
    fn drops_spaces_and_punctuation() {
        assert_eq!(words("Hello, world! 42."), vec!["Hello", "world", "42"]);
    }

    #[test]
    fn thai_becomes_words() {
        // ICU4X's own documented example: three words, "every / two / weeks".
        assert_eq!(words("ทุกสองสัปดาห์"), vec!["ทุก", "สอง", "สัปดาห์"]);
    }

    #[test]
    fn devanagari_words_ending_in_a_vowel_sign_are_kept() {
        assert_eq!(words("भारत की राजधानी"), vec!["भारत", "की", "राजधानी"]);
    }

    #[test]
    fn positions_count_words() {
        let mut t = IcuWordTokenizer::new();
        let mut s = t.token_stream("a b c");
        let mut pos = Vec::new();
        while s.advance() {
            pos.push(s.token().position);
        }
        assert_eq!(pos, vec![0, 1, 2]);
    }
}
