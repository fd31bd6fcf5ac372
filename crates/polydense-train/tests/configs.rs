//! Every training and compression config shipped in `configs/` parses, validates and names
//! only keys the code knows, so a change to a config's shape cannot leave a file behind.

use std::path::Path;

use polydense_train::TrainConfig;

fn training_configs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            training_configs(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            // Mining configs name a dataset; training configs a model (at the top level);
            // compression configs have a [head].
            let text = std::fs::read_to_string(&path).unwrap();
            let table: toml::Table = text.parse().unwrap();
            let plain = !table.contains_key("dataset") && !table.contains_key("head");
            if table.contains_key("model") && plain {
                out.push(path);
            }
        }
    }
}

#[test]
fn shipped_training_configs_parse_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut found = Vec::new();
    training_configs(&root, &mut found);
    assert!(found.len() >= 9, "{found:?}");
    for path in found {
        let text = std::fs::read_to_string(&path).unwrap();
        // Shipped files use the tables, never the flat keys of earlier versions.
        let top = text.split("\n[").next().unwrap();
        for old in [
            "\nloss = ",
            "\ntemperature = ",
            "\nsampler = ",
            "\nrefresh = ",
        ] {
            assert!(
                !top.contains(old),
                "{} uses a flat key: {old:?}",
                path.display()
            );
        }
        let c = TrainConfig::from_toml_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        c.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn shipped_compression_configs_parse_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "toml") && text.contains("\n[head]") {
            let c: polydense_train::compress::CompressConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            c.head
                .validate(384)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}
