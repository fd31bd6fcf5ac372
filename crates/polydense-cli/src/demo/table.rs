//! The table the demo ends with: each system's overall scores and its nDCG@10 per language.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// The systems compared, in the order they are built.
const SYSTEMS: [&str; 3] = ["bm25", "zero-shot", "fine-tuned"];

/// Formats the test results found in `dir` (`<system>.json` reports of `polydense eval`).
pub fn results(dir: &Path, langs: Vec<&str>) -> Result<String> {
    let mut out = String::from("test results (XQuAD-R, all languages pooled)\n");
    let _ = write!(
        out,
        "{:<11} {:>8} {:>7} {:>7} |",
        "system", "nDCG@10", "MRR@10", "R@100"
    );
    for l in &langs {
        let _ = write!(out, " {l:>5}");
    }
    out.push_str("   (nDCG@10 by query language)\n");
    for system in SYSTEMS {
        let path = dir.join(format!("{system}.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let report: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let get = |scope: &Value, metric: &str| scope.get(metric).and_then(Value::as_f64);
        let cell = |v: Option<f64>, width: usize| match v {
            Some(x) => format!("{x:>width$.4}"),
            None => format!("{:>width$}", "-"),
        };
        let overall = &report["overall"];
        let _ = write!(
            out,
            "{system:<11} {} {} {} |",
            cell(get(overall, "ndcg@10"), 8),
            cell(get(overall, "mrr@10"), 7),
            cell(get(overall, "recall@100"), 7)
        );
        for l in &langs {
            let v = get(&report["per_lang"][*l], "ndcg@10");
            let _ = write!(
                out,
                " {}",
                v.map_or(format!("{:>5}", "-"), |x| format!("{x:>5.3}"))
            );
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_system_with_each_language() {
        let dir = tempfile::tempdir().unwrap();
        for (i, s) in SYSTEMS.iter().enumerate() {
            let x = 0.1 * (i + 1) as f64;
            let json = serde_json::json!({
                "overall": {"ndcg@10": x, "mrr@10": x, "recall@100": x},
                "per_lang": {"en": {"ndcg@10": x}, "zh": {"ndcg@10": x / 2.0}}
            });
            std::fs::write(dir.path().join(format!("{s}.json")), json.to_string()).unwrap();
        }
        let t = results(dir.path(), vec!["en", "zh"]).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[1].contains("en") && lines[1].contains("zh"), "{t}");
        assert!(
            lines[4].starts_with("fine-tuned") && lines[4].contains("0.3000"),
            "{t}"
        );
        assert!(lines[4].ends_with("0.300 0.150"), "{t}");
    }

    #[test]
    fn a_missing_report_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = results(dir.path(), vec!["en"]).unwrap_err();
        assert!(format!("{err:#}").contains("bm25.json"), "{err:#}");
    }
}
