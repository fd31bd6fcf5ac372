//! Rule-based adversarial negatives (AXL-ICT's perturbations, without an LLM): each
//! example's positive, in the query's language, is rewritten in its answer sentence by
//! numerical perturbation ([`numeric`]), entity substitution ([`entity`]) or logical
//! negation ([`negation`]), so the negative keeps the positive's topic and wording but no
//! longer answers the query. Offline and deterministic: the same seed writes the same file.
//!
//! Each negative records its `source` (the generator's name) and its `perturbation`
//! (`numeric 1889→1893`, `entity Warsaw→Lisbon`, `negation was→was not`). A kind that does
//! not apply (no number in the answer sentence, a language without a negation rule) is
//! counted, not forced.
//!
//! Which languages get what: numbers in every script with decimal digits (ASCII,
//! Arabic-Indic, Devanagari, Thai, …); entities by capitalisation in cased scripts and by
//! corpus rarity in the others ([`entity`]); negation in [`negation::SUPPORTED`].

pub mod entity;
pub mod negation;
pub mod numeric;
pub mod sentence;

use crate::error::Result;
use crate::progress::Progress;
use crate::sample::fnv1a;
use crate::stage::{Candidate, DropLog, Generator, QueryCandidates};
use entity::EntityPool;
use polydense_data::{Document, TrainPassage};
use polydense_lexical::analysis::{primary_language, Analyzers};
use polydense_lexical::AnalysisOptions;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One perturbation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerturbKind {
    /// Numbers, years, dates and quantities changed.
    Numeric,
    /// A name swapped for another of the same shape.
    Entity,
    /// The answer sentence negated.
    Negation,
}

impl PerturbKind {
    /// Every kind, in the order the generators apply them.
    pub const ALL: [PerturbKind; 3] = [
        PerturbKind::Numeric,
        PerturbKind::Entity,
        PerturbKind::Negation,
    ];

    /// The name written in `perturbation` and in the stats.
    pub fn as_str(self) -> &'static str {
        match self {
            PerturbKind::Numeric => "numeric",
            PerturbKind::Entity => "entity",
            PerturbKind::Negation => "negation",
        }
    }
}

/// The `[[generator]] kind = "perturb"` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerturbConfig {
    /// Source tag of the generated negatives.
    pub name: String,
    /// The perturbations to apply, each giving its own negatives.
    pub kinds: Vec<PerturbKind>,
    /// Negatives per kind and example (different seeds; negation gives at most one).
    pub per_kind: usize,
    /// Seed of the choices (which number moves where, which name replaces which).
    pub seed: u64,
    /// Document frequency at or below which a word is rare (entity substitution in caseless
    /// scripts, and German); by default max(5, √N) for a language of N passages.
    pub rare_df: Option<u32>,
}

impl Default for PerturbConfig {
    fn default() -> Self {
        PerturbConfig {
            name: "perturb".into(),
            kinds: PerturbKind::ALL.to_vec(),
            per_kind: 1,
            seed: 13,
            rare_df: None,
        }
    }
}

/// A perturbed copy of a positive: its text and the edit made.
#[derive(Debug, Clone, PartialEq)]
pub struct Perturbation {
    /// Which rule.
    pub kind: PerturbKind,
    /// The rewritten passage text.
    pub text: String,
    /// `numeric 1889→1893`.
    pub edit: String,
}

/// The rule-based generator.
pub struct Perturb {
    /// Kinds and seed.
    pub config: PerturbConfig,
    /// Names of the corpus, and the analysers that find the answer sentence.
    state: Mutex<(EntityPool, Analyzers)>,
}

impl Perturb {
    /// A generator whose entity pool is drawn from `corpus`.
    pub fn new(config: PerturbConfig, corpus: &[Document]) -> Self {
        let pool = EntityPool::build(
            corpus
                .iter()
                .map(|d| (d.id.as_str(), d.text.as_str(), d.lang.as_deref())),
            config.rare_df,
        );
        let analyzers = Analyzers::new(AnalysisOptions {
            stem: true,
            stopwords: true,
        });
        Perturb {
            config,
            state: Mutex::new((pool, analyzers)),
        }
    }

