//! Batch construction of iterative clustered training (ICT, Rajapakse, Yates and de Rijke,
//! SIGIR'24 §3): one cluster per batch where possible, so the in-batch negatives are hard.
//!
//! Pure functions of the cluster assignments, the positives and a seeded generator, so unit
//! tests can pin batch sizes, duplicate positives and coverage.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// The batches of one epoch, in training order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchPlan {
    /// Example indices per batch; each example appears exactly once in the whole plan.
    pub batches: Vec<Vec<usize>>,
    /// Batches shorter than the batch size (the merged remainder, and extra batches forced
    /// by examples whose positive is shared with every open batch).
    pub short_batches: usize,
}

/// Cuts clusters into batches (SIGIR'24 §3.2): each cluster, shuffled, is cut into chunks of
/// at most `batch_size`; full chunks are batches; the smaller chunks are merged, in cluster
/// order so neighbouring remainders stay together, into batches of `batch_size`. Within a
/// batch no two examples share a positive docid (a shared positive is a false in-batch
/// negative): a conflicting example moves to the first batch with room that holds none of
/// its positives, opening a new one when no batch can take it. Every example is placed
/// exactly once; batch order is shuffled.
///
/// `positives[i]` are example i's positive docids; `assignments[i]` its cluster.
pub fn cluster_batches(
    assignments: &[u32],
    positives: &[Vec<&str>],
    batch_size: usize,
    rng: &mut ChaCha8Rng,
) -> BatchPlan {
    assert_eq!(
        assignments.len(),
        positives.len(),
        "one cluster per example"
    );
    let b = batch_size.max(1);
    let k = assignments
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let mut clusters: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &c) in assignments.iter().enumerate() {
        clusters[c as usize].push(i);
    }
    let mut full: Vec<Vec<usize>> = Vec::new();
    let mut pool: Vec<usize> = Vec::new();
    let mut evicted: Vec<usize> = Vec::new();
    for mut members in clusters {
        members.shuffle(rng);
        for chunk in members.chunks(b) {
            if chunk.len() < b {
                pool.extend_from_slice(chunk);
                continue;
            }
            let mut seen: HashSet<&str> = HashSet::new();
            let mut batch = Vec::with_capacity(b);
            for &i in chunk {
                match positives[i].iter().any(|p| seen.contains(p)) {
                    true => evicted.push(i),
                    false => {
                        seen.extend(positives[i].iter().copied());
                        batch.push(i);
                    }
                }
            }
            full.push(batch);
        }
    }
    // Evicted examples come after the remainders: the batches they left now have room, and
    // first-fit below offers them those batches first.
    pool.extend(evicted);
    let mut batches = full;
    first_fit(&mut batches, &pool, positives, b);
    merge_short(&mut batches, positives, b);
    batches.shuffle(rng);
    let short_batches = batches.iter().filter(|x| x.len() < b).count();
    BatchPlan {
        batches,
        short_batches,
    }
}

/// Places each example of `pool`, in order, into the first batch with room that holds none
/// of its positives, opening a new batch when there is none. Hand-written: bin packing with
/// conflicts is a few lines, and no crate offers it.
fn first_fit(batches: &mut Vec<Vec<usize>>, pool: &[usize], positives: &[Vec<&str>], b: usize) {
    let mut open: Vec<usize> = (0..batches.len())
        .filter(|&j| batches[j].len() < b)
        .collect();
    let mut seen: Vec<HashSet<&str>> = batches
        .iter()
        .map(|batch| {
            batch
                .iter()
                .flat_map(|&i| positives[i].iter().copied())
                .collect()
        })
        .collect();
    for &i in pool {
        let fits = |j: &usize| !positives[i].iter().any(|p| seen[*j].contains(p));
        let slot = match open.iter().position(fits) {
            Some(pos) => pos,
            None => {
                batches.push(Vec::with_capacity(b));
                seen.push(HashSet::new());
                open.push(batches.len() - 1);
                open.len() - 1
            }
        };
        let j = open[slot];
        batches[j].push(i);
        seen[j].extend(positives[i].iter().copied());
        if batches[j].len() >= b {
            open.remove(slot);
        }
    }
}

