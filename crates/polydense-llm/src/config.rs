//! The `[llm]` table of a mining config (and the flags of `polydense llm`): which backend,
//! which model, how patiently, and where answers are cached.
//!
//! ```toml
//! [llm]
//! backend = "ollama"            # or "openai", or "gguf" (in-process, the default)
//! model = "llama3.1:8b"
//! url = "http://127.0.0.1:11434"
//! concurrency = 4
//! temperature = 0.0
//! ```

use crate::backend::LlmBackend;
use crate::cache::Cache;
use crate::client::LlmClient;
use crate::error::{LlmError, Result};
use crate::gguf::InProcess;
use crate::http::{Endpoint, Timeouts};
use crate::ollama::Ollama;
use crate::openai::{OpenAi, ResponseFormat};
use crate::request::Sampling;
use crate::retry::RetryPolicy;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which kind of server (or none) answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// A GGUF file run in this process (offline; SmolLM2 by default).
    #[default]
    Gguf,
    /// An Ollama server's `/api/chat`.
    Ollama,
    /// An OpenAI-compatible `/v1/chat/completions` (vLLM, llama.cpp, hosted APIs).
    Openai,
}

/// Everything that picks and tunes the LLM; the defaults run offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// `gguf`, `ollama` or `openai`.
    pub backend: BackendKind,
    /// For `gguf`: a .gguf path, or a name installed as `$POLYDENSE_HOME/models/<name>/model.gguf`
    /// (`smollm2` by scripts/setup). For servers: the model name they know.
    pub model: String,
    /// Server URL; defaults to Ollama's `http://127.0.0.1:11434` or llama.cpp's
    /// `http://127.0.0.1:8080/v1`.
    pub url: Option<String>,
    /// Environment variable holding the API key sent as a bearer token (openai only).
    pub api_key_env: Option<String>,
    /// How the schema is sent to an OpenAI-compatible server.
    pub response_format: ResponseFormat,
    /// Requests kept in flight on an HTTP backend.
    pub concurrency: usize,
    /// 0 decodes greedily.
    pub temperature: f32,
    /// Sampler seed, sent where the backend accepts one.
    pub seed: u64,
    /// Most tokens an answer of `polydense llm ask` may have (each mining stage sets its own).
    pub max_tokens: u32,
    /// Seconds to establish a connection.
    pub connect_timeout_s: f64,
    /// Seconds for a whole request, answer included.
    pub timeout_s: f64,
    /// Retries of a transient fault (timeout, 408/409/429/5xx, a cut answer).
    pub retries: u32,
    /// First backoff in milliseconds; doubles per retry, with full jitter.
    pub backoff_ms: u64,
    /// Longest backoff in seconds.
    pub max_backoff_s: f64,
    /// Longest wait a `Retry-After` may impose, in seconds.
    pub max_retry_after_s: f64,
    /// How long Ollama keeps the model loaded after a request.
    pub keep_alive: String,
    /// Answer cache (JSON lines); defaults to `$POLYDENSE_HOME/llm-cache.jsonl`.
    pub cache: Option<PathBuf>,
    /// Ask the backend every time (for benchmarks).
    pub no_cache: bool,
    /// In-process only: re-encode Q4_1/Q5 weights as Q8_0 at load, since candle multiplies
    /// those formats with scalar code (see `gguf::requantize`); false keeps the file's.
    pub requantize: bool,
    /// In-process only: candle's threads (0: half the cores, at least one); set once per
    /// process, before candle first runs.
    pub threads: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            backend: BackendKind::Gguf,
            model: "smollm2".into(),
            url: None,
            api_key_env: None,
            response_format: ResponseFormat::JsonSchema,
            concurrency: 4,
            temperature: 0.0,
            seed: 13,
            max_tokens: 128,
            connect_timeout_s: 10.0,
            timeout_s: 300.0,
            retries: 4,
            backoff_ms: 500,
            max_backoff_s: 30.0,
            max_retry_after_s: 60.0,
            keep_alive: "5m".into(),
            cache: None,
            no_cache: false,
            requantize: true,
            threads: 0,
        }
    }
}

