//! Logical negation of the answer sentence, by rules written for the languages where a rule
//! is reliable; the others are reported as unsupported rather than fed noise.
//!
//! | lang | rule |
//! |---|---|
//! | en | `not` after the first auxiliary or copula (is, was, has, can, …); an existing `not` is removed |
//! | de | `nicht` after the first finite auxiliary or copula (ist, war, wurde, hat, kann, …) |
//! | es | `no` before the first copula or auxiliary (es, fue, ha, está, tiene, puede, …) |
//! | ru | `не` before the first copula or auxiliary (был, является, стал, может, …) |
//! | el | `δεν` before the first copula or auxiliary (είναι, ήταν, έχει, μπορεί, θα, …) |
//! | vi | `là` → `không phải là`, `có` → `không có`, `được` → `không được` |
//! | tr | the sentence-final verb takes the negative suffix: `kuruldu` → `kurulmadı`, `kurulmuştur` → `kurulmamıştır`, `geliyor` → `gelmiyor`, `başkenttir` → `başkent değildir`, `var` → `yok` |
//!
//! Unsupported: ar (negation depends on tense and mood: لا، لم، لن، ليس, and the verb's form
//! changes), hi (नहीं goes before the main verb of a compound verb, which needs a parser),
//! th and zh (no spaces to find the verb; 不/没 depend on aspect, and 是 sits inside many
//! words), and any language not listed.

use std::ops::Range;

/// The languages [`negate`] has a rule for.
pub const SUPPORTED: [&str; 7] = ["en", "de", "es", "ru", "el", "vi", "tr"];

const EN: &[&str] = &[
    "is", "are", "was", "were", "has", "have", "had", "can", "could", "will", "would", "should",
    "may", "might", "must", "does", "do", "did",
];
const DE: &[&str] = &[
    "ist", "sind", "war", "waren", "wird", "werden", "wurde", "wurden", "hat", "haben", "hatte",
    "hatten", "kann", "können", "konnte", "konnten", "muss", "musste", "soll", "sollte",
];
const ES: &[&str] = &[
    "es", "son", "fue", "fueron", "era", "eran", "ha", "han", "había", "habían", "está", "están",
    "estaba", "estaban", "tiene", "tienen", "tenía", "tenían", "puede", "pueden", "será", "serán",
];
const RU: &[&str] = &[
    "был",
    "была",
    "было",
    "были",
    "является",
    "являются",
    "являлся",
    "являлась",
    "являлись",
    "стал",
    "стала",
    "стало",
    "стали",
    "может",
    "могут",
    "мог",
    "могла",
    "могли",
    "имеет",
    "имеют",
    "будет",
    "будут",
];
const EL: &[&str] = &[
    "είναι",
    "ήταν",
    "έχει",
    "έχουν",
    "είχε",
    "είχαν",
    "μπορεί",
    "μπορούν",
    "μπορούσε",
    "θα",
];

/// A word of the sentence: byte range of its letters, and whether it starts the sentence.
struct Word {
    range: Range<usize>,
    lower: String,
}

fn words(text: &str, sentence: Range<usize>) -> Vec<Word> {
    let s = &text[sentence.clone()];
    s.split_whitespace()
        .map(|w| {
            let offset = w.as_ptr() as usize - s.as_ptr() as usize;
            let lead = w.len() - w.trim_start_matches(|c: char| !c.is_alphanumeric()).len();
            let core = w.trim_matches(|c: char| !c.is_alphanumeric());
            let start = sentence.start + offset + lead;
            Word {
                range: start..start + core.len(),
                lower: core.to_lowercase(),
            }
        })
        .filter(|w| !w.range.is_empty())
        .collect()
}

/// `word` with its first letter upper-cased (or lower-cased), for a sentence-initial swap.
fn with_initial(word: &str, upper: bool) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(f) if upper => f.to_uppercase().chain(c).collect(),
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Replaces `range` of `text` with `new`.
fn splice(text: &str, range: Range<usize>, new: &str) -> String {
    format!("{}{new}{}", &text[..range.start], &text[range.end..])
}

/// `text` with the sentence `sentence` negated by `lang`'s rule, and the edit
/// (`"was→was not"`); `None` when the language has no rule or the sentence no match.
pub fn negate(text: &str, sentence: Range<usize>, lang: &str) -> Option<(String, String)> {
    let ws = words(text, sentence.clone());
    match lang {
        "en" => after(text, &ws, EN, "not"),
        "de" => after(text, &ws, DE, "nicht"),
        "es" => before(text, &ws, ES, "no"),
        "ru" => before(text, &ws, RU, "не"),
        "el" => before(text, &ws, EL, "δεν"),
        "vi" => vietnamese(text, &ws),
        "tr" => turkish(text, &ws),
        _ => None,
    }
}

