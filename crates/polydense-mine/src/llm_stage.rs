//! What the three LLM stages share: asking the client for a batch of answers while the
//! progress line shows the rates, counting the stage's LLM use in the stats, and keeping
//! passages short enough for small context windows.

use crate::error::{MineError, Result};
use crate::progress::Progress;
use crate::stage::DropLog;
use polydense_llm::{Answer, LlmClient, Message};

/// Asks `client` for one `A` per prompt (in at most `max_tokens` tokens) on behalf of
/// `stage`, showing its rates on
/// `progress` and adding its tally to `log`. `None` marks an answer that could not be read
/// even after the reminder (counted as skipped).
pub fn ask<A: Answer>(
    client: &LlmClient,
    stage: &str,
    prompts: Vec<Vec<Message>>,
    max_tokens: u32,
    log: &mut DropLog,
    progress: &dyn Progress,
) -> Result<Vec<Option<A>>> {
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let observe = |t: &polydense_llm::Tally, secs: f64| {
        progress.status(&format!("{stage}: {}", t.status(secs)));
    };
    let (answers, tally) = client
        .ask::<A>(prompts, max_tokens, &observe)
        .map_err(|e| MineError::Stage {
            stage: stage.to_string(),
            message: e.to_string(),
        })?;
    log.count(stage, tally.counts());
    Ok(answers)
}

/// `text` cut to at most `max_chars` characters at a word boundary, with an ellipsis when
/// cut: XQuAD-R paragraphs fit whole, but a long corpus passage must not crowd out the
/// instructions of a small model.
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    let at = cut
        .rfind(char::is_whitespace)
        .filter(|&i| i > max_chars / 2);
    format!("{}…", cut[..at.unwrap_or(cut.len())].trim_end())
}

/// The English name of a language code, for prompts ("write in German"); the code itself
/// when it is not one of the common ones.
pub fn language_name(code: Option<&str>) -> String {
    let Some(code) = code else {
        return "the language of the query".into();
    };
    let name = match code.split(['-', '_']).next().unwrap_or(code) {
        "ar" => "Arabic",
        "de" => "German",
        "el" => "Greek",
        "en" => "English",
        "es" => "Spanish",
        "fr" => "French",
        "hi" => "Hindi",
        "it" => "Italian",
        "ja" => "Japanese",
        "ko" => "Korean",
        "nl" => "Dutch",
        "pt" => "Portuguese",
        "ro" => "Romanian",
        "ru" => "Russian",
        "th" => "Thai",
        "tr" => "Turkish",
        "vi" => "Vietnamese",
        "zh" => "Chinese",
        other => return format!("the language with code `{other}`"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_cuts_at_a_word_and_leaves_short_text_alone() {
        assert_eq!(clip("short text", 50), "short text");
        assert_eq!(clip("one two three four five", 12), "one two…");
        assert_eq!(clip("北京是中华人民共和国的首都", 4), "北京是中…");
        assert_eq!(language_name(Some("de")), "German");
        assert_eq!(language_name(Some("zh-cn")), "Chinese");
        assert_eq!(language_name(Some("xx")), "the language with code `xx`");
    }
}
