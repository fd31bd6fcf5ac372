//! [`MoeSettings`]: the `[moe]` table of a training config, which upcycles the starting
//! model's feed-forward blocks into experts (CLPL, arXiv 2412.17364) and weights the
//! load-balancing term.

use polydense_model::ffn::{ExpertLayers, MoeConfig, RouterScale};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Experts for a dense starting model, and the balance term for any model with experts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MoeSettings {
    /// Experts E per layer made from the dense weights; 0 keeps the model's own blocks (a
    /// model that already has experts trains them as they are).
    pub experts: usize,
    /// Experts each token is routed to (1, as CLPL and Switch Transformer).
    pub top_k: usize,
    /// Which dense layers become experts: "intermediate" (CLPL), "output" or "both".
    pub layers: ExpertLayers,
    /// How a selected expert's output is weighted: "unit" (the value 1 with the gate learning
    /// through a straight-through estimate, so the upcycled model starts as the dense one) or
    /// "probability" (Switch Transformer's p, which halves a two-expert block's output at the
    /// start).
    pub router_scale: RouterScale,
    /// Gaussian noise added to each expert copy, as a fraction of the weight's standard
    /// deviation (0: exact copies, as CLPL; the gate alone then separates the experts).
    pub noise: f64,
    /// Weight of Switch Transformer's load-balancing term, summed over layers (α = 0.01 in
    /// the Switch paper); logged as the loss part `balance`. 0 turns it off.
    pub balance: f64,
}

impl Default for MoeSettings {
    fn default() -> Self {
        MoeSettings {
            experts: 0,
            top_k: 1,
            layers: ExpertLayers::Intermediate,
            router_scale: RouterScale::Unit,
            noise: 0.0,
            balance: 0.01,
        }
    }
}

impl MoeSettings {
    /// The block the upgrade builds, when `experts` asks for one.
    pub fn upgrade(&self) -> Option<MoeConfig> {
        (self.experts > 0).then_some(MoeConfig {
            experts: self.experts,
            top_k: self.top_k,
            layers: self.layers,
            router_scale: self.router_scale,
        })
    }

    /// Checks the keys; errors name them as `moe.<key>`.
    pub fn validate(&self) -> Result<()> {
        if self.experts == 1 {
            return Err(TrainError::config(
                "moe.experts",
                "one expert is the dense block; use 0 (none) or at least 2",
            ));
        }
        if self.experts > 0 && (self.top_k == 0 || self.top_k > self.experts) {
            return Err(TrainError::config(
                "moe.top_k",
                format!("must lie in 1..={}", self.experts),
            ));
        }
        if self.noise < 0.0 || self.balance < 0.0 {
            return Err(TrainError::config(
                if self.noise < 0.0 {
                    "moe.noise"
                } else {
                    "moe.balance"
                },
                "must not be negative",
            ));
        }
        Ok(())
    }
}
