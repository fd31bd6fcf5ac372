//! Reading the 11 XQuAD-R files into one aligned structure, checking that they really are
//! parallel (same articles, paragraphs and question ids in every language).

use crate::atomic::AtomicFile;
use crate::error::{DataError, Result};
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The whole dataset, aligned: `articles[a].paragraphs[p].per_lang[l]` is paragraph `p` of
/// article `a` in language `langs[l]`.
#[derive(Debug, Clone)]
pub struct Source {
    pub langs: Vec<String>,
    pub articles: Vec<Article>,
}

/// One Wikipedia article; its title is the same identifier in every language.
#[derive(Debug, Clone)]
pub struct Article {
    pub title: String,
    pub paragraphs: Vec<Paragraph>,
}

/// A paragraph and its translations, indexed like [`Source::langs`].
#[derive(Debug, Clone)]
pub struct Paragraph {
    pub per_lang: Vec<ParagraphText>,
}

/// A paragraph in one language, split into the sentences the LAReQA pool is made of.
#[derive(Debug, Clone)]
pub struct ParagraphText {
    pub context: String,
    pub sentences: Vec<String>,
    pub questions: Vec<Question>,
}

/// A question, with the index of the sentence that holds its answer.
#[derive(Debug, Clone)]
pub struct Question {
    pub id: String,
    pub text: String,
    pub answer_sentence: usize,
}

#[derive(Deserialize)]
struct RawFile {
    data: Vec<RawArticle>,
}

#[derive(Deserialize)]
struct RawArticle {
    title: String,
    paragraphs: Vec<RawParagraph>,
}

#[derive(Deserialize)]
struct RawParagraph {
    context: String,
    sentences: Vec<String>,
    sentence_breaks: Vec<(usize, usize)>,
    qas: Vec<RawQa>,
}

#[derive(Deserialize)]
struct RawQa {
    id: String,
    question: String,
    answers: Vec<RawAnswer>,
}

#[derive(Deserialize)]
struct RawAnswer {
    answer_start: usize,
}

impl Source {
    /// Reads `{dir}/{lang}.json` for each language and aligns them; fails with the file and a
    /// hint when a file is missing, malformed, or not parallel to the first language.
    pub fn load(dir: &Path, langs: &[&str]) -> Result<Source> {
        if langs.is_empty() {
            return Err(DataError::invalid(dir, "no languages selected"));
        }
        let mut files = Vec::with_capacity(langs.len());
        for lang in langs {
            let path = dir.join(format!("{lang}.json"));
            files.push((path.clone(), parse_file(&path)?));
        }
        let (ref_path, reference) = &files[0];
        let mut articles: Vec<Article> = reference
            .data
            .iter()
            .map(|a| Article {
                title: a.title.clone(),
                paragraphs: a
                    .paragraphs
                    .iter()
                    .map(|_| Paragraph {
                        per_lang: Vec::with_capacity(langs.len()),
                    })
                    .collect(),
            })
            .collect();
        for (path, file) in &files {
            check_parallel(path, file, ref_path, reference)?;
            for (a, raw_article) in file.data.iter().enumerate() {
                for (p, raw) in raw_article.paragraphs.iter().enumerate() {
                    let text = paragraph_text(path, &raw_article.title, p, raw)?;
                    articles[a].paragraphs[p].per_lang.push(text);
                }
            }
        }
        Ok(Source {
            langs: langs.iter().map(|s| s.to_string()).collect(),
            articles,
        })
    }
}

fn parse_file(path: &Path) -> Result<RawFile> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            return DataError::invalid(path, "XQuAD-R file not found").hint(
                "set POLYDENSE_DATA to the folder holding xquad-r/, or run `polydense data fetch xquad-r`",
            );
        }
        DataError::io(path, e)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        DataError::invalid(path, format!("not XQuAD-R JSON: {e}"))
            .at_line(e.line())
            .hint("expected SQuAD v1.1 JSON with `sentences` and `sentence_breaks` per paragraph")
    })
}

