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

use crate::batch::TrainBatch;
use crate::dual_encoder::DualEncoder;
use crate::error::Result;
use crate::loss::{scalar, ExtraNegatives, Loss, LossInput, LossOutput, Progress};
use crate::tokenize::Tokenize;

/// What one batch gives the optimiser.
#[derive(Debug)]
pub struct Gradients {
    /// The batch loss.
    pub loss: f64,
    /// The loss's named parts, when it has any.
    pub parts: Vec<(String, f64)>,
    /// The loss's counters (see [`LossOutput::stats`]).
    pub stats: Vec<(String, f64)>,
    /// One gradient per parameter, in the order of the `params` given (zeros where no
    /// gradient reached a weight).
    pub grads: Vec<Tensor>,
    /// The passage vectors, without a graph on either path, for a cross-batch memory.
    pub passages: Tensor,
    /// Tokens routed to each expert of each layer (empty for a model without experts).
    pub routing: Vec<Vec<u64>>,
}

/// Supplies the extra negatives of a batch given its query vectors (no graph); see
/// [`crate::memory::CrossBatchMemory`].
pub type MemoryLookup<'a> = dyn FnMut(&Tensor, &TrainBatch) -> Result<Option<ExtraNegatives>> + 'a;

/// Everything the gradient computations read.
pub struct StepContext<'a> {
    /// The model being trained.
    pub model: &'a DualEncoder,
    /// Its tokenizer.
    pub tokenize: &'a dyn Tokenize,
    /// The objective.
    pub loss: &'a dyn Loss,
    /// The trained weights, in optimiser order (frozen ones are not among them).
    pub params: &'a [(String, Var)],
    /// Where training stands, for the loss.
    pub progress: Progress,
    /// The run's seed, from which the loss's per-step random stream derives.
    pub seed: u64,
    /// Weight of the experts' load-balancing term (ignored for models without experts).
    pub balance: f64,
}

/// The texts embedded by the query tower: the queries, then (when the loss wants them) the
/// negatives' own queries.
fn query_side(batch: &TrainBatch, with_negative_queries: bool) -> Vec<String> {
    let mut texts = batch.queries.clone();
    if with_negative_queries {
        texts.extend(batch.negative_queries.iter().map(|n| n.text.clone()));
    }
    texts
}