/// `neg` inserted after the first word of `list`, or an existing `neg` there removed.
fn after(text: &str, ws: &[Word], list: &[&str], neg: &str) -> Option<(String, String)> {
    let i = ws.iter().position(|w| list.contains(&w.lower.as_str()))?;
    let verb = &text[ws[i].range.clone()];
    if let Some(next) = ws.get(i + 1).filter(|n| n.lower == neg) {
        let out = format!("{}{}", &text[..ws[i].range.end], &text[next.range.end..]);
        return Some((out, format!("{verb} {neg}→{verb}")));
    }
    let out = splice(text, ws[i].range.clone(), &format!("{verb} {neg}"));
    Some((out, format!("{verb}→{verb} {neg}")))
}

/// `neg` inserted before the first word of `list`, or an existing `neg` before it removed.
fn before(text: &str, ws: &[Word], list: &[&str], neg: &str) -> Option<(String, String)> {
    let i = ws.iter().position(|w| list.contains(&w.lower.as_str()))?;
    let verb = &text[ws[i].range.clone()];
    if i > 0 && ws[i - 1].lower == neg {
        let prev = &ws[i - 1];
        let initial = i == 1;
        let out = splice(
            text,
            prev.range.start..ws[i].range.end,
            &with_initial(verb, initial),
        );
        return Some((out, format!("{neg} {verb}→{verb}")));
    }
    let initial = i == 0 && text[ws[i].range.clone()].starts_with(char::is_uppercase);
    let new = match initial {
        true => format!("{} {}", with_initial(neg, true), with_initial(verb, false)),
        false => format!("{neg} {verb}"),
    };
    let out = splice(text, ws[i].range.clone(), &new);
    Some((out, format!("{verb}→{new}")))
}

fn vietnamese(text: &str, ws: &[Word]) -> Option<(String, String)> {
    let i = ws
        .iter()
        .position(|w| matches!(w.lower.as_str(), "là" | "có" | "được"))?;
    if i > 0 && matches!(ws[i - 1].lower.as_str(), "không" | "phải") {
        return None;
    }
    let verb = &text[ws[i].range.clone()];
    let new = match ws[i].lower.as_str() {
        "là" => format!("không phải {verb}"),
        _ => format!("không {verb}"),
    };
    Some((
        splice(text, ws[i].range.clone(), &new),
        format!("{verb}→{new}"),
    ))
}

/// Whether the last vowel of `stem` is a back vowel (a, ı, o, u), for vowel harmony.
fn back_vowel(stem: &str) -> bool {
    stem.chars()
        .rev()
        .find(|c| "aıoueiöüAIOUEİÖÜ".contains(*c))
        .is_none_or(|c| "aıouAIOU".contains(c))
}

/// Turkish: the negative suffix on the sentence-final verb.
fn turkish(text: &str, ws: &[Word]) -> Option<(String, String)> {
    let last = ws.last()?;
    let w = &text[last.range.clone()];
    if [
        "madı", "medi", "mamış", "memiş", "mıyor", "miyor", "muyor", "müyor", "değil", "yok",
    ]
    .iter()
    .any(|n| w.contains(n))
    {
        return None;
    }
    let new = turkish_negative(w)?;
    Some((splice(text, last.range.clone(), &new), format!("{w}→{new}")))
}

