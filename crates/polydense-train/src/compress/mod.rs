//! Compression heads for a frozen encoder: linear maps on its vectors whose leading
//! dimensions keep as much retrieval quality as possible, so an index can store 96 or 48
//! dimensions instead of 384.
//!
//! Heads train on precomputed vectors (a query's and its positive passage's, from the frozen
//! backbone), so they take seconds to minutes on a CPU. Every head is a `D × D` matrix whose
//! rows are ordered so that the first `d` outputs are the head at `d` dimensions; saved as
//! the model's sentence-transformers `Dense` module, it is applied by every command that
//! encodes, and `--dim d` keeps the first `d` outputs (re-normalised).
//!
//! - `truncate`: the identity (the backbone's own prefixes);
//! - `pca`: the principal axes, largest variance first;
//! - `mrl`: a learned adaptor trained with the Matryoshka loss at every dim at once (the
//!   Matryoshka-Adaptor baseline);
//! - `smec` (SMEC, EMNLP 2025): sequential halving (SMRL), learned dimension selection (ADS)
//!   and a selective cross-batch memory (S-XBM); see [`smec`].

mod gumbel;
mod model_dir;
pub mod smec;
mod sxbm;

pub use gumbel::{gumbel_top_k, GumbelTopK};
pub use model_dir::{save_head_model, CompressConfig};
pub use smec::{train_linear_head, StageLog};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::sampler::NoKeys;

/// The `[head]` table of a compression config: which head, with its own keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum HeadConfig {
    /// The identity: the backbone's prefixes, the baseline every head must beat.
    Truncate(NoKeys),
    /// The principal axes of the passage and query vectors (uncentred, see
    /// [`polydense_index::Pca::fit`]).
    Pca(NoKeys),
    /// A linear adaptor trained with the Matryoshka loss at all dims at once.
    Mrl(MrlConfig),
    /// SMEC: SMRL stages, ADS selection and S-XBM, each switchable.
    Smec(SmecConfig),
}

