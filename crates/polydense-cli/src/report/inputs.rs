//! Reading a run directory: every part is optional, a missing one is a note in the report,
//! and a malformed one is an error that names the file and the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use polydense_data::DataError;
use polydense_eval::MetricValues;
use polydense_mine::MineStats;
use polydense_train::adversarial::RefreshRecord;
use polydense_train::StepRecord;
use serde::Deserialize;
use serde_json::Value;

/// Overall and per-language means of one evaluation: the part of a polydense-eval report
/// the report shows (query counts and other keys are ignored, so older files still load).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EvalReport {
    /// Mean of each metric over all queries, in the order the evaluation listed them.
    pub overall: MetricValues,
    /// The same per language code; empty when the evaluation had no language map.
    #[serde(default)]
    pub per_lang: BTreeMap<String, MetricValues>,
    /// What each query's first hit is, when evaluated with `--first-hit`.
    #[serde(default)]
    pub first_hit: Option<polydense_eval::FirstHits>,
}

/// A dev-set evaluation during training.
#[derive(Debug, Clone, PartialEq)]
pub struct DevEval {
    /// Steps done when it ran.
    pub step: u64,
    /// Its scores.
    pub report: EvalReport,
}

/// One system's test-set evaluation, named by its file stem (e.g. `bm25`, `fine-tuned`).
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// The file stem.
    pub name: String,
    /// Its scores.
    pub report: EvalReport,
}

/// One clustering run of clustered training (a line of clusters.jsonl).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRun {
    /// Steps done when it ran.
    pub step: u64,
    /// Number of clusters, when the line says.
    pub k: Option<f64>,
    /// Every field of the line, for the table (the format is still growing, so the report
    /// shows whatever it finds rather than a fixed set).
    pub fields: serde_json::Map<String, Value>,
}

/// A 2-d projection point of a training example's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjPoint {
    /// First coordinate.
    pub x: f64,
    /// Second coordinate.
    pub y: f64,
    /// The cluster it was assigned to.
    pub cluster: u64,
    /// Its language code (empty when unknown).
    pub lang: String,
}

/// The embedding projection written by clustered training (projection.json).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Steps done when it was taken.
    pub step: Option<u64>,
    /// Number of clusters.
    pub k: Option<u64>,
    /// The points.
    pub points: Vec<ProjPoint>,
}

/// The mining stats of the training file, and where they were found.
#[derive(Debug, Clone)]
pub struct Negatives {
    /// The stats file.
    pub path: PathBuf,
    /// Its contents.
    pub stats: MineStats,
}

/// Everything the report can show from one run directory.
#[derive(Debug, Clone)]
pub struct RunInputs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// config.toml, verbatim.
    pub config: Option<String>,
    /// Training steps in order.
    pub steps: Vec<StepRecord>,
    /// Dev evaluations by step, from metrics.jsonl and eval/dev-step-*.json.
    pub dev: Vec<DevEval>,
    /// Clustering runs in order.
    pub clusters: Vec<ClusterRun>,
    /// The embedding projection.
    pub projection: Option<Projection>,
    /// Test-set evaluations of the compared systems, weakest nDCG@10 first.
    pub systems: Vec<System>,
    /// Mining stats of the training file.
    pub negatives: Option<Negatives>,
    /// Where the mining stats were looked for, when none were found.
    pub negatives_searched: Vec<PathBuf>,
    /// Quality-by-dimension curves (`retrieve --dims` outputs under the directory), by task.
    pub dims: BTreeMap<String, Vec<DimCurve>>,
    /// The AXL-ICT loop's refreshes, in order.
    pub adversarial: Vec<RefreshRecord>,
}

/// One method's evaluation at several dims (a `dims.json` of `polydense retrieve --dims`).
#[derive(Debug, Clone, PartialEq)]
pub struct DimCurve {
    /// The method: the directory holding the task's directory (or `dims.json` itself).
    pub method: String,
    /// Overall metrics at each dim, largest dim first.
    pub points: Vec<(usize, MetricValues)>,
}

