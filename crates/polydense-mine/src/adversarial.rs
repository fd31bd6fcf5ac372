//! The adversarial filter (AXL-ICT): generated negatives are scored by a retriever as
//! m = sim(q, neg) − sim(q, pos). Those the retriever ranks clearly above the positive
//! (m above a false-negative margin: the rewrite probably still answers) and those that copy
//! the positive (word overlap above a cap) are dropped; of the rest, the hardest fraction of
//! each query (25% by default, at least one) is kept. The fraction and the margin may follow
//! training progress on a linear schedule, which is what makes the threshold dynamic when
//! the trainer re-applies the rule at each clustering refresh (polydense-train).
//!
//! The AXL-ICT public code's rule is the `fixed` preset: keep a negative when
//! sim(q, neg) ≥ 0.8 · sim(q, pos), reject over 60% word overlap, no top fraction.
//!
//! Only candidates of the configured `sources` (generated ones) are judged; mined ones pass.

use crate::embedder::{Embedder, EncoderEmbedder};
use crate::error::Result;
use crate::llm_generate::overlap;
use crate::perturb::positive_in_language;
use crate::progress::Progress;
use crate::stage::{DropLog, Filter, QueryCandidates};
use polydense_model::TextKind;
use serde::{Deserialize, Serialize};

/// Which rule keeps a generated negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdversarialMode {
    /// The method: drop likely false negatives and copies, keep the hardest fraction.
    #[default]
    Dynamic,
    /// The public code's rule: keep when sim(q, neg) ≥ `fixed_ratio` · sim(q, pos).
    Fixed,
}

/// The rule, shared by the mining filter and the trainer's refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdversarialRule {
    /// `dynamic` (the method) or `fixed` (the public code's preset).
    pub mode: AdversarialMode,
    /// Sources judged: the generators' names. Other candidates pass untouched.
    pub sources: Vec<String>,
    /// Share of each query's surviving generated negatives kept, hardest first, at the start.
    pub keep_fraction: f32,
    /// The share at the end of training (linear in progress); `None` keeps it constant.
    pub keep_fraction_end: Option<f32>,
    /// Drop a negative whose m = sim(q, neg) − sim(q, pos) exceeds this: the retriever
    /// prefers it to the positive, so it likely still answers.
    pub margin: f32,
    /// The margin at the end of training; `None` keeps it constant.
    pub margin_end: Option<f32>,
    /// Drop a negative sharing more than this share of its distinct words with the positive.
    /// A rule perturbation changes a few words of a paragraph, so it shares ~95%: by default
    /// `dynamic` only drops copies (1.0) and `fixed` uses the public code's 0.6.
    pub max_overlap: Option<f32>,
    /// The `fixed` rule's ratio.
    pub fixed_ratio: f32,
    /// The retriever of the mining filter (an HF directory or an installed name; e5-small
    /// when unset); the trainer scores with the model it trains instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// Training only: generated negatives drawn per query and step on top of the
    /// `negatives` mined ones (an example with none kept draws mined ones instead), so the
    /// adversarial negatives add to the hard negatives rather than displace them.
    pub per_query: usize,
}

impl Default for AdversarialRule {
    fn default() -> Self {
        AdversarialRule {
            mode: AdversarialMode::Dynamic,
            sources: vec!["perturb".into(), "llm_perturb".into()],
            keep_fraction: 0.25,
            keep_fraction_end: None,
            margin: 0.05,
            margin_end: None,
            max_overlap: None,
            fixed_ratio: 0.8,
            encoder: None,
            per_query: 1,
        }
    }
}

/// What the rule did with one generated negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Kept as a hard negative.
    Keep,
    /// The retriever ranks it above the positive by more than the margin.
    FalseNegative,
    /// It copies the positive.
    Overlap,
    /// Below the kept fraction (or the fixed rule's ratio).
    Easy,
}

impl Verdict {
    /// The drop reason written in the stats, or "kept".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Keep => "kept",
            Verdict::FalseNegative => "likely false negative (m above the margin)",
            Verdict::Overlap => "copies the positive (word overlap above the cap)",
            Verdict::Easy => "easy (below the kept fraction)",
        }
    }
}

/// One generated negative as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// sim(q, neg).
    pub neg: f32,
    /// sim(q, pos).
    pub pos: f32,
    /// Share of its distinct words found in the positive.
    pub overlap: f32,
}

impl Scored {
    /// m = sim(q, neg) − sim(q, pos).
    pub fn margin(&self) -> f32 {
        self.neg - self.pos
    }
}

impl AdversarialRule {
    /// The rule's settings or the schedule's value at `progress` (0 = start, 1 = end).
    fn at(start: f32, end: Option<f32>, progress: f64) -> f32 {
        let p = progress.clamp(0.0, 1.0) as f32;
        end.map_or(start, |e| start + (e - start) * p)
    }