impl HeadConfig {
    /// The `kind` values, for error messages.
    pub const KINDS: &'static [&'static str] = &["truncate", "pca", "mrl", "smec"];

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            HeadConfig::Truncate(_) => "truncate",
            HeadConfig::Pca(_) => "pca",
            HeadConfig::Mrl(_) => "mrl",
            HeadConfig::Smec(_) => "smec",
        }
    }

    /// Checks the keys' ranges against the backbone's width; errors name the key.
    pub fn validate(&self, width: usize) -> Result<()> {
        match self {
            HeadConfig::Truncate(_) | HeadConfig::Pca(_) => Ok(()),
            HeadConfig::Mrl(c) => {
                c.optim().validate()?;
                check_dims(&c.dims, width, false)
            }
            HeadConfig::Smec(c) => {
                c.optim().validate()?;
                check_dims(&c.dims, width, c.smrl)?;
                if c.ads && !c.smrl {
                    return Err(TrainError::config(
                        "head.ads",
                        "selects dims stage by stage and needs smrl = true",
                    ));
                }
                if c.sxbm && (c.queue == 0 || c.top_k == 0) {
                    return Err(TrainError::config(
                        "head.queue",
                        "queue and top_k must be at least 1 with sxbm = true",
                    ));
                }
                if !(c.gumbel_temperature_start > 0.0 && c.gumbel_temperature_end > 0.0) {
                    return Err(TrainError::config(
                        "head.gumbel_temperature_start",
                        "Gumbel temperatures must be greater than 0",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Dims positive, below the width, strictly decreasing; under SMRL each at most half the
/// one before (a stage halves the dimension or more).
fn check_dims(dims: &[usize], width: usize, halving: bool) -> Result<()> {
    if dims.is_empty() || dims.contains(&0) {
        return Err(TrainError::config(
            "head.dims",
            "must list at least one dimension, each at least 1",
        ));
    }
    let mut prev = width;
    for (i, &d) in dims.iter().enumerate() {
        let first_full = i == 0 && d == width && !halving;
        if d > prev || (d == prev && !first_full) {
            return Err(TrainError::config(
                "head.dims",
                format!("must decrease from the backbone's {width} dims; {d} follows {prev}"),
            ));
        }
        prev = d;
    }
    Ok(())
}

/// The optimisation keys every trained head shares (repeated in each head's table: serde
/// cannot deny unknown keys through a flattened struct).
#[derive(Debug, Clone, PartialEq)]
pub struct OptimConfig {
    /// Query-passage pairs per step; the other pairs' passages are the in-batch negatives.
    pub batch_size: usize,
    /// Passes over the pairs (per stage for SMEC, so SMEC with 4 stages and 3 epochs takes
    /// as many steps as MRL with 12).
    pub epochs: usize,
    /// Peak learning rate of the adaptor (AdamW, 5% warm-up, linear decay).
    pub lr: f64,
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// Seed of the batch order and the Gumbel noise.
    pub seed: u64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            batch_size: 128,
            epochs: 3,
            lr: 1e-3,
            temperature: 0.05,
            seed: 42,
        }
    }
}

impl OptimConfig {
    fn validate(&self) -> Result<()> {
        if self.batch_size < 2 || self.epochs == 0 {
            return Err(TrainError::config(
                "head.batch_size",
                "batch_size must be at least 2 and epochs at least 1",
            ));
        }
        if !(self.lr > 0.0 && self.temperature > 0.0) {
            return Err(TrainError::config(
                "head.lr",
                "lr and temperature must be greater than 0",
            ));
        }
        Ok(())
    }
}

/// The keys of `[head] kind = "mrl"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MrlConfig {
    /// Prefix lengths trained together, decreasing (the full width may come first).
    pub dims: Vec<usize>,
    /// Query-passage pairs per step; the other pairs' passages are the in-batch negatives.
    pub batch_size: usize,
    /// Passes over the pairs (per stage for SMEC, so SMEC with 4 stages and 3 epochs takes
    /// as many steps as MRL with 12).
    pub epochs: usize,
    /// Peak learning rate of the adaptor (AdamW, 5% warm-up, linear decay).
    pub lr: f64,
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// Seed of the batch order and the Gumbel noise.
    pub seed: u64,
}

impl Default for MrlConfig {
    fn default() -> Self {
        let o = OptimConfig::default();
        MrlConfig {
            dims: vec![384, 192, 96, 48, 24],
            batch_size: o.batch_size,
            epochs: 12,
            lr: o.lr,
            temperature: o.temperature,
            seed: o.seed,
        }
    }
}

/// The keys of `[head] kind = "smec"`. The paper leaves temperature, queue size, top-k and
/// epochs per stage open; the defaults here are ours, trained on the XQuAD-R train split and
/// chosen on its dev split (never on test) by `bench/smec_sweep.sh`, one key at a time, and
/// documented key by key with what the sweep measured (dev nDCG@10 at 96 dims).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmecConfig {
    /// Target dims, each a stage, strictly decreasing from the backbone's width (halving:
    /// 192, 96, 48, 24 for a 384-dim backbone).
    pub dims: Vec<usize>,
    /// SMRL: train the dims one stage at a time, freezing the adaptor rows a stage drops;
    /// false trains every dim at once (then `ads` must be false).
    pub smrl: bool,
    /// ADS: choose each stage's kept dims by learned scores (Gumbel top-k); false keeps a
    /// prefix of the previous stage's dims.
    pub ads: bool,
    /// Gumbel-softmax temperature at the start of each stage; annealed geometrically to
    /// `gumbel_temperature_end` over the stage. 1.0 starts from the plain softmax's gradient.
    pub gumbel_temperature_start: f64,
    /// The temperature at the end of each stage (0.1: the soft choice close to the hard one,
    /// where the straight-through gradient is least biased; 0.5 measured −0.008 and 0.01
    /// −0.018 against it).
    pub gumbel_temperature_end: f64,
    /// Learning rate of the dimension scores (larger than the adaptor's: they start equal
    /// and must separate within one stage; 0.2 measured +0.015 at 96 and +0.012 at 48 dims
    /// alone, 0.01 −0.010: untested together with the rank weight below, so left at 0.05).
    pub selection_lr: f64,
    /// Weight of the rank loss between the previous stage's and this stage's in-batch
    /// similarity distributions (KL); 0 off. 0.3: +0.015 at 96 and +0.037 at 48 dims over
    /// 1.0 (both p ≤ 0.001); 0.1 was even at 96.
    pub rank_weight: f64,
    /// Temperature of the rank loss's softmaxes.
    pub rank_temperature: f64,
    /// S-XBM: add each query's `top_k` most similar queued passages as negatives.
    pub sxbm: bool,
    /// Passage vectors the FIFO queue keeps (1024: eight batches, so the queued passages
    /// come from recent steps; +0.007 at 96 and 48 dims over 4096, p < 0.001).
    pub queue: usize,
    /// Queued passages each query takes, by full-width similarity (8; 2 was +0.002 at 96,
    /// p 0.1, and 32 −0.004).
    pub top_k: usize,
    /// Query-passage pairs per step; the other pairs' passages are the in-batch negatives.
    pub batch_size: usize,
    /// Passes over the pairs (per stage for SMEC, so SMEC with 4 stages and 3 epochs takes
    /// as many steps as MRL with 12).
    pub epochs: usize,
    /// Peak learning rate of the adaptor (AdamW, 5% warm-up, linear decay).
    pub lr: f64,
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// Seed of the batch order and the Gumbel noise.
    pub seed: u64,
}

impl Default for SmecConfig {
    fn default() -> Self {
        let o = OptimConfig::default();
        SmecConfig {
            dims: vec![192, 96, 48, 24],
            smrl: true,
            ads: true,
            gumbel_temperature_start: 1.0,
            gumbel_temperature_end: 0.1,
            selection_lr: 0.05,
            rank_weight: 0.3,
            rank_temperature: 0.05,
            sxbm: true,
            queue: 1024,
            top_k: 8,
            batch_size: o.batch_size,
            epochs: o.epochs,
            lr: o.lr,
            temperature: o.temperature,
            seed: o.seed,
        }
    }
}

macro_rules! optim_of {
    ($t:ty) => {
        impl $t {
            /// The optimisation keys of this head.
            pub fn optim(&self) -> OptimConfig {
                OptimConfig {
                    batch_size: self.batch_size,
                    epochs: self.epochs,
                    lr: self.lr,
                    temperature: self.temperature,
                    seed: self.seed,
                }
            }
        }
    };
}
optim_of!(MrlConfig);
optim_of!(SmecConfig);

/// Query-passage pairs as the frozen backbone embeds them: row i of `queries` is answered by
/// row i of `passages`, whose id is `passage_ids[i]`. A query may have several rows (one per
/// relevant passage: XQuAD-R's pooled task judges a question's paragraph in all 11
/// languages relevant) and a passage may answer several queries; no passage is ever a
/// negative of a query it answers, in the batch or from the memory.
#[derive(Debug, Clone, Copy)]
pub struct Pairs<'a> {
    /// `[n, dim]` row-major query vectors.
    pub queries: &'a [f32],
    /// `[n, dim]` row-major passage vectors.
    pub passages: &'a [f32],
    /// The id of each row's query.
    pub query_ids: &'a [String],
    /// The id of each row's passage.
    pub passage_ids: &'a [String],
    /// The backbone's width.
    pub dim: usize,
}

impl Pairs<'_> {
    /// Pairs held.
    pub fn len(&self) -> usize {
        self.passage_ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.passage_ids.is_empty()
    }

    fn check(&self) -> Result<()> {
        let n = self.len();
        if self.dim == 0
            || self.queries.len() != n * self.dim
            || self.passages.len() != n * self.dim
        {
            return Err(TrainError::config(
                "head",
                format!(
                    "{} query and {} passage values for {n} pairs of width {}",
                    self.queries.len(),
                    self.passages.len(),
                    self.dim
                ),
            ));
        }
        Ok(())
    }
}

