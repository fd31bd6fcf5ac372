//! `polydense llm check|ask`: reach an LLM backend by hand, the one the mining stages use.

use anyhow::Context;
use polydense_llm::{
    BackendKind, ChatRequest, Completion, LlmBackend, LlmConfig, Message, ResponseFormat,
};
use std::path::PathBuf;
use std::time::Instant;

/// `polydense llm ...`
#[derive(clap::Subcommand)]
pub enum Command {
    /// Reach the backend, list its models, send one tiny request and print the latency.
    Check(Check),
    /// Send one prompt (or one per line of a file) and print the answer.
    Ask(Ask),
}

/// Which backend to talk to: a mining config's `[llm]` table, overridden by flags.
#[derive(clap::Args)]
pub struct Backend {
    /// A mining TOML whose `[llm]` table to use (else the offline default, SmolLM2).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `gguf` (in-process), `ollama` or `openai`.
    #[arg(long, value_parser = ["gguf", "ollama", "openai"])]
    backend: Option<String>,
    /// Model: a .gguf path or installed name, or the server's model name.
    #[arg(long)]
    model: Option<String>,
    /// Server URL.
    #[arg(long)]
    url: Option<String>,
    /// Environment variable holding the API key (openai).
    #[arg(long)]
    api_key_env: Option<String>,
    /// How an OpenAI-compatible server gets the schema: json_schema, json_object or none.
    #[arg(long, value_parser = ["json_schema", "json_object", "none"])]
    response_format: Option<String>,
    /// Seconds for a whole request.
    #[arg(long)]
    timeout: Option<f64>,
    /// In-process: candle's threads (0: half the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// In-process: keep the file's Q4_1/Q5 weights (candle's scalar kernels) instead of
    /// re-encoding them as Q8_0.
    #[arg(long)]
    no_requantize: bool,
}

impl Backend {
    /// The resolved `[llm]` config.
    fn config(&self) -> anyhow::Result<LlmConfig> {
        let mut cfg = match &self.config {
            Some(path) => polydense_mine::MineConfig::load(path)?
                .llm
                .unwrap_or_default(),
            None => LlmConfig::default(),
        };
        if let Some(b) = &self.backend {
            cfg.backend = match b.as_str() {
                "ollama" => BackendKind::Ollama,
                "openai" => BackendKind::Openai,
                _ => BackendKind::Gguf,
            };
        }
        if let Some(f) = &self.response_format {
            cfg.response_format = match f.as_str() {
                "json_object" => ResponseFormat::JsonObject,
                "none" => ResponseFormat::None,
                _ => ResponseFormat::JsonSchema,
            };
        }
        cfg.model = self.model.clone().unwrap_or(cfg.model);
        cfg.url = self.url.clone().or(cfg.url);
        cfg.api_key_env = self.api_key_env.clone().or(cfg.api_key_env);
        cfg.timeout_s = self.timeout.unwrap_or(cfg.timeout_s);
        cfg.threads = self.threads.unwrap_or(cfg.threads);
        cfg.requantize &= !self.no_requantize;
        Ok(cfg)
    }

    fn open(&self) -> anyhow::Result<(LlmConfig, Box<dyn LlmBackend>)> {
        let cfg = self.config()?;
        let started = Instant::now();
        let backend = cfg.backend()?;
        if cfg.backend == BackendKind::Gguf {
            tracing::info!(
                "loaded {} in {:.2} s",
                cfg.gguf_path().display(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok((cfg, backend))
    }
}

/// Flags of `polydense llm check`.
#[derive(clap::Args)]
pub struct Check {
    #[command(flatten)]
    backend: Backend,
}

/// Flags of `polydense llm ask`.
#[derive(clap::Args)]
pub struct Ask {
    #[command(flatten)]
    backend: Backend,
    /// The user prompt.
    #[arg(long, conflicts_with = "prompt_file")]
    prompt: Option<String>,
    /// A file with one prompt per line, each asked on its own.
    #[arg(long)]
    prompt_file: Option<PathBuf>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: u32,
    /// 0 decodes greedily.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Print one JSON line per prompt (answer, token counts, timings) instead of the text.
    #[arg(long)]
    json: bool,
}

/// Runs `polydense llm`.
pub fn run(c: Command) -> anyhow::Result<()> {
    match c {
        Command::Check(a) => check(a),
        Command::Ask(a) => ask(a),
    }
}

fn check(a: Check) -> anyhow::Result<()> {
    let (cfg, backend) = a.backend.open()?;
    let started = Instant::now();
    let models = backend.models()?;
    println!(
        "{}: reachable in {:.0} ms; models: {}",
        backend.id(),
        started.elapsed().as_secs_f64() * 1e3,
        if models.is_empty() {
            "(none listed)".to_string()
        } else {
            models.join(", ")
        }
    );
    if cfg.backend != BackendKind::Gguf && !models.is_empty() && !models.contains(&cfg.model) {
        tracing::warn!(
            "the server does not list `{}`; requests may fail with 404",
            cfg.model
        );
    }
    let req = ChatRequest {
        messages: vec![Message::user("Reply with the single word: ok")],
        sampling: polydense_llm::Sampling {
            temperature: 0.0,
            seed: cfg.seed,
            max_tokens: 8,
        },
        schema: None,
    };
    let started = Instant::now();
    let c = backend.complete(&req)?;
    println!(
        "one request: {:.0} ms, {} prompt + {} generated tokens, answer {:?}",
        started.elapsed().as_secs_f64() * 1e3,
        c.prompt_tokens,
        c.completion_tokens,
        c.text
    );
    Ok(())
}

fn ask(a: Ask) -> anyhow::Result<()> {
    let prompts: Vec<String> = match (&a.prompt, &a.prompt_file) {
        (Some(p), _) => vec![p.clone()],
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        (None, None) => anyhow::bail!("give --prompt TEXT or --prompt-file FILE"),
    };
    let (_, backend) = a.backend.open()?;
    for p in prompts {
        let mut messages = Vec::new();
        if let Some(s) = &a.system {
            messages.push(Message::system(s.clone()));
        }
        messages.push(Message::user(p.clone()));
        let req = ChatRequest {
            messages,
            sampling: polydense_llm::Sampling {
                temperature: a.temperature,
                seed: a.seed,
                max_tokens: a.max_tokens,
            },
            schema: None,
        };
        let started = Instant::now();
        let c = backend.complete(&req)?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        if a.json {
            println!(
                "{}",
                serde_json::json!({
                    "backend": backend.id(), "prompt": p, "answer": c.text,
                    "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                    "prompt_ms": c.prompt_ms, "generate_ms": c.generate_ms, "wall_ms": wall_ms,
                })
            );
        } else {
            println!("{}", c.text);
            eprintln!("{}", timing(&c, wall_ms));
        }
    }
    Ok(())
}

/// `prompt 35 tok in 120 ms (291 tok/s) · generated 12 tok in 300 ms (40 tok/s) · 0.43 s`.
fn timing(c: &Completion, wall_ms: f64) -> String {
    let rate = |n: u64, ms: f64| {
        if ms > 0.0 {
            format!(" in {ms:.0} ms ({:.0} tok/s)", n as f64 / ms * 1e3)
        } else {
            String::new()
        }
    };
    format!(
        "prompt {} tok{} · generated {} tok{} · {:.2} s",
        c.prompt_tokens,
        rate(c.prompt_tokens, c.prompt_ms),
        c.completion_tokens,
        rate(c.completion_tokens, c.generate_ms),
        wall_ms / 1e3
    )
}
