//! Checkpoints: everything a run needs to continue exactly, written atomically.
//!
//! `checkpoints/step-00000100/` holds `model.safetensors` (every weight of the model by name,
//! frozen ones included, so a resume that trains other weights starts from the same model),
//! `optimizer.safetensors` (AdamW's moments and update counts, for the weights that train),
//! `memory.safetensors` and `memory_ids.json` (a cross-batch memory's vectors and their
//! passage ids, if any) and `state.json` ([`TrainState`]: step, epoch and position in it, seed, sampler
//! state, best dev score, per-epoch losses). A checkpoint is built in a hidden directory and renamed into
//! place, then `checkpoints/latest` is replaced atomically to name it, so a crash at any
//! moment leaves the previous checkpoint intact and `latest` pointing at a complete one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::adversarial::AdversarialState;
use crate::error::{Result, TrainError};
use crate::memory::MemoryEntries;

/// Where a run stands; saved as `state.json` in each checkpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps completed.
    pub step: u64,
    /// The current epoch (0-based).
    pub epoch: u64,
    /// Batches of the current epoch completed: where the sampler's plan resumes.
    pub batch_in_epoch: usize,
    /// The seed of data order and negative sampling (per-step streams derive from it).
    pub seed: u64,
    /// The sampler's own state.
    pub sampler: serde_json::Value,
    /// The best dev score so far and its step.
    pub best: Option<(u64, f64)>,
    /// Dev evaluations since the best one (for early stopping).
    pub evals_without_improvement: usize,
    /// The mean loss of each completed epoch (ACR-ICT refreshes on its drop).
    #[serde(default)]
    pub epoch_losses: Vec<f64>,
    /// The sum of the current epoch's step losses so far.
    #[serde(default)]
    pub epoch_loss_sum: f64,
    /// The current epoch's steps so far.
    #[serde(default)]
    pub epoch_loss_steps: u64,
    /// Which generated negatives the AXL-ICT loop left drawable.
    #[serde(default, skip_serializing_if = "is_unused")]
    pub adversarial: AdversarialState,
}

fn is_unused(a: &AdversarialState) -> bool {
    a.refreshes == 0
}

/// The tensors and state of one checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// Every weight of the model by parameter name.
    pub model: HashMap<String, Tensor>,
    /// Optimiser moments and update counts of the weights that train.
    pub optimizer: HashMap<String, Tensor>,
    /// A cross-batch memory's contents.
    pub memory: Option<MemoryEntries>,
    /// Counters and positions.
    pub state: TrainState,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::io(path, e)
}

/// The directory of the checkpoint after `step` steps.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// Writes a checkpoint atomically, points `latest` at it, and keeps the newest `keep`.
pub fn save(run_dir: &Path, ckpt: &Checkpoint, keep: usize) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    let name = format!("step-{:08}", ckpt.state.step);
    let tmp = root.join(format!(".{name}.partial"));
    let fin = root.join(&name);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let st = |map: &HashMap<String, Tensor>, file: &str| -> Result<()> {
        let path = tmp.join(file);
        candle_core::safetensors::save(map, &path)?;
        Ok(())
    };
    st(&ckpt.model, "model.safetensors")?;
    st(&ckpt.optimizer, "optimizer.safetensors")?;
    if let Some(m) = &ckpt.memory {
        st(
            &HashMap::from([("memory".to_string(), m.vectors.clone())]),
            "memory.safetensors",
        )?;
        let ids = serde_json::to_vec(&m.ids).expect("ids serialise");
        std::fs::write(tmp.join("memory_ids.json"), ids).map_err(io(&tmp))?;
    }
    let state = serde_json::to_vec_pretty(&ckpt.state).expect("state serialises");
    std::fs::write(tmp.join("state.json"), state).map_err(io(&tmp))?;
    if fin.exists() {
        std::fs::remove_dir_all(&fin).map_err(io(&fin))?;
    }
    std::fs::rename(&tmp, &fin).map_err(io(&fin))?;
    polydense_data::atomic::write_atomic(root.join("latest"), |f| {
        use std::io::Write;
        writeln!(f, "{name}")
    })?;
    prune(&root, keep)?;
    Ok(fin)
}

fn prune(root: &Path, keep: usize) -> Result<()> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(io(root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    dirs.sort();
    let n = dirs.len().saturating_sub(keep.max(1));
    for d in &dirs[..n] {
        std::fs::remove_dir_all(d).map_err(io(d))?;
    }
    Ok(())
}

/// The checkpoint `checkpoints/latest` names, if the run has one.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>> {
    let path = run_dir.join("checkpoints").join("latest");
    match std::fs::read_to_string(&path) {
        Ok(name) => Ok(Some(run_dir.join("checkpoints").join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrainError::io(path, e)),
    }
}

/// Reads a checkpoint directory onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let st = |file: &str| -> Result<HashMap<String, Tensor>> {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(TrainError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint file missing"),
            ));
        }
        Ok(candle_core::safetensors::load(&path, device)?)
    };
    let memory = match st("memory.safetensors")
        .ok()
        .and_then(|mut m| m.remove("memory"))
    {
        None => None,
        Some(vectors) => {
            let path = dir.join("memory_ids.json");
            let ids: Vec<String> = match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TrainError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?,
                // Checkpoints written before memories kept ids: no entry can be masked.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    vec![String::new(); vectors.dim(0)?]
                }
                Err(e) => return Err(TrainError::io(&path, e)),
            };
            if ids.len() != vectors.dim(0)? {
                return Err(TrainError::Parse {
                    path,
                    message: format!("{} ids for {} memory rows", ids.len(), vectors.dim(0)?),
                });
            }
            Some(MemoryEntries { vectors, ids })
        }
    };
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state = serde_json::from_str(&text).map_err(|e| TrainError::Parse {
        path: state_path.clone(),
        message: e.to_string(),
    })?;
    Ok(Checkpoint {
        model: st("model.safetensors")?,
        optimizer: st("optimizer.safetensors")?,
        memory,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_prune_and_latest() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path();
        assert!(latest(run).unwrap().is_none());
        for step in 1..=3 {
            let ck = Checkpoint {
                model: HashMap::from([(
                    "w".to_string(),
                    Tensor::new(&[step as f32], &Device::Cpu).unwrap(),
                )]),
                optimizer: HashMap::new(),
                memory: None,
                state: TrainState {
                    step,
                    ..TrainState::default()
                },
            };
            save(run, &ck, 2).unwrap();
        }
        let dir = latest(run).unwrap().unwrap();
        assert_eq!(dir, checkpoint_dir(run, 3));
        let back = load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.state.step, 3);
        assert_eq!(back.model["w"].to_vec1::<f32>().unwrap(), vec![3.0]);
        assert!(!checkpoint_dir(run, 1).exists() && checkpoint_dir(run, 2).exists());
    }
}
