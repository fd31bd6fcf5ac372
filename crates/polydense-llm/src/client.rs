//! [`LlmClient`]: a backend behind a cache, asked for typed answers with the backend's
//! concurrency, re-asked once with a reminder when an answer cannot be read.

use crate::answer::Answer;
use crate::backend::LlmBackend;
use crate::cache::{key, Cache};
use crate::error::{LlmError, Result};
use crate::request::{ChatRequest, Completion, Message, Sampling};
use crate::tally::Tally;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Most consecutive cache misses handed to one `complete_batch` call.
const BATCH: usize = 64;

/// Asks a backend, through a cache, for answers of a given [`Answer`] type.
pub struct LlmClient {
    backend: Box<dyn LlmBackend>,
    cache: Option<Cache>,
    sampling: Sampling,
}

/// Called after each answered request with the stage's tally so far and the seconds since
/// the batch started; stages turn it into a progress line.
pub type Observer<'a> = &'a (dyn Fn(&Tally, f64) + Sync);

impl LlmClient {
    /// A client of `backend` with `sampling` on every request, caching in `cache` if given.
    pub fn new(backend: Box<dyn LlmBackend>, cache: Option<Cache>, sampling: Sampling) -> Self {
        LlmClient {
            backend,
            cache,
            sampling,
        }
    }

    /// The backend, for `llm check` and `llm ask`.
    pub fn backend(&self) -> &dyn LlmBackend {
        self.backend.as_ref()
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// Forces cached answers to disk (called at checkpoints).
    pub fn sync(&self) -> Result<()> {
        self.cache.as_ref().map_or(Ok(()), Cache::sync)
    }

    /// Asks each conversation in `prompts` for an `A`, in at most `max_tokens` tokens (each
    /// stage knows how long its answers are). An answer that cannot be read is
    /// asked again once, with the bad answer and a reminder of the schema appended; if that
    /// fails too the item is `None` and counted as skipped. `Err` means the backend failed
    /// for good (see [`crate::LlmBackend::complete`]); every answer received before it is in
    /// the cache.
    pub fn ask<A: Answer>(
        &self,
        prompts: Vec<Vec<Message>>,
        max_tokens: u32,
        observe: Observer<'_>,
    ) -> Result<(Vec<Option<A>>, Tally)> {
        let started = Instant::now();
        let sampling = Sampling {
            max_tokens,
            ..self.sampling.clone()
        };
        let schema = A::schema();
        let tally = Mutex::new(Tally {
            items: prompts.len() as u64,
            ..Tally::default()
        });
        let requests: Vec<ChatRequest> = prompts
            .into_iter()
            .map(|messages| ChatRequest {
                messages,
                sampling: sampling.clone(),
                schema: Some(schema.clone()),
            })
            .collect();
        let first = self.complete_all(&requests, &tally, started, observe)?;
        let mut out: Vec<Option<A>> = Vec::with_capacity(first.len());
        let mut again = Vec::new();
        for (i, c) in first.iter().enumerate() {
            match A::parse(&c.text) {
                Ok(a) => out.push(Some(a)),
                Err(why) => {
                    tracing::debug!("unreadable answer ({why}): {:?}", c.text);
                    out.push(None);
                    let mut messages = requests[i].messages.clone();
                    messages.push(Message::assistant(c.text.clone()));
                    messages.push(Message::user(format!(
                        "Your answer could not be read ({why}). Reply again with only a JSON value matching this schema, and nothing else: {schema}"
                    )));
                    again.push((
                        i,
                        ChatRequest {
                            messages,
                            sampling: sampling.clone(),
                            schema: Some(schema.clone()),
                        },
                    ));
                }
            }
        }
        {
            let mut t = tally.lock().expect("tally lock");
            t.parse_failures += again.len() as u64;
            t.reminders += again.len() as u64;
        }
        let reminders: Vec<ChatRequest> = again.iter().map(|(_, r)| r.clone()).collect();
        let second = self.complete_all(&reminders, &tally, started, observe)?;
        for ((i, _), c) in again.iter().zip(&second) {
            match A::parse(&c.text) {
                Ok(a) => out[*i] = Some(a),
                Err(_) => {
                    let mut t = tally.lock().expect("tally lock");
                    t.parse_failures += 1;
                    t.skipped += 1;
                }
            }
        }
        let mut t = tally.into_inner().expect("tally lock");
        t.wall_ms = started.elapsed().as_millis() as u64;
        Ok((out, t))
    }

    /// Answers every request, from the cache or the backend, in order.
    fn complete_all(
        &self,
        requests: &[ChatRequest],
        tally: &Mutex<Tally>,
        started: Instant,
        observe: Observer<'_>,
    ) -> Result<Vec<Completion>> {
        let id = self.backend.id();
        let keys: Vec<_> = requests.iter().map(|r| key(id, r)).collect();
        let mut answers: Vec<Option<Completion>> = keys
            .iter()
            .map(|k| self.cache.as_ref().and_then(|c| c.get(k)))
            .collect();
        let hits = answers.iter().filter(|a| a.is_some()).count() as u64;
        if hits > 0 {
            let mut t = tally.lock().expect("tally lock");
            t.cache_hits += hits;
            observe(&t, started.elapsed().as_secs_f64());
        }
        let misses: Vec<usize> = (0..requests.len())
            .filter(|&i| answers[i].is_none())
            .collect();
        let threads = self.backend.concurrency().clamp(1, misses.len().max(1));
        // One thread with a run of misses lets a batching backend share prompt prefixes;
        // several threads take one request each so the server sees `threads` at once.
        let chunk = if threads == 1 { BATCH } else { 1 };
        let chunks: Vec<&[usize]> = misses.chunks(chunk).collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Option<LlmError>> = Mutex::new(None);
        let filled: Mutex<Vec<(usize, Completion)>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        let c = next.fetch_add(1, Ordering::Relaxed);
                        let Some(idx) = chunks.get(c) else { break };
                        let batch: Vec<ChatRequest> =
                            idx.iter().map(|&i| requests[i].clone()).collect();
                        for (&i, answer) in idx.iter().zip(self.backend.complete_batch(&batch)) {
                            let stored = answer.and_then(|a| {
                                if let Some(cache) = &self.cache {
                                    cache.put(keys[i], &a)?;
                                }
                                Ok(a)
                            });
                            match stored {
                                Ok(a) => {
                                    let mut t = tally.lock().expect("tally lock");
                                    t.requests += 1;
                                    t.retries += a.retries as u64;
                                    t.prompt_tokens += a.prompt_tokens;
                                    t.completion_tokens += a.completion_tokens;
                                    observe(&t, started.elapsed().as_secs_f64());
                                    drop(t);
                                    filled.lock().expect("answers lock").push((i, a));
                                }
                                Err(e) => {
                                    stop.store(true, Ordering::Relaxed);
                                    failure.lock().expect("failure lock").get_or_insert(e);
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().expect("failure lock") {
            return Err(e);
        }
        for (i, a) in filled.into_inner().expect("answers lock") {
            answers[i] = Some(a);
        }
        answers
            .into_iter()
            .map(|a| {
                a.ok_or_else(|| {
                    LlmError::Inference(format!(
                        "{id} returned fewer answers than it was asked for"
                    ))
                })
            })
            .collect()
    }
}
