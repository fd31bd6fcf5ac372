//! [`Tokenize`]: texts to token batches for training, with a length limit per kind of text.
//! The trainer needs its own seam because random test models carry no tokenizer.

use candle_core::Device;
use polydense_model::{Encoder, TextKind, TextTokenizer, TokenBatch};

use crate::error::{Result, TrainError};

/// Turns the texts of a batch into padded token ids; called by the trainer for every chunk
/// it encodes, with queries and passages in separate calls.
pub trait Tokenize: Send + Sync {
    /// The texts as one right-padded batch on `device`, in order.
    fn batch(&self, texts: &[&str], kind: TextKind, device: &Device) -> Result<TokenBatch>;
}

/// The model's own HF tokenizer (with its query/passage prefixes), truncating queries and
/// passages to their own limits.
#[derive(Debug, Clone)]
pub struct HfTokenize {
    query: TextTokenizer,
    passage: TextTokenizer,
}

impl HfTokenize {
    /// From an encoder loaded from an HF directory; a limit of 0 keeps the model's.
    pub fn from_encoder(enc: &Encoder, max_query: usize, max_passage: usize) -> Result<Self> {
        let t = enc.tokenizer().ok_or_else(|| {
            TrainError::config("model", "the model directory has no tokenizer.json")
        })?;
        let limit = |n: usize| -> Result<TextTokenizer> {
            match n {
                0 => Ok(t.clone()),
                n => Ok(t.with_max_length(n.clamp(2, enc.config().max_tokens()))?),
            }
        };
        Ok(HfTokenize {
            query: limit(max_query)?,
            passage: limit(max_passage)?,
        })
    }
}

impl Tokenize for HfTokenize {
    fn batch(&self, texts: &[&str], kind: TextKind, device: &Device) -> Result<TokenBatch> {
        let t = match kind {
            TextKind::Query => &self.query,
            TextKind::Passage => &self.passage,
        };
        Ok(t.batch(texts, kind, device)?)
    }
}

/// Whitespace words hashed (FNV-1a) into a small vocabulary, between `[CLS]` = 2 and
/// `[SEP]` = 3 and padded with 0: a stable tokenizer for tests and tiny random models, which
/// have none.
#[derive(Debug, Clone, Copy)]
pub struct HashTokenize {
    /// Vocabulary size of the model; word ids fall in `4..vocab`.
    pub vocab: u32,
    /// Longest sequence, special tokens included.
    pub max_len: usize,
}

impl Tokenize for HashTokenize {
    fn batch(&self, texts: &[&str], _kind: TextKind, device: &Device) -> Result<TokenBatch> {
        let rows: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                let mut ids = vec![2u32];
                for w in t.split_whitespace().take(self.max_len.saturating_sub(2)) {
                    let h = w.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                        (h ^ b as u64).wrapping_mul(0x100000001b3)
                    });
                    ids.push(4 + (h % (self.vocab as u64 - 4)) as u32);
                }
                ids.push(3);
                ids
            })
            .collect();
        Ok(TokenBatch::from_ids(&rows, 0, device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tokens_are_stable_and_truncated() {
        let t = HashTokenize {
            vocab: 50,
            max_len: 4,
        };
        let b = t
            .batch(&["a b c d", "a"], TextKind::Query, &Device::Cpu)
            .unwrap();
        let ids = b.ids().to_vec2::<u32>().unwrap();
        assert_eq!(b.lengths(), &[4, 3]);
        assert_eq!(ids[0][1], ids[1][1]);
        assert_eq!((ids[0][0], ids[0][3], ids[1][3]), (2, 3, 0));
    }
}
