//! The HTTP side both server backends share: one blocking `ureq` agent with connect and
//! total timeouts, a JSON POST that retries transient faults, and the readers of the error
//! bodies servers send (OpenAI's `{"error":{"message","type","code"}}`, llama.cpp's same
//! shape with an integer `code`, Ollama's `{"error":"..."}`).
//!
//! ureq rather than reqwest: the blocking reqwest client pulls tokio and ~54 crates; ureq 3
//! without default features pulls 9, and a worker thread per in-flight request is all the
//! concurrency an LLM stage needs (at most tens of requests).

use crate::error::{LlmError, Result};
use crate::retry::{is_retryable, parse_retry_after, RetryPolicy};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// The connect and total timeouts of every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Establishing the TCP connection.
    pub connect: Duration,
    /// The whole request, from connecting to the last byte of the answer.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            total: Duration::from_secs(300),
        }
    }
}

/// What one attempt came to, as the retry loop sees it.
pub enum Attempt<T> {
    /// A usable answer.
    Done(T),
    /// A fault worth retrying, described for the log and the final error, with the wait the
    /// server asked for.
    Transient {
        /// What went wrong.
        fault: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A fault no retry fixes.
    Fatal(LlmError),
}

/// One server: its base URL, the agent, extra headers and the retry policy.
pub struct Endpoint {
    agent: ureq::Agent,
    base: String,
    label: String,
    headers: Vec<(String, String)>,
    policy: RetryPolicy,
    timeouts: Timeouts,
}

impl Endpoint {
    /// An endpoint at `base` (e.g. `http://127.0.0.1:11434`), named `label` in errors.
    pub fn new(
        label: &str,
        base: &str,
        timeouts: Timeouts,
        policy: RetryPolicy,
        headers: Vec<(String, String)>,
    ) -> Result<Self> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(LlmError::config(
                "url",
                format!("`{base}` is not an http:// or https:// URL"),
            ));
        }
        if base.starts_with("https://") && !cfg!(feature = "https") {
            return Err(LlmError::config(
                "url",
                format!(
                    "`{base}` needs HTTPS, and this build has none: rebuild with `--features https`"
                ),
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeouts.connect))
            .timeout_global(Some(timeouts.total))
            .user_agent(concat!("polydense/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Endpoint {
            agent,
            label: format!("{label} at {base}"),
            base,
            headers,
            policy,
            timeouts,
        })
    }

    /// `ollama at http://…`: how errors name this server.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// POSTs `body` as JSON to `path` and hands each answer's status and text to `read`,
    /// retrying what it calls transient; returns the answer and the number of retries.
    pub fn post<T>(
        &self,
        path: &str,
        body: &Value,
        read: impl Fn(u16, &str) -> Attempt<T>,
    ) -> Result<(T, u32)> {
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        self.with_retries(
            || {
                let mut req = self.agent.post(format!("{}{path}", self.base));
                for (k, v) in &self.headers {
                    req = req.header(k, v);
                }
                req.content_type("application/json").send(&bytes[..])
            },
            read,
        )
    }

    /// GETs `path` and hands the answer to `read`, with the same retries as [`Endpoint::post`].
    pub fn get<T>(&self, path: &str, read: impl Fn(u16, &str) -> Attempt<T>) -> Result<(T, u32)> {
        self.with_retries(
            || {
                let mut req = self.agent.get(format!("{}{path}", self.base));
                for (k, v) in &self.headers {
                    req = req.header(k, v);
                }
                req.call()
            },
            read,
        )
    }

    /// POSTs a chat request: a 2xx answer goes to `read`, anything else to [`status_fault`];
    /// the completion carries the retries it took.
    pub fn chat(
        &self,
        path: &str,
        body: &Value,
        read: impl Fn(&str) -> Attempt<crate::request::Completion>,
    ) -> Result<crate::request::Completion> {
        let (mut c, retries) = self.post(path, body, |status, text| {
            if (200..300).contains(&status) {
                read(text)
            } else {
                status_fault(&self.label, status, text)
            }
        })?;
        c.retries = retries;
        Ok(c)
    }

    /// GETs a JSON listing and returns the `name` field of each object in its `array` field
    /// (Ollama's `/api/tags` → `models[].name`, OpenAI's `/v1/models` → `data[].id`).
    pub fn list(&self, path: &str, array: &str, name: &str) -> Result<Vec<String>> {
        let (names, _) = self.get(path, |status, body| {
            if !(200..300).contains(&status) {
                return status_fault(&self.label, status, body);
            }
            match serde_json::from_str::<Value>(body) {
                Ok(v) => Attempt::Done(
                    v.get(array)
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| m.get(name).and_then(Value::as_str))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Err(e) => Attempt::Transient {
                    fault: format!("malformed JSON from {path}: {e}"),
                    retry_after: None,
                },
            }
        })?;
        Ok(names)
    }