/// A trained head: a `dim × dim` matrix whose first `d` rows are the head at `d` dims.
#[derive(Debug, Clone)]
pub struct TrainedHead {
    /// The head's kind.
    pub kind: String,
    /// Row-major `dim × dim` weight (output row r reads the backbone vector).
    pub weight: Vec<f32>,
    /// The backbone's width.
    pub dim: usize,
    /// The dims the head was trained for (empty for truncate and pca, good at every prefix).
    pub dims: Vec<usize>,
    /// What each training stage did.
    pub stages: Vec<StageLog>,
    /// Wall time of fitting, in seconds.
    pub seconds: f64,
}

/// Fits the head `config` describes on `pairs`; `on_stage` is called after each training
/// stage with its log and the adaptor's rows in training order (for progress and tests).
pub fn fit_head(
    config: &HeadConfig,
    pairs: &Pairs,
    on_stage: &mut dyn FnMut(&StageLog, &[f32]),
) -> Result<TrainedHead> {
    pairs.check()?;
    config.validate(pairs.dim)?;
    let start = std::time::Instant::now();
    let d = pairs.dim;
    let (weight, dims, stages) = match config {
        HeadConfig::Truncate(_) => {
            let mut w = vec![0f32; d * d];
            (0..d).for_each(|i| w[i * d + i] = 1.0);
            (w, Vec::new(), Vec::new())
        }
        HeadConfig::Pca(_) => {
            let mut both = pairs.queries.to_vec();
            both.extend_from_slice(pairs.passages);
            let pca = polydense_index::Pca::fit(&both, d, false)
                .map_err(|e| TrainError::config("head", e.to_string()))?;
            let w = pca.components.iter().map(|&x| x as f32).collect();
            (w, Vec::new(), Vec::new())
        }
        HeadConfig::Mrl(c) => {
            let (w, s) = train_linear_head(
                pairs,
                &smec::Plan::joint(&c.dims, d),
                &c.optim(),
                None,
                on_stage,
            )?;
            (w, c.dims.clone(), s)
        }
        HeadConfig::Smec(c) => {
            let plan = match c.smrl {
                true => smec::Plan::sequential(&c.dims, d, c.ads),
                false => smec::Plan::joint(&c.dims, d),
            };
            let (w, s) = train_linear_head(pairs, &plan, &c.optim(), Some(c), on_stage)?;
            (w, c.dims.clone(), s)
        }
    };
    Ok(TrainedHead {
        kind: config.kind().to_string(),
        weight,
        dim: d,
        dims,
        stages,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_and_bad_keys_are_named() {
        let c: HeadConfig =
            toml::from_str("kind = \"smec\"\ndims = [192, 96]\nepochs = 2\n").unwrap();
        let HeadConfig::Smec(s) = &c else { panic!() };
        assert_eq!((s.dims.clone(), s.epochs, s.top_k), (vec![192, 96], 2, 8));
        c.validate(384).unwrap();
        let err = |t: &str| {
            let c: HeadConfig = toml::from_str(t).unwrap();
            c.validate(384).unwrap_err().to_string()
        };
        assert!(err("kind = \"smec\"\ndims = [96, 192]\n").contains("head.dims"));
        assert!(err("kind = \"smec\"\ndims = [384, 192]\n").contains("head.dims"));
        assert!(err("kind = \"smec\"\nsmrl = false\n").contains("head.ads"));
        assert!(err("kind = \"mrl\"\nlr = 0.0\n").contains("head.lr"));
        // MRL may train the full width too.
        let c: HeadConfig = toml::from_str("kind = \"mrl\"\ndims = [384, 96]\n").unwrap();
        c.validate(384).unwrap();
        assert!(toml::from_str::<HeadConfig>("kind = \"smec\"\nbogus = 1\n").is_err());
    }
}
