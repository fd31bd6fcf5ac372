//! `polydense report` on synthetic run directories: every part of a run shows up in one
//! self-contained page with valid PNG plots, and bad or empty directories are clear errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

const LANGS: [&str; 4] = ["de", "en", "th", "zh"];
const SYSTEMS: [&str; 3] = ["bm25", "zero-shot", "fine-tuned"];
const CONFIG: &str = "model = \"minilm-l6\"\nlr = 2e-5\nbatch_size = 16\nsampler = \"clustered\"\n";

fn report(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_polydense"))
        .arg("report")
        .arg(dir)
        .output()
        .expect("polydense runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether a font for the plots is installed; on CI its absence fails the test.
fn font_present() -> bool {
    let found = std::env::var_os("POLYDENSE_FONT").is_some()
        || [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ]
        .iter()
        .any(|p| Path::new(p).is_file());
    if !found && polydense_data::paths::assets_required() {
        panic!("the report's plots need fonts-dejavu-core (DejaVuSans.ttf)");
    }
    if !found {
        eprintln!("skipping: no DejaVuSans.ttf (install fonts-dejavu-core)");
    }
    found
}

fn eval_report(base: f64) -> serde_json::Value {
    let per_lang: serde_json::Map<String, serde_json::Value> = LANGS
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let v = base + 0.02 * i as f64;
            (l.to_string(), json!({"ndcg@10": v, "mrr@10": v + 0.2}))
        })
        .collect();
    json!({
        "overall": {"ndcg@10": base + 0.03, "mrr@10": base + 0.23},
        "per_lang": per_lang,
        "num_queries": {"overall": 40, "per_lang": {}},
    })
}

fn histogram(lo: f32, hi: f32, counts: &[u64]) -> serde_json::Value {
    let w = (hi - lo) / counts.len() as f32;
    let edges: Vec<f32> = (0..=counts.len()).map(|i| lo + w * i as f32).collect();
    json!({"count": counts.iter().sum::<u64>(), "min": lo, "max": hi, "mean": (lo + hi) / 2.0,
           "edges": edges, "counts": counts})
}

fn mine_stats(with_dropped: bool) -> serde_json::Value {
    let mut s = json!({
        "queries": 10, "examples": 9, "skipped_no_positive": 0,
        "skipped_too_few_negatives": 1, "requested_per_query": 4, "short_examples": 0,
        "negatives_per_query": {"min": 4, "max": 4, "mean": 4.0, "counts": {"4": 9}},
        "proposed": {"bm25": 900}, "dropped": {"false_negative": {"score above the positive's margin": 30}},
        "not_sampled": {"bm25": 834}, "kept": {"bm25": 36},
        "negative_scores": {"bm25": histogram(1.0, 12.0, &[10, 14, 8, 3, 1])},
        "positive_scores": {"bm25": histogram(5.0, 20.0, &[2, 3, 4])},
    });
    if with_dropped {
        s["dropped_scores"] = json!({"bm25": histogram(10.0, 25.0, &[12, 9, 6, 3])});
    }
    s
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A run directory with every part the report reads.
fn full_run(dir: &Path) {
    write(&dir.join("config.toml"), CONFIG);
    let mut metrics = String::new();
    for step in 1..=60u64 {
        let line = json!({"step": step, "epoch": (step - 1) / 20, "loss": 3.0 / (1.0 + step as f64 / 10.0),
                          "lr": 2e-5 * (1.0 - step as f64 / 61.0), "grad_norm": 1.5, "examples_per_s": 12.0});
        metrics.push_str(&format!("{line}\n"));
        if step % 20 == 0 {
            let dev = json!({"step": step, "dev": eval_report(0.3 + step as f64 / 200.0)});
            metrics.push_str(&format!("{dev}\n"));
            // An AXL-ICT refresh, as the trainer logs it at each clustering.
            let adv = json!({"step": step, "adversarial": {"step": step, "epoch": step / 20,
                "judged": 30, "kept": {"numeric": 4, "negation": 3},
                "dropped": {"easy (below the kept fraction)": 21, "likely false negative (m above the margin)": 2},
                "keep_fraction": 0.25, "margin": 0.05, "mean_kept_margin": -0.012, "seconds": 1.5,
                "examples": [["numeric", "When was the tower built?", "numeric 1889→1893", -0.004]]}});
            metrics.push_str(&format!("{adv}\n"));
        }
    }
    write(&dir.join("metrics.jsonl"), &metrics);
    for (i, s) in SYSTEMS.iter().enumerate() {
        let r = eval_report(0.3 + 0.1 * i as f64);
        // The zero-shot one in the summary shape that `polydense retrieve` writes.
        let mut r = match *s {
            "zero-shot" => json!({"model": "e5-small", "report": r}),
            _ => r,
        };
        // The fine-tuned system was evaluated with --first-hit.
        if *s == "fine-tuned" {
            let counts = json!({"queries": 40, "relevant_same_lang": 21, "relevant_other_lang": 9,
                "wrong_same_lang": 6, "wrong_other_lang": 4, "wrong_same_group": 3,
                "wrong_other_group": 7, "empty": 0});
            r["first_hit"] = json!({"overall": counts, "per_lang": {"de": counts}});
        }
        write(&dir.join(format!("eval/test/{s}.json")), &r.to_string());
    }
    let clusters: String = [
        (0u64, 200u64, "scheduled"),
        (20, 250, "loss plateau"),
        (40, 300, "every 5 epochs"),
    ]
    .iter()
    .enumerate()
    .map(|(e, (step, k, reason))| {
        format!(
            "{}\n",
            json!({"step": step, "epoch": e, "k": k, "seconds_embed": 3.5,
                       "seconds_kmeans": 0.4, "reason": reason, "lang_entropy": 1.2})
        )
    })
    .collect();
    write(&dir.join("clusters.jsonl"), &clusters);
    let points: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            let c = i % 5;
            let a = c as f64 + i as f64 * 0.013;
            json!([a.cos() * 3.0, a.sin() * 3.0, c, LANGS[i % LANGS.len()]])
        })
        .collect();
    write(
        &dir.join("projection.json"),
        &json!({"step": 40, "k": 5, "points": points}).to_string(),
    );
    write(
        &dir.join("negatives.stats.json"),
        &mine_stats(true).to_string(),
    );
}

