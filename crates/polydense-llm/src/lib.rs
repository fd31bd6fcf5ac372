//! polydense-llm: one trait for the chat models that judge and write hard negatives.
//!
//! An [`LlmBackend`] answers [`ChatRequest`]s: [`Ollama`] and [`OpenAi`] over HTTP (with
//! timeouts, retries with backoff and `Retry-After`, and one-line errors for what a retry
//! cannot fix), or [`InProcess`], a GGUF file run on candle's quantized models (SmolLM2 by
//! default, offline). An [`LlmClient`] puts a [`Cache`] in front of it, keeps the backend's
//! number of requests in flight, and reads typed [`Answer`]s leniently, asking once more
//! with a reminder when an answer cannot be read. [`LlmConfig`] builds both from the
//! `[llm]` table of a mining config.
//!
//! ```
//! use polydense_llm::{answer, Answer, ChatRequest, Completion, LlmBackend, LlmClient, Message, Sampling};
//!
//! /// A model that always says the same thing.
//! struct Parrot(&'static str);
//!
//! impl LlmBackend for Parrot {
//!     fn id(&self) -> &str { "parrot" }
//!     fn complete(&self, _: &ChatRequest) -> polydense_llm::Result<Completion> {
//!         Ok(Completion { text: self.0.into(), ..Completion::default() })
//!     }
//!     fn models(&self) -> polydense_llm::Result<Vec<String>> { Ok(vec!["parrot".into()]) }
//! }
//!
//! /// A hardness score 0-100.
//! struct Score(f64);
//!
//! impl Answer for Score {
//!     fn schema() -> serde_json::Value {
//!         serde_json::json!({"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]})
//!     }
//!     fn parse(text: &str) -> Result<Self, String> {
//!         answer::extract_json(text)
//!             .and_then(|v| answer::number_field(&v, "score", 100.0))
//!             .or_else(|| answer::lenient_score(text, 100.0))
//!             .map(Score)
//!             .ok_or_else(|| "no score".into())
//!     }
//! }
//!
//! let prompt = vec![Message::user("How hard is this negative?")];
//! // A fenced block and a fraction read the same as clean JSON.
//! for said in ["{\"score\": 85}", "```json\n{\"score\": 85}\n```", "85/100"] {
//!     let client = LlmClient::new(Box::new(Parrot(said)), None, Sampling::default());
//!     let (answers, tally) = client.ask::<Score>(vec![prompt.clone()], 32, &|_, _| {})?;
//!     assert_eq!(answers[0].as_ref().map(|s| s.0), Some(85.0));
//!     assert_eq!(tally.requests, 1);
//! }
//! // An answer that cannot be read is asked once more, then skipped: never guessed.
//! let client = LlmClient::new(Box::new(Parrot("I think it is hard.")), None, Sampling::default());
//! let (answers, tally) = client.ask::<Score>(vec![prompt], 32, &|_, _| {})?;
//! assert!(answers[0].is_none());
//! assert_eq!((tally.requests, tally.reminders, tally.skipped), (2, 1, 1));
//! # Ok::<(), polydense_llm::LlmError>(())
//! ```

pub mod answer;
pub mod backend;
pub mod cache;
pub mod client;
pub mod config;
pub mod error;
pub mod gguf;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod request;
pub mod retry;
pub mod tally;

pub use answer::Answer;
pub use backend::LlmBackend;
pub use cache::Cache;
pub use client::LlmClient;
pub use config::{BackendKind, LlmConfig};
pub use error::{LlmError, Result};
pub use gguf::InProcess;
pub use http::{Endpoint, Timeouts};
pub use ollama::Ollama;
pub use openai::{OpenAi, ResponseFormat};
pub use request::{ChatRequest, Completion, Message, Role, Sampling};
pub use retry::RetryPolicy;
pub use tally::Tally;