    fn with_retries<T>(
        &self,
        send: impl Fn() -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        read: impl Fn(u16, &str) -> Attempt<T>,
    ) -> Result<(T, u32)> {
        let mut retry = 0u32;
        loop {
            let attempt = match send() {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match resp
                        .body_mut()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_string()
                    {
                        Ok(text) => match read(status, &text) {
                            Attempt::Transient {
                                fault,
                                retry_after: None,
                            } => Attempt::Transient { fault, retry_after },
                            other => other,
                        },
                        Err(e) => Attempt::Transient {
                            fault: format!("HTTP {status}, body cut short: {}", self.describe(&e)),
                            retry_after,
                        },
                    }
                }
                Err(e) => self.transport(e),
            };
            match attempt {
                Attempt::Done(t) => return Ok((t, retry)),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Transient { fault, retry_after } => {
                    if retry >= self.policy.retries {
                        return Err(LlmError::GaveUp {
                            backend: self.label.clone(),
                            attempts: retry + 1,
                            last: fault,
                        });
                    }
                    let wait = self.policy.wait(retry, retry_after);
                    tracing::warn!(
                        "{}: {fault}; retry {} of {} in {:.1} s",
                        self.label,
                        retry + 1,
                        self.policy.retries,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                    retry += 1;
                }
            }
        }
    }

    fn describe(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => format!(
                "timed out (connect {} s, total {} s)",
                self.timeouts.connect.as_secs_f64(),
                self.timeouts.total.as_secs_f64()
            ),
            other => other.to_string(),
        }
    }

    /// A request that got no HTTP answer: timeouts and dropped connections are transient
    /// (the server may be busy or restarting); a bad URL or an unknown host is not.
    fn transport<T>(&self, e: ureq::Error) -> Attempt<T> {
        match e {
            ureq::Error::BadUri(_) | ureq::Error::HostNotFound | ureq::Error::Tls(_) => {
                Attempt::Fatal(LlmError::config("url", format!("{}: {}", self.label, e)))
            }
            other => Attempt::Transient {
                fault: self.describe(&other),
                retry_after: None,
            },
        }
    }
}

/// The error message of a server's error body, in any of the shapes servers use, on one
/// line; else the start of the body.
pub fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body.trim()).ok().or_else(|| {
        // An NDJSON body: the line that carries the error.
        body.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .find(|v| v.get("error").is_some())
    });
    let from_json = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        match e {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                let msg = o.get("message").and_then(Value::as_str).unwrap_or("");
                let code = o.get("code").filter(|c| !c.is_null()).map(|c| {
                    c.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| c.to_string())
                });
                let kind = o.get("type").and_then(Value::as_str);
                let tag = code.or(kind.map(str::to_string));
                Some(match tag {
                    Some(t) if !msg.is_empty() => format!("{msg} ({t})"),
                    Some(t) => t,
                    None => msg.to_string(),
                })
            }
            _ => None,
        }
    });
    let text = from_json.unwrap_or_else(|| body.trim().chars().take(200).collect());
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether an error body says the account is out of quota: OpenAI sends it as a 429, which
/// must not be retried (it will not clear by waiting).
pub fn is_quota_error(body: &str) -> bool {
    body.contains("insufficient_quota")
}

/// The default reading of a non-2xx answer: retry what [`is_retryable`] allows (unless it is a
/// quota error), refuse the rest with the server's message.
pub fn status_fault<T>(label: &str, status: u16, body: &str) -> Attempt<T> {
    let message = error_message(body);
    if is_retryable(status) && !is_quota_error(body) {
        Attempt::Transient {
            fault: format!("HTTP {status}: {message}"),
            retry_after: None,
        }
    } else {
        Attempt::Fatal(LlmError::Refused {
            backend: label.to_string(),
            status,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_server_read_as_one_line() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#
            ),
            "Incorrect API key provided (invalid_api_key)"
        );
        assert_eq!(
            error_message(
                r#"{"error":{"code":404,"message":"model not found","type":"not_found_error"}}"#
            ),
            "model not found (404)"
        );
        assert_eq!(
            error_message(r#"{"error":"model 'llama9' not found, try pulling it first"}"#),
            "model 'llama9' not found, try pulling it first"
        );
        assert_eq!(
            error_message("{\"message\":{\"content\":\"a\"}}\n{\"error\":\"runner\\n  failed\"}\n"),
            "runner failed"
        );
        assert_eq!(
            error_message("<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
    }
}
