//! Writing a trained head into a model directory, and the config of `polydense compress
//! train`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use polydense_model::heads::{Projection, ProjectionActivation};
use polydense_model::Encoder;
use serde::{Deserialize, Serialize};

use super::{HeadConfig, TrainedHead};
use crate::error::{Result, TrainError};

/// The config of `polydense compress train`: the frozen backbone, the pairs it learns from,
/// and the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressConfig {
    /// The frozen backbone: an HF directory or an installed name (e5-small).
    pub model: String,
    /// A BEIR directory whose `split` qrels give the (query, positive passage) pairs.
    pub data: PathBuf,
    /// The qrels split the head learns from (never the one it is evaluated on).
    #[serde(default = "train_split")]
    pub split: String,
    /// Where the model with its head is written.
    pub out: PathBuf,
    /// Where the backbone's vectors of the pairs are cached (default: `<out>/../embeddings`),
    /// shared by every head trained on the same backbone and split.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// Token limit when encoding the pairs (default: the model's).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// The head.
    pub head: HeadConfig,
}

fn train_split() -> String {
    "train".into()
}

impl CompressConfig {
    /// The cache directory in use.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(|| {
            self.out
                .parent()
                .map_or_else(|| PathBuf::from("embeddings"), |p| p.join("embeddings"))
        })
    }
}

/// Saves `backbone` (an HF directory) with `head` as its sentence-transformers Dense module
/// into `out`. The backbone's weights file is hard-linked rather than copied when the file
/// system allows (it is unchanged, and e5-small's is 470 MB), which also keeps its
/// fingerprint, so cached backbone vectors are recognised for the new model.
pub fn save_head_model(backbone: &Path, head: &TrainedHead, out: &Path) -> Result<()> {
    let mut enc = Encoder::load(backbone, &Device::Cpu)?;
    let weight = Tensor::from_slice(&head.weight, (head.dim, head.dim), &Device::Cpu)?;
    enc.set_head(Projection {
        weight,
        bias: None,
        activation: ProjectionActivation::Identity,
    })?;
    enc.save(out)?;
    let (src, dst) = (
        backbone.join("model.safetensors"),
        out.join("model.safetensors"),
    );
    if src.is_file() {
        let tmp = out.join("model.safetensors.link");
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(&src, &tmp).is_ok() {
            std::fs::rename(&tmp, &dst).map_err(|e| TrainError::Io {
                path: dst.clone(),
                source: e,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{fit_head, MrlConfig, Pairs};
    use super::*;
    use polydense_model::{TextEncoder, TextKind};

    /// Needs the installed all-MiniLM-L6-v2 (a tokenizer and real weights); missing, it fails
    /// under `scripts/test` and CI.
    #[test]
    fn a_head_round_trips_and_applies_at_every_prefix() {
        let Some(backbone) = polydense_data::paths::test_model("minilm-l6") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = 384;
        let n = 40;
        let q: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 6.0)
            .collect();
        let p: Vec<f32> = (0..n * d)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let ids: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        let qids: Vec<String> = (0..n).map(|i| format!("q{i}")).collect();
        let pairs = Pairs {
            queries: &q,
            passages: &p,
            query_ids: &qids,
            passage_ids: &ids,
            dim: d,
        };
        let head = HeadConfig::Mrl(MrlConfig {
            dims: vec![d / 2, d / 4],
            batch_size: 8,
            epochs: 1,
            ..MrlConfig::default()
        });
        let head = fit_head(&head, &pairs, &mut |_, _| {}).unwrap();
        let out = dir.path().join("with-head");
        save_head_model(&backbone, &head, &out).unwrap();

        let texts = ["a b c", "d e"];
        let plain = TextEncoder::load(&backbone, &Device::Cpu).unwrap();
        let with = TextEncoder::load(&out, &Device::Cpu).unwrap();
        let vecs = |e: &TextEncoder| -> Vec<f32> {
            e.encode(&texts, TextKind::Passage)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let (x, y) = (vecs(&plain), vecs(&with));
        // The loaded model's vectors are the head applied to the backbone's, re-normalised.
        let mut taken = TextEncoder::load(&out, &Device::Cpu).unwrap();
        let w = taken.take_linear_head().expect("a linear head");
        assert_eq!(vecs(&taken), x);
        let z = w.forward_rows(&x).unwrap();
        for (row_y, row_z) in y.chunks(d).zip(z.chunks(d)) {
            let norm = row_z.iter().map(|v| v * v).sum::<f32>().sqrt();
            for (a, b) in row_y.iter().zip(row_z) {
                assert!((a - b / norm).abs() < 1e-5, "{a} vs {}", b / norm);
            }
        }
        // --dim keeps the re-normalised prefix.
        let short = TextEncoder::load(&out, &Device::Cpu)
            .unwrap()
            .with_dim(d / 4)
            .unwrap();
        let s = vecs(&short);
        assert_eq!(s.len(), 2 * d / 4);
        for (row_s, row_y) in s.chunks(d / 4).zip(y.chunks(d)) {
            let norm = row_y[..d / 4].iter().map(|v| v * v).sum::<f32>().sqrt();
            for (a, b) in row_s.iter().zip(&row_y[..d / 4]) {
                assert!((a - b / norm).abs() < 1e-5);
            }
        }
        assert!(TextEncoder::load(&out, &Device::Cpu)
            .unwrap()
            .with_dim(d + 1)
            .is_err());
    }
}