/// The negative of one Turkish verb form, for the forms the rule knows.
pub fn turkish_negative(w: &str) -> Option<String> {
    let ends = |s: &[&str]| {
        s.iter()
            .find(|e| w.ends_with(**e))
            .map(|e| &w[..w.len() - e.len()])
    };
    match w {
        "var" => return Some("yok".into()),
        "vardı" => return Some("yoktu".into()),
        "vardır" => return Some("yoktur".into()),
        _ => {}
    }
    // Reported past and its formal copula: kurul-muştur → kurul-ma-mıştır.
    if let Some(stem) = ends(&[
        "mıştır",
        "miştir",
        "muştur",
        "müştür",
        "mış",
        "miş",
        "muş",
        "müş",
    ]) {
        let formal =
            w.ends_with("tır") || w.ends_with("tir") || w.ends_with("tur") || w.ends_with("tür");
        let (neg, mis) = if back_vowel(stem) {
            ("ma", "mış")
        } else {
            ("me", "miş")
        };
        let cop = match (formal, back_vowel(stem)) {
            (true, true) => "tır",
            (true, false) => "tir",
            _ => "",
        };
        return Some(format!("{stem}{neg}{mis}{cop}"));
    }
    // Present continuous of a consonant stem: gel-iyor → gel-m-iyor (a vowel stem, oku-yor →
    // oku-mu-yor, looks the same without a lexicon and comes out wrong; it is rare in
    // encyclopedic text).
    if let Some(stem) = ends(&["ıyor", "iyor", "uyor", "üyor"]) {
        let vowel = &w[stem.len()..stem.len() + w[stem.len()..].chars().next()?.len_utf8()];
        return Some(format!("{stem}m{vowel}yor"));
    }
    // Definite past, plural too: kurul-du → kurul-ma-dı, yap-tı → yap-ma-dı.
    if let Some(stem) = ends(&[
        "dılar", "diler", "dular", "düler", "tılar", "tiler", "tular", "tüler",
    ]) {
        let (neg, past) = if back_vowel(stem) {
            ("ma", "dılar")
        } else {
            ("me", "diler")
        };
        return Some(format!("{stem}{neg}{past}"));
    }
    if let Some(stem) = ends(&["dı", "di", "du", "dü", "tı", "ti", "tu", "tü"]) {
        if stem.chars().count() >= 2 {
            let (neg, past) = if back_vowel(stem) {
                ("ma", "dı")
            } else {
                ("me", "di")
            };
            return Some(format!("{stem}{neg}{past}"));
        }
    }
    // Copula on a noun or adjective: başkent-tir → başkent değildir.
    if let Some(stem) = ends(&["dır", "dir", "dur", "dür", "tır", "tir", "tur", "tür"]) {
        if stem.chars().count() >= 2 {
            return Some(format!("{stem} değildir"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(text: &str, lang: &str) -> Option<String> {
        negate(text, 0..text.len(), lang).map(|(t, _)| t)
    }

    #[test]
    fn each_supported_language_negates_a_fixed_sentence() {
        let cases = [
            (
                "The tower was built in 1889.",
                "en",
                "The tower was not built in 1889.",
            ),
            (
                "The tower was not built in 1889.",
                "en",
                "The tower was built in 1889.",
            ),
            (
                "Der Turm wurde 1889 gebaut.",
                "de",
                "Der Turm wurde nicht 1889 gebaut.",
            ),
            (
                "La torre fue construida en 1889.",
                "es",
                "La torre no fue construida en 1889.",
            ),
            (
                "Es la capital de Francia.",
                "es",
                "No es la capital de Francia.",
            ),
            (
                "La torre no fue construida en 1889.",
                "es",
                "La torre fue construida en 1889.",
            ),
            (
                "Башня была построена в 1889 году.",
                "ru",
                "Башня не была построена в 1889 году.",
            ),
            ("Ο πύργος ήταν ψηλός.", "el", "Ο πύργος δεν ήταν ψηλός."),
            (
                "Hà Nội là thủ đô của Việt Nam.",
                "vi",
                "Hà Nội không phải là thủ đô của Việt Nam.",
            ),
            (
                "Kule 1889 yılında kuruldu.",
                "tr",
                "Kule 1889 yılında kurulmadı.",
            ),
            (
                "Kule 1889 yılında kurulmuştur.",
                "tr",
                "Kule 1889 yılında kurulmamıştır.",
            ),
            (
                "Ankara Türkiye'nin başkentidir.",
                "tr",
                "Ankara Türkiye'nin başkenti değildir.",
            ),
        ];
        for (text, lang, want) in cases {
            assert_eq!(neg(text, lang).as_deref(), Some(want), "{lang}: {text}");
        }
    }

    #[test]
    fn turkish_suffixes_follow_vowel_harmony() {
        assert_eq!(turkish_negative("geldi").as_deref(), Some("gelmedi"));
        assert_eq!(turkish_negative("yaptı").as_deref(), Some("yapmadı"));
        assert_eq!(turkish_negative("geliyor").as_deref(), Some("gelmiyor"));
        assert_eq!(
            turkish_negative("gelmiştir").as_deref(),
            Some("gelmemiştir")
        );
        assert_eq!(turkish_negative("kurdular").as_deref(), Some("kurmadılar"));
        assert_eq!(turkish_negative("vardır").as_deref(), Some("yoktur"));
        assert_eq!(turkish_negative("ev"), None);
    }

    #[test]
    fn unsupported_languages_and_sentences_without_a_verb_give_nothing() {
        for lang in ["ar", "hi", "th", "zh", "xx"] {
            assert_eq!(neg("anything at all was here", lang), None, "{lang}");
        }
        assert_eq!(neg("A list of towers in Paris.", "en"), None);
        assert_eq!(neg("Kule 1889 yılında kurulmadı.", "tr"), None);
        // Only the given sentence changes.
        let t = "Paris is big. The tower was built in 1889.";
        let (out, edit) = negate(t, 14..t.len(), "en").unwrap();
        assert_eq!(out, "Paris is big. The tower was not built in 1889.");
        assert_eq!(edit, "was→was not");
    }
}
