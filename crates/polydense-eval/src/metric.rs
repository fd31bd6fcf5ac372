//! Metric names: what a user may type (`ndcg@10`, `ndcg_cut_10`, `P_10`, `recip_rank`) and the
//! one canonical spelling every report uses, so two runs' JSON files always line up.

use crate::error::EvalError;
use std::fmt;
use std::str::FromStr;

/// The measures, each defined as trec_eval 9.x defines the measure it is named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// trec_eval `ndcg_cut`: graded gain = relevance grade, discount log2(rank + 1).
    Ndcg,
    /// trec_eval `recip_rank`; with a cutoff, over the ranking truncated to the top k (BEIR's
    /// MRR@k).
    Mrr,
    /// trec_eval `recall` at a cutoff: relevant retrieved in the top k / relevant judged.
    Recall,
    /// trec_eval `map`, or `map_cut` with a cutoff (the denominator stays all relevant judged).
    Map,
    /// trec_eval `P` at a cutoff: relevant in the top k / k.
    Precision,
    /// trec_eval `success` at a cutoff: 1 if any relevant document is in the top k.
    Success,
}

/// A measure with its optional rank cutoff, e.g. `ndcg@10` or `map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Metric {
    pub measure: Measure,
    /// Only the top `cutoff` ranks count; `None` means the whole ranking.
    pub cutoff: Option<usize>,
}

/// What [`parse_metrics`] uses when the user names none: the BEIR headline metrics.
pub const DEFAULT_METRICS: &str = "ndcg@10,mrr@10,recall@100,map";

impl Metric {
    /// A metric from its parts; measures that are meaningless without a cutoff require one.
    pub fn new(measure: Measure, cutoff: Option<usize>) -> Result<Self, EvalError> {
        let needs_cutoff = matches!(
            measure,
            Measure::Ndcg | Measure::Recall | Measure::Precision | Measure::Success
        );
        match cutoff {
            Some(0) => Err(EvalError::Metric {
                name: format!("{}@0", measure.name()),
                why: "a cutoff must be at least 1".into(),
            }),
            None if needs_cutoff => Err(EvalError::Metric {
                name: measure.name().into(),
                why: format!("needs a cutoff, e.g. `{}@10`", measure.name()),
            }),
            _ => Ok(Metric { measure, cutoff }),
        }
    }

    /// The deepest rank this metric looks at (`usize::MAX` for the whole ranking).
    pub fn depth(&self) -> usize {
        self.cutoff.unwrap_or(usize::MAX)
    }
}

impl Measure {
    /// The canonical lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Ndcg => "ndcg",
            Measure::Mrr => "mrr",
            Measure::Recall => "recall",
            Measure::Map => "map",
            Measure::Precision => "p",
            Measure::Success => "success",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cutoff {
            Some(k) => write!(f, "{}@{k}", self.measure.name()),
            None => f.write_str(self.measure.name()),
        }
    }
}

impl FromStr for Metric {
    type Err = EvalError;

    /// Accepts `name@k` and the trec_eval / pytrec_eval spellings `name_k`, `name.k`
    /// (`ndcg_cut_10`, `map_cut.100`, `P_10`, `recall_100`, `recip_rank`), case-insensitively.
    fn from_str(text: &str) -> Result<Self, EvalError> {
        let lower = text.trim().to_ascii_lowercase();
        let bad = |why: &str| EvalError::Metric {
            name: text.trim().to_string(),
            why: why.to_string(),
        };
        if lower == "recip_rank" {
            return Metric::new(Measure::Mrr, None);
        }
        let (name, cutoff) = match lower.find(['@', '.']) {
            Some(i) => (&lower[..i], Some(&lower[i + 1..])),
            None => match lower.rfind('_') {
                Some(i) if lower[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                    (&lower[..i], Some(&lower[i + 1..]))
                }
                _ => (lower.as_str(), None),
            },
        };
        let measure = match name {
            "ndcg" | "ndcg_cut" => Measure::Ndcg,
            "mrr" | "recip_rank" => Measure::Mrr,
            "recall" => Measure::Recall,
            "map" | "map_cut" => Measure::Map,
            "p" | "precision" => Measure::Precision,
            "success" => Measure::Success,
            _ => {
                return Err(bad(
                    "unknown metric; known: ndcg@k, mrr[@k], recall@k, map[@k], p@k, success@k",
                ))
            }
        };
        let cutoff = match cutoff {
            None => None,
            Some(k) => Some(
                k.parse::<usize>()
                    .map_err(|_| bad("the cutoff after `@` must be a positive integer"))?,
            ),
        };
        Metric::new(measure, cutoff).map_err(|e| match e {
            EvalError::Metric { why, .. } => bad(&why),
            other => other,
        })
    }
}

/// Parses a comma-separated list such as `ndcg@10,mrr@10,recall@100,map`; duplicates (after
/// canonicalisation) are dropped, keeping the first position.
pub fn parse_metrics(list: &str) -> Result<Vec<Metric>, EvalError> {
    let mut out: Vec<Metric> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let m: Metric = part.parse()?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(EvalError::Metric {
            name: list.to_string(),
            why: "no metric given".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        s.parse::<Metric>().unwrap().to_string()
    }

    #[test]
    fn canonical_and_trec_eval_spellings_agree() {
        assert_eq!(canon("nDCG@10"), "ndcg@10");
        assert_eq!(canon("ndcg_cut_10"), "ndcg@10");
        assert_eq!(canon("ndcg_cut.10"), "ndcg@10");
        assert_eq!(canon("recall_100"), "recall@100");
        assert_eq!(canon("P_10"), "p@10");
        assert_eq!(canon("P@5"), "p@5");
        assert_eq!(canon("recip_rank"), "mrr");
        assert_eq!(canon("MRR@10"), "mrr@10");
        assert_eq!(canon("map"), "map");
        assert_eq!(canon("map_cut_100"), "map@100");
        assert_eq!(canon("success_5"), "success@5");
    }

    #[test]
    fn bad_names_and_cutoffs_are_refused() {
        for bad in ["ndcg", "p", "ndcg@0", "ndcg@x", "bleu@4", "recall@-1", ""] {
            assert!(bad.parse::<Metric>().is_err(), "{bad}");
        }
        let e = "ndcg".parse::<Metric>().unwrap_err().to_string();
        assert!(e.contains("ndcg@10"), "{e}");
    }

    #[test]
    fn list_keeps_order_and_drops_duplicates() {
        let got = parse_metrics("ndcg@10, mrr@10,ndcg_cut_10,map").unwrap();
        let names: Vec<String> = got.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["ndcg@10", "mrr@10", "map"]);
        assert_eq!(parse_metrics(DEFAULT_METRICS).unwrap().len(), 4);
        assert!(parse_metrics(" , ").is_err());
    }
}
