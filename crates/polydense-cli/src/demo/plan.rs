//! The demo's stages, in order, as the `polydense` command lines a user would type, with the
//! built-in settings of the default run and of `--tiny`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polydense_data::atomic::write_atomic;
use polydense_data::xquad::{ARTICLE_OF_ID, LANGUAGES};
use polydense_train::{InfoNceConfig, LossConfig, TrainConfig};

use super::devset;
use super::stage::Stage;

/// What distinguishes the default demo from `--tiny`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The under-3-minutes variant: three languages, a few steps.
    pub tiny: bool,
    /// The starting model (an installed name or an HF directory).
    pub model: String,
}

/// Metrics every stage reports.
const METRICS: &str = "ndcg@10,mrr@10,recall@100,map";

impl Settings {
    /// The XQuAD-R languages the demo uses.
    pub fn langs(&self) -> Vec<&'static str> {
        match self.tiny {
            true => vec!["de", "en", "zh"],
            false => LANGUAGES.to_vec(),
        }
    }

    /// Token limit when encoding the test corpus and queries.
    fn max_length(&self) -> usize {
        match self.tiny {
            true => 128,
            false => 256,
        }
    }

    /// The fine-tuning config: a short run of InfoNCE over in-batch and one BM25 negative,
    /// at lr 5e-6 and τ 0.01 (e5 was trained near 0.01): bench/retrieval_quality.md measured
    /// 3e-5 and 0.05 trading the top hit and every one-language task for pooled recall, and
    /// 1e-5 still costing both a little; 5e-6 at τ 0.01 keeps them at zero-shot's level.
    pub fn train_config(&self, out: &Path) -> TrainConfig {
        let (steps, batch, every) = match self.tiny {
            true => (4, 8, 4),
            false => (40, 16, 10),
        };
        TrainConfig {
            model: self.model.clone(),
            train_file: out.join("negatives/train.jsonl"),
            out_dir: out.join("train"),
            dev_dir: out.join("dev"),
            dev_split: "dev".into(),
            loss: LossConfig::Infonce(InfoNceConfig { temperature: 0.01 }),
            negatives: 1,
            batch_size: batch,
            max_query_length: 32,
            max_passage_length: 128,
            max_steps: steps,
            lr: 5e-6,
            warmup_steps: steps / 8,
            eval_every: every,
            checkpoint_every: every,
            keep_checkpoints: 1,
            seed: 42,
            ..TrainConfig::default()
        }
    }

    /// The mining config: BM25 top-100 without the positives, 4 sampled per query, copies
    /// of the positive removed and likely false negatives (above 95% of the positive's
    /// score) dropped.
    fn mine_config(&self, data: &Path, out: &Path) -> String {
        format!(
            "dataset = {data:?}\nsplit = \"train\"\noutput = {output:?}\nseed = 13\nmin_negatives = 1\n\n\
             [[miner]]\nkind = \"bm25\"\nname = \"bm25\"\ndepth = 100\nfrom = 0\nn = 4\nsampling = \"random\"\nk1 = 0.9\nb = 0.4\n\n\
             [[filter]]\nkind = \"dedup\"\nby_id = true\nby_text = true\n\n\
             [[filter]]\nkind = \"false_negative\"\nmode = \"relative\"\nmargin = 0.95\nreference = \"max\"\n",
            data = data.display().to_string(),
            output = out.join("negatives/train.jsonl").display().to_string(),
        )
    }
}

/// A stage with the commands that make its outputs.
pub struct Step {
    /// What the stage reads and writes.
    pub stage: Stage,
    /// `polydense` argument lists, run in order.
    pub commands: Vec<Vec<String>>,
    /// The commands to continue an interrupted run, when they differ (training resumes).
    pub resume: Option<Vec<Vec<String>>>,
    /// Work done in-process after the commands.
    pub after: Option<Box<dyn Fn() -> Result<()>>>,
}

impl Step {
    /// The commands for a fresh start or for continuing an interrupted one.
    pub fn commands(&self, interrupted: bool) -> Vec<Vec<String>> {
        match (&self.resume, interrupted) {
            (Some(r), true) => r.clone(),
            _ => self.commands.clone(),
        }
    }
}

