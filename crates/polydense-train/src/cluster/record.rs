//! What each clustering run leaves in the run directory: one line of `clusters.jsonl`, and
//! `projection.json`, a 2-D PCA of the clustered embeddings for the report's plot.

use std::io::Write;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cluster::policy::RefreshReason;
use crate::error::{Result, TrainError};

/// Most points written to `projection.json`: enough for a scatter plot, small enough to load.
pub const PROJECTION_POINTS: usize = 3000;

/// One clustering run, as logged in `clusters.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusteringRecord {
    /// Optimiser steps completed before it.
    pub step: u64,
    /// The epoch it planned.
    pub epoch: u64,
    /// Clusters.
    pub k: usize,
    /// Examples clustered.
    pub n: usize,
    /// Why it ran.
    pub reason: RefreshReason,
    /// Seconds encoding the examples with the current model.
    pub encode_seconds: f64,
    /// Seconds of k-means.
    pub kmeans_seconds: f64,
    /// Seconds of the PCA projection and its file.
    pub projection_seconds: f64,
    /// k-means inertia (sum of squared distances to the centroids).
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Batches of the epoch's plan.
    pub batches: usize,
    /// Batches of the plan shorter than the batch size.
    pub short_batches: usize,
    /// Mean over clusters of the language entropy in bits; None without language tags.
    pub lang_entropy: Option<f64>,
    /// ACR's probe drift measured at this epoch's start, if it was.
    pub drift: Option<f64>,
    /// ACR's relative loss drop over its window, if defined.
    pub loss_drop: Option<f64>,
}

/// Appends `record` to `run_dir/clusters.jsonl` after its first `keep` lines, atomically:
/// lines beyond the clusterings a resumed sampler knows of came from lost work and would be
/// repeated. Rewriting is cheap, with one line per clustering.
pub fn append_record(run_dir: &Path, keep: u64, record: &ClusteringRecord) -> Result<()> {
    let path = run_dir.join("clusters.jsonl");
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(TrainError::io(&path, e)),
    };
    let line = serde_json::to_string(record).expect("records serialise");
    polydense_data::atomic::write_atomic(&path, |f| {
        for l in old.lines().take(keep as usize) {
            writeln!(f, "{l}")?;
        }
        writeln!(f, "{line}")
    })?;
    Ok(())
}

/// Row indices of at most [`PROJECTION_POINTS`] of `n` rows, a seeded sample in row order.
pub fn projection_sample(n: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    if n > PROJECTION_POINTS {
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        rows.truncate(PROJECTION_POINTS);
        rows.sort_unstable();
    }
    rows
}

/// Writes `run_dir/projection.json` atomically: `{"step", "epoch", "k", "points": [[x, y,
/// cluster, lang], ...]}` for the sampled rows, projected on the first two principal
/// components of the sample.
#[allow(clippy::too_many_arguments)]
pub fn write_projection(
    run_dir: &Path,
    step: u64,
    epoch: u64,
    k: usize,
    embeddings: &[f32],
    dim: usize,
    assignments: &[u32],
    langs: &[Option<&str>],
    seed: u64,
) -> Result<()> {
    let rows = projection_sample(assignments.len(), seed);
    let sample: Vec<f32> = rows
        .iter()
        .flat_map(|&i| embeddings[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let xy = polydense_index::pca::pca_2d(&sample, dim)?;
    let points: Vec<serde_json::Value> = rows
        .iter()
        .zip(&xy)
        .map(|(&i, p)| serde_json::json!([p[0], p[1], assignments[i], langs[i]]))
        .collect();
    let doc = serde_json::json!({"step": step, "epoch": epoch, "k": k, "points": points});
    let text = serde_json::to_string(&doc).expect("projections serialise");
    polydense_data::atomic::write_atomic(run_dir.join("projection.json"), |f| {
        f.write_all(text.as_bytes())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u64) -> ClusteringRecord {
        ClusteringRecord {
            step: epoch * 10,
            epoch,
            k: 4,
            n: 40,
            reason: RefreshReason::Initial,
            encode_seconds: 0.1,
            kmeans_seconds: 0.01,
            projection_seconds: 0.0,
            inertia: 1.5,
            iterations: 3,
            batches: 10,
            short_batches: 1,
            lang_entropy: None,
            drift: None,
            loss_drop: None,
        }
    }

    #[test]
    fn appending_drops_lines_of_lost_work() {
        let tmp = tempfile::tempdir().unwrap();
        for e in 0..3 {
            append_record(tmp.path(), e, &record(e)).unwrap();
        }
        // A resumed sampler that knows of one clustering rewrites the second line.
        append_record(tmp.path(), 1, &record(7)).unwrap();
        let text = std::fs::read_to_string(tmp.path().join("clusters.jsonl")).unwrap();
        let epochs: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<ClusteringRecord>(l).unwrap().epoch)
            .collect();
        assert_eq!(epochs, vec![0, 7]);
        assert!(text.contains("\"reason\":\"initial\"") && text.contains("\"lang_entropy\":null"));
    }

    #[test]
    fn the_projection_sample_is_bounded_and_seeded() {
        assert_eq!(projection_sample(5, 1), vec![0, 1, 2, 3, 4]);
        let a = projection_sample(10_000, 1);
        assert_eq!(a.len(), PROJECTION_POINTS);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, projection_sample(10_000, 1));
        assert_ne!(a, projection_sample(10_000, 2));
    }
}
