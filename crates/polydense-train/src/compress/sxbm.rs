//! S-XBM, SMEC's selective cross-batch memory: a FIFO queue of earlier batches' passages
//! from which each query takes its `top_k` most similar entries as extra negatives.
//!
//! The backbone is frozen, so a passage's full-width vector never changes: the queue holds
//! row indices into the precomputed passages, and similarity is measured at full width (the
//! compressed vectors of the entries are computed by the head each step, with a gradient).

use std::collections::VecDeque;

use candle_core::Tensor;

use crate::error::Result;

/// The queue of past passages, by pair row.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    capacity: usize,
    top_k: usize,
    rows: VecDeque<usize>,
}

impl Queue {
    pub(crate) fn new(capacity: usize, top_k: usize) -> Self {
        Queue {
            capacity,
            top_k,
            rows: VecDeque::with_capacity(capacity),
        }
    }

    /// Adds a batch's passage rows, dropping the oldest beyond capacity.
    pub(crate) fn push(&mut self, rows: &[usize]) {
        for &r in rows {
            if self.rows.len() == self.capacity {
                self.rows.pop_front();
            }
            self.rows.push_back(r);
        }
    }

    /// For each query (full-width `[B, dim]` vectors), the pair rows of its `top_k` most
    /// similar queued passages that are not among its positives (`is_positive(i, id)` for
    /// batch query i), flattened `B × top_k`, most similar first; `None` while some query
    /// cannot find `top_k` such entries (the queue is still filling).
    pub(crate) fn select(
        &self,
        queries: &Tensor,
        is_positive: &dyn Fn(usize, &str) -> bool,
        passages: &Tensor,
        ids: &[String],
    ) -> Result<Option<Vec<usize>>> {
        let queued: Vec<usize> = self.rows.iter().copied().collect();
        if queued.len() < self.top_k {
            return Ok(None);
        }
        let index = Tensor::from_vec(
            queued.iter().map(|&r| r as u32).collect::<Vec<_>>(),
            queued.len(),
            passages.device(),
        )?;
        let memory = passages.index_select(&index, 0)?;
        let sims: Vec<Vec<f32>> = queries.matmul(&memory.t()?)?.to_vec2()?;
        let mut out = Vec::with_capacity(sims.len() * self.top_k);
        for (i, row) in sims.iter().enumerate() {
            let mut order: Vec<usize> = (0..queued.len())
                .filter(|&j| !is_positive(i, &ids[queued[j]]))
                .collect();
            if order.len() < self.top_k {
                return Ok(None);
            }
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            out.extend(order[..self.top_k].iter().map(|&j| queued[j]));
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn never_returns_a_querys_own_positive_and_keeps_the_most_similar() {
        let dev = Device::Cpu;
        // Passages 0..6 on a circle; ids repeat (rows 0 and 3 are the same passage).
        let angles = [0.0f32, 0.5, 1.0, 0.0, 2.0, 2.5];
        let flat: Vec<f32> = angles.iter().flat_map(|a| [a.cos(), a.sin()]).collect();
        let passages = Tensor::from_vec(flat, (6, 2), &dev).unwrap();
        let ids: Vec<String> = ["a", "b", "c", "a", "e", "f"].map(String::from).to_vec();
        let mut q = Queue::new(5, 2);
        q.push(&[0, 1]);
        let query = Tensor::new(&[[1f32, 0.0]], &dev).unwrap();
        let own = |p: &'static [&'static str]| move |_: usize, id: &str| p.contains(&id);
        // Too few entries yet once the positive is left out.
        assert!(q
            .select(&query, &own(&["a"]), &passages, &ids)
            .unwrap()
            .is_none());
        q.push(&[2, 3, 4, 5]); // capacity 5: row 0 falls out
        let got = q
            .select(&query, &own(&["a"]), &passages, &ids)
            .unwrap()
            .unwrap();
        // Row 3 ("a") is the most similar but is the query's own positive.
        assert_eq!(got, vec![1, 2]);
        let got = q
            .select(&query, &own(&["b"]), &passages, &ids)
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![3, 2]);
        // A query with several positives (its paragraph in two languages) loses all of them.
        let got = q
            .select(&query, &own(&["a", "b"]), &passages, &ids)
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![2, 4]);
    }
}
