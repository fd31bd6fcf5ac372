//! [`TrainBatch`]: everything one optimiser step trains on, and the [`Collator`] that draws
//! it from the examples a [`crate::BatchSampler`] picked.

use crate::adversarial::AdversarialState;
use polydense_data::{TrainExample, TrainPassage};
use polydense_mine::AdversarialRule;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A negative whose own query is known (CLPL's `neg_q`, arXiv 2412.17364): the query for
/// which passage row `row` of the batch is the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct NegativeQuery {
    /// The passage row of the batch (a hard negative, never a positive).
    pub row: usize,
    /// The query text, embedded with the query tower and the query prefix.
    pub text: String,
}

/// The texts and ids of one batch. Query i's positive is passage row `i·group`, its hard
/// negatives the `group − 1` rows after it; the encoder passes embed the rows in this order,
/// so vectors line up with these lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainBatch {
    /// The examples' `query_id`, one per query.
    pub query_ids: Vec<String>,
    /// Query texts.
    pub queries: Vec<String>,
    /// Each query's language, when the training file has one.
    pub langs: Vec<Option<String>>,
    /// Passage texts, `group` per query ([`TrainPassage::full_text`]: `title text`).
    pub passages: Vec<String>,
    /// The docid of each passage row.
    pub passage_ids: Vec<String>,
    /// Passages per query (1 + hard negatives).
    pub group: usize,
    /// Every positive docid of each query's example, not only the one drawn: a passage with
    /// one of these ids is never a negative of that query (a cross-batch memory masks them).
    pub positive_ids: Vec<Vec<String>>,
    /// The negatives of the batch whose own query the training file gives (a `query` on a
    /// negative, or the FlagEmbedding/CLPL `neg_q` list), and negatives borrowed from other
    /// examples' positives (whose query is that example's), in passage-row order.
    pub negative_queries: Vec<NegativeQuery>,
}

impl TrainBatch {
    /// Queries in the batch.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the batch has no queries.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// Draws the positive and hard negatives of each sampled example. The draws of step `s` come
/// from ChaCha8 stream `s` of the seed, so a resumed run draws the same ones.
#[derive(Debug, Clone, Copy)]
pub struct Collator {
    /// Hard negatives per query.
    pub negatives: usize,
    /// The run's seed.
    pub seed: u64,
    /// Probability of drawing the positive in the query's language when the example has one
    /// and others (see `TrainConfig::same_lang_positive`); None: uniform.
    pub same_lang_positive: Option<f64>,
}

/// Mixed into the seed so the negative draws do not share a stream with data order.
const NEGATIVE_STREAM: u64 = 0x6e65_6761_7469_7665;

impl Collator {
    /// The index of the positive to draw: uniform, or with `same_lang_positive` the one in
    /// the query's language with that probability and one of the others otherwise. An
    /// example without a positive in its language, or with only that one, draws uniformly.
    fn positive(&self, ex: &TrainExample, rng: &mut ChaCha8Rng) -> usize {
        let n = ex.positive_passages.len();
        let own = self.same_lang_positive.and_then(|p| {
            let lang = ex.lang.as_deref()?;
            let i = ex
                .positive_passages
                .iter()
                .position(|d| d.lang.as_deref() == Some(lang))?;
            Some((p, i))
        });
        match own {
            Some((p, i)) if n > 1 => match rng.random_bool(p.clamp(0.0, 1.0)) {
                true => i,
                false => {
                    let j = rng.random_range(0..n - 1);
                    j + usize::from(j >= i)
                }
            },
            _ => rng.random_range(0..n),
        }
    }

    /// The batch of examples `batch` at step `step`. An example with too few negatives
    /// repeats them; one with none borrows random other examples' positives.
    pub fn collate(&self, examples: &[TrainExample], batch: &[usize], step: u64) -> TrainBatch {
        self.collate_with(examples, batch, step, None)
    }

