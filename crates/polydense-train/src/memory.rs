//! The [`CrossBatchMemory`] seam: negatives carried over from earlier batches (S-XBM, SMEC
//! EMNLP 2025), and [`FifoMemory`], the plain queue they start from.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::batch::TrainBatch;
use crate::error::{Result, TrainError};
use crate::loss::ExtraNegatives;
use crate::sampler::NoKeys;

/// Passage vectors from earlier batches with their ids.
#[derive(Debug, Clone)]
pub struct MemoryEntries {
    /// `[M, dim]`, without an autograd graph.
    pub vectors: Tensor,
    /// The passage id of each row.
    pub ids: Vec<String>,
}

/// Extra negatives from past batches.
///
/// Per step the trainer calls [`CrossBatchMemory::negatives`] once, before the loss, with the
/// batch's query vectors (no graph, on the plain path and under GradCache alike); it masks
/// every returned entry whose id is one of a query's positives (see
/// [`MemoryEntries::for_batch`]) and passes the rest to the loss as shared extra negatives,
/// into which no gradient flows. After the optimiser step it calls [`CrossBatchMemory::push`]
/// once with the batch's passage vectors, which never carry a graph. Its
/// [`CrossBatchMemory::state`] goes into every checkpoint, so a resumed run sees the same
/// memory.
pub trait CrossBatchMemory: Send {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Entries to use as extra negatives for this batch, or `None` while the memory has none.
    fn negatives(&mut self, queries: &Tensor, batch: &TrainBatch) -> Result<Option<MemoryEntries>>;

    /// Adds the batch's passage vectors `[N, dim]` (no graph) with their ids.
    fn push(&mut self, passages: &Tensor, ids: &[String]) -> Result<()>;

    /// The memory's contents for a checkpoint.
    fn state(&self) -> Option<MemoryEntries>;

    /// Restores [`CrossBatchMemory::state`] on resume.
    fn restore(&mut self, state: Option<MemoryEntries>) -> Result<()>;
}

impl MemoryEntries {
    /// The entries as the loss sees them for `batch`: query i may not use an entry whose id
    /// is one of its example's positives (`[B, M]` mask, 1 = allowed).
    pub fn for_batch(&self, batch: &TrainBatch) -> Result<ExtraNegatives> {
        let m = self.ids.len();
        let mut allowed = vec![1u8; batch.len() * m];
        for (i, positives) in batch.positive_ids.iter().enumerate() {
            for (j, id) in self.ids.iter().enumerate() {
                if positives.contains(id) {
                    allowed[i * m + j] = 0;
                }
            }
        }
        Ok(ExtraNegatives {
            vectors: self.vectors.detach(),
            allowed: Tensor::from_vec(allowed, (batch.len(), m), self.vectors.device())?,
        })
    }
}

/// A first-in first-out queue of the last `capacity` passage vectors, every one used as a
/// negative (MoCo-style; S-XBM picks the top-k of such a queue).
#[derive(Debug, Clone)]
pub struct FifoMemory {
    /// Vectors kept at most.
    pub capacity: usize,
    queue: Option<MemoryEntries>,
}

impl FifoMemory {
    /// An empty queue.
    pub fn new(capacity: usize) -> Self {
        FifoMemory {
            capacity,
            queue: None,
        }
    }
}

impl CrossBatchMemory for FifoMemory {
    fn name(&self) -> &str {
        "fifo"
    }

    fn negatives(
        &mut self,
        _queries: &Tensor,
        _batch: &TrainBatch,
    ) -> Result<Option<MemoryEntries>> {
        Ok(self.queue.clone())
    }

