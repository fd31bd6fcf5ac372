//! The OpenAI chat-completions API as vLLM, llama.cpp's server and hosted services speak it:
//! `POST /v1/chat/completions` with `seed`, `max_tokens`, `temperature` and the schema as
//! `response_format`, authenticated by a bearer key read from an environment variable.

use crate::backend::LlmBackend;
use crate::error::Result;
use crate::http::{Attempt, Endpoint};
use crate::ollama::start;
use crate::request::{ChatRequest, Completion};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How the answer's schema is sent: servers differ in what they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// `{"type":"json_schema","json_schema":{"name","schema","strict":true}}`: OpenAI, vLLM,
    /// llama.cpp's own server.
    #[default]
    JsonSchema,
    /// `{"type":"json_object","schema":…}`: llama-cpp-python's server, older vLLM.
    JsonObject,
    /// No `response_format`: the schema is only stated in the prompt.
    None,
}

/// An OpenAI-compatible server.
pub struct OpenAi {
    endpoint: Endpoint,
    model: String,
    format: ResponseFormat,
    concurrency: usize,
    prefix: &'static str,
    id: String,
}

impl OpenAi {
    /// Talks to `model` behind `endpoint`, whose URL may or may not end in `/v1`.
    pub fn new(
        endpoint: Endpoint,
        model: &str,
        format: ResponseFormat,
        concurrency: usize,
        base_has_v1: bool,
    ) -> Self {
        OpenAi {
            endpoint,
            model: model.to_string(),
            format,
            concurrency: concurrency.max(1),
            prefix: if base_has_v1 { "" } else { "/v1" },
            id: format!("openai:{model}"),
        }
    }

    /// The request body for one chat request.
    pub fn body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect::<Vec<_>>(),
            "temperature": request.sampling.temperature,
            "seed": request.sampling.seed,
            "max_tokens": request.sampling.max_tokens,
            "stream": false,
        });
        if let Some(schema) = &request.schema {
            match self.format {
                ResponseFormat::JsonSchema => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {"name": "answer", "schema": schema, "strict": true},
                    })
                }
                ResponseFormat::JsonObject => {
                    body["response_format"] = json!({"type": "json_object", "schema": schema})
                }
                ResponseFormat::None => {}
            }
        }
        body
    }
}

/// Reads a 2xx answer: the first choice's content and the usage counts. A body that is not
/// JSON, or has no choice, is a transient fault (a proxy's page, a cut connection).
fn read_completion(body: &str) -> Attempt<Completion> {
    let v: Value = match serde_json::from_str(body.trim()) {
        Ok(v) => v,
        Err(e) => {
            return Attempt::Transient {
                fault: format!("malformed JSON in the answer ({e}): {}", start(body)),
                retry_after: None,
            }
        }
    };
    if v.get("error").is_some() {
        return Attempt::Transient {
            fault: format!(
                "error in a 2xx answer: {}",
                crate::http::error_message(body)
            ),
            retry_after: None,
        };
    }
    let Some(choice) = v.pointer("/choices/0") else {
        return Attempt::Transient {
            fault: format!("answer without `choices`: {}", start(body)),
            retry_after: None,
        };
    };
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Attempt::Done(Completion {
        // A refusal or a tool call leaves `content` null: an empty answer, which the caller's
        // parser then counts as unparseable.
        text: choice
            .pointer("/message/content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        prompt_tokens: n("/usage/prompt_tokens"),
        completion_tokens: n("/usage/completion_tokens"),
        // llama.cpp's server adds its own timings.
        prompt_ms: v
            .pointer("/timings/prompt_ms")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        generate_ms: v
            .pointer("/timings/predicted_ms")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        retries: 0,
    })
}

impl LlmBackend for OpenAi {
    fn id(&self) -> &str {
        &self.id
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn complete(&self, request: &ChatRequest) -> Result<Completion> {
        let path = format!("{}/chat/completions", self.prefix);
        self.endpoint
            .chat(&path, &self.body(request), read_completion)
    }

    fn models(&self) -> Result<Vec<String>> {
        self.endpoint
            .list(&format!("{}/models", self.prefix), "data", "id")
    }
}