/// Every `dims.json` up to three levels below `dir`: `METHOD/TASK/dims.json` is method
/// METHOD's curve on TASK, `METHOD/dims.json` one on the task `quality`.
fn read_dim_curves(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<DimCurve>>> {
    #[derive(Deserialize)]
    struct Line {
        dim: usize,
        report: EvalReport,
    }
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && depth < 3 {
                stack.push((path, depth + 1));
            } else if e.file_name() == "dims.json" {
                found.push(path);
            }
        }
    }
    found.sort();
    let mut out: BTreeMap<String, Vec<DimCurve>> = BTreeMap::new();
    for path in found {
        let rel: Vec<String> = path
            .parent()
            .and_then(|p| p.strip_prefix(dir).ok())
            .map(|p| p.iter().map(|c| c.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let (method, task) = match rel.as_slice() {
            [.., m, t] => (m.clone(), t.clone()),
            [m] => (m.clone(), "quality".to_string()),
            [] => ("this run".to_string(), "quality".to_string()),
        };
        let text = read_text(&path)?.unwrap_or_default();
        let lines: Vec<Line> = serde_json::from_str(&text)
            .map_err(|e| invalid(&path, format!("not a dims.json: {e}")).at_line(e.line()))?;
        let mut points: Vec<(usize, MetricValues)> = lines
            .into_iter()
            .map(|l| (l.dim, l.report.overall))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.0));
        out.entry(task)
            .or_default()
            .push(DimCurve { method, points });
    }
    Ok(out)
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> DataError {
    DataError::invalid(path, message.to_string())
}

/// A serde_json error on one line of a JSON-lines file: its "at line 1" would contradict the
/// file's line number in front of it, so only the column is kept.
fn on_line(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => format!("{} (column {})", &text[..i], e.column()),
        None => text,
    }
}

fn read_text(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DataError::io(path, e).into()),
    }
}

/// Calls `each` with the 1-based number, text and value of every non-empty line of a
/// JSON-lines file; `None` when the file is absent.
fn read_jsonl<T>(
    path: &Path,
    each: impl FnOnce(Vec<(usize, &str, Value)>) -> anyhow::Result<T>,
) -> anyhow::Result<Option<T>> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| invalid(path, format!("not JSON: {}", on_line(&e))).at_line(i + 1))?;
        if !v.is_object() {
            return Err(invalid(path, "expected a JSON object")
                .at_line(i + 1)
                .into());
        }
        out.push((i + 1, line, v));
    }
    each(out).map(Some)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| invalid(path, format!("{e}")).at_line(e.line()).into())
}

/// The numeric fields of a step record ([`StepRecord`]).
const STEP_FIELDS: [&str; 6] = ["step", "epoch", "loss", "lr", "grad_norm", "examples_per_s"];

/// Step records and dev evaluations of metrics.jsonl; `None` when the file is absent.
/// Lines of other kinds are skipped, so newer trainers' extra records do not break reports.
fn read_metrics(path: &Path) -> anyhow::Result<Option<Metrics>> {
    read_jsonl(path, |lines| {
        let mut steps = Vec::new();
        let mut dev = Vec::new();
        let mut adversarial = Vec::new();
        /// An adversarial refresh record.
        #[derive(Deserialize)]
        struct AdversarialLine {
            adversarial: RefreshRecord,
        }
        /// A dev record, parsed from the text (a `Value` would sort the metrics by name).
        #[derive(Deserialize)]
        struct DevLine {
            step: u64,
            dev: EvalReport,
        }
        for (line, text, v) in lines {
            let bad = |e: serde_json::Error| invalid(path, on_line(&e)).at_line(line);
            if v.get("adversarial").is_some() {
                let a: AdversarialLine = serde_json::from_str(text).map_err(bad)?;
                adversarial.push(a.adversarial);
            } else if v.get("dev").is_some() {
                let d: DevLine = serde_json::from_str(text).map_err(bad)?;
                dev.push(DevEval {
                    step: d.step,
                    report: d.dev,
                });
            } else if v.get("loss").is_some() {
                // serde_json's type errors do not name the field; the user needs it.
                for f in STEP_FIELDS {
                    if !v.get(f).is_some_and(Value::is_number) {
                        let e = invalid(path, "missing or not a number");
                        return Err(e.at_line(line).field(f).into());
                    }
                }
                steps.push(serde_json::from_str::<StepRecord>(text).map_err(bad)?);
            }
        }
        Ok(Metrics {
            steps,
            dev,
            adversarial,
        })
    })
}