    fn push(&mut self, passages: &Tensor, ids: &[String]) -> Result<()> {
        if passages.dim(0)? != ids.len() {
            return Err(TrainError::config(
                "memory",
                format!("{} vectors pushed with {} ids", passages.dim(0)?, ids.len()),
            ));
        }
        let passages = passages.detach();
        let (all, mut all_ids) = match self.queue.take() {
            Some(q) => (Tensor::cat(&[&q.vectors, &passages], 0)?, q.ids),
            None => (passages, Vec::new()),
        };
        all_ids.extend_from_slice(ids);
        let n = all.dim(0)?;
        let keep = n.min(self.capacity);
        self.queue = match keep {
            0 => None,
            _ => Some(MemoryEntries {
                vectors: all.narrow(0, n - keep, keep)?,
                ids: all_ids.split_off(n - keep),
            }),
        };
        Ok(())
    }

    fn state(&self) -> Option<MemoryEntries> {
        self.queue.clone()
    }

    fn restore(&mut self, state: Option<MemoryEntries>) -> Result<()> {
        self.queue = state;
        Ok(())
    }
}

/// The `[memory]` table of a training config: extra negatives from earlier batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MemoryConfig {
    /// No memory: negatives come from the batch only.
    None(NoKeys),
    /// A FIFO queue of the last `capacity` passage vectors, all used as negatives.
    Fifo(FifoConfig),
}

/// The keys of `[memory] kind = "fifo"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FifoConfig {
    /// Passage vectors kept (a few batches' worth: stale vectors from many steps ago are
    /// weak negatives, MoCo's argument for a momentum encoder).
    pub capacity: usize,
}

impl Default for FifoConfig {
    fn default() -> Self {
        FifoConfig { capacity: 1024 }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig::None(NoKeys {})
    }
}

impl MemoryConfig {
    /// The `kind` values this build knows.
    pub const KINDS: &'static [&'static str] = &["none", "fifo"];

    /// The memory this table describes, if any.
    pub fn build(&self) -> Option<Box<dyn CrossBatchMemory>> {
        match self {
            MemoryConfig::None(_) => None,
            MemoryConfig::Fifo(c) => Some(Box::new(FifoMemory::new(c.capacity))),
        }
    }

    /// Checks the keys' ranges; errors name the key as `memory.<key>`.
    pub fn validate(&self) -> Result<()> {
        match self {
            MemoryConfig::Fifo(c) if c.capacity == 0 => Err(TrainError::config(
                "memory.capacity",
                "must be greater than 0",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fifo_keeps_the_newest_rows_with_their_ids() {
        let mut m = FifoMemory::new(3);
        let q = Tensor::zeros((1, 1), DType::F32, &Device::Cpu).unwrap();
        let batch = TrainBatch::default();
        assert!(m.negatives(&q, &batch).unwrap().is_none());
        m.push(
            &Tensor::new(&[[1f32], [2.0]], &Device::Cpu).unwrap(),
            &ids(&["a", "b"]),
        )
        .unwrap();
        m.push(
            &Tensor::new(&[[3f32], [4.0]], &Device::Cpu).unwrap(),
            &ids(&["c", "d"]),
        )
        .unwrap();
        let got = m.negatives(&q, &batch).unwrap().unwrap();
        assert_eq!(
            got.vectors.to_vec2::<f32>().unwrap(),
            vec![vec![2.0], vec![3.0], vec![4.0]]
        );
        assert_eq!(got.ids, ids(&["b", "c", "d"]));
    }

    #[test]
    fn a_query_never_sees_its_own_positive_from_the_memory() {
        let entries = MemoryEntries {
            vectors: Tensor::zeros((3, 2), DType::F32, &Device::Cpu).unwrap(),
            ids: ids(&["p0", "x", "p1-de"]),
        };
        let batch = TrainBatch {
            queries: ids(&["q0", "q1"]),
            positive_ids: vec![ids(&["p0"]), ids(&["p1", "p1-de"])],
            ..TrainBatch::default()
        };
        let extra = entries.for_batch(&batch).unwrap();
        assert_eq!(
            extra.allowed.to_vec2::<u8>().unwrap(),
            vec![vec![0, 1, 1], vec![1, 1, 0]]
        );
    }
}
