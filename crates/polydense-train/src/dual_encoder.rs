//! [`DualEncoder`]: the query and passage towers of a bi-encoder, shared or separate.

use std::path::Path;

use candle_core::{Tensor, Var};
use polydense_model::{Encoder, Kernels, TextKind, TokenBatch};

use crate::error::Result;
use crate::freeze::Trainable;

/// A bi-encoder (DPR, Karpukhin et al. 2020): queries and passages are embedded apart and
/// scored by inner product. With shared towers one encoder embeds both.
#[derive(Debug)]
pub struct DualEncoder {
    query: Encoder,
    passage: Option<Encoder>,
}

impl DualEncoder {
    /// One encoder for queries and passages.
    pub fn shared(encoder: Encoder) -> Self {
        DualEncoder {
            query: encoder,
            passage: None,
        }
    }

    /// Separate query and passage towers (usually two loads of the same checkpoint).
    pub fn separate(query: Encoder, passage: Encoder) -> Self {
        DualEncoder {
            query,
            passage: Some(passage),
        }
    }

    /// Whether the towers are separate.
    pub fn is_separate(&self) -> bool {
        self.passage.is_some()
    }

    /// The encoder that embeds texts of `kind`.
    pub fn tower(&self, kind: TextKind) -> &Encoder {
        match (kind, &self.passage) {
            (TextKind::Passage, Some(p)) => p,
            _ => &self.query,
        }
    }

    /// Every trainable weight, sorted by name: the HF name for shared towers, prefixed by
    /// `query.` / `passage.` for separate ones. Names key the optimiser state and checkpoints.
    pub fn params(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        let mut add = |enc: &Encoder, prefix: &str| {
            let data = enc.varmap().data().lock().expect("varmap lock poisoned");
            out.extend(
                data.iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
            );
        };
        match &self.passage {
            None => add(&self.query, ""),
            Some(p) => {
                add(&self.query, "query.");
                add(p, "passage.");
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Cuts the weights `trainable` refuses (names as in [`DualEncoder::params`]) from the
    /// autograd graph, so no gradient is computed for them; see [`Encoder::freeze`].
    pub fn freeze(&mut self, trainable: &Trainable) -> Result<()> {
        match &mut self.passage {
            None => self.query.freeze(&|n| trainable.trains(n))?,
            Some(p) => {
                self.query
                    .freeze(&|n| trainable.trains(&format!("query.{n}")))?;
                p.freeze(&|n| trainable.trains(&format!("passage.{n}")))?;
            }
        }
        Ok(())
    }

    /// Turns every tower's dense feed-forward blocks into experts (see
    /// [`Encoder::upgrade_to_moe`]); the passage tower draws from the next seed.
    pub fn upgrade_to_moe(
        &mut self,
        moe: &polydense_model::ffn::MoeConfig,
        noise: f64,
        seed: u64,
    ) -> Result<()> {
        self.query.upgrade_to_moe(moe, noise, seed)?;
        if let Some(p) = &mut self.passage {
            p.upgrade_to_moe(moe, noise, seed.wrapping_add(1))?;
        }
        Ok(())
    }

    /// Tokens routed to each expert of each layer since the last call (the query tower's
    /// layers, then the passage tower's), and the summed load-balancing terms of the last
    /// forward passes with their graph; `None` for a model without experts.
    pub fn take_routing(&self) -> (Vec<Vec<u64>>, Option<Tensor>) {
        let (mut tokens, mut balance) = self.query.take_routing();
        if let Some(p) = &self.passage {
            let (t, b) = p.take_routing();
            tokens.extend(t);
            balance = match (balance, b) {
                (Some(a), Some(b)) => Some((a + b).expect("scalars add")),
                (a, b) => a.or(b),
            };
        }
        (tokens, balance)
    }

    /// Vectors `[B, dim]` of a batch with the autograd graph, for the training step.
    pub fn forward(&self, kind: TextKind, batch: &TokenBatch) -> Result<Tensor> {
        Ok(self.tower(kind).forward(batch)?)
    }

    /// Query and passage vectors of a training batch with the autograd graph. A shared tower
    /// running packed rows (the fused CPU kernels) embeds both in one pass: no padding is
    /// computed either way, and one pass has half the per-layer overhead and larger matmuls.
    pub fn forward_pair(
        &self,
        queries: &TokenBatch,
        passages: &TokenBatch,
    ) -> Result<(Tensor, Tensor)> {
        let tower = &self.query;
        if self.passage.is_some() || tower.transformer().kernels() != Kernels::Fused {
            return Ok((
                self.forward(TextKind::Query, queries)?,
                self.forward(TextKind::Passage, passages)?,
            ));
        }
        let both = tower.forward(&TokenBatch::concat(&[queries, passages])?)?;
        let n = queries.batch_size();
        Ok((
            both.narrow(0, 0, n)?,
            both.narrow(0, n, passages.batch_size())?,
        ))
    }

    /// Vectors `[B, dim]` without building a graph, for GradCache's first pass and for
    /// evaluation (the weights are shared, not copied).
    pub fn encode(&self, kind: TextKind, batch: &TokenBatch) -> Result<Tensor> {
        Ok(self.tower(kind).forward_detached(batch)?)
    }

    /// Saves the model as an HF + sentence-transformers directory: `dir` itself for shared
    /// towers, `dir/query` and `dir/passage` for separate ones.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match &self.passage {
            None => self.query.save(dir)?,
            Some(p) => {
                self.query.save(&dir.join("query"))?;
                p.save(&dir.join("passage"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use polydense_model::EncoderConfig;

    #[test]
    fn one_pass_for_both_sides_gives_the_vectors_and_gradients_of_two() {
        let enc =
            Encoder::random_with_dtype(&EncoderConfig::tiny_bert(), DType::F64, &Device::Cpu, 3)
                .unwrap();
        let model = DualEncoder::shared(enc);
        let ids = |rows: &[&[u32]]| {
            let rows: Vec<Vec<u32>> = rows.iter().map(|r| r.to_vec()).collect();
            TokenBatch::from_ids(&rows, 0, &Device::Cpu).unwrap()
        };
        let q = ids(&[&[2, 7, 3], &[2, 9, 11, 3]]);
        let p = ids(&[
            &[2, 5, 6, 7, 8, 3],
            &[2, 4, 3],
            &[2, 12, 13, 14, 3],
            &[2, 3],
        ]);
        let (qa, pa) = model.forward_pair(&q, &p).unwrap();
        let (qb, pb) = (
            model.forward(TextKind::Query, &q).unwrap(),
            model.forward(TextKind::Passage, &p).unwrap(),
        );
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        assert!(diff(&qa, &qb) < 1e-12 && diff(&pa, &pb) < 1e-12);
        let loss = |q: &Tensor, p: &Tensor| q.matmul(&p.t().unwrap()).unwrap().sum_all().unwrap();
        let (ga, gb) = (
            loss(&qa, &pa).backward().unwrap(),
            loss(&qb, &pb).backward().unwrap(),
        );
        let params = model.params();
        assert!(params.len() > 10, "{} trainable weights", params.len());
        for (name, var) in params {
            let (a, b) = (ga.get(var.as_tensor()), gb.get(var.as_tensor()));
            let (a, b) = (a.expect(&name), b.expect(&name));
            assert!(diff(a, b) < 1e-12, "{name}: {}", diff(a, b));
        }
    }
}