/// What metrics.jsonl holds, by kind of line.
#[derive(Debug, Default)]
struct Metrics {
    steps: Vec<StepRecord>,
    dev: Vec<DevEval>,
    adversarial: Vec<RefreshRecord>,
}

/// eval/dev-step-NNNNNNNN.json files, by step.
fn read_dev_files(eval_dir: &Path) -> anyhow::Result<BTreeMap<u64, EvalReport>> {
    let mut out = BTreeMap::new();
    for path in json_files(eval_dir)? {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let Some(step) = stem.strip_prefix("dev-step-").and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(r) = read_json::<EvalReport>(&path)? {
            out.insert(step, r);
        }
    }
    Ok(out)
}

/// The `*.json` files of a directory, sorted; none when it does not exist.
fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DataError::io(dir, e).into()),
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.map_err(|e| DataError::io(dir, e))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A test report is either a polydense-eval report or a summary that holds one under
/// `report` (as `polydense retrieve` writes).
fn read_system(path: &Path) -> anyhow::Result<EvalReport> {
    #[derive(Deserialize)]
    struct Summary {
        report: EvalReport,
    }
    let text = read_text(path)?
        .ok_or_else(|| anyhow::anyhow!("{}: removed while being read", path.display()))?;
    // Shape first, then the text again into the struct: a `Value` would sort the metrics.
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| invalid(path, format!("not JSON: {e}")).at_line(e.line()))?;
    let parsed = match v.get("report").is_some() && v.get("overall").is_none() {
        true => serde_json::from_str::<Summary>(&text).map(|s| s.report),
        false => serde_json::from_str::<EvalReport>(&text),
    };
    parsed.map_err(|e| {
        invalid(path, e.to_string())
            .hint("expected {\"overall\": {metric: value}, \"per_lang\": {...}}")
            .into()
    })
}