    /// The perturbations of `positive` (in `lang`, passage id `docid`) for `query`, `variant`
    /// of each kind, and the kinds that did not apply.
    pub fn perturb(
        &self,
        query_id: &str,
        query: &str,
        positive: &TrainPassage,
        lang: &str,
        variant: usize,
    ) -> (Vec<Perturbation>, Vec<PerturbKind>) {
        let mut state = self.state.lock().expect("perturb state");
        let (pool, analyzers) = &mut *state;
        let text = &positive.text;
        let Some(sentence) = sentence::answer_sentence(analyzers, text, query, Some(lang)) else {
            return (Vec::new(), self.config.kinds.clone());
        };
        let (mut made, mut missing) = (Vec::new(), Vec::new());
        for &kind in &self.config.kinds {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.config.seed ^ fnv1a(&[query_id, kind.as_str(), &variant.to_string()]),
            );
            let out = match kind {
                PerturbKind::Numeric => numeric::perturb_numbers(text, sentence.clone(), &mut rng)
                    .map(|(t, e)| (t, e.join(", "))),
                PerturbKind::Entity => {
                    pool.substitute(text, &positive.docid, lang, sentence.clone(), &mut rng)
                }
                PerturbKind::Negation if variant == 0 => {
                    negation::negate(text, sentence.clone(), lang)
                }
                PerturbKind::Negation => continue,
            };
            match out {
                Some((t, edit)) if t != *text => made.push(Perturbation {
                    kind,
                    text: t,
                    edit: format!("{} {edit}", kind.as_str()),
                }),
                _ => missing.push(kind),
            }
        }
        (made, missing)
    }
}

/// The positive an example's negatives are written from: the one in the query's language,
/// else the first.
pub fn positive_in_language<'a>(
    positives: &'a [TrainPassage],
    lang: Option<&str>,
) -> Option<&'a TrainPassage> {
    positives
        .iter()
        .find(|p| lang.is_some() && p.lang.as_deref() == lang)
        .or_else(|| positives.first())
}

impl Generator for Perturb {
    fn source(&self) -> &str {
        &self.config.name
    }

    fn generate(
        &self,
        batch: &[QueryCandidates<'_>],
        log: &mut DropLog,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Candidate>>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        progress.start(&self.config.name, batch.len() as u64);
        for q in batch {
            let query = &q.ctx.query.query;
            let Some(positive) = positive_in_language(q.ctx.positives, query.lang.as_deref())
            else {
                out.push(Vec::new());
                continue;
            };
            let lang = primary_language(
                query
                    .lang
                    .as_deref()
                    .or(positive.lang.as_deref())
                    .unwrap_or_default(),
            );
            let mut new = Vec::new();
            for variant in 0..self.config.per_kind.max(1) {
                let (made, missing) =
                    self.perturb(&query.id, &query.text, positive, &lang, variant);
                for kind in missing {
                    *counts
                        .entry(format!("{}: not applicable", kind.as_str()))
                        .or_default() += 1;
                }
                for p in made {
                    *counts
                        .entry(format!("{}: written", p.kind.as_str()))
                        .or_default() += 1;
                    let rank = new.len();
                    let kind = p.kind.as_str();
                    let passage = TrainPassage {
                        docid: format!("{}:{}:{kind}:{variant}", query.id, self.config.name),
                        title: positive.title.clone(),
                        text: p.text,
                        lang: positive.lang.clone(),
                        perturbation: Some(p.edit),
                        ..TrainPassage::default()
                    };
                    new.push(Candidate::generated(&self.config.name, rank, passage));
                }
            }
            out.push(new);
            progress.inc(1);
        }
        progress.finish();
        log.count(&self.config.name, counts);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str, lang: &str) -> Document {
        Document {
            id: id.into(),
            title: String::new(),
            text: text.into(),
            lang: Some(lang.into()),
        }
    }

    #[test]
    fn every_kind_rewrites_the_answer_sentence_and_says_how() {
        let corpus = [
            doc("a", "Paris is the capital of France. The tower in Paris was built in 1889 by Gustave Eiffel.", "en"),
            doc("b", "The castle in Warsaw was rebuilt in 1971 by Jan Zachwatowicz.", "en"),
        ];
        let g = Perturb::new(PerturbConfig::default(), &corpus);
        let pos = TrainPassage {
            docid: "a".into(),
            text: corpus[0].text.clone(),
            lang: Some("en".into()),
            ..TrainPassage::default()
        };
        let (made, missing) = g.perturb("q1", "When was the tower built?", &pos, "en", 0);
        assert!(missing.is_empty(), "{missing:?}");
        let by: BTreeMap<PerturbKind, &Perturbation> = made.iter().map(|p| (p.kind, p)).collect();
        let first = "Paris is the capital of France. ";
        for p in &made {
            assert!(p.text.starts_with(first), "{p:?}");
            assert_ne!(p.text, pos.text);
        }
        assert!(by[&PerturbKind::Numeric].edit.starts_with("numeric 1889→"));
        assert!(by[&PerturbKind::Negation].text.contains("was not built"));
        let e = &by[&PerturbKind::Entity];
        assert!(e.edit.starts_with("entity "), "{e:?}");
        // Deterministic: the same seed writes the same negatives.
        let (again, _) = g.perturb("q1", "When was the tower built?", &pos, "en", 0);
        assert_eq!(made, again);
        // Another variant may differ but is written from the same sentence.
        let (other, _) = g.perturb("q1", "When was the tower built?", &pos, "en", 1);
        assert!(other.iter().all(|p| p.kind != PerturbKind::Negation));
    }
}