    /// As [`Collator::collate`], with the AXL-ICT loop's negatives: each example draws
    /// `negatives` mined negatives, then `rule.per_query` of the generated ones the last
    /// refresh kept (mined ones where it kept none).
    pub fn collate_with(
        &self,
        examples: &[TrainExample],
        batch: &[usize],
        step: u64,
        adversarial: Option<(&AdversarialState, &AdversarialRule)>,
    ) -> TrainBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ NEGATIVE_STREAM);
        rng.set_stream(step);
        let n = self.negatives;
        let extra = adversarial.map_or(0, |(_, r)| r.per_query);
        let mut out = TrainBatch {
            group: 1 + n + extra,
            ..TrainBatch::default()
        };
        let push = |out: &mut TrainBatch, p: &TrainPassage, query: Option<&str>| {
            if let Some(q) = query {
                out.negative_queries.push(NegativeQuery {
                    row: out.passages.len(),
                    text: q.to_string(),
                });
            }
            out.passages.push(p.full_text());
            out.passage_ids.push(p.docid.clone());
        };
        for &i in batch {
            let ex = &examples[i];
            out.query_ids.push(ex.query_id.clone());
            out.queries.push(ex.query.clone());
            out.langs.push(ex.lang.clone());
            out.positive_ids.push(
                ex.positive_passages
                    .iter()
                    .map(|p| p.docid.clone())
                    .collect(),
            );
            let pos = &ex.positive_passages[self.positive(ex, &mut rng)];
            push(&mut out, pos, None);
            if n + extra == 0 {
                continue;
            }
            let (mut order, mut generated): (Vec<usize>, Vec<usize>) = match adversarial {
                Some((a, rule)) => a
                    .drawable(i, ex.negative_passages.len())
                    .into_iter()
                    .partition(|&k| {
                        !ex.negative_passages[k]
                            .source
                            .as_ref()
                            .is_some_and(|s| rule.sources.contains(s))
                    }),
                None => ((0..ex.negative_passages.len()).collect(), Vec::new()),
            };
            if order.is_empty() && generated.is_empty() {
                for _ in 0..n + extra {
                    let mut j = rng.random_range(0..examples.len());
                    if j == i && examples.len() > 1 {
                        j = (j + 1) % examples.len();
                    }
                    let other = &examples[j];
                    push(&mut out, &other.positive_passages[0], Some(&other.query));
                }
            } else {
                order.shuffle(&mut rng);
                generated.shuffle(&mut rng);
                // Mined slots fall back on generated negatives and the reverse, so every
                // example fills its group.
                let (mined, adv) = match (order.is_empty(), generated.is_empty()) {
                    (true, _) => (&generated, &generated),
                    (_, true) => (&order, &order),
                    _ => (&order, &generated),
                };
                for k in 0..n {
                    let neg = &ex.negative_passages[mined[k % mined.len()]];
                    push(&mut out, neg, neg.query.as_deref());
                }
                for k in 0..extra {
                    let k = if std::ptr::eq(adv, mined) { n + k } else { k };
                    let neg = &ex.negative_passages[adv[k % adv.len()]];
                    push(&mut out, neg, neg.query.as_deref());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: &str, query: Option<&str>) -> TrainPassage {
        TrainPassage {
            docid: id.into(),
            text: format!("text of {id}"),
            query: query.map(str::to_string),
            ..TrainPassage::default()
        }
    }

    #[test]
    fn negative_queries_line_up_with_their_passage_rows() {
        let examples = vec![
            TrainExample {
                query_id: "q0".into(),
                query: "first question".into(),
                lang: Some("en".into()),
                positive_passages: vec![passage("p0", None), passage("p0-de", None)],
                negative_passages: vec![passage("n0", Some("who wrote n0")), passage("n1", None)],
            },
            TrainExample {
                query_id: "q1".into(),
                query: "second question".into(),
                positive_passages: vec![passage("p1", None)],
                ..TrainExample::default()
            },
        ];
        let c = Collator {
            negatives: 2,
            seed: 3,
            same_lang_positive: None,
        };
        let b = c.collate(&examples, &[0, 1], 7);
        assert_eq!(b.group, 3);
        assert_eq!(b.query_ids, ["q0", "q1"]);
        assert_eq!(b.passages.len(), 6);
        assert_eq!(b.positive_ids, [vec!["p0", "p0-de"], vec!["p1"]]);
        // Every negative query names the row of its own passage: q0's mined negative n0, and
        // q1's negatives borrowed from q0's positive (whose query is q0's).
        for nq in &b.negative_queries {
            let id = &b.passage_ids[nq.row];
            assert!(nq.row % 3 != 0, "row {} is a positive", nq.row);
            let want = match id.as_str() {
                "n0" => "who wrote n0",
                "p0" => "first question",
                other => panic!("{other} has no query"),
            };
            assert_eq!(nq.text, want, "row {}", nq.row);
        }
        let rows_of_q0: Vec<&str> = b.passage_ids[1..3].iter().map(String::as_str).collect();
        let expected_q0 = rows_of_q0.iter().filter(|id| **id == "n0").count();
        let borrowed = b.passage_ids[4..6].len();
        assert_eq!(b.negative_queries.len(), expected_q0 + borrowed);
        // The same step draws the same batch; another step may not.
        assert_eq!(c.collate(&examples, &[0, 1], 7), b);
    }

    #[test]
    fn the_query_language_positive_is_drawn_at_the_asked_rate() {
        let pos = |id: &str, lang: &str| TrainPassage {
            lang: Some(lang.into()),
            ..passage(id, None)
        };
        let ex = TrainExample {
            query_id: "q".into(),
            query: "q".into(),
            lang: Some("de".into()),
            positive_passages: vec![pos("p-en", "en"), pos("p-de", "de"), pos("p-zh", "zh")],
            ..TrainExample::default()
        };
        let examples = vec![ex];
        let share = |p: Option<f64>| {
            let c = Collator {
                negatives: 0,
                seed: 1,
                same_lang_positive: p,
            };
            let draws: Vec<String> = (0..3000)
                .map(|s| c.collate(&examples, &[0], s).passage_ids[0].clone())
                .collect();
            let de = draws.iter().filter(|d| *d == "p-de").count() as f64 / 3000.0;
            let zh = draws.iter().filter(|d| *d == "p-zh").count() as f64 / 3000.0;
            (de, zh)
        };
        let (de, _) = share(None);
        assert!((de - 1.0 / 3.0).abs() < 0.04, "uniform: {de}");
        let (de, zh) = share(Some(0.8));
        assert!((de - 0.8).abs() < 0.03, "{de}");
        assert!((zh - 0.1).abs() < 0.03, "the others share the rest: {zh}");
        assert_eq!(share(Some(1.0)).0, 1.0);
        assert_eq!(share(Some(0.0)).0, 0.0);
        // Without a positive in the query's language the draw stays uniform.
        let mut other = examples.clone();
        other[0].lang = Some("fr".into());
        let c = Collator {
            negatives: 0,
            seed: 1,
            same_lang_positive: Some(1.0),
        };
        let ids: std::collections::BTreeSet<String> = (0..200)
            .map(|s| c.collate(&other, &[0], s).passage_ids[0].clone())
            .collect();
        assert_eq!(ids.len(), 3);
    }
}