impl StepContext<'_> {
    fn wants_negative_queries(&self, batch: &TrainBatch) -> bool {
        self.loss.needs_negative_queries() && !batch.negative_queries.is_empty()
    }

    /// Calls the loss on the batch's vectors; `query_side` holds the queries and then the
    /// negative queries, if any.
    fn call_loss(
        &self,
        batch: &TrainBatch,
        query_side: &Tensor,
        passages: &Tensor,
        extra: Option<&ExtraNegatives>,
    ) -> Result<LossOutput> {
        let b = batch.len();
        let queries = query_side.narrow(0, 0, b)?;
        let n = query_side.dim(0)? - b;
        let negative_queries = (n > 0).then(|| query_side.narrow(0, b, n)).transpose()?;
        self.loss.loss(&LossInput {
            queries: &queries,
            passages,
            group: batch.group,
            batch,
            negative_queries: negative_queries.as_ref(),
            extra_negatives: extra,
            progress: self.progress,
            seed: self.seed,
        })
    }

    fn parts(out: &LossOutput) -> Result<Vec<(String, f64)>> {
        out.parts
            .iter()
            .map(|(n, t)| Ok((n.clone(), scalar(t)?)))
            .collect()
    }

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
    pub fn plain(&self, batch: &TrainBatch, memory: &mut MemoryLookup) -> Result<Gradients> {
        let queries = query_side(batch, self.wants_negative_queries(batch));
        let (q, p) = self.model.forward_pair(
            &self.tokenize_chunks(&queries, TextKind::Query, queries.len())?[0],
            &self.tokenize_chunks(&batch.passages, TextKind::Passage, batch.passages.len())?[0],
        )?;
        let extra = memory(&q.narrow(0, 0, batch.len())?.detach(), batch)?;
        let mut out = self.call_loss(batch, &q, &p, extra.as_ref())?;
        let (routing, balance) = self.model.take_routing();
        if let (Some(b), true) = (balance, self.balance > 0.0) {
            out.total = (&out.total + (&b * self.balance)?)?;
            out.parts.push(("balance".into(), b));
        }
        let value = scalar(&out.total)?;
        let mut acc = vec![None; self.params.len()];
        self.collect(&out.total.backward()?, &mut acc)?;
        Ok(Gradients {
            loss: value,
            parts: Self::parts(&out)?,
            stats: out.stats.clone(),
            grads: self.finish(acc)?,
            passages: p.detach(),
            routing,
        })
    }

    /// The same gradients with GradCache, holding at most `chunk` texts' graph at a time.
    pub fn cached(
        &self,
        batch: &TrainBatch,
        chunk: usize,
        memory: &mut MemoryLookup,
    ) -> Result<Gradients> {
        let queries = query_side(batch, self.wants_negative_queries(batch));
        let q_batches = self.tokenize_chunks(&queries, TextKind::Query, chunk)?;
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
        let extra = memory(&q.as_tensor().narrow(0, 0, batch.len())?.detach(), batch)?;
        let out = self.call_loss(batch, q.as_tensor(), p.as_tensor(), extra.as_ref())?;
        let value = scalar(&out.total)?;
        let cache = out.total.backward()?;
        let grad_of = |v: &Var| -> Result<Tensor> {
            Ok(match cache.get(v.as_tensor()) {
                Some(g) => g.clone(),
                None => v.as_tensor().zeros_like()?,
            })
        };
        let (gq, gp) = (grad_of(&q)?, grad_of(&p)?);
        // Pass 2: each chunk again with its graph, pushing the cached gradient through it. The
        // experts' balance term is computed per chunk, weighted by the chunk's share of texts
        // (its statistics are not additive, so this approximates the whole-batch term).
        let texts = (queries.len() + batch.passages.len()).max(1) as f64;
        let mut acc = vec![None; self.params.len()];
        let mut routing: Vec<Vec<u64>> = Vec::new();
        let mut balance_value = None::<f64>;
        for (kind, batches, g) in [
            (TextKind::Query, &q_batches, &gq),
            (TextKind::Passage, &p_batches, &gp),
        ] {
            let mut start = 0;
            for b in batches {
                let n = b.batch_size();
                let e = self.model.forward(kind, b)?;
                let mut surrogate = (e * g.narrow(0, start, n)?)?.sum_all()?;
                let (tokens, balance) = self.model.take_routing();
                add_counts(&mut routing, tokens);
                if let (Some(bal), true) = (balance, self.balance > 0.0) {
                    let w = n as f64 / texts;
                    *balance_value.get_or_insert(0.0) += w * scalar(&bal)?;
                    surrogate = (surrogate + (bal * (w * self.balance))?)?;
                }
                self.collect(&surrogate.backward()?, &mut acc)?;
                start += n;
            }
        }
        let mut parts = Self::parts(&out)?;
        let mut value = value;
        if let Some(b) = balance_value {
            value += self.balance * b;
            parts.push(("balance".into(), b));
        }
        Ok(Gradients {
            loss: value,
            routing,
            parts,
            stats: out.stats.clone(),
            grads: self.finish(acc)?,
            passages: p.as_tensor().detach(),
        })
    }
}

/// Adds per-layer, per-expert token counts into `sum`.
fn add_counts(sum: &mut Vec<Vec<u64>>, more: Vec<Vec<u64>>) {
    if sum.is_empty() {
        *sum = more;
        return;
    }
    for (a, b) in sum.iter_mut().zip(more) {
        if a.len() < b.len() {
            a.resize(b.len(), 0);
        }
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
    }
}
