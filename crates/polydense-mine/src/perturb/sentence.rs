//! The answer sentence of a positive: the sentence a perturbation must change so that the
//! passage stops answering the query. XQuAD-R's BEIR files keep no answer span, so it is
//! the sentence that shares the most analysed terms with the query (ties: the earlier).

use polydense_lexical::analysis::Analyzers;
use std::collections::HashSet;
use std::ops::Range;

/// Byte ranges of the sentences of `text`: cut after `.`, `!`, `?` (and their CJK, Arabic
/// and Devanagari forms) when a space or the end follows, and after `。！？` always. A text
/// without such a mark is one sentence. Abbreviations ("Dr. Smith") cut too: a short
/// sentence is harmless here, since a perturbation only needs the one holding the answer.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let cut = match c {
            '。' | '！' | '？' => true,
            '.' | '!' | '?' | '؟' | '।' | '۔' => {
                chars.peek().is_none_or(|(_, n)| n.is_whitespace())
            }
            _ => false,
        };
        if cut {
            if !text[start..end].trim().is_empty() {
                out.push(trimmed(text, start..end));
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(trimmed(text, start..text.len()));
    }
    out
}

/// `range` without its leading and trailing whitespace.
fn trimmed(text: &str, range: Range<usize>) -> Range<usize> {
    let s = &text[range.clone()];
    let lead = s.len() - s.trim_start().len();
    let tail = s.len() - s.trim_end().len();
    range.start + lead..range.end - tail
}

/// The sentence of `passage` sharing the most distinct analysed terms with `query`.
pub fn answer_sentence(
    analyzers: &mut Analyzers,
    passage: &str,
    query: &str,
    lang: Option<&str>,
) -> Option<Range<usize>> {
    let q: HashSet<String> = analyzers.terms(query, lang).into_iter().collect();
    sentences(passage).into_iter().rev().max_by_key(|s| {
        let terms: HashSet<String> = analyzers
            .terms(&passage[s.clone()], lang)
            .into_iter()
            .collect();
        terms.intersection(&q).count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use polydense_lexical::AnalysisOptions;

    #[test]
    fn sentences_are_cut_in_several_scripts() {
        let t = "Paris is big. It was founded in 250 BC! Is it old?";
        let s: Vec<&str> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            s,
            ["Paris is big.", "It was founded in 250 BC!", "Is it old?"]
        );
        let t = "巴黎很大。它建于公元前250年。";
        assert_eq!(sentences(t).len(), 2);
        let t = "पेरिस बड़ा है। यह पुराना है।";
        assert_eq!(sentences(t).len(), 2);
        let t = "باريس كبيرة. هل هي قديمة؟";
        assert_eq!(sentences(t).len(), 2);
        assert_eq!(sentences("3.5 million people live here").len(), 1);
    }

    #[test]
    fn the_answer_sentence_shares_most_terms_with_the_query() {
        let mut a = Analyzers::new(AnalysisOptions {
            stem: true,
            stopwords: true,
        });
        let p = "Paris is the capital of France. The Eiffel Tower was built in 1889. It is tall.";
        let r = answer_sentence(&mut a, p, "When was the Eiffel Tower built?", Some("en")).unwrap();
        assert_eq!(&p[r], "The Eiffel Tower was built in 1889.");
        let p = "巴黎是法国的首都。埃菲尔铁塔建于1889年。";
        let r = answer_sentence(&mut a, p, "埃菲尔铁塔是哪一年建的？", Some("zh")).unwrap();
        assert_eq!(&p[r], "埃菲尔铁塔建于1889年。");
    }
}
