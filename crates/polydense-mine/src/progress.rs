//! How a long mining run reports its progress; the CLI draws bars with it.

/// Receives progress from a long run. The pipeline calls `start`/`inc`/`finish` around each
/// pass over the queries; stages that wait on an LLM call `status` with their rates.
pub trait Progress: Sync {
    /// A stage starts with `total` units of work.
    fn start(&self, stage: &str, total: u64);
    /// `n` more units are done.
    fn inc(&self, n: u64);
    /// The stage is over.
    fn finish(&self);
    /// A one-line status of the running stage (requests/s, tokens/s, cache hits, failures);
    /// called often, from several threads. Ignored by default.
    fn status(&self, _line: &str) {}
}

/// A [`Progress`] that shows nothing, for tests and libraries.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}
