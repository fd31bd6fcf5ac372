//! The seam between the mining stages and a chat model: [`LlmBackend`].
//!
//! Execution model (pull, one answer per request): an [`crate::LlmClient`] owns one
//! backend and is the only caller. For each request it first looks in its cache; on a miss
//! it calls [`LlmBackend::complete_batch`] with the requests that missed, from as many
//! threads as [`LlmBackend::concurrency`] says, and appends each answer to the cache as soon
//! as it arrives. Nothing else calls a backend during a run; `polydense llm check` and `llm
//! ask` call it directly, once.
//!
//! Faults are the backend's to absorb: a timeout, a 408/409/429/5xx, a dropped connection or
//! a truncated body is retried inside `complete` (with backoff, honouring `Retry-After`), so
//! an `Err` means the run cannot go on (a refused request, or the retries ran out) and the
//! client stops dispatching. What was answered before stays in the cache.

use crate::error::Result;
use crate::request::{ChatRequest, Completion};

/// A chat model that answers requests: Ollama or an OpenAI-compatible server over HTTP, or
/// a GGUF file run in this process.
pub trait LlmBackend: Send + Sync {
    /// Names the backend and model, e.g. `ollama:llama3.1:8b`: part of every cache key (two
    /// models never share answers) and of every log line. Called once per request.
    fn id(&self) -> &str;

    /// How many requests the client keeps in flight at once. HTTP backends return the
    /// configured number (default 4) so the server can batch them; the in-process backend
    /// returns 1 and batches inside [`LlmBackend::complete_batch`] instead. Read once per
    /// run.
    fn concurrency(&self) -> usize {
        1
    }

    /// Answers one request. Called from up to [`LlmBackend::concurrency`] threads at once,
    /// only for requests the cache did not have. `Ok` carries the model's text as it came
    /// (the client parses it); `Err` is final: a refusal or exhausted retries, and the
    /// client stops the run.
    fn complete(&self, request: &ChatRequest) -> Result<Completion>;

    /// Answers several requests, in order; the client calls this with consecutive cache
    /// misses (at most 64 at a time) from each of its threads. The default calls
    /// [`LlmBackend::complete`] for each and stops at the first error, returning the answers
    /// before it; a backend that can share work between prompts (the in-process one reuses
    /// the shared prompt prefix) overrides it. An `Err` at position i means requests after
    /// i were not attempted.
    fn complete_batch(&self, requests: &[ChatRequest]) -> Vec<Result<Completion>> {
        until_error(requests, |r| self.complete(r))
    }

    /// The models the backend can serve, for `polydense llm check`; the in-process backend
    /// lists its one file. Called once, never during a run.
    fn models(&self) -> Result<Vec<String>>;
}

/// Answers `requests` in order with `answer`, stopping after the first error (the contract of
/// [`LlmBackend::complete_batch`]).
pub fn until_error(
    requests: &[ChatRequest],
    mut answer: impl FnMut(&ChatRequest) -> Result<Completion>,
) -> Vec<Result<Completion>> {
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let a = answer(r);
        let failed = a.is_err();
        out.push(a);
        if failed {
            break;
        }
    }
    out
}
