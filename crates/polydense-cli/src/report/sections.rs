//! What each section of the report says, given what the run directory holds; a missing
//! part becomes a note saying what file would have filled it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::environment;
use super::html::{Cell, Page};
use super::inputs::{RunInputs, System};
use super::plots::{self, Png};

/// The metrics the test comparison plots, when the systems report them.
const TEST_METRICS: [&str; 2] = ["ndcg@10", "mrr@10"];

/// A metric value as the tables show it.
fn fmt_metric(v: f64) -> String {
    format!("{v:.4}")
}

/// A JSON value of clusters.jsonl as a table cell.
fn json_cell(v: Option<&Value>) -> Cell {
    match v {
        None | Some(Value::Null) => Cell::Text(String::new()),
        Some(Value::Number(n)) => Cell::Num(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) if f.abs() >= 100.0 => format!("{f:.1}"),
            (_, _, Some(f)) => format!("{f:.4}"),
            _ => n.to_string(),
        }),
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(v) => Cell::Text(v.to_string()),
    }
}

/// The dev metric to plot: nDCG@10 when evaluated, else the config's `eval_metric`, else
/// the first one the evaluations list.
fn dev_metric_name(inputs: &RunInputs) -> Option<String> {
    let first = &inputs.dev.first()?.report.overall;
    if first.get("ndcg@10").is_some() {
        return Some("ndcg@10".into());
    }
    let configured = inputs
        .config
        .as_deref()
        .and_then(|c| c.parse::<toml::Table>().ok())
        .and_then(|t| t.get("eval_metric")?.as_str().map(str::to_string));
    match configured {
        Some(m) if first.get(&m).is_some() => Some(m),
        _ => first.0.first().map(|(n, _)| n.clone()),
    }
}

