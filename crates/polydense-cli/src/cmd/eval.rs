//! `polydense eval`: score a TREC run against qrels (overall and per language), or compare
//! two runs with a paired randomization test.

use super::first_hit::{Evaluation, FirstHitArgs};
use anyhow::{bail, Context, Result};
use polydense_data::atomic::write_atomic;
use polydense_data::qrels::read_any;
use polydense_data::Qrels;
use polydense_eval::{
    comparison_table, evaluate_run_file, first_hit_table, parse_metrics, randomization_test,
    randomization_test_per_lang, read_query_langs, EvalOptions, FileScores, MissingQueries,
    PerQuery, Report, TestOptions, DEFAULT_METRICS,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Flags of `polydense eval`: scoring flags, or the `compare` subcommand.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Metrics are exactly trec_eval's (pytrec_eval's): ties in score are broken by \
                  docid in descending order, the run's rank column is ignored, and a grade >= 1 \
                  is relevant."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    #[command(flatten)]
    pub score: ScoreArgs,
}

/// Subcommands of `polydense eval`.
#[derive(clap::Subcommand)]
pub enum EvalCommand {
    /// Compare two runs on the same qrels: mean difference and a two-sided paired
    /// randomization test p-value per metric.
    Compare(CompareArgs),
}

/// Flags for scoring one run.
#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Relevance judgements: TREC qrels (`qid 0 docid grade`) or BEIR qrels TSV
    /// (`query-id corpus-id score`), told apart by the first line; .gz is fine. A grade
    /// of 1 or more is relevant; nDCG uses the grade as the gain.
    #[arg(long, value_name = "QRELS", required = true)]
    pub qrels: Option<PathBuf>,
    /// The run to score, in TREC run format (`qid Q0 docid rank score tag`; .gz is fine).
    #[arg(long, value_name = "RUN", required = true)]
    pub run: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// A BEIR queries.jsonl whose `lang` fields split the scores into one row per language
    /// (queries without `lang` report under "und").
    #[arg(long, value_name = "QUERIES_JSONL")]
    pub per_lang: Option<PathBuf>,
    #[command(flatten)]
    pub first_hit: FirstHitArgs,
    /// The BEIR corpus.jsonl whose `lang` fields give the documents' languages for
    /// --first-hit.
    #[arg(long, value_name = "CORPUS_JSONL", requires = "first_hit")]
    pub corpus: Option<PathBuf>,
}

/// Flags shared by scoring and comparing.
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Comma-separated metrics: ndcg@k, mrr@k (or mrr), recall@k, map (or map@k), p@k,
    /// success@k. trec_eval names work too: ndcg_cut_10, recall_100, P_10, recip_rank.
    #[arg(long, value_name = "LIST", default_value = DEFAULT_METRICS)]
    pub metrics: String,
    /// Count queries that the qrels judge but the run lacks as 0 on every metric, as
    /// `trec_eval -c` does. By default they are left out, as pytrec_eval and BEIR do.
    #[arg(long)]
    pub missing_as_zero: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON to this file (atomically: a partial file never appears).
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
}

/// Flags of `polydense eval compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Run A, in TREC run format; differences are reported as A - B.
    #[arg(value_name = "RUN_A")]
    pub run_a: PathBuf,
    /// Run B, in TREC run format.
    #[arg(value_name = "RUN_B")]
    pub run_b: PathBuf,
    /// Relevance judgements (TREC or BEIR layout), shared by both runs.
    #[arg(long, value_name = "QRELS")]
    pub qrels: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of random sign flips in the randomization test; the smallest reachable p-value
    /// is 1 / (trials + 1).
    #[arg(long, value_name = "N", default_value_t = TestOptions::default().trials)]
    pub trials: usize,
    /// Seed of the randomization test, so that p-values are reproducible.
    #[arg(long, value_name = "S", default_value_t = TestOptions::default().seed)]
    pub seed: u64,
    /// A BEIR queries.jsonl whose `lang` fields add one test per language.
    #[arg(long, value_name = "QUERIES_JSONL")]
    pub per_lang: Option<PathBuf>,
}

