//! XQuAD-R (LAReQA, Roy et al. 2020): 11 fully parallel languages of SQuAD-style questions,
//! turned into BEIR retrieval datasets.
//!
//! The source is the public `xquad-r/{lang}.json` files (CC BY-SA 4.0). Two tasks:
//! - `paragraph`: the question's paragraph is relevant;
//! - `lareqa`: the pool is every sentence; the answer sentence is relevant, and in the pooled
//!   variant its 10 translations are relevant too, as in LAReQA §3.1.
//!
//! Articles are the unit of the train/dev/test split (see [`crate::splits`]); the same article
//! lands in the same split in every language, so no translation of a test question is trained on.

mod build;
mod source;

pub use build::{
    build, prepare, PrepareOptions, Relevance, Summary, Task, Variant, VariantSpec, ARTICLE_OF_ID,
};
pub use source::{fetch, Article, Paragraph, ParagraphText, Question, Source};

/// The 11 languages of XQuAD-R, in the order the dataset lists them.
pub const LANGUAGES: [&str; 11] = [
    "ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh",
];
