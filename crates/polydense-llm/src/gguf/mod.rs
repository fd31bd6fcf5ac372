//! The in-process backend: a GGUF chat model run on the CPU with candle's quantized models,
//! the prompt written by the file's own chat template and tokenized by its own vocabulary.
//!
//! Batching. candle's quantized models take no padding mask, so prompts of different lengths
//! cannot share one forward pass. What LLM stages send instead are runs of prompts that
//! share a long beginning (the instructions, the query and its positive; only the candidate
//! differs), so the backend keeps the key/value cache of the longest shared beginning and
//! starts the next prompt from it. The prompt is always fed in blocks of [`BLOCK`] tokens at
//! fixed positions, so the numbers computed for a prompt do not depend on which prompt came
//! before it: a resumed run gets the answers an uninterrupted one got.

pub mod requantize;
pub mod template;
pub mod tokenizer;
pub mod weights;

use crate::backend::LlmBackend;
use crate::error::{LlmError, Result};
use crate::request::{ChatRequest, Completion};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as Sampler};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use template::ChatTemplate;
use tokenizers::Tokenizer;
use weights::Weights;

/// Prompt tokens fed per forward pass; the unit of prefix reuse.
pub const BLOCK: usize = 32;

/// End-of-turn tokens of the chat formats in use, stopped at when the vocabulary has them.
const END_OF_TURN: [&str; 5] = [
    "<|im_end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<|eot_id|>",
    "</s>",
];

/// A GGUF file loaded for chat.
pub struct InProcess {
    id: String,
    path: PathBuf,
    engine: Mutex<Engine>,
}

/// Sizes candle's CPU thread pools, once per process and before candle first uses them
/// (they read `CANDLE_NUM_THREADS` and `RAYON_NUM_THREADS` when created, and its barrier
/// threads spin while waiting). Measured here on 2 cores busy with a compiler: 2 threads
/// generated 2-3 tokens/s where 1 made 50. A variable already set by the user wins.
fn size_candle_threads(threads: usize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let n = match threads {
            0 => (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1),
            n => n,
        };
        for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, n.to_string());
            }
        }
    });
}

struct Engine {
    /// The model with an empty cache; forked for each prompt.
    base: Weights,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stops: HashSet<u32>,
    context: usize,
    /// The cache after the longest block-aligned beginning shared by the last two prompts.
    snapshot: Option<(Vec<u32>, Weights)>,
    /// The previous prompt's tokens.
    previous: Vec<u32>,
}

fn meta_str(c: &gguf_file::Content, key: &str) -> Option<String> {
    c.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .cloned()
}

fn meta_u32(c: &gguf_file::Content, key: &str) -> Option<u32> {
    c.metadata.get(key).and_then(|v| v.to_u32().ok())
}