/// Runs `polydense eval`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Some(EvalCommand::Compare(c)) => compare(c),
        None => score(args.score),
    }
}

fn options(common: &CommonArgs) -> EvalOptions {
    EvalOptions {
        missing: if common.missing_as_zero {
            MissingQueries::Zero
        } else {
            MissingQueries::Skip
        },
    }
}

fn score(args: ScoreArgs) -> Result<()> {
    let metrics = parse_metrics(&args.common.metrics)?;
    let qrels_path = args.qrels.expect("clap requires --qrels");
    let run_path = args.run.expect("clap requires --run");
    let qrels = read_any(&qrels_path)?;
    let scores = score_file(&qrels, &run_path, &metrics, &args.common)?;
    let langs = match &args.per_lang {
        Some(path) => {
            let langs = read_query_langs(path)?;
            let unknown = scores
                .values
                .keys()
                .filter(|q| !langs.contains_key(*q))
                .count();
            if unknown > 0 {
                tracing::warn!(
                    "{unknown} evaluated query id(s) have no `lang` in {}; they report under \"und\"",
                    path.display()
                );
            }
            Some(langs)
        }
        None => None,
    };
    let report = Report::new(&scores, langs.as_ref());
    let first_hit = match args.first_hit.first_hit {
        false => None,
        true => {
            let (Some(_), Some(corpus)) = (&args.per_lang, &args.corpus) else {
                bail!(
                    "--first-hit needs --per-lang QUERIES_JSONL and --corpus CORPUS_JSONL \
                     for the languages of the queries and the documents"
                );
            };
            let run = polydense_data::trec::read_run(&run_path)?;
            let doc_langs = read_query_langs(corpus)?;
            let query_langs = langs.clone().unwrap_or_default();
            if doc_langs.is_empty() {
                tracing::warn!("{} gives no document a `lang`", corpus.display());
            }
            args.first_hit
                .analyse(&qrels, &run, &query_langs, &doc_langs)
        }
    };
    let out = Evaluation {
        report: &report,
        first_hit: first_hit.as_ref(),
    };
    emit(&out, &args.common, || {
        let mut text = report.to_table();
        if let Some(f) = &first_hit {
            text += &first_hit_table(f);
        }
        text
    })
}

/// Scores one run file, refusing an evaluation of nothing and saying which queries were
/// left out and why.
fn score_file(
    qrels: &Qrels,
    run_path: &Path,
    metrics: &[polydense_eval::Metric],
    common: &CommonArgs,
) -> Result<PerQuery> {
    let FileScores { scores, run_qids } =
        evaluate_run_file(qrels, run_path, metrics, &options(common))
            .with_context(|| format!("evaluating {}", run_path.display()))?;
    let judged_in_run = run_qids.iter().filter(|q| qrels.contains_key(*q)).count();
    if judged_in_run == 0 {
        bail!(
            "no query of {} is judged in the qrels (hint: the run and the qrels must come \
             from the same dataset and split)",
            run_path.display()
        );
    }
    let unjudged = run_qids.len() - judged_in_run;
    if unjudged > 0 {
        tracing::warn!(
            "ignored {unjudged} query id(s) of {} that the qrels do not judge",
            run_path.display()
        );
    }
    let missing = qrels.len() - judged_in_run;
    if missing > 0 {
        if common.missing_as_zero {
            tracing::info!("{missing} judged query id(s) missing from the run count as 0");
        } else {
            tracing::warn!(
                "left out {missing} judged query id(s) missing from the run \
                 (--missing-as-zero counts them as 0, like trec_eval -c)"
            );
        }
    }
    Ok(scores)
}

/// Prints JSON or a table, and writes the JSON file when asked.
fn emit<T: Serialize>(
    value: &T,
    common: &CommonArgs,
    table: impl FnOnce() -> String,
) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    if let Some(out) = &common.out {
        write_atomic(out, |w| writeln!(w, "{json}"))?;
    }
    let mut stdout = std::io::stdout().lock();
    if common.json {
        writeln!(stdout, "{json}")?;
    } else {
        write!(stdout, "{}", table())?;
    }
    Ok(())
}

