//! The [`CrossBatchMemory`] seam: negatives carried over from earlier batches (S-XBM, SMEC
//! EMNLP 2025), and [`FifoMemory`], the plain queue they start from.

use candle_core::Tensor;

use crate::error::Result;

/// Extra negatives from past batches. Per step the trainer calls
/// [`CrossBatchMemory::negatives`] once, before the loss, with the batch's query vectors
/// (no graph), and passes the result to the loss as shared extra negatives (no gradient flows
/// into them); after the optimiser step it calls [`CrossBatchMemory::push`] with the batch's
/// passage vectors. Its state goes into every checkpoint, so a resumed run sees the same
/// memory.
pub trait CrossBatchMemory: Send {
    /// `[M, dim]` extra negatives for this batch, or `None` while the memory has none.
    fn negatives(&mut self, queries: &Tensor) -> Result<Option<Tensor>>;

    /// Adds the batch's passage vectors `[N, dim]`.
    fn push(&mut self, passages: &Tensor) -> Result<()>;

    /// The memory's contents for a checkpoint.
    fn state(&self) -> Option<Tensor>;

    /// Restores [`CrossBatchMemory::state`] on resume.
    fn restore(&mut self, state: Option<Tensor>) -> Result<()>;
}

/// A first-in first-out queue of the last `capacity` passage vectors, every one used as a
/// negative (MoCo-style; S-XBM picks the top-k of such a queue).
#[derive(Debug, Clone)]
pub struct FifoMemory {
    /// Vectors kept at most.
    pub capacity: usize,
    queue: Option<Tensor>,
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
    fn negatives(&mut self, _queries: &Tensor) -> Result<Option<Tensor>> {
        Ok(self.queue.clone())
    }

    fn push(&mut self, passages: &Tensor) -> Result<()> {
        let passages = passages.detach();
        let all = match &self.queue {
            Some(q) => Tensor::cat(&[q, &passages], 0)?,
            None => passages,
        };
        let n = all.dim(0)?;
        let keep = n.min(self.capacity);
        self.queue = (keep > 0)
            .then(|| all.narrow(0, n - keep, keep))
            .transpose()?;
        Ok(())
    }

    fn state(&self) -> Option<Tensor> {
        self.queue.clone()
    }

    fn restore(&mut self, state: Option<Tensor>) -> Result<()> {
        self.queue = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fifo_keeps_the_newest_rows() {
        let mut m = FifoMemory::new(3);
        let q = Tensor::zeros((1, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(m.negatives(&q).unwrap().is_none());
        m.push(&Tensor::new(&[[1f32], [2.0]], &Device::Cpu).unwrap())
            .unwrap();
        m.push(&Tensor::new(&[[3f32], [4.0]], &Device::Cpu).unwrap())
            .unwrap();
        let got: Vec<Vec<f32>> = m.negatives(&q).unwrap().unwrap().to_vec2().unwrap();
        assert_eq!(got, vec![vec![2.0], vec![3.0], vec![4.0]]);
    }
}
