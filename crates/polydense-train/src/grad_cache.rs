//! The gradients of one batch, computed in one graph or with GradCache (Gao et al. 2021,
//! "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup").
//!
//! GradCache splits the encoder from the loss. First every chunk is encoded without a graph
//! and the loss is back-propagated only as far as the embeddings. Then each chunk is encoded
//! again with its graph, and the cached embedding gradients are pushed through it
//! (`backward` of `Σ e ⊙ ∂L/∂e`), adding up the weight gradients chunk by chunk. Peak memory is
//! then one chunk's graph plus the batch's embeddings, whatever the batch size, and the
//! gradients are those of the whole-batch loss.

use candle_core::{Tensor, Var};
use polydense_model::{TextKind, TokenBatch};

use crate::dual_encoder::DualEncoder;
use crate::error::Result;
use crate::loss::{scalar, Loss, LossInput};
use crate::tokenize::Tokenize;

/// The texts of one training batch: query i's positive is `passages[i·group]`, followed by
/// its hard negatives.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchTexts {
    /// One per query.
    pub queries: Vec<String>,
    /// `group` per query.
    pub passages: Vec<String>,
    /// Passages per query (1 + hard negatives).
    pub group: usize,
}

/// What one batch gives the optimiser.
#[derive(Debug)]
pub struct Gradients {
    /// The batch loss.
    pub loss: f64,
    /// One gradient per parameter, in the order of the `params` given (zeros where no
    /// gradient reached a weight).
    pub grads: Vec<Tensor>,
    /// The passage vectors (no graph), for a cross-batch memory.
    pub passages: Tensor,
}

/// Supplies extra negatives given the batch's query vectors (no graph); see
/// [`crate::memory::CrossBatchMemory`].
pub type ExtraNegatives<'a> = dyn FnMut(&Tensor) -> Result<Option<Tensor>> + 'a;

/// Everything the gradient computations read.
pub struct StepContext<'a> {
    /// The model being trained.
    pub model: &'a DualEncoder,
    /// Its tokenizer.
    pub tokenize: &'a dyn Tokenize,
    /// The objective.
    pub loss: &'a dyn Loss,
    /// The trained weights, in optimiser order.
    pub params: &'a [(String, Var)],
}

impl StepContext<'_> {
    fn tokenize_chunks(
        &self,
        texts: &[String],
        kind: TextKind,
        chunk: usize,
    ) -> Result<Vec<TokenBatch>> {
        let device = self.model.tower(kind).transformer().device().clone();
        texts
            .chunks(chunk.max(1))
            .map(|c| {
                let refs: Vec<&str> = c.iter().map(String::as_str).collect();
                self.tokenize.batch(&refs, kind, &device)
            })
            .collect()
    }

    fn collect(
        &self,
        grads: &candle_core::backprop::GradStore,
        acc: &mut [Option<Tensor>],
    ) -> Result<()> {
        for ((_, var), slot) in self.params.iter().zip(acc.iter_mut()) {
            if let Some(g) = grads.get(var.as_tensor()) {
                *slot = Some(match slot.take() {
                    Some(sum) => (sum + g)?,
                    None => g.clone(),
                });
            }
        }
        Ok(())
    }

    fn finish(&self, acc: Vec<Option<Tensor>>) -> Result<Vec<Tensor>> {
        self.params
            .iter()
            .zip(acc)
            .map(|((_, var), g)| match g {
                Some(g) => Ok(g),
                None => Ok(var.as_tensor().zeros_like()?),
            })
            .collect()
    }

    /// Gradients of the whole batch in one autograd graph.
    pub fn plain(&self, batch: &BatchTexts, extra: &mut ExtraNegatives) -> Result<Gradients> {
        let (q, p) = self.model.forward_pair(
            &self.tokenize_chunks(&batch.queries, TextKind::Query, batch.queries.len())?[0],
            &self.tokenize_chunks(&batch.passages, TextKind::Passage, batch.passages.len())?[0],
        )?;
        let extra = extra(&q.detach())?;
        let loss = self.loss.loss(&LossInput {
            queries: &q,
            passages: &p,
            group: batch.group,
            extra_negatives: extra.as_ref(),
        })?;
        let value = scalar(&loss)?;
        let mut acc = vec![None; self.params.len()];
        self.collect(&loss.backward()?, &mut acc)?;
        Ok(Gradients {
            loss: value,
            grads: self.finish(acc)?,
            passages: p.detach(),
        })
    }

    /// The same gradients with GradCache, holding at most `chunk` texts' graph at a time.
    pub fn cached(
        &self,
        batch: &BatchTexts,
        chunk: usize,
        extra: &mut ExtraNegatives,
    ) -> Result<Gradients> {
        let q_batches = self.tokenize_chunks(&batch.queries, TextKind::Query, chunk)?;
        let p_batches = self.tokenize_chunks(&batch.passages, TextKind::Passage, chunk)?;
        let encode_all = |kind: TextKind, batches: &[TokenBatch]| -> Result<Tensor> {
            let parts = batches
                .iter()
                .map(|b| self.model.encode(kind, b))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&parts, 0)?)
        };
        // Pass 1: embeddings as leaves, and the loss gradient with respect to them.
        let q = Var::from_tensor(&encode_all(TextKind::Query, &q_batches)?)?;
        let p = Var::from_tensor(&encode_all(TextKind::Passage, &p_batches)?)?;
        let extra = extra(q.as_tensor())?;
        let loss = self.loss.loss(&LossInput {
            queries: q.as_tensor(),
            passages: p.as_tensor(),
            group: batch.group,
            extra_negatives: extra.as_ref(),
        })?;
        let value = scalar(&loss)?;
        let cache = loss.backward()?;
        let grad_of = |v: &Var| -> Result<Tensor> {
            Ok(match cache.get(v.as_tensor()) {
                Some(g) => g.clone(),
                None => v.as_tensor().zeros_like()?,
            })
        };
        let (gq, gp) = (grad_of(&q)?, grad_of(&p)?);
        // Pass 2: each chunk again with its graph, pushing the cached gradient through it.
        let mut acc = vec![None; self.params.len()];
        for (kind, batches, g) in [
            (TextKind::Query, &q_batches, &gq),
            (TextKind::Passage, &p_batches, &gp),
        ] {
            let mut start = 0;
            for b in batches {
                let n = b.batch_size();
                let e = self.model.forward(kind, b)?;
                let surrogate = (e * g.narrow(0, start, n)?)?.sum_all()?;
                self.collect(&surrogate.backward()?, &mut acc)?;
                start += n;
            }
        }
        Ok(Gradients {
            loss: value,
            grads: self.finish(acc)?,
            passages: p.as_tensor().detach(),
        })
    }
}
