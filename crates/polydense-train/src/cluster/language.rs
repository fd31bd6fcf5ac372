//! How multilingual the clusters are: the mean over clusters of the Shannon entropy (bits)
//! of their examples' languages. 0 means every cluster is monolingual; log2(L) means every
//! cluster mixes L languages evenly, which is what cross-lingual hard negatives need.

use std::collections::HashMap;

/// The mean over non-empty clusters of the entropy in bits of the language distribution of
/// their members; examples without a language are left out, and None when none has one.
pub fn mean_language_entropy(assignments: &[u32], langs: &[Option<&str>]) -> Option<f64> {
    assert_eq!(assignments.len(), langs.len(), "one language per example");
    let mut counts: HashMap<u32, HashMap<&str, usize>> = HashMap::new();
    for (&c, lang) in assignments.iter().zip(langs) {
        if let Some(l) = lang {
            *counts.entry(c).or_default().entry(l).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return None;
    }
    let total: f64 = counts
        .values()
        .map(|by_lang| {
            let n: usize = by_lang.values().sum();
            by_lang
                .values()
                .map(|&c| {
                    let p = c as f64 / n as f64;
                    -p * p.log2()
                })
                .sum::<f64>()
        })
        .sum();
    Some(total / counts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monolingual_mixed_and_missing() {
        // Cluster 0: en, de (1 bit); cluster 1: en, en (0 bits); mean 0.5.
        let langs = [Some("en"), Some("de"), Some("en"), Some("en")];
        let e = mean_language_entropy(&[0, 0, 1, 1], &langs).unwrap();
        assert!((e - 0.5).abs() < 1e-12, "{e}");
        // Four languages evenly in one cluster: 2 bits.
        let four = [Some("en"), Some("de"), Some("zh"), Some("ar")];
        let e = mean_language_entropy(&[3, 3, 3, 3], &four).unwrap();
        assert!((e - 2.0).abs() < 1e-12, "{e}");
        // Untagged examples are left out; none tagged gives None.
        let some = [Some("en"), None, Some("de")];
        let e = mean_language_entropy(&[0, 0, 0], &some).unwrap();
        assert!((e - 1.0).abs() < 1e-12, "{e}");
        assert_eq!(mean_language_entropy(&[0, 1], &[None, None]), None);
    }
}
