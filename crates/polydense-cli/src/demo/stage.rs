//! Stages that rerun only when their inputs change: a SHA-256 over the stage's command line
//! and the bytes of every input file decides, recorded in `OUT/.stages/NAME.json` once the
//! stage has finished. A stage interrupted part-way leaves a `.started` record instead, so
//! the next run knows it may resume (training) or must redo it.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polydense_data::atomic::write_atomic;
use sha2::{Digest, Sha256};

/// What a stage needs, makes, and how it is known to be done.
pub struct Stage {
    /// A short file-safe name (`zero-shot`).
    pub name: &'static str,
    /// What the user reads as it starts.
    pub title: String,
    /// Files or directories whose content the result depends on.
    pub inputs: Vec<PathBuf>,
    /// Settings the result depends on beyond the files (the command lines).
    pub settings: Vec<String>,
    /// Paths that must exist for the stage to count as done.
    pub outputs: Vec<PathBuf>,
}

/// Where a stage stands against what is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Finished earlier with the same inputs; skip it.
    Done,
    /// Started earlier with the same inputs and interrupted; continue where possible.
    Interrupted,
    /// Never run, or run with other inputs; start afresh.
    Fresh,
}

/// Hashes file contents once per process: the model directory feeds several stages.
#[derive(Default)]
pub struct Hasher {
    files: HashMap<PathBuf, (u64, std::time::SystemTime, [u8; 32])>,
}

impl Hasher {
    /// The digest of a stage's settings and the contents of its inputs, as hex.
    pub fn stage_hash(&mut self, stage: &Stage) -> Result<String> {
        let mut h = Sha256::new();
        for s in &stage.settings {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        for input in &stage.inputs {
            let mut files = Vec::new();
            collect_files(input, &mut files)
                .with_context(|| format!("reading the input {}", input.display()))?;
            files.sort();
            for f in files {
                h.update(f.to_string_lossy().as_bytes());
                h.update(self.file_digest(&f)?);
            }
        }
        Ok(hex(&h.finalize()))
    }

    fn file_digest(&mut self, path: &Path) -> Result<[u8; 32]> {
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let key = (meta.len(), meta.modified()?);
        if let Some((len, mtime, d)) = self.files.get(path) {
            if (*len, *mtime) == key {
                return Ok(*d);
            }
        }
        let mut file =
            fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let d: [u8; 32] = h.finalize().into();
        self.files.insert(path.to_path_buf(), (key.0, key.1, d));
        Ok(d)
    }
}

/// Every regular file under `path` (or `path` itself), following symlinks as the stages do.
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if fs::metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            collect_files(&entry?.path(), out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The records of finished and started stages under `OUT/.stages`.
pub struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// The ledger of the demo output directory `out`.
    pub fn new(out: &Path) -> Self {
        Ledger {
            dir: out.join(".stages"),
        }
    }

    fn record(&self, name: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{name}.{suffix}"))
    }

    fn read(&self, name: &str, suffix: &str) -> Option<String> {
        fs::read_to_string(self.record(name, suffix))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// Compares what is recorded with `hash` and checks the outputs are still there.
    pub fn status(&self, stage: &Stage, hash: &str) -> Status {
        let outputs_there = stage.outputs.iter().all(|p| p.exists());
        if outputs_there && self.read(stage.name, "done").as_deref() == Some(hash) {
            Status::Done
        } else if self.read(stage.name, "started").as_deref() == Some(hash) {
            Status::Interrupted
        } else {
            Status::Fresh
        }
    }

    /// Notes that the stage began with these inputs, and forgets an earlier finish.
    pub fn start(&self, name: &str, hash: &str) -> Result<()> {
        fs::create_dir_all(&self.dir)?;
        let _ = fs::remove_file(self.record(name, "done"));
        write_atomic(self.record(name, "started"), |w| {
            w.write_all(hash.as_bytes())
        })?;
        Ok(())
    }

    /// Notes that the stage finished with these inputs.
    pub fn finish(&self, name: &str, hash: &str) -> Result<()> {
        write_atomic(self.record(name, "done"), |w| w.write_all(hash.as_bytes()))?;
        let _ = fs::remove_file(self.record(name, "started"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(dir: &Path, settings: &str) -> Stage {
        Stage {
            name: "s",
            title: "a stage".into(),
            inputs: vec![dir.join("in")],
            settings: vec![settings.into()],
            outputs: vec![dir.join("out.txt")],
        }
    }

    #[test]
    fn a_stage_is_done_only_with_the_same_inputs_and_its_outputs() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("in/sub")).unwrap();
        fs::write(dir.path().join("in/sub/a.txt"), "one").unwrap();
        let ledger = Ledger::new(dir.path());
        let mut hasher = Hasher::default();
        let s = stage(dir.path(), "--k 10");
        let h = hasher.stage_hash(&s).unwrap();
        assert_eq!(ledger.status(&s, &h), Status::Fresh);

        ledger.start("s", &h).unwrap();
        assert_eq!(ledger.status(&s, &h), Status::Interrupted);
        fs::write(dir.path().join("out.txt"), "result").unwrap();
        ledger.finish("s", &h).unwrap();
        assert_eq!(ledger.status(&s, &h), Status::Done);

        // Other settings, other content, or a lost output each mean starting afresh.
        let other = hasher.stage_hash(&stage(dir.path(), "--k 20")).unwrap();
        assert_ne!(other, h);
        assert_eq!(ledger.status(&s, &other), Status::Fresh);
        fs::write(dir.path().join("in/sub/a.txt"), "two").unwrap();
        let changed = Hasher::default().stage_hash(&s).unwrap();
        assert_ne!(changed, h);
        fs::remove_file(dir.path().join("out.txt")).unwrap();
        assert_eq!(ledger.status(&s, &h), Status::Fresh);
    }

    #[test]
    fn a_missing_input_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = Hasher::default()
            .stage_hash(&stage(dir.path(), ""))
            .unwrap_err();
        assert!(format!("{err:#}").contains("in"), "{err:#}");
    }
}
