//! Text to token batches: HF `tokenizers` with the model's query/passage prefixes, truncation
//! to the model's maximum length, and padding to the longest text of each batch only.

use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{ModelError, Result};

/// Whether a text is a query or a passage; the two get different prefixes (E5's
/// "query: " / "passage: ") and may go to different towers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextKind {
    /// A search query.
    Query,
    /// A document or passage.
    Passage,
}

/// The text put in front of queries and passages, as sentence-transformers' `prompts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompts {
    /// Prefix for queries (e.g. "query: ").
    pub query: String,
    /// Prefix for passages (e.g. "passage: ").
    pub passage: String,
}

impl Prompts {
    /// The prefix for a kind of text.
    pub fn for_kind(&self, kind: TextKind) -> &str {
        match kind {
            TextKind::Query => &self.query,
            TextKind::Passage => &self.passage,
        }
    }
}

/// A padded batch of token ids ready for the encoder (right padding).
#[derive(Debug, Clone)]
pub struct TokenBatch {
    ids: Tensor,
    type_ids: Tensor,
    lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads id sequences to the longest one with `pad_id`; all token types 0.
    pub fn from_ids(rows: &[Vec<u32>], pad_id: u32, device: &Device) -> Result<Self> {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows.len() * seq);
        for r in rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(pad_id, seq - r.len()));
        }
        let n = rows.len();
        Ok(TokenBatch {
            ids: Tensor::from_vec(ids, (n, seq), device)?,
            type_ids: Tensor::zeros((n, seq), candle_core::DType::U32, device)?,
            lengths: rows.iter().map(Vec::len).collect(),
        })
    }

    /// The sequences of several batches in one, padded to the longest (with id 0, which the
    /// attention mask and pooling ignore). With packed rows the padding costs nothing, so
    /// queries and passages can share one forward pass through a shared tower.
    pub fn concat(batches: &[&TokenBatch]) -> Result<Self> {
        let seq = batches
            .iter()
            .map(|b| b.seq_len())
            .max()
            .unwrap_or(1)
            .max(1);
        let widen = |t: &Tensor| -> Result<Tensor> {
            let (n, s) = t.dims2()?;
            Ok(match s < seq {
                true => {
                    let pad = Tensor::zeros((n, seq - s), t.dtype(), t.device())?;
                    Tensor::cat(&[t, &pad], 1)?
                }
                false => t.clone(),
            })
        };
        let ids = batches
            .iter()
            .map(|b| widen(&b.ids))
            .collect::<Result<Vec<_>>>()?;
        let types = batches
            .iter()
            .map(|b| widen(&b.type_ids))
            .collect::<Result<Vec<_>>>()?;
        Ok(TokenBatch {
            ids: Tensor::cat(&ids, 0)?,
            type_ids: Tensor::cat(&types, 0)?,
            lengths: batches
                .iter()
                .flat_map(|b| b.lengths.iter().copied())
                .collect(),
        })
    }

    /// `[batch, seq]` u32 token ids.
    pub fn ids(&self) -> &Tensor {
        &self.ids
    }

    /// `[batch, seq]` u32 token-type ids.
    pub fn type_ids(&self) -> &Tensor {
        &self.type_ids
    }

    /// The number of real tokens in each sequence.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Sequences in the batch.
    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    /// Padded length.
    pub fn seq_len(&self) -> usize {
        self.ids.dims().get(1).copied().unwrap_or(0)
    }
}

/// The model's tokenizer with its prefixes and length limit.
#[derive(Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    prompts: Prompts,
    max_length: usize,
    pad_id: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("prompts", &self.prompts)
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; padding is switched off (batches pad themselves) and
    /// truncation set to `max_length` tokens, special tokens included.
    pub fn from_file(
        path: &Path,
        prompts: Prompts,
        max_length: usize,
        pad_id: u32,
    ) -> Result<Self> {
        if !path.exists() {
            return Err(ModelError::MissingFile {
                path: path.to_path_buf(),
                hint: "the model directory has no tokenizer".into(),
            });
        }
        let tokenizer = Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            context: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::new(tokenizer, prompts, max_length, pad_id)
    }

    fn new(
        mut tokenizer: Tokenizer,
        prompts: Prompts,
        max_length: usize,
        pad_id: u32,
    ) -> Result<Self> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| ModelError::Tokenizer {
                context: "truncation".into(),
                message: e.to_string(),
            })?;
        Ok(TextTokenizer {
            tokenizer,
            prompts,
            max_length,
            pad_id,
        })
    }

    /// The same tokenizer with another length limit.
    pub fn with_max_length(&self, max_length: usize) -> Result<Self> {
        Self::new(
            self.tokenizer.clone(),
            self.prompts.clone(),
            max_length,
            self.pad_id,
        )
    }

    /// The same tokenizer with other prefixes.
    pub fn with_prompts(&self, prompts: Prompts) -> Result<Self> {
        Self::new(
            self.tokenizer.clone(),
            prompts,
            self.max_length,
            self.pad_id,
        )
    }

    /// The prefixes.
    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    /// The longest token sequence it produces.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The padding id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Token ids of each text, prefixed for its kind, with special tokens, truncated.
    pub fn tokenize(&self, texts: &[&str], kind: TextKind) -> Result<Vec<Vec<u32>>> {
        let prefix = self.prompts.for_kind(kind);
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let encodings =
            self.tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| ModelError::Tokenizer {
                    context: "encoding a batch".into(),
                    message: e.to_string(),
                })?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// A padded batch of the texts, in the given order.
    pub fn batch(&self, texts: &[&str], kind: TextKind, device: &Device) -> Result<TokenBatch> {
        TokenBatch::from_ids(&self.tokenize(texts, kind)?, self.pad_id, device)
    }
}

/// Index groups of at most `batch_size`, longest sequences first, so each batch pads little.
pub fn length_sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pad_right_and_sort_by_length() {
        let b = TokenBatch::from_ids(&[vec![5, 6, 7], vec![8]], 0, &Device::Cpu).unwrap();
        assert_eq!(
            b.ids().to_vec2::<u32>().unwrap(),
            vec![vec![5, 6, 7], vec![8, 0, 0]]
        );
        assert_eq!(b.lengths(), &[3, 1]);
        let c = TokenBatch::from_ids(&[vec![9, 9, 9, 9]], 0, &Device::Cpu).unwrap();
        let both = TokenBatch::concat(&[&b, &c]).unwrap();
        assert_eq!(
            both.ids().to_vec2::<u32>().unwrap(),
            vec![vec![5, 6, 7, 0], vec![8, 0, 0, 0], vec![9, 9, 9, 9]]
        );
        assert_eq!(
            (both.lengths(), both.type_ids().dims()),
            (&[3, 1, 4][..], &[3, 4][..])
        );
        let groups = length_sorted_batches(&[2, 9, 4, 9, 1], 2);
        assert_eq!(groups, vec![vec![1, 3], vec![2, 0], vec![4]]);
    }
}
