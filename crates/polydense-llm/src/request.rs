//! What a caller asks a chat model and what comes back, independent of the backend.

use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the whole conversation.
    System,
    /// The caller's turn.
    User,
    /// The model's turn (an earlier answer, when a reminder follows it).
    Assistant,
}

impl Role {
    /// The name chat APIs and chat templates use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
}

impl Message {
    /// A system turn.
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Decoding settings that change the answer, so they are part of the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 decodes greedily (the same prompt gives the same answer on the same backend).
    pub temperature: f32,
    /// Seed of the sampler, sent to backends that accept one.
    pub seed: u64,
    /// Most tokens to generate.
    pub max_tokens: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            seed: 13,
            max_tokens: 128,
        }
    }
}

/// One chat request: the conversation, the settings and, when an answer must be JSON, its
/// schema (sent as Ollama's `format` or OpenAI's `response_format`; the in-process backend
/// only states it in the prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation so far; the model writes the next assistant turn.
    pub messages: Vec<Message>,
    /// Decoding settings.
    pub sampling: Sampling,
    /// A JSON schema the answer must match, when the backend can enforce one.
    pub schema: Option<serde_json::Value>,
}

/// What a backend returned for one request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Completion {
    /// The assistant's text.
    pub text: String,
    /// Prompt tokens, as the backend counted them (0 when it does not say).
    pub prompt_tokens: u64,
    /// Generated tokens, as the backend counted them (0 when it does not say).
    pub completion_tokens: u64,
    /// Time spent on the prompt (prefill), where the backend reports it.
    pub prompt_ms: f64,
    /// Time spent generating, where the backend reports it.
    pub generate_ms: f64,
    /// Transient faults retried before this answer came (not stored in the cache).
    #[serde(skip)]
    pub retries: u32,
}
