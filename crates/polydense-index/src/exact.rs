//! Exact inner-product top-k: every query is scored against every corpus row.
//!
//! The corpus is walked in chunks of rows. For each chunk, one sgemm (the `gemm` crate, the
//! kernel behind candle's CPU matmul) scores a block of queries against it straight from the
//! memory-mapped rows, and each query keeps its best candidates in a small buffer that is
//! cut back to k with `select_nth_unstable` whenever it holds 2k. Memory is bounded by
//! `query_block × chunk_rows` scores plus `2k` candidates per query, whatever the corpus size.
//!
//! Ranking is deterministic: score descending, then the tie key ascending. The tie key is the
//! row index by default and the id's rank in byte-wise id order for [`ExactSearch::search_store`],
//! so equal scores resolve by doc id ascending. NaN scores are never returned.

use crate::error::{IndexError, Result};
use crate::store::EmbeddingStore;
use rayon::prelude::*;
use std::cmp::Ordering;

/// One retrieved row and its inner product with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row index in the corpus (or store).
    pub row: usize,
    /// Inner product of the query and the row.
    pub score: f32,
}

/// Settings of an exact search; the defaults suit CPU caches and keep the score buffer at
/// 16 MiB.
#[derive(Debug, Clone)]
pub struct ExactSearch {
    /// How many hits to return per query (fewer when the corpus is smaller).
    pub k: usize,
    /// Corpus rows scored per sgemm.
    pub chunk_rows: usize,
    /// Queries scored per sgemm; blocks of queries run in parallel when there are several.
    pub query_block: usize,
}

#[derive(Clone, Copy)]
struct Cand {
    score: f32,
    tie: u32,
    row: u32,
}

/// `Less` means `a` ranks before `b`: higher score first, then the smaller tie key.
#[inline]
fn rank_order(a: &Cand, b: &Cand) -> Ordering {
    b.score
        .partial_cmp(&a.score)
        .unwrap_or(Ordering::Equal)
        .then(a.tie.cmp(&b.tie))
}

/// The best candidates of one query so far.
struct TopK {
    k: usize,
    items: Vec<Cand>,
    /// Score of the k-th best after the last cut; rows scoring below it cannot enter.
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(2 * k),
            floor: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, scores: &[f32], first_row: usize, ties: Option<&[u32]>) {
        for (j, &s) in scores.iter().enumerate() {
            // `>=` keeps equal scores: one may win on the tie key. NaN fails and is dropped.
            if s >= self.floor {
                let row = first_row + j;
                let tie = ties.map_or(row as u32, |t| t[row]);
                self.items.push(Cand {
                    score: s,
                    tie,
                    row: row as u32,
                });
                if self.items.len() == 2 * self.k {
                    self.cut();
                }
            }
        }
    }

    fn cut(&mut self) {
        if self.items.len() > self.k {
            self.items.select_nth_unstable_by(self.k - 1, rank_order);
            self.items.truncate(self.k);
            self.floor = self.items[self.k - 1].score;
        }
    }

    fn finish(mut self) -> Vec<Hit> {
        self.cut();
        self.items.sort_unstable_by(rank_order);
        self.items
            .into_iter()
            .map(|c| Hit {
                row: c.row as usize,
                score: c.score,
            })
            .collect()
    }
}

impl ExactSearch {
    /// An exact search returning `k` hits per query, with default block sizes.
    pub fn new(k: usize) -> Self {
        ExactSearch {
            k,
            chunk_rows: 4096,
            query_block: 1024,
        }
    }

