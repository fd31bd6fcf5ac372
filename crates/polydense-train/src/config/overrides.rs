//! Settings given on the command line over a config: `key = value` pairs, dotted for the
//! tables (`loss.temperature`), applied here so that the library, not the CLI, knows the
//! config's shape, and every key of every table kind is listed for the flags' check.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

use super::TrainConfig;
use crate::error::{Result, TrainError};
use crate::loss::LossConfig;
use crate::memory::MemoryConfig;
use crate::sampler::SamplerConfig;

/// The tables of a config whose `kind` picks the keys they take.
const TABLES: [&str; 3] = ["loss", "sampler", "memory"];

/// The tables of a config with fixed keys.
const PLAIN_TABLES: [&str; 2] = ["moe", "adversarial"];

impl TrainConfig {
    /// This config with `overrides` applied in order. A dotted key sets a table's key; a
    /// `kind` that differs from the table's current one starts the table afresh (its other
    /// keys belonged to the old kind), so `--sampler.kind random` works on an ICT config.
    /// A key the resulting kind does not take is an error naming it.
    pub fn with_overrides(&self, overrides: &[(String, Value)]) -> Result<Self> {
        let mut table = Table::try_from(self).expect("a TrainConfig always serialises");
        for (key, value) in overrides {
            match key.split_once('.') {
                Some((name, field)) => {
                    let t = table
                        .entry(name)
                        .or_insert_with(|| Value::Table(Table::new()));
                    let Value::Table(t) = t else {
                        return Err(TrainError::config(key.as_str(), "is not a table key"));
                    };
                    if field == "kind" && TABLES.contains(&name) && t.get("kind") != Some(value) {
                        t.clear();
                    }
                    t.insert(field.to_string(), value.clone());
                }
                None => {
                    table.insert(key.clone(), value.clone());
                }
            }
        }
        Self::from_table(table).map_err(|message| TrainError::Parse {
            path: "command-line flags".into(),
            message,
        })
    }

    /// Every key a config can hold, the tables' as `table.key` across every kind they know:
    /// what the command line must offer a flag for.
    pub fn keys() -> Vec<String> {
        let mut keys = BTreeSet::new();
        // The defaults, with every optional key set so that it serialises and is listed.
        let with_options = TrainConfig {
            same_lang_positive: Some(0.5),
            adversarial: Some(polydense_mine::AdversarialRule {
                keep_fraction_end: Some(0.25),
                margin_end: Some(0.0),
                max_overlap: Some(1.0),
                ..Default::default()
            }),
            ..TrainConfig::default()
        };
        let defaults = serde_json::to_value(with_options).expect("defaults serialise");
        for (k, v) in defaults.as_object().expect("a struct") {
            if PLAIN_TABLES.contains(&k.as_str()) {
                for field in v.as_object().expect("a table").keys() {
                    keys.insert(format!("{k}.{field}"));
                }
            } else if !TABLES.contains(&k.as_str()) {
                keys.insert(k.clone());
            }
        }
        kind_keys::<LossConfig>("loss", LossConfig::KINDS, &mut keys);
        kind_keys::<SamplerConfig>("sampler", SamplerConfig::KINDS, &mut keys);
        kind_keys::<MemoryConfig>("memory", MemoryConfig::KINDS, &mut keys);
        keys.into_iter().collect()
    }
}

/// Adds `table.key` for every key of every kind of a table.
fn kind_keys<T: Serialize + DeserializeOwned>(
    table: &str,
    kinds: &[&str],
    keys: &mut BTreeSet<String>,
) {
    for kind in kinds {
        let value: T = serde_json::from_value(serde_json::json!({ "kind": kind }))
            .unwrap_or_else(|e| panic!("[{table}] kind `{kind}` has no defaults: {e}"));
        let object = serde_json::to_value(value).expect("tables serialise");
        for k in object.as_object().expect("a table").keys() {
            keys.insert(format!("{table}.{k}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::InfoNceConfig;

    fn set(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn flags_reach_the_tables_and_a_new_kind_starts_afresh() {
        let base = TrainConfig::default();
        let c = base
            .with_overrides(&set(&[
                ("loss.temperature", Value::Float(0.02)),
                ("batch_size", Value::Integer(8)),
                ("sampler.kind", Value::String("ict-p".into())),
                ("sampler.refresh", Value::String("acr".into())),
            ]))
            .unwrap();
        assert_eq!(
            c.loss,
            LossConfig::Infonce(InfoNceConfig { temperature: 0.02 })
        );
        assert_eq!(c.batch_size, 8);
        assert_eq!(c.sampler.ict().unwrap().refresh, "acr");
        let back = c
            .with_overrides(&set(&[("sampler.kind", Value::String("random".into()))]))
            .unwrap();
        assert_eq!(back.sampler, SamplerConfig::default());
        let err = base
            .with_overrides(&set(&[("sampler.refresh", Value::String("acr".into()))]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("refresh"), "{err}");
    }

    #[test]
    fn keys_cover_every_kind() {
        let keys = TrainConfig::keys();
        for k in [
            "batch_size",
            "freeze",
            "loss.kind",
            "loss.temperature",
            "sampler.kind",
            "sampler.refresh",
            "sampler.sac_k_start",
            "memory.capacity",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} not in {keys:?}");
        }
        assert!(!keys.contains(&"loss".to_string()));
    }
}
