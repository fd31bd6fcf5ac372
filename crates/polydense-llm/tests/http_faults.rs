//! The HTTP backends against a stub server on 127.0.0.1 that answers slowly, hangs, rate
//! limits, fails, refuses, sends malformed or truncated bodies and NDJSON error lines. Each
//! case ends as documented on `LlmBackend`: transient faults are retried (honouring
//! `Retry-After`), refusals stop at once with the server's message, and no finished answer
//! is lost.

mod common;

use common::{ok, Reply, Stub};
use polydense_llm::{
    answer, Answer, BackendKind, ChatRequest, LlmBackend, LlmConfig, LlmError, Message, Sampling,
};
use std::time::{Duration, Instant};

const OPENAI_OK: &str = r#"{"choices":[{"message":{"role":"assistant","content":"{\"score\": 85}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5}}"#;
const OLLAMA_OK: &str = r#"{"model":"m","message":{"role":"assistant","content":"{\"score\": 85}"},"done":true,"prompt_eval_count":12,"eval_count":5}"#;

fn config(kind: BackendKind, stub: &Stub) -> LlmConfig {
    LlmConfig {
        backend: kind,
        model: "m".into(),
        url: Some(stub.url.clone()),
        timeout_s: 0.6,
        connect_timeout_s: 0.5,
        retries: 2,
        backoff_ms: 10,
        max_backoff_s: 0.05,
        max_retry_after_s: 5.0,
        no_cache: true,
        ..LlmConfig::default()
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::system("Judge."), Message::user("How hard?")],
        sampling: Sampling::default(),
        schema: Some(serde_json::json!({"type": "object"})),
    }
}

fn openai(script: Vec<Reply>) -> (Stub, Box<dyn LlmBackend>) {
    let stub = Stub::start(script);
    let b = config(BackendKind::Openai, &stub).backend().unwrap();
    (stub, b)
}

fn ollama(script: Vec<Reply>) -> (Stub, Box<dyn LlmBackend>) {
    let stub = Stub::start(script);
    let b = config(BackendKind::Ollama, &stub).backend().unwrap();
    (stub, b)
}

