//! Resumable mining: a run is cut into batches of `checkpoint_every` queries; after each,
//! the batch's examples are appended to `<output>.partial` (and synced), then
//! `<output>.progress.json` is replaced atomically with the number of queries done, the
//! partial file's length and the running totals. A rerun with the same config truncates the
//! partial file to the recorded length (dropping a batch whose progress was never written),
//! skips the queries done and goes on; at the end the training file and the stats are
//! written atomically and both scratch files removed.
//!
//! Every query's result depends only on the query (seeded sampling, per-query LLM context,
//! cached or deterministic LLM answers), so a resumed run writes what an uninterrupted one
//! writes; tests/resume.rs kills a run to check it.

use crate::config::MineConfig;
use crate::error::{MineError, Result};
use crate::pipeline::{mine_queries, passage, Pipeline};
use crate::progress::Progress;
use crate::stage::MineQuery;
use crate::stats::MineStats;
use crate::totals::RunTotals;
use polydense_data::beir::BeirDataset;
use polydense_data::{DataError, TrainExample, TrainPassage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The progress file.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    /// Hash of what decides the output: the config (less paths, slice and batch size) and
    /// the query ids.
    fingerprint: String,
    /// Length of `<output>.partial` after the last finished batch.
    partial_bytes: u64,
    /// Totals, `queries_done` included.
    totals: RunTotals,
}

/// `<output>.partial`: the examples of finished batches, JSON lines.
pub fn partial_path(cfg: &MineConfig) -> PathBuf {
    sibling(&cfg.output, ".partial")
}

/// `<output>.progress.json`: where a rerun resumes.
pub fn progress_path(cfg: &MineConfig) -> PathBuf {
    sibling(&cfg.output, ".progress.json")
}

fn sibling(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes a stopped run's checkpoint, so the next run starts over.
pub fn clear(cfg: &MineConfig) -> Result<()> {
    for p in [partial_path(cfg), progress_path(cfg)] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(DataError::io(&p, e).into())
            }
            _ => {}
        }
    }
    Ok(())
}