    /// Hits returned per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Sets the corpus rows scored per sgemm (tests use tiny chunks to cross boundaries).
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }

    /// Sets the queries scored per sgemm.
    pub fn with_query_block(mut self, queries: usize) -> Self {
        self.query_block = queries.max(1);
        self
    }

    /// Searches the rows of `store` and breaks score ties by doc id ascending.
    pub fn search_store(&self, queries: &[f32], store: &EmbeddingStore) -> Result<Vec<Vec<Hit>>> {
        self.search(
            queries,
            store.embeddings(),
            store.dim(),
            Some(store.id_ranks()),
        )
    }

    /// Top-k rows of `corpus` for each row of `queries`, both row-major with width `dim`.
    /// `ties` (one key per corpus row) breaks equal scores, ascending; without it, the row
    /// index does.
    pub fn search(
        &self,
        queries: &[f32],
        corpus: &[f32],
        dim: usize,
        ties: Option<&[u32]>,
    ) -> Result<Vec<Vec<Hit>>> {
        if self.k == 0 {
            return Err(IndexError::InvalidArgument("k must be at least 1".into()));
        }
        if dim == 0 || corpus.len() % dim != 0 || queries.len() % dim != 0 {
            return Err(IndexError::InvalidArgument(format!(
                "matrices of {} and {} values are not rows of dimension {dim}",
                queries.len(),
                corpus.len()
            )));
        }
        let n = corpus.len() / dim;
        let m = queries.len() / dim;
        if n == 0 {
            return Err(IndexError::EmptyStore);
        }
        if n > u32::MAX as usize {
            return Err(IndexError::InvalidArgument(format!(
                "{n} rows exceed the 2^32 rows one search supports"
            )));
        }
        if let Some(t) = ties {
            if t.len() != n {
                return Err(IndexError::InvalidArgument(format!(
                    "{} tie keys for {n} rows",
                    t.len()
                )));
            }
        }
        let blocks: Vec<&[f32]> = queries.chunks(self.query_block * dim).collect();
        // With several query blocks, parallelise across them and keep each sgemm serial;
        // with one, let sgemm use the threads.
        let inner_threads = if blocks.len() > 1 {
            1
        } else {
            rayon::current_num_threads()
        };
        let mut out: Vec<Vec<Hit>> = Vec::with_capacity(m);
        let per_block: Vec<Vec<Vec<Hit>>> = blocks
            .par_iter()
            .map(|q| self.search_block(q, corpus, dim, ties, inner_threads))
            .collect();
        for b in per_block {
            out.extend(b);
        }
        Ok(out)
    }

    fn search_block(
        &self,
        queries: &[f32],
        corpus: &[f32],
        dim: usize,
        ties: Option<&[u32]>,
        threads: usize,
    ) -> Vec<Vec<Hit>> {
        let m = queries.len() / dim;
        let n = corpus.len() / dim;
        let k = self.k.min(n);
        let chunk = self.chunk_rows.min(n);
        let mut heaps: Vec<TopK> = (0..m).map(|_| TopK::new(k)).collect();
        let mut scores = vec![0f32; m * chunk];
        let mut start = 0;
        while start < n {
            let rows = chunk.min(n - start);
            let c = &corpus[start * dim..(start + rows) * dim];
            let s = &mut scores[..m * rows];
            sgemm_nt(queries, c, s, m, rows, dim, threads);
            let offer = |(heap, row): (&mut TopK, &[f32])| heap.offer(row, start, ties);
            if threads > 1 {
                heaps.par_iter_mut().zip(s.par_chunks(rows)).for_each(offer);
            } else {
                heaps.iter_mut().zip(s.chunks(rows)).for_each(offer);
            }
            start += rows;
        }
        heaps.into_iter().map(TopK::finish).collect()
    }
}