/// Whether example `x` shares no positive with the examples of `batch` (other than `skip`).
fn fits(x: usize, batch: &[usize], skip: Option<usize>, positives: &[Vec<&str>]) -> bool {
    batch
        .iter()
        .filter(|&&i| Some(i) != skip)
        .all(|&i| !positives[i].iter().any(|p| positives[x].contains(p)))
}

/// Empties the smallest short batches into the other short ones, so first-fit's leftovers
/// (an example whose positive every open batch already holds) do not become batches of
/// one. An example moves directly when it fits, or by swapping places with an example of
/// another batch that fits the receiving batch. Each move goes from the smallest short batch
/// to one at least as large, so the sum of squared short-batch sizes grows and the loop ends.
fn merge_short(batches: &mut Vec<Vec<usize>>, positives: &[Vec<&str>], b: usize) {
    loop {
        let mut short: Vec<usize> = (0..batches.len())
            .filter(|&j| batches[j].len() < b)
            .collect();
        if short.len() < 2 {
            return;
        }
        short.sort_by_key(|&j| (batches[j].len(), j));
        let s = short[0];
        let mut moved = false;
        let mut k = 0;
        while k < batches[s].len() {
            let x = batches[s][k];
            match place(batches, x, s, &short[1..], positives, b) {
                true => {
                    batches[s].remove(k);
                    moved = true;
                }
                false => k += 1,
            }
        }
        if batches[s].is_empty() {
            batches.remove(s);
        } else if !moved {
            return;
        }
    }
}

