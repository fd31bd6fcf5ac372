//! The positive-aware false-negative filter (NV-Retriever, Moreira et al. 2024, §3: "TopK-
//! PercPos" and "TopK-MarginPos"): a candidate that its miner scores almost as high as the
//! positive is more likely an unlabelled positive than a negative, so it is dropped.

use crate::stage::{Candidate, DropLog, QueryContext, QueryFilter};
use serde::{Deserialize, Serialize};

/// How the margin sets the highest score a negative may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMode {
    /// Keep a negative when `score <= margin · positive` (TopK-PercPos; 0.95 in the paper).
    #[default]
    Relative,
    /// Keep a negative when `score <= positive − margin` (TopK-MarginPos; 0.05 in the paper).
    Absolute,
}

/// Which positive's score is the reference when a query has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// The best-scored positive: drops only what outscores every positive's near-match.
    #[default]
    Max,
    /// The worst-scored positive: the stricter choice, drops more.
    Min,
}

/// Drops candidates whose score exceeds the threshold derived from the positive's score
/// under the same source (scores of different miners are not comparable).
pub struct FalseNegativeFilter {
    /// Factor or difference, per `mode`.
    pub margin: f32,
    /// Relative or absolute margin.
    pub mode: MarginMode,
    /// Which positive's score to compare with.
    pub reference: Reference,
}

impl FalseNegativeFilter {
    /// The highest score a negative may have, given the positive's.
    pub fn threshold(&self, positive: f32) -> f32 {
        match self.mode {
            MarginMode::Relative => self.margin * positive,
            MarginMode::Absolute => positive - self.margin,
        }
    }
}

impl QueryFilter for FalseNegativeFilter {
    fn name(&self) -> &str {
        "false_negative"
    }

    /// The candidates of one query scored below the positive's margin.
    fn keep(
        &self,
        ctx: &QueryContext<'_>,
        candidates: Vec<Candidate>,
        log: &mut DropLog,
    ) -> Vec<Candidate> {
        candidates
            .into_iter()
            .filter(|c| {
                let scored = ctx
                    .positive_scores
                    .get(&c.source)
                    .map(|v| v.iter().flatten().copied())
                    .into_iter()
                    .flatten();
                let reference = match self.reference {
                    Reference::Max => scored.reduce(f32::max),
                    Reference::Min => scored.reduce(f32::min),
                };
                match reference {
                    // A source that cannot score the positives (a generator) is not judged.
                    None => true,
                    Some(p) if c.score > self.threshold(p) => {
                        log.drop("false_negative", "score above the positive's margin");
                        false
                    }
                    Some(_) => true,
                }
            })
            .collect()
    }
}