/// The JSON of `polydense eval compare`.
#[derive(Serialize)]
struct CompareOutput<'a> {
    run_a: &'a Path,
    run_b: &'a Path,
    trials: usize,
    seed: u64,
    comparisons: Vec<polydense_eval::Comparison>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    per_lang: BTreeMap<String, Vec<polydense_eval::Comparison>>,
}

fn compare(args: CompareArgs) -> Result<()> {
    let metrics = parse_metrics(&args.common.metrics)?;
    if args.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let qrels = read_any(&args.qrels)?;
    let a = score_file(&qrels, &args.run_a, &metrics, &args.common)?;
    let b = score_file(&qrels, &args.run_b, &metrics, &args.common)?;
    let test = TestOptions {
        trials: args.trials,
        seed: args.seed,
    };
    let comparisons = randomization_test(&a, &b, &test)?;
    let per_lang = match &args.per_lang {
        Some(q) => randomization_test_per_lang(&a, &b, &read_query_langs(q)?, &test)?,
        None => BTreeMap::new(),
    };
    let out = CompareOutput {
        run_a: &args.run_a,
        run_b: &args.run_b,
        trials: args.trials,
        seed: args.seed,
        comparisons,
        per_lang,
    };
    emit(&out, &args.common, || {
        let mut text = format!(
            "A = {}\nB = {}\n{}",
            args.run_a.display(),
            args.run_b.display(),
            comparison_table(&out.comparisons),
        );
        for (lang, rows) in &out.per_lang {
            text += &format!("\n[{lang}]\n{}", comparison_table(rows));
        }
        text + &format!(
            "paired randomization test, two-sided, {} trials, seed {}\n",
            args.trials, args.seed
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/eval");

    #[test]
    fn parses_score_and_compare_forms() {
        let cli = Cli::try_parse_from(["eval", "--qrels", "q", "--run", "r", "--json"]).unwrap();
        assert!(cli.args.command.is_none());
        assert_eq!(cli.args.score.common.metrics, DEFAULT_METRICS);
        let cli = Cli::try_parse_from([
            "eval", "compare", "a", "b", "--qrels", "q", "--trials", "50",
        ])
        .unwrap();
        match cli.args.command {
            Some(EvalCommand::Compare(c)) => {
                assert_eq!((c.run_a.to_str(), c.trials), (Some("a"), 50));
            }
            None => panic!("compare not parsed"),
        }
        assert!(Cli::try_parse_from(["eval", "--qrels", "q"]).is_err());
    }

    #[test]
    fn writes_the_report_json_and_compares_a_run_with_itself() {
        let dir = std::env::temp_dir().join(format!("polydense-eval-cli-{}", std::process::id()));
        let out = dir.join("eval/report.json");
        let (q, r, l) = (
            format!("{FIXTURES}/qrels.txt"),
            format!("{FIXTURES}/run.txt"),
            format!("{FIXTURES}/queries.jsonl"),
        );
        let o = out.to_str().unwrap();
        let cli = Cli::try_parse_from([
            "eval",
            "--qrels",
            &q,
            "--run",
            &r,
            "--per-lang",
            &l,
            "--metrics",
            "ndcg_cut_10,map",
            "--out",
            o,
        ])
        .unwrap();
        run(cli.args).unwrap();
        let report: Report = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let names: Vec<&str> = report.overall.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ndcg@10", "map"]);
        assert_eq!(report.per_lang.len(), 4);

        let cli = Cli::try_parse_from([
            "eval", "compare", &r, &r, "--qrels", &q, "--trials", "100", "--json", "--out", o,
        ])
        .unwrap();
        run(cli.args).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["comparisons"][0]["p_value"], 1.0);
        assert_eq!(v["comparisons"][0]["diff"], 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
