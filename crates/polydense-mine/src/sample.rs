//! Choosing each miner's quota of negatives from what survived the filters.

use crate::stage::Candidate;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How a miner's `n` negatives are chosen among its surviving candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// The n best ranked: the hardest, and the most likely to hold false negatives.
    Top,
    /// n drawn uniformly from the window, as Tevatron and DPR sample BM25 negatives.
    #[default]
    Random,
}

/// FNV-1a: a hash that, unlike std's `DefaultHasher`, is fixed across Rust releases, so a
/// seed gives the same negatives on every build.
pub(crate) fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Keeps `n` of `cands` (ranked best first) by `how`; the random draw depends only on
/// `seed`, the query and the source, never on thread scheduling. The result stays in rank order.
pub fn select(
    mut cands: Vec<Candidate>,
    n: usize,
    how: Sampling,
    seed: u64,
    qid: &str,
    source: &str,
) -> Vec<Candidate> {
    if cands.len() <= n {
        return cands;
    }
    match how {
        Sampling::Top => {
            cands.truncate(n);
            cands
        }
        Sampling::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(&[qid, source]));
            let mut picked = sample(&mut rng, cands.len(), n).into_vec();
            picked.sort_unstable();
            let mut slots: Vec<Option<Candidate>> = cands.into_iter().map(Some).collect();
            picked
                .into_iter()
                .map(|i| slots[i].take().expect("indices are distinct"))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(k: usize) -> Vec<Candidate> {
        (0..k)
            .map(|i| Candidate {
                docid: format!("d{i}"),
                score: (k - i) as f32,
                source: "bm25".into(),
                rank: i,
                passage: None,
                stage_scores: Default::default(),
            })
            .collect()
    }

    #[test]
    fn top_keeps_the_best_ranked() {
        let got = select(cands(10), 3, Sampling::Top, 0, "q", "bm25");
        assert_eq!(
            got.iter().map(|c| c.rank).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn random_is_seeded_per_query_in_rank_order_and_spread() {
        let a = select(cands(50), 5, Sampling::Random, 7, "q1", "bm25");
        let b = select(cands(50), 5, Sampling::Random, 7, "q1", "bm25");
        let c = select(cands(50), 5, Sampling::Random, 7, "q2", "bm25");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0].rank < w[1].rank));
        // Over many queries every rank of the window is drawn, not just the top.
        let mut seen = [false; 50];
        for q in 0..200 {
            for c in select(cands(50), 5, Sampling::Random, 7, &format!("q{q}"), "bm25") {
                seen[c.rank] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn fewer_than_n_keeps_all() {
        assert_eq!(select(cands(2), 5, Sampling::Random, 0, "q", "s").len(), 2);
    }
}
