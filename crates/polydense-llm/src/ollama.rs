//! Ollama's native chat API: `POST /api/chat` with `stream: false`, the schema as `format`,
//! and `temperature`, `seed` and `num_predict` in `options` (docs: ollama/docs/api.md).

use crate::backend::LlmBackend;
use crate::error::Result;
use crate::http::{Attempt, Endpoint};
use crate::request::{ChatRequest, Completion};
use serde_json::{json, Value};

/// An Ollama server.
pub struct Ollama {
    endpoint: Endpoint,
    model: String,
    keep_alive: String,
    concurrency: usize,
    id: String,
}

impl Ollama {
    /// Talks to `model` on the server behind `endpoint`; `keep_alive` (e.g. `5m`) keeps the
    /// model loaded between requests; `concurrency` requests are kept in flight.
    pub fn new(endpoint: Endpoint, model: &str, keep_alive: &str, concurrency: usize) -> Self {
        Ollama {
            endpoint,
            model: model.to_string(),
            keep_alive: keep_alive.to_string(),
            concurrency: concurrency.max(1),
            id: format!("ollama:{model}"),
        }
    }

    /// The request body for one chat request.
    pub fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
            "stream": false,
            "keep_alive": self.keep_alive,
            "options": {
                "temperature": request.sampling.temperature,
                "seed": request.sampling.seed,
                "num_predict": request.sampling.max_tokens,
            },
        });
        if let Some(schema) = &request.schema {
            body["format"] = schema.clone();
        }
        body
    }
}

/// Reads a 2xx answer of `/api/chat`. With `stream: false` it is one JSON object, but a
/// server may still stream NDJSON (older versions, proxies): the lines' contents are joined,
/// the counts come from the `done` line, and a line with `error` (the runner failed while
/// generating) makes the whole answer a transient fault.
fn read_chat(body: &str) -> Attempt<Completion> {
    let mut out = Completion::default();
    let mut done = false;
    let mut lines = 0;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        lines += 1;
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                return Attempt::Transient {
                    fault: format!("malformed JSON in the answer ({e}): {}", start(line)),
                    retry_after: None,
                }
            }
        };
        if let Some(err) = v.get("error") {
            return Attempt::Transient {
                fault: format!(
                    "error line in the answer: {}",
                    crate::http::error_message(&json!({"error": err}).to_string())
                ),
                retry_after: None,
            };
        }
        if let Some(c) = v.pointer("/message/content").and_then(Value::as_str) {
            out.text.push_str(c);
        }
        if v.get("done").and_then(Value::as_bool) == Some(true) {
            done = true;
            let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            out.prompt_tokens = n("prompt_eval_count");
            out.completion_tokens = n("eval_count");
            out.prompt_ms = n("prompt_eval_duration") as f64 / 1e6;
            out.generate_ms = n("eval_duration") as f64 / 1e6;
        }
    }
    if !done {
        return Attempt::Transient {
            fault: format!("answer ended before `done` ({lines} lines): truncated"),
            retry_after: None,
        };
    }
    Attempt::Done(out)
}

/// The first 120 characters of a line, for error messages.
pub(crate) fn start(s: &str) -> String {
    s.chars().take(120).collect()
}

impl LlmBackend for Ollama {
    fn id(&self) -> &str {
        &self.id
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn complete(&self, request: &ChatRequest) -> Result<Completion> {
        self.endpoint
            .chat("/api/chat", &self.body(request), read_chat)
    }

    fn models(&self) -> Result<Vec<String>> {
        self.endpoint.list("/api/tags", "models", "name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_lines_are_joined_and_an_error_line_is_a_fault() {
        let body = "{\"message\":{\"content\":\"{\\\"a\\\"\"},\"done\":false}\n{\"message\":{\"content\":\": 1}\"},\"done\":true,\"prompt_eval_count\":9,\"eval_count\":4}\n";
        let Attempt::Done(c) = read_chat(body) else {
            panic!("a complete stream")
        };
        assert_eq!(c.text, "{\"a\": 1}");
        assert_eq!((c.prompt_tokens, c.completion_tokens), (9, 4));
        let with_error = "{\"message\":{\"content\":\"x\"},\"done\":false}\n{\"error\":\"llama runner process has terminated\"}\n";
        let Attempt::Transient { fault, .. } = read_chat(with_error) else {
            panic!("an error line is a fault")
        };
        assert!(
            fault.contains("llama runner process has terminated"),
            "{fault}"
        );
        assert!(matches!(
            read_chat("{\"message\":{\"content\":\"x\"},\"done\":false}\n"),
            Attempt::Transient { .. }
        ));
    }
}
