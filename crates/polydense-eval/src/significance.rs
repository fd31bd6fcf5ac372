//! Paired randomization (permutation) test between two runs, the test Smucker, Allan and
//! Carterette (CIKM 2007) recommend for IR metrics: under the null hypothesis the two systems
//! are exchangeable per query, so each query's difference keeps or flips its sign at random.

use crate::error::EvalError;
use crate::evaluate::PerQuery;
use crate::report::render;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the randomization test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestOptions {
    /// Number of random sign assignments; the p-value's resolution is 1 / (trials + 1).
    pub trials: usize,
    /// Seed of the random signs; the same seed gives the same p-values on any thread count.
    pub seed: u64,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            trials: 10_000,
            seed: 42,
        }
    }
}

/// The outcome for one metric: means of both runs, their difference and the p-value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: String,
    pub mean_a: f64,
    pub mean_b: f64,
    /// `mean_a - mean_b` over the paired queries.
    pub diff: f64,
    /// Two-sided: the chance of a mean difference at least this large in magnitude if the
    /// runs were exchangeable.
    pub p_value: f64,
    pub num_queries: usize,
}

/// Compares two runs scored on the same metrics, pairing the queries both evaluated.
///
/// p = (1 + #{trials with |mean difference| >= observed}) / (1 + trials), which counts the
/// observed assignment as one of the permutations, so p is never 0 (Phipson and Smyth, 2010).
pub fn randomization_test(
    a: &PerQuery,
    b: &PerQuery,
    opts: &TestOptions,
) -> Result<Vec<Comparison>, EvalError> {
    if a.metrics != b.metrics {
        return Err(EvalError::NothingToCompare(
            "the two runs were scored on different metrics".into(),
        ));
    }
    let width = a.metrics.len();
    // diffs[m][q]: per-metric rows keep the inner loop over queries contiguous.
    let mut diffs: Vec<Vec<f64>> = vec![Vec::new(); width];
    let (mut sum_a, mut sum_b) = (vec![0.0; width], vec![0.0; width]);
    for (qid, va) in &a.values {
        if let Some(vb) = b.values.get(qid) {
            for m in 0..width {
                diffs[m].push(va[m] - vb[m]);
                sum_a[m] += va[m];
                sum_b[m] += vb[m];
            }
        }
    }
    let n = diffs.first().map_or(0, Vec::len);
    if n == 0 {
        return Err(EvalError::NothingToCompare(
            "no query was evaluated in both runs".into(),
        ));
    }
    let observed: Vec<f64> = diffs.iter().map(|d| d.iter().sum::<f64>().abs()).collect();
    let extreme: Vec<usize> = (0..opts.trials)
        .into_par_iter()
        .fold(
            || (vec![0usize; width], Vec::new()),
            |(mut counts, mut signs), trial| {
                draw_signs(opts.seed, trial as u64, n, &mut signs);
                for m in 0..width {
                    let t = signed_sum(&diffs[m], &signs).abs();
                    // A relative tolerance, so that summation order cannot make the observed
                    // assignment itself look less extreme than the observation.
                    if t >= observed[m] - 1e-12 * observed[m].max(1.0) {
                        counts[m] += 1;
                    }
                }
                (counts, signs)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(
            || vec![0usize; width],
            |mut x, y| {
                x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
                x
            },
        );
    Ok(a.metrics
        .iter()
        .enumerate()
        .map(|(m, metric)| {
            let (mean_a, mean_b) = (sum_a[m] / n as f64, sum_b[m] / n as f64);
            Comparison {
                metric: metric.to_string(),
                mean_a,
                mean_b,
                diff: mean_a - mean_b,
                p_value: (1 + extreme[m]) as f64 / (1 + opts.trials) as f64,
                num_queries: n,
            }
        })
        .collect())
}

/// [`randomization_test`] within each language: the queries of `langs` (query id → language)
/// grouped by language, each group tested on its own. Queries without a language are
/// grouped under "und"; a language no query of both runs has is left out.
pub fn randomization_test_per_lang(
    a: &PerQuery,
    b: &PerQuery,
    langs: &BTreeMap<String, String>,
    opts: &TestOptions,
) -> Result<BTreeMap<String, Vec<Comparison>>, EvalError> {
    let mut groups: BTreeMap<&str, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for (qid, v) in &a.values {
        let lang = langs.get(qid).map_or("und", String::as_str);
        groups
            .entry(lang)
            .or_default()
            .insert(qid.clone(), v.clone());
    }
    let mut out = BTreeMap::new();
    for (lang, values) in groups {
        let part = PerQuery {
            metrics: a.metrics.clone(),
            values,
        };
        match randomization_test(&part, b, opts) {
            Ok(c) => {
                out.insert(lang.to_string(), c);
            }
            Err(EvalError::NothingToCompare(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One random bit per query for `trial`; the ChaCha stream number is the trial index, so
/// trials are independent of how rayon splits them.
fn draw_signs(seed: u64, trial: u64, n: usize, out: &mut Vec<u64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(trial);
    out.clear();
    out.extend((0..n.div_ceil(64)).map(|_| rng.next_u64()));
}

/// Sum of the differences with each sign flipped where its bit is set.
fn signed_sum(d: &[f64], signs: &[u64]) -> f64 {
    let mut sum = 0.0;
    for (i, &x) in d.iter().enumerate() {
        let bit = (signs[i / 64] >> (i % 64)) & 1;
        sum += f64::from_bits(x.to_bits() ^ (bit << 63));
    }
    sum
}

/// Aligned text table of comparisons, one row per metric.
pub fn comparison_table(rows: &[Comparison]) -> String {
    let mut cells = vec![["metric", "A", "B", "A-B", "p", "queries"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for r in rows {
        cells.push(vec![
            r.metric.clone(),
            format!("{:.4}", r.mean_a),
            format!("{:.4}", r.mean_b),
            format!("{:+.4}", r.diff),
            format!("{:.4}", r.p_value),
            r.num_queries.to_string(),
        ]);
    }
    render(&cells, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::parse_metrics;

    fn per_query(vals: &[f64]) -> PerQuery {
        PerQuery {
            metrics: parse_metrics("map").unwrap(),
            values: vals
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("q{i:03}"), vec![*v]))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn identical_runs_have_p_one() {
        let a = per_query(&[0.1, 0.5, 0.9]);
        let r = randomization_test(&a, &a, &TestOptions::default()).unwrap();
        assert_eq!(r[0].p_value, 1.0);
        assert_eq!(r[0].diff, 0.0);
    }

    #[test]
    fn exact_for_a_tiny_case() {
        // Differences +1, +1, +1: only the all-plus and all-minus of the 8 sign patterns reach
        // |sum| = 3, so p -> 2/8 as trials grow.
        let a = per_query(&[1.0, 1.0, 1.0]);
        let b = per_query(&[0.0, 0.0, 0.0]);
        let opts = TestOptions {
            trials: 40_000,
            seed: 7,
        };
        let r = randomization_test(&a, &b, &opts).unwrap();
        assert!((r[0].p_value - 0.25).abs() < 0.01, "{}", r[0].p_value);
        assert_eq!(r[0].diff, 1.0);
    }

    #[test]
    fn large_consistent_gain_is_significant_and_seed_reproducible() {
        let a: Vec<f64> = (0..200)
            .map(|i| 0.5 + 0.1 * ((i % 7) as f64 / 7.0))
            .collect();
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x - 0.05 - 0.01 * (i % 3) as f64)
            .collect();
        let (a, b) = (per_query(&a), per_query(&b));
        let opts = TestOptions {
            trials: 2000,
            seed: 1,
        };
        let r1 = randomization_test(&a, &b, &opts).unwrap();
        assert!(r1[0].p_value <= 1.0 / 2001.0 + 1e-15, "{}", r1[0].p_value);
        let r2 = randomization_test(&a, &b, &opts).unwrap();
        assert_eq!(r1, r2);
    }

    #[test]
    fn noise_is_not_significant() {
        let a: Vec<f64> = (0..100).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
        let b: Vec<f64> = (0..100).map(|i| ((i * 53) % 11) as f64 / 10.0).collect();
        let r =
            randomization_test(&per_query(&a), &per_query(&b), &TestOptions::default()).unwrap();
        assert!(r[0].p_value > 0.05, "{}", r[0].p_value);
    }

    #[test]
    fn disjoint_runs_cannot_be_compared() {
        let a = per_query(&[1.0]);
        let mut b = per_query(&[1.0]);
        b.values = [("other".to_string(), vec![0.0])].into_iter().collect();
        assert!(randomization_test(&a, &b, &TestOptions::default()).is_err());
    }

    #[test]
    fn per_language_tests_split_the_queries() {
        // q000..q005: the first three "en" (A better), the last three "de" (equal).
        let a = per_query(&[0.9, 0.8, 0.9, 0.5, 0.5, 0.5]);
        let b = per_query(&[0.1, 0.2, 0.1, 0.5, 0.5, 0.5]);
        let langs: BTreeMap<String, String> = (0..6)
            .map(|i| {
                (
                    format!("q{i:03}"),
                    if i < 3 { "en" } else { "de" }.to_string(),
                )
            })
            .collect();
        let r = randomization_test_per_lang(&a, &b, &langs, &TestOptions::default()).unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), ["de", "en"]);
        assert_eq!(r["de"][0].diff, 0.0);
        assert_eq!(r["de"][0].p_value, 1.0);
        assert_eq!(r["en"][0].num_queries, 3);
        assert!((r["en"][0].diff - 0.7333333333333334).abs() < 1e-12);
        // Three sign flips have 8 assignments: only the observed and its mirror are as
        // extreme, p = 2/8 in the limit.
        assert!(
            (r["en"][0].p_value - 0.25).abs() < 0.02,
            "{}",
            r["en"][0].p_value
        );
    }
}