/// `out[m, n] = a[m, dim] · b[n, dim]ᵀ`, all row-major.
fn sgemm_nt(a: &[f32], b: &[f32], out: &mut [f32], m: usize, n: usize, dim: usize, threads: usize) {
    assert!(a.len() >= m * dim && b.len() >= n * dim && out.len() >= m * n);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every index the strides below can reach:
    // out[i, j] at i*n + j, a[i, l] at i*dim + l, bᵀ[l, j] = b[j, l] at j*dim + l.
    unsafe {
        gemm::gemm(
            m,
            n,
            dim,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            dim as isize,
            b.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * dim)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect()
    }

    /// Full sort of all scores, computed in f64 order-independently of the kernel.
    fn brute_force(
        q: &[f32],
        c: &[f32],
        dim: usize,
        k: usize,
        ties: Option<&[u32]>,
    ) -> Vec<Vec<Hit>> {
        q.chunks(dim)
            .map(|qr| {
                let mut all: Vec<Cand> = c
                    .chunks(dim)
                    .enumerate()
                    .map(|(j, cr)| Cand {
                        score: qr.iter().zip(cr).map(|(a, b)| a * b).sum(),
                        tie: ties.map_or(j as u32, |t| t[j]),
                        row: j as u32,
                    })
                    .collect();
                all.sort_by(rank_order);
                all.truncate(k);
                all.into_iter()
                    .map(|c| Hit {
                        row: c.row as usize,
                        score: c.score,
                    })
                    .collect()
            })
            .collect()
    }

    fn assert_same(got: &[Vec<Hit>], want: &[Vec<Hit>]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(w) {
                assert_eq!(a.row, b.row, "got {g:?}\nwant {w:?}");
                assert!((a.score - b.score).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn matches_brute_force_on_random_data_across_chunk_sizes() {
        let (dim, n, m, k) = (24, 1000, 37, 10);
        let c = random(n, dim, 1);
        let q = random(m, dim, 2);
        let want = brute_force(&q, &c, dim, k, None);
        for chunk in [1, 7, 64, 999, 1000, 5000] {
            for qb in [1, 5, 1024] {
                let got = ExactSearch::new(k)
                    .with_chunk_rows(chunk)
                    .with_query_block(qb)
                    .search(&q, &c, dim, None)
                    .unwrap();
                assert_same(&got, &want);
            }
        }
    }

    #[test]
    fn ties_resolve_by_tie_key_then_row() {
        // Quantised values make many exact ties (the scores are small integers).
        let dim = 4;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let c: Vec<f32> = (0..300 * dim)
            .map(|_| rng.random_range(-1i32..=1) as f32)
            .collect();
        let q: Vec<f32> = (0..20 * dim)
            .map(|_| rng.random_range(-1i32..=1) as f32)
            .collect();
        let mut keys: Vec<u32> = (0..300).collect();
        keys.reverse();
        for ties in [None, Some(&keys[..])] {
            let want = brute_force(&q, &c, dim, 25, ties);
            let got = ExactSearch::new(25)
                .with_chunk_rows(16)
                .search(&q, &c, dim, ties)
                .unwrap();
            assert_same(&got, &want);
        }
        // With every score equal, the k smallest keys win, in key order.
        let zeros = vec![0f32; 50 * dim];
        let got = ExactSearch::new(3)
            .search(&q[..dim], &zeros, dim, None)
            .unwrap();
        let rows: Vec<_> = got[0].iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![0, 1, 2]);
    }

    #[test]
    fn k_larger_than_corpus_returns_every_row_sorted() {
        let dim = 8;
        let c = random(5, dim, 4);
        let q = random(3, dim, 5);
        let got = ExactSearch::new(100).search(&q, &c, dim, None).unwrap();
        assert_same(&got, &brute_force(&q, &c, dim, 5, None));
        assert!(got.iter().all(|h| h.len() == 5));
    }

    #[test]
    fn nan_rows_are_never_returned() {
        let dim = 2;
        let c = vec![f32::NAN, 0.0, 1.0, 1.0, 0.5, 0.5];
        let got = ExactSearch::new(3)
            .search(&[1.0, 1.0], &c, dim, None)
            .unwrap();
        let rows: Vec<_> = got[0].iter().map(|h| h.row).collect();
        assert_eq!(rows, vec![1, 2]);
    }

    #[test]
    fn rejects_empty_corpus_zero_k_and_ragged_input() {
        let s = ExactSearch::new(5);
        assert!(matches!(
            s.search(&[1.0; 4], &[], 4, None),
            Err(IndexError::EmptyStore)
        ));
        assert!(ExactSearch::new(0)
            .search(&[1.0; 4], &[1.0; 4], 4, None)
            .is_err());
        assert!(s.search(&[1.0; 3], &[1.0; 8], 4, None).is_err());
        assert!(s.search(&[1.0; 4], &[1.0; 8], 4, Some(&[0])).is_err());
        assert!(s.search(&[], &[1.0; 8], 4, None).unwrap().is_empty());
    }

    #[test]
    fn store_search_breaks_ties_by_doc_id() {
        use crate::store::{write_store, RowId, StoreMetadata};
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<_> = ["z", "b", "a", "y"]
            .iter()
            .map(|s| RowId::new(*s))
            .collect();
        let rows = [1.0, 1.0, 2.0, 1.0];
        write_store(dir.path(), &ids, &rows, 1, StoreMetadata::new()).unwrap();
        let store = EmbeddingStore::open(dir.path()).unwrap();
        let got = ExactSearch::new(4).search_store(&[1.0], &store).unwrap();
        let order: Vec<_> = got[0]
            .iter()
            .map(|h| store.ids()[h.row].id.as_str())
            .collect();
        assert_eq!(order, vec!["a", "b", "y", "z"]);
        assert!(matches!(
            ExactSearch::new(1).search_store(&[1.0, 2.0], &store),
            Ok(ref v) if v.len() == 2
        ));
    }
}
