//! Aggregation of per-query scores into the overall and per-language means that every run
//! directory stores as `eval/*.json`.

use crate::evaluate::{mean_of, PerQuery};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// The language of queries that the language map does not cover (BCP 47 "undetermined").
pub const UNKNOWN_LANG: &str = "und";

/// Metric values in the order the user asked for them, serialised as a JSON object (a plain
/// map would sort `map` before `ndcg@10` and scramble the table columns).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricValues(pub Vec<(String, f64)>);

impl MetricValues {
    /// The value of a metric by its canonical name (e.g. `ndcg@10`).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl Serialize for MetricValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MetricValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = MetricValues;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of metric name to number")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<MetricValues, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, f64>()? {
                    out.push((k, v));
                }
                Ok(MetricValues(out))
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// How many queries each mean is over.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueryCounts {
    pub overall: usize,
    pub per_lang: BTreeMap<String, usize>,
}

/// The evaluation of one run: overall means, per-language means, and the query counts, as
/// `{"overall": {metric: value}, "per_lang": {lang: {metric: value}}, "num_queries": {...}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Report {
    pub overall: MetricValues,
    /// Empty when no language map was given.
    pub per_lang: BTreeMap<String, MetricValues>,
    pub num_queries: QueryCounts,
}

impl Report {
    /// Averages `scores` over all queries and, given `qid -> lang`, over each language's
    /// queries; a query missing from `langs` counts under [`UNKNOWN_LANG`]. Means over no
    /// queries are 0.
    pub fn new(scores: &PerQuery, langs: Option<&BTreeMap<String, String>>) -> Report {
        let names: Vec<String> = scores.metrics.iter().map(|m| m.to_string()).collect();
        let label = |means: Vec<f64>| MetricValues(names.iter().cloned().zip(means).collect());
        let width = scores.metrics.len();
        let mut report = Report {
            overall: label(scores.means()),
            per_lang: BTreeMap::new(),
            num_queries: QueryCounts {
                overall: scores.values.len(),
                per_lang: BTreeMap::new(),
            },
        };
        if let Some(langs) = langs {
            let mut groups: BTreeMap<&str, Vec<&Vec<f64>>> = BTreeMap::new();
            for (qid, row) in &scores.values {
                let lang = langs.get(qid).map_or(UNKNOWN_LANG, String::as_str);
                groups.entry(lang).or_default().push(row);
            }
            for (lang, rows) in groups {
                report
                    .num_queries
                    .per_lang
                    .insert(lang.to_string(), rows.len());
                report
                    .per_lang
                    .insert(lang.to_string(), label(mean_of(width, rows.into_iter())));
            }
        }
        report
    }

    /// Aligned plain-text tables: one row for all queries, then one row per language.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<(String, usize, &MetricValues)> =
            vec![("all".into(), self.num_queries.overall, &self.overall)];
        for (lang, values) in &self.per_lang {
            let n = self.num_queries.per_lang.get(lang).copied().unwrap_or(0);
            rows.push((lang.clone(), n, values));
        }
        let names: Vec<&str> = self.overall.0.iter().map(|(n, _)| n.as_str()).collect();
        let mut header = vec!["lang".to_string(), "queries".to_string()];
        header.extend(names.iter().map(|n| n.to_string()));
        let mut cells = vec![header];
        for (lang, n, values) in rows {
            let mut line = vec![lang, n.to_string()];
            line.extend(values.0.iter().map(|(_, v)| format!("{v:.4}")));
            cells.push(line);
        }
        render(&cells, Some(1))
    }
}

/// Renders rows of cells as columns: the first column left-aligned, the rest right-aligned,
/// with a rule under the header and, if asked, after the given data row (the overall row).
pub(crate) fn render(cells: &[Vec<String>], rule_after: Option<usize>) -> String {
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 || (rule_after == Some(i) && i + 1 < cells.len()) {
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::parse_metrics;

    fn scores() -> PerQuery {
        let mut values = BTreeMap::new();
        values.insert("q1".to_string(), vec![1.0, 0.5]);
        values.insert("q2".to_string(), vec![0.0, 0.25]);
        values.insert("q3".to_string(), vec![0.5, 1.0]);
        PerQuery {
            metrics: parse_metrics("ndcg@10,map").unwrap(),
            values,
        }
    }

    #[test]
    fn overall_and_per_language_means() {
        let langs: BTreeMap<String, String> = [("q1", "de"), ("q2", "de")]
            .iter()
            .map(|(q, l)| (q.to_string(), l.to_string()))
            .collect();
        let r = Report::new(&scores(), Some(&langs));
        assert_eq!(r.overall.get("ndcg@10"), Some(0.5));
        assert_eq!(r.overall.get("map"), Some(1.75 / 3.0));
        assert_eq!(r.per_lang["de"].get("map"), Some(0.375));
        assert_eq!(r.per_lang[UNKNOWN_LANG].get("ndcg@10"), Some(0.5));
        assert_eq!(r.num_queries.per_lang["de"], 2);
        assert_eq!(r.num_queries.overall, 3);
    }

    #[test]
    fn json_keeps_metric_order_and_round_trips() {
        let r = Report::new(&scores(), None);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.starts_with(r#"{"overall":{"ndcg@10":0.5,"map":"#),
            "{json}"
        );
        assert!(json.contains(r#""per_lang":{}"#), "{json}");
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn table_aligns_columns() {
        let langs: BTreeMap<String, String> =
            [("q1".to_string(), "de".to_string())].into_iter().collect();
        let t = Report::new(&scores(), Some(&langs)).to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("lang"), "{t}");
        assert!(lines[2].starts_with("all "), "{t}");
        assert!(lines[2].ends_with("0.5833"), "{t}");
        let widths: Vec<usize> = [0, 2, 4, 5].iter().map(|&i| lines[i].len()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