#[test]
fn a_slow_answer_within_the_timeout_is_taken() {
    let (stub, b) = openai(vec![Reply::Slow(
        Duration::from_millis(300),
        OPENAI_OK.into(),
    )]);
    let c = b.complete(&request()).unwrap();
    assert_eq!(c.text, "{\"score\": 85}");
    assert_eq!(
        (c.prompt_tokens, c.completion_tokens, c.retries),
        (12, 5, 0)
    );
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn a_timeout_is_retried_and_then_given_up_on() {
    let (stub, b) = openai(vec![Reply::Hang, ok(OPENAI_OK)]);
    let c = b.complete(&request()).unwrap();
    assert_eq!(c.retries, 1, "the hung attempt was retried");
    assert_eq!(stub.seen().len(), 2);

    let (stub, b) = openai(vec![Reply::Hang]);
    let start = Instant::now();
    let err = b.complete(&request()).unwrap_err();
    assert!(matches!(err, LlmError::GaveUp { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(stub.seen().len(), 3);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_429_waits_as_long_as_retry_after_says() {
    let limited = |after: String| {
        Reply::Status(429, vec![("Retry-After", after)], r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#.into())
    };
    let (stub, b) = openai(vec![limited("1".into()), ok(OPENAI_OK)]);
    let start = Instant::now();
    let c = b.complete(&request()).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!((c.retries, stub.seen().len()), (1, 2));

    // An HTTP date two seconds ahead (whole seconds, so the wait is 1-2 s).
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let (_stub, b) = openai(vec![limited(at), ok(OPENAI_OK)]);
    let start = Instant::now();
    b.complete(&request()).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );

    // A Retry-After beyond the cap waits only the cap.
    let stub = Stub::start(vec![limited("3600".into()), ok(OPENAI_OK)]);
    let mut cfg = config(BackendKind::Openai, &stub);
    cfg.max_retry_after_s = 0.2;
    let start = Instant::now();
    cfg.backend().unwrap().complete(&request()).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn server_errors_are_retried_until_the_retries_run_out() {
    let e500 = Reply::Status(
        500,
        vec![],
        r#"{"error":{"code":500,"message":"slot unavailable","type":"server_error"}}"#.into(),
    );
    let (_stub, b) = openai(vec![e500.clone(), ok(OPENAI_OK)]);
    assert_eq!(b.complete(&request()).unwrap().retries, 1);
    let (stub, b) = openai(vec![e500]);
    let err = b.complete(&request()).unwrap_err().to_string();
    assert!(
        err.contains("gave up after 3 attempts")
            && err.contains("HTTP 500: slot unavailable (500)"),
        "{err}"
    );
    assert_eq!(stub.seen().len(), 3);
}

#[test]
fn a_refusal_stops_at_once_with_the_servers_message() {
    let cases = [
        (
            400,
            r#"{"error":{"message":"'messages' must contain the word 'json'","type":"invalid_request_error","param":"messages","code":null}}"#,
            "'messages' must contain the word 'json' (invalid_request_error)",
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-abc.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            "Incorrect API key provided: sk-abc. (invalid_api_key)",
        ),
        (
            404,
            r#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
            "does not exist (model_not_found)",
        ),
        // A 429 that waiting will not fix.
        (
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
            "You exceeded your current quota (insufficient_quota)",
        ),
    ];
    for (status, body, message) in cases {
        let (stub, b) = openai(vec![
            Reply::Status(status, vec![], body.into()),
            ok(OPENAI_OK),
        ]);
        let err = b.complete(&request()).unwrap_err();
        let line = err.to_string();
        assert!(
            matches!(err, LlmError::Refused { status: s, .. } if s == status),
            "{line}"
        );
        assert!(line.contains(message) && !line.contains('\n'), "{line}");
        assert_eq!(stub.seen().len(), 1, "HTTP {status} is not retried");
    }
    // Ollama's error shape.
    let (stub, b) = ollama(vec![Reply::Status(
        404,
        vec![],
        r#"{"error":"model 'llama9' not found, try pulling it first"}"#.into(),
    )]);
    let err = b.complete(&request()).unwrap_err().to_string();
    assert!(
        err.ends_with("HTTP 404: model 'llama9' not found, try pulling it first"),
        "{err}"
    );
    assert_eq!(stub.seen().len(), 1);
}

#[test]
fn malformed_and_truncated_bodies_are_retried() {
    let (stub, b) = openai(vec![
        ok("{\"choices\": [ {\"mess"),
        ok("<html>502</html>"),
        ok(OPENAI_OK),
    ]);
    assert_eq!(b.complete(&request()).unwrap().retries, 2);
    assert_eq!(stub.seen().len(), 3);
    let (stub, b) = openai(vec![Reply::Truncated(OPENAI_OK.into()), ok(OPENAI_OK)]);
    let c = b.complete(&request()).unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("{\"score\": 85}", 1));
    assert_eq!(stub.seen().len(), 2);
    let (_stub, b) = ollama(vec![Reply::Truncated(OLLAMA_OK.into())]);
    let err = b.complete(&request()).unwrap_err().to_string();
    assert!(err.contains("gave up after 3 attempts"), "{err}");
}

#[test]
fn an_ndjson_error_line_is_retried_and_named_when_it_persists() {
    let broken = "{\"message\":{\"content\":\"{\\\"sc\"},\"done\":false}\n{\"error\":\"llama runner process has terminated: signal: killed\"}\n";
    let (stub, b) = ollama(vec![ok(broken), ok(OLLAMA_OK)]);
    let c = b.complete(&request()).unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("{\"score\": 85}", 1));
    assert_eq!(stub.seen().len(), 2);
    let (_stub, b) = ollama(vec![ok(broken)]);
    let err = b.complete(&request()).unwrap_err().to_string();
    assert!(err.contains("llama runner process has terminated"), "{err}");
}

#[test]
fn requests_carry_the_schema_seed_and_key_each_api_expects() {
    let (stub, b) = ollama(vec![ok(OLLAMA_OK)]);
    b.complete(&request()).unwrap();
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/api/chat");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body["stream"], false);
    assert_eq!(body["format"]["type"], "object");
    assert_eq!(body["options"]["seed"], 13);
    assert_eq!(body["options"]["num_predict"], 128);
    assert_eq!(body["keep_alive"], "5m");

    let stub = Stub::start(vec![ok(OPENAI_OK)]);
    let mut cfg = config(BackendKind::Openai, &stub);
    cfg.url = Some(format!("{}/v1", stub.url));
    cfg.api_key_env = Some("POLYDENSE_TEST_KEY".into());
    std::env::set_var("POLYDENSE_TEST_KEY", "sk-test");
    cfg.backend().unwrap().complete(&request()).unwrap();
    let seen = &stub.seen()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert!(seen
        .headers
        .contains(&("authorization".into(), "Bearer sk-test".into())));
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["type"],
        "object"
    );
    assert_eq!(
        (body["seed"].as_u64(), body["max_tokens"].as_u64()),
        (Some(13), Some(128))
    );
    cfg.api_key_env = Some("POLYDENSE_TEST_KEY_UNSET".into());
    let err = cfg.backend().err().unwrap().to_string();
    assert!(
        err.contains("api_key_env") && err.contains("POLYDENSE_TEST_KEY_UNSET"),
        "{err}"
    );
}

struct Score(f64);

impl Answer for Score {
    fn schema() -> serde_json::Value {
        serde_json::json!({"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]})
    }
    fn parse(text: &str) -> Result<Self, String> {
        answer::extract_json(text)
            .and_then(|v| answer::number_field(&v, "score", 100.0))
            .map(Score)
            .ok_or_else(|| "no score".into())
    }
}

fn prompts(n: usize) -> Vec<Vec<Message>> {
    (0..n)
        .map(|i| vec![Message::user(format!("item {i}"))])
        .collect()
}

#[test]
fn a_server_that_dies_mid_run_loses_no_finished_answer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.jsonl");
    // Three answers, then the server fails for good.
    let dead = Reply::Status(503, vec![], "{\"error\":\"shutting down\"}".into());
    let stub = Stub::start(vec![ok(OPENAI_OK), ok(OPENAI_OK), ok(OPENAI_OK), dead]);
    let mut cfg = config(BackendKind::Openai, &stub);
    cfg.no_cache = false;
    cfg.cache = Some(cache.clone());
    cfg.concurrency = 1;
    let err = cfg
        .client()
        .unwrap()
        .ask::<Score>(prompts(5), 32, &|_, _| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("shutting down"), "{err}");
    drop(stub);

    // The rerun asks only for what was not answered.
    let stub = Stub::start(vec![ok(OPENAI_OK)]);
    cfg.url = Some(stub.url.clone());
    let client = cfg.client().unwrap();
    assert_eq!(client.cache().unwrap().len(), 3);
    let (answers, tally) = client.ask::<Score>(prompts(5), 32, &|_, _| {}).unwrap();
    assert!(answers
        .iter()
        .all(|a| a.as_ref().is_some_and(|s| s.0 == 85.0)));
    assert_eq!((tally.cache_hits, tally.requests), (3, 2));
    assert_eq!(stub.seen().len(), 2);
    // And a third run costs nothing.
    let (_, tally) = cfg
        .client()
        .unwrap()
        .ask::<Score>(prompts(5), 32, &|_, _| {})
        .unwrap();
    assert_eq!((tally.cache_hits, tally.requests), (5, 0));
}

#[test]
fn the_client_keeps_the_configured_number_of_requests_in_flight() {
    let stub = Stub::start(vec![Reply::Slow(
        Duration::from_millis(200),
        OPENAI_OK.into(),
    )]);
    let mut cfg = config(BackendKind::Openai, &stub);
    cfg.concurrency = 4;
    let start = Instant::now();
    let (answers, tally) = cfg
        .client()
        .unwrap()
        .ask::<Score>(prompts(8), 32, &|_, _| {})
        .unwrap();
    assert_eq!(answers.iter().filter(|a| a.is_some()).count(), 8);
    assert_eq!(tally.requests, 8);
    assert_eq!(stub.peak.load(std::sync::atomic::Ordering::SeqCst), 4);
    // Two waves of 200 ms, not eight.
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_unreadable_answer_gets_one_reminder_then_is_skipped() {
    let prose = r#"{"choices":[{"message":{"content":"It is quite hard."}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
    let stub = Stub::start(vec![ok(prose), ok(prose), ok(prose), ok(OPENAI_OK)]);
    let mut cfg = config(BackendKind::Openai, &stub);
    cfg.concurrency = 1;
    let (answers, tally) = cfg
        .client()
        .unwrap()
        .ask::<Score>(prompts(2), 32, &|_, _| {})
        .unwrap();
    // Item 0: prose, reminder prose → skipped. Item 1: prose, reminder JSON → 85.
    assert!(answers[0].is_none());
    assert_eq!(answers[1].as_ref().map(|s| s.0), Some(85.0));
    assert_eq!(
        (
            tally.requests,
            tally.reminders,
            tally.parse_failures,
            tally.skipped
        ),
        (4, 2, 3, 1)
    );
    let reminder: serde_json::Value = serde_json::from_str(&stub.seen()[2].body).unwrap();
    let msgs = reminder["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(msgs[2]["content"].as_str().unwrap().contains("JSON"));
}