#[test]
fn a_full_run_directory_gives_one_self_contained_page() {
    if !font_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    full_run(dir);
    let out = report(dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        dir.join("report.html").display().to_string()
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for s in SYSTEMS {
        assert!(
            html.contains(&format!("<th>{s}</th>")),
            "system {s} in the tables"
        );
    }
    // The first-hit table, for the one system evaluated with --first-hit.
    assert!(html.contains("First hit of each judged query"));
    assert!(html.contains("21 (52.5%)") && html.contains("wrong, same group"));
    for l in LANGS {
        assert!(
            html.contains(&format!("<td>{l}</td>")),
            "language {l} in the tables"
        );
    }
    assert!(
        html.contains("lr = 2e-5\nbatch_size = 16\nsampler = &quot;clustered&quot;"),
        "config verbatim"
    );
    assert!(html.contains("<td>loss plateau</td>"), "clustering table");
    // The AXL-ICT loop: one row per refresh and the kept examples of the last one.
    assert!(html.contains("Adversarial negatives (AXL-ICT)"));
    assert!(html.contains("<th>kept numeric</th>") && html.contains("<td>numeric 1889→1893</td>"));
    assert!(
        html.contains("seconds_kmeans"),
        "extra clustering fields are columns"
    );
    // loss, lr, dev, k, projection by cluster and by language, nDCG@10 and MRR@10 bars,
    // and the bm25 score histogram.
    let images = html.matches("data:image/png;base64,").count();
    assert_eq!(images, 9);
    assert!(
        !html.contains("src=\"http"),
        "nothing loaded from elsewhere"
    );
    let mut pngs: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    assert_eq!(
        pngs,
        [
            "clusters-k.png",
            "dev.png",
            "loss.png",
            "lr.png",
            "negatives-bm25.png",
            "projection-clusters.png",
            "projection-langs.png",
            "test-mrr-at-10.png",
            "test-ndcg-at-10.png"
        ]
    );
    for p in &pngs {
        let bytes = std::fs::read(dir.join("plots").join(p)).unwrap();
        assert!(bytes.len() > 1000, "{p} has {} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{p} is a PNG");
        assert_eq!(&bytes[12..16], b"IHDR", "{p} starts with its header");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert!(width >= 600 && height >= 400, "{p} is {width}x{height}");
        assert_eq!(
            &bytes[bytes.len() - 8..bytes.len() - 4],
            b"IEND",
            "{p} is complete"
        );
    }
    // Weakest system first in the tables.
    let at = |s: &str| html.find(&format!("<th>{s}</th>")).unwrap();
    assert!(at("bm25") < at("zero-shot") && at("zero-shot") < at("fine-tuned"));
}

#[test]
fn stats_are_found_through_the_configs_training_file_and_old_ones_load() {
    if !font_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let train = tmp.path().join("train.jsonl");
    let mut old = mine_stats(false);
    old.as_object_mut().unwrap().remove("dropped_scores");
    write(&tmp.path().join("train.jsonl.stats.json"), &old.to_string());
    write(
        &dir.join("config.toml"),
        &format!("train_file = \"{}\"\n", train.display()),
    );
    write(
        &dir.join("metrics.jsonl"),
        r#"{"step":1,"epoch":0,"loss":1.0,"lr":1e-5,"grad_norm":1.0,"examples_per_s":2.0}"#,
    );
    let out = report(&dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        html.contains("train.jsonl.stats.json"),
        "names the stats file it used"
    );
    assert!(dir.join("plots/negatives-bm25.png").is_file());
    // The parts this run lacks are notes, not errors.
    assert!(html.contains("No clusters.jsonl"));
    assert!(html.contains("No projection.json"));
    assert!(html.contains("No eval/test/*.json"));
    assert!(html.contains("No dev evaluations"));
}

#[test]
fn a_malformed_metrics_line_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        &dir.join("metrics.jsonl"),
        concat!(
            r#"{"step":1,"epoch":0,"loss":1.0,"lr":1e-5,"grad_norm":1.0,"examples_per_s":2.0}"#,
            "\n",
            r#"{"step":2,"epoch":0,"loss":"#,
            "\n"
        ),
    );
    let out = report(dir);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("metrics.jsonl:2"), "{err}");
    assert!(!dir.join("report.html").exists());
    // A well-formed line of the wrong type names the field too.
    write(
        &dir.join("metrics.jsonl"),
        r#"{"step":1,"epoch":0,"loss":"high","lr":1e-5,"grad_norm":1.0,"examples_per_s":2.0}"#,
    );
    let err = stderr(&report(dir));
    assert!(
        err.contains("metrics.jsonl:1") && err.contains("loss"),
        "{err}"
    );
}

#[test]
fn an_empty_directory_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = report(tmp.path());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("nothing to report"), "{err}");
    assert!(err.contains("metrics.jsonl"), "{err}");
    let missing = report(&tmp.path().join("nope"));
    assert!(
        stderr(&missing).contains("not a directory"),
        "{}",
        stderr(&missing)
    );
}
