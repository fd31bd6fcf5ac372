//! The tokenizer of a GGUF file: `tokenizer.json` beside the file when one ships, else one
//! built from the GGUF metadata by candle-core's `TokenizerFromGguf`, corrected where that
//! builder does not know the file's pre-tokenizer.
//!
//! SmolLM2 files say `tokenizer.ggml.pre = "smollm"`, which candle treats as plain GPT-2
//! (a prefix space added, digits grouped). The model was trained with HF's
//! `Sequence[Digits(individual_digits), ByteLevel(add_prefix_space=false)]` (its
//! tokenizer.json; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM` splits `\p{N}` one by one the
//! same way), so that is what is built here. tests/fixtures/llm/smollm2-tokens.json, made by
//! scripts/make-llm-tokenizer-fixture.py with llama.cpp's own tokenizer, checks it.

use crate::error::{LlmError, Result};
use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use std::path::Path;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::Tokenizer;

/// The tokenizer for the GGUF at `path`, whose metadata is `content`.
pub fn load(path: &Path, content: &gguf_file::Content) -> Result<Tokenizer> {
    let beside = path.with_file_name("tokenizer.json");
    if beside.is_file() {
        return Tokenizer::from_file(&beside).map_err(|e| LlmError::Model {
            path: beside.clone(),
            message: format!("cannot read the tokenizer: {e}"),
            hint: None,
        });
    }
    let meta = |k: &str| {
        content
            .metadata
            .get(k)
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut tok = Tokenizer::from_gguf(content).map_err(|e| LlmError::Model {
        path: path.to_path_buf(),
        message: format!(
            "cannot build a tokenizer from the metadata (tokenizer.ggml.model = `{}`): {e}",
            meta("tokenizer.ggml.model")
        ),
        hint: Some("put the model's tokenizer.json beside the .gguf file".into()),
    })?;
    if meta("tokenizer.ggml.pre") == "smollm" {
        let pre = Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ]);
        tok.with_pre_tokenizer(Some(pre));
    }
    Ok(tok)
}

/// The ids of `text`, special tokens written in it (`<|im_start|>`) read as such, nothing
/// added around it (the chat template writes any BOS itself).
pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tok
        .encode(text, false)
        .map_err(|e| LlmError::Inference(format!("tokenizer: {e}")))?
        .get_ids()
        .to_vec())
}