fn read_systems(dir: &Path) -> anyhow::Result<Vec<System>> {
    let mut out = Vec::new();
    for path in json_files(dir)? {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.push(System {
            name,
            report: read_system(&path)?,
        });
    }
    // Weakest first reads as a progression in the bars and tables (BM25, zero-shot,
    // fine-tuned) without the report knowing system names.
    let key = |s: &System| s.report.overall.get("ndcg@10").unwrap_or(f64::NEG_INFINITY);
    out.sort_by(|a, b| key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

fn read_clusters(path: &Path) -> anyhow::Result<Vec<ClusterRun>> {
    let runs = read_jsonl(path, |lines| {
        lines
            .into_iter()
            .map(|(line, _, v)| {
                let step = v.get("step").and_then(Value::as_u64).ok_or_else(|| {
                    invalid(path, "missing or not a count")
                        .at_line(line)
                        .field("step")
                })?;
                let k =
                    match v.get("k") {
                        None | Some(Value::Null) => None,
                        Some(k) => Some(k.as_f64().ok_or_else(|| {
                            invalid(path, "not a number").at_line(line).field("k")
                        })?),
                    };
                let Value::Object(fields) = v else {
                    unreachable!("read_jsonl keeps objects only")
                };
                Ok(ClusterRun { step, k, fields })
            })
            .collect()
    })?;
    Ok(runs.unwrap_or_default())
}

fn read_projection(path: &Path) -> anyhow::Result<Option<Projection>> {
    let Some(v) = read_json::<Value>(path)? else {
        return Ok(None);
    };
    let field = |name: &str, message: &str| invalid(path, message).field(name);
    let points = v
        .get("points")
        .and_then(Value::as_array)
        .ok_or_else(|| field("points", "missing or not an array"))?;
    let points = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let bad = || {
                field(
                    &format!("points[{i}]"),
                    "expected [x, y, cluster, \"lang\"]",
                )
            };
            let a = p.as_array().filter(|a| a.len() >= 3).ok_or_else(bad)?;
            Ok(ProjPoint {
                x: a[0].as_f64().ok_or_else(bad)?,
                y: a[1].as_f64().ok_or_else(bad)?,
                cluster: a[2].as_u64().ok_or_else(bad)?,
                lang: a.get(3).and_then(Value::as_str).unwrap_or("").to_string(),
            })
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    Ok(Some(Projection {
        step: v.get("step").and_then(Value::as_u64),
        k: v.get("k").and_then(Value::as_u64),
        points,
    }))
}

/// Where the mining stats of the run's training file are: RUN_DIR/negatives.stats.json, else
/// the config's `train_file` with `.stats.json` appended, relative to the current directory
/// as the trainer resolves it.
fn stats_candidates(run_dir: &Path, config: Option<&str>) -> Vec<PathBuf> {
    let mut out = vec![run_dir.join("negatives.stats.json")];
    let train_file = config
        .and_then(|c| c.parse::<toml::Table>().ok())
        .and_then(|t| t.get("train_file")?.as_str().map(str::to_string));
    if let Some(f) = train_file.filter(|f| !f.is_empty()) {
        out.push(PathBuf::from(format!("{f}.stats.json")));
    }
    out
}

impl RunInputs {
    /// Reads what the run directory holds; fails on malformed files, and when there is
    /// nothing to report (no training steps, dev or test evaluations).
    pub fn read(run_dir: &Path) -> anyhow::Result<Self> {
        if !run_dir.is_dir() {
            anyhow::bail!("{}: not a directory", run_dir.display());
        }
        let config = read_text(&run_dir.join("config.toml"))?;
        let Metrics {
            steps,
            mut dev,
            adversarial,
        } = read_metrics(&run_dir.join("metrics.jsonl"))?.unwrap_or_default();
        let mut from_files = read_dev_files(&run_dir.join("eval"))?;
        for d in &dev {
            from_files.remove(&d.step);
        }
        dev.extend(
            from_files
                .into_iter()
                .map(|(step, report)| DevEval { step, report }),
        );
        dev.sort_by_key(|d| d.step);
        let systems = read_systems(&run_dir.join("eval").join("test"))?;
        let dims = read_dim_curves(run_dir)?;
        if steps.is_empty() && dev.is_empty() && systems.is_empty() && dims.is_empty() {
            anyhow::bail!(
                "{}: nothing to report: no training steps in metrics.jsonl, no evaluations \
                 in eval/dev-step-*.json or eval/test/*.json and no dims.json of `retrieve \
                 --dims` (is it a run directory of `polydense train`?)",
                run_dir.display()
            );
        }
        let clusters = read_clusters(&run_dir.join("clusters.jsonl"))?;
        let projection = read_projection(&run_dir.join("projection.json"))?;
        let searched = stats_candidates(run_dir, config.as_deref());
        let mut negatives = None;
        for path in &searched {
            if let Some(stats) = read_json::<MineStats>(path)
                .with_context(|| format!("reading the mining stats {}", path.display()))?
            {
                negatives = Some(Negatives {
                    path: path.clone(),
                    stats,
                });
                break;
            }
        }
        Ok(RunInputs {
            run_dir: run_dir.to_path_buf(),
            config,
            steps,
            dev,
            clusters,
            projection,
            systems,
            negatives,
            negatives_searched: searched,
            dims,
            adversarial,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_wrapping_a_report_is_unwrapped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        std::fs::write(
            &p,
            r#"{"model": "m", "report": {"overall": {"ndcg@10": 0.5, "mrr@10": 0.7}, "per_lang": {"de": {"ndcg@10": 0.4}}}}"#,
        )
        .unwrap();
        let r = read_system(&p).unwrap();
        assert_eq!(r.overall.get("ndcg@10"), Some(0.5));
        let order: Vec<&str> = r.overall.0.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(order, ["ndcg@10", "mrr@10"], "the file's order, not sorted");
        assert_eq!(r.per_lang["de"].get("ndcg@10"), Some(0.4));
    }

    #[test]
    fn dev_files_fill_in_what_metrics_lack() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("metrics.jsonl"),
            concat!(
                r#"{"step":1,"epoch":0,"loss":2.0,"lr":1e-5,"grad_norm":1.0,"examples_per_s":3.0}"#,
                "\n",
                r#"{"step":1,"dev":{"overall":{"ndcg@10":0.3},"per_lang":{}}}"#,
                "\n",
                r#"{"step":1,"something_new":true}"#,
                "\n"
            ),
        )
        .unwrap();
        std::fs::create_dir(d.join("eval")).unwrap();
        std::fs::write(
            d.join("eval/dev-step-00000002.json"),
            r#"{"overall":{"ndcg@10":0.4}}"#,
        )
        .unwrap();
        let r = RunInputs::read(d).unwrap();
        assert_eq!(r.steps.len(), 1);
        let dev: Vec<(u64, Option<f64>)> = r
            .dev
            .iter()
            .map(|e| (e.step, e.report.overall.get("ndcg@10")))
            .collect();
        assert_eq!(dev, vec![(1, Some(0.3)), (2, Some(0.4))]);
        assert!(r.negatives.is_none());
        assert_eq!(r.negatives_searched, vec![d.join("negatives.stats.json")]);
    }

    #[test]
    fn a_bad_projection_point_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("projection.json");
        std::fs::write(
            &p,
            r#"{"points": [[0.0, 1.0, 2, "en"], [0.0, "x", 1, "de"]]}"#,
        )
        .unwrap();
        let e = read_projection(&p).unwrap_err().to_string();
        assert!(e.contains("points[1]"), "{e}");
    }

    #[test]
    fn dims_files_become_one_curve_per_method_and_task_and_a_chart() {
        let dir = tempfile::tempdir().unwrap();
        let write = |method: &str, task: &str, ndcg: [f64; 2]| {
            let d = dir.path().join("eval").join(method).join(task);
            std::fs::create_dir_all(&d).unwrap();
            let line = |dim: usize, v: f64| {
                format!(
                    r#"{{"dim": {dim}, "dtype": "f32", "index_bytes": 1, "report": {{"overall": {{"ndcg@10": {v}}}}}}}"#
                )
            };
            std::fs::write(
                d.join("dims.json"),
                format!("[{}, {}]", line(96, ndcg[1]), line(384, ndcg[0])),
            )
            .unwrap();
        };
        write("mrl", "paragraph", [0.7, 0.6]);
        write("smec", "paragraph", [0.7, 0.65]);
        write("smec", "lareqa", [0.5, 0.4]);
        let inputs = RunInputs::read(dir.path()).unwrap();
        assert_eq!(
            inputs.dims.keys().collect::<Vec<_>>(),
            ["lareqa", "paragraph"]
        );
        let par = &inputs.dims["paragraph"];
        assert_eq!(
            par.iter().map(|c| c.method.as_str()).collect::<Vec<_>>(),
            ["mrl", "smec"]
        );
        assert_eq!(par[1].points[0].0, 384);
        assert_eq!(par[1].points[1].1.get("ndcg@10"), Some(0.65));
        let page = crate::report::write_report(dir.path()).unwrap();
        assert!(std::fs::read_to_string(page)
            .unwrap()
            .contains("Quality by dimension"));
        assert!(dir.path().join("plots/dims-paragraph.png").is_file());

        std::fs::write(
            dir.path().join("eval/mrl/paragraph/dims.json"),
            "[{\"dim\": 1}]",
        )
        .unwrap();
        let err = RunInputs::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("mrl/paragraph/dims.json") && err.contains("not a dims.json"),
            "{err}"
        );
    }
}
