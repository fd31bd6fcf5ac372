//! Why an evaluation could not be computed.

use polydense_data::DataError;

/// Errors from parsing metric names, evaluating runs and reading evaluation inputs.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A metric name or cutoff the evaluator does not know.
    #[error("metric `{name}`: {why}")]
    Metric { name: String, why: String },
    /// trec_eval refuses a ranking that lists a document twice, because its rank is undefined.
    #[error("query `{qid}`: document `{docid}` appears twice in the run (trec_eval refuses duplicate documents)")]
    DuplicateDocument { qid: String, docid: String },
    /// A NaN score has no place in trec_eval's ordering.
    #[error("query `{qid}`: document `{docid}` has a NaN score")]
    NanScore { qid: String, docid: String },
    /// Comparing needs at least one query evaluated in both runs.
    #[error("{0}")]
    NothingToCompare(String),
    /// An input file was unreadable or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
}
