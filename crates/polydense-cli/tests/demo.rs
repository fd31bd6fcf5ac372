//! `polydense demo --tiny` end to end on the real data and e5-small: every stage runs, the
//! report and the results table appear, and a rerun reuses every stage.

use std::path::Path;
use std::process::{Command, Output};

fn polydense(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_polydense"));
    cmd.args(args).env("RAYON_NUM_THREADS", "2");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("polydense runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Whether e5-small and XQuAD-R are installed; their absence fails under `scripts/test`
/// and CI.
fn assets_present() -> bool {
    polydense_data::paths::test_model("e5-small").is_some()
        && polydense_data::paths::test_data("xquad-r/en.json").is_some()
}

#[test]
fn the_tiny_demo_runs_every_stage_then_reuses_them() {
    if !assets_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = polydense(&["demo", "--tiny", "--out", out.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for stage in [
        "data",
        "bm25",
        "zero-shot",
        "negatives",
        "train",
        "fine-tuned",
        "report",
    ] {
        assert!(
            out.join(".stages").join(format!("{stage}.done")).is_file(),
            "stage {stage} not recorded as done"
        );
    }
    let report = std::fs::read_to_string(out.join("train/report.html")).unwrap();
    for needle in [
        "bm25",
        "zero-shot",
        "fine-tuned",
        "zh",
        "data:image/png;base64,",
    ] {
        assert!(report.contains(needle), "report.html lacks {needle}");
    }
    // The table: a header with the three languages and a row per system with real scores.
    assert!(stdout.contains("de    en    zh"), "{stdout}");
    for system in ["bm25", "zero-shot", "fine-tuned"] {
        let row = stdout
            .lines()
            .find(|l| l.starts_with(system))
            .unwrap_or_else(|| panic!("no {system} row in\n{stdout}"));
        let ndcg: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!((0.05..=1.0).contains(&ndcg), "{row}");
    }
    assert!(stdout.contains("report.html"), "{stdout}");
    let metrics = std::fs::read_to_string(out.join("train/metrics.jsonl")).unwrap();
    assert!(metrics.lines().count() >= 4, "{metrics}");

    // A rerun with nothing changed does no work; losing the report redoes only the report.
    std::fs::remove_file(out.join("train/report.html")).unwrap();
    let o = polydense(&["demo", "--tiny", "--out", out.to_str().unwrap()], &[]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "rerun failed:\n{stdout}\n{stderr}");
    let reused = stderr.matches("done earlier with the same inputs").count();
    assert_eq!(reused, 8, "{stderr}");
    assert!(out.join("train/report.html").is_file());
}

#[test]
fn missing_assets_get_one_line_on_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path();
    let out = empty.join("x");
    let out = out.to_str().unwrap();
    let o = polydense(
        &["demo", "--tiny", "--out", out],
        &[("POLYDENSE_DATA", &empty.join("none"))],
    );
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("polydense data fetch xquad-r"), "{stderr}");

    if let Ok(data) = polydense_data::paths::data_dir() {
        if data.join("xquad-r/en.json").is_file() {
            let o = polydense(
                &["demo", "--tiny", "--out", out],
                &[("POLYDENSE_HOME", empty), ("POLYDENSE_DATA", &data)],
            );
            let (_, stderr) = text(&o);
            assert!(!o.status.success());
            assert!(stderr.contains("scripts/setup"), "{stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
    }
    assert!(!empty.join("x").exists());
}