impl InProcess {
    /// Loads the model, tokenizer and chat template of the GGUF at `path`, re-encoding
    /// weights candle multiplies with scalar code as Q8_0 when `requantize` is set (see
    /// [`requantize`]). A missing file is an error that says how to get the default one.
    /// Inference runs on `threads` threads (0: half the cores, at least one), unless this
    /// process already used candle or set `CANDLE_NUM_THREADS`/`RAYON_NUM_THREADS`.
    pub fn load(path: &Path, requantize: bool, threads: usize) -> Result<Self> {
        size_candle_threads(threads);
        let mut file = std::fs::File::open(path).map_err(|e| LlmError::Model {
            path: path.to_path_buf(),
            message: format!("cannot open the model: {e}"),
            hint: Some("run ./scripts/setup --assets for the default SmolLM2, or set [llm] model to a .gguf path".into()),
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let content = gguf_file::Content::read(&mut file).map_err(|e| LlmError::Model {
            path: path.to_path_buf(),
            message: format!("not a readable GGUF file: {e}"),
            hint: None,
        })?;
        let tokenizer = tokenizer::load(path, &content)?;
        let tokens: Vec<String> = content
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.to_string().ok().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let token_text = |id: Option<u32>| {
            id.and_then(|i| tokens.get(i as usize).cloned())
                .unwrap_or_default()
        };
        let bos = token_text(meta_u32(&content, "tokenizer.ggml.bos_token_id"));
        let eos_id = meta_u32(&content, "tokenizer.ggml.eos_token_id");
        let eos = token_text(eos_id);
        let template = ChatTemplate::new(
            path,
            meta_str(&content, "tokenizer.chat_template"),
            &bos,
            &eos,
        )?;
        let mut stops: HashSet<u32> = eos_id.into_iter().collect();
        stops.extend(END_OF_TURN.iter().filter_map(|t| tokenizer.token_to_id(t)));
        let arch = meta_str(&content, "general.architecture").unwrap_or_default();
        let context = meta_u32(&content, &format!("{arch}.context_length"))
            .map(|c| c as usize)
            .unwrap_or(2048)
            // candle's llama precomputes rotary tables for 4096 positions.
            .min(4096);
        let base = if requantize && requantize::needed(&content) {
            let started = Instant::now();
            let (header, mut bytes) = requantize::to_q8_0(&content, &mut file)?;
            tracing::info!(
                "{}: re-encoded Q4_1/Q5 tensors as Q8_0 in {:.1} s (candle has no SIMD kernel for them)",
                path.display(),
                started.elapsed().as_secs_f64()
            );
            Weights::load(path, header, &mut bytes)?
        } else {
            Weights::load(path, content, &mut file)?
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let form = if requantize { "q8" } else { "file" };
        Ok(InProcess {
            id: format!("gguf:{name}:{size}:{form}"),
            path: path.to_path_buf(),
            engine: Mutex::new(Engine {
                base,
                tokenizer,
                template,
                stops,
                context,
                snapshot: None,
                previous: Vec::new(),
            }),
        })
    }

    /// The prompt text the chat template makes of `request`, for `llm ask --show-prompt`.
    pub fn prompt(&self, request: &ChatRequest) -> Result<String> {
        self.engine
            .lock()
            .expect("engine lock")
            .template
            .render(&request.messages)
    }

    /// The token ids of `text` under the file's tokenizer, for checks against a reference.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        tokenizer::encode(&self.engine.lock().expect("engine lock").tokenizer, text)
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Engine {
    fn answer(&mut self, request: &ChatRequest) -> Result<Completion> {
        let prompt = self.template.render(&request.messages)?;
        let tokens = tokenizer::encode(&self.tokenizer, &prompt)?;
        let max_new = request.sampling.max_tokens as usize;
        if tokens.is_empty() || tokens.len() + max_new > self.context {
            return Err(LlmError::Inference(format!(
                "a prompt of {} tokens plus {max_new} to generate does not fit the context of {}",
                tokens.len(),
                self.context
            )));
        }
        let started = Instant::now();
        // Blocks up to here are shared with the previous prompt: worth keeping.
        let shared = common_prefix(&self.previous, &tokens).min(tokens.len() - 1) / BLOCK * BLOCK;
        self.previous = tokens.clone();
        let from_snapshot = self.snapshot.as_ref().and_then(|(prefix, w)| {
            (tokens.len() > prefix.len() && tokens.starts_with(prefix))
                .then(|| w.fork().map(|w| (w, prefix.len())))
                .flatten()
        });
        let mut fresh;
        let (model, mut pos): (&mut Weights, usize) = match from_snapshot {
            Some((w, p)) => {
                fresh = w;
                (&mut fresh, p)
            }
            None => match self.base.fork() {
                Some(w) => {
                    fresh = w;
                    (&mut fresh, 0)
                }
                None => {
                    self.base.reset();
                    (&mut self.base, 0)
                }
            },
        };
        let mut logits = None;
        while pos < tokens.len() {
            let end = ((pos / BLOCK + 1) * BLOCK).min(tokens.len());
            logits = Some(model.forward(&tokens[pos..end], pos)?);
            pos = end;
            if pos == shared
                && self
                    .snapshot
                    .as_ref()
                    .is_none_or(|(p, _)| p.len() < shared || !tokens.starts_with(p))
            {
                if let Some(copy) = model.fork() {
                    self.snapshot = Some((tokens[..shared].to_vec(), copy));
                }
            }
        }
        let prompt_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        let sampler = if request.sampling.temperature <= 0.0 {
            Sampler::ArgMax
        } else {
            Sampler::All {
                temperature: request.sampling.temperature as f64,
            }
        };
        let mut lp = LogitsProcessor::from_sampling(request.sampling.seed, sampler);
        let mut out = Vec::new();
        let mut logits = logits.expect("at least one prompt token");
        loop {
            let vocab = logits.len();
            let next = lp.sample(&Tensor::from_vec(logits, vocab, &Device::Cpu)?)?;
            if self.stops.contains(&next) {
                break;
            }
            out.push(next);
            if out.len() >= max_new {
                break;
            }
            logits = model.forward(&[next], pos)?;
            pos += 1;
        }
        let text = self
            .tokenizer
            .decode(&out, true)
            .map_err(|e| LlmError::Inference(format!("tokenizer: {e}")))?;
        Ok(Completion {
            text,
            prompt_tokens: tokens.len() as u64,
            completion_tokens: out.len() as u64,
            prompt_ms,
            generate_ms: started.elapsed().as_secs_f64() * 1e3,
            retries: 0,
        })
    }
}

impl LlmBackend for InProcess {
    fn id(&self) -> &str {
        &self.id
    }

    fn complete(&self, request: &ChatRequest) -> Result<Completion> {
        self.engine.lock().expect("engine lock").answer(request)
    }

    fn complete_batch(&self, requests: &[ChatRequest]) -> Vec<Result<Completion>> {
        let mut engine = self.engine.lock().expect("engine lock");
        crate::backend::until_error(requests, |r| engine.answer(r))
    }

    fn models(&self) -> Result<Vec<String>> {
        Ok(vec![self.path.display().to_string()])
    }
}
