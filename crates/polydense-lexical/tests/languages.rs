//! Analysis of every XQuAD-R language (ar de el en es hi ru th tr vi zh) on real sentences:
//! scripts without spaces must come out as words, not characters or whole sentences, and
//! stemmed languages must conflate inflected forms.

use polydense_lexical::{AnalysisOptions, Analyzers};

fn terms(lang: &str, text: &str) -> Vec<String> {
    Analyzers::new(AnalysisOptions::default()).terms(text, Some(lang))
}

fn unstemmed(lang: &str, text: &str) -> Vec<String> {
    let opts = AnalysisOptions {
        stem: false,
        stopwords: false,
    };
    Analyzers::new(opts).terms(text, Some(lang))
}

#[test]
fn thai_is_segmented_into_words() {
    // "The university is in Bangkok" — written without spaces between words.
    let text = "มหาวิทยาลัยอยู่ในกรุงเทพ";
    let got = terms("th", text);
    assert!(got.len() >= 3, "one token per sentence: {got:?}");
    let chars = text.chars().count();
    assert!(got.len() < chars / 2, "split into characters: {got:?}");
    assert!(got.contains(&"มหาวิทยาลัย".to_string()), "{got:?}");
    assert_eq!(got.concat(), text, "segmentation must cover the text");
}

#[test]
fn chinese_is_segmented_into_words() {
    // "Beijing is the capital of China".
    let text = "北京是中国的首都";
    let got = terms("zh", text);
    assert!(got.len() >= 3, "{got:?}");
    assert!(
        got.len() < text.chars().count(),
        "split into characters: {got:?}"
    );
    assert!(got.contains(&"北京".to_string()), "{got:?}");
    assert!(got.contains(&"首都".to_string()), "{got:?}");
}

#[test]
fn english_stems_and_lowercases() {
    assert_eq!(terms("en", "The Running Dogs"), vec!["the", "run", "dog"]);
    assert_eq!(terms("en", "connection"), terms("en", "connected"));
}

#[test]
fn german_stems() {
    assert_eq!(terms("de", "Häuser"), terms("de", "Häusern"));
    assert_eq!(terms("de", "Die Universität")[0], "die");
}

#[test]
fn spanish_stems() {
    assert_eq!(terms("es", "Casas"), terms("es", "casa"));
    assert_eq!(terms("es", "corriendo"), terms("es", "correr"));
}

#[test]
fn russian_stems_cyrillic_and_lowercases() {
    assert_eq!(terms("ru", "Москвы"), terms("ru", "москва"));
}

#[test]
fn greek_stems_and_lowercases() {
    let a = terms("el", "ΠΌΛΗ");
    let b = terms("el", "πόλεις");
    assert_eq!(a.len(), 1);
    assert_eq!(a, b);
}

#[test]
fn turkish_stems() {
    assert_eq!(terms("tr", "evlerden"), terms("tr", "evler"));
}

#[test]
fn arabic_stems() {
    // "the books" and "books": the Snowball Arabic stemmer removes the article.
    assert_eq!(terms("ar", "الكتب"), terms("ar", "كتب"));
    assert_eq!(unstemmed("ar", "الكتب في المكتبة").len(), 3);
}

#[test]
fn hindi_is_split_on_spaces_without_breaking_matras() {
    // "Delhi is the capital of India": combining vowel signs must stay in their word.
    let got = terms("hi", "दिल्ली भारत की राजधानी है");
    assert_eq!(got, vec!["दिल्ली", "भारत", "की", "राजधानी", "है"]);
}

#[test]
fn vietnamese_keeps_diacritics_and_lowercases() {
    let got = terms("vi", "Hà Nội là thủ đô");
    assert_eq!(got, vec!["hà", "nội", "là", "thủ", "đô"]);
}

#[test]
fn punctuation_never_becomes_a_term() {
    for (lang, text) in [
        ("zh", "你好，世界。"),
        ("th", "สวัสดี!"),
        ("ar", "مرحبا، عالم؟"),
    ] {
        for t in terms(lang, text) {
            assert!(t.chars().any(char::is_alphanumeric), "{lang}: {t:?}");
        }
    }
}