    /// The kept fraction at `progress`.
    pub fn keep_fraction_at(&self, progress: f64) -> f32 {
        Self::at(self.keep_fraction, self.keep_fraction_end, progress)
    }

    /// The false-negative margin at `progress`.
    pub fn margin_at(&self, progress: f64) -> f32 {
        Self::at(self.margin, self.margin_end, progress)
    }

    /// The public code's rule.
    pub fn fixed_preset() -> Self {
        AdversarialRule {
            mode: AdversarialMode::Fixed,
            ..AdversarialRule::default()
        }
    }

    /// The overlap cap: the configured one, else the mode's default.
    pub fn overlap_cap(&self) -> f32 {
        self.max_overlap.unwrap_or(match self.mode {
            AdversarialMode::Dynamic => 1.0,
            AdversarialMode::Fixed => 0.6,
        })
    }

    /// Checks the ranges; `Err` names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let fractions = [Some(self.keep_fraction), self.keep_fraction_end];
        if fractions.iter().flatten().any(|f| !(*f > 0.0 && *f <= 1.0)) {
            return Err("keep_fraction and keep_fraction_end must be within (0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.overlap_cap()) {
            return Err(format!(
                "max_overlap must be within 0-1, got {}",
                self.overlap_cap()
            ));
        }
        if self.sources.is_empty() {
            return Err("sources must name at least one generator".into());
        }
        Ok(())
    }

    /// The verdict on each of one query's generated negatives, at training `progress`.
    pub fn judge(&self, scored: &[Scored], progress: f64) -> Vec<Verdict> {
        let cap = self.overlap_cap();
        let mut out: Vec<Verdict> = scored
            .iter()
            .map(|s| match self.mode {
                _ if s.overlap > cap => Verdict::Overlap,
                AdversarialMode::Fixed if s.neg >= self.fixed_ratio * s.pos => Verdict::Keep,
                AdversarialMode::Fixed => Verdict::Easy,
                AdversarialMode::Dynamic if s.margin() > self.margin_at(progress) => {
                    Verdict::FalseNegative
                }
                AdversarialMode::Dynamic => Verdict::Keep,
            })
            .collect();
        if self.mode == AdversarialMode::Dynamic {
            let mut left: Vec<usize> = (0..scored.len())
                .filter(|&i| out[i] == Verdict::Keep)
                .collect();
            let keep = (left.len() as f32 * self.keep_fraction_at(progress)).ceil() as usize;
            // Hardest first; ties by position, so the choice is deterministic.
            left.sort_by(|&a, &b| {
                scored[b]
                    .margin()
                    .total_cmp(&scored[a].margin())
                    .then(a.cmp(&b))
            });
            for &i in &left[keep.min(left.len())..] {
                out[i] = Verdict::Easy;
            }
        }
        out
    }
}

/// The mining filter: the rule at progress 0, with a fixed encoder.
pub struct AdversarialFilter {
    /// The rule.
    pub rule: AdversarialRule,
    /// The retriever.
    pub embedder: Box<dyn Embedder>,
}

impl AdversarialFilter {
    /// Loads the encoder the rule names.
    pub fn from_rule(rule: &AdversarialRule) -> Result<Self> {
        Ok(AdversarialFilter {
            rule: rule.clone(),
            embedder: Box::new(EncoderEmbedder::load(
                rule.encoder.as_deref().unwrap_or("e5-small"),
                "adversarial",
            )?),
        })
    }
}