fn argv(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<String> {
    parts
        .iter()
        .map(|p| p.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Writes a built-in config file, leaving it untouched when the text is the same.
fn write_config(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().expect("config paths have a parent"))?;
    write_atomic(path, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// The stages of a demo into `out`.
pub fn stages(out: &Path, s: &Settings) -> Result<Vec<Step>> {
    let xquad = polydense_data::paths::data_dir()?.join("xquad-r");
    let model_dir = polydense_model::resolve(&s.model)?;
    let data = out.join("data/all");
    let corpus = data.join("corpus.jsonl");
    let queries = data.join("queries.jsonl");
    let test_qrels = data.join("qrels/test.tsv");
    let max_length = s.max_length().to_string();
    let langs = s.langs().join(",");

    let mine_toml = out.join("configs/mine-bm25.toml");
    write_config(&mine_toml, &s.mine_config(&data, out))?;
    let train_config = s.train_config(out);
    let train_toml = out.join("configs/train.toml");
    write_config(&train_toml, &train_config.to_toml())?;

    let retrieve = |model: &Path, dir: &Path| {
        argv(&[
            &"retrieve",
            &"--model",
            &model,
            &"--data",
            &data,
            &"--split",
            &"test",
            &"--k",
            &"100",
            &"--metrics",
            &METRICS,
            &"--max-length",
            &max_length,
            &"--first-hit",
            &"--group",
            &ARTICLE_OF_ID,
            &"--out",
            &dir,
        ])
    };
    let bm25 = out.join("bm25");
    let train = out.join("train");
    let test_evals = train.join("eval/test");
    let stats = out.join("negatives/train.jsonl.stats.json");

    let mut steps = vec![
        Step {
            stage: Stage {
                name: "data",
                title: format!(
                    "XQuAD-R paragraph task, {} languages pooled",
                    s.langs().len()
                ),
                inputs: s
                    .langs()
                    .iter()
                    .map(|l| xquad.join(format!("{l}.json")))
                    .collect(),
                settings: vec![],
                outputs: vec![out.join("data")],
            },
            commands: vec![argv(&[
                &"data",
                &"prepare",
                &"xquad-r",
                &"--task",
                &"paragraph",
                &"--no-per-language",
                &"--langs",
                &langs,
                &"--out",
                &out.join("data"),
            ])],
            resume: None,
            after: None,
        },
        Step {
            stage: Stage {
                name: "bm25",
                title: "BM25 baseline on the test queries".into(),
                inputs: vec![corpus.clone(), queries.clone(), test_qrels.clone()],
                settings: vec![],
                outputs: vec![bm25.clone()],
            },
            commands: vec![
                argv(&[
                    &"bm25",
                    &"index",
                    &"--corpus",
                    &corpus,
                    &"--index",
                    &bm25.join("index"),
                ]),
                argv(&[
                    &"bm25",
                    &"search",
                    &"--index",
                    &bm25.join("index"),
                    &"--queries",
                    &queries,
                    &"--k",
                    &"100",
                    &"--out",
                    &bm25.join("run.trec"),
                ]),
                argv(&[
                    &"eval",
                    &"--qrels",
                    &test_qrels,
                    &"--run",
                    &bm25.join("run.trec"),
                    &"--per-lang",
                    &queries,
                    &"--metrics",
                    &METRICS,
                    &"--out",
                    &bm25.join("metrics.json"),
                ]),
            ],
            resume: None,
            after: None,
        },
        Step {
            stage: Stage {
                name: "zero-shot",
                title: format!("zero-shot {} on the test queries", s.model),
                inputs: vec![
                    corpus.clone(),
                    queries.clone(),
                    test_qrels.clone(),
                    model_dir.clone(),
                ],
                settings: vec![],
                outputs: vec![
                    out.join("zero-shot/metrics.json"),
                    out.join("zero-shot/run.trec"),
                ],
            },
            commands: vec![retrieve(&model_dir, &out.join("zero-shot"))],
            resume: None,
            after: None,
        },
        Step {
            stage: Stage {
                name: "negatives",
                title: "BM25 hard negatives for the train queries, false negatives filtered".into(),
                inputs: vec![
                    mine_toml.clone(),
                    corpus.clone(),
                    queries.clone(),
                    data.join("qrels/train.tsv"),
                ],
                settings: vec![],
                outputs: vec![out.join("negatives")],
            },
            commands: vec![argv(&[&"mine", &"--config", &mine_toml])],
            resume: None,
            after: None,
        },
    ];
    let (dev_from, dev_to) = (data.clone(), out.join("dev"));
    steps.push(Step {
        stage: Stage {
            name: "dev",
            title: "dev set: the dev articles' paragraphs, for evaluation during training".into(),
            inputs: vec![corpus.clone(), queries.clone(), data.join("qrels/dev.tsv")],
            settings: vec![],
            outputs: vec![out.join("dev")],
        },
        commands: vec![],
        resume: None,
        after: Some(Box::new(move || devset::write(&dev_from, &dev_to))),
    });
    steps.push(Step {
        stage: Stage {
            name: "train",
            title: format!(
                "fine-tune {}: {} steps of {} queries",
                s.model, train_config.max_steps, train_config.batch_size
            ),
            inputs: vec![
                train_toml.clone(),
                out.join("negatives/train.jsonl"),
                out.join("dev"),
                model_dir,
            ],
            settings: vec![],
            outputs: vec![train.clone()],
        },
        commands: vec![argv(&[&"train", &"--config", &train_toml])],
        resume: Some(vec![argv(&[
            &"train",
            &"--config",
            &train_toml,
            &"--resume",
        ])]),
        after: None,
    });
    steps.push(Step {
        stage: Stage {
            name: "fine-tuned",
            title: "the fine-tuned model on the test queries".into(),
            inputs: vec![
                corpus.clone(),
                queries.clone(),
                test_qrels.clone(),
                train.join("model"),
            ],
            settings: vec![],
            outputs: vec![
                out.join("fine-tuned/metrics.json"),
                out.join("fine-tuned/run.trec"),
            ],
        },
        commands: vec![retrieve(&train.join("model"), &out.join("fine-tuned"))],
        resume: None,
        after: None,
    });
    let compare = out.join("compare.json");
    steps.push(Step {
        stage: Stage {
            name: "compare",
            title: "paired randomization test: fine-tuned against zero-shot".into(),
            inputs: vec![
                out.join("fine-tuned/run.trec"),
                out.join("zero-shot/run.trec"),
                test_qrels.clone(),
            ],
            settings: vec![],
            outputs: vec![compare.clone()],
        },
        commands: vec![argv(&[
            &"eval",
            &"compare",
            &out.join("fine-tuned/run.trec"),
            &out.join("zero-shot/run.trec"),
            &"--qrels",
            &test_qrels,
            &"--metrics",
            &METRICS,
            &"--out",
            &compare,
        ])],
        resume: None,
        after: None,
    });
    let sources: Vec<(PathBuf, &str)> = vec![
        (bm25.join("metrics.json"), "bm25"),
        (out.join("zero-shot/metrics.json"), "zero-shot"),
        (out.join("fine-tuned/metrics.json"), "fine-tuned"),
    ];
    let mut report_inputs: Vec<PathBuf> = sources.iter().map(|(p, _)| p.clone()).collect();
    report_inputs.extend([train.join("metrics.jsonl"), stats.clone()]);
    let (evals, stats_copy) = (test_evals.clone(), train.join("negatives.stats.json"));
    steps.push(Step {
        stage: Stage {
            name: "report",
            title: "report".into(),
            inputs: report_inputs,
            settings: vec![],
            outputs: vec![train.join("report.html")],
        },
        commands: vec![],
        resume: None,
        after: Some(Box::new(move || {
            std::fs::create_dir_all(&evals)?;
            for (from, name) in &sources {
                copy(from, &evals.join(format!("{name}.json")))?;
            }
            copy(&stats, &stats_copy)?;
            super::invoke(&argv(&[&"report", &train]))
        })),
    });
    Ok(steps)
}

/// Copies atomically, so an interrupted copy never leaves half a file.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_atomic(to, |w| w.write_all(&bytes)).with_context(|| format!("writing {}", to.display()))
}
