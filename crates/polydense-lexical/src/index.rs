//! Building a BM25 index: documents are analysed in parallel, per language, and handed to
//! tantivy pre-tokenised, since tantivy binds one tokenizer to a field, not to a document.

use crate::analysis::{primary_language, AnalysisOptions, Analyzers};
use crate::error::{LexicalError, Result};
use crate::meta::{IndexMeta, FORMAT_VERSION, META_FILE};
use polydense_data::{DataError, Document};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::tokenizer::PreTokenizedString;
use tantivy::{Index, IndexWriter, TantivyDocument};

/// Field names of the tantivy schema.
pub(crate) mod fields {
    pub const ID: &str = "id";
    pub const BODY: &str = "body";
    pub const LEN: &str = "len";
}

/// Documents analysed per parallel batch; large enough to keep every core busy, small
/// enough that progress moves and memory stays flat on big corpora.
const BATCH: usize = 2048;

/// How to build an index.
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Analyse every document as this language; `None` follows each document's `lang`.
    pub lang: Option<String>,
    /// Stemming and stopwords.
    pub analysis: AnalysisOptions,
    /// Indexing threads; 0 means one per core.
    pub threads: usize,
}

/// What was indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSummary {
    /// The metadata written beside the index.
    pub meta: IndexMeta,
    /// Where the index now is.
    pub dir: PathBuf,
}

pub(crate) fn schema() -> (Schema, Field, Field, Field) {
    let mut b = Schema::builder();
    let id = b.add_text_field(fields::ID, STRING | STORED | FAST);
    // Frequencies but no positions: BM25 needs nothing more, and positions double the size.
    let body_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let body = b.add_text_field(fields::BODY, body_opts);
    // The exact token count; tantivy's own fieldnorm is a lossy one-byte code.
    let len = b.add_u64_field(fields::LEN, FAST);
    (b.build(), id, body, len)
}

/// The text BM25 sees for a document: title and body, as pyserini's BEIR indexes do.
pub fn indexed_text(doc: &Document) -> String {
    if doc.title.is_empty() {
        doc.text.clone()
    } else {
        format!("{} {}", doc.title, doc.text)
    }
}

/// Builds an index of `docs` in `dir`, replacing a previous polydense index there; `progress`
/// is called with the number of documents added since its last call.
///
/// The index is built in a sibling directory and moved into place at the end, so a failed
/// build leaves the previous index intact.
pub fn build_index<I>(
    dir: &Path,
    docs: I,
    opts: &IndexOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<IndexSummary>
where
    I: IntoIterator<Item = Result<Document, DataError>>,
{
    if dir.exists() && !dir.join(META_FILE).exists() {
        let non_empty = std::fs::read_dir(dir)
            .map_err(|e| LexicalError::io(dir, e))?
            .next()
            .is_some();
        if non_empty {
            return Err(LexicalError::Meta {
                path: dir.to_path_buf(),
                message: "exists and is not a polydense BM25 index; refusing to overwrite it"
                    .into(),
            });
        }
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "index".into());
    // Unique per process and per call, so concurrent builds never share a directory.
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let nth = BUILDS.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.with_file_name(format!(".{name}.building-{}-{nth}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| LexicalError::io(&tmp, e))?;
    let result = build_into(&tmp, docs, opts, progress);
    let meta = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| LexicalError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| LexicalError::io(dir, e))?;
    Ok(IndexSummary {
        meta,
        dir: dir.to_path_buf(),
    })
}

fn build_into<I>(
    dir: &Path,
    docs: I,
    opts: &IndexOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<IndexMeta>
where
    I: IntoIterator<Item = Result<Document, DataError>>,
{
    let (schema, id_f, body_f, len_f) = schema();
    let index = Index::create_in_dir(dir, schema).map_err(|e| LexicalError::index(dir, e))?;
    let threads = if opts.threads == 0 {
        rayon::current_num_threads()
    } else {
        opts.threads
    }
    .clamp(1, 8);
    // 64 MB of arena per thread: tantivy's minimum is 15 MB, and more only delays flushes.
    let writer: IndexWriter = index
        .writer_with_num_threads(threads, (threads * 64) << 20)
        .map_err(|e| LexicalError::index(dir, e))?;
    let fixed_lang = opts.lang.as_deref().map(primary_language);
    let analyzers = Analyzers::new(opts.analysis);
    let mut seen: HashSet<String> = HashSet::new();
    let mut langs: BTreeMap<String, u64> = BTreeMap::new();
    let mut total_docs = 0u64;
    let mut total_tokens = 0u64;
    let mut batch: Vec<Document> = Vec::with_capacity(BATCH);
    let mut flush = |batch: &mut Vec<Document>| -> Result<()> {
        let tokens: u64 = batch
            .par_iter()
            .map_init(
                || analyzers.clone(),
                |an, doc| {
                    let lang = fixed_lang.as_deref().or(doc.lang.as_deref());
                    let tokens = an.tokens(&indexed_text(doc), lang);
                    let n = tokens.len() as u64;
                    let mut td = TantivyDocument::new();
                    td.add_text(id_f, &doc.id);
                    td.add_u64(len_f, n);
                    td.add_pre_tokenized_text(
                        body_f,
                        PreTokenizedString {
                            text: String::new(),
                            tokens,
                        },
                    );
                    writer.add_document(td).map(|_| n)
                },
            )
            .sum::<tantivy::Result<u64>>()
            .map_err(|e| LexicalError::index(dir, e))?;
        total_tokens += tokens;
        total_docs += batch.len() as u64;
        progress(batch.len() as u64);
        batch.clear();
        Ok(())
    };
    for doc in docs {
        let doc = doc?;
        if !seen.insert(doc.id.clone()) {
            return Err(LexicalError::DuplicateId { id: doc.id });
        }
        let lang = fixed_lang
            .clone()
            .or_else(|| doc.lang.as_deref().map(primary_language))
            .unwrap_or_default();
        *langs.entry(lang).or_default() += 1;
        batch.push(doc);
        if batch.len() == BATCH {
            flush(&mut batch)?;
        }
    }
    flush(&mut batch)?;
    let mut writer = writer;
    writer.commit().map_err(|e| LexicalError::index(dir, e))?;
    writer
        .wait_merging_threads()
        .map_err(|e| LexicalError::index(dir, e))?;
    let meta = IndexMeta {
        format: FORMAT_VERSION,
        lang: fixed_lang,
        analysis: opts.analysis,
        docs: total_docs,
        tokens: total_tokens,
        langs,
    };
    meta.save(dir)?;
    Ok(meta)
}
