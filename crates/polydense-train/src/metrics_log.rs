//! `metrics.jsonl`: one JSON line per logged step and per dev evaluation, flushed as written
//! so a crash loses nothing already reported.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// One training step as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Steps completed, this one included.
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: u64,
    /// The batch loss.
    pub loss: f64,
    /// The named parts of a composite loss (InfoNCE, a penalty, ...), unweighted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub loss_parts: std::collections::BTreeMap<String, f64>,
    /// Counters a loss reports that are not loss terms (queries that fell back to InfoNCE).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub loss_stats: std::collections::BTreeMap<String, f64>,
    /// Tokens routed to each expert of each layer in this step (a mixture-of-experts model;
    /// with separate towers the query tower's layers come first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<Vec<u64>>,
    /// The learning rate used.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Queries per second over this step.
    pub examples_per_s: f64,
    /// Clustering runs so far (clustered samplers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusterings: Option<u64>,
    /// Wall seconds of clustering so far: encoding, k-means, probes, projections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_seconds: Option<f64>,
    /// The number of clusters in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
}

/// The append-only metrics file of a run.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `run_dir/metrics.jsonl` for appending, first dropping lines of steps after
    /// `keep_through` (a resumed run replays them).
    pub fn open(run_dir: &Path, keep_through: u64) -> Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let io = |e| TrainError::io(&path, e);
        if path.exists() {
            let kept: Vec<String> = BufReader::new(File::open(&path).map_err(io)?)
                .lines()
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(io)?
                .into_iter()
                .filter(|l| {
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                        .is_some_and(|s| s <= keep_through)
                })
                .collect();
            polydense_data::atomic::write_atomic(&path, |f| {
                kept.iter().try_for_each(|l| writeln!(f, "{l}"))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(MetricsLog { path, file })
    }

    /// Appends one JSON value as a line.
    pub fn write(&mut self, value: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(value).expect("metrics serialise");
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .map_err(|e| TrainError::io(&self.path, e))
    }
}