fn secs(field: &str, v: f64) -> Result<Duration> {
    if v.is_finite() && v > 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(LlmError::config(
            field,
            format!("must be a positive number of seconds, got {v}"),
        ))
    }
}

impl LlmConfig {
    /// The GGUF file `model` names: a path, or an installed short name.
    pub fn gguf_path(&self) -> PathBuf {
        let p = PathBuf::from(&self.model);
        if p.extension().is_some_and(|e| e == "gguf") || p.is_file() {
            p
        } else {
            polydense_data::paths::polydense_home()
                .join("models")
                .join(&self.model)
                .join("model.gguf")
        }
    }

    /// The cache file in use, unless caching is off.
    pub fn cache_path(&self) -> Option<PathBuf> {
        (!self.no_cache).then(|| {
            self.cache
                .clone()
                .unwrap_or_else(|| polydense_data::paths::polydense_home().join("llm-cache.jsonl"))
        })
    }

    /// The decoding settings every request carries.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            seed: self.seed,
            max_tokens: self.max_tokens,
        }
    }

    /// Opens the backend: loads the GGUF, or sets up the HTTP endpoint (no request is sent).
    pub fn backend(&self) -> Result<Box<dyn LlmBackend>> {
        if self.concurrency == 0 {
            return Err(LlmError::config("concurrency", "must be at least 1"));
        }
        if self.model.trim().is_empty() {
            return Err(LlmError::config("model", "is empty"));
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(LlmError::config(
                "temperature",
                format!("must be ≥ 0, got {}", self.temperature),
            ));
        }
        let timeouts = Timeouts {
            connect: secs("connect_timeout_s", self.connect_timeout_s)?,
            total: secs("timeout_s", self.timeout_s)?,
        };
        let policy = RetryPolicy {
            retries: self.retries,
            base: Duration::from_millis(self.backoff_ms),
            max_backoff: secs("max_backoff_s", self.max_backoff_s)?,
            max_retry_after: secs("max_retry_after_s", self.max_retry_after_s)?,
        };
        Ok(match self.backend {
            BackendKind::Gguf => Box::new(InProcess::load(
                &self.gguf_path(),
                self.requantize,
                self.threads,
            )?),
            BackendKind::Ollama => {
                let url = self.url.as_deref().unwrap_or("http://127.0.0.1:11434");
                let ep = Endpoint::new("ollama", url, timeouts, policy, Vec::new())?;
                Box::new(Ollama::new(
                    ep,
                    &self.model,
                    &self.keep_alive,
                    self.concurrency,
                ))
            }
            BackendKind::Openai => {
                let url = self.url.as_deref().unwrap_or("http://127.0.0.1:8080/v1");
                let mut headers = Vec::new();
                if let Some(var) = &self.api_key_env {
                    let key = std::env::var(var).map_err(|_| {
                        LlmError::config(
                            "api_key_env",
                            format!("the environment variable `{var}` is not set"),
                        )
                    })?;
                    headers.push(("Authorization".to_string(), format!("Bearer {key}")));
                }
                let ep = Endpoint::new("openai", url, timeouts, policy, headers)?;
                let has_v1 = url.trim_end_matches('/').ends_with("/v1");
                Box::new(OpenAi::new(
                    ep,
                    &self.model,
                    self.response_format,
                    self.concurrency,
                    has_v1,
                ))
            }
        })
    }

    /// The backend behind its cache.
    pub fn client(&self) -> Result<LlmClient> {
        let backend = self.backend()?;
        let cache = self.cache_path().map(|p| Cache::open(&p)).transpose()?;
        Ok(LlmClient::new(backend, cache, self.sampling()))
    }
}
