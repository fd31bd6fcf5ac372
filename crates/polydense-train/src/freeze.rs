//! [`Trainable`]: which weights a run trains, from the config's `freeze` and `only_train`
//! name patterns (experts-only training, sequential Matryoshka stages, frozen embeddings).

use crate::error::{Result, TrainError};

/// The `freeze` and `only_train` patterns of a run. A weight trains when `only_train` is
/// empty or one of its patterns matches the name, and no `freeze` pattern does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trainable {
    /// Patterns of weights that do not train.
    pub freeze: Vec<String>,
    /// When not empty, the only weights that may train.
    pub only_train: Vec<String>,
}

/// Words `only_train` and `freeze` accept for groups of weights, with the patterns they mean.
const GROUPS: [(&str, &[&str]); 2] = [
    // CLPL's experts-only training: the expert copies and the gates.
    ("experts", &["*.experts.*", "*.moe.gate.*"]),
    // Every intermediate dense (experts included) and the gates.
    ("intermediate", &["*.intermediate.*", "*.moe.gate.*"]),
];

impl Trainable {
    /// The patterns, with the group words ("experts", "intermediate") expanded.
    pub fn new(freeze: Vec<String>, only_train: Vec<String>) -> Self {
        let expand = |patterns: Vec<String>| -> Vec<String> {
            patterns
                .into_iter()
                .flat_map(|p| match GROUPS.iter().find(|(word, _)| *word == p) {
                    Some((_, globs)) => globs.iter().map(|g| g.to_string()).collect(),
                    None => vec![p],
                })
                .collect()
        };
        Trainable {
            freeze: expand(freeze),
            only_train: expand(only_train),
        }
    }

    /// Whether the weight `name` trains.
    pub fn trains(&self, name: &str) -> bool {
        (self.only_train.is_empty() || self.only_train.iter().any(|p| matches(p, name)))
            && !self.freeze.iter().any(|p| matches(p, name))
    }

    /// Whether every weight trains (no pattern given).
    pub fn is_everything(&self) -> bool {
        self.freeze.is_empty() && self.only_train.is_empty()
    }

    /// Checks the patterns against the model's weight names: each must match some weight (a
    /// typo would otherwise silently train everything), and some weight must train.
    pub fn check<'a>(&self, names: impl IntoIterator<Item = &'a str> + Clone) -> Result<()> {
        for (field, patterns) in [("freeze", &self.freeze), ("only_train", &self.only_train)] {
            for p in patterns {
                if !names.clone().into_iter().any(|n| matches(p, n)) {
                    let example = names.clone().into_iter().find(|n| n.contains("layer"));
                    return Err(TrainError::config(
                        field,
                        format!(
                            "the pattern `{p}` matches no weight of the model{}",
                            example.map_or(String::new(), |e| format!(" (names look like `{e}`)"))
                        ),
                    ));
                }
            }
        }
        if !names.into_iter().any(|n| self.trains(n)) {
            return Err(TrainError::config(
                "freeze",
                "every weight is frozen: nothing would train",
            ));
        }
        Ok(())
    }
}

/// Glob matching of a whole name: `*` matches any run of characters (dots included), `?` one
/// character. Written out because weight names need nothing more than this, and a glob crate
/// would bring a regex engine into the build for it.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point (the last `*`), linear in practice.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(matches("embeddings.*", "embeddings.word_embeddings.weight"));
        assert!(!matches("embeddings.*", "encoder.layer.0.embeddings"));
        assert!(matches("*.bias", "encoder.layer.0.output.dense.bias"));
        assert!(matches(
            "encoder.layer.?.output.*",
            "encoder.layer.3.output.dense.weight"
        ));
        assert!(!matches(
            "encoder.layer.?.output.*",
            "encoder.layer.11.output.dense.weight"
        ));
        assert!(matches("*layer.1[*", "a.layer.1[x"));
        assert!(matches("*", ""));
        assert!(!matches("a", "ab"));
    }

    #[test]
    fn only_train_then_freeze() {
        let t = Trainable {
            freeze: vec!["*.bias".into()],
            only_train: vec!["encoder.layer.1.*".into()],
        };
        assert!(t.trains("encoder.layer.1.output.dense.weight"));
        assert!(!t.trains("encoder.layer.1.output.dense.bias"));
        assert!(!t.trains("encoder.layer.0.output.dense.weight"));
        let names = [
            "encoder.layer.0.x.weight",
            "encoder.layer.1.y.weight",
            "encoder.layer.1.y.bias",
            "embeddings.z",
        ];
        t.check(names).unwrap();
        let typo = Trainable {
            freeze: vec!["embedings.*".into()],
            ..Trainable::default()
        };
        let err = typo.check(names).unwrap_err().to_string();
        assert!(err.contains("`embedings.*` matches no weight"), "{err}");
        let all = Trainable {
            freeze: vec!["*".into()],
            ..Trainable::default()
        };
        assert!(all
            .check(names)
            .unwrap_err()
            .to_string()
            .contains("nothing would train"));
    }
}