/// Puts `x` (of batch `from`) into one of the short batches `into`, directly or by a swap
/// through any other batch; says whether it did.
fn place(
    batches: &mut [Vec<usize>],
    x: usize,
    from: usize,
    into: &[usize],
    positives: &[Vec<&str>],
    b: usize,
) -> bool {
    for &r in into.iter().filter(|&&r| batches[r].len() < b) {
        if fits(x, &batches[r], None, positives) {
            batches[r].push(x);
            return true;
        }
        for t in (0..batches.len()).filter(|&t| t != from && t != r) {
            let swap = batches[t].iter().position(|&y| {
                fits(y, &batches[r], None, positives) && fits(x, &batches[t], Some(y), positives)
            });
            if let Some(pos) = swap {
                let y = std::mem::replace(&mut batches[t][pos], x);
                batches[r].push(y);
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn check(plan: &BatchPlan, positives: &[Vec<&str>], b: usize) {
        let mut all: Vec<usize> = plan.batches.concat();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..positives.len()).collect::<Vec<_>>(),
            "each example once"
        );
        for batch in &plan.batches {
            assert!(
                !batch.is_empty() && batch.len() <= b,
                "size {}",
                batch.len()
            );
            let mut ids: Vec<&str> = batch.iter().flat_map(|&i| positives[i].clone()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "a positive repeats in {batch:?}");
        }
        let short = plan.batches.iter().filter(|x| x.len() < b).count();
        assert_eq!(plan.short_batches, short);
    }

    #[test]
    fn big_clusters_are_cut_and_remainders_merged() {
        // Cluster sizes 10, 3, 3, 2 with b = 4: chunks 4,4,2 | 3 | 3 | 2; the remainders
        // 2+3+3+2 = 10 merge into 4, 4, 2.
        let sizes = [10, 3, 3, 2];
        let assignments: Vec<u32> = sizes
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n))
            .collect();
        let names: Vec<String> = (0..assignments.len()).map(|i| format!("d{i}")).collect();
        let positives: Vec<Vec<&str>> = names.iter().map(|n| vec![n.as_str()]).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let plan = cluster_batches(&assignments, &positives, 4, &mut rng);
        check(&plan, &positives, 4);
        let mut sizes: Vec<usize> = plan.batches.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![2, 4, 4, 4, 4]);
        // The two full chunks of cluster 0 are pure.
        let pure = plan
            .batches
            .iter()
            .filter(|x| x.len() == 4 && x.iter().all(|&i| assignments[i] == 0))
            .count();
        assert_eq!(pure, 2);
        assert_eq!(plan.short_batches, 1);
    }

    #[test]
    fn shared_positives_move_to_another_batch() {
        // One cluster of 12 where examples i and i+6 share a positive: every full chunk of
        // b = 6 may hold a pair; conflicts move out, and nothing is lost.
        let assignments = vec![0u32; 12];
        let names: Vec<String> = (0..12).map(|i| format!("d{}", i % 6)).collect();
        let positives: Vec<Vec<&str>> = names.iter().map(|n| vec![n.as_str()]).collect();
        for seed in 0..20 {
            let plan = cluster_batches(
                &assignments,
                &positives,
                6,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            check(&plan, &positives, 6);
            assert_eq!(plan.batches.len(), 2, "seed {seed}: {:?}", plan.batches);
        }
    }

    #[test]
    fn examples_that_share_one_positive_get_their_own_batches() {
        // Five examples with the same positive cannot share any batch.
        let assignments = vec![0u32; 5];
        let positives: Vec<Vec<&str>> = vec![vec!["same"]; 5];
        let plan = cluster_batches(
            &assignments,
            &positives,
            4,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        check(&plan, &positives, 4);
        assert_eq!(plan.batches.len(), 5);
        assert_eq!(plan.short_batches, 5);
    }

    #[test]
    fn a_leftover_is_swapped_into_a_full_batch_instead_of_standing_alone() {
        // b = 4, one cluster of 7 where two examples share d0: whatever the shuffle, two
        // batches of 4 and 3, never a third batch for a stranded copy of d0.
        let assignments = vec![0u32; 7];
        let positives: Vec<Vec<&str>> = vec![
            vec!["d0"],
            vec!["d0"],
            vec!["d1"],
            vec!["d2"],
            vec!["d3"],
            vec!["d4"],
            vec!["d5"],
        ];
        for seed in 0..30 {
            let plan = cluster_batches(
                &assignments,
                &positives,
                4,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            check(&plan, &positives, 4);
            let mut sizes: Vec<usize> = plan.batches.iter().map(Vec::len).collect();
            sizes.sort_unstable();
            assert_eq!(sizes, vec![3, 4], "seed {seed}: {:?}", plan.batches);
        }
        // The swap itself: a full batch without d0, a short one with d0, and a stranded d0:
        // d1 moves to the short batch and the stranded d0 takes its place.
        let pos: Vec<Vec<&str>> = vec![
            vec!["d1"],
            vec!["d2"],
            vec!["d3"],
            vec!["d5"],
            vec!["d0"],
            vec!["d4"],
            vec!["d0"],
        ];
        let mut batches = vec![vec![0, 1, 2, 3], vec![4, 5], vec![6]];
        merge_short(&mut batches, &pos, 4);
        assert_eq!(batches, vec![vec![6, 1, 2, 3], vec![4, 5, 0]]);
        check(
            &BatchPlan {
                short_batches: 1,
                batches,
            },
            &pos,
            4,
        );
    }

    #[test]
    fn the_plan_is_seeded() {
        let assignments: Vec<u32> = (0..50).map(|i| (i % 7) as u32).collect();
        let names: Vec<String> = (0..50).map(|i| format!("d{i}")).collect();
        let positives: Vec<Vec<&str>> = names.iter().map(|n| vec![n.as_str()]).collect();
        let plan = |seed| {
            cluster_batches(
                &assignments,
                &positives,
                8,
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        assert_eq!(plan(4), plan(4));
        assert_ne!(plan(4), plan(5));
        check(&plan(4), &positives, 8);
    }
}
