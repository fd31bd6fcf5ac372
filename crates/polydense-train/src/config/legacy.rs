//! Configs written for earlier versions, whose loss and sampler settings were flat keys
//! (`loss = "infonce"`, `temperature = 0.05`, `sampler = "ict-p"`, `refresh = "acr"`, ...),
//! keep working: their keys move into the `[loss]` and `[sampler]` tables before parsing.
//! Saved run directories hold such configs, and `--resume` must still read them.

use toml::{Table, Value};

/// The clustered samplers' keys, once top-level.
const ICT_KEYS: [&str; 17] = [
    "clusters",
    "refresh",
    "refresh_every",
    "refresh_unit",
    "sac_preset",
    "sac_k_start",
    "sac_k_step",
    "sac_warmup_epochs",
    "sac_k_max",
    "sac_k_min",
    "acr_loss_drop",
    "acr_window",
    "acr_drift",
    "acr_probe",
    "acr_min_gap",
    "acr_max_gap",
    "kmeans_iters",
];

/// Moves flat keys into their tables; returns the keys it moved (or dropped: the clustered
/// keys of a config whose sampler is not clustered, which had no effect there).
pub(super) fn migrate(config: &mut Table) -> Vec<String> {
    let mut moved = Vec::new();
    let into = |config: &mut Table, table: &str, key: &str, value: Value| {
        let t = config
            .entry(table)
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = t {
            t.entry(key).or_insert(value);
        }
    };
    if let Some(Value::String(kind)) = config.get("loss").cloned() {
        config.remove("loss");
        into(config, "loss", "kind", Value::String(kind));
        moved.push("loss".to_string());
    }
    if let Some(t) = config.remove("temperature") {
        into(config, "loss", "temperature", t);
        moved.push("temperature".to_string());
    }
    if let Some(Value::String(kind)) = config.get("sampler").cloned() {
        config.remove("sampler");
        into(config, "sampler", "kind", Value::String(kind));
        moved.push("sampler".to_string());
    }
    let clustered = config
        .get("sampler")
        .and_then(|s| s.get("kind"))
        .and_then(Value::as_str)
        .is_some_and(|k| k.starts_with("ict"));
    for key in ICT_KEYS {
        if let Some(v) = config.remove(key) {
            if clustered {
                into(config, "sampler", key, v);
            }
            moved.push(key.to_string());
        }
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keys_move_into_their_tables() {
        let mut t: Table = toml::from_str(
            "loss = \"infonce\"\ntemperature = 0.02\nsampler = \"ict-p\"\nrefresh = \"acr\"\nclusters = 5\nlr = 1e-5\n",
        )
        .unwrap();
        let moved = migrate(&mut t);
        assert_eq!(
            moved,
            ["loss", "temperature", "sampler", "clusters", "refresh"]
        );
        let want: Table = toml::from_str(
            "lr = 1e-5\n[loss]\nkind = \"infonce\"\ntemperature = 0.02\n[sampler]\nkind = \"ict-p\"\nrefresh = \"acr\"\nclusters = 5\n",
        )
        .unwrap();
        assert_eq!(t, want);
    }

    #[test]
    fn clustered_keys_of_an_unclustered_sampler_are_dropped() {
        let mut t: Table =
            toml::from_str("sampler = \"random\"\nrefresh = \"fixed\"\nkmeans_iters = 20\n")
                .unwrap();
        migrate(&mut t);
        let want: Table = toml::from_str("[sampler]\nkind = \"random\"\n").unwrap();
        assert_eq!(t, want);
    }
}