fn check_parallel(path: &Path, file: &RawFile, ref_path: &Path, reference: &RawFile) -> Result<()> {
    let not_parallel = |what: String| {
        DataError::invalid(
            path,
            format!("not parallel to {}: {what}", ref_path.display()),
        )
        .hint("all XQuAD-R files must come from the same release")
    };
    if file.data.len() != reference.data.len() {
        return Err(not_parallel(format!(
            "{} articles against {}",
            file.data.len(),
            reference.data.len()
        )));
    }
    for (a, (mine, theirs)) in file.data.iter().zip(&reference.data).enumerate() {
        if mine.paragraphs.len() != theirs.paragraphs.len() {
            return Err(not_parallel(format!(
                "article {a} has {} paragraphs against {}",
                mine.paragraphs.len(),
                theirs.paragraphs.len()
            )));
        }
        for (p, (mp, tp)) in mine.paragraphs.iter().zip(&theirs.paragraphs).enumerate() {
            let ids = |x: &RawParagraph| x.qas.iter().map(|q| q.id.clone()).collect::<Vec<_>>();
            if ids(mp) != ids(tp) {
                return Err(not_parallel(format!(
                    "article {a} paragraph {p} has other question ids"
                )));
            }
        }
    }
    Ok(())
}

fn paragraph_text(path: &Path, title: &str, p: usize, raw: &RawParagraph) -> Result<ParagraphText> {
    let where_ = || format!("article `{title}` paragraph {p}");
    if raw.sentences.is_empty() || raw.sentences.len() != raw.sentence_breaks.len() {
        return Err(DataError::invalid(
            path,
            format!("{}: `sentences` and `sentence_breaks` disagree", where_()),
        )
        .field("sentence_breaks"));
    }
    let questions = raw
        .qas
        .iter()
        .map(|qa| {
            let start = qa
                .answers
                .first()
                .ok_or_else(|| {
                    DataError::invalid(
                        path,
                        format!("{}: question {} has no answer", where_(), qa.id),
                    )
                    .field("answers")
                })?
                .answer_start;
            // The answer sentence is the one whose span holds answers[0].answer_start; a start in
            // the gap between two spans belongs to the sentence before it.
            let answer_sentence = raw
                .sentence_breaks
                .iter()
                .rposition(|&(s, _)| s <= start)
                .unwrap_or(0);
            Ok(Question {
                id: qa.id.clone(),
                text: qa.question.clone(),
                answer_sentence,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ParagraphText {
        context: raw.context.clone(),
        sentences: raw.sentences.clone(),
        questions,
    })
}

/// Where the public release lives; `fetch` downloads from it.
const UPSTREAM: &str =
    "https://raw.githubusercontent.com/google-research-datasets/lareqa/master/xquad-r";

/// Downloads the XQuAD-R files and their licence into `dest` with `curl`, each file written
/// atomically; files already present are kept. Kept this small on purpose: it needs the
/// network, which most runs do not have, so `curl` avoids an HTTP stack in the binary.
pub fn fetch(dest: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let names = super::LANGUAGES
        .iter()
        .map(|l| format!("{l}.json"))
        .chain(["LICENSE".to_string()]);
    for name in names {
        let target = dest.join(&name);
        if target.exists() {
            continue;
        }
        let url = format!("{UPSTREAM}/{name}");
        let out = std::process::Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location", &url])
            .output()
            .map_err(|e| {
                DataError::invalid(&target, format!("could not run curl: {e}"))
                    .hint("install curl, or download the files by hand from the LAReQA repository")
            })?;
        if !out.status.success() {
            return Err(DataError::invalid(
                &target,
                format!(
                    "download of {url} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let mut f = AtomicFile::create(&target)?;
        f.write_all(&out.stdout)
            .map_err(|e| DataError::io(&target, e))?;
        f.commit()?;
        written.push(target);
    }
    Ok(written)
}