/// The strings of `v` as `&str`, for an [`Embedder`].
fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Cosine of two L2-normalised vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Filter for AdversarialFilter {
    fn name(&self) -> &str {
        "adversarial"
    }

    fn apply(
        &self,
        batch: &mut [QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<()> {
        let (mut queries, mut positives, mut negatives) = (Vec::new(), Vec::new(), Vec::new());
        for q in batch.iter() {
            let query = &q.ctx.query.query;
            queries.push(query.text.clone());
            positives.push(
                positive_in_language(q.ctx.positives, query.lang.as_deref())
                    .map(|p| p.full_text())
                    .unwrap_or_default(),
            );
            let texts = q.texts();
            for (c, t) in q.candidates.iter().zip(texts) {
                if self.rule.sources.contains(&c.source) {
                    negatives.push(t);
                }
            }
        }
        progress.start("adversarial", (queries.len() * 2 + negatives.len()) as u64);
        let qv = self.embedder.embed(&as_refs(&queries), TextKind::Query)?;
        let pv = self
            .embedder
            .embed(&as_refs(&positives), TextKind::Passage)?;
        let nv = self
            .embedder
            .embed(&as_refs(&negatives), TextKind::Passage)?;
        progress.inc((queries.len() * 2 + negatives.len()) as u64);
        progress.finish();
        let mut next = 0;
        for (qi, q) in batch.iter_mut().enumerate() {
            let judged: Vec<usize> = (0..q.candidates.len())
                .filter(|&i| self.rule.sources.contains(&q.candidates[i].source))
                .collect();
            let texts = q.texts();
            let pos = dot(&qv[qi], &pv[qi]);
            let scored: Vec<Scored> = judged
                .iter()
                .map(|&i| {
                    let s = Scored {
                        neg: dot(&qv[qi], &nv[next]),
                        pos,
                        overlap: overlap(&texts[i], &positives[qi]),
                    };
                    next += 1;
                    s
                })
                .collect();
            let verdicts = self.rule.judge(&scored, 0.0);
            let mut drop = vec![false; q.candidates.len()];
            for ((&i, v), s) in judged.iter().zip(&verdicts).zip(&scored) {
                q.candidates[i]
                    .stage_scores
                    .insert("adversarial.m".into(), s.margin());
                if *v != Verdict::Keep {
                    log.drop("adversarial", v.as_str());
                    drop[i] = true;
                }
            }
            let mut i = 0;
            q.candidates.retain(|_| {
                i += 1;
                !drop[i - 1]
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(neg: f32, pos: f32, overlap: f32) -> Scored {
        Scored { neg, pos, overlap }
    }

    #[test]
    fn the_dynamic_rule_keeps_the_hardest_quarter_of_what_passes() {
        let rule = AdversarialRule::default();
        let scored = [
            s(0.80, 0.85, 0.9),  // m −0.05
            s(0.95, 0.85, 0.9),  // m +0.10: above the margin, a likely false negative
            s(0.84, 0.85, 0.9),  // m −0.01: the hardest that passes
            s(0.60, 0.85, 0.9),  // m −0.25
            s(0.70, 0.85, 1.0),  // an exact copy passes the 1.0 cap...
            s(0.85, 0.85, 0.95), // m 0: the second hardest
        ];
        let v = rule.judge(&scored, 0.0);
        use Verdict::*;
        // 5 pass the margin; ceil(25% of 5) = 2 kept: m 0 and m −0.01.
        assert_eq!(v, [Easy, FalseNegative, Keep, Easy, Easy, Keep]);
        let copy = rule.judge(&[s(0.7, 0.85, 1.0)], 0.0);
        assert_eq!(copy, [Keep], "one passing negative is always kept (ceil)");
        let capped = AdversarialRule {
            max_overlap: Some(0.6),
            ..rule.clone()
        };
        assert_eq!(capped.judge(&[s(0.7, 0.85, 0.61)], 0.0), [Overlap]);
    }

    #[test]
    fn the_schedule_moves_the_fraction_and_margin_with_progress() {
        let rule = AdversarialRule {
            keep_fraction: 0.5,
            keep_fraction_end: Some(0.25),
            margin: 0.1,
            margin_end: Some(0.0),
            ..AdversarialRule::default()
        };
        assert_eq!(rule.keep_fraction_at(0.0), 0.5);
        assert!((rule.keep_fraction_at(0.5) - 0.375).abs() < 1e-6);
        assert_eq!(rule.keep_fraction_at(2.0), 0.25);
        let scored: Vec<Scored> = (0..8)
            .map(|i| s(0.80 - i as f32 * 0.01, 0.8, 0.9))
            .collect();
        let kept = |p| {
            rule.judge(&scored, p)
                .iter()
                .filter(|v| **v == Verdict::Keep)
                .count()
        };
        assert_eq!((kept(0.0), kept(1.0)), (4, 2));
        // m = +0.05 passes the start's margin (0.1), not the end's (0.0).
        assert_eq!(rule.judge(&[s(0.85, 0.8, 0.9)], 0.0), [Verdict::Keep]);
        assert_eq!(
            rule.judge(&[s(0.85, 0.8, 0.9)], 1.0),
            [Verdict::FalseNegative]
        );
    }

    #[test]
    fn the_fixed_preset_is_the_public_codes_rule() {
        let rule = AdversarialRule::fixed_preset();
        let v = rule.judge(
            &[s(0.70, 0.85, 0.5), s(0.60, 0.85, 0.5), s(0.99, 0.85, 0.61)],
            0.0,
        );
        // 0.70 ≥ 0.8·0.85 = 0.68 kept; 0.60 not; 61% overlap rejected whatever its score.
        assert_eq!(v, [Verdict::Keep, Verdict::Easy, Verdict::Overlap]);
        assert!(AdversarialRule {
            keep_fraction: 0.0,
            ..AdversarialRule::default()
        }
        .validate()
        .is_err());
    }
}