/// Headline numbers of the run.
pub fn summary(page: &mut Page, inputs: &RunInputs) {
    page.section("summary", "Summary");
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(vec![Cell::Text(k.into()), Cell::Text(v)]);
    row("run directory", inputs.run_dir.display().to_string());
    if let (Some(first), Some(last)) = (inputs.steps.first(), inputs.steps.last()) {
        let tail = &inputs.steps[inputs.steps.len().saturating_sub(20)..];
        let mean_tail = tail.iter().map(|s| s.loss).sum::<f64>() / tail.len() as f64;
        let rate =
            inputs.steps.iter().map(|s| s.examples_per_s).sum::<f64>() / inputs.steps.len() as f64;
        row(
            "training steps",
            format!(
                "{} logged (steps {}–{}), {} epoch(s)",
                inputs.steps.len(),
                first.step,
                last.step,
                last.epoch + 1
            ),
        );
        row(
            "loss",
            format!(
                "{:.4} at the first step, {:.4} mean of the last {}",
                first.loss,
                mean_tail,
                tail.len()
            ),
        );
        row(
            "throughput",
            format!("{rate:.1} queries/s (mean over steps)"),
        );
    }
    if let Some(metric) = dev_metric_name(inputs) {
        let best = inputs
            .dev
            .iter()
            .filter_map(|d| Some((d.step, d.report.overall.get(&metric)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((step, v)) = best {
            row(
                &format!("best dev {metric}"),
                format!(
                    "{} at step {step} ({} evaluations)",
                    fmt_metric(v),
                    inputs.dev.len()
                ),
            );
        }
    }
    if let Some(best) = inputs.systems.last() {
        if let Some(v) = best.report.overall.get("ndcg@10") {
            row(
                "best test nDCG@10",
                format!(
                    "{} ({}, of {} systems)",
                    fmt_metric(v),
                    best.name,
                    inputs.systems.len()
                ),
            );
        }
    }
    if !inputs.clusters.is_empty() {
        row("clustering runs", inputs.clusters.len().to_string());
    }
    page.table(&["".into(), "".into()], &rows);
}

/// The resolved config, verbatim.
pub fn config(page: &mut Page, inputs: &RunInputs) {
    page.section("config", "Configuration");
    match &inputs.config {
        Some(c) => page.pre(c),
        None => page.note("No config.toml in the run directory."),
    }
}

/// Loss, learning rate, dev metric and the number of clusters over steps.
pub fn training(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    page.section("training", "Training");
    if inputs.steps.is_empty() {
        page.note("No training steps: metrics.jsonl is missing or holds no step records.");
    } else {
        let loss = plots::training_loss(&inputs.steps, &inputs.clusters)?;
        page.figures(&[&loss]);
        out.push(loss);
        let lr = plots::learning_rate(&inputs.steps)?;
        page.figures(&[&lr]);
        out.push(lr);
        if let Some(load) = plots::expert_load(&inputs.steps)? {
            page.figures(&[&load]);
            out.push(load);
        }
    }
    match dev_metric_name(inputs) {
        Some(metric) => {
            let dev = plots::dev_metric(&inputs.dev, &metric)?;
            page.figures(&[&dev]);
            out.push(dev);
        }
        None => page.note(
            "No dev evaluations (metrics.jsonl has no dev records and eval/ no dev-step-*.json): \
             the run had no dev set or eval_every = 0.",
        ),
    }
    Ok(())
}

/// Quality against embedding dimension, one chart per task, one curve per method.
pub fn dims(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    if inputs.dims.is_empty() {
        return Ok(());
    }
    page.section("dims", "Quality by dimension");
    for (task, curves) in &inputs.dims {
        let png = plots::quality_by_dim(task, curves, "ndcg@10")?;
        page.figures(&[&png]);
        out.push(png);
    }
    Ok(())
}

/// Clustering runs of clustered training: k over steps and their table.
/// The AXL-ICT loop: what each refresh kept and dropped, and kept negatives of each kind.
pub fn adversarial(page: &mut Page, inputs: &RunInputs) {
    if inputs.adversarial.is_empty() {
        return;
    }
    page.section("adversarial", "Adversarial negatives (AXL-ICT)");
    page.para(
        "At each clustering refresh the generated negatives were re-scored with the model of \
         that step (m = sim(q, neg) − sim(q, pos)) and the adversarial rule re-applied; a step \
         draws only what the last refresh kept.",
    );
    let kinds: BTreeSet<&String> = inputs
        .adversarial
        .iter()
        .flat_map(|r| r.kept.keys())
        .collect();
    let reasons: BTreeSet<&String> = inputs
        .adversarial
        .iter()
        .flat_map(|r| r.dropped.keys())
        .collect();
    let mut header: Vec<String> = ["step", "epoch", "judged"].map(String::from).to_vec();
    header.extend(kinds.iter().map(|k| format!("kept {k}")));
    header.extend(reasons.iter().map(|r| format!("dropped: {r}")));
    header.extend(["keep fraction", "margin", "mean kept m", "seconds"].map(String::from));
    let num = |v: String| Cell::Num(v);
    let rows: Vec<Vec<Cell>> = inputs
        .adversarial
        .iter()
        .map(|r| {
            let mut row = vec![
                num(r.step.to_string()),
                num(r.epoch.to_string()),
                num(r.judged.to_string()),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| num(r.kept.get(*k).copied().unwrap_or(0).to_string())),
            );
            row.extend(
                reasons
                    .iter()
                    .map(|k| num(r.dropped.get(*k).copied().unwrap_or(0).to_string())),
            );
            row.push(num(format!("{:.3}", r.keep_fraction)));
            row.push(num(format!("{:.3}", r.margin)));
            row.push(num(r
                .mean_kept_margin
                .map_or("–".into(), |m| format!("{m:.4}"))));
            row.push(num(format!("{:.1}", r.seconds)));
            row
        })
        .collect();
    page.table(&header, &rows);
    if let Some(last) = inputs.adversarial.last() {
        page.subheading("Kept negatives of the last refresh, by kind");
        let header = ["kind", "query", "edit", "m"].map(String::from);
        let rows: Vec<Vec<Cell>> = last
            .examples
            .iter()
            .map(|(kind, query, edit, m)| {
                vec![
                    Cell::Text(kind.clone()),
                    Cell::Text(query.clone()),
                    Cell::Text(edit.clone()),
                    num(format!("{m:.4}")),
                ]
            })
            .collect();
        page.table(&header, &rows);
    }
}

pub fn clustering(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    page.section("clustering", "Clustering");
    if inputs.clusters.is_empty() {
        page.note("No clusters.jsonl: the run did not use clustered training.");
        return Ok(());
    }
    if inputs.clusters.iter().any(|c| c.k.is_some()) {
        let last = inputs.steps.last().map_or(0, |s| s.step);
        let k = plots::cluster_k(&inputs.clusters, last)?;
        page.figures(&[&k]);
        out.push(k);
    }
    // Known columns first, then whatever else the lines hold, in name order.
    let lead = ["step", "epoch", "k", "reason"];
    let mut columns: Vec<String> = lead
        .iter()
        .filter(|c| inputs.clusters.iter().any(|r| r.fields.contains_key(**c)))
        .map(|c| c.to_string())
        .collect();
    let mut rest: Vec<String> = inputs
        .clusters
        .iter()
        .flat_map(|r| r.fields.keys().cloned())
        .filter(|k| !lead.contains(&k.as_str()))
        .collect();
    rest.sort();
    rest.dedup();
    columns.extend(rest);
    let rows: Vec<Vec<Cell>> = inputs
        .clusters
        .iter()
        .map(|r| columns.iter().map(|c| json_cell(r.fields.get(c))).collect())
        .collect();
    page.table(&columns, &rows);
    Ok(())
}

/// The embedding projection, by cluster and by language.
pub fn projection(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    page.section("projection", "Embedding projection");
    match &inputs.projection {
        Some(p) if !p.points.is_empty() => {
            let by_cluster = plots::projection_by_cluster(p)?;
            let by_lang = plots::projection_by_lang(p)?;
            page.figures(&[&by_cluster, &by_lang]);
            out.push(by_cluster);
            out.push(by_lang);
        }
        Some(_) => page.note("projection.json holds no points."),
        None => page.note("No projection.json: the run did not use clustered training."),
    }
    Ok(())
}

/// A metric's value per system in one row, the best in bold.
fn metric_row(label: &str, systems: &[System], get: impl Fn(&System) -> Option<f64>) -> Vec<Cell> {
    let vals: Vec<Option<f64>> = systems.iter().map(&get).collect();
    let best = vals
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    std::iter::once(Cell::Text(label.into()))
        .chain(vals.iter().map(|v| match v {
            Some(v) if *v == best && systems.len() > 1 => Cell::Best(fmt_metric(*v)),
            Some(v) => Cell::Num(fmt_metric(*v)),
            None => Cell::Text("–".into()),
        }))
        .collect()
}

/// Test-set comparison of the systems in eval/test/.
pub fn test(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    page.section("test", "Test-set comparison");
    let systems = &inputs.systems;
    if systems.is_empty() {
        page.note("No eval/test/*.json: no systems were evaluated on the test split.");
        return Ok(());
    }
    for metric in TEST_METRICS {
        match plots::system_bars(systems, metric)? {
            Some(png) => {
                page.figures(&[&png]);
                out.push(png);
            }
            None => page.note(&format!("No system reports {metric}.")),
        }
    }
    page.subheading("Overall");
    let mut metrics: Vec<String> = Vec::new();
    for s in systems {
        for (m, _) in &s.report.overall.0 {
            if !metrics.contains(m) {
                metrics.push(m.clone());
            }
        }
    }
    let header: Vec<String> = std::iter::once("metric".to_string())
        .chain(systems.iter().map(|s| s.name.clone()))
        .collect();
    let rows: Vec<Vec<Cell>> = metrics
        .iter()
        .map(|m| metric_row(m, systems, |s| s.report.overall.get(m)))
        .collect();
    page.table(&header, &rows);
    first_hits(page, systems);
    let mut langs: Vec<&String> = systems
        .iter()
        .flat_map(|s| s.report.per_lang.keys())
        .collect();
    langs.sort();
    langs.dedup();
    if langs.is_empty() {
        page.note("The reports have no per-language means (evaluated without a language map).");
        return Ok(());
    }
    for metric in metrics
        .iter()
        .filter(|m| TEST_METRICS.contains(&m.as_str()))
    {
        page.subheading(&format!("{metric} per language"));
        let header: Vec<String> = std::iter::once("language".to_string())
            .chain(systems.iter().map(|s| s.name.clone()))
            .collect();
        let rows: Vec<Vec<Cell>> = langs
            .iter()
            .map(|l| {
                metric_row(l, systems, |s| {
                    s.report.per_lang.get(*l).and_then(|v| v.get(metric))
                })
            })
            .collect();
        page.table(&header, &rows);
    }
    Ok(())
}

/// What each system ranks first, for the systems evaluated with `--first-hit`: a model can
/// gain recall while losing its top hit, or rank another language's wrong paragraph first.
fn first_hits(page: &mut Page, systems: &[System]) {
    let with: Vec<(&str, &polydense_eval::FirstHitCounts)> = systems
        .iter()
        .filter_map(|s| Some((s.name.as_str(), &s.report.first_hit.as_ref()?.overall)))
        .collect();
    if with.is_empty() {
        return;
    }
    page.subheading("First hit of each judged query");
    let header: Vec<String> = std::iter::once("first hit".to_string())
        .chain(with.iter().map(|(n, _)| n.to_string()))
        .collect();
    type Get = fn(&polydense_eval::FirstHitCounts) -> usize;
    let mut kinds: Vec<(&str, Get)> = vec![
        ("relevant, query's language", |c| c.relevant_same_lang),
        ("relevant, another language", |c| c.relevant_other_lang),
        ("wrong, query's language", |c| c.wrong_same_lang),
        ("wrong, another language", |c| c.wrong_other_lang),
    ];
    if with
        .iter()
        .any(|(_, c)| c.wrong_same_group + c.wrong_other_group > 0)
    {
        kinds.push(("wrong, same group", |c| c.wrong_same_group));
        kinds.push(("wrong, another group", |c| c.wrong_other_group));
    }
    let rows: Vec<Vec<Cell>> = kinds
        .iter()
        .map(|(name, get)| {
            std::iter::once(Cell::Text(name.to_string()))
                .chain(with.iter().map(|(_, c)| {
                    Cell::Num(format!(
                        "{} ({:.1}%)",
                        get(c),
                        100.0 * get(c) as f64 / c.queries.max(1) as f64
                    ))
                }))
                .collect()
        })
        .collect();
    page.table(&header, &rows);
}

/// The mining stats of the training file: counts and score histograms.
pub fn negatives(page: &mut Page, inputs: &RunInputs, out: &mut Vec<Png>) -> anyhow::Result<()> {
    page.section("negatives", "Hard negatives");
    let Some(n) = &inputs.negatives else {
        let looked: Vec<String> = inputs
            .negatives_searched
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        page.note(&format!(
            "No mining stats found (looked for {}).",
            looked.join(" and ")
        ));
        return Ok(());
    };
    let s = &n.stats;
    page.para(&format!(
        "From {}: {} training examples from {} queries, {:.2} negatives per example on \
         average ({} asked for).",
        n.path.display(),
        s.examples,
        s.queries,
        s.negatives_per_query.mean,
        s.requested_per_query
    ));
    let mut sources: Vec<&String> = s.proposed.keys().chain(s.kept.keys()).collect();
    sources.sort();
    sources.dedup();
    let num =
        |m: &BTreeMap<String, u64>, k: &str| Cell::Num(m.get(k).copied().unwrap_or(0).to_string());
    let rows: Vec<Vec<Cell>> = sources
        .iter()
        .map(|src| {
            vec![
                Cell::Text(src.to_string()),
                num(&s.proposed, src),
                Cell::Num(
                    s.dropped_scores
                        .get(*src)
                        .map_or(0, |h| h.count)
                        .to_string(),
                ),
                num(&s.not_sampled, src),
                num(&s.kept, src),
            ]
        })
        .collect();
    page.table(
        &[
            "source".into(),
            "proposed".into(),
            "dropped as false negatives".into(),
            "over quota".into(),
            "kept".into(),
        ],
        &rows,
    );
    if !s.dropped.is_empty() {
        let rows: Vec<Vec<Cell>> = s
            .dropped
            .iter()
            .flat_map(|(filter, reasons)| {
                reasons.iter().map(move |(reason, count)| {
                    vec![
                        Cell::Text(filter.clone()),
                        Cell::Text(reason.clone()),
                        Cell::Num(count.to_string()),
                    ]
                })
            })
            .collect();
        page.table(&["filter".into(), "reason".into(), "dropped".into()], &rows);
    }
    for (source, kept) in &s.negative_scores {
        let png = plots::negative_scores(source, kept, s.dropped_scores.get(source))?;
        page.figures(&[&png]);
        out.push(png);
    }
    Ok(())
}

/// Program version and machine.
pub fn environment(page: &mut Page) {
    page.section("environment", "Environment");
    let rows: Vec<Vec<Cell>> = environment::facts()
        .into_iter()
        .map(|(k, v)| vec![Cell::Text(k), Cell::Text(v)])
        .collect();
    page.table(&["".into(), "".into()], &rows);
}
