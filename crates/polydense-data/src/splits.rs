//! Seeded train/dev/test splits over groups (articles), so that no group's items land on
//! both sides of a split: questions about one article share facts, and leaking them would
//! inflate test scores.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The three parts of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    /// All splits in file order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    /// The name used for `qrels/{name}.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// Fractions of groups per split; they are normalised, so `7,1,2` works as well as `0.7,0.1,0.2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRatios {
    pub train: f64,
    pub dev: f64,
    pub test: f64,
}

impl Default for SplitRatios {
    fn default() -> Self {
        SplitRatios {
            train: 0.7,
            dev: 0.1,
            test: 0.2,
        }
    }
}

impl std::str::FromStr for SplitRatios {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!("split ratios `{s}`: {e}; expected three numbers like 0.7,0.1,0.2")
            })?;
        match parts[..] {
            [train, dev, test]
                if [train, dev, test]
                    .iter()
                    .all(|v| v.is_finite() && *v >= 0.0)
                    && train + dev + test > 0.0 =>
            {
                Ok(SplitRatios { train, dev, test })
            }
            _ => Err(format!(
                "split ratios `{s}`: expected three non-negative numbers like 0.7,0.1,0.2"
            )),
        }
    }
}

/// Assigns each of `n_groups` groups to a split: a seeded shuffle, then the first
/// `round(test·n)` groups go to test, the next `round(dev·n)` to dev, the rest to train.
/// The result depends only on `n_groups`, the ratios and the seed.
pub fn assign_groups(n_groups: usize, ratios: SplitRatios, seed: u64) -> Vec<Split> {
    let total = ratios.train + ratios.dev + ratios.test;
    let n_test = ((ratios.test / total) * n_groups as f64).round() as usize;
    let n_dev = (((ratios.dev / total) * n_groups as f64).round() as usize).min(n_groups - n_test);
    let mut order: Vec<usize> = (0..n_groups).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut out = vec![Split::Train; n_groups];
    for (rank, &g) in order.iter().enumerate() {
        out[g] = if rank < n_test {
            Split::Test
        } else if rank < n_test + n_dev {
            Split::Dev
        } else {
            Split::Train
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_ratios_and_seed_is_deterministic() {
        let a = assign_groups(48, SplitRatios::default(), 13);
        let count = |s| a.iter().filter(|&&x| x == s).count();
        assert_eq!(
            (count(Split::Train), count(Split::Dev), count(Split::Test)),
            (33, 5, 10)
        );
        assert_eq!(a, assign_groups(48, SplitRatios::default(), 13));
        assert_ne!(a, assign_groups(48, SplitRatios::default(), 14));
    }

    #[test]
    fn parses_ratios() {
        let r: SplitRatios = "8,1,1".parse().unwrap();
        assert_eq!(r.train, 8.0);
        assert!("1,2".parse::<SplitRatios>().is_err());
        assert!("a,b,c".parse::<SplitRatios>().is_err());
        assert!("0,0,0".parse::<SplitRatios>().is_err());
        let all_test = assign_groups(5, "0,0,1".parse().unwrap(), 1);
        assert!(all_test.iter().all(|&s| s == Split::Test));
    }
}