/// What must match for a checkpoint to be resumed.
fn fingerprint(cfg: &MineConfig, queries: &[MineQuery]) -> String {
    let mut v = serde_json::to_value(cfg).expect("a config serialises");
    let o = v.as_object_mut().expect("a table");
    for k in ["output", "stats", "max_queries", "checkpoint_every"] {
        o.remove(k);
    }
    if let Some(llm) = o.get_mut("llm").and_then(|l| l.as_object_mut()) {
        // How patiently or how fast the LLM is asked changes no answer.
        for k in [
            "url",
            "api_key_env",
            "concurrency",
            "connect_timeout_s",
            "timeout_s",
            "retries",
            "backoff_ms",
            "max_backoff_s",
            "max_retry_after_s",
            "keep_alive",
            "cache",
            "no_cache",
        ] {
            llm.remove(k);
        }
    }
    let mut h = Sha256::new();
    h.update(v.to_string().as_bytes());
    for q in queries {
        h.update(q.query.id.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the config's dataset, mines it batch by batch with checkpoints (resuming a stopped
/// run), and writes the training file and the stats (both atomically); returns the stats.
pub fn run_config(cfg: &MineConfig, progress: &dyn Progress) -> Result<MineStats> {
    let ds = BeirDataset::load(&cfg.dataset, &cfg.split)?;
    let (all_queries, skipped) = mine_queries(&ds);
    let print = fingerprint(cfg, &all_queries);
    let queries = &all_queries[..cfg.max_queries.unwrap_or(usize::MAX).min(all_queries.len())];
    // Removed on drop, also when a stage fails.
    let scratch = tempfile::Builder::new()
        .prefix("polydense-mine-")
        .tempdir()
        .map_err(|e| DataError::io(std::env::temp_dir(), e))?;
    let pipeline = Pipeline::from_config(cfg, &ds.corpus, scratch.path())?;
    let passages: HashMap<&str, TrainPassage> = ds
        .corpus
        .iter()
        .map(|d| (d.id.as_str(), passage(d)))
        .collect();
    let (partial, progress_file) = (partial_path(cfg), progress_path(cfg));
    let mut state = resume(&progress_file, &partial, &print)?;
    if state.totals.queries_done > queries.len() {
        return Err(MineError::Config {
            path: progress_file,
            message: format!(
                "this checkpoint has {} queries done, more than the {} asked for now; raise max_queries or delete it",
                state.totals.queries_done,
                queries.len()
            ),
        });
    }
    if state.totals.queries_done > 0 {
        tracing::info!(
            "resuming {} after {} of {} queries",
            cfg.output.display(),
            state.totals.queries_done,
            queries.len()
        );
    }
    let requested = pipeline.requested();
    progress.start("mining", queries.len() as u64);
    progress.inc(state.totals.queries_done as u64);
    let every = cfg.checkpoint_every.max(1);
    let mut done = state.totals.queries_done;
    while done < queries.len() {
        let batch = &queries[done..(done + every).min(queries.len())];
        let (outcomes, log) = pipeline.run_batch(batch, &passages, progress)?;
        state.totals.add_log(log);
        let mut lines = Vec::new();
        for o in outcomes {
            if let Some(ex) = state.totals.add(o, pipeline.min_negatives, requested) {
                serde_json::to_writer(&mut lines, &ex).expect("an example serialises");
                lines.push(b'\n');
            }
        }
        append(&partial, state.partial_bytes, &lines)?;
        state.partial_bytes += lines.len() as u64;
        if let Some(llm) = &pipeline.llm {
            llm.sync().map_err(|e| MineError::Stage {
                stage: "llm".into(),
                message: e.to_string(),
            })?;
        }
        write_json(&progress_file, &state)?;
        done += batch.len();
        progress.inc(batch.len() as u64);
    }
    progress.finish();
    drop(pipeline);
    let mut examples = read_partial(&partial)?;
    let mut stats = state.totals.stats(requested);
    let langs: HashMap<&str, &str> = ds
        .corpus
        .iter()
        .filter_map(|d| Some((d.id.as_str(), d.lang.as_deref()?)))
        .collect();
    // Every query of the split can lend its text, mined or not.
    stats.negative_queries =
        crate::negative_queries::attach_from_qrels(&mut examples, &all_queries, &langs);
    if cfg.negative_queries.llm {
        // The client's cache holds every answer already given, so a run stopped here
        // resumes (the mined examples are still checkpointed) without asking again.
        let client =
            cfg.llm
                .clone()
                .unwrap_or_default()
                .client()
                .map_err(|e| MineError::Stage {
                    stage: "negative_queries".into(),
                    message: e.to_string(),
                })?;
        let mut log = crate::stage::DropLog::default();
        let n = crate::negative_queries::attach_from_llm(
            &mut examples,
            &client,
            &cfg.negative_queries,
            &langs,
            &mut log,
            progress,
        )?;
        stats.negative_queries.from_llm = n;
        stats.negative_queries.without -= n;
        state.totals.add_log(log);
        stats.counters = state.totals.stats(requested).counters;
    }
    stats.queries = ds.queries.len();
    stats.skipped_no_positive = skipped;
    polydense_data::tevatron::write_train(&cfg.output, &examples)?;
    write_json(&cfg.stats_path(), &stats)?;
    clear(cfg)?;
    Ok(stats)
}

/// The checkpoint to continue from, or a fresh one; the partial file is cut back to what
/// the checkpoint recorded.
fn resume(progress_file: &Path, partial: &Path, print: &str) -> Result<Checkpoint> {
    let fresh = Checkpoint {
        fingerprint: print.to_string(),
        partial_bytes: 0,
        totals: RunTotals::default(),
    };
    let state = match std::fs::read_to_string(progress_file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh,
        Err(e) => return Err(DataError::io(progress_file, e).into()),
        Ok(text) => {
            let c: Checkpoint = serde_json::from_str(&text).map_err(|e| MineError::Config {
                path: progress_file.to_path_buf(),
                message: format!("unreadable checkpoint ({e}); delete it to start over"),
            })?;
            if c.fingerprint != print {
                return Err(MineError::Config {
                    path: progress_file.to_path_buf(),
                    message: "this checkpoint was made with another config or dataset; restore them, or delete it (or pass --restart) to start over".into(),
                });
            }
            c
        }
    };
    if let Some(dir) = partial.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(partial)
        .map_err(|e| DataError::io(partial, e))?;
    let len = f.metadata().map_err(|e| DataError::io(partial, e))?.len();
    if len < state.partial_bytes {
        return Err(MineError::Config {
            path: partial.to_path_buf(),
            message: format!(
                "holds {len} bytes but its checkpoint recorded {}; delete both to start over",
                state.partial_bytes
            ),
        });
    }
    // Bytes past the checkpoint belong to a batch whose progress was never recorded.
    f.set_len(state.partial_bytes)
        .map_err(|e| DataError::io(partial, e))?;
    Ok(state)
}

/// Appends a batch's lines at `at` (the file's recorded length) and syncs them.
fn append(path: &Path, at: u64, lines: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| DataError::io(path, e))?;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(at))
        .and_then(|_| f.write_all(lines))
        .and_then(|_| f.sync_data())
        .map_err(|e| DataError::io(path, e).into())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value).expect("serialises");
    polydense_data::atomic::write_atomic(path, |w| w.write_all(json.as_bytes()))?;
    Ok(())
}

fn read_partial(path: &Path) -> Result<Vec<TrainExample>> {
    let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| DataError::io(path, e))?;
        let ex = serde_json::from_str(&line).map_err(|e| {
            DataError::invalid(path, format!("checkpointed example: {e}")).at_line(i + 1)
        })?;
        out.push(ex);
    }
    Ok(out)
}
